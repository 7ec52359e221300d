//! `marketplace seed`: realistic, varied demo data, fast, for demos and benchmarks.
//!
//! Workers are created KYC-approved with weekday availability, so their listings are
//! public; listings spread over categories and cities with searchable text. Everyone
//! shares one password (hashed once), printed at the end. Rows go in with large
//! multi-row INSERTs inside one transaction per batch; 100k listings take seconds.

use chrono::Utc;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use indicatif::{ProgressBar, ProgressStyle};
use rand::{Rng, SeedableRng, rngs::StdRng, seq::IndexedRandom};

use crate::{
    config::Secret,
    core::ids::{ServiceId, UserId},
    db::{
        enums::{KycStatus, PricingUnit, UserRole},
        schema::{availability_slots, clients, services, users, workers},
    },
    state::AppState,
};

/// How much to create.
#[derive(Debug, Clone, Copy)]
pub struct Amounts {
    pub workers: usize,
    pub services: usize,
    pub clients: usize,
}

/// What `seed` made, for the summary it prints.
#[derive(Debug)]
pub struct Seeded {
    pub password: String,
    pub worker_email: Option<String>,
    pub client_email: Option<String>,
    pub services: usize,
}

/// Rows per INSERT: PostgreSQL allows 65535 bind parameters per statement.
const BATCH: usize = 4000;

const CATEGORIES: &[(&str, &[&str])] = &[
    (
        "plumbing",
        &[
            "Leak repair",
            "Boiler service",
            "Bathroom plumbing",
            "Drain unblocking",
            "Tap installation",
        ],
    ),
    (
        "electrical",
        &[
            "Socket installation",
            "Lighting design",
            "Fuse box upgrade",
            "Electrical inspection",
        ],
    ),
    (
        "cleaning",
        &[
            "Deep home cleaning",
            "End of tenancy cleaning",
            "Window cleaning",
            "Office cleaning",
        ],
    ),
    (
        "gardening",
        &[
            "Lawn mowing",
            "Hedge trimming",
            "Garden design",
            "Tree pruning",
        ],
    ),
    (
        "painting",
        &[
            "Interior painting",
            "Exterior painting",
            "Wallpapering",
            "Furniture restoration",
        ],
    ),
    (
        "moving",
        &[
            "Small moves",
            "Furniture assembly",
            "Piano moving",
            "Van with driver",
        ],
    ),
    (
        "tutoring",
        &[
            "Maths tutoring",
            "English lessons",
            "Exam preparation",
            "Coding for kids",
        ],
    ),
    (
        "music",
        &[
            "Piano lessons",
            "Guitar lessons",
            "Singing coach",
            "Violin lessons",
        ],
    ),
    (
        "photography",
        &[
            "Wedding photography",
            "Portrait session",
            "Product photos",
            "Event photography",
        ],
    ),
    (
        "pet care",
        &["Dog walking", "Pet sitting", "Dog grooming", "Cat sitting"],
    ),
];
const CITIES: &[&str] = &[
    "Lisbon",
    "Porto",
    "Braga",
    "Coimbra",
    "Faro",
    "Madrid",
    "Barcelona",
    "Paris",
    "Berlin",
    "Amsterdam",
];
const FIRST: &[&str] = &[
    "Ana", "João", "Maria", "Pedro", "Sofia", "Miguel", "Inês", "Tiago", "Beatriz", "Rui", "Clara",
    "Luís",
];
const LAST: &[&str] = &[
    "Silva",
    "Santos",
    "Ferreira",
    "Pereira",
    "Oliveira",
    "Costa",
    "Rodrigues",
    "Martins",
    "Sousa",
    "Gomes",
];
const QUALITIES: &[&str] = &[
    "reliable",
    "fast",
    "affordable",
    "professional",
    "friendly",
    "experienced",
    "certified",
    "careful",
];
const DETAILS: &[&str] = &[
    "Tools and materials included.",
    "Available on weekends.",
    "Free quote before starting.",
    "Fully insured and licensed.",
    "Over ten years of experience.",
    "Eco-friendly products on request.",
    "Same-day service in the city centre.",
    "References from happy customers available.",
];

