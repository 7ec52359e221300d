//! Commit-to-socket latency of notifications. Needs running servers
//! (`scripts/bench-events.sh` starts them).
//!
//! `PAIRS` client/worker pairs, each with an inquiry thread. Clients send chat messages
//! over REST (`POST /api/v1/threads/{id}/messages`) through `BASE`; each worker has one
//! socket on `BASE2` (another instance, or the same). `COUNT` messages go out open-loop
//! at `RATE`/s, round-robin over the pairs. The message's `MessageSent` event commits
//! with it; a dispatcher (on any instance) stores the worker's notification and pushes
//! it. Latency = the `{"type":"notification"}` frame's arrival at the worker's socket −
//! the send's response arrival. The response comes after the commit, so this slightly
//! understates commit-to-socket (a frame that beats the response counts as 0).
//!
//! Prints one markdown row: events, received, p50/p99/max ms.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

#[path = "support/api.rs"]
mod api;
#[path = "support/ws.rs"]
mod ws;
use api::Api;
use ws::{Pair, connect, env, env_str, percentile};

/// Message id → microseconds since the epoch, for responses and for notification frames.
#[derive(Default)]
struct Times {
    responded: HashMap<String, u64>,
    notified: HashMap<String, u64>,
    duplicates: u64,
}

#[tokio::main]
async fn main() {
    let http = reqwest::Client::new();
    let base = env_str("BASE", "http://127.0.0.1:18092");
    let api = Api {
        base: base.clone(),
        http: http.clone(),
    };
    let api2 = Api {
        base: env_str("BASE2", &base),
        http,
    };
    let pairs: usize = env("PAIRS", 20);
    let count: u64 = env("COUNT", 1000);
    let rate: u64 = env("RATE", 50);
    let tag = env_str("TAG", "notify");
    let epoch = Instant::now();
    let times = Arc::new(Mutex::new(Times::default()));

    let mut threads = Vec::new();
    let mut clients = Vec::new();
    for i in 0..pairs {
        let Pair {
            worker,
            client,
            thread,
        } = Pair::register(&api, &api2, &tag, i).await;
        threads.push(thread);
        clients.push(client);
        let mut socket = connect(&api2.base, &worker).await;
        let times = times.clone();
        tokio::spawn(async move {
            while let Some(Ok(frame)) = socket.next().await {
                let Message::Text(text) = frame else { continue };
                let now = epoch.elapsed().as_micros() as u64;
                let Ok(value) = serde_json::from_str::<Value>(&text) else {
                    continue;
                };
                if value["type"] != "notification" {
                    continue;
                }
                let Some(id) = value["notification"]["payload"]["message_id"].as_str() else {
                    continue;
                };
                let mut times = times.lock().expect("times");
                if times.notified.insert(id.to_owned(), now).is_some() {
                    times.duplicates += 1;
                }
            }
        });
    }
    // Let the sockets subscribe before the first send.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let api = Arc::new(api);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut sends = Vec::with_capacity(count as usize);
    for seq in 0..count {
        tick.tick().await;
        let pair = (seq as usize) % pairs;
        let (api, times) = (api.clone(), times.clone());
        let (thread, token) = (threads[pair].clone(), clients[pair].clone());
        sends.push(tokio::spawn(async move {
            let sent = api
                .post(
                    &format!("/api/v1/threads/{thread}/messages"),
                    Some(&token),
                    json!({ "body": format!("bench notify {seq}") }),
                )
                .await;
            let now = epoch.elapsed().as_micros() as u64;
            let id = sent["id"].as_str().expect("message id").to_owned();
            times.lock().expect("times").responded.insert(id, now);
        }));
    }
    for send in sends {
        send.await.expect("send task");
    }
    // Bounded wait for the last notifications.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let done = {
            let t = times.lock().expect("times");
            t.responded.keys().all(|id| t.notified.contains_key(id))
        };
        if done || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let times = times.lock().expect("times");
    let mut latencies: Vec<u64> = times
        .responded
        .iter()
        .filter_map(|(id, at)| times.notified.get(id).map(|n| n.saturating_sub(*at)))
        .collect();
    latencies.sort_unstable();
    println!(
        "| {tag} | {rate}/s | {count} | {} | {} | {:.1} | {:.1} | {:.1} |",
        latencies.len(),
        times.duplicates,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0),
    );
}
