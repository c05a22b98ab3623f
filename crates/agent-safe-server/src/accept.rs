//! The accept loop of `agent-safe serve`: accepts TCP connections until shutdown, serves each
//! over HTTP/1.1 (after a TLS handshake bounded by the header timeout when TLS is configured)
//! with the router, every request tagged with the connection's peer address, and every
//! connection watched for graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::response::Response;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// The peer address of a connection, as a request extension.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer(pub(crate) SocketAddr);

/// Serves one connection's requests with the router, each tagged with the peer address.
#[derive(Debug, Clone)]
pub struct PeerService {
    router: Router,
    peer: SocketAddr,
}

impl PeerService {
    /// The router, for a connection from `peer`.
    pub fn new(router: Router, peer: SocketAddr) -> Self {
        Self { router, peer }
    }
}

impl hyper::service::Service<hyper::Request<hyper::body::Incoming>> for PeerService {
    type Response = Response;
    type Error = Infallible;
    type Future = axum::routing::future::RouteFuture<Infallible>;

    fn call(&self, mut req: hyper::Request<hyper::body::Incoming>) -> Self::Future {
        req.extensions_mut().insert(Peer(self.peer));
        tower::Service::call(&mut self.router.clone(), req.map(axum::body::Body::new))
    }
}

/// What the accept loop serves connections with.
pub(crate) struct Connections {
    /// The API.
    pub(crate) router: Router,
    /// TLS, when configured.
    pub(crate) tls: Option<Arc<rustls::ServerConfig>>,
    /// The header-read timeout, which also bounds the TLS handshake.
    pub(crate) header_timeout: Duration,
}

/// Accepts connections on `listener` until `shutdown` completes, then closes the listener and
/// returns the watch on the connections still open (await its `shutdown` to let them finish).
pub(crate) async fn accept_until(
    listener: TcpListener,
    connections: Connections,
    shutdown: impl Future<Output = ()>,
) -> GracefulShutdown {
    let Connections { router, tls, header_timeout } = connections;
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(true)
        .writev(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(pair) => pair,
                    // E.g. out of file descriptors: back off instead of spinning.
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let service = PeerService::new(router.clone(), peer);
                if let Some(tls) = &tls {
                    let (tls, http, watcher) = (tls.clone(), http.clone(), graceful.watcher());
                    spawn_tls_connection(tls, stream, http, service, watcher, header_timeout);
                    continue;
                }
                let conn = http.serve_connection(TokioIo::new(stream), service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    graceful
}

/// Serves one accepted connection over TLS: the handshake must finish within `handshake_timeout`
/// (the header timeout: a client that connects and sends nothing is dropped), then the HTTP/1.1
/// connection is served like a plain one, watched for graceful shutdown.
fn spawn_tls_connection(
    tls: Arc<rustls::ServerConfig>,
    stream: tokio::net::TcpStream,
    http: hyper::server::conn::http1::Builder,
    service: PeerService,
    watcher: hyper_util::server::graceful::Watcher,
    handshake_timeout: std::time::Duration,
) {
    let acceptor = TlsAcceptor::from(tls);
    tokio::spawn(async move {
        // A failed or slow handshake (plain HTTP on the TLS port, no or an untrusted client
        // certificate, silence) just closes the connection.
        let Ok(Ok(stream)) = tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await
        else {
            return;
        };
        let conn = http.serve_connection(TokioIo::new(stream), service);
        let _ = watcher.watch(conn).await;
    });
}
