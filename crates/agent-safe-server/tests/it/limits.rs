//! Bad bodies, size and rate limits, slow clients, and graceful shutdown with a request in
//! flight. Timeouts are small configured ones that the client side awaits; nothing sleeps.

use std::time::Duration;

use agent_safe_server::{CallerRateLimit, ServerConfig, ServerEvent};
use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::support::{Env, assert_error, config, restart};

#[tokio::test]
async fn bad_bodies_are_400_413_415_with_the_problem_named() {
    let env = Env::with(ServerConfig { body_limit: 2048, ..config() }).await;
    let token = env.token("deploy-bot", &[]);
    let raw = |body: String, content_type: &'static str| {
        let req = env
            .client
            .post(format!("{}/v1/check", env.base))
            .bearer_auth(&token)
            .header("content-type", content_type)
            .body(body);
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status();
            (status, serde_json::from_str(&resp.text().await.unwrap()).unwrap())
        }
    };
    let malformed = raw("{\"action\": ".to_owned(), "application/json").await;
    assert_error(&malformed, StatusCode::BAD_REQUEST, "malformed_json");

    let mut unknown = restart("dev/test-app");
    unknown["targett"] = json!("x");
    let unknown = env.post("/v1/check", Some(&token), unknown).await;
    assert_error(&unknown, StatusCode::BAD_REQUEST, "invalid_request");
    assert!(
        unknown.1["error"]["message"].as_str().unwrap().contains("unknown field `targett`"),
        "{}",
        unknown.1
    );

    let wrong_type = env.post("/v1/check", Some(&token), json!({"action": ["x"]})).await;
    assert_error(&wrong_type, StatusCode::BAD_REQUEST, "invalid_request");

    let big = json!({"action": "restart-deployment", "params": {"pad": "x".repeat(4096)}});
    assert_error(
        &raw(big.to_string(), "application/json").await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
    );

    let form = raw("action=x".to_owned(), "application/x-www-form-urlencoded").await;
    assert_error(&form, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    assert!(env.decision_events().is_empty(), "no bad request was decided");
}

#[tokio::test]
async fn per_caller_rate_limit() {
    let limit = CallerRateLimit { per_second: 1.0, burst: 2 };
    let env = Env::with(ServerConfig { rate_limit: Some(limit), ..config() }).await;
    let a = env.token("agent-a", &[]);
    let b = env.token("agent-b", &[]);
    for _ in 0..2 {
        assert_eq!(
            env.post("/v1/check", Some(&a), restart("dev/test-app")).await.0,
            StatusCode::OK
        );
    }
    let resp = env
        .client
        .post(format!("{}/v1/check", env.base))
        .bearer_auth(&a)
        .json(&restart("dev/test-app"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp.headers()["retry-after"], "1");
    // Another caller is not affected; the server's clock refills the bucket.
    assert_eq!(env.post("/v1/check", Some(&b), restart("dev/test-app")).await.0, StatusCode::OK);
    env.clock.advance(time::Duration::seconds(1));
    assert_eq!(env.post("/v1/check", Some(&a), restart("dev/test-app")).await.0, StatusCode::OK);
}

/// Sends the headers of a check (and `first` bytes of its body) without the rest.
async fn stalled_request(env: &Env, token: &str, first: usize) -> (TcpStream, Vec<u8>) {
    let body = restart("dev/test-app").to_string().into_bytes();
    let head = format!(
        "POST /v1/check HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    let mut stream = TcpStream::connect(env.addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body[..first]).await.unwrap();
    (stream, body[first..].to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_times_out_and_others_are_served() {
    let cfg = ServerConfig { request_timeout: Duration::from_millis(1000), ..config() };
    let env = Env::with(cfg).await;
    let token = env.token("deploy-bot", &[]);
    let (stream, _rest) = stalled_request(&env, &token, 10).await;
    // Meanwhile another client is served.
    let (status, d) = env.post("/v1/check", Some(&token), restart("dev/test-app")).await;
    assert_eq!((status, d["result"].as_str()), (StatusCode::OK, Some("allow")));
    // The stalled one gets a 408 once the request timeout has passed (awaited, not slept).
    let mut reader = BufReader::new(stream);
    let mut body = Vec::new();
    let status = tokio::time::timeout(
        Duration::from_secs(20),
        agent_safe_server::bench::read_response(&mut reader, &mut body),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(status, 408);
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"]["code"], "request_timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_headers_close_the_connection() {
    let cfg = ServerConfig { header_timeout: Duration::from_millis(300), ..config() };
    let env = Env::with(cfg).await;
    let mut stream = TcpStream::connect(env.addr).await.unwrap();
    stream.write_all(b"POST /v1/check HTTP/1.1\r\nhost: x\r\n").await.unwrap();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut rest)).await;
    // The server gave up on the connection (closed, possibly after a 408).
    assert!(read.is_ok(), "the connection was not closed");
    let text = String::from_utf8_lossy(&rest);
    assert!(text.is_empty() || text.starts_with("HTTP/1.1 408"), "{text}");
    let token = env.token("deploy-bot", &[]);
    assert_eq!(
        env.post("/v1/check", Some(&token), restart("dev/test-app")).await.0,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_requests_in_flight_and_flushes() {
    let mut env = Env::start().await;
    let token = env.token("deploy-bot", &[]);
    let (stream, rest) = stalled_request(&env, &token, 20).await;
    // Shut down only once the server is answering it (headers read, body pending): a
    // connection still in the accept queue or with unread headers is not in flight.
    // `/metrics` counts itself, hence 2.
    loop {
        let url = format!("{}/metrics", env.base);
        let metrics = env.client.get(url).send().await.unwrap().text().await.unwrap();
        if metrics.contains("agent_safe_http_requests_in_flight 2\n") {
            break;
        }
        tokio::task::yield_now().await;
    }
    let (read, mut write) = stream.into_split();
    let events = env.events.clone();
    // Shutdown begins while the request is being received …
    let stopping = {
        let env = &mut env;
        async move { env.stop().await }
    };
    let finish = async move {
        // … wait until the server says it is shutting down, then send the rest of the body.
        while !events.lock().unwrap().contains(&ServerEvent::ShuttingDown) {
            tokio::task::yield_now().await;
        }
        write.write_all(&rest).await.unwrap();
        let mut reader = BufReader::new(read);
        let mut body = Vec::new();
        let status = agent_safe_server::bench::read_response(&mut reader, &mut body).await.unwrap();
        (status, body)
    };
    let ((), (status, body)) = tokio::join!(stopping, finish);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let events = env.events.lock().unwrap().clone();
    assert!(events.contains(&ServerEvent::ShuttingDown), "{events:?}");
    assert!(events.contains(&ServerEvent::Stopped { detail: vec![] }), "{events:?}");
    // The answered decision is in the (synced) log, and the log verifies.
    assert_eq!(env.decision_events().len(), 1);
    assert!(agent_safe_audit::verify(&env.path("audit.jsonl")).unwrap().errors.is_empty());
    // Nothing is accepted any more.
    assert!(TcpStream::connect(env.addr).await.is_err());
}
