//! The HTTP/JSON API: the router and the middleware (body limit, request timeout, response
//! counting). The connections it is served on are the accept loop's (`accept`).

mod approvals;
mod auth;
mod body;
mod check;
mod delegations;
mod error;
mod execute;
mod meta;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::handler::Handler;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;

pub use error::ApiError;

pub(crate) use crate::accept::Peer;
pub use crate::accept::PeerService;
use crate::state::Shared;

/// A method and path of the API, as in the OpenAPI document (`{id}` for path parameters).
pub type Route = (&'static str, &'static str);

/// Builds the router and the list of its routes in one go (so the list cannot drift).
struct Routes {
    router: Router<Arc<Shared>>,
    list: Vec<Route>,
}

impl Routes {
    fn add<H, T>(mut self, method: &'static str, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, Arc<Shared>>,
        T: 'static,
    {
        let route: MethodRouter<Arc<Shared>> = match method {
            "get" => axum::routing::get(handler),
            _ => axum::routing::post(handler),
        };
        self.router = self.router.route(path, route);
        self.list.push((method, path));
        self
    }
}

fn routes() -> Routes {
    Routes { router: Router::new(), list: Vec::new() }
        .add("post", "/v1/check", check::check)
        .add("post", "/v1/check-plan", check::check_plan)
        .add("post", "/v1/tickets/verify", execute::verify_ticket)
        .add("post", "/v1/execute", execute::execute)
        .add("get", "/v1/approvals", approvals::list)
        .add("get", "/v1/approvals/{id}", approvals::show)
        .add("post", "/v1/approvals/{id}/approve", approvals::approve)
        .add("post", "/v1/approvals/{id}/deny", approvals::deny)
        .add("post", "/v1/delegations", delegations::delegate)
        .add("get", "/v1/actions", meta::actions)
        .add("get", "/v1/audit/verify", meta::audit_verify)
        .add("get", "/v1/audit/checkpoint", meta::audit_checkpoint)
        .add("get", "/v1/audit/proof/{event_id}", meta::audit_proof)
        .add("post", "/v1/admin/reload", meta::reload)
        .add("get", "/v1/openapi.json", meta::openapi)
        .add("get", "/healthz", meta::healthz)
        .add("get", "/readyz", meta::readyz)
        .add("get", "/metrics", meta::metrics)
}

/// Every route the router serves (method in lower case, path), for the OpenAPI drift test.
pub fn route_table() -> Vec<Route> {
    routes().list
}

/// The OpenAPI document served at `/v1/openapi.json` (`docs/openapi.json`).
pub const OPENAPI: &str = include_str!("../../openapi.json");

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let body_limit = shared.config.body_limit;
    routes()
        .router
        .fallback(meta::not_found)
        .method_not_allowed_fallback(meta::method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn_with_state(shared.clone(), limits))
        .with_state(shared)
}

/// The request timeout (the body's reading included), requests in flight and response
/// counting.
async fn limits(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let limit = if req.uri().path() == "/v1/execute" {
        shared.config.execute_limit()
    } else {
        shared.config.request_timeout
    };
    let _in_flight = shared.metrics.in_flight();
    let response = match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!("the request took longer than {} ms", limit.as_millis()),
        )
        .into_response(),
    };
    shared.metrics.response(response.status().as_u16());
    response
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// Every route the router serves is in docs/openapi.json, and every path and method the
    /// document describes is served.
    #[test]
    fn openapi_document_matches_the_router() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                documented.insert((method.clone(), path.clone()));
            }
        }
        let served: BTreeSet<(String, String)> =
            route_table().into_iter().map(|(m, p)| (m.to_owned(), p.to_owned())).collect();
        let missing: Vec<_> = served.difference(&documented).collect();
        let extra: Vec<_> = documented.difference(&served).collect();
        assert!(missing.is_empty(), "served but not in docs/openapi.json: {missing:?}");
        assert!(extra.is_empty(), "in docs/openapi.json but not served: {extra:?}");
        assert_eq!(served.len(), route_table().len(), "a route is registered twice");
    }
}
