//! The ceiling for login throughput: raw argon2id hashing with the service's parameters
//! (19 MiB, t=2, p=1) on every core, no HTTP, no database. `scripts/bench.sh` compares
//! the login endpoint against this number.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use argon2::{Algorithm, Argon2, Params, PasswordHasher, Version};

fn main() {
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let threads = std::thread::available_parallelism().map_or(2, usize::from);
    let done = AtomicU64::new(0);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let params = Params::new(19_456, 2, 1, None).expect("valid parameters");
                let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
                while Instant::now() < deadline {
                    argon2
                        .hash_password(b"correct horse battery")
                        .expect("hash");
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    let rate = done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    println!("argon2id_hashes_per_sec={rate:.1} threads={threads}");
}
