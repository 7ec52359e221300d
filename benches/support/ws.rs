//! What the WebSocket load benchmarks share: settings from the environment and an
//! authenticated socket.

use serde_json::json;
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, http::HeaderValue};

use crate::api::Api;

/// `key` from the environment, parsed, or `default`.
pub fn env<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `key` from the environment, or `default`.
pub fn env_str(key: &str, default: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| default.to_owned())
}

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A socket to `base`'s `/api/v1/ws`, authenticated with `token` as a bearer.
pub async fn connect(base: &str, token: &str) -> Socket {
    let url = format!("{}/api/v1/ws", base.replacen("http", "ws", 1));
    let mut request = url.into_client_request().expect("request");
    request.headers_mut().insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {token}")).expect("header"),
    );
    let (socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("websocket handshake");
    socket
}

/// A chatting pair: worker `{tag}-w{i}` registered through `workers`, client
/// `{tag}-c{i}` through `clients`, and the client's inquiry thread with that worker.
pub struct Pair {
    pub worker: String,
    pub client: String,
    pub thread: String,
}

impl Pair {
    pub async fn register(clients: &Api, workers: &Api, tag: &str, i: usize) -> Self {
        let (worker_id, worker) = workers
            .user(&format!("{tag}-w{i}@example.com"), "worker")
            .await;
        let (_, client) = clients
            .user(&format!("{tag}-c{i}@example.com"), "client")
            .await;
        let thread = clients
            .post(
                "/api/v1/threads",
                Some(&client),
                json!({ "worker_id": worker_id }),
            )
            .await;
        let thread = thread["id"].as_str().expect("thread").to_owned();
        Self {
            worker,
            client,
            thread,
        }
    }
}

/// The `p` quantile of sorted microseconds, in milliseconds (NaN when empty).
pub fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at] as f64 / 1000.0
}
