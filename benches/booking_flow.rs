//! The booking lifecycle under load: 16 clients each book a job, and its worker
//! accepts, starts and completes it, over and over. Prints completed jobs per second and
//! the p50/p99 of one whole flow. Needs a running server (`scripts/bench.sh` starts one)
//! and an admin to approve the workers' KYC:
//!
//!     BASE=http://127.0.0.1:18080 ADMIN_EMAIL=… ADMIN_PASSWORD=… cargo bench --bench booking_flow

use std::time::{Duration, Instant};

use serde_json::{Value, json};

#[path = "support/api.rs"]
mod api;
use api::Api;

const PDF: &[u8] = b"%PDF-1.7\n% bench document\n";

#[tokio::main]
async fn main() {
    let base = std::env::var("BASE").unwrap_or_else(|_| "http://127.0.0.1:18080".to_owned());
    let admin_email = std::env::var("ADMIN_EMAIL").expect("ADMIN_EMAIL");
    let admin_password = std::env::var("ADMIN_PASSWORD").expect("ADMIN_PASSWORD");
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let concurrency: usize = std::env::var("CONCURRENCY")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(16);
    let api = std::sync::Arc::new(Api {
        base,
        http: reqwest::Client::new(),
    });
    let admin = api.login(&admin_email, &admin_password).await;
    let run = uuid::Uuid::now_v7().simple().to_string();

    // One worker (KYC approved, one listing) and one client per lane.
    let mut lanes = Vec::new();
    for lane in 0..concurrency {
        let (_, worker) = api
            .user(&format!("bw{lane}.{run}@bench.example"), "worker")
            .await;
        let form = reqwest::multipart::Form::new()
            .text("document_type", "passport")
            .part(
                "file",
                reqwest::multipart::Part::bytes(PDF).file_name("id.pdf"),
            );
        let submission: Value = api
            .http
            .post(format!("{}/api/v1/workers/me/kyc", api.base))
            .bearer_auth(&worker)
            .multipart(form)
            .send()
            .await
            .expect("upload")
            .json()
            .await
            .expect("json");
        let kyc = submission["id"].as_str().expect("kyc id");
        api.post(
            &format!("/api/v1/admin/kyc/{kyc}/approve"),
            Some(&admin),
            json!({}),
        )
        .await;
        let service = api
            .post(
                "/api/v1/services",
                Some(&worker),
                json!({"title": "Bench cleaning", "description": "Benchmark listing", "category": "cleaning",
                       "price_cents": 3000, "pricing_unit": "fixed", "city": "Lisbon", "duration_minutes": 60}),
            )
            .await;
        let (_, client) = api
            .user(&format!("bc{lane}.{run}@bench.example"), "client")
            .await;
        lanes.push((
            worker,
            client,
            service["id"].as_str().expect("id").to_owned(),
        ));
    }

    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (lane, (worker, client, service)) in lanes.into_iter().enumerate() {
        let api = std::sync::Arc::clone(&api);
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            let mut slot = 0i64;
            while Instant::now() < deadline {
                let flow = Instant::now();
                // Two hours after the lane's previous job, lanes far apart: no overlaps.
                slot += 1;
                let at = chrono::Utc::now() + chrono::Duration::days(2) + chrono::Duration::hours(slot * 2 + lane as i64 * 100_000);
                let job = api
                    .post(
                        "/api/v1/jobs",
                        Some(&client),
                        json!({"service_id": service, "scheduled_at": at.to_rfc3339(), "address": "Bench street 1"}),
                    )
                    .await;
                let id = job["id"].as_str().expect("job id").to_owned();
                for action in ["accept", "start", "complete"] {
                    api.post(&format!("/api/v1/jobs/{id}/{action}"), Some(&worker), json!({})).await;
                }
                latencies.push(flow.elapsed());
            }
            latencies
        });
    }
    let mut all: Vec<Duration> = tasks.join_all().await.into_iter().flatten().collect();
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct = |p: f64| {
        all.get(((all.len() as f64 - 1.0) * p) as usize)
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "booking_flow jobs={} concurrency={concurrency} jobs_per_sec={:.1} requests_per_sec={:.1} p50_ms={:.2} p99_ms={:.2}",
        all.len(),
        all.len() as f64 / elapsed,
        4.0 * all.len() as f64 / elapsed,
        pct(0.5),
        pct(0.99)
    );
}
