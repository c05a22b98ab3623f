//! Lambda: update a function's memory, timeout and environment; invoke it synchronously and
//! return its (size-capped) response and function error; its state with environment
//! variable values replaced by digests; the `function-exists` precheck.

use std::collections::{BTreeMap, HashMap};

use agent_safe_core::{ExecutionOutcome, Secret, StateMap};
use aws_sdk_lambda::Client;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{Environment, EnvironmentResponse, LastUpdateStatus, Runtime, State};
use serde_json::{Value, json};

use crate::error::CallError;
use crate::redact::Redactor;

/// At most this many bytes of an invocation's response go into the output.
pub const INVOKE_PAYLOAD_CAP: usize = 4096;

/// The configuration fields the three Lambda outputs share.
struct FnConfig<'a> {
    state: Option<&'a State>,
    last_update_status: Option<&'a LastUpdateStatus>,
    memory_size: Option<i32>,
    timeout: Option<i32>,
    runtime: Option<&'a Runtime>,
    environment: Option<&'a EnvironmentResponse>,
}

macro_rules! fn_config {
    ($c:expr) => {
        FnConfig {
            state: $c.state(),
            last_update_status: $c.last_update_status(),
            memory_size: $c.memory_size(),
            timeout: $c.timeout(),
            runtime: $c.runtime(),
            environment: $c.environment(),
        }
    };
}

impl FnConfig<'_> {
    fn vars(&self) -> Option<&HashMap<String, String>> {
        self.environment.and_then(EnvironmentResponse::variables)
    }

    fn state_map(&self, redactor: &Redactor) -> StateMap {
        let mut state = StateMap::new();
        state.insert("state".into(), self.state.map(State::as_str).into());
        state.insert(
            "last_update_status".into(),
            self.last_update_status.map(LastUpdateStatus::as_str).into(),
        );
        state.insert("memory_size".into(), self.memory_size.into());
        state.insert("timeout".into(), self.timeout.into());
        state.insert("runtime".into(), self.runtime.map(Runtime::as_str).into());
        state.insert("environment_variables".into(), redactor.environment(self.vars()).into());
        state
    }
}

/// `UpdateFunctionConfiguration`. The output lists environment variable names only.
pub(crate) async fn update_config(
    client: &Client,
    function_name: &str,
    memory_size: Option<i32>,
    timeout: Option<i32>,
    environment: Option<&Secret<BTreeMap<String, String>>>,
) -> Result<Value, CallError> {
    let environment = environment.map(|vars| {
        let vars: HashMap<String, String> =
            vars.expose().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        Environment::builder().set_variables(Some(vars)).build()
    });
    let out = client
        .update_function_configuration()
        .function_name(function_name)
        .set_memory_size(memory_size)
        .set_timeout(timeout)
        .set_environment(environment)
        .send()
        .await?;
    let config = fn_config!(out);
    let mut names: Vec<&str> =
        config.vars().into_iter().flatten().map(|(k, _)| k.as_str()).collect();
    names.sort_unstable();
    Ok(json!({
        "function_name": function_name,
        "memory_size": config.memory_size,
        "timeout": config.timeout,
        "last_update_status": config.last_update_status.map(LastUpdateStatus::as_str),
        "environment_variable_names": names,
    }))
}

/// Synchronous `Invoke`. A function error (the function ran and failed) is a FAILURE whose
/// output still carries the response.
pub(crate) async fn invoke(
    client: &Client,
    function_name: &str,
    payload: Option<&str>,
) -> Result<ExecutionOutcome, CallError> {
    let out = client
        .invoke()
        .function_name(function_name)
        .set_payload(payload.map(|p| Blob::new(p.as_bytes())))
        .send()
        .await?;
    let bytes = out.payload().map(Blob::as_ref).unwrap_or_default();
    let (shown, truncated) = cap(bytes, INVOKE_PAYLOAD_CAP);
    let output = json!({
        "function_name": function_name,
        "status_code": out.status_code(),
        "executed_version": out.executed_version(),
        "function_error": out.function_error(),
        "payload": shown,
        "payload_bytes": bytes.len(),
        "payload_truncated": truncated,
    })
    .to_string();
    Ok(match out.function_error() {
        None => ExecutionOutcome::success(output),
        Some(kind) => ExecutionOutcome {
            output,
            ..ExecutionOutcome::failure(format!(
                "function `{function_name}` failed (`{kind}`): {shown}"
            ))
        },
    })
}

