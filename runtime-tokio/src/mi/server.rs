//! MI over HTTP: JSON-RPC 2.0 on `POST <path>` (default `http://127.0.0.1:8888/mi`), like
//! OpenSIPS' `mi_http`, so `opensips-cli -o communication_type=http -o url=…` works.
//!
//! | request | answer |
//! |---|---|
//! | `POST`, `Content-Type: application/json`, a request with an `id` | `200 OK`, `Content-Type: application/json`, `Content-Length`, the JSON-RPC response (also for JSON-RPC errors) |
//! | the same without `id` (a notification) | the command runs, then `204 No Content` (OpenSIPS: `202` and a chunked body that never ends) |
//! | a batch (JSON array) | `200` with an array of the responses, `204` when all were notifications |
//! | another or no `Content-Type` | `415`, JSON-RPC error −32600 `Invalid Request` with `data` saying why (OpenSIPS: `400` and a hanging body) |
//! | a body over `max_body_bytes` | `413`, JSON-RPC error −32600 with `data` (OpenSIPS: `400` and a hanging body) |
//! | `GET <path>` | `200`, a short plain-text help |
//! | another method on `<path>` | `405`; another path `404` |

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::Value;
use tokio::net::TcpListener;

use super::dispatcher::{Dispatcher, encode, error_response};
use super::error::MiError;

#[derive(Debug)]
struct ServerState {
    dispatcher: Arc<Dispatcher>,
    max_body_bytes: usize,
    path: String,
}

/// The path as a route: with a leading `/`, made of letters, digits and `/-._~` only (no
/// route parameters or wildcards), without empty segments.
///
/// # Errors
/// `InvalidInput` naming the path.
pub fn route_path(path: &str) -> io::Result<String> {
    let path = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    let chars_ok = path
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '.' | '_' | '~'));
    if !chars_ok || path.contains("//") {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("MI path {path:?}: use letters, digits and / - . _ ~ only"),
        ));
    }
    Ok(path)
}

/// The axum router serving `dispatcher` on `path` (see [`route_path`]); bodies over
/// `max_body_bytes` are refused with 413.
///
/// # Errors
/// `InvalidInput` for a path [`route_path`] refuses.
pub fn router(
    dispatcher: Arc<Dispatcher>,
    path: &str,
    max_body_bytes: usize,
) -> io::Result<Router> {
    let path = route_path(path)?;
    let state = Arc::new(ServerState {
        dispatcher,
        max_body_bytes,
        path: path.clone(),
    });
    Ok(Router::new()
        .route(&path, post(post_mi).get(get_help))
        .with_state(state))
}

/// A bound MI server, not serving yet.
#[derive(Debug)]
pub struct MiServer {
    listener: TcpListener,
    router: Router,
    local_addr: SocketAddr,
}

impl MiServer {
    /// Binds `listen` (port 0 for an ephemeral port).
    ///
    /// # Errors
    /// The bind error; `InvalidInput` for a bad path.
    pub async fn bind(
        listen: SocketAddr,
        path: &str,
        max_body_bytes: usize,
        dispatcher: Arc<Dispatcher>,
    ) -> io::Result<MiServer> {
        let router = router(dispatcher, path, max_body_bytes)?;
        let listener = TcpListener::bind(listen).await?;
        let local_addr = listener.local_addr()?;
        Ok(MiServer {
            listener,
            router,
            local_addr,
        })
    }

    /// The address bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` completes, then stops accepting and waits for the requests
    /// in progress.
    ///
    /// # Errors
    /// An accept-loop IO error.
    pub async fn serve<S>(self, shutdown: S) -> io::Result<()>
    where
        S: Future<Output = ()> + Send + 'static,
    {
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
    }
}

fn json_response(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn error_body(status: StatusCode, detail: String) -> Response {
    let e = MiError::with_data(MiError::INVALID_REQUEST, "Invalid Request", detail);
    json_response(status, encode(&error_response(&e, Value::Null)))
}

/// `application/json`, parameters (`; charset=utf-8`) allowed, case ignored.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
}

async fn post_mi(State(st): State<Arc<ServerState>>, headers: HeaderMap, body: Body) -> Response {
    if !is_json(&headers) {
        return error_body(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/json".to_owned(),
        );
    }
    let too_large = || {
        error_body(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("Request body larger than {} bytes", st.max_body_bytes),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > st.max_body_bytes as u64) {
        return too_large();
    }
    let bytes = match axum::body::to_bytes(body, st.max_body_bytes).await {
        Ok(b) => b,
        Err(e) => {
            let inner = e.into_inner();
            if inner.is::<http_body_util::LengthLimitError>() {
                return too_large();
            }
            tracing::debug!(error = %inner, "MI request body could not be read");
            return error_body(
                StatusCode::BAD_REQUEST,
                "Request body could not be read".to_owned(),
            );
        }
    };
    match st.dispatcher.handle_jsonrpc(&bytes).await {
        Some(reply) => json_response(StatusCode::OK, reply),
        None => StatusCode::NO_CONTENT.into_response(),
    }
}

async fn get_help(State(st): State<Arc<ServerState>>) -> Response {
    let text = format!(
        "clusterer MI (OpenSIPS mi_http compatible)\n\
         POST JSON-RPC 2.0 requests with Content-Type: application/json to {path}, e.g.\n\
         \x20 curl -s -H 'Content-Type: application/json' \\\n\
         \x20   -d '{{\"jsonrpc\":\"2.0\",\"method\":\"clusterer_list\",\"id\":1}}' http://<host>:<port>{path}\n\
         `which` lists the commands, `help` with a command name describes one.\n\
         Bodies are limited to {max} bytes; a request without \"id\" is a notification (204).\n",
        path = st.path,
        max = st.max_body_bytes
    );
    let mut r = (StatusCode::OK, text).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(route_path("/mi").ok().as_deref(), Some("/mi"));
        assert_eq!(route_path("mi").ok().as_deref(), Some("/mi"));
        assert_eq!(route_path("/").ok().as_deref(), Some("/"));
        assert_eq!(
            route_path("/a/b-c.d_e~").ok().as_deref(),
            Some("/a/b-c.d_e~")
        );
        for bad in ["/{x}", "/:x", "/*", "//mi", "/m i", "/mi?x"] {
            assert!(route_path(bad).is_err(), "{bad}");
        }
    }
}
