//! The contract clients generate code from and show errors with: field-level 422s from
//! the documented schema, the published document itself, and the edge cases of HTTP
//! (405, 413, CORS preflight) answered the way the document says.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::TestApp;

/// The committed copy client generators read (`scripts/contract.sh`).
const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/contract/openapi.json");

#[tokio::test]
async fn register_reports_every_shape_error_under_its_field() {
    let app = TestApp::spawn().await;
    let reply = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({"email": "a@example.com", "password": 12345678, "role": "superuser"}),
        )
        .await;
    reply.assert_invalid(&["password", "full_name", "role"]);
    assert_eq!(reply.json["errors"][0]["message"], "expected a string");
    assert_eq!(reply.json["errors"][1]["message"], "is required");
    assert_eq!(
        reply.json["errors"][2]["message"],
        "must be one of: client, worker, admin"
    );
}

#[tokio::test]
async fn a_number_is_never_coerced_into_a_string() {
    let app = TestApp::spawn().await;
    let (_, client) = app.user("coerce@example.com", "client").await;
    let reply = app
        .call(
            Method::PATCH,
            "/api/v1/clients/me",
            Some(&client.access),
            Some(json!({"phone": 12345})),
        )
        .await;
    reply.assert_invalid(&["phone"]);
    let me = app.get("/api/v1/clients/me", Some(&client.access)).await;
    assert_eq!(me.json["phone"], serde_json::Value::Null, "nothing stored");
}

#[tokio::test]
async fn nested_fields_are_named_by_their_path() {
    let app = TestApp::spawn().await;
    let (_, worker) = app.user("paths@example.com", "worker").await;
    let reply = app
        .call(
            Method::PUT,
            "/api/v1/workers/me/availability",
            Some(&worker.access),
            Some(json!({"slots": [
                {"weekday": 0, "start": "09:00", "end": "12:00"},
                {"weekday": "1", "start": "09:00"}
            ]})),
        )
        .await;
    reply.assert_invalid(&["slots[1].weekday", "slots[1].end"]);
}

