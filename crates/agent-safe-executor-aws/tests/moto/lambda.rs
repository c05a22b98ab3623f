//! Lambda actions against moto (which, without Docker, does not run the function code: it
//! echoes the payload; function errors are covered with a replayed response in the unit
//! tests of `src/replay_tests.rs`).

use agent_safe_core::ExecutionStatus;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{Environment, FunctionCode, Runtime};
use serde_json::{Value, json};

use crate::support::{
    ACCOUNT, Moto, REGION, assert_failure, assert_success, moto, output, precheck,
};

const FUNCTION: &str = "report";
const SECRET: &str = "hunter2-very-secret";

async fn function(m: &Moto) {
    let iam = aws_sdk_iam::Client::new(&m.sdk);
    iam.create_role()
        .role_name("lambda-exec")
        .assume_role_policy_document(
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                   "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    aws_sdk_lambda::Client::new(&m.sdk)
        .create_function()
        .function_name(FUNCTION)
        .runtime(Runtime::Python312)
        .role(format!("arn:aws:iam::{ACCOUNT}:role/lambda-exec"))
        .handler("app.handler")
        .code(FunctionCode::builder().zip_file(Blob::new(&b"code"[..])).build())
        .memory_size(128)
        .timeout(3)
        .environment(
            Environment::builder()
                .variables("DB_PASSWORD", SECRET)
                .variables("LOG_LEVEL", "info")
                .build(),
        )
        .send()
        .await
        .unwrap();
}

fn update(extra: Value) -> Value {
    let mut p = json!({"function_name": FUNCTION, "region": REGION});
    p.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    p
}

#[tokio::test]
async fn update_config_reports_digests_never_values_and_rolls_back() {
    let Some(m) = moto("lambda update").await else { return };
    function(&m).await;
    let p = update(json!({"memory_size": 512, "timeout": 30,
                          "environment_variables": r#"{"LOG_LEVEL": "debug"}"#}));
    let run = m.run("lambda-update-function-config", p.clone()).await;
    assert_success(&run);
    assert_eq!(
        run.before.keys().collect::<Vec<_>>(),
        ["memory_size", "timeout", "runtime", "environment_variables"]
    );
    assert_eq!((&run.before["memory_size"], &run.before["timeout"]), (&json!(128), &json!(3)));
    assert_eq!(run.before["runtime"], "python3.12");
    let env: serde_json::Map<String, Value> =
        serde_json::from_str(run.before["environment_variables"].as_str().unwrap()).unwrap();
    assert_eq!(env.keys().collect::<Vec<_>>(), ["DB_PASSWORD", "LOG_LEVEL"]);
    assert!(env["DB_PASSWORD"].as_str().unwrap().starts_with("hmac-sha256:"), "{env:?}");
    for text in [format!("{run:?}"), run.outcome.output.clone()] {
        assert!(!text.contains(SECRET), "a secret value leaked: {text}");
    }
    assert_eq!(output(&run.outcome)["environment_variable_names"], json!(["LOG_LEVEL"]));
    assert_eq!((&run.after["memory_size"], &run.after["timeout"]), (&json!(512), &json!(30)));
    assert_ne!(run.after["environment_variables"], run.before["environment_variables"]);

    // The before-state holds digests, not values: the executor refuses to write them back.
    let (_, params, rollback) = m.rollback("lambda-update-function-config", p, &run).await;
    assert_eq!(params["memory_size"], 128);
    assert_eq!(rollback.outcome.status, ExecutionStatus::Error, "{rollback:?}");
    let error = rollback.outcome.error.as_deref().unwrap();
    assert!(error.contains("holds a redacted value for `DB_PASSWORD`"), "{error}");
    assert_eq!(
        m.state("lambda-update-function-config", update(json!({}))).await.unwrap()["memory_size"],
        512
    );

    // Without the environment the rollback restores memory and timeout.
    let mut params = params;
    params.as_object_mut().unwrap().remove("environment_variables");
    let rollback = m.run("lambda-update-function-config", params).await;
    assert_success(&rollback);
    assert_eq!(
        (&rollback.after["memory_size"], &rollback.after["timeout"]),
        (&json!(128), &json!(3))
    );
}

#[tokio::test]
async fn invoke_returns_the_payload() {
    let Some(m) = moto("lambda invoke").await else { return };
    function(&m).await;
    let p = json!({"function_name": FUNCTION, "region": REGION, "payload": r#"{"day": "monday"}"#});
    let run = m.run("lambda-invoke-function", p).await;
    assert_success(&run);
    assert_eq!(run.before, *json!({"state": "Active"}).as_object().unwrap());
    let out = output(&run.outcome);
    assert_eq!(out["status_code"], 200);
    assert_eq!(out["function_error"], Value::Null);
    // moto echoes the event when it cannot run the code.
    assert_eq!(out["payload"], r#"{"day": "monday"}"#);
    assert_eq!(out["payload_truncated"], false);
}

#[tokio::test]
async fn unknown_function() {
    let Some(m) = moto("lambda not found").await else { return };
    let p = json!({"function_name": "nope", "region": REGION});
    // The blocking precheck stops the runner here. (moto without Docker answers Invoke of a
    // missing function with a canned success, so the Invoke error itself is covered by a
    // replayed AWS response in the unit tests.)
    let checks = m.prechecks("lambda-invoke-function", p.clone()).await;
    let check = precheck(&checks, "function-exists");
    assert_eq!((check.passed, check.message.as_str()), (false, "function `nope` does not exist"));
    let err = m.state("lambda-invoke-function", p).await.unwrap_err();
    assert!(err.starts_with("AWS API error: ResourceNotFoundException: "), "{err}");
    let p = json!({"function_name": "nope", "region": REGION, "memory_size": 256});
    let run = m.run("lambda-update-function-config", p).await;
    assert_failure(&run.outcome, "ResourceNotFoundException");
    assert!(!precheck(&run.prechecks, "function-exists").passed, "{run:?}");
}
