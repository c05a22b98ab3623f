//! The test server against a raw TCP client: replies, recorded requests, hold, close, stop
//! and restart, protocol problems, use from async tests.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::json;

use super::{Reply, TestServer};

const WAIT: Duration = Duration::from_secs(10);

/// Sends `raw` on a new connection and returns everything the server wrote until it closed.
fn exchange(server: &TestServer, raw: &str) -> String {
    exchange_at(server.addr(), raw)
}

/// [`exchange`] with the server at `addr` (from another thread).
fn exchange_at(addr: std::net::SocketAddr, raw: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.write_all(raw.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = stream.read_to_string(&mut out);
    out
}

fn post(path: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
         X-Trace: abc\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[test]
fn records_requests_and_answers_each_as_told() {
    let server = TestServer::start(|n, _| match n {
        0 => Reply::Status(500),
        1 => Reply::Json(201, json!({"ok": true})),
        2 => Reply::Text { status: 200, content_type: "text/xml", body: "<a/>".into() },
        _ => Reply::Headers(307, vec![("location", "http://127.0.0.1:1/elsewhere".to_owned())]),
    })
    .unwrap();
    let first = exchange(&server, &post("/hook?x=1&y=2", r#"{"event":{"event_id":"evt-1"}}"#));
    assert!(first.starts_with("HTTP/1.1 500"), "{first}");
    let second = exchange(&server, &post("/apis/v1", "{}"));
    assert!(second.starts_with("HTTP/1.1 201"), "{second}");
    assert!(second.contains("content-type: application/json"), "{second}");
    assert!(second.ends_with(r#"{"ok":true}"#), "{second}");
    let third = exchange(&server, &post("/", ""));
    assert!(third.contains("content-type: text/xml") && third.ends_with("<a/>"), "{third}");
    let fourth = exchange(&server, &post("/", ""));
    assert!(fourth.starts_with("HTTP/1.1 307"), "{fourth}");
    assert!(fourth.contains("location: http://127.0.0.1:1/elsewhere\r\n"), "{fourth}");

    let requests = server.requests();
    assert_eq!(requests.len(), 4);
    let r = &requests[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/hook?x=1&y=2");
    assert_eq!(r.path_only(), "/hook");
    assert_eq!(r.query(), Some("x=1&y=2"));
    assert_eq!(r.header("x-trace"), Some("abc"));
    assert_eq!(r.event_id().as_deref(), Some("evt-1"));
    assert_eq!(requests[1].query(), None);
    assert_eq!(requests[2].json(), None);
    assert!(server.problems().is_empty(), "{:?}", server.problems());
}

#[test]
fn holds_until_released_and_closes_on_request() {
    let server = TestServer::start(|n, _| if n == 0 { Reply::Hold } else { Reply::Close }).unwrap();
    let held = {
        let addr = server.addr();
        std::thread::spawn(move || exchange_at(addr, &post("/", "")))
    };
    assert!(server.wait_holding(1, WAIT));
    assert!(!server.wait_for(2, Duration::from_millis(50)));
    server.release();
    let answer = held.join().unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let closed = exchange(&server, &post("/", ""));
    assert_eq!(closed, "", "Reply::Close answers nothing");
    assert!(server.problems().is_empty(), "{:?}", server.problems());
}

#[test]
fn stops_refusing_connections_and_restarts_on_the_same_port() {
    let mut server = TestServer::ok().unwrap();
    let addr = server.addr();
    assert!(exchange(&server, &post("/", "")).starts_with("HTTP/1.1 200"));
    server.stop();
    assert!(TcpStream::connect(addr).is_err(), "refused while down");
    server.restart().unwrap();
    assert_eq!(server.addr(), addr);
    assert!(exchange(&server, &post("/", "")).starts_with("HTTP/1.1 200"));
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn a_held_request_is_dropped_when_the_server_stops() {
    let mut server = TestServer::start(|_, _| Reply::Hold).unwrap();
    let held = {
        let addr = server.addr();
        std::thread::spawn(move || exchange_at(addr, &post("/", "")))
    };
    assert!(server.wait_holding(1, WAIT));
    server.stop();
    assert_eq!(held.join().unwrap(), "");
    assert!(server.problems().is_empty(), "{:?}", server.problems());
}

#[test]
fn malformed_requests_are_reported() {
    let server = TestServer::ok().unwrap();
    let _ = exchange(&server, "NOT HTTP AT ALL\r\n\r\n");
    assert!(server.wait_until_problem());
    assert!(server.requests().is_empty());
}

impl TestServer {
    fn wait_until_problem(&self) -> bool {
        self.shared.wait_until(WAIT, |s| !s.problems.is_empty())
    }
}

#[tokio::test]
async fn usable_and_droppable_inside_an_async_test() {
    let server = TestServer::ok().unwrap();
    let addr = server.addr();
    let answer =
        tokio::task::spawn_blocking(move || exchange_at(addr, &post("/", ""))).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    drop(server);
}
