//! `marketplace seed`: realistic, varied demo data, fast, for demos and benchmarks.
//!
//! Workers are created KYC-approved with weekday availability, so their listings are
//! public. Each worker has one trade and one city: their bio and skills name the trade,
//! and every listing of theirs is in that trade and city, placed around the city centre
//! (nearer the centre more often; one in ten without a location). Everyone shares one
//! password (hashed once), printed at the end. Users go in with large multi-row INSERTs;
//! listings are made by PostgreSQL itself, set-based (`INSERT … SELECT` over
//! `generate_series`), 100k per statement, so a million take a minute, not an hour.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use indicatif::{ProgressBar, ProgressStyle};
use rand::{Rng, SeedableRng, rngs::StdRng, seq::IndexedRandom};

use crate::{
    config::Secret,
    core::ids::UserId,
    db::{
        enums::{KycStatus, UserRole},
        schema::{availability_slots, clients, users, workers},
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
/// Cities and their centres (degrees).
const CITIES: &[(&str, f64, f64)] = &[
    ("Lisbon", 38.7223, -9.1393),
    ("Porto", 41.1579, -8.6291),
    ("Braga", 41.5454, -8.4265),
    ("Coimbra", 40.2033, -8.4103),
    ("Faro", 37.0194, -7.9304),
    ("Madrid", 40.4168, -3.7038),
    ("Barcelona", 41.3874, 2.1686),
    ("Paris", 48.8566, 2.3522),
    ("Berlin", 52.5200, 13.4050),
    ("Amsterdam", 52.3676, 4.9041),
];

/// Listings per `INSERT … SELECT` (one progress step).
const LISTING_BATCH: usize = 100_000;
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
                let (category, titles) = CATEGORIES.choose(&mut rng).unwrap_or(&CATEGORIES[0]);
                let (city, _, _) = CITIES.choose(&mut rng).unwrap_or(&CITIES[0]);
                let skills = std::iter::once((*category).to_owned())
                    .chain(
                        titles
                            .choose_multiple(&mut rng, 2)
                            .map(|t| t.to_lowercase()),
                    )
                    .map(Some)
                    .collect::<Vec<_>>();
                (
                    workers::user_id.eq(*id),
                    workers::bio.eq(format!(
                        "{} {category} specialist in {city}: {}.",
                        capitalised(QUALITIES.choose(&mut rng).unwrap_or(&"reliable")),
                        titles.join(", ").to_lowercase()
                    )),
                    workers::skills.eq(skills),
                    workers::city.eq(Some(*city)),
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
                    clients::city.eq(Some(CITIES.choose(&mut rng).unwrap_or(&CITIES[0]).0)),
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
        conn.transaction::<_, anyhow::Error, _>(async |conn| {
            // A bulk load, not a request: the pool's statement timeout does not apply.
            conn.batch_execute("SET LOCAL statement_timeout = 0")
                .await?;
            catalog_tables(conn).await?;
            // Building an index once is far cheaper than growing it row by row (RUM,
            // GIN and GiST most of all): set the secondary indexes aside, whatever they
            // are, and rebuild them from their own definitions after the load.
            let indexes = secondary_indexes(conn).await?;
            for index in &indexes {
                conn.batch_execute(&format!("DROP INDEX {}", index.name))
                    .await?;
            }
            while made < amounts.services {
                let n = LISTING_BATCH.min(amounts.services - made);
                insert_listings(conn, &worker_ids, made, n, amounts.services).await?;
                made += n;
                bar.inc(n as u64);
            }
            bar.set_message("indexes");
            conn.batch_execute("SET LOCAL maintenance_work_mem = '256MB'")
                .await?;
            for index in &indexes {
                conn.batch_execute(&index.definition).await?;
            }
            Ok(())
        })
        .await?;
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

/// An index of `services` other than its primary key, as `pg_get_indexdef` gives it.
#[derive(diesel::QueryableByName)]
struct Index {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    definition: String,
}

async fn secondary_indexes(conn: &mut AsyncPgConnection) -> anyhow::Result<Vec<Index>> {
    Ok(diesel::sql_query(
        "SELECT quote_ident(c.relname) AS name, pg_get_indexdef(i.indexrelid) AS definition \
         FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
         WHERE i.indrelid = 'services'::regclass AND NOT i.indisprimary AND NOT i.indisunique",
    )
    .load(conn)
    .await?)
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// The seed's vocabulary as temporary tables (dropped at commit), for the set-based insert.
async fn catalog_tables(conn: &mut AsyncPgConnection) -> anyhow::Result<()> {
    use diesel::sql_types::{Array, Double, Integer, Text};
    conn.batch_execute(
        "CREATE TEMP TABLE seed_titles (category text, k int, title text) ON COMMIT DROP; \
         CREATE TEMP TABLE seed_cities (city text, lat float8, lng float8) ON COMMIT DROP; \
         CREATE TEMP TABLE seed_words (kind text, k int, word text) ON COMMIT DROP",
    )
    .await?;
    let (mut category, mut k, mut title) = (Vec::new(), Vec::new(), Vec::new());
    for (name, titles) in CATEGORIES {
        for (i, t) in titles.iter().enumerate() {
            category.push(*name);
            k.push(i as i32);
            title.push(*t);
        }
    }
    diesel::sql_query("INSERT INTO seed_titles SELECT * FROM unnest($1, $2, $3)")
        .bind::<Array<Text>, _>(category)
        .bind::<Array<Integer>, _>(k)
        .bind::<Array<Text>, _>(title)
        .execute(conn)
        .await?;
    diesel::sql_query("INSERT INTO seed_cities SELECT * FROM unnest($1, $2, $3)")
        .bind::<Array<Text>, _>(CITIES.iter().map(|c| c.0).collect::<Vec<_>>())
        .bind::<Array<Double>, _>(CITIES.iter().map(|c| c.1).collect::<Vec<_>>())
        .bind::<Array<Double>, _>(CITIES.iter().map(|c| c.2).collect::<Vec<_>>())
        .execute(conn)
        .await?;
    let words = QUALITIES
        .iter()
        .enumerate()
        .map(|(i, w)| ("quality", i as i32, *w))
        .chain(
            DETAILS
                .iter()
                .enumerate()
                .map(|(i, w)| ("detail", i as i32, *w)),
        );
    let (kind, k, word): (Vec<_>, Vec<_>, Vec<_>) = unzip3(words);
    diesel::sql_query("INSERT INTO seed_words SELECT * FROM unnest($1, $2, $3)")
        .bind::<Array<Text>, _>(kind)
        .bind::<Array<Integer>, _>(k)
        .bind::<Array<Text>, _>(word)
        .execute(conn)
        .await?;
    conn.batch_execute("ANALYZE seed_titles; ANALYZE seed_cities; ANALYZE seed_words")
        .await?;
    Ok(())
}

fn unzip3<A, B, C>(items: impl Iterator<Item = (A, B, C)>) -> (Vec<A>, Vec<B>, Vec<C>) {
    let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
    for (x, y, z) in items {
        a.push(x);
        b.push(y);
        c.push(z);
    }
    (a, b, c)
}

/// How far back the seeded listings were created: listing `i` of `total` is
/// `i / total` of the way from then to now.
const LISTING_SPAN_MS: i64 = 365 * 24 * 3600 * 1000;

/// Listings `from..from + n` of `total`, each of worker `i mod workers` (so every worker
/// lists a share), in that worker's trade and city. Listing `i` was created at its
/// place in the last [`LISTING_SPAN_MS`]: its UUID v7 id (those milliseconds, then
/// random bits) and `created_at` say so, and rows are written in that order, so
/// consecutive listings are of different workers and trades, as on a real catalog,
/// and the table's physical order follows the newest sort. (Ids from the clock at
/// insert time came out grouped by trade: the 10 % plumbing listings were the oldest
/// 10 %, which no real catalog looks like and which misled the search measurements.)
/// `listed` is computed from the worker and user rows, like `service::listed` does.
async fn insert_listings(
    conn: &mut AsyncPgConnection,
    workers: &[UserId],
    from: usize,
    n: usize,
    total: usize,
) -> anyhow::Result<()> {
    use diesel::sql_types::{Array, BigInt, Uuid};
    let ids: Vec<uuid::Uuid> = workers.iter().map(|w| w.0).collect();
    diesel::sql_query(
        "WITH ws AS ( \
             SELECT w.user_id, w.skills[1] AS category, w.city, o.k - 1 AS k, \
                    (u.status = 'active' AND w.kyc_status = 'approved') AS visible \
             FROM unnest($1::uuid[]) WITH ORDINALITY o(id, k) \
             JOIN workers w ON w.user_id = o.id JOIN users u ON u.id = w.user_id), \
         n AS (SELECT count(*) AS n FROM ws), \
         draws AS ( \
             SELECT i, ws.*, $4::bigint + i * $5::bigint / $6::bigint AS at_ms, random() AS r_title, random() AS r_quality, random() AS r_d1, \
                    random() AS r_d2, random() AS r_radius, random() AS r_angle, random() AS r_loc, \
                    random() AS r_price, random() AS r_unit, random() AS r_rated, random() AS r_rating, \
                    random() AS r_duration \
             FROM generate_series($2::bigint, $2::bigint + $3::bigint - 1) i CROSS JOIN n \
             JOIN ws ON ws.k = i % n.n), \
         per_category AS (SELECT category, count(*) AS n FROM seed_titles GROUP BY category), \
         per_kind AS (SELECT kind, count(*) AS n FROM seed_words GROUP BY kind) \
         INSERT INTO services (id, worker_id, title, description, category, price_cents, pricing_unit, \
             city, duration_minutes, rating_avg, rating_count, listed, location_lat, location_lng, \
             created_at, updated_at) \
         SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid()) placing \
                    substring(int8send(d.at_ms) FROM 3) FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid, \
                d.user_id, t.title || ' in ' || d.city, \
                'A ' || q.word || ' ' || d.category || ' service. ' || d1.word || ' ' || d2.word, \
                d.category, (10 + floor(d.r_price * 490))::bigint * 100, \
                CASE WHEN d.r_unit < 0.4 THEN 'hourly' ELSE 'fixed' END::pricing_unit, \
                d.city, (ARRAY[30, 60, 90, 120, 180])[1 + floor(d.r_duration * 5)::int], \
                CASE WHEN d.r_rated < 0.7 THEN round((3 + d.r_rating * 2)::numeric, 1)::float8 END, \
                CASE WHEN d.r_rated < 0.7 THEN 1 + floor(d.r_rating * 199)::int ELSE 0 END, \
                d.visible, \
                CASE WHEN d.r_loc < 0.9 THEN c.lat + 15 * d.r_radius * cos(2 * pi() * d.r_angle) / 111.32 END, \
                CASE WHEN d.r_loc < 0.9 THEN c.lng + 15 * d.r_radius * sin(2 * pi() * d.r_angle) \
                    / (111.32 * cos(radians(c.lat))) END, \
                to_timestamp(d.at_ms / 1000.0), to_timestamp(d.at_ms / 1000.0) \
         FROM draws d \
         JOIN seed_cities c ON c.city = d.city \
         JOIN per_category pc ON pc.category = d.category \
         JOIN seed_titles t ON t.category = d.category AND t.k = floor(d.r_title * pc.n)::int \
         JOIN per_kind pq ON pq.kind = 'quality' \
         JOIN seed_words q ON q.kind = 'quality' AND q.k = floor(d.r_quality * pq.n)::int \
         JOIN per_kind pd ON pd.kind = 'detail' \
         JOIN seed_words d1 ON d1.kind = 'detail' AND d1.k = floor(d.r_d1 * pd.n)::int \
         JOIN seed_words d2 ON d2.kind = 'detail' \
             AND d2.k = (d1.k + 1 + floor(d.r_d2 * (pd.n - 1))::int) % pd.n \
         ORDER BY d.i",
    )
    .bind::<Array<Uuid>, _>(ids)
    .bind::<BigInt, _>(from as i64)
    .bind::<BigInt, _>(n as i64)
    .bind::<BigInt, _>(chrono::Utc::now().timestamp_millis() - LISTING_SPAN_MS)
    .bind::<BigInt, _>(LISTING_SPAN_MS)
    .bind::<BigInt, _>(total.max(1) as i64)
    .execute(conn)
    .await?;
    Ok(())
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
    conn.batch_execute("ANALYZE users; ANALYZE workers; ANALYZE clients; ANALYZE services; ANALYZE availability_slots")
        .await?;
    Ok(())
}
