//! What the WebSocket load benchmarks share: settings from the environment and an
//! authenticated socket.

use tokio_tungstenite::tungstenite::{client::IntoClientRequest, http::HeaderValue};

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
