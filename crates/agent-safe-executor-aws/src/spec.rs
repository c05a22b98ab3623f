//! The contract between the AWS executor and the catalog: for each of the 13 actions, the
//! parameters it accepts, the state fields it reports, the prechecks it implements and the
//! IAM actions its API calls need. Tests check this table against `catalog/actions/`.

/// The JSON type of a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// A string.
    String,
    /// An integer.
    Integer,
    /// A boolean.
    Boolean,
}

/// One parameter the executor reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamInfo {
    /// Name as in the action YAML.
    pub name: &'static str,
    /// JSON type.
    pub kind: ParamKind,
    /// Whether the call cannot be made without it. `region` is optional here because the
    /// executor falls back to its configured region; the catalog still requires it.
    pub required: bool,
}

/// What the executor knows about one action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActionInfo {
    /// Action name.
    pub name: &'static str,
    /// Accepted parameters; any other parameter is refused.
    pub params: &'static [ParamInfo],
    /// State fields `get_state` can report (filtered to the declared ones per call).
    pub state_fields: &'static [&'static str],
    /// Prechecks implemented for the action.
    pub prechecks: &'static [&'static str],
    /// IAM actions needed by the calls the executor makes for `execute`, `get_state` and
    /// the prechecks.
    pub iam_actions: &'static [&'static str],
    /// The AWS API operations used, in the order execute, state, prechecks (for docs).
    pub api_calls: &'static [&'static str],
}

const fn req(name: &'static str, kind: ParamKind) -> ParamInfo {
    ParamInfo { name, kind, required: true }
}

const fn opt(name: &'static str, kind: ParamKind) -> ParamInfo {
    ParamInfo { name, kind, required: false }
}

const REGION: ParamInfo = opt("region", ParamKind::String);
const INSTANCE: &[ParamInfo] = &[req("instance_id", ParamKind::String), REGION];
const EC2_STATE: &[&str] = &["state", "instance_type"];
const ECS_SERVICE_STATE: &[&str] = &["desired_count", "running_count", "pending_count", "status"];
const LAMBDA_STATE: &[&str] =
    &["state", "last_update_status", "memory_size", "timeout", "runtime", "environment_variables"];
const ROLE_POLICY: &[ParamInfo] =
    &[req("role_name", ParamKind::String), req("policy_arn", ParamKind::String), REGION];