#[tokio::test]
async fn an_empty_body_is_400_unless_the_endpoint_takes_none() {
    let app = TestApp::spawn().await;
    let empty = |path: &'static str, token: Option<String>| {
        let mut request = app.client.post(app.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    let reply =
        crate::common::Reply::from(empty("/api/v1/auth/register", None).await.expect("request"))
            .await;
    reply.assert_problem(400, "malformed_body");

    // Logout is an action endpoint: no body at all is fine.
    let (_, user) = app.user("action@example.com", "client").await;
    let reply = crate::common::Reply::from(
        empty("/api/v1/auth/logout", Some(user.access))
            .await
            .expect("request"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
}

#[tokio::test]
async fn an_oversized_body_names_the_limit() {
    let app = TestApp::spawn().await;
    let reply = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "x@example.com", "password": "p".repeat(70 * 1024)}),
        )
        .await;
    reply.assert_problem(413, "payload_too_large");
    assert!(
        reply.json["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("64 KiB"),
        "{}",
        reply.body
    );
}

#[tokio::test]
async fn query_parameters_are_named_with_what_would_be_valid() {
    let app = TestApp::spawn().await;
    let reply = app.get("/api/v1/services?sort=cheapest", None).await;
    reply.assert_invalid(&["sort"]);
    let message = reply.json["errors"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.starts_with("must be one of: ") && message.contains("price_asc"),
        "{message}"
    );
    let reply = app.get("/api/v1/services?limit=abc", None).await;
    reply.assert_invalid(&["limit"]);
    assert_eq!(
        reply.json["errors"][0]["message"],
        "must be an integer of at least 1"
    );
}

#[tokio::test]
async fn a_wrong_method_lists_the_allowed_ones() {
    let app = TestApp::spawn().await;
    let reply = app
        .call(Method::DELETE, "/api/v1/auth/login", None, None)
        .await;
    reply.assert_problem(405, "method_not_allowed");
    assert_eq!(reply.header("allow"), Some("POST"));
    let reply = app
        .call(
            Method::POST,
            "/api/v1/services/00000000-0000-0000-0000-000000000000",
            None,
            None,
        )
        .await;
    reply.assert_problem(405, "method_not_allowed");
    assert_eq!(reply.header("allow"), Some("DELETE, GET, HEAD, PATCH"));
}

#[tokio::test]
async fn a_preflight_without_cors_configured_points_at_cors_origins() {
    let app = TestApp::spawn().await;
    let reply = crate::common::Reply::from(
        app.client
            .request(Method::OPTIONS, app.url("/api/v1/services"))
            .header("origin", "https://app.example.com")
            .header("access-control-request-method", "GET")
            .send()
            .await
            .expect("request"),
    )
    .await;
    reply.assert_problem(403, "forbidden");
    assert!(
        reply.json["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("CORS_ORIGINS"),
        "{}",
        reply.body
    );
}

#[tokio::test]
async fn the_docs_page_makes_no_outside_call_to_a_validator() {
    let app = TestApp::spawn().await;
    let reply = app.get("/docs", None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.body.contains("validatorUrl: null"));
}

#[tokio::test]
async fn the_document_declares_what_the_server_does() {
    let app = TestApp::spawn().await;
    let spec = app.get("/api/v1/openapi.json", None).await.json;
    let schemas = &spec["components"]["schemas"];
    let page = schemas
        .as_object()
        .and_then(|all| all.iter().find(|(name, _)| name.starts_with("Page")))
        .map(|(_, page)| page)
        .expect("a Page schema");
    assert_eq!(page["properties"]["next_cursor"]["nullable"], true);
    // Found by schemathesis: `reason` of an audit entry is null for a reinstatement.
    assert_eq!(
        schemas["AuditEntry"]["properties"]["reason"]["nullable"],
        true
    );
    // Found by schemathesis: a body over its limit or of the wrong type is answered 413
    // or 415, so the operations say they can be.
    let responses = &spec["paths"]["/api/v1/workers/me/kyc"]["post"]["responses"];
    assert!(responses["413"].is_object() && responses["415"].is_object());
    // Found by schemathesis: `{"email": ""}` to password/forgot was refused with a 422
    // the document did not announce; the address and the new password declare their rules.
    let forgot = &schemas["ForgotPasswordRequest"]["properties"]["email"];
    assert_eq!(forgot["format"], "email");
    let reset = &schemas["ResetPasswordRequest"]["properties"]["new_password"];
    assert_eq!(
        (reset["minLength"].clone(), reset["maxLength"].clone()),
        (8.into(), 128.into())
    );
    // Listings: `null` clears a location, and its ranges are declared.
    let location = &schemas["NewService"]["properties"]["location"];
    assert_eq!(location["nullable"], true, "{location}");
    assert_eq!(schemas["Location"]["properties"]["lat"]["maximum"], 90.0);
    // Action endpoints take an empty body; others require one.
    let body_required = |path: &str| spec["paths"][path]["post"]["requestBody"]["required"].clone();
    assert_eq!(body_required("/api/v1/auth/logout"), false);
    assert_eq!(body_required("/api/v1/auth/register"), true);
    // A cancellation needs a reason, and the document says so (the server checks it once
    // the job is found, so an unknown job is 404 whatever the body says).
    assert_eq!(schemas["CancelBody"]["required"], json!(["reason"]));
}

/// `marketplace openapi` prints the document without configuration or a database, and
/// the committed copy is that document (regenerate: `cargo run -- openapi >
/// tests/contract/openapi.json`).
#[tokio::test]
async fn the_committed_document_is_what_the_binary_prints_and_serves() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_marketplace"))
        .arg("openapi")
        .env_clear()
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .env("REDIS_URL", "redis://127.0.0.1:1/0")
        .output()
        .expect("run marketplace openapi");
    assert!(output.status.success(), "{output:?}");
    let printed = String::from_utf8(output.stdout).expect("utf-8");
    let committed = std::fs::read_to_string(COMMITTED).unwrap_or_default();
    assert!(
        printed == committed,
        "tests/contract/openapi.json is stale: run `cargo run -- openapi > tests/contract/openapi.json`"
    );
    let app = TestApp::spawn().await;
    let served = app.get("/api/v1/openapi.json", None).await;
    assert_eq!(format!("{}\n", served.body), printed);
}

/// Found by schemathesis: a blank `city` passed the document but not the server.
#[tokio::test]
async fn blank_profile_text_is_refused_as_the_document_says() {
    let app = TestApp::spawn().await;
    let (_, client) = app.user("blank@example.com", "client").await;
    let reply = app
        .call(
            Method::PATCH,
            "/api/v1/clients/me",
            Some(&client.access),
            Some(json!({"city": " ", "phone": "1".repeat(41)})),
        )
        .await;
    reply.assert_invalid(&["phone", "city"]);
    assert_eq!(reply.json["errors"][1]["message"], "must not be blank");
    let spec = app.get("/api/v1/openapi.json", None).await.json;
    let city = &spec["components"]["schemas"]["ClientPatch"]["properties"]["city"];
    assert_eq!(
        (city["maxLength"].clone(), city["pattern"].clone()),
        (json!(100), json!(r"\S"))
    );
}

/// The harness drops what it creates: once no test app of this process is alive, its
/// template database is gone too (a CI run once left two `mpt_*_template` behind).
#[tokio::test]
async fn the_harness_leaves_no_template_behind() {
    drop(TestApp::spawn().await);
    assert_eq!(crate::common::template_left_behind().await, None);
}

/// Each operation documents the statuses it can answer and no others (`error::Fails`):
/// called anonymously and as each role, with unknown ids and with an empty, a malformed
/// and a wrong-shaped body, every operation answers only statuses it documents, never a
/// 500 (which is what the debug-build check turns an undocumented status into); and each
/// status its signature implies is documented: a bearer guard 401, a path id 404, a body
/// 400, 413, 415 and 422.
#[tokio::test]
async fn every_operation_answers_only_what_it_documents() {
    let app = TestApp::spawn().await;
    let spec = app.get("/api/v1/openapi.json", None).await.json;
    let (_, client) = app.user("walk-client@example.com", "client").await;
    let (_, worker) = app.user("walk-worker@example.com", "worker").await;
    let (_, admin) = app.admin("walk-admin@example.com").await;
    let identities = [
        ("anonymous", None),
        ("client", Some(client.access)),
        ("worker", Some(worker.access)),
        ("admin", Some(admin.access)),
    ];
    let paths = spec["paths"].as_object().expect("paths");
    let mut checked = 0;
    for (path, operations) in paths {
        for (method, operation) in operations.as_object().expect("operations") {
            let documented: Vec<u16> = operation["responses"]
                .as_object()
                .expect("responses")
                .keys()
                .map(|status| status.parse().expect("a status"))
                .collect();
            let name = format!("{} {path}", method.to_uppercase());
            let implied = [
                (operation["security"].is_array(), [401].as_slice()),
                (path.contains('{'), &[404]),
                (operation["requestBody"].is_object(), &[400, 413, 415, 422]),
            ];
            for (applies, statuses) in implied {
                for status in statuses.iter().filter(|_| applies) {
                    assert!(
                        documented.contains(status),
                        "{name} does not document {status}"
                    );
                }
            }
            let url = path
                .split('/')
                .map(|segment| match segment.starts_with('{') {
                    true => uuid::Uuid::now_v7().to_string(),
                    false => segment.to_owned(),
                })
                .collect::<Vec<_>>()
                .join("/");
            let bodies = match operation["requestBody"].is_object() {
                true => vec![Some("{}"), Some("{not json"), Some("[1]")],
                false => vec![None],
            };
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            for (who, token) in &identities {
                // Logging out would end the identity's session for the rest of the walk.
                if token.is_some() && path == "/api/v1/auth/logout" {
                    continue;
                }
                for body in &bodies {
                    let mut request = app.client.request(method.clone(), app.url(&url));
                    if let Some(token) = token {
                        request = request.bearer_auth(token);
                    }
                    if let Some(body) = body {
                        request = request
                            .header("content-type", "application/json")
                            .body(body.to_string());
                    }
                    let reply =
                        crate::common::Reply::from(request.send().await.expect("request")).await;
                    let status = reply.status.as_u16();
                    assert!(
                        status != 500 && documented.contains(&status),
                        "{name} as {who} with body {body:?}: {status} is not documented ({documented:?}): {}",
                        reply.body
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 200, "only {checked} calls");
}
