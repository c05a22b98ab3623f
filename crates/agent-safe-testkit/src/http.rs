//! [`TestServer`]: a loopback HTTP/1.1 server (hyper) that plays a remote service in tests.

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpSocket};
use tokio::runtime::Runtime;
use tokio::sync::watch;

/// How long [`TestServer::stop`] waits for the listener and the connections to close.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// How to answer one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// This status with an empty body, at once.
    Status(u16),
    /// This status with a JSON body (`content-type: application/json`).
    Json(u16, serde_json::Value),
    /// This status with a body of this content type.
    Text {
        /// The status.
        status: u16,
        /// The `content-type` header.
        content_type: &'static str,
        /// The body.
        body: String,
    },
    /// This status with an empty body and these headers (for example a redirect's `location`).
    Headers(u16, Vec<(&'static str, String)>),
    /// 200 once [`TestServer::release`] is called (never, if the server stops first: the
    /// connection is then closed without an answer).
    Hold,
    /// Close the connection without answering.
    Close,
}

/// One request the server received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `POST`, …
    pub method: String,
    /// The path and query, as sent.
    pub path: String,
    /// Headers, names lowercased, in order.
    pub headers: Vec<(String, String)>,
    /// The body (invalid UTF-8 replaced).
    pub body: String,
}

impl Request {
    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The path without the query.
    pub fn path_only(&self) -> &str {
        self.path.split_once('?').map_or(self.path.as_str(), |(p, _)| p)
    }

    /// The raw query string; `None` without a `?`.
    pub fn query(&self) -> Option<&str> {
        self.path.split_once('?').map(|(_, q)| q)
    }

    /// The body as JSON; `None` when it is not JSON (or empty).
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_str(&self.body).ok()
    }

    /// `event.event_id` of an audit webhook shipment.
    pub fn event_id(&self) -> Option<String> {
        self.json()?.get("event")?.get("event_id")?.as_str().map(str::to_owned)
    }
}

type ReplyFn = dyn Fn(usize, &Request) -> Reply + Send + Sync;

/// What the test thread and the server's tasks share.
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    reply: Box<ReplyFn>,
    released: watch::Sender<bool>,
}

#[derive(Default)]
struct State {
    requests: Vec<Request>,
    holding: usize,
    connections: usize,
    listening: bool,
    problems: Vec<String>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn update(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.lock());
        self.changed.notify_all();
    }

    /// Waits until `done` holds, at most `timeout`; whether it held.
    fn wait_until(&self, timeout: Duration, done: impl Fn(&State) -> bool) -> bool {
        let deadline = Instant::now().checked_add(timeout).unwrap_or_else(Instant::now);
        let mut state = self.lock();
        while !done(&state) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            state = match self.changed.wait_timeout(state, left) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
        true
    }
}

/// The error a connection is closed with for [`Reply::Close`] or a stop during [`Reply::Hold`].
#[derive(Debug)]
struct Closed;

impl fmt::Display for Closed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("closed without an answer")
    }
}

impl std::error::Error for Closed {}

/// The server: on 127.0.0.1, a free port, until [`stop`](Self::stop) or drop.
pub struct TestServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    /// Set to `true` to stop the current listener and its connections.
    stop: watch::Sender<bool>,
    runtime: Option<Runtime>,
}

