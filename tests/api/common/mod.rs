//! The test harness: the real router on a real socket, against a fresh PostgreSQL
//! database cloned from a template migrated once per run, and a Redis key prefix of
//! its own. Everything a test creates is dropped when its `TestApp` is.

pub mod mail;
pub mod oidc;
pub mod pki;
pub mod private_postgres;
pub mod private_redis;
pub mod python;
pub mod tcp_proxy;

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{
        OnceLock,
        atomic::{AtomicUsize, Ordering},
    },
};

use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use marketplace::{
    config::Settings,
    core::logging::{self, LogTargets},
    db::tls::PgTls,
    state::AppState,
};
use poem::{Server, listener::Acceptor, listener::Listener};
use reqwest::{Method, StatusCode, header::HeaderMap};
use serde_json::{Value, json};
use tokio::sync::Mutex;

pub const PG_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
pub const PG_HOST: &str = "postgres://postgres@127.0.0.1:5432";
pub const REDIS_URL: &str = "redis://127.0.0.1:6379/0";
/// Where this test process's JSON log goes: a folder of its own (`test-logs/<pid>`), so a
/// test looking for a line can never find one an earlier run wrote. Folders (and files)
/// left by processes that are gone are removed on first use.
pub fn log_dir() -> &'static str {
    static DIR: OnceLock<String> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("test-logs");
        for entry in std::fs::read_dir(&root).into_iter().flatten().flatten() {
            let path = entry.path();
            let alive = entry
                .file_name()
                .to_str()
                .and_then(|name| name.parse::<u32>().ok())
                .is_some_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists());
            if !alive {
                let _ = match path.is_dir() {
                    true => std::fs::remove_dir_all(&path),
                    false => std::fs::remove_file(&path),
                };
            }
        }
        root.join(run_id().to_string())
            .to_string_lossy()
            .into_owned()
    })
}
pub const PASSWORD: &str = "correct horse battery";
/// The `METRICS_TOKEN` every test app is configured with.
pub const METRICS_TOKEN: &str = "test-metrics-token-0123456789";

static NEXT_DB: AtomicUsize = AtomicUsize::new(0);
/// This process's migrated template and how many test databases cloned from it are alive:
/// the last one to go drops the template too, so a run leaves no `mpt_*_template` behind
/// (a later app in the same process builds it again).
static TEMPLATE: Mutex<Template> = Mutex::const_new(Template {
    name: None,
    live: 0,
});

struct Template {
    name: Option<String>,
    live: usize,
}

fn run_id() -> u32 {
    std::process::id()
}

async fn admin_conn() -> AsyncPgConnection {
    AsyncPgConnection::establish(PG_ADMIN_URL)
        .await
        .expect("PostgreSQL at 127.0.0.1:5432 (run scripts/services.sh)")
}

/// Sweeps databases left by crashed runs, then builds this process's template.
async fn build_template() -> String {
    init_logging();
    let mut conn = admin_conn().await;
    sweep_leftovers(&mut conn).await;
    let name = format!("mpt_{}_template", run_id());
    conn.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .expect("drop old template");
    let url: url::Url = format!("{PG_HOST}/{name}").parse().expect("url");
    marketplace::db::ensure_database(&url, &PgTls::Disable)
        .await
        .expect("create template");
    marketplace::db::run_migrations(&url, &PgTls::Disable)
        .await
        .expect("migrate template");
    name
}

/// One test database fewer; the template goes with the last one.
async fn release_template(conn: &mut AsyncPgConnection) {
    let mut template = TEMPLATE.lock().await;
    template.live -= 1;
    if template.live == 0
        && let Some(name) = template.name.take()
    {
        let _ = conn
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await;
    }
}

/// This process's template database, if it still exists although no test app of the
/// process is alive (it should not: the last app's drop removes it).
pub async fn template_left_behind() -> Option<String> {
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Found {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let template = TEMPLATE.lock().await;
    if template.live > 0 {
        return None;
    }
    let name = format!("mpt_{}_template", run_id());
    let found: Found = diesel::sql_query(format!(
        "SELECT count(*) AS n FROM pg_database WHERE datname = '{name}'"
    ))
    .get_result(&mut admin_conn().await)
    .await
    .expect("query pg_database");
    (found.n > 0).then_some(name)
}

/// Databases named `mpt_<pid>_…` whose process is gone were left by a crashed run.
async fn sweep_leftovers(conn: &mut AsyncPgConnection) {
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Db {
        #[diesel(sql_type = diesel::sql_types::Text)]
        datname: String,
    }
    let dbs: Vec<Db> =
        diesel::sql_query("SELECT datname FROM pg_database WHERE datname LIKE 'mpt\\_%'")
            .load(conn)
            .await
            .expect("list databases");
    for db in dbs {
        let pid = db
            .datname
            .split('_')
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok());
        let alive = pid.is_some_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists());
        if !alive {
            let _ = conn
                .batch_execute(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    db.datname
                ))
                .await;
        }
    }
}

