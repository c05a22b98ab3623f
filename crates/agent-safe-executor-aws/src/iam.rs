//! IAM: attach or detach a managed policy on a role; the role's attached policy ARNs
//! (`attached_policies`, every page); prechecks `role-exists`, `policy-exists`,
//! `policy-attached`.

use agent_safe_core::StateMap;
use aws_sdk_iam::Client;
use serde_json::{Value, json};

use crate::error::CallError;

/// `AttachRolePolicy` or `DetachRolePolicy`.
pub(crate) async fn set_attached(
    client: &Client,
    attach: bool,
    role_name: &str,
    policy_arn: &str,
) -> Result<Value, CallError> {
    if attach {
        client.attach_role_policy().role_name(role_name).policy_arn(policy_arn).send().await?;
    } else {
        client.detach_role_policy().role_name(role_name).policy_arn(policy_arn).send().await?;
    }
    Ok(json!({"role_name": role_name, "policy_arn": policy_arn, "attached": attach}))
}

/// ARNs of the managed policies attached to the role, in the order IAM lists them.
pub(crate) async fn attached_policies(
    client: &Client,
    role_name: &str,
) -> Result<Vec<String>, CallError> {
    let mut pages =
        client.list_attached_role_policies().role_name(role_name).into_paginator().items().send();
    let mut arns = Vec::new();
    while let Some(item) = pages.next().await {
        if let Some(arn) = item?.policy_arn() {
            arns.push(arn.to_owned());
        }
    }
    Ok(arns)
}

/// `attached_policies`.
pub(crate) async fn state(client: &Client, role_name: &str) -> Result<StateMap, CallError> {
    let arns = attached_policies(client, role_name).await?;
    let mut state = StateMap::new();
    state.insert("attached_policies".into(), arns.into());
    Ok(state)
}

/// The prechecks of both actions.
pub(crate) async fn precheck(
    client: &Client,
    role_name: &str,
    policy_arn: &str,
    name: &str,
) -> Option<Result<(bool, String), CallError>> {
    let attached = || async {
        match attached_policies(client, role_name).await {
            Ok(arns) => Ok(Some(arns.iter().any(|a| a == policy_arn))),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    };
    let no_role = || (false, format!("role `{role_name}` does not exist"));
    Some(match name {
        "role-exists" => attached().await.map(|a| match a {
            Some(_) => (true, format!("role `{role_name}` exists")),
            None => no_role(),
        }),
        "policy-attached" => attached().await.map(|a| match a {
            Some(true) => (true, format!("`{policy_arn}` is attached to role `{role_name}`")),
            Some(false) => (false, format!("`{policy_arn}` is not attached to role `{role_name}`")),
            None => no_role(),
        }),
        "policy-exists" => match client.get_policy().policy_arn(policy_arn).send().await {
            Err(e) => match CallError::from(e) {
                e if e.is_not_found() => {
                    Ok((false, format!("policy `{policy_arn}` does not exist")))
                }
                e => Err(e),
            },
            Ok(_) => attached().await.map(|a| match a {
                Some(false) => (true, format!("policy `{policy_arn}` exists and is not attached")),
                Some(true) => {
                    (false, format!("`{policy_arn}` is already attached to role `{role_name}`"))
                }
                None => no_role(),
            }),
        },
        _ => return None,
    })
}
