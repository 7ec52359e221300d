//! Messaging: threads, history, sending and read markers over REST, and the WebSocket
//! (handshake, frames, fan-out across sockets and instances, limits, revocation).

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{self, Message as Frame, client::IntoClientRequest, http::HeaderValue},
};

use crate::common::{REDIS_URL, Reply, TestApp, Tokens};

pub(crate) type Ws = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// How long a test waits for a frame it expects.
const WAIT: Duration = Duration::from_secs(5);

/// A client and a worker with the client's inquiry thread between them.
struct Chat {
    app: TestApp,
    client_id: String,
    client: Tokens,
    worker_id: String,
    worker: Tokens,
    thread: String,
}

async fn chat_with(overrides: &[(&str, &str)]) -> Chat {
    let app = TestApp::spawn_with(overrides).await;
    let (client_id, client) = app.user("asker@example.com", "client").await;
    let (worker_id, worker) = app.user("helper@example.com", "worker").await;
    let reply = open_thread(&app, &client, &worker_id).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let thread = reply.json["id"].as_str().expect("id").to_owned();
    Chat {
        app,
        client_id,
        client,
        worker_id,
        worker,
        thread,
    }
}

async fn chat() -> Chat {
    chat_with(&[]).await
}

async fn open_thread(app: &TestApp, client: &Tokens, worker_id: &str) -> Reply {
    app.post(
        "/api/v1/threads",
        Some(&client.access),
        json!({"worker_id": worker_id}),
    )
    .await
}

impl Chat {
    async fn send(&self, who: &Tokens, body: Value) -> Reply {
        send_to(&self.app, who, &self.thread, body).await
    }

    /// Sends `text` and returns the stored message.
    async fn say(&self, who: &Tokens, text: &str) -> Value {
        let reply = self.send(who, json!({ "body": text })).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        reply.json
    }

    async fn thread_of(&self, who: &Tokens) -> Value {
        let reply = self
            .app
            .get(
                &format!("/api/v1/threads/{}", self.thread),
                Some(&who.access),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        reply.json
    }

    async fn stored_messages(&self) -> i64 {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use marketplace::db::schema::messages;
        let mut conn = self.app.state.db.get().await.expect("conn");
        messages::table
            .count()
            .get_result(&mut conn)
            .await
            .expect("count")
    }
}

pub(crate) async fn send_to(app: &TestApp, who: &Tokens, thread: &str, body: Value) -> Reply {
    app.post(
        &format!("/api/v1/threads/{thread}/messages"),
        Some(&who.access),
        body,
    )
    .await
}

// ---------------------------------------------------------------- REST

#[tokio::test]
async fn messaging_inquiry_threads_are_one_per_pair() {
    let chat = chat().await;
    let app = &chat.app;
    let again = open_thread(app, &chat.client, &chat.worker_id).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.json["id"], chat.thread.as_str());
    assert_eq!(again.json["job_id"], Value::Null);
    assert_eq!(
        again.json["participant_ids"],
        json!([chat.client_id, chat.worker_id])
    );
    assert_eq!(again.json["last_message"], Value::Null);
    assert_eq!(again.json["unread_count"], 0);

    // Only clients open inquiries, and only with an active worker.
    open_thread(app, &chat.worker, &chat.worker_id)
        .await
        .assert_problem(403, "forbidden");
    let (other_client, _) = app.user("other@example.com", "client").await;
    open_thread(app, &chat.client, &other_client)
        .await
        .assert_problem(404, "not_found");
    open_thread(app, &chat.client, &uuid::Uuid::now_v7().to_string())
        .await
        .assert_problem(404, "not_found");
    open_thread(app, &chat.client, "not-a-uuid")
        .await
        .assert_invalid(&["worker_id"]);

    // Concurrent first contacts with a new worker make one thread.
    let (busy_worker, _) = app.user("busy@example.com", "worker").await;
    let replies = futures_util::future::join_all(
        (0..6).map(|_| open_thread(app, &chat.client, &busy_worker)),
    )
    .await;
    let created = replies
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .count();
    assert_eq!(created, 1, "exactly one creates");
    assert!(
        replies
            .iter()
            .all(|r| r.json["id"] == replies[0].json["id"])
    );
}

