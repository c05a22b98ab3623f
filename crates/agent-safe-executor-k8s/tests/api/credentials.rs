//! Credentials: each call's client comes from its own credential (token, kubeconfig path,
//! content or object, in-cluster) or from the executor's settings, with nothing
//! process-wide involved; two calls with different credentials reach different servers
//! with different tokens.

use std::sync::Arc;

use agent_safe_core::{
    ActionCall, Credential, CredentialScope, ExecutionStatus, Executor, ManualClock, Secret,
};
use agent_safe_executor_k8s::{ClientError, K8sExecutor, K8sSettings, client_config};
use agent_safe_testkit::{Reply, TestServer};
use base64::Engine as _;
use serde_json::{Value, json};
use time::macros::datetime;

use crate::harness::{fixture, params};

fn data(name: &str) -> String {
    format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn credential(payload: Value) -> Credential {
    let Value::Object(payload) = payload else { panic!("payload must be an object") };
    Credential {
        credential_id: "cred-0123456789ab".into(),
        kind: "kubernetes".into(),
        payload: Secret::new(payload),
        expires_at: datetime!(2026-02-24 12:05 UTC),
        scope: CredentialScope {
            kind: "kubernetes".into(),
            fields: serde_json::Map::new(),
            ttl: 300,
        },
        ticket_nonce: "nonce".into(),
    }
}

/// The token a config authenticates with (kube serialises it for kubeconfig output).
fn token_of(config: &kube::Config) -> Option<String> {
    serde_json::to_value(&config.auth_info).ok()?["token"].as_str().map(str::to_owned)
}

fn ca_der() -> Vec<u8> {
    let pem = std::fs::read_to_string(data("ca.pem")).unwrap();
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD.decode(b64).unwrap()
}

/// What a config boils down to for these tests.
#[derive(Debug, PartialEq)]
struct Summary {
    url: String,
    token: Option<String>,
    ca: bool,
    insecure: bool,
    namespace: String,
}

fn summary(config: &kube::Config) -> Summary {
    if let Some(roots) = &config.root_cert {
        assert_eq!(roots, &vec![ca_der()], "the CA bundle is the test CA");
    }
    assert!(!config.default_retry, "retries are the executor's and the runner's");
    Summary {
        url: config.cluster_url.to_string(),
        token: token_of(config),
        ca: config.root_cert.is_some(),
        insecure: config.accept_invalid_certs,
        namespace: config.default_namespace.clone(),
    }
}

#[track_caller]
fn check(payload: Option<Value>, settings: K8sSettings, expected: Result<Summary, &str>) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let cred = payload.map(credential);
    let got = rt.block_on(client_config(cred.as_ref(), &settings));
    match (got, expected) {
        (Ok(config), Ok(expected)) => assert_eq!(summary(&config), expected),
        (Err(e), Err(expected)) => assert_eq!(e.to_string(), expected),
        (got, expected) => panic!("got {:?}, expected {expected:?}", got.map(|c| summary(&c))),
    }
}

fn s(url: &str, token: Option<&str>, ca: bool, insecure: bool, namespace: &str) -> Summary {
    Summary {
        url: url.into(),
        token: token.map(str::to_owned),
        ca,
        insecure,
        namespace: namespace.into(),
    }
}

#[test]
fn token_credentials() {
    let pem = std::fs::read_to_string(data("ca.pem")).unwrap();
    let ca_data = base64::engine::general_purpose::STANDARD.encode(&pem);
    let none = K8sSettings::default;
    check(
        Some(json!({"token": "t-1", "server": "https://10.0.0.1:6443", "ca_cert": pem})),
        none(),
        Ok(s("https://10.0.0.1:6443/", Some("t-1"), true, false, "default")),
    );
    check(
        Some(
            json!({"token": "t-2", "host": "https://api.example.com", "certificate_authority_data": ca_data}),
        ),
        none(),
        Ok(s("https://api.example.com/", Some("t-2"), true, false, "default")),
    );
    check(
        Some(json!({"token": "t-3", "server": "https://api.example.com", "verify_ssl": false})),
        none(),
        Ok(s("https://api.example.com/", Some("t-3"), false, true, "default")),
    );
    // No server: the settings' cluster (URL and CA) with this token as the only auth.
    check(
        Some(json!({"token": "t-4"})),
        K8sSettings { kubeconfig: Some(data("kubeconfig.yaml").into()), ..K8sSettings::default() },
        Ok(s("https://prod.k8s.example.com:6443/", Some("t-4"), true, false, "payments")),
    );
}

#[test]
fn kubeconfig_credentials_and_settings() {
    let text = std::fs::read_to_string(data("kubeconfig.yaml")).unwrap();
    let prod = || {
        s(
            "https://prod.k8s.example.com:6443/",
            Some("prod-token-from-kubeconfig"),
            true,
            false,
            "payments",
        )
    };
    let staging = || {
        s(
            "https://staging.k8s.example.com:6443/",
            Some("staging-token-from-kubeconfig"),
            false,
            true,
            "default",
        )
    };
    check(Some(json!({"kubeconfig": data("kubeconfig.yaml")})), K8sSettings::default(), Ok(prod()));
    check(
        Some(json!({"kubeconfig": text.clone(), "context": "staging"})),
        K8sSettings::default(),
        Ok(staging()),
    );
    let object: Value =
        serde_json::to_value(kube::config::Kubeconfig::from_yaml(&text).unwrap()).unwrap();
    check(Some(json!({"kubeconfig": object})), K8sSettings::default(), Ok(prod()));
    // No credential: the executor's settings (the CLI's --kubeconfig and --context).
    let settings = K8sSettings {
        kubeconfig: Some(data("kubeconfig.yaml").into()),
        context: Some("staging".into()),
        in_cluster: false,
    };
    check(None, settings.clone(), Ok(staging()));
    // A credential wins over the settings.
    check(Some(json!({"kubeconfig": data("kubeconfig.yaml")})), settings, Ok(prod()));
}