/// One JSON log file for the whole run, at debug level, so tests can grep it.
fn init_logging() {
    static GUARD: OnceLock<Option<tracing_appender::non_blocking::WorkerGuard>> = OnceLock::new();
    GUARD.get_or_init(|| {
        logging::init(&LogTargets {
            level: "marketplace=debug,poem=debug,info",
            dir: log_dir(),
            max_files: 2,
            stdout: None,
        })
        .ok()
    });
}

/// Everything in the run's log so far.
pub fn read_logs() -> String {
    let mut all = String::new();
    for entry in std::fs::read_dir(log_dir()).expect("log dir").flatten() {
        all.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
    }
    all
}

/// The run's log once it contains `needle` (the file writer is asynchronous, so a line
/// logged before a response may land after it), or as it is after 5 s.
pub async fn wait_for_log(needle: &str) -> String {
    let mut logs = read_logs();
    for _ in 0..100 {
        if logs.contains(needle) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        logs = read_logs();
    }
    logs
}

/// A running app with its own database and Redis prefix.
pub struct TestApp {
    pub addr: SocketAddr,
    pub state: AppState,
    pub client: reqwest::Client,
    pub db_name: String,
    pub settings: Settings,
    server: tokio::task::JoinHandle<()>,
    /// A second instance on another app's database and prefix: leaves them to it.
    sibling: bool,
}

/// Each test's own upload folder, removed with it.
pub fn upload_dir(db_name: &str) -> String {
    format!("{}/uploads/{db_name}", env!("CARGO_TARGET_TMPDIR"))
}

