//! The STS vault: session policies from scopes, durations, session names, settings, and the
//! AssumeRole request as sent to a one-request stand-in for STS on 127.0.0.1 (moto records no
//! `SourceIdentity`; the SDK's test in `crates/agent-safe/tests/aws_runner.rs` runs the vault
//! against moto's STS).

use agent_safe_testkit::{Reply, Request, TestServer};
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sts::config::{Credentials, SharedCredentialsProvider};
use serde_json::{Value, json};

use super::*;
use crate::test_support::{SECRET, T0, clock, scope, ticket};

const ROLE: &str = "arn:aws:iam::123456789012:role/agent-safe-runner";
const NONCE: &str = "0123456789abcdef0123456789abcdef";

fn aws_scope(fields: Value) -> CredentialScope {
    let mut s = scope("aws", 300);
    s.fields = fields.as_object().unwrap().clone();
    s
}

#[track_caller]
fn check(fields: Value, expected: Result<Value, &str>) {
    let got = session_policy(&aws_scope(fields))
        .map(|p| serde_json::from_str::<Value>(&p).unwrap())
        .map_err(|e| e.to_string());
    assert_eq!(got, expected.map_err(str::to_owned));
}

#[test]
fn session_policies_from_scopes() {
    let instance = "arn:aws:ec2:us-east-1:*:instance/i-0123456789abcdef0";
    // EC2 Describe* supports no resource-level permissions: a statement of its own on "*".
    check(
        json!({"actions": ["ec2:TerminateInstances", "ec2:DescribeInstances",
                           "ec2:DescribeInstanceAttribute"], "resources": [instance]}),
        Ok(json!({"Version": "2012-10-17", "Statement": [
            {"Sid": "AgentSafeAction", "Effect": "Allow", "Action": ["ec2:TerminateInstances"],
             "Resource": [instance]},
            {"Sid": "AgentSafeDescribe", "Effect": "Allow",
             "Action": ["ec2:DescribeInstances", "ec2:DescribeInstanceAttribute"], "Resource": "*"}
        ]})),
    );
    let role = "arn:aws:iam::*:role/deployer";
    let policy = "arn:aws:iam::123456789012:policy/read-reports";
    check(
        json!({"actions": ["iam:AttachRolePolicy", "iam:ListAttachedRolePolicies", "iam:GetPolicy"],
               "resources": [role, policy]}),
        Ok(json!({"Version": "2012-10-17", "Statement": [
            {"Sid": "AgentSafeAction", "Effect": "Allow",
             "Action": ["iam:AttachRolePolicy", "iam:ListAttachedRolePolicies", "iam:GetPolicy"],
             "Resource": [role, policy]}
        ]})),
    );
    // Only Describe actions: only the "*" statement; a single string counts as a list.
    check(
        json!({"actions": "ec2:DescribeInstances", "resources": instance}),
        Ok(json!({"Version": "2012-10-17", "Statement": [
            {"Sid": "AgentSafeDescribe", "Effect": "Allow", "Action": ["ec2:DescribeInstances"],
             "Resource": "*"}
        ]})),
    );
    let invalid = |detail: &str| format!("invalid `aws` credential scope: {detail}");
    check(
        json!({"resources": [instance]}),
        Err(&invalid("no `actions`; the session policy needs them")),
    );
    check(
        json!({"actions": ["ec2:StopInstances"]}),
        Err(&invalid("no `resources`; the session policy needs them")),
    );
    check(
        json!({"actions": [], "resources": [instance]}),
        Err(&invalid("`actions` must be a non-empty list")),
    );
    check(
        json!({"actions": ["ec2:StopInstances", 7], "resources": [instance]}),
        Err(&invalid("`actions` must hold non-empty strings, found `7`")),
    );
    check(
        json!({"actions": ["StopInstances"], "resources": [instance]}),
        Err(&invalid(
            "`StopInstances` in `actions` is not an IAM action such as `ec2:StopInstances`",
        )),
    );
    check(
        json!({"actions": ["ec2:Stop\"}]"], "resources": [instance]}),
        Err(&invalid(
            "`ec2:Stop\"}]` in `actions` is not an IAM action such as `ec2:StopInstances`",
        )),
    );
}

#[test]
fn durations_and_session_names() {
    assert_eq!(session_duration(300, None).unwrap(), 900, "STS's minimum");
    assert_eq!(session_duration(900, None).unwrap(), 900);
    assert_eq!(session_duration(3600, None).unwrap(), 3600);
    assert_eq!(session_duration(43_200, None).unwrap(), 43_200);
    // `session_duration` caps the TTL (the role's MaxSessionDuration), never below 900 s.
    assert_eq!(session_duration(7200, Some(3600)).unwrap(), 3600);
    assert_eq!(session_duration(1800, Some(3600)).unwrap(), 1800);
    assert_eq!(session_duration(300, Some(900)).unwrap(), 900);
    for ttl in [0, 43_201] {
        assert_eq!(
            session_duration(ttl, Some(3600)).unwrap_err().to_string(),
            format!("invalid credential ttl {ttl}: expected 1 to 43200 seconds")
        );
    }
    assert_eq!(session_name(NONCE), format!("agent-safe-{NONCE}"));
    let long = "n".repeat(80);
    assert_eq!(session_name(&long), format!("agent-safe-{}", &long[..53]));
    assert_eq!(session_name(&long).len(), 64);
}

