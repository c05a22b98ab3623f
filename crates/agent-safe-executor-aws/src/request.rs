//! Turns an action name and its ticket params into a typed request, refusing unknown
//! parameters, wrong types and out-of-range numbers, so the service modules never see JSON.

use std::collections::BTreeMap;

use agent_safe_core::{Params, Secret};
use serde_json::Value;

use crate::redact::HMAC_PREFIX;
use crate::spec::{ActionInfo, ParamKind};

/// Why the params of a call cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RequestError {
    /// The executor has no mapping for the action.
    #[error("no AWS API mapping for action `{0}`")]
    UnknownAction(String),
    /// A parameter the action does not accept.
    #[error("parameter `{param}` is not accepted by `{action}`")]
    UnknownParam {
        /// Action name.
        action: String,
        /// Parameter name.
        param: String,
    },
    /// A required parameter is missing or null.
    #[error("`{action}` needs parameter `{param}`")]
    Missing {
        /// Action name.
        action: String,
        /// Parameter name.
        param: String,
    },
    /// A parameter of the wrong JSON type or out of range.
    #[error("parameter `{param}` of `{action}` {problem}")]
    Invalid {
        /// Action name.
        action: String,
        /// Parameter name.
        param: String,
        /// What is wrong, e.g. `must be an integer`.
        problem: String,
    },
}

/// An EC2 instance operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ec2Op {
    Stop,
    Start,
    Reboot,
    Terminate,
}

/// A typed request for one of the 13 actions.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Request {
    Ec2 {
        op: Ec2Op,
        instance_id: String,
    },
    /// `ecs-update-service` and `ecs-scale-service`.
    EcsService {
        cluster: String,
        service: String,
        desired_count: Option<i32>,
        force_new_deployment: bool,
    },
    EcsStopTask {
        cluster: String,
        task: String,
        reason: Option<String>,
    },
    LambdaUpdate {
        function_name: String,
        memory_size: Option<i32>,
        timeout: Option<i32>,
        environment: Option<Secret<BTreeMap<String, String>>>,
    },
    LambdaInvoke {
        function_name: String,
        payload: Option<String>,
    },
    S3DeleteObject {
        bucket: String,
        key: String,
    },
    S3PutBucketPolicy {
        bucket: String,
        policy: String,
    },
    IamRolePolicy {
        attach: bool,
        role_name: String,
        policy_arn: String,
    },
}

/// A parsed call: the request and the region from params, if any.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Parsed {
    pub(crate) info: &'static ActionInfo,
    pub(crate) request: Request,
    pub(crate) region: Option<String>,
}

/// Parses `params` for `action`.
pub(crate) fn parse(action: &str, params: &Params) -> Result<Parsed, RequestError> {
    let info = crate::spec::action_info(action)
        .ok_or_else(|| RequestError::UnknownAction(action.to_owned()))?;
    let p = Reader { info, params };
    p.check_known()?;
    let request = match action {
        "ec2-stop-instance" => p.ec2(Ec2Op::Stop)?,
        "ec2-start-instance" => p.ec2(Ec2Op::Start)?,
        "ec2-reboot-instance" => p.ec2(Ec2Op::Reboot)?,
        "ec2-terminate-instance" => p.ec2(Ec2Op::Terminate)?,
        "ecs-update-service" => Request::EcsService {
            cluster: p.string("cluster")?,
            service: p.string("service")?,
            desired_count: p.opt_i32("desired_count")?,
            force_new_deployment: p.opt_bool("force_new_deployment")?.unwrap_or(false),
        },
        "ecs-scale-service" => Request::EcsService {
            cluster: p.string("cluster")?,
            service: p.string("service")?,
            desired_count: Some(
                p.opt_i32("desired_count")?.ok_or_else(|| p.missing("desired_count"))?,
            ),
            force_new_deployment: false,
        },
        "ecs-stop-task" => Request::EcsStopTask {
            cluster: p.string("cluster")?,
            task: p.string("task")?,
            reason: p.opt_string("reason")?.filter(|r| !r.is_empty()),
        },
        "lambda-update-function-config" => Request::LambdaUpdate {
            function_name: p.string("function_name")?,
            memory_size: p.opt_i32("memory_size")?,
            timeout: p.opt_i32("timeout")?,
            environment: p.environment()?,
        },
        "lambda-invoke-function" => Request::LambdaInvoke {
            function_name: p.string("function_name")?,
            payload: p.opt_string("payload")?.filter(|s| !s.is_empty()),
        },
        "s3-delete-object" => {
            Request::S3DeleteObject { bucket: p.string("bucket")?, key: p.string("key")? }
        }
        "s3-put-bucket-policy" => {
            Request::S3PutBucketPolicy { bucket: p.string("bucket")?, policy: p.string("policy")? }
        }
        "iam-attach-role-policy" | "iam-detach-role-policy" => Request::IamRolePolicy {
            attach: action == "iam-attach-role-policy",
            role_name: p.string("role_name")?,
            policy_arn: p.string("policy_arn")?,
        },
        _ => return Err(RequestError::UnknownAction(action.to_owned())),
    };
    Ok(Parsed { info, request, region: p.opt_string("region")?.filter(|r| !r.is_empty()) })
}