impl fmt::Debug for TestServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestServer").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl TestServer {
    /// A server answering request `n` (counted from 0 over the server's life) as `reply` says.
    pub fn start(
        reply: impl Fn(usize, &Request) -> Reply + Send + Sync + 'static,
    ) -> io::Result<TestServer> {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            reply: Box::new(reply),
            released: watch::Sender::new(false),
        });
        let (stop, _) = watch::channel(false);
        let mut server = TestServer {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            shared,
            stop,
            runtime: Some(runtime),
        };
        server.listen()?;
        Ok(server)
    }

    /// A server that answers 200 to everything.
    pub fn ok() -> io::Result<TestServer> {
        Self::start(|_, _| Reply::Status(200))
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:<port>/hook` (a webhook URL).
    pub fn url(&self) -> String {
        format!("{}/hook", self.base_url())
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.lock().requests.clone()
    }

    /// Connections that broke HTTP/1.1 (a malformed request, an error of the server itself);
    /// a test that plays a well-behaved service asserts there are none.
    pub fn problems(&self) -> Vec<String> {
        self.shared.lock().problems.clone()
    }

    /// Waits until `n` requests have arrived, at most `timeout`.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> bool {
        self.shared.wait_until(timeout, |s| s.requests.len() >= n)
    }

    /// Waits until `n` requests are being held, at most `timeout`.
    pub fn wait_holding(&self, n: usize, timeout: Duration) -> bool {
        self.shared.wait_until(timeout, |s| s.holding >= n)
    }

    /// Answers held requests (and, from now on, [`Reply::Hold`] answers at once).
    pub fn release(&self) {
        self.shared.released.send_replace(true);
    }

    /// Goes down: closes the listener and every connection (new connections are refused,
    /// held requests are never answered). Returns once they are closed.
    pub fn stop(&mut self) {
        self.stop.send_replace(true);
        let closed = self.shared.wait_until(STOP_TIMEOUT, |s| !s.listening && s.connections == 0);
        if !closed {
            self.shared.update(|s| s.problems.push("stop: connections still open".to_owned()));
        }
    }

    /// Comes back up on the same port.
    pub fn restart(&mut self) -> io::Result<()> {
        self.stop();
        self.listen()
    }

    /// Binds (the same port after the first time) and starts accepting.
    fn listen(&mut self) -> io::Result<()> {
        let Some(runtime) = &self.runtime else {
            return Err(io::Error::other("the test server is shut down"));
        };
        let _entered = runtime.enter();
        let socket = TcpSocket::new_v4()?;
        socket.set_reuseaddr(true)?;
        socket.bind(self.addr)?;
        let listener = socket.listen(1024)?;
        self.addr = listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        self.stop = stop;
        self.shared.update(|s| s.listening = true);
        runtime.spawn(accept(listener, self.shared.clone(), stopped));
        Ok(())
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
        // Usable from async tests too (dropping a runtime there would panic).
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

async fn accept(listener: TcpListener, shared: Arc<Shared>, stopped: watch::Receiver<bool>) {
    let mut stop = stopped.clone();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    shared.update(|s| s.connections += 1);
                    tokio::spawn(connection(stream, shared.clone(), stopped.clone()));
                }
                Err(e) => shared.update(|s| s.problems.push(format!("accept: {e}"))),
            },
            _ = stop.wait_for(|stop| *stop) => break,
        }
    }
    drop(listener);
    shared.update(|s| s.listening = false);
}

async fn connection(
    stream: tokio::net::TcpStream,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
) {
    let service = {
        let shared = shared.clone();
        let stopped = stopped.clone();
        service_fn(move |request| answer(request, shared.clone(), stopped.clone()))
    };
    let serving = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        served = serving => {
            if let Err(e) = served
                && !closed_by_us(&e)
                && (e.is_parse() || e.is_user())
            {
                shared.update(|s| s.problems.push(format!("connection: {e}")));
            }
        }
        // Dropping the connection closes the socket.
        _ = stopped.wait_for(|stop| *stop) => {}
    }
    shared.update(|s| s.connections -= 1);
}

fn closed_by_us(e: &hyper::Error) -> bool {
    std::error::Error::source(e).is_some_and(|s| s.is::<Closed>())
}

async fn answer(
    request: hyper::Request<Incoming>,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
) -> Result<Response<Full<Bytes>>, Closed> {
    let (head, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Err(Closed),
    };
    let request = Request {
        method: head.method.to_string(),
        path: head.uri.path_and_query().map_or_else(|| head.uri.to_string(), ToString::to_string),
        headers: head
            .headers
            .iter()
            .map(|(n, v)| {
                (n.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned())
            })
            .collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let n = {
        let mut state = shared.lock();
        state.requests.push(request.clone());
        state.requests.len() - 1
    };
    shared.changed.notify_all();
    match (shared.reply)(n, &request) {
        Reply::Status(status) => Ok(response(status, None, Bytes::new())),
        Reply::Json(status, value) => {
            Ok(response(status, Some("application/json"), Bytes::from(value.to_string())))
        }
        Reply::Text { status, content_type, body } => {
            Ok(response(status, Some(content_type), Bytes::from(body)))
        }
        Reply::Headers(status, headers) => {
            let mut response = response(status, None, Bytes::new());
            for (name, value) in headers {
                if let Ok(value) = value.parse() {
                    response.headers_mut().append(name, value);
                }
            }
            Ok(response)
        }
        Reply::Close => Err(Closed),
        Reply::Hold => {
            shared.update(|s| s.holding += 1);
            let mut released = shared.released.subscribe();
            let outcome = tokio::select! {
                _ = released.wait_for(|r| *r) => Ok(response(200, None, Bytes::new())),
                _ = stopped.wait_for(|stop| *stop) => Err(Closed),
            };
            shared.update(|s| s.holding -= 1);
            outcome
        }
    }
}

fn response(status: u16, content_type: Option<&str>, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::IM_A_TEAPOT);
    if let Some(content_type) = content_type
        && let Ok(value) = content_type.parse()
    {
        response.headers_mut().insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}

#[cfg(test)]
mod tests;