/// Every action the AWS executor implements.
pub const ACTIONS: &[ActionInfo] = &[
    ActionInfo {
        name: "ec2-stop-instance",
        params: INSTANCE,
        state_fields: EC2_STATE,
        prechecks: &["instance-running"],
        iam_actions: &["ec2:StopInstances", "ec2:DescribeInstances"],
        api_calls: &["ec2:StopInstances", "ec2:DescribeInstances"],
    },
    ActionInfo {
        name: "ec2-start-instance",
        params: INSTANCE,
        state_fields: EC2_STATE,
        prechecks: &["instance-stopped"],
        iam_actions: &["ec2:StartInstances", "ec2:DescribeInstances"],
        api_calls: &["ec2:StartInstances", "ec2:DescribeInstances"],
    },
    ActionInfo {
        name: "ec2-reboot-instance",
        params: INSTANCE,
        state_fields: EC2_STATE,
        prechecks: &["instance-running"],
        iam_actions: &["ec2:RebootInstances", "ec2:DescribeInstances"],
        api_calls: &["ec2:RebootInstances", "ec2:DescribeInstances"],
    },
    ActionInfo {
        name: "ec2-terminate-instance",
        params: INSTANCE,
        state_fields: EC2_STATE,
        prechecks: &["instance-exists", "termination-protection-off"],
        iam_actions: &[
            "ec2:TerminateInstances",
            "ec2:DescribeInstances",
            "ec2:DescribeInstanceAttribute",
        ],
        api_calls: &[
            "ec2:TerminateInstances",
            "ec2:DescribeInstances",
            "ec2:DescribeInstanceAttribute",
        ],
    },
    ActionInfo {
        name: "ecs-update-service",
        params: &[
            req("cluster", ParamKind::String),
            req("service", ParamKind::String),
            opt("desired_count", ParamKind::Integer),
            opt("force_new_deployment", ParamKind::Boolean),
            REGION,
        ],
        state_fields: ECS_SERVICE_STATE,
        prechecks: &["service-active"],
        iam_actions: &["ecs:UpdateService", "ecs:DescribeServices"],
        api_calls: &["ecs:UpdateService", "ecs:DescribeServices"],
    },
    ActionInfo {
        name: "ecs-scale-service",
        params: &[
            req("cluster", ParamKind::String),
            req("service", ParamKind::String),
            req("desired_count", ParamKind::Integer),
            REGION,
        ],
        state_fields: ECS_SERVICE_STATE,
        prechecks: &["service-active"],
        iam_actions: &["ecs:UpdateService", "ecs:DescribeServices"],
        api_calls: &["ecs:UpdateService", "ecs:DescribeServices"],
    },
    ActionInfo {
        name: "ecs-stop-task",
        params: &[
            req("cluster", ParamKind::String),
            req("task", ParamKind::String),
            opt("reason", ParamKind::String),
            REGION,
        ],
        state_fields: &["last_status", "desired_status"],
        prechecks: &["task-running"],
        iam_actions: &["ecs:StopTask", "ecs:DescribeTasks"],
        api_calls: &["ecs:StopTask", "ecs:DescribeTasks"],
    },
    ActionInfo {
        name: "lambda-update-function-config",
        params: &[
            req("function_name", ParamKind::String),
            REGION,
            opt("memory_size", ParamKind::Integer),
            opt("timeout", ParamKind::Integer),
            opt("environment_variables", ParamKind::String),
        ],
        state_fields: LAMBDA_STATE,
        prechecks: &["function-exists"],
        iam_actions: &["lambda:UpdateFunctionConfiguration", "lambda:GetFunctionConfiguration"],
        api_calls: &["lambda:UpdateFunctionConfiguration", "lambda:GetFunctionConfiguration"],
    },
    ActionInfo {
        name: "lambda-invoke-function",
        params: &[
            req("function_name", ParamKind::String),
            REGION,
            opt("payload", ParamKind::String),
        ],
        state_fields: LAMBDA_STATE,
        prechecks: &["function-exists"],
        iam_actions: &["lambda:InvokeFunction", "lambda:GetFunction"],
        api_calls: &["lambda:Invoke", "lambda:GetFunction"],
    },
    ActionInfo {
        name: "s3-delete-object",
        params: &[req("bucket", ParamKind::String), req("key", ParamKind::String), REGION],
        state_fields: &["content_length", "content_type", "version_id"],
        prechecks: &["object-exists"],
        iam_actions: &["s3:DeleteObject", "s3:GetObject"],
        api_calls: &["s3:DeleteObject", "s3:HeadObject"],
    },
    ActionInfo {
        name: "s3-put-bucket-policy",
        params: &[req("bucket", ParamKind::String), req("policy", ParamKind::String), REGION],
        state_fields: &["policy"],
        prechecks: &["bucket-exists", "policy-well-formed"],
        iam_actions: &["s3:PutBucketPolicy", "s3:GetBucketPolicy"],
        api_calls: &["s3:PutBucketPolicy", "s3:GetBucketPolicy"],
    },
    ActionInfo {
        name: "iam-attach-role-policy",
        params: ROLE_POLICY,
        state_fields: &["attached_policies"],
        prechecks: &["role-exists", "policy-exists"],
        iam_actions: &["iam:AttachRolePolicy", "iam:ListAttachedRolePolicies", "iam:GetPolicy"],
        api_calls: &["iam:AttachRolePolicy", "iam:ListAttachedRolePolicies", "iam:GetPolicy"],
    },
    ActionInfo {
        name: "iam-detach-role-policy",
        params: ROLE_POLICY,
        state_fields: &["attached_policies"],
        prechecks: &["role-exists", "policy-attached"],
        iam_actions: &["iam:DetachRolePolicy", "iam:ListAttachedRolePolicies"],
        api_calls: &["iam:DetachRolePolicy", "iam:ListAttachedRolePolicies"],
    },
];

