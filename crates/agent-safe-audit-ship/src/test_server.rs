//! A tiny HTTP/1.1 server on 127.0.0.1 for shipping tests (std threads, no dependencies):
//! records every request, answers as the test says, holds answers until released, goes down
//! and comes back on the same port. Not part of the API.

use std::io::{self, BufRead as _, BufReader, Read as _, Write as _};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How to answer one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// Answer with this status at once.
    Status(u16),
    /// Answer 200 once [`TestServer::release`] is called (never, if the client gives up).
    Hold,
    /// Close the connection without answering.
    Close,
}

/// One request received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `POST`, …
    pub method: String,
    /// The path and query.
    pub path: String,
    /// Headers, names lowercased, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: String,
}

impl Request {
    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_str(&self.body).ok()
    }

    /// `event.event_id` of a webhook shipment.
    pub fn event_id(&self) -> Option<String> {
        self.json()?.get("event")?.get("event_id")?.as_str().map(str::to_owned)
    }
}

type ReplyFn = dyn Fn(usize, &Request) -> Reply + Send + Sync;

struct Inner {
    state: Mutex<State>,
    changed: Condvar,
    reply: Box<ReplyFn>,
}

#[derive(Default)]
struct State {
    requests: Vec<Request>,
    released: bool,
    up: bool,
    holding: usize,
    conns: Vec<TcpStream>,
}

/// The server. Stopped on drop.
pub struct TestServer {
    port: u16,
    inner: Arc<Inner>,
    accept: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer").field("port", &self.port).finish_non_exhaustive()
    }
}

fn lock(inner: &Inner) -> MutexGuard<'_, State> {
    inner.state.lock().unwrap_or_else(PoisonError::into_inner)
}

impl TestServer {
    /// A server on a free port answering request `n` (from 0) as `reply` says.
    pub fn start(
        reply: impl Fn(usize, &Request) -> Reply + Send + Sync + 'static,
    ) -> io::Result<TestServer> {
        let inner = Arc::new(Inner {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            reply: Box::new(reply),
        });
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let mut server = TestServer { port, inner, accept: None };
        server.serve(listener);
        Ok(server)
    }

    /// A server that answers 200 to everything.
    pub fn ok() -> io::Result<TestServer> {
        Self::start(|_, _| Reply::Status(200))
    }

    /// `http://127.0.0.1:<port>/hook`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.inner).requests.clone()
    }

    /// Waits until `n` requests have arrived, at most `timeout`.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> bool {
        self.wait_until(timeout, |s| s.requests.len() >= n)
    }

    /// Waits until `n` requests are being held, at most `timeout`.
    pub fn wait_holding(&self, n: usize, timeout: Duration) -> bool {
        self.wait_until(timeout, |s| s.holding >= n)
    }

    fn wait_until(&self, timeout: Duration, done: impl Fn(&State) -> bool) -> bool {
        let deadline = Instant::now().checked_add(timeout).unwrap_or_else(Instant::now);
        let mut state = lock(&self.inner);
        while !done(&state) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            state = match self.inner.changed.wait_timeout(state, left) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
        true
    }

    /// Answers held requests (and, from now on, [`Reply::Hold`] answers at once).
    pub fn release(&self) {
        lock(&self.inner).released = true;
        self.inner.changed.notify_all();
    }

    /// Goes down: closes the listener and every connection (connections are refused).
    pub fn stop(&mut self) {
        let conns = {
            let mut state = lock(&self.inner);
            state.up = false;
            std::mem::take(&mut state.conns)
        };
        self.inner.changed.notify_all();
        for c in conns {
            let _ = c.shutdown(Shutdown::Both);
        }
        // Wake the accept loop so it sees `up == false` and drops the listener.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }

    /// Comes back up on the same port.
    pub fn restart(&mut self) -> io::Result<()> {
        let listener = TcpListener::bind(("127.0.0.1", self.port))?;
        self.serve(listener);
        Ok(())
    }

    fn serve(&mut self, listener: TcpListener) {
        lock(&self.inner).up = true;
        let inner = self.inner.clone();
        self.accept = Some(std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let mut state = lock(&inner);
                if !state.up {
                    return;
                }
                if let Ok(c) = stream.try_clone() {
                    state.conns.push(c);
                }
                drop(state);
                let inner = inner.clone();
                std::thread::spawn(move || connection(&inner, stream));
            }
        }));
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn connection(inner: &Inner, stream: TcpStream) {
    let Ok(mut out) = stream.try_clone() else { return };
    let mut reader = BufReader::new(stream);
    while let Some(request) = read_request(&mut reader) {
        let reply = {
            let mut state = lock(inner);
            let n = state.requests.len();
            state.requests.push(request.clone());
            drop(state);
            inner.changed.notify_all();
            (inner.reply)(n, &request)
        };
        let status = match reply {
            Reply::Status(code) => code,
            Reply::Close => {
                let _ = out.shutdown(Shutdown::Both);
                return;
            }
            Reply::Hold => {
                let mut state = lock(inner);
                state.holding += 1;
                inner.changed.notify_all();
                while !state.released && state.up {
                    state = inner.changed.wait(state).unwrap_or_else(PoisonError::into_inner);
                }
                state.holding -= 1;
                let up = state.up;
                drop(state);
                if !up {
                    return;
                }
                200
            }
        };
        let answer = format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n");
        if out.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut headers = Vec::new();
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (name, value) = h.split_once(':')?;
        let name = name.trim().to_ascii_lowercase();
        let value = value.trim().to_owned();
        if name == "content-length" {
            length = value.parse().ok()?;
        }
        headers.push((name, value));
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).ok()?;
    Some(Request { method, path, headers, body: String::from_utf8_lossy(&body).into_owned() })
}
