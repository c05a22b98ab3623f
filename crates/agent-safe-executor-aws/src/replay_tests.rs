//! Executor tests with replayed AWS responses, for what moto cannot show: access-denied
//! answers of each protocol, Lambda function errors and oversized payloads, transport
//! failures, and the wire-level details (signing key, region, path-style URLs).

use std::sync::{Arc, Mutex};

use agent_safe_core::{
    ActionCall, Credential, CredentialScope, ExecutionOutcome, ExecutionStatus, Executor, Params,
    PrecheckSpec, Secret,
};
use aws_sdk_ec2::config::SharedHttpClient;
use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use serde_json::{Value, json};

use crate::{AwsExecutor, AwsExecutorConfig, INVOKE_PAYLOAD_CAP};

/// One canned answer: status, headers, body; or a connection failure.
#[derive(Debug, Clone)]
enum Answer {
    Http(u16, Vec<(&'static str, &'static str)>, String),
    Refused,
}

/// A request as sent.
#[derive(Debug, Clone)]
struct Sent {
    uri: String,
    authorization: String,
    body: String,
}

#[derive(Debug, Clone)]
struct Replay {
    answer: Answer,
    sent: Arc<Mutex<Vec<Sent>>>,
}

impl HttpConnector for Replay {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        self.sent.lock().unwrap().push(Sent {
            uri: request.uri().to_owned(),
            authorization: request.headers().get("authorization").unwrap_or_default().to_owned(),
            body: String::from_utf8_lossy(request.body().bytes().unwrap_or_default()).into_owned(),
        });
        HttpConnectorFuture::ready(match &self.answer {
            Answer::Http(status, headers, body) => {
                let mut response = HttpResponse::new(
                    (*status).try_into().unwrap(),
                    ByteStream::from(body.clone().into_bytes()).into_inner(),
                );
                for (k, v) in headers {
                    response.headers_mut().insert(*k, *v);
                }
                Ok(response)
            }
            Answer::Refused => Err(ConnectorError::user("connection refused".into())),
        })
    }
}

impl HttpClient for Replay {
    fn http_connector(
        &self,
        _settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}

struct Harness {
    executor: AwsExecutor,
    sent: Arc<Mutex<Vec<Sent>>>,
}

fn harness(answer: Answer) -> Harness {
    let sent = Arc::new(Mutex::new(Vec::new()));
    let http = SharedHttpClient::new(Replay { answer, sent: sent.clone() });
    let executor = AwsExecutor::with_http_client(
        AwsExecutorConfig {
            region: Some("us-east-1".into()),
            endpoint_url: Some("http://127.0.0.1:9".into()),
            ..AwsExecutorConfig::default()
        },
        http,
    );
    Harness { executor, sent }
}

fn xml(status: u16, body: &str) -> Answer {
    Answer::Http(status, vec![("content-type", "text/xml")], body.to_owned())
}

fn json_answer(status: u16, headers: Vec<(&'static str, &'static str)>, body: Value) -> Answer {
    let mut headers = headers;
    headers.push(("content-type", "application/json"));
    Answer::Http(status, headers, body.to_string())
}

fn credential() -> Credential {
    Credential {
        credential_id: "cred-00000000beef".into(),
        kind: "aws".into(),
        payload: Secret::new(
            json!({"access_key_id": "AKIDREPLAY", "secret_access_key": "s", "session_token": "t"})
                .as_object()
                .unwrap()
                .clone(),
        ),
        expires_at: time::macros::datetime!(2099-01-01 00:00 UTC),
        scope: CredentialScope { kind: "aws".into(), fields: Default::default(), ttl: 300 },
        ticket_nonce: "n".into(),
    }
}

impl Harness {
    async fn execute(&self, action: &str, params: Value) -> ExecutionOutcome {
        let params: Params = params.as_object().unwrap().clone();
        let cred = credential();
        let call = ActionCall {
            action,
            target: "t",
            params: &params,
            credential: Some(&cred),
            state_fields: &[],
        };
        self.executor.execute(call).await
    }