/// The table entry for `action`.
pub fn action_info(action: &str) -> Option<&'static ActionInfo> {
    ACTIONS.iter().find(|a| a.name == action)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use agent_safe_registry::{ParamType, Registry};

    use super::*;

    fn catalog() -> Registry {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../catalog/actions");
        Registry::load_dir(&dir).unwrap()
    }

    fn aws_action_names(registry: &Registry) -> BTreeSet<String> {
        registry
            .iter()
            .filter(|a| a.definition().credentials.as_ref().is_some_and(|c| c.kind == "aws"))
            .map(|a| a.name().to_string())
            .collect()
    }

    #[test]
    fn covers_exactly_the_aws_actions_of_the_catalog() {
        let ours: BTreeSet<String> = ACTIONS.iter().map(|a| a.name.to_owned()).collect();
        assert_eq!(ours, aws_action_names(&catalog()));
        assert_eq!(ACTIONS.len(), 13);
    }

    #[test]
    fn accepts_exactly_the_catalog_params() {
        let registry = catalog();
        for info in ACTIONS {
            let def = registry.get(info.name).unwrap().definition();
            let theirs: Vec<(&str, ParamKind, bool)> = def
                .parameters
                .iter()
                .map(|p| {
                    let kind = match p.kind {
                        ParamType::String => ParamKind::String,
                        ParamType::Integer => ParamKind::Integer,
                        ParamType::Boolean => ParamKind::Boolean,
                        other => panic!("{}: no AWS parameter is a {other:?}", info.name),
                    };
                    // `region` is required by the catalog, optional here (config fallback).
                    (p.name.as_str(), kind, p.required && p.name != "region")
                })
                .collect();
            let ours: Vec<(&str, ParamKind, bool)> =
                info.params.iter().map(|p| (p.name, p.kind, p.required)).collect();
            assert_eq!(ours, theirs, "parameters of {}", info.name);
        }
    }

    #[test]
    fn reports_every_declared_state_field_and_precheck() {
        let registry = catalog();
        for info in ACTIONS {
            let def = registry.get(info.name).unwrap().definition();
            for field in &def.state_fields {
                assert!(
                    info.state_fields.contains(&field.name.as_str()),
                    "{}: state field `{}` is declared but not reported",
                    info.name,
                    field.name
                );
            }
            let declared: Vec<&str> = def.prechecks.iter().map(|p| p.name.as_str()).collect();
            assert_eq!(declared, info.prechecks, "prechecks of {}", info.name);
            for (field, source) in &def.rollback_params {
                if let Some(name) = source.source.strip_prefix("before_state.") {
                    assert!(
                        info.state_fields.contains(&name),
                        "{}: rollback param `{field}` reads `{name}`, which is not reported",
                        info.name
                    );
                }
            }
        }
    }

    #[test]
    fn credentials_grant_every_iam_action_the_calls_need() {
        let registry = catalog();
        for info in ACTIONS {
            let def = registry.get(info.name).unwrap().definition();
            let creds = def.credentials.as_ref().unwrap();
            let granted: BTreeSet<&str> = creds
                .fields
                .get("actions")
                .and_then(serde_json::Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(serde_json::Value::as_str)
                .collect();
            let needed: BTreeSet<&str> = info.iam_actions.iter().copied().collect();
            assert_eq!(granted, needed, "credentials.fields.actions of {}", info.name);
            let privileges: BTreeSet<&str> =
                def.required_privileges.iter().map(String::as_str).collect();
            assert_eq!(privileges, needed, "required_privileges of {}", info.name);
        }
    }
}