fn name(rng: &mut StdRng) -> String {
    format!(
        "{} {}",
        FIRST.choose(rng).unwrap_or(&"Alex"),
        LAST.choose(rng).unwrap_or(&"Doe")
    )
}

/// Fills the database; `progress` draws a bar on the terminal (off in tests).
pub async fn seed(
    state: &AppState,
    amounts: Amounts,
    password: &str,
    progress: bool,
) -> anyhow::Result<Seeded> {
    let hash = state.passwords.hash(Secret::new(password)).await?;
    let mut rng = StdRng::seed_from_u64(0x5eed);
    // A tag per run keeps emails unique when seeding twice.
    let tag: String = uuid::Uuid::now_v7().simple().to_string()[24..].to_owned();
    let total = (amounts.workers + amounts.clients + amounts.services) as u64;
    let bar = if progress {
        ProgressBar::new(total)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{msg:10} [{bar:40}] {pos}/{len} ({per_sec})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let mut conn = state.conn().await?;

    bar.set_message("workers");
    let mut worker_ids = Vec::with_capacity(amounts.workers);
    for chunk in (0..amounts.workers).collect::<Vec<_>>().chunks(BATCH / 2) {
        let batch: Vec<(UserId, String, String)> = chunk
            .iter()
            .map(|i| {
                (
                    UserId::new(),
                    format!("worker{i}.{tag}@seed.example"),
                    name(&mut rng),
                )
            })
            .collect();
        let profiles: Vec<_> = batch
            .iter()
            .map(|(id, _, _)| {
                let (category, _) = CATEGORIES.choose(&mut rng).unwrap_or(&CATEGORIES[0]);
                (
                    workers::user_id.eq(*id),
                    workers::bio.eq(format!(
                        "{} {category} specialist.",
                        QUALITIES.choose(&mut rng).unwrap_or(&"reliable")
                    )),
                    workers::skills.eq(vec![Some((*category).to_owned())]),
                    workers::city.eq(Some(*CITIES.choose(&mut rng).unwrap_or(&"Lisbon"))),
                    workers::timezone.eq("Europe/Lisbon"),
                    workers::hourly_rate_cents.eq(Some(rng.random_range(15..80) * 100_i64)),
                    workers::kyc_status.eq(KycStatus::Approved),
                )
            })
            .collect();
        insert_users(&mut conn, &batch, UserRole::Worker, &hash).await?;
        diesel::insert_into(workers::table)
            .values(profiles)
            .execute(&mut conn)
            .await?;
        let slots: Vec<_> = batch
            .iter()
            .flat_map(|(id, _, _)| {
                (0..5_i16).map(move |day| {
                    (
                        availability_slots::worker_id.eq(*id),
                        availability_slots::weekday.eq(day),
                        availability_slots::start_minute.eq(9 * 60_i16),
                        availability_slots::end_minute.eq(18 * 60_i16),
                    )
                })
            })
            .collect();
        diesel::insert_into(availability_slots::table)
            .values(slots)
            .execute(&mut conn)
            .await?;
        worker_ids.extend(batch.iter().map(|(id, _, _)| *id));
        bar.inc(chunk.len() as u64);
    }

    bar.set_message("clients");
    for chunk in (0..amounts.clients).collect::<Vec<_>>().chunks(BATCH / 2) {
        let batch: Vec<(UserId, String, String)> = chunk
            .iter()
            .map(|i| {
                (
                    UserId::new(),
                    format!("client{i}.{tag}@seed.example"),
                    name(&mut rng),
                )
            })
            .collect();
        insert_users(&mut conn, &batch, UserRole::Client, &hash).await?;
        let rows: Vec<_> = batch
            .iter()
            .map(|(id, _, _)| {
                (
                    clients::user_id.eq(*id),
                    clients::city.eq(Some(*CITIES.choose(&mut rng).unwrap_or(&"Lisbon"))),
                )
            })
            .collect();
        diesel::insert_into(clients::table)
            .values(rows)
            .execute(&mut conn)
            .await?;
        bar.inc(chunk.len() as u64);
    }

    bar.set_message("services");
    let mut made = 0;
    if !worker_ids.is_empty() {
        while made < amounts.services {
            let n = BATCH.min(amounts.services - made);
            let rows: Vec<_> = (0..n)
                .map(|_| {
                    let (category, titles) = CATEGORIES.choose(&mut rng).unwrap_or(&CATEGORIES[0]);
                    let title = titles.choose(&mut rng).unwrap_or(&"Service");
                    let quality = QUALITIES.choose(&mut rng).unwrap_or(&"reliable");
                    let city = CITIES.choose(&mut rng).unwrap_or(&"Lisbon");
                    let details: Vec<&str> =
                        DETAILS.choose_multiple(&mut rng, 2).copied().collect();
                    let hourly = rng.random_bool(0.4);
                    let rated = rng.random_bool(0.7);
                    (
                        services::id.eq(ServiceId::new()),
                        services::worker_id
                            .eq(*worker_ids.choose(&mut rng).unwrap_or(&worker_ids[0])),
                        services::title.eq(format!("{title} in {city}")),
                        services::description.eq(format!(
                            "A {quality} {category} service. {}",
                            details.join(" ")
                        )),
                        services::category.eq(*category),
                        services::price_cents.eq(rng.random_range(10..500) * 100_i64),
                        services::pricing_unit.eq(if hourly {
                            PricingUnit::Hourly
                        } else {
                            PricingUnit::Fixed
                        }),
                        services::city.eq(*city),
                        services::duration_minutes
                            .eq(*[30, 60, 90, 120, 180].choose(&mut rng).unwrap_or(&60)),
                        services::rating_avg
                            .eq(rated.then(|| f64::from(rng.random_range(30..=50_u8)) / 10.0)),
                        services::rating_count.eq(if rated { rng.random_range(1..200) } else { 0 }),
                        services::created_at.eq(Utc::now()),
                    )
                })
                .collect();
            diesel::insert_into(services::table)
                .values(rows)
                .execute(&mut conn)
                .await?;
            made += n;
            bar.inc(n as u64);
        }
    }
    bar.finish_with_message("done");
    analyze(&mut conn).await?;
    Ok(Seeded {
        password: password.to_owned(),
        worker_email: (amounts.workers > 0).then(|| format!("worker0.{tag}@seed.example")),
        client_email: (amounts.clients > 0).then(|| format!("client0.{tag}@seed.example")),
        services: made,
    })
}

async fn insert_users(
    conn: &mut AsyncPgConnection,
    batch: &[(UserId, String, String)],
    role: UserRole,
    hash: &str,
) -> anyhow::Result<()> {
    let rows: Vec<_> = batch
        .iter()
        .map(|(id, email, full_name)| {
            (
                users::id.eq(*id),
                users::email.eq(email.as_str()),
                users::password_hash.eq(hash),
                users::full_name.eq(full_name.as_str()),
                users::role.eq(role),
            )
        })
        .collect();
    conn.transaction::<_, diesel::result::Error, _>(async move |conn| {
        diesel::insert_into(users::table)
            .values(rows)
            .execute(conn)
            .await
            .map(|_| ())
    })
    .await?;
    Ok(())
}

/// Fresh statistics, so the planner picks the indexes right after a bulk load.
async fn analyze(conn: &mut AsyncPgConnection) -> anyhow::Result<()> {
    use diesel_async::SimpleAsyncConnection;
    conn.batch_execute("ANALYZE users; ANALYZE workers; ANALYZE clients; ANALYZE services; ANALYZE availability_slots")
        .await?;
    Ok(())
}