#[test]
fn settings_are_checked() {
    let config = |role: &str| StsVaultConfig { role_arn: role.into(), ..StsVaultConfig::default() };
    let err = |c: StsVaultConfig| StsVault::new(c, clock()).unwrap_err().to_string();
    let role_msg = "vault config key `role_arn` must be an IAM role ARN such as \
                    `arn:aws:iam::123456789012:role/agent-safe`";
    for role in
        ["", "agent-safe-runner", "arn:aws:iam::123:role/x", "arn:aws:iam::123456789012:user/x"]
    {
        assert_eq!(err(config(role)), role_msg, "{role}");
    }
    assert_eq!(
        err(StsVaultConfig { profile: Some(String::new()), ..config(ROLE) }),
        "vault config key `profile` must be a non-empty profile name"
    );
    assert_eq!(
        err(StsVaultConfig { endpoint_url: Some("127.0.0.1:5000".into()), ..config(ROLE) }),
        "vault config key `endpoint_url` must be an `http://` or `https://` URL"
    );
    for duration in [0, 899, 43_201] {
        assert_eq!(
            err(StsVaultConfig { session_duration: Some(duration), ..config(ROLE) }),
            "vault config key `session_duration` must be 900 to 43200 seconds",
            "{duration}"
        );
    }
    let vault = StsVault::new(
        StsVaultConfig {
            region: Some("eu-west-1".into()),
            endpoint_url: Some("http://127.0.0.1:5000".into()),
            session_duration: Some(3600),
            ..config("arn:aws-us-gov:iam::123456789012:role/path/runner")
        },
        clock(),
    )
    .unwrap();
    assert_eq!(vault.kind(), "sts");
    assert_eq!(
        format!("{vault:?}"),
        "StsVault { role_arn: \"arn:aws-us-gov:iam::123456789012:role/path/runner\", region: \
         Some(\"eu-west-1\"), profile: None, endpoint_url: Some(\"http://127.0.0.1:5000\"), \
         session_duration: Some(3600), issued: 0 }"
    );
}

/// A stand-in for STS on the shared loopback test server: answers every request with `status`
/// and the XML `body`.
fn fake_sts(status: u16, body: &str) -> TestServer {
    let body = body.to_owned();
    TestServer::start(move |_, _| Reply::Text {
        status,
        content_type: "text/xml",
        body: body.clone(),
    })
    .unwrap()
}

/// The one request `sts` received.
fn only_request(sts: &TestServer) -> Request {
    let requests = sts.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    requests.into_iter().next().unwrap()
}

async fn sdk(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .empty_test_environment()
        .region(Region::new("eu-west-1"))
        .endpoint_url(endpoint)
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "AKIDVAULTBASE",
            "base-secret",
            None,
            None,
            "tests",
        )))
        .http_client(https_client())
        .load()
        .await
}