#[tokio::test]
async fn messaging_strangers_and_admins_get_404_everywhere() {
    let chat = chat().await;
    let app = &chat.app;
    chat.say(&chat.client, "hello").await;
    let (_, stranger) = app.user("stranger@example.com", "client").await;
    let (_, admin) = app.admin("boss@example.com").await;
    let thread = &chat.thread;
    for who in [&stranger, &admin] {
        let token = Some(who.access.as_str());
        app.get(&format!("/api/v1/threads/{thread}"), token)
            .await
            .assert_problem(404, "not_found");
        app.get(&format!("/api/v1/threads/{thread}/messages"), token)
            .await
            .assert_problem(404, "not_found");
        send_to(app, who, thread, json!({"body": "let me in"}))
            .await
            .assert_problem(404, "not_found");
        // An invalid body does not reveal the thread exists either.
        send_to(app, who, thread, json!({"body": ""}))
            .await
            .assert_problem(404, "not_found");
        app.post(
            &format!("/api/v1/threads/{thread}/read"),
            token,
            json!({"message_id": uuid::Uuid::now_v7()}),
        )
        .await
        .assert_problem(404, "not_found");
        let list = app.get("/api/v1/threads", token).await;
        assert_eq!(list.json["items"], json!([]), "{}", list.body);
    }
    assert_eq!(
        chat.stored_messages().await,
        1,
        "nothing stored by strangers"
    );
    app.get("/api/v1/threads/not-a-uuid", Some(&chat.client.access))
        .await
        .assert_problem(404, "not_found");
    app.get("/api/v1/threads", None)
        .await
        .assert_problem(401, "unauthorized");
}

#[tokio::test]
async fn messaging_bodies_are_checked_in_characters() {
    let chat = chat().await;
    for bad in [
        json!({"body": ""}),
        json!({"body": "  \n "}),
        json!({"body": "a\u{0}b"}),
    ] {
        chat.send(&chat.client, bad).await.assert_invalid(&["body"]);
    }
    chat.send(&chat.client, json!({"body": "é".repeat(4001)}))
        .await
        .assert_invalid(&["body"]);
    chat.send(&chat.client, json!({"nobody": 1}))
        .await
        .assert_invalid(&["body"]);
    chat.send(&chat.client, json!({"body": "x", "client_msg_id": ""}))
        .await
        .assert_invalid(&["client_msg_id"]);
    let long = "é".repeat(4000);
    let stored = chat.say(&chat.worker, &long).await;
    assert_eq!(stored["body"], long.as_str());
    assert_eq!(stored["sender_id"], chat.worker_id.as_str());
    assert_eq!(stored["thread_id"], chat.thread.as_str());
    assert_eq!(stored["client_msg_id"], Value::Null);
    let kept = chat.say(&chat.worker, "  spaced out\n").await;
    assert_eq!(kept["body"], "  spaced out\n", "bodies are kept as typed");
    assert_eq!(chat.stored_messages().await, 2);
}

#[tokio::test]
async fn messaging_client_msg_id_makes_sends_idempotent() {
    let chat = chat().await;
    let first = chat
        .send(
            &chat.client,
            json!({"body": "once", "client_msg_id": "k-1"}),
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert_eq!(first.json["client_msg_id"], "k-1");
    let retry = chat
        .send(
            &chat.client,
            json!({"body": "once", "client_msg_id": "k-1"}),
        )
        .await;
    assert_eq!(retry.status, StatusCode::OK, "{}", retry.body);
    assert_eq!(retry.json, first.json, "the first message comes back");
    // The key is the sender's: the other participant may use the same one.
    let theirs = chat
        .send(
            &chat.worker,
            json!({"body": "mine", "client_msg_id": "k-1"}),
        )
        .await;
    assert_eq!(theirs.status, StatusCode::CREATED, "{}", theirs.body);
    assert_eq!(chat.stored_messages().await, 2);

    // Concurrent retries of one send: one row, every reply the same message.
    let replies = futures_util::future::join_all((0..8).map(|_| {
        chat.send(
            &chat.client,
            json!({"body": "racing", "client_msg_id": "k-race"}),
        )
    }))
    .await;
    let created: Vec<_> = replies
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .collect();
    assert_eq!(created.len(), 1, "exactly one stores");
    for reply in &replies {
        assert!(
            reply.status == StatusCode::OK || reply.status == StatusCode::CREATED,
            "{}",
            reply.body
        );
        assert_eq!(reply.json["id"], created[0].json["id"]);
    }
    assert_eq!(chat.stored_messages().await, 3);
}

/// Both participants sending at once, many at a time: every send is stored. Sends used
/// to lock the two participant rows in scan order and deadlocked (a 500) under load.
#[tokio::test]
async fn messaging_concurrent_sends_from_both_sides_all_land() {
    let chat = chat().await;
    const EACH: usize = 60;
    let senders = [&chat.client, &chat.worker];
    futures_util::stream::iter((0..EACH).flat_map(|i| senders.map(|who| (i, who))))
        .for_each_concurrent(16, |(i, who)| {
            let chat = &chat;
            async move {
                let reply = chat
                    .send(who, json!({ "body": format!("message {i}") }))
                    .await;
                assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
            }
        })
        .await;
    assert_eq!(chat.stored_messages().await, 2 * EACH as i64);
}

#[tokio::test]
async fn messaging_history_pages_newest_first() {
    let chat = chat().await;
    let mut sent = Vec::new();
    for n in 0..5 {
        let who = if n % 2 == 0 {
            &chat.client
        } else {
            &chat.worker
        };
        sent.push(chat.say(who, &format!("message {n}")).await["id"].clone());
    }
    let path = format!("/api/v1/threads/{}/messages", chat.thread);
    let mut seen = Vec::new();
    let mut query = format!("{path}?limit=2");
    loop {
        let page = chat.app.get(&query, Some(&chat.worker.access)).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let items = page.json["items"].as_array().expect("items").clone();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|m| m["id"].clone()));
        match page.json["next_cursor"].as_str() {
            Some(before) => query = format!("{path}?limit=2&before={before}"),
            None => break,
        }
    }
    sent.reverse();
    assert_eq!(seen, sent, "every message once, newest first");
    chat.app
        .get(&format!("{path}?limit=0"), Some(&chat.worker.access))
        .await
        .assert_invalid(&["limit"]);
}