/// Settings for a test: defaults, the test's database and prefix, then `overrides`.
pub fn settings_for(db_name: &str, prefix: &str, overrides: &[(&str, &str)]) -> Settings {
    let mut map: HashMap<String, String> = [
        ("APP_ENV", "test".to_owned()),
        ("DATABASE_URL", format!("{PG_HOST}/{db_name}")),
        ("REDIS_URL", REDIS_URL.to_owned()),
        ("REDIS_KEY_PREFIX", prefix.to_owned()),
        ("LOG_DIR", log_dir().to_owned()),
        ("UPLOAD_DIR", upload_dir(db_name)),
        ("RATE_LIMIT_PER_SEC", "100000".to_owned()),
        ("RATE_LIMIT_BURST", "100000".to_owned()),
        ("RATE_LIMIT_LOGIN_PER_MIN", "100000".to_owned()),
        ("DB_POOL_SIZE", "4".to_owned()),
        ("DB_POOL_TIMEOUT", "2".to_owned()),
        ("METRICS_TOKEN", METRICS_TOKEN.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    // `{db}` in an override stands for the test's database name.
    for (key, value) in overrides {
        map.insert((*key).to_owned(), value.replace("{db}", db_name));
    }
    Settings::from_lookup(|key| map.get(key).cloned()).expect("test settings")
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    /// Spawns with configuration overrides (`("RATE_LIMIT_PER_SEC", "1")`, …).
    pub async fn spawn_with(overrides: &[(&str, &str)]) -> Self {
        let n = NEXT_DB.fetch_add(1, Ordering::Relaxed);
        let db_name = format!("mpt_{}_{n}", run_id());
        {
            // Held while cloning, so the template cannot be dropped under the clone.
            let mut template = TEMPLATE.lock().await;
            if template.name.is_none() {
                template.name = Some(build_template().await);
            }
            let name = template.name.as_deref().unwrap_or_default();
            admin_conn()
                .await
                .batch_execute(&format!("CREATE DATABASE {db_name} TEMPLATE {name}"))
                .await
                .expect("create test database");
            template.live += 1;
        }
        let prefix = format!("mpt:{}:{n}:", run_id());
        let settings = settings_for(&db_name, &prefix, overrides);
        Self::serve(db_name, settings, false).await
    }

    /// Another instance of the app on the same database and Redis prefix, as a second
    /// process behind a load balancer would be.
    pub async fn spawn_sibling(&self) -> Self {
        Self::serve(self.db_name.clone(), self.settings.clone(), true).await
    }

    async fn serve(db_name: String, settings: Settings, sibling: bool) -> Self {
        let state = AppState::new(settings.clone()).await.expect("state");
        let acceptor = marketplace::core::connections::GuardedAcceptor::new(
            poem::listener::TcpListener::bind("127.0.0.1:0")
                .into_acceptor()
                .await
                .expect("bind"),
            (&settings).into(),
        );
        let addr = acceptor.local_addr()[0]
            .as_socket_addr()
            .copied()
            .expect("socket addr");
        let app = marketplace::app(state.clone());
        let server = tokio::spawn(async move {
            let _ = Server::new_with_acceptor(acceptor).run(app).await;
        });
        Self {
            addr,
            state,
            client: reqwest::Client::new(),
            db_name,
            settings,
            server,
            sibling,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Sends a request; `body` as JSON when given, `token` as a bearer.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        Reply::from(request.send().await.expect("request")).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.call(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.call(Method::POST, path, token, Some(body)).await
    }

    /// Registers a user of `role` and returns its id.
    pub async fn register(&self, email: &str, role: &str) -> String {
        let reply = self
            .post(
                "/api/v1/auth/register",
                None,
                json!({"email": email, "password": PASSWORD, "full_name": "Test User", "role": role}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        reply.json["id"].as_str().expect("id").to_owned()
    }

    /// Logs in and returns the token pair.
    pub async fn login(&self, email: &str, password: &str) -> Tokens {
        let reply = self
            .post(
                "/api/v1/auth/login",
                None,
                json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        Tokens::from(&reply.json)
    }

    /// Registers and logs in.
    pub async fn user(&self, email: &str, role: &str) -> (String, Tokens) {
        let id = self.register(email, role).await;
        (id, self.login(email, PASSWORD).await)
    }

    /// Creates an admin the way the CLI does, then logs in.
    pub async fn admin(&self, email: &str) -> (String, Tokens) {
        let user = marketplace::auth::services::create_user(
            &self.state,
            email,
            marketplace::config::Secret::new(PASSWORD),
            "Admin",
            marketplace::db::enums::UserRole::Admin,
        )
        .await
        .expect("create admin");
        (user.id.to_string(), self.login(email, PASSWORD).await)
    }
}

/// Tomorrow at `hour`:00 UTC, RFC 3339: a booking time inside the default availability.
pub fn tomorrow_at(hour: u32) -> String {
    let day = (chrono::Utc::now() + chrono::Duration::days(1)).date_naive();
    day.and_hms_opt(hour, 0, 0)
        .expect("time")
        .and_utc()
        .to_rfc3339()
}

/// The smallest files each accepted kind is recognised by.
pub const PDF: &[u8] = b"%PDF-1.7\n% test document\n";
pub const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
pub const JPEG: &[u8] = b"\xFF\xD8\xFF\xE0\0\x10JFIF\0";

impl TestApp {
    /// POSTs a KYC form; `parts` are `(field, filename, content type, bytes)`.
    pub async fn upload(
        &self,
        token: &str,
        parts: Vec<(&'static str, Option<&'static str>, &'static str, Vec<u8>)>,
    ) -> Reply {
        let mut form = reqwest::multipart::Form::new();
        for (field, filename, content_type, bytes) in parts {
            let mut part = reqwest::multipart::Part::bytes(bytes)
                .mime_str(content_type)
                .expect("mime");
            if let Some(name) = filename {
                part = part.file_name(name);
            }
            form = form.part(field, part);
        }
        let response = self
            .client
            .post(self.url("/api/v1/workers/me/kyc"))
            .bearer_auth(token)
            .multipart(form)
            .send()
            .await
            .expect("upload");
        Reply::from(response).await
    }

    /// POSTs the usual two-field KYC form: `document_type`, and `file` as `name` with the
    /// client's claimed Content-Type.
    pub async fn upload_document(
        &self,
        token: &str,
        document_type: &'static str,
        name: &'static str,
        content_type: &'static str,
        bytes: Vec<u8>,
    ) -> Reply {
        self.upload(
            token,
            vec![
                (
                    "document_type",
                    None,
                    "text/plain",
                    document_type.as_bytes().to_vec(),
                ),
                ("file", Some(name), content_type, bytes),
            ],
        )
        .await
    }

    /// Every audit row, oldest first, as `(action, target type, reason)`.
    pub async fn audit_rows(
        &self,
    ) -> Vec<(marketplace::db::enums::AuditAction, String, Option<String>)> {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use marketplace::db::schema::audit_log;
        let mut conn = self.state.db.get().await.expect("conn");
        audit_log::table
            .order(audit_log::id)
            .select((audit_log::action, audit_log::target_type, audit_log::reason))
            .load(&mut conn)
            .await
            .expect("audit rows")
    }

    /// Uploads a passport PDF and returns the submission id.
    pub async fn submit_kyc(&self, token: &str) -> String {
        let reply = self
            .upload_document(
                token,
                "passport",
                "passport.pdf",
                "application/pdf",
                PDF.to_vec(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        reply.json["id"].as_str().expect("id").to_owned()
    }

    /// A worker whose KYC an admin has approved, so their listings are public.
    pub async fn approved_worker(&self, email: &str, admin: &Tokens) -> (String, Tokens) {
        let (id, tokens) = self.user(email, "worker").await;
        let submission = self.submit_kyc(&tokens.access).await;
        let reply = self
            .call(
                Method::POST,
                &format!("/api/v1/admin/kyc/{submission}/approve"),
                Some(&admin.access),
                None,
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        (id, tokens)
    }

    /// Creates a listing and returns its JSON.
    pub async fn listing(&self, token: &str, body: Value) -> Value {
        let mut full = json!({
            "title": "Garden care", "description": "Lawn mowing and hedge trimming",
            "category": "gardening", "price_cents": 5000, "pricing_unit": "fixed", "city": "Lisbon",
        });
        for (key, value) in body.as_object().expect("object") {
            full[key] = value.clone();
        }
        let reply = self.post("/api/v1/services", Some(token), full).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        reply.json
    }
}

/// Listings whose `listed` flag disagrees with the visibility rule it stands for: every
/// test's history is checked when its app is dropped, so a path that forgets to relist
/// fails whichever test takes it.
pub async fn listed_mismatches(conn: &mut AsyncPgConnection) -> diesel::QueryResult<i64> {
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let sql = format!(
        "SELECT count(*) AS n FROM services s JOIN workers w ON w.user_id = s.worker_id \
         JOIN users u ON u.id = s.worker_id WHERE s.listed IS DISTINCT FROM {}",
        marketplace::service::listed::VISIBLE
    );
    Ok(diesel::sql_query(sql).get_result::<Count>(conn).await?.n)
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
        self.state.db.close();
        self.state.search_db.close();
        if self.sibling {
            return;
        }
        let _ = std::fs::remove_dir_all(&self.settings.upload_dir);
        let db_name = self.db_name.clone();
        let prefix = self.settings.redis_prefix.clone();
        // Drop cannot await: clean up on a thread with its own small runtime.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let mismatches =
                    match AsyncPgConnection::establish(&format!("{PG_HOST}/{db_name}")).await {
                        Ok(mut conn) => listed_mismatches(&mut conn).await.unwrap_or(0),
                        Err(_) => 0,
                    };
                let mut conn = admin_conn().await;
                let _ = conn
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {db_name} WITH (FORCE)"))
                    .await;
                release_template(&mut conn).await;
                delete_prefix(REDIS_URL, &prefix).await;
                mismatches
            })
        });
        let mismatches = cleanup.join().unwrap_or(0);
        if mismatches > 0 && !std::thread::panicking() {
            panic!(
                "{mismatches} listing(s) with a `listed` flag that disagrees with their visibility"
            );
        }
    }
}

/// Deletes every key under `prefix`.
pub async fn delete_prefix(redis_url: &str, prefix: &str) {
    let Ok(client) = deadpool_redis::redis::Client::open(redis_url) else {
        return;
    };
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
        return;
    };
    let keys: Vec<String> = deadpool_redis::redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .unwrap_or_default();
    if !keys.is_empty() {
        let _: Result<(), _> = deadpool_redis::redis::cmd("DEL")
            .arg(keys)
            .query_async(&mut conn)
            .await;
    }
}

/// A response, read whole.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
    /// The body as JSON (`Null` when it is not JSON).
    pub json: Value,
}

impl Reply {
    pub async fn from(response: reqwest::Response) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.text().await.expect("body");
        let json = serde_json::from_str(&body).unwrap_or(Value::Null);
        Self {
            status,
            headers,
            body,
            json,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts a problem+json error with `status` and `code`.
    #[track_caller]
    pub fn assert_problem(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "{}", self.body);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "{}",
            self.body
        );
        assert_eq!(self.json["code"], code, "{}", self.body);
        assert_eq!(self.json["status"], status, "{}", self.body);
        assert!(
            self.json["title"].is_string()
                && self.json["detail"].is_string()
                && self.json["type"].is_string()
        );
    }

    /// Asserts a 422 `validation_failed` naming exactly `fields`, in order, each with a
    /// message: what a form needs to show the errors beside its inputs.
    #[track_caller]
    pub fn assert_invalid(&self, fields: &[&str]) {
        self.assert_problem(422, "validation_failed");
        let errors = self.json["errors"].as_array().cloned().unwrap_or_default();
        let named: Vec<&str> = errors
            .iter()
            .map(|e| e["field"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(named, fields, "{}", self.body);
        assert!(
            errors
                .iter()
                .all(|e| e["message"].as_str().is_some_and(|m| !m.is_empty())),
            "{}",
            self.body
        );
    }
}

/// An access and refresh token of one login.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
}

impl From<&Value> for Tokens {
    fn from(json: &Value) -> Self {
        Self {
            access: json["access_token"]
                .as_str()
                .expect("access_token")
                .to_owned(),
            refresh: json["refresh_token"]
                .as_str()
                .expect("refresh_token")
                .to_owned(),
        }
    }
}
