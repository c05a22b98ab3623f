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
