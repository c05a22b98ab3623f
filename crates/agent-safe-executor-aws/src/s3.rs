//! S3: delete one object, replace a bucket policy (checked to be a JSON policy document
//! first); object state (`content_length`, `content_type`, `version_id`) and bucket policy
//! state (`policy`, null when the bucket has none); the prechecks.

use agent_safe_core::StateMap;
use aws_sdk_s3::Client;
use serde_json::{Value, json};

use crate::error::CallError;

/// `DeleteObject`.
pub(crate) async fn delete_object(
    client: &Client,
    bucket: &str,
    key: &str,
) -> Result<Value, CallError> {
    let out = client.delete_object().bucket(bucket).key(key).send().await?;
    Ok(json!({
        "bucket": bucket,
        "key": key,
        "delete_marker": out.delete_marker(),
        "version_id": out.version_id(),
    }))
}

/// `PutBucketPolicy`, after checking that `policy` is a policy document.
pub(crate) async fn put_bucket_policy(
    client: &Client,
    bucket: &str,
    policy: &str,
) -> Result<Value, CallError> {
    check_policy(policy).map_err(CallError::Refused)?;
    client.put_bucket_policy().bucket(bucket).policy(policy).send().await?;
    Ok(json!({"bucket": bucket, "policy_bytes": policy.len()}))
}

/// Checks that `policy` is a JSON object with a `Statement` (an object or a non-empty list
/// of objects). S3 validates the rest; some S3-compatible servers validate nothing.
pub(crate) fn check_policy(policy: &str) -> Result<(), String> {
    let doc: Value = serde_json::from_str(policy)
        .map_err(|e| format!("the bucket policy is not valid JSON: {e}"))?;
    let Value::Object(doc) = doc else {
        return Err("the bucket policy must be a JSON object".to_owned());
    };
    match doc.get("Statement") {
        Some(Value::Object(_)) => Ok(()),
        Some(Value::Array(list)) if !list.is_empty() && list.iter().all(Value::is_object) => Ok(()),
        Some(_) => {
            Err("the bucket policy's `Statement` must be an object or a non-empty list of objects"
                .to_owned())
        }
        None => Err("the bucket policy has no `Statement`".to_owned()),
    }
}

/// The object's metadata from `HeadObject`.
pub(crate) async fn object_state(
    client: &Client,
    bucket: &str,
    key: &str,
) -> Result<StateMap, CallError> {
    let out = client.head_object().bucket(bucket).key(key).send().await?;
    let mut state = StateMap::new();
    state.insert("content_length".into(), out.content_length().into());
    state.insert("content_type".into(), out.content_type().into());
    state.insert("version_id".into(), out.version_id().into());
    Ok(state)
}

/// The bucket policy in force, `null` when the bucket has none.
pub(crate) async fn policy_state(client: &Client, bucket: &str) -> Result<StateMap, CallError> {
    let policy = match client.get_bucket_policy().bucket(bucket).send().await {
        Ok(out) => out.policy().map(str::to_owned),
        Err(e) => match CallError::from(e) {
            e if e.has_code("NoSuchBucketPolicy") => None,
            e => return Err(e),
        },
    };
    let mut state = StateMap::new();
    state.insert("policy".into(), policy.into());
    Ok(state)
}

/// `object-exists`.
pub(crate) async fn object_exists(
    client: &Client,
    bucket: &str,
    key: &str,
) -> Result<(bool, String), CallError> {
    match object_state(client, bucket, key).await {
        Ok(_) => Ok((true, format!("object `{key}` exists in bucket `{bucket}`"))),
        Err(e) if e.is_not_found() => {
            Ok((false, format!("object `{key}` does not exist in bucket `{bucket}`")))
        }
        Err(e) => Err(e),
    }
}

/// `bucket-exists`, via `GetBucketPolicy` (the permission the action already has).
pub(crate) async fn bucket_exists(
    client: &Client,
    bucket: &str,
) -> Result<(bool, String), CallError> {
    match policy_state(client, bucket).await {
        Ok(_) => Ok((true, format!("bucket `{bucket}` exists"))),
        Err(e) if e.is_not_found() => Ok((false, format!("bucket `{bucket}` does not exist"))),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::check_policy;

    #[track_caller]
    fn check(policy: &str, expected: Result<(), &str>) {
        let got = check_policy(policy);
        match expected {
            Ok(()) => assert_eq!(got, Ok(())),
            Err(prefix) => {
                let err = got.unwrap_err();
                assert!(err.starts_with(prefix), "{err}");
            }
        }
    }

    #[test]
    fn policy_documents() {
        check(r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Deny"}]}"#, Ok(()));
        check(r#"{"Statement": {"Effect": "Allow"}}"#, Ok(()));
        check("not json", Err("the bucket policy is not valid JSON: expected ident at line 1"));
        check("[]", Err("the bucket policy must be a JSON object"));
        check("{}", Err("the bucket policy has no `Statement`"));
        check(r#"{"Statement": []}"#, Err("the bucket policy's `Statement` must be"));
        check(r#"{"Statement": ["x"]}"#, Err("the bucket policy's `Statement` must be"));
    }
}