#[tokio::test]
async fn messaging_thread_list_orders_by_activity_and_counts_unread() {
    let chat = chat().await;
    let app = &chat.app;
    let (second_worker, second) = app.user("second@example.com", "worker").await;
    let newer = open_thread(app, &chat.client, &second_worker).await.json["id"].clone();

    // The newest thread comes first until the older one gets a message.
    let ids = |page: &Reply| -> Vec<Value> {
        page.json["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|t| t["id"].clone())
            .collect()
    };
    let list = app.get("/api/v1/threads", Some(&chat.client.access)).await;
    assert_eq!(ids(&list), vec![newer.clone(), json!(chat.thread)]);
    chat.say(&chat.worker, "one").await;
    chat.say(&chat.worker, "two").await;
    let last = chat.say(&chat.worker, "three").await;
    let list = app.get("/api/v1/threads", Some(&chat.client.access)).await;
    assert_eq!(ids(&list), vec![json!(chat.thread), newer.clone()]);
    let top = &list.json["items"][0];
    assert_eq!(top["last_message"], last);
    assert_eq!(top["unread_count"], 3);
    assert_eq!(list.json["items"][1]["unread_count"], 0);
    // One's own messages are never unread.
    assert_eq!(chat.thread_of(&chat.worker).await["unread_count"], 0);

    // Keyset paging: one per page, both threads, then the end.
    let first = app
        .get("/api/v1/threads?limit=1", Some(&chat.client.access))
        .await;
    let cursor = first.json["next_cursor"].as_str().expect("cursor");
    let rest = app
        .get(
            &format!("/api/v1/threads?limit=1&cursor={cursor}"),
            Some(&chat.client.access),
        )
        .await;
    assert_eq!(ids(&first), vec![json!(chat.thread)]);
    assert_eq!(ids(&rest), vec![newer.clone()]);
    assert_eq!(rest.json["next_cursor"], Value::Null);
    app.get("/api/v1/threads?cursor=forged", Some(&chat.client.access))
        .await
        .assert_problem(400, "bad_cursor");

    // The read marker: to the second message leaves one unread; it never moves back.
    let history = app
        .get(
            &format!("/api/v1/threads/{}/messages", chat.thread),
            Some(&chat.client.access),
        )
        .await;
    let second_id = history.json["items"][1]["id"].clone();
    let read_path = format!("/api/v1/threads/{}/read", chat.thread);
    let read = |message: Value| {
        app.post(
            &read_path,
            Some(&chat.client.access),
            json!({ "message_id": message }),
        )
    };
    assert_eq!(read(second_id.clone()).await.status, StatusCode::NO_CONTENT);
    assert_eq!(chat.thread_of(&chat.client).await["unread_count"], 1);
    assert_eq!(
        read(last["id"].clone()).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(read(second_id).await.status, StatusCode::NO_CONTENT);
    assert_eq!(chat.thread_of(&chat.client).await["unread_count"], 0);
    // A message of another thread is not a marker for this one.
    let elsewhere = send_to(
        app,
        &second,
        newer.as_str().expect("id"),
        json!({"body": "hi"}),
    )
    .await;
    read(elsewhere.json["id"].clone())
        .await
        .assert_invalid(&["message_id"]);
}

#[tokio::test]
async fn messaging_booking_creates_the_job_thread() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin("desk@example.com").await;
    let (worker_id, worker) = app.approved_worker("pro@example.com", &admin).await;
    let (client_id, client) = app.user("booker@example.com", "client").await;
    let service = app.listing(&worker.access, json!({})).await;
    let when = (chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339();
    let job = app
        .post(
            "/api/v1/jobs",
            Some(&client.access),
            json!({"service_id": service["id"], "scheduled_at": when, "address": "Rua 1"}),
        )
        .await;
    assert_eq!(job.status, StatusCode::CREATED, "{}", job.body);
    for who in [&client, &worker] {
        let thread = app
            .get(
                &format!(
                    "/api/v1/threads/{}",
                    job.json["thread_id"].as_str().expect("id")
                ),
                Some(&who.access),
            )
            .await;
        assert_eq!(thread.status, StatusCode::OK, "{}", thread.body);
        assert_eq!(thread.json["job_id"], job.json["id"]);
        assert_eq!(
            thread.json["participant_ids"],
            json!([client_id, worker_id])
        );
    }
}

// ---------------------------------------------------------------- WebSocket helpers

fn ws_url(app: &TestApp, query: &str) -> String {
    format!("ws://{}/api/v1/ws{query}", app.addr)
}

/// Opens a socket with extra handshake headers; a refusal comes back as its HTTP reply.
async fn try_open(
    app: &TestApp,
    query: &str,
    headers: &[(&str, &str)],
) -> Result<Ws, (u16, Option<String>, Value)> {
    let mut request = ws_url(app, query).into_client_request().expect("request");
    for (name, value) in headers {
        request.headers_mut().insert(
            tungstenite::http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
            HeaderValue::from_str(value).expect("value"),
        );
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((ws, _)) => Ok(ws),
        Err(tungstenite::Error::Http(response)) => {
            let content_type = response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = response
                .body()
                .as_deref()
                .and_then(|b| serde_json::from_slice(b).ok())
                .unwrap_or(Value::Null);
            Err((response.status().as_u16(), content_type, body))
        }
        Err(other) => panic!("handshake failed: {other}"),
    }
}

/// Opens a socket authenticated with `tokens`' bearer header.
async fn try_open_as(app: &TestApp, tokens: &Tokens) -> Result<Ws, (u16, Option<String>, Value)> {
    let bearer = format!("Bearer {}", tokens.access);
    try_open(app, "", &[("authorization", &bearer)]).await
}

pub(crate) async fn open(app: &TestApp, tokens: &Tokens) -> Ws {
    match try_open_as(app, tokens).await {
        Ok(ws) => ws,
        Err(refused) => panic!("refused: {refused:?}"),
    }
}

#[track_caller]
fn assert_refused(result: Result<Ws, (u16, Option<String>, Value)>, status: u16, code: &str) {
    match result {
        Ok(_) => panic!("the handshake should be refused with {status}"),
        Err((got, content_type, body)) => {
            assert_eq!(got, status, "{body}");
            assert_eq!(content_type.as_deref(), Some("application/problem+json"));
            assert_eq!(body["code"], code, "{body}");
        }
    }
}

async fn send_frame(ws: &mut Ws, frame: Value) {
    ws.send(Frame::text(frame.to_string())).await.expect("send");
}

/// The next text frame as JSON (pings and pongs skipped).
pub(crate) async fn recv(ws: &mut Ws) -> Value {
    loop {
        let next = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a frame in time")
            .expect("the socket is open")
            .expect("a frame");
        match next {
            Frame::Text(text) => return serde_json::from_str(&text).expect("JSON frame"),
            Frame::Ping(_) | Frame::Pong(_) => {}
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

/// The next frame of `kind`, skipping others (whose order is not specified).
pub(crate) async fn recv_type(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let frame = recv(ws).await;
        if frame["type"] == kind {
            return frame;
        }
    }
}

/// Reads until the server closes; the close code, if a close frame came.
async fn closed_with(ws: &mut Ws) -> Option<u16> {
    loop {
        match tokio::time::timeout(WAIT * 2, ws.next())
            .await
            .expect("closed in time")
        {
            Some(Ok(Frame::Close(frame))) => return frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return None,
        }
    }
}

/// Asserts the socket is alive and was sent nothing but what `ping` answers.
async fn assert_quiet_and_open(ws: &mut Ws) {
    send_frame(ws, json!({"type": "ping"})).await;
    assert_eq!(recv(ws).await, json!({"type": "pong"}));
}

// ---------------------------------------------------------------- WebSocket

#[tokio::test]
async fn messaging_ws_handshake_accepts_bearer_or_ticket_once() {
    let chat = chat().await;
    let app = &chat.app;
    let mut ws = open(app, &chat.client).await;
    assert_quiet_and_open(&mut ws).await;

    let ticket = app
        .call(
            Method::POST,
            "/api/v1/ws/ticket",
            Some(&chat.client.access),
            None,
        )
        .await;
    assert_eq!(ticket.status, StatusCode::OK, "{}", ticket.body);
    assert_eq!(ticket.json["expires_in"], 30);
    let ticket = ticket.json["ticket"].as_str().expect("ticket").to_owned();
    let mut by_ticket = try_open(app, &format!("?ticket={ticket}"), &[])
        .await
        .expect("a fresh ticket opens a socket");
    assert_quiet_and_open(&mut by_ticket).await;
    assert_refused(
        try_open(app, &format!("?ticket={ticket}"), &[]).await,
        401,
        "unauthorized",
    );

    // An expired ticket (its TTL run out in Redis) is refused too.
    let expiring = app
        .call(
            Method::POST,
            "/api/v1/ws/ticket",
            Some(&chat.client.access),
            None,
        )
        .await
        .json["ticket"]
        .as_str()
        .expect("ticket")
        .to_owned();
    expire_tickets(&app.settings.redis_prefix).await;
    assert_refused(
        try_open(app, &format!("?ticket={expiring}"), &[]).await,
        401,
        "unauthorized",
    );

    assert_refused(try_open(app, "", &[]).await, 401, "unauthorized");
    assert_refused(
        try_open(app, "", &[("authorization", "Bearer not.a.token")]).await,
        401,
        "unauthorized",
    );
    assert_refused(
        try_open(app, "?ticket=made-up", &[]).await,
        401,
        "unauthorized",
    );
    app.call(Method::POST, "/api/v1/ws/ticket", None, None)
        .await
        .assert_problem(401, "unauthorized");
}

/// Lets every ticket under `prefix` expire now, as 30 seconds would.
async fn expire_tickets(prefix: &str) {
    let client = deadpool_redis::redis::Client::open(REDIS_URL).expect("redis");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis connection");
    let keys: Vec<String> = deadpool_redis::redis::cmd("KEYS")
        .arg(format!("{prefix}ws-ticket:*"))
        .query_async(&mut conn)
        .await
        .expect("keys");
    for key in keys {
        let _: i64 = deadpool_redis::redis::cmd("PEXPIRE")
            .arg(key)
            .arg(1)
            .query_async(&mut conn)
            .await
            .expect("pexpire");
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
}

#[tokio::test]
async fn messaging_ws_refuses_foreign_origins() {
    let listed = chat_with(&[("CORS_ORIGINS", "https://app.example")]).await;
    let bearer = format!("Bearer {}", listed.client.access);
    let refused = try_open(
        &listed.app,
        "",
        &[
            ("authorization", &bearer),
            ("origin", "https://evil.example"),
        ],
    )
    .await;
    assert!(matches!(refused, Err((403, _, _))), "{:?}", refused.err());
    let mut allowed = try_open(
        &listed.app,
        "",
        &[
            ("authorization", &bearer),
            ("origin", "https://app.example"),
        ],
    )
    .await
    .expect("an allowed origin");
    assert_quiet_and_open(&mut allowed).await;

    // With no CORS_ORIGINS, no page may open a socket; native clients (no Origin) may.
    let plain = chat().await;
    let bearer = format!("Bearer {}", plain.client.access);
    assert_refused(
        try_open(
            &plain.app,
            "",
            &[
                ("authorization", &bearer),
                ("origin", "https://app.example"),
            ],
        )
        .await,
        403,
        "forbidden",
    );
}

#[tokio::test]
async fn messaging_ws_send_acks_and_reaches_every_socket() {
    let chat = chat().await;
    let app = &chat.app;
    let mut sender = open(app, &chat.client).await;
    let mut senders_phone = open(app, &chat.client).await;
    let mut worker = open(app, &chat.worker).await;

    send_frame(
        &mut sender,
        json!({"type": "send", "thread_id": chat.thread, "body": "on my way", "client_msg_id": "c-1"}),
    )
    .await;
    let ack = recv_type(&mut sender, "ack").await;
    assert_eq!(ack["client_msg_id"], "c-1");
    assert_eq!(ack["message"]["body"], "on my way");
    assert_eq!(ack["message"]["sender_id"], chat.client_id.as_str());

    // Stored before anyone is told: the receiver finds it in the history at once.
    let pushed = recv(&mut worker).await;
    assert_eq!(
        pushed,
        json!({"type": "message", "message": ack["message"]})
    );
    let history = app
        .get(
            &format!("/api/v1/threads/{}/messages", chat.thread),
            Some(&chat.worker.access),
        )
        .await;
    assert_eq!(history.json["items"][0], ack["message"]);
    assert_eq!(
        recv(&mut senders_phone).await,
        pushed,
        "the sender's other socket"
    );
    assert_eq!(recv_type(&mut sender, "message").await, pushed);

    // A retry over the socket acks the first message and pushes nothing new.
    send_frame(
        &mut sender,
        json!({"type": "send", "thread_id": chat.thread, "body": "on my way", "client_msg_id": "c-1"}),
    )
    .await;
    assert_eq!(recv(&mut sender).await["message"], ack["message"]);
    assert_quiet_and_open(&mut worker).await;
    assert_eq!(chat.stored_messages().await, 1);

    // A REST send is pushed the same way.
    let rest = chat.say(&chat.worker, "see you").await;
    assert_eq!(recv(&mut sender).await["message"], rest);
    assert_eq!(recv(&mut worker).await["message"], rest);
}

#[tokio::test]
async fn messaging_ws_relays_typing_and_read() {
    let chat = chat().await;
    let app = &chat.app;
    let mut client = open(app, &chat.client).await;
    let mut worker = open(app, &chat.worker).await;
    send_frame(
        &mut client,
        json!({"type": "typing", "thread_id": chat.thread}),
    )
    .await;
    assert_eq!(
        recv(&mut worker).await,
        json!({"type": "typing", "thread_id": chat.thread, "user_id": chat.client_id})
    );
    assert_quiet_and_open(&mut client).await;

    let message = chat.say(&chat.client, "ready?").await;
    recv(&mut client).await;
    recv(&mut worker).await;
    assert_eq!(chat.thread_of(&chat.worker).await["unread_count"], 1);
    send_frame(
        &mut worker,
        json!({"type": "read", "thread_id": chat.thread, "message_id": message["id"]}),
    )
    .await;
    let read = json!({"type": "read", "thread_id": chat.thread, "user_id": chat.worker_id, "message_id": message["id"]});
    assert_eq!(recv(&mut client).await, read);
    assert_eq!(
        recv(&mut worker).await,
        read,
        "the reader's sockets sync too"
    );
    assert_eq!(chat.thread_of(&chat.worker).await["unread_count"], 0);
}

#[tokio::test]
async fn messaging_ws_bad_frames_get_errors_and_the_socket_stays() {
    let chat = chat().await;
    let app = &chat.app;
    let (_, stranger) = app.user("lurker@example.com", "worker").await;
    let mut ws = open(app, &stranger).await;
    ws.send(Frame::text("{not json")).await.expect("send");
    assert_eq!(recv(&mut ws).await["code"], "malformed_body");
    send_frame(&mut ws, json!({"type": "dance"})).await;
    let unknown = recv(&mut ws).await;
    assert_eq!(unknown["code"], "validation_failed");
    assert_eq!(
        unknown["errors"],
        json!([{"field": "type", "message": "must be one of: send, typing, read, ping"}])
    );
    // Each field is named, as in a 422, from the documented `ClientFrame` schema.
    send_frame(&mut ws, json!({"type": "read", "thread_id": 7})).await;
    let shape = recv(&mut ws).await;
    assert_eq!(shape["code"], "validation_failed");
    let fields: Vec<&str> = shape["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(fields, ["thread_id", "message_id"], "{shape}");
    ws.send(Frame::binary(vec![1, 2, 3])).await.expect("send");
    assert_eq!(recv(&mut ws).await["type"], "error");

    // Threads the user is not in: an error, and nothing stored or relayed.
    let mut worker = open(app, &chat.worker).await;
    send_frame(
        &mut ws,
        json!({"type": "send", "thread_id": chat.thread, "body": "psst", "client_msg_id": "s-1"}),
    )
    .await;
    let error = recv(&mut ws).await;
    assert_eq!(
        error,
        json!({"type": "error", "code": "not_found", "detail": "the resource does not exist", "client_msg_id": "s-1"})
    );
    send_frame(&mut ws, json!({"type": "typing", "thread_id": chat.thread})).await;
    assert_eq!(recv(&mut ws).await["code"], "not_found");
    assert_eq!(chat.stored_messages().await, 0);
    assert_quiet_and_open(&mut worker).await;

    // A participant's invalid send names the field.
    let mut client = open(app, &chat.client).await;
    send_frame(
        &mut client,
        json!({"type": "send", "thread_id": chat.thread, "body": "", "client_msg_id": "e-1"}),
    )
    .await;
    let invalid = recv(&mut client).await;
    assert_eq!(invalid["code"], "validation_failed");
    assert_eq!(invalid["client_msg_id"], "e-1");
    assert_eq!(invalid["errors"][0]["field"], "body", "{invalid}");
    assert_quiet_and_open(&mut ws).await;
}

#[tokio::test]
async fn messaging_ws_oversize_frames_close_1009() {
    let chat = chat().await;
    let mut ws = open(&chat.app, &chat.client).await;
    let huge = json!({"type": "send", "thread_id": chat.thread, "body": "x".repeat(70 * 1024)});
    // The server may close before the whole frame is written.
    let _ = ws.send(Frame::text(huge.to_string())).await;
    assert_eq!(closed_with(&mut ws).await, Some(1009));
    assert_eq!(chat.stored_messages().await, 0);
}

#[tokio::test]
async fn messaging_ws_caps_sockets_per_user() {
    let chat = chat_with(&[("WS_MAX_SOCKETS_PER_USER", "2")]).await;
    let first = open(&chat.app, &chat.client).await;
    let _second = open(&chat.app, &chat.client).await;
    assert_refused(
        try_open_as(&chat.app, &chat.client).await,
        409,
        "too_many_sockets",
    );
    drop(first);
    // The slot frees once the server has seen the first socket go.
    for _ in 0..100 {
        if try_open_as(&chat.app, &chat.client).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the closed socket's slot was never freed");
}

#[tokio::test]
async fn messaging_ws_idle_sockets_are_closed() {
    let chat = chat_with(&[("WS_PING_INTERVAL", "1"), ("WS_IDLE_TIMEOUT", "2")]).await;
    let mut silent = open(&chat.app, &chat.client).await;
    // Not reading means not answering pings: silent past the timeout.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(closed_with(&mut silent).await, Some(1000));
}

#[tokio::test]
async fn messaging_ws_slow_consumer_is_closed_while_others_receive() {
    let chat = chat().await;
    let app = &chat.app;
    // The worker's socket reads nothing, through a tiny receive window.
    let mut slow = open_unread(app, &chat.worker).await;
    let mut reader = open(app, &chat.client).await;
    // Enough to fill the kernel's socket buffers (up to 4 MiB here) and then the queue.
    const SENDS: usize = 700;
    let receiving = tokio::spawn(async move {
        let mut seen = 0;
        while seen < SENDS {
            if recv(&mut reader).await["type"] == "message" {
                seen += 1;
            }
        }
        reader
    });
    let body = "😀".repeat(4000);
    futures_util::stream::iter(0..SENDS)
        .for_each_concurrent(8, |_| async {
            let reply = chat.send(&chat.client, json!({ "body": body })).await;
            assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        })
        .await;
    let mut reader = tokio::time::timeout(WAIT * 4, receiving)
        .await
        .expect("the reading socket got every message")
        .expect("reader");
    assert_quiet_and_open(&mut reader).await;

    // The slow socket was cut off: draining it ends before all messages.
    let mut delivered = 0;
    loop {
        match tokio::time::timeout(WAIT * 2, slow.next())
            .await
            .expect("the slow socket ends")
        {
            Some(Ok(Frame::Text(_))) => delivered += 1,
            // The close frame only gets through if the client reads in time.
            Some(Ok(Frame::Close(frame))) => {
                assert_eq!(frame.map(|f| u16::from(f.code)), Some(1013));
                break;
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => break,
        }
    }
    assert!(
        delivered < SENDS,
        "{delivered} frames reached the slow socket"
    );
    let metrics = marketplace::core::metrics::handle().render();
    assert!(
        metrics.contains("ws_slow_consumer_disconnects_total"),
        "{metrics}"
    );
}

/// A socket over a TCP connection with a small receive buffer, for a client that
/// stops reading.
async fn open_unread(app: &TestApp, tokens: &Tokens) -> Ws {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("buffer size");
    let stream = socket.connect(app.addr).await.expect("connect");
    let mut request = ws_url(app, "").into_client_request().expect("request");
    request.headers_mut().insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {}", tokens.access)).expect("header"),
    );
    let (ws, _) = tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(stream))
        .await
        .expect("handshake");
    ws
}

#[tokio::test]
async fn messaging_ws_two_instances_deliver_to_each_other() {
    let chat = chat().await;
    let other = chat.app.spawn_sibling().await;
    let mut client = open(&chat.app, &chat.client).await;
    let mut worker = open(&other, &chat.worker).await;
    let mut workers_laptop = open(&chat.app, &chat.worker).await;

    send_frame(
        &mut client,
        json!({"type": "send", "thread_id": chat.thread, "body": "across", "client_msg_id": "x-1"}),
    )
    .await;
    let ack = recv_type(&mut client, "ack").await;
    assert_eq!(recv(&mut worker).await["message"], ack["message"]);
    assert_eq!(recv(&mut workers_laptop).await["message"], ack["message"]);
    assert_eq!(
        recv_type(&mut client, "message").await["message"],
        ack["message"]
    );

    let reply = send_to(&other, &chat.worker, &chat.thread, json!({"body": "back"})).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(
        recv_type(&mut client, "message").await["message"],
        reply.json
    );
    send_frame(
        &mut worker,
        json!({"type": "typing", "thread_id": chat.thread}),
    )
    .await;
    assert_eq!(recv(&mut client).await["type"], "typing");
}

#[tokio::test]
async fn messaging_ws_logout_closes_that_login_on_every_instance_only() {
    let chat = chat().await;
    let other = chat.app.spawn_sibling().await;
    let second_login = chat
        .app
        .login("asker@example.com", crate::common::PASSWORD)
        .await;
    let mut here = open(&chat.app, &chat.client).await;
    let mut there = open(&other, &chat.client).await;
    let mut same_user_other_login = open(&other, &second_login).await;
    let mut bystander = open(&chat.app, &chat.worker).await;

    let logout = chat
        .app
        .post("/api/v1/auth/logout", Some(&chat.client.access), json!({}))
        .await;
    assert_eq!(logout.status, StatusCode::NO_CONTENT, "{}", logout.body);
    assert_eq!(closed_with(&mut here).await, Some(1008));
    assert_eq!(closed_with(&mut there).await, Some(1008));
    assert_quiet_and_open(&mut same_user_other_login).await;
    assert_quiet_and_open(&mut bystander).await;
    // The revoked token cannot open a new one.
    assert_refused(
        try_open_as(&chat.app, &chat.client).await,
        401,
        "token_revoked",
    );
}

#[tokio::test]
async fn messaging_ws_suspension_and_password_change_close_sockets() {
    let chat = chat().await;
    let app = &chat.app;
    let (_, admin) = app.admin("mod@example.com").await;
    let mut worker = open(app, &chat.worker).await;
    let suspend = app
        .post(
            &format!("/api/v1/admin/users/{}/suspend", chat.worker_id),
            Some(&admin.access),
            json!({"reason": "spam"}),
        )
        .await;
    assert_eq!(suspend.status, StatusCode::OK, "{}", suspend.body);
    assert_eq!(closed_with(&mut worker).await, Some(1008));

    // A password change ends the other logins' sockets, not the changing one's.
    let other_login = app
        .login("asker@example.com", crate::common::PASSWORD)
        .await;
    let mut keeps = open(app, &chat.client).await;
    let mut loses = open(app, &other_login).await;
    let changed = app
        .post(
            "/api/v1/auth/password",
            Some(&chat.client.access),
            json!({"current_password": crate::common::PASSWORD, "new_password": "another long passphrase"}),
        )
        .await;
    assert!(changed.status.is_success(), "{}", changed.body);
    assert_eq!(closed_with(&mut loses).await, Some(1008));
    assert_quiet_and_open(&mut keeps).await;
}

#[tokio::test]
async fn messaging_ws_shutdown_closes_sockets_going_away() {
    let chat = chat().await;
    let mut ws = open(&chat.app, &chat.client).await;
    assert_eq!(chat.app.state.hub.open_sockets(), 1);
    chat.app.state.hub.shutdown(Duration::from_secs(2)).await;
    assert_eq!(closed_with(&mut ws).await, Some(1001));
    assert_eq!(chat.app.state.hub.open_sockets(), 0);
    assert_refused(
        try_open_as(&chat.app, &chat.client).await,
        503,
        "dependency_unavailable",
    );
}

#[tokio::test]
async fn messaging_ws_pubsub_reconnects_and_clients_resync_from_history() {
    let mut redis = crate::common::private_redis::PrivateRedis::start();
    let url = redis.url();
    let chat = chat_with(&[("REDIS_URL", &url)]).await;
    let mut client = open(&chat.app, &chat.client).await;
    redis.restart();

    // Whatever was published while the subscriber was away is lost to it: the hub
    // reconnects, then closes its sockets so their clients re-sync.
    assert_eq!(closed_with(&mut client).await, Some(1013));
    let missed = until_ok(|| chat.send(&chat.worker, json!({"body": "while you were away"}))).await;
    let mut client = None;
    for _ in 0..100 {
        if let Ok(ws) = try_open_as(&chat.app, &chat.client).await {
            client = Some(ws);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut client = client.expect("a new socket after the restart");
    let history = chat
        .app
        .get(
            &format!("/api/v1/threads/{}/messages", chat.thread),
            Some(&chat.client.access),
        )
        .await;
    assert_eq!(history.json["items"][0], missed);
    let live = chat.say(&chat.worker, "and now live").await;
    assert_eq!(recv(&mut client).await["message"], live);
    let metrics = marketplace::core::metrics::handle().render();
    assert!(metrics.contains("ws_pubsub_reconnects_total"), "{metrics}");
}

/// Retries a request through the one 503 each stale pooled Redis connection gives.
async fn until_ok<F: std::future::Future<Output = Reply>>(request: impl Fn() -> F) -> Value {
    for _ in 0..100 {
        let reply = request().await;
        if reply.status.is_success() {
            return reply.json;
        }
        assert_eq!(
            reply.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{}",
            reply.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the request never succeeded");
}

#[tokio::test]
async fn messaging_ws_frame_rate_is_limited_per_connection() {
    let chat = chat().await;
    let mut flood = open(&chat.app, &chat.client).await;
    let mut calm = open(&chat.app, &chat.client).await;
    for _ in 0..60 {
        send_frame(&mut flood, json!({"type": "ping"})).await;
    }
    let mut limited = 0;
    for _ in 0..60 {
        let frame = recv(&mut flood).await;
        if frame["type"] == "error" {
            assert_eq!(frame["code"], "rate_limited");
            limited += 1;
        }
    }
    assert!(
        limited > 0,
        "a burst past the limit is refused frame by frame"
    );
    assert_quiet_and_open(&mut calm).await;
}