/// The first `max` bytes of `bytes` as text (cut at a character boundary), and whether
/// anything was cut.
fn cap(bytes: &[u8], max: usize) -> (String, bool) {
    let text = String::from_utf8_lossy(bytes);
    if text.len() <= max {
        return (text.into_owned(), false);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (text[..end].to_owned(), true)
}

/// State via `GetFunctionConfiguration` (what `lambda-update-function-config` may call).
pub(crate) async fn state_from_configuration(
    client: &Client,
    function_name: &str,
    redactor: &Redactor,
) -> Result<StateMap, CallError> {
    let out = client.get_function_configuration().function_name(function_name).send().await?;
    Ok(fn_config!(out).state_map(redactor))
}

/// State via `GetFunction` (what `lambda-invoke-function` may call).
pub(crate) async fn state_from_function(
    client: &Client,
    function_name: &str,
    redactor: &Redactor,
) -> Result<StateMap, CallError> {
    let out = client.get_function().function_name(function_name).send().await?;
    let config = out.configuration().ok_or_else(|| {
        CallError::NotFound(format!("Lambda function `{function_name}` has no configuration"))
    })?;
    Ok(fn_config!(config).state_map(redactor))
}

/// `function-exists`: the function exists, is `Active` and no update is in progress.
pub(crate) fn function_exists(
    function_name: &str,
    state: Result<StateMap, CallError>,
) -> Result<(bool, String), CallError> {
    match state {
        Ok(s) => {
            // Functions created before states existed report none: they are active.
            let st = s.get("state").and_then(Value::as_str).unwrap_or("Active");
            let update = s.get("last_update_status").and_then(Value::as_str);
            let ok = st == "Active" && update != Some("InProgress");
            let mut message = format!("function `{function_name}` is {st}");
            if let Some(update) = update {
                message.push_str(&format!(", last update {update}"));
            }
            Ok((ok, message))
        }
        Err(e) if e.is_not_found() => {
            Ok((false, format!("function `{function_name}` does not exist")))
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check_cap(input: &str, max: usize, expected: (&str, bool)) {
        let (text, cut) = cap(input.as_bytes(), max);
        assert_eq!((text.as_str(), cut), expected);
    }

    #[test]
    fn caps_at_a_character_boundary() {
        check_cap("hello", 10, ("hello", false));
        check_cap("hello", 5, ("hello", false));
        check_cap("hello", 4, ("hell", true));
        check_cap("héllo", 2, ("h", true));
        check_cap("", 0, ("", false));
    }

    #[track_caller]
    fn check_exists(state: Value, expected: (bool, &str)) {
        let state = state.as_object().unwrap().clone();
        let (ok, message) = function_exists("f", Ok(state)).unwrap();
        assert_eq!((ok, message.as_str()), expected);
    }

    #[test]
    fn function_exists_wants_active_and_no_update_in_progress() {
        check_exists(json!({"state": "Active"}), (true, "function `f` is Active"));
        check_exists(json!({}), (true, "function `f` is Active"));
        check_exists(json!({"state": "Pending"}), (false, "function `f` is Pending"));
        check_exists(
            json!({"state": "Active", "last_update_status": "InProgress"}),
            (false, "function `f` is Active, last update InProgress"),
        );
        check_exists(
            json!({"state": "Active", "last_update_status": "Successful"}),
            (true, "function `f` is Active, last update Successful"),
        );
        let gone = CallError::Service {
            code: "ResourceNotFoundException".into(),
            message: "Function not found".into(),
        };
        assert_eq!(
            function_exists("f", Err(gone)).unwrap(),
            (false, "function `f` does not exist".to_owned())
        );
    }
}