#[test]
fn unusable_credentials_are_errors() {
    let none = K8sSettings::default;
    let id = "credential `cred-0123456789ab`";
    check(
        Some(json!({})),
        none(),
        Err(&format!("{id}: the payload has none of `kubeconfig`, `token`, `in_cluster`")),
    );
    check(
        Some(json!({"token": "t", "kubeconfig": "/x"})),
        none(),
        Err(&format!("{id}: the payload has `kubeconfig` and `token`; give exactly one")),
    );
    check(
        Some(json!({"token": 7})),
        none(),
        Err(&format!("{id}: `token` must be a non-empty string")),
    );
    check(
        Some(json!({"token": "t", "server": 1})),
        none(),
        Err(&format!("{id}: `server` must be a string")),
    );
    check(
        Some(json!({"in_cluster": false})),
        none(),
        Err(&format!("{id}: `in_cluster` must be `true` when present")),
    );
    check(
        Some(json!({"kubeconfig": 42})),
        none(),
        Err(&format!("{id}: `kubeconfig` must be a path, the file's content or an object")),
    );
    let missing = data("no-such-kubeconfig.yaml");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let err = rt
        .block_on(client_config(Some(&credential(json!({"kubeconfig": missing}))), &none()))
        .unwrap_err();
    assert!(matches!(err, ClientError::Kubeconfig { .. }), "{err:?}");
    assert!(err.to_string().starts_with(&format!("kubeconfig `{missing}`: ")), "{err}");
    let err = rt
        .block_on(client_config(
            Some(&credential(json!({"kubeconfig": data("kubeconfig.yaml"), "context": "qa"}))),
            &none(),
        ))
        .unwrap_err();
    assert!(err.to_string().contains("qa"), "{err}");
}

#[test]
fn secrets_do_not_show_in_debug_output() {
    let cred = credential(json!({"token": "hunter2", "server": "https://x"}));
    assert!(!format!("{cred:?}").contains("hunter2"));
}

/// An API server on the shared loopback test server that answers every request with `body`.
fn api_server(body: Value) -> TestServer {
    TestServer::start(move |_, _| Reply::Json(200, body.clone())).unwrap()
}

#[tokio::test]
async fn each_call_uses_its_own_credential() {
    let executor = K8sExecutor::new(
        K8sSettings::default(),
        Arc::new(ManualClock::new(datetime!(2026-02-24 12:00 UTC))),
    );
    let p = params(json!({"namespace": "prod", "deployment": "web"}));
    let server_a = api_server(fixture("deployment-web.json"));
    let server_b = api_server(fixture("deployment-web.json"));
    let (url_a, url_b) = (server_a.base_url(), server_b.base_url());
    let kubeconfig_b = format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: b\nclusters: [{{name: b, cluster: {{server: \"{url_b}\"}}}}]\ncontexts: [{{name: b, context: {{cluster: b, user: b}}}}]\nusers: [{{name: b, user: {{token: token-b}}}}]\n"
    );
    let cred_a = credential(json!({"token": "token-a", "server": url_a}));
    let cred_b = credential(json!({"kubeconfig": kubeconfig_b}));
    for cred in [&cred_a, &cred_b] {
        let call = ActionCall {
            action: "rollout-status",
            target: "t",
            params: &p,
            credential: Some(cred),
            state_fields: &[],
        };
        let outcome = executor.execute(call).await;
        assert_eq!(outcome.status, ExecutionStatus::Success, "{outcome:?}");
    }
    for (server, token) in [(&server_a, "token-a"), (&server_b, "token-b")] {
        let requests = server.requests();
        assert_eq!(requests.len(), 1, "{requests:?}");
        let r = &requests[0];
        assert_eq!(
            (r.method.as_str(), r.path.as_str()),
            ("GET", "/apis/apps/v1/namespaces/prod/deployments/web"),
            "{r:?}"
        );
        assert_eq!(r.header("authorization"), Some(format!("Bearer {token}").as_str()), "{r:?}");
    }
    assert!(std::env::var_os("KUBECONFIG").is_none(), "nothing set KUBECONFIG");
}

#[tokio::test]
async fn an_unreachable_server_is_an_error() {
    // Bind and drop a listener: nothing listens on that loopback port any more.
    let port =
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
    let executor = K8sExecutor::new(
        K8sSettings::default(),
        Arc::new(ManualClock::new(datetime!(2026-02-24 12:00 UTC))),
    );
    let p = params(json!({"node": "worker-1"}));
    let cred = credential(json!({"token": "t", "server": format!("http://127.0.0.1:{port}")}));
    let call = ActionCall {
        action: "cordon-node",
        target: "t",
        params: &p,
        credential: Some(&cred),
        state_fields: &[],
    };
    let outcome = executor.execute(call).await;
    assert_eq!(outcome.status, ExecutionStatus::Error, "{outcome:?}");
    assert!(outcome.error.unwrap_or_default().starts_with("kubernetes client error: "));
}
