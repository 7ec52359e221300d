//! The HTTP calls the load benchmarks share: JSON POSTs that must succeed, and users.

use serde_json::{Value, json};

pub const PASSWORD: &str = "bench horse battery";

pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
}

impl Api {
    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Value {
        let mut request = self.http.post(format!("{}{path}", self.base)).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    pub async fn login(&self, email: &str, password: &str) -> String {
        let tokens = self
            .post(
                "/api/v1/auth/login",
                None,
                json!({"email": email, "password": password}),
            )
            .await;
        tokens["access_token"].as_str().expect("token").to_owned()
    }

    /// Registers a user of `role` and logs in: its id and access token.
    pub async fn user(&self, email: &str, role: &str) -> (String, String) {
        let user = self
            .post(
                "/api/v1/auth/register",
                None,
                json!({"email": email, "password": PASSWORD, "full_name": "Bench", "role": role}),
            )
            .await;
        let id = user["id"].as_str().expect("id").to_owned();
        (id, self.login(email, PASSWORD).await)
    }
}
