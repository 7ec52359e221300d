//! WebSocket load: idle-socket memory, and open-loop chat traffic with every required
//! delivery counted. Needs running servers (`scripts/bench-ws.sh` starts them).
//!
//! `MODE=idle`: opens `SOCKETS` sockets for `USERS` users and prints the server's RSS
//! growth per socket (`SERVER_PID`'s /proc status).
//!
//! `MODE=load`: `PAIRS` client/worker pairs, each with an inquiry thread, one socket
//! each — the client's on `BASE`, the worker's on `BASE2` (another instance, or the
//! same). For each rate in `RATES` (messages/s, comma-separated) the clients send for
//! `SECONDS`, open-loop (on a fixed schedule, whatever the replies), round-robin over
//! the pairs. Every message must reach the worker's socket and the sender's own socket
//! once (`message` frames) and be acked once; the tool prints ack and delivery latency
//! p50/p99, lost and duplicate deliveries per rate.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

#[path = "support/api.rs"]
mod api;
#[path = "support/ws.rs"]
mod ws;
use api::Api;
use ws::{Pair, Socket, connect, env, env_str, percentile};

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

async fn idle(api: &Api) {
    let base = api.base.as_str();
    let sockets: usize = env("SOCKETS", 10_000);
    let users: usize = env("USERS", 100);
    let pid: u32 = env("SERVER_PID", 0);
    let mut tokens = Vec::new();
    for n in 0..users {
        tokens.push(api.user(&format!("idle{n}@example.com"), "client").await.1);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = rss_kib(pid);
    let started = Instant::now();
    let mut open = Vec::with_capacity(sockets);
    let mut batch = Vec::new();
    for n in 0..sockets {
        let token = tokens[n % users].clone();
        let base = base.to_owned();
        batch.push(tokio::spawn(async move { connect(&base, &token).await }));
        if batch.len() == 200 {
            for socket in batch.drain(..) {
                open.push(socket.await.expect("task"));
            }
        }
    }
    for socket in batch {
        open.push(socket.await.expect("task"));
    }
    let opened_in = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib(pid);
    println!(
        "ws_idle sockets={} open_secs={:.1} rss_before_kib={before} rss_after_kib={after} bytes_per_socket={}",
        open.len(),
        opened_in.as_secs_f64(),
        (after.saturating_sub(before) * 1024) / sockets as u64
    );
    for mut socket in open {
        let _ = socket.close(None).await;
    }
}

/// What the readers record, shared.
#[derive(Default)]
struct Tally {
    acks: Vec<u64>,
    deliveries: Vec<u64>,
    /// (message seq, socket index) → times delivered.
    seen: HashMap<(u64, usize), u32>,
    errors: u64,
}

/// `s{seq}-{micros since start}`: a client_msg_id that carries its send time.
fn parse_key(key: &str) -> Option<(u64, u64)> {
    let (seq, at) = key.strip_prefix('s')?.split_once('-')?;
    Some((seq.parse().ok()?, at.parse().ok()?))
}

fn spawn_reader(
    mut stream: futures_util::stream::SplitStream<Socket>,
    index: usize,
    epoch: Instant,
    tally: Arc<Mutex<Tally>>,
) {
    tokio::spawn(async move {
        while let Some(Ok(frame)) = stream.next().await {
            let Message::Text(text) = frame else { continue };
            let now = epoch.elapsed().as_micros() as u64;
            let Ok(value) = serde_json::from_str::<Value>(&text) else {
                continue;
            };
            let key = value["message"]["client_msg_id"]
                .as_str()
                .and_then(parse_key);
            let mut tally = tally.lock().expect("tally");
            match (value["type"].as_str(), key) {
                (Some("ack"), Some((_, at))) => tally.acks.push(now.saturating_sub(at)),
                (Some("message"), Some((seq, at))) => {
                    tally.deliveries.push(now.saturating_sub(at));
                    *tally.seen.entry((seq, index)).or_default() += 1;
                }
                (Some("error"), _) => tally.errors += 1,
                _ => {}
            }
        }
    });
}

/// Clients through `api`, workers through `api2` (possibly another instance).
async fn load(api: &Api, api2: &Api) {
    let (base, base2) = (api.base.as_str(), api2.base.as_str());
    let pairs: usize = env("PAIRS", 100);
    let seconds: u64 = env("SECONDS", 10);
    let rates: Vec<u64> = env_str("RATES", "200,400")
        .split(',')
        .filter_map(|r| r.trim().parse().ok())
        .collect();
    let tag = env_str("TAG", "load");

    // Pairs, their threads and sockets: client i is socket 2i (on BASE), worker 2i+1 (on BASE2).
    let epoch = Instant::now();
    let tally = Arc::new(Mutex::new(Tally::default()));
    let mut writers = Vec::new();
    let mut threads = Vec::new();
    let mut keepers = Vec::new();
    for i in 0..pairs {
        let Pair {
            worker,
            client,
            thread,
        } = Pair::register(api, api2, &tag, i).await;
        threads.push(thread);
        let (client_sink, client_stream) = connect(base, &client).await.split();
        let (worker_sink, worker_stream) = connect(base2, &worker).await.split();
        spawn_reader(client_stream, 2 * i, epoch, tally.clone());
        spawn_reader(worker_stream, 2 * i + 1, epoch, tally.clone());
        keepers.push(worker_sink);
        let (tx, mut rx) = mpsc::unbounded_channel::<String>();
        let mut sink = client_sink;
        tokio::spawn(async move {
            while let Some(text) = rx.recv().await {
                if sink.send(Message::text(text)).await.is_err() {
                    break;
                }
            }
        });
        writers.push(tx);
    }

    println!(
        "| {tag} msg/s target | sent | acked | ack p50 ms | ack p99 ms | delivery p50 ms | delivery p99 ms | lost | dup | errors |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut seq: u64 = 0;
    for rate in rates {
        *tally.lock().expect("tally") = Tally::default();
        let first = seq;
        let total = rate * seconds;
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        for _ in 0..total {
            tick.tick().await;
            let pair = (seq as usize) % pairs;
            let at = epoch.elapsed().as_micros();
            let frame = json!({
                "type": "send", "thread_id": threads[pair],
                "body": format!("bench message {seq}"), "client_msg_id": format!("s{seq}-{at}"),
            });
            let _ = writers[pair].send(frame.to_string());
            seq += 1;
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        let mut tally = tally.lock().expect("tally");
        tally.acks.sort_unstable();
        tally.deliveries.sort_unstable();
        let expected = total * 2;
        let distinct = tally
            .seen
            .keys()
            .filter(|(s, _)| *s >= first && *s < seq)
            .count() as u64;
        let dup: u64 = tally.seen.values().map(|n| u64::from(n - 1)).sum();
        println!(
            "| {rate} | {total} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {dup} | {} |",
            tally.acks.len(),
            percentile(&tally.acks, 0.5),
            percentile(&tally.acks, 0.99),
            percentile(&tally.deliveries, 0.5),
            percentile(&tally.deliveries, 0.99),
            expected.saturating_sub(distinct),
            tally.errors,
        );
    }
    drop(keepers);
}

#[tokio::main]
async fn main() {
    let http = reqwest::Client::new();
    let base = env_str("BASE", "http://127.0.0.1:18090");
    let api = Api {
        base: base.clone(),
        http: http.clone(),
    };
    let api2 = Api {
        base: env_str("BASE2", &base),
        http,
    };
    match env_str("MODE", "load").as_str() {
        "idle" => idle(&api).await,
        _ => load(&api, &api2).await,
    }
}