/// The form fields of a query-protocol request body, percent-decoded.
fn form(body: &str) -> Vec<(String, String)> {
    let decode = |s: &str| {
        let bytes = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'%' => {
                    out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                    i += 3;
                }
                b'+' => {
                    out.push(b' ');
                    i += 1;
                }
                b => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        String::from_utf8(out).unwrap()
    };
    body.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

const ASSUMED: &str = "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\
    <AssumeRoleResult><Credentials><AccessKeyId>ASIAFAKESESSION</AccessKeyId>\
    <SecretAccessKey>s3cr3t-TOKEN-value-42</SecretAccessKey><SessionToken>FQoGsession</SessionToken>\
    <Expiration>2026-02-24T12:15:00Z</Expiration></Credentials><AssumedRoleUser>\
    <AssumedRoleId>AROAFAKE:agent-safe</AssumedRoleId>\
    <Arn>arn:aws:sts::123456789012:assumed-role/agent-safe-runner/agent-safe</Arn>\
    </AssumedRoleUser><SourceIdentity>0123456789abcdef0123456789abcdef</SourceIdentity>\
    </AssumeRoleResult><ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata>\
    </AssumeRoleResponse>";

#[tokio::test]
async fn assumes_the_role_with_the_session_policy_for_900_seconds_as_the_ticket() {
    let sts = fake_sts(200, ASSUMED);
    let vault = StsVault::with_sdk_config(sdk(&sts.base_url()).await, ROLE, clock()).unwrap();
    let fields = json!({"actions": ["s3:PutBucketPolicy", "s3:GetBucketPolicy"],
                        "resources": ["arn:aws:s3:::reports"]});
    let scope = aws_scope(fields);
    let credential = vault.get_credential(&scope, &ticket(NONCE), 300).await.unwrap();

    let request = only_request(&sts);
    assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", "/"), "{request:?}");
    let authorization = request.header("authorization").unwrap_or_default();
    assert!(
        authorization.contains("Credential=AKIDVAULTBASE/")
            && authorization.contains("/eu-west-1/sts/"),
        "signed with the vault's own keys: {request:?}"
    );
    let body = request.body.as_str();
    let expected: Vec<(String, String)> = [
        ("Action", "AssumeRole".to_owned()),
        ("Version", "2011-06-15".to_owned()),
        ("RoleArn", ROLE.to_owned()),
        ("RoleSessionName", format!("agent-safe-{NONCE}")),
        ("Policy", session_policy(&scope).unwrap()),
        ("DurationSeconds", "900".to_owned()),
        ("SourceIdentity", NONCE.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(form(body), expected);

    assert_eq!(credential.kind, "aws");
    assert_eq!(credential.ticket_nonce, NONCE);
    assert_eq!(credential.scope, scope);
    assert_eq!(credential.expires_at, T0 + time::Duration::seconds(900));
    assert_eq!(
        Value::Object(credential.payload.expose().clone()),
        json!({"access_key_id": "ASIAFAKESESSION", "secret_access_key": SECRET,
               "session_token": "FQoGsession"})
    );
    assert!(!format!("{credential:?} {vault:?}").contains(SECRET));
    assert_eq!(vault.issued_count(), 1);
    vault.revoke(&credential.credential_id).await.unwrap();
    assert_eq!(vault.issued_count(), 0);
}

#[tokio::test]
async fn session_duration_caps_the_session_asked_for() {
    let sts = fake_sts(200, ASSUMED);
    let vault = StsVault::with_sdk_config(sdk(&sts.base_url()).await, ROLE, clock())
        .unwrap()
        .with_session_duration(1800)
        .unwrap();
    let scope = aws_scope(json!({"actions": ["s3:GetObject"], "resources": ["arn:aws:s3:::r/k"]}));
    let credential = vault.get_credential(&scope, &ticket(NONCE), 7200).await.unwrap();
    let request = only_request(&sts);
    let duration: Vec<String> = form(&request.body)
        .into_iter()
        .filter(|(k, _)| k == "DurationSeconds")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(duration, ["1800"]);
    assert_eq!(credential.expires_at, T0 + time::Duration::seconds(1800));
    assert_eq!(
        StsVault::with_sdk_config(sdk(&sts.base_url()).await, ROLE, clock())
            .unwrap()
            .with_session_duration(60)
            .unwrap_err()
            .to_string(),
        "vault config key `session_duration` must be 900 to 43200 seconds"
    );
}

#[tokio::test]
async fn an_sts_refusal_is_a_vault_error_with_the_aws_code() {
    let sts = fake_sts(
        403,
        "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User: \
         arn:aws:iam::123456789012:user/runner is not authorized to perform: sts:SetSourceIdentity\
         </Message></Error><RequestId>r-2</RequestId></ErrorResponse>",
    );
    let vault = StsVault::with_sdk_config(sdk(&sts.base_url()).await, ROLE, clock()).unwrap();
    let scope = aws_scope(json!({"actions": ["ec2:StopInstances"], "resources": ["*"]}));
    let err = vault.get_credential(&scope, &ticket(NONCE), 300).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "STS AssumeRole of `arn:aws:iam::123456789012:role/agent-safe-runner` failed: \
         AccessDenied: User: arn:aws:iam::123456789012:user/runner is not authorized to \
         perform: sts:SetSourceIdentity"
    );
    assert!(only_request(&sts).body.contains("Action=AssumeRole"));
    assert_eq!(vault.issued_count(), 0);
}

#[tokio::test]
async fn refuses_other_types_and_unscoped_requests_without_calling_sts() {
    // Nothing listens there: a request would fail differently.
    let vault = StsVault::with_sdk_config(sdk("http://127.0.0.1:9").await, ROLE, clock()).unwrap();
    let err = vault.get_credential(&scope("kubernetes", 300), &ticket(NONCE), 300).await;
    assert_eq!(
        err.unwrap_err().to_string(),
        "the `sts` vault issues `aws` credentials only, not `kubernetes`"
    );
    let err = vault.get_credential(&scope("aws", 300), &ticket(NONCE), 300).await;
    assert_eq!(
        err.unwrap_err().to_string(),
        "invalid `aws` credential scope: no `actions`; the session policy needs them"
    );
    let scoped = aws_scope(json!({"actions": ["ec2:StopInstances"], "resources": ["*"]}));
    let err = vault.get_credential(&scoped, &ticket(NONCE), 0).await;
    assert_eq!(
        err.unwrap_err().to_string(),
        "invalid credential ttl 0: expected 1 to 43200 seconds"
    );
}