struct Reader<'a> {
    info: &'static ActionInfo,
    params: &'a Params,
}

impl Reader<'_> {
    fn check_known(&self) -> Result<(), RequestError> {
        for name in self.params.keys() {
            if !self.info.params.iter().any(|p| p.name == name) {
                return Err(RequestError::UnknownParam {
                    action: self.info.name.to_owned(),
                    param: name.clone(),
                });
            }
        }
        for param in self.info.params.iter().filter(|p| p.required) {
            if self.get(param.name).is_none() {
                return Err(self.missing(param.name));
            }
        }
        Ok(())
    }

    /// The value of `name`, treating JSON null as absent.
    fn get(&self, name: &str) -> Option<&Value> {
        self.params.get(name).filter(|v| !v.is_null())
    }

    fn missing(&self, param: &str) -> RequestError {
        RequestError::Missing { action: self.info.name.to_owned(), param: param.to_owned() }
    }

    fn invalid(&self, param: &str, problem: impl Into<String>) -> RequestError {
        RequestError::Invalid {
            action: self.info.name.to_owned(),
            param: param.to_owned(),
            problem: problem.into(),
        }
    }

    fn kind(&self, name: &str) -> Option<ParamKind> {
        self.info.params.iter().find(|p| p.name == name).map(|p| p.kind)
    }

    fn ec2(&self, op: Ec2Op) -> Result<Request, RequestError> {
        Ok(Request::Ec2 { op, instance_id: self.string("instance_id")? })
    }

    fn string(&self, name: &str) -> Result<String, RequestError> {
        self.opt_string(name)?.ok_or_else(|| self.missing(name))
    }

    fn opt_string(&self, name: &str) -> Result<Option<String>, RequestError> {
        debug_assert_eq!(self.kind(name), Some(ParamKind::String), "{name}");
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(self.invalid(name, "must be a string")),
        }
    }

    fn opt_i32(&self, name: &str) -> Result<Option<i32>, RequestError> {
        debug_assert_eq!(self.kind(name), Some(ParamKind::Integer), "{name}");
        let Some(value) = self.get(name) else { return Ok(None) };
        let int = value.as_i64().or_else(|| {
            // 3.0 is an integer to JSON Schema and to the Python version.
            value.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 2f64.powi(53)).map(|f| f as i64)
        });
        match int {
            Some(i) => i32::try_from(i)
                .map(Some)
                .map_err(|_| self.invalid(name, format!("is out of range: `{i}`"))),
            None => Err(self.invalid(name, "must be an integer")),
        }
    }

    fn opt_bool(&self, name: &str) -> Result<Option<bool>, RequestError> {
        debug_assert_eq!(self.kind(name), Some(ParamKind::Boolean), "{name}");
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(self.invalid(name, "must be a boolean")),
        }
    }

    /// `environment_variables`: a JSON object of strings. Values that are redacted state
    /// (`hmac-sha256:…`) are refused: writing them would replace the function's secrets with
    /// digests, which is what a rollback from a redacted before-state would otherwise do.
    fn environment(&self) -> Result<Option<Secret<BTreeMap<String, String>>>, RequestError> {
        const NAME: &str = "environment_variables";
        let Some(text) = self.opt_string(NAME)? else { return Ok(None) };
        let parsed: Value = serde_json::from_str(&text).map_err(|e| {
            // Never echo the text: it holds secrets.
            self.invalid(NAME, format!("is not valid JSON: {}", e.classify_name()))
        })?;
        let Value::Object(map) = parsed else {
            return Err(self.invalid(NAME, "must be a JSON object of strings"));
        };
        let mut vars = BTreeMap::new();
        for (key, value) in map {
            let Value::String(value) = value else {
                return Err(self.invalid(NAME, format!("has a non-string value for `{key}`")));
            };
            if value.starts_with(HMAC_PREFIX) {
                return Err(self.invalid(
                    NAME,
                    format!(
                        "holds a redacted value for `{key}` (from a captured state), not a real \
                         value; the executor never reports secret values, so a rollback cannot \
                         restore them: pass the real values or leave `{NAME}` out"
                    ),
                ));
            }
            vars.insert(key, value);
        }
        Ok(Some(Secret::new(vars)))
    }
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "i/o error",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "data error",
            serde_json::error::Category::Eof => "unexpected end",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[track_caller]
    fn check(action: &str, params: Value, expected: Result<Request, &str>) {
        let Value::Object(params) = params else { unreachable!() };
        let got = parse(action, &params).map(|p| p.request).map_err(|e| e.to_string());
        match (got, expected) {
            (Ok(got), Ok(want)) => assert_eq!(got, want),
            (Err(got), Err(want)) => assert_eq!(got, want),
            (got, want) => panic!("{action} {params:?}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn parses_every_shape() {
        let id = "i-0123456789abcdef0".to_owned();
        check(
            "ec2-stop-instance",
            json!({"instance_id": id, "region": "eu-west-1"}),
            Ok(Request::Ec2 { op: Ec2Op::Stop, instance_id: id.clone() }),
        );
        check(
            "ec2-terminate-instance",
            json!({"instance_id": id}),
            Ok(Request::Ec2 { op: Ec2Op::Terminate, instance_id: id.clone() }),
        );
        check(
            "ecs-update-service",
            json!({"cluster": "c", "service": "s", "force_new_deployment": true, "region": "us-east-1"}),
            Ok(Request::EcsService {
                cluster: "c".into(),
                service: "s".into(),
                desired_count: None,
                force_new_deployment: true,
            }),
        );
        check(
            "ecs-scale-service",
            json!({"cluster": "c", "service": "s", "desired_count": 3.0, "region": "us-east-1"}),
            Ok(Request::EcsService {
                cluster: "c".into(),
                service: "s".into(),
                desired_count: Some(3),
                force_new_deployment: false,
            }),
        );
        check(
            "ecs-stop-task",
            json!({"cluster": "c", "task": "t", "reason": ""}),
            Ok(Request::EcsStopTask { cluster: "c".into(), task: "t".into(), reason: None }),
        );
        check(
            "lambda-update-function-config",
            json!({"function_name": "f", "environment_variables": "{\"A\": \"1\"}", "timeout": null}),
            Ok(Request::LambdaUpdate {
                function_name: "f".into(),
                memory_size: None,
                timeout: None,
                environment: Some(Secret::new(BTreeMap::from([("A".into(), "1".into())]))),
            }),
        );
        check(
            "lambda-invoke-function",
            json!({"function_name": "f", "payload": ""}),
            Ok(Request::LambdaInvoke { function_name: "f".into(), payload: None }),
        );
        check(
            "iam-detach-role-policy",
            json!({"role_name": "r", "policy_arn": "arn:aws:iam::aws:policy/X", "region": "us-east-1"}),
            Ok(Request::IamRolePolicy {
                attach: false,
                role_name: "r".into(),
                policy_arn: "arn:aws:iam::aws:policy/X".into(),
            }),
        );
    }

    #[test]
    fn refuses_bad_params() {
        check("ec2-hibernate", json!({}), Err("no AWS API mapping for action `ec2-hibernate`"));
        check(
            "ec2-stop-instance",
            json!({"instance_id": "i-1", "force": true}),
            Err("parameter `force` is not accepted by `ec2-stop-instance`"),
        );
        check(
            "ec2-stop-instance",
            json!({"instance_id": null}),
            Err("`ec2-stop-instance` needs parameter `instance_id`"),
        );
        check(
            "ecs-scale-service",
            json!({"cluster": "c", "service": "s", "desired_count": "3"}),
            Err("parameter `desired_count` of `ecs-scale-service` must be an integer"),
        );
        check(
            "ecs-scale-service",
            json!({"cluster": "c", "service": "s", "desired_count": 3_000_000_000_i64}),
            Err("parameter `desired_count` of `ecs-scale-service` is out of range: `3000000000`"),
        );
        check(
            "ecs-scale-service",
            json!({"cluster": "c", "service": "s", "desired_count": 1.5}),
            Err("parameter `desired_count` of `ecs-scale-service` must be an integer"),
        );
        check(
            "ecs-update-service",
            json!({"cluster": "c", "service": "s", "force_new_deployment": "yes"}),
            Err("parameter `force_new_deployment` of `ecs-update-service` must be a boolean"),
        );
        check(
            "s3-delete-object",
            json!({"bucket": 1, "key": "k"}),
            Err("parameter `bucket` of `s3-delete-object` must be a string"),
        );
    }

    #[test]
    fn environment_variables_never_echo_values_and_refuse_redacted_ones() {
        let action = "lambda-update-function-config";
        check(
            action,
            json!({"function_name": "f", "environment_variables": "{\"PASSWORD\": hunter2}"}),
            Err(
                "parameter `environment_variables` of `lambda-update-function-config` is not valid JSON: syntax error",
            ),
        );
        check(
            action,
            json!({"function_name": "f", "environment_variables": "[\"hunter2\"]"}),
            Err(
                "parameter `environment_variables` of `lambda-update-function-config` must be a JSON object of strings",
            ),
        );
        check(
            action,
            json!({"function_name": "f", "environment_variables": "{\"N\": 1}"}),
            Err(
                "parameter `environment_variables` of `lambda-update-function-config` has a non-string value for `N`",
            ),
        );
        let redacted = format!("{{\"PASSWORD\": \"{HMAC_PREFIX}00ff\"}}");
        let err = parse(
            action,
            json!({"function_name": "f", "environment_variables": redacted}).as_object().unwrap(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("holds a redacted value for `PASSWORD`"), "{err}");
    }

    #[test]
    fn region_comes_from_params_when_given() {
        let params = json!({"bucket": "b", "key": "k", "region": "eu-central-1"});
        let parsed = parse("s3-delete-object", params.as_object().unwrap()).unwrap();
        assert_eq!(parsed.region.as_deref(), Some("eu-central-1"));
        let params = json!({"bucket": "b", "key": "k", "region": ""});
        let parsed = parse("s3-delete-object", params.as_object().unwrap()).unwrap();
        assert_eq!(parsed.region, None);
    }
}