    fn sent(&self) -> Vec<Sent> {
        self.sent.lock().unwrap().clone()
    }
}

#[track_caller]
fn check(outcome: &ExecutionOutcome, status: ExecutionStatus, error: &str) {
    assert_eq!(outcome.status, status, "{outcome:?}");
    assert_eq!(outcome.error.as_deref().unwrap_or_default(), error, "{outcome:?}");
}

const EC2_STOP: &str = "ec2-stop-instance";

fn ec2_params() -> Value {
    json!({"instance_id": "i-0123456789abcdef0", "region": "eu-central-1"})
}

#[tokio::test]
async fn ec2_access_denied_is_a_failure_signed_with_the_ticket_credential() {
    let h = harness(xml(
        403,
        "<Response><Errors><Error><Code>UnauthorizedOperation</Code><Message>You are not \
         authorized to perform this operation.</Message></Error></Errors>\
         <RequestID>r</RequestID></Response>",
    ));
    let outcome = h.execute(EC2_STOP, ec2_params()).await;
    check(
        &outcome,
        ExecutionStatus::Failure,
        "AWS API error: UnauthorizedOperation: You are not authorized to perform this operation.",
    );
    let sent = h.sent();
    assert_eq!(sent.len(), 1, "a 403 is not retried: {sent:?}");
    assert!(
        sent[0].authorization.contains("Credential=AKIDREPLAY/")
            && sent[0].authorization.contains("/eu-central-1/ec2/aws4_request"),
        "signed with the ticket's key for the params' region: {}",
        sent[0].authorization
    );
    assert!(sent[0].body.contains("Action=StopInstances"), "{}", sent[0].body);
    assert!(sent[0].body.contains("InstanceId.1=i-0123456789abcdef0"), "{}", sent[0].body);
}

#[tokio::test]
async fn ecs_access_denied_is_a_failure() {
    let h = harness(json_answer(
        400,
        vec![],
        json!({"__type": "AccessDeniedException", "message": "User is not authorized to perform: ecs:UpdateService"}),
    ));
    let p = json!({"cluster": "c", "service": "s", "desired_count": 1, "region": "us-east-1"});
    let outcome = h.execute("ecs-scale-service", p).await;
    check(
        &outcome,
        ExecutionStatus::Failure,
        "AWS API error: AccessDeniedException: User is not authorized to perform: ecs:UpdateService",
    );
}

#[tokio::test]
async fn lambda_function_error_is_a_failure_with_the_response() {
    let body = json!({"errorMessage": "boom", "errorType": "Exception"});
    let h = harness(json_answer(
        200,
        vec![("x-amz-function-error", "Unhandled"), ("x-amz-executed-version", "$LATEST")],
        body.clone(),
    ));
    let p = json!({"function_name": "f", "region": "us-east-1", "payload": "{\"a\": 1}"});
    let outcome = h.execute("lambda-invoke-function", p).await;
    check(
        &outcome,
        ExecutionStatus::Failure,
        &format!("function `f` failed (`Unhandled`): {body}"),
    );
    let out: Value = serde_json::from_str(&outcome.output).unwrap();
    assert_eq!(out["function_error"], "Unhandled");
    assert_eq!(out["executed_version"], "$LATEST");
    assert_eq!(out["payload"], body.to_string());
    let sent = h.sent();
    assert!(sent[0].uri.ends_with("/2015-03-31/functions/f/invocations"), "{sent:?}");
    assert_eq!(sent[0].body, "{\"a\": 1}");
}

#[tokio::test]
async fn lambda_payload_is_capped() {
    let big = "x".repeat(INVOKE_PAYLOAD_CAP + 10);
    let h = harness(Answer::Http(200, vec![("content-type", "application/json")], big.clone()));
    let outcome = h.execute("lambda-invoke-function", json!({"function_name": "f"})).await;
    assert_eq!(outcome.status, ExecutionStatus::Success, "{outcome:?}");
    let out: Value = serde_json::from_str(&outcome.output).unwrap();
    assert_eq!(out["payload"].as_str().unwrap().len(), INVOKE_PAYLOAD_CAP);
    assert_eq!(out["payload_bytes"], INVOKE_PAYLOAD_CAP + 10);
    assert_eq!(out["payload_truncated"], true);
}

#[tokio::test]
async fn lambda_not_found_is_a_failure() {
    let h = harness(json_answer(
        404,
        vec![("x-amzn-errortype", "ResourceNotFoundException")],
        json!({"Type": "User", "message": "Function not found: arn:aws:lambda:us-east-1:1:function:f"}),
    ));
    let outcome = h.execute("lambda-invoke-function", json!({"function_name": "f"})).await;
    check(
        &outcome,
        ExecutionStatus::Failure,
        "AWS API error: ResourceNotFoundException: Function not found: arn:aws:lambda:us-east-1:1:function:f",
    );
}

#[tokio::test]
async fn s3_uses_path_style_on_a_custom_endpoint_and_a_bare_403_is_a_failure() {
    let h = harness(Answer::Http(403, vec![], String::new()));
    let p = json!({"bucket": "my-bucket", "key": "a/b.txt", "region": "us-east-1"});
    let outcome = h.execute("s3-delete-object", p).await;
    check(&outcome, ExecutionStatus::Failure, "AWS API error: HTTP 403");
    assert!(h.sent()[0].uri.starts_with("http://127.0.0.1:9/my-bucket/a/b.txt"), "{:?}", h.sent());
}

/// What AWS answers where moto cannot: moto enforces S3 bucket policies with a bare 403
/// (no body) and IAM policies not at all.
#[tokio::test]
async fn s3_and_iam_access_denied_are_failures_with_the_aws_code() {
    let s3_denied = "<Error><Code>AccessDenied</Code><Message>Access Denied</Message>\
                     <RequestId>r</RequestId></Error>";
    let policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny",
        "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::my-bucket/*"}]});
    let cases = [
        (
            "s3-delete-object",
            json!({"bucket": "my-bucket", "key": "a/b.txt", "region": "us-east-1"}),
            xml(403, s3_denied),
            "AWS API error: AccessDenied: Access Denied",
        ),
        (
            "s3-put-bucket-policy",
            json!({"bucket": "my-bucket", "policy": policy.to_string(), "region": "us-east-1"}),
            xml(403, s3_denied),
            "AWS API error: AccessDenied: Access Denied",
        ),
        (
            "iam-attach-role-policy",
            json!({"role_name": "r", "policy_arn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}),
            xml(
                403,
                "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>\
                 User: arn:aws:sts::1:assumed-role/agent/n is not authorized to perform: \
                 iam:AttachRolePolicy on resource: role r</Message></Error>\
                 <RequestId>x</RequestId></ErrorResponse>",
            ),
            "AWS API error: AccessDenied: User: arn:aws:sts::1:assumed-role/agent/n is not \
             authorized to perform: iam:AttachRolePolicy on resource: role r",
        ),
    ];
    for (action, params, answer, error) in cases {
        let h = harness(answer);
        let outcome = h.execute(action, params).await;
        check(&outcome, ExecutionStatus::Failure, error);
        assert_eq!(h.sent().len(), 1, "{action}: a 403 is not retried");
    }
}

#[tokio::test]
async fn iam_no_such_entity_is_a_failure() {
    let h = harness(xml(
        404,
        "<ErrorResponse><Error><Type>Sender</Type><Code>NoSuchEntity</Code><Message>The role \
         with name r cannot be found.</Message></Error><RequestId>x</RequestId></ErrorResponse>",
    ));
    let p = json!({"role_name": "r", "policy_arn": "arn:aws:iam::aws:policy/ReadOnlyAccess"});
    let outcome = h.execute("iam-detach-role-policy", p).await;
    check(
        &outcome,
        ExecutionStatus::Failure,
        "AWS API error: NoSuchEntity: The role with name r cannot be found.",
    );
}

#[tokio::test]
async fn a_transport_failure_is_an_error() {
    let h = harness(Answer::Refused);
    let outcome = h.execute(EC2_STOP, ec2_params()).await;
    assert_eq!(outcome.status, ExecutionStatus::Error, "{outcome:?}");
    let error = outcome.error.unwrap();
    assert!(
        error.starts_with("AWS executor error: ") && error.contains("connection refused"),
        "{error}"
    );
}

#[tokio::test]
async fn refusals_before_any_request() {
    let h = harness(Answer::Refused);
    check(
        &h.execute("ec2-hibernate-instance", json!({})).await,
        ExecutionStatus::Error,
        "no AWS API mapping for action `ec2-hibernate-instance`",
    );
    check(
        &h.execute(EC2_STOP, json!({"instance_id": "i-1", "extra": 1})).await,
        ExecutionStatus::Error,
        "parameter `extra` is not accepted by `ec2-stop-instance`",
    );
    let p = json!({"bucket": "b", "policy": "{\"Statement\": []}"});
    check(
        &h.execute("s3-put-bucket-policy", p).await,
        ExecutionStatus::Error,
        "the bucket policy's `Statement` must be an object or a non-empty list of objects",
    );
    assert!(h.sent().is_empty(), "{:?}", h.sent());
}

#[tokio::test]
async fn a_wrong_credential_is_an_error_and_never_a_fallback() {
    let h = harness(Answer::Refused);
    let params: Params = ec2_params().as_object().unwrap().clone();
    let mut cred = credential();
    cred.payload = Secret::new(json!({"token": "t"}).as_object().unwrap().clone());
    let fields = ["state".to_owned()];
    let call = ActionCall {
        action: EC2_STOP,
        target: "t",
        params: &params,
        credential: Some(&cred),
        state_fields: &fields,
    };
    let outcome = h.executor.execute(call).await;
    assert_eq!(outcome.status, ExecutionStatus::Error);
    assert!(outcome.error.unwrap().contains("credential `cred-00000000beef` cannot be used"));
    let err = h.executor.get_state(call).await.unwrap_err();
    assert!(err.message.contains("cannot be used"), "{err}");
    let specs = [PrecheckSpec {
        name: "instance-running".into(),
        description: String::new(),
        blocking: false,
    }];
    let results = h.executor.run_prechecks(call, &specs).await;
    assert_eq!(results.len(), 1);
    assert!(!results[0].passed && results[0].advisory, "{results:?}");
    assert!(results[0].message.starts_with("precheck could not run: "), "{results:?}");
    assert!(h.sent().is_empty(), "nothing sent: {:?}", h.sent());
}

#[tokio::test]
async fn unknown_prechecks_fail_and_state_keeps_declared_fields_in_order() {
    let h = harness(xml(
        200,
        "<DescribeInstancesResponse><reservationSet><item><instancesSet><item>\
         <instanceId>i-0123456789abcdef0</instanceId><instanceType>t3.micro</instanceType>\
         <instanceState><code>16</code><name>running</name></instanceState>\
         </item></instancesSet></item></reservationSet></DescribeInstancesResponse>",
    ));
    let params: Params = ec2_params().as_object().unwrap().clone();
    let cred = credential();
    let fields = ["instance_type".to_owned(), "undeclared".to_owned(), "state".to_owned()];
    let call = ActionCall {
        action: EC2_STOP,
        target: "t",
        params: &params,
        credential: Some(&cred),
        state_fields: &fields,
    };
    let state = h.executor.get_state(call).await.unwrap();
    assert_eq!(Value::Object(state), json!({"instance_type": "t3.micro", "state": "running"}));
    assert_eq!(
        serde_json::to_string(&h.executor.get_state(call).await.unwrap()).unwrap(),
        r#"{"instance_type":"t3.micro","state":"running"}"#
    );
    let specs = [
        PrecheckSpec {
            name: "instance-running".into(),
            description: String::new(),
            blocking: true,
        },
        PrecheckSpec {
            name: "instance-stopped".into(),
            description: String::new(),
            blocking: true,
        },
    ];
    let results = h.executor.run_prechecks(call, &specs).await;
    assert!(results[0].passed && !results[0].advisory, "{results:?}");
    assert_eq!(results[0].message, "instance `i-0123456789abcdef0` is running");
    assert!(!results[1].passed, "{results:?}");
    assert_eq!(
        results[1].message,
        "the aws executor has no precheck `instance-stopped` for `ec2-stop-instance`"
    );
    assert_eq!(h.executor.kind(), "aws");
}
