//! Settings from the environment (and `.env`), parsed and validated once at start-up.
//!
//! Every key has a default suited to a laptop; `.env.sample` documents them all. A bad
//! value stops start-up with one line naming the key and the form it expects, so a
//! misconfigured deployment fails loudly instead of half-working.

use std::{net::SocketAddr, str::FromStr, time::Duration};

use ipnet::IpNet;
use url::Url;

use crate::{core::logging::LogFormat, db::tls::PgTls};

/// The development key earlier versions signed tokens with when `JWT_SECRET` was unset.
/// It is public (it was in the source), so anyone could forge tokens with it: refused.
const PUBLISHED_DEV_SECRET: &str = "dev-only-secret-change-me-0123456789abcdef";

/// Where the service runs; production turns insecure defaults into start-up errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppEnv {
    Development,
    Test,
    Production,
}

/// A value that must never be printed: `Debug` shows a placeholder.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The validated configuration of one process.
#[derive(Debug, Clone)]
pub struct Settings {
    pub app_env: AppEnv,
    /// Without `sslmode`/`sslrootcert`: those are in `database_tls`.
    pub database_url: Url,
    /// TLS to PostgreSQL, from `DATABASE_URL`'s `sslmode` and `sslrootcert`.
    pub database_tls: PgTls,
    pub redis_url: Url,
    /// PEM file of the CA(s) a `rediss://` server is verified against (`REDIS_CA_CERT`);
    /// `None`: the system's roots.
    pub redis_ca_cert: Option<std::path::PathBuf>,
    /// Prepended to every Redis key, so deployments (and tests) can share one Redis.
    pub redis_prefix: String,
    pub bind: SocketAddr,
    /// The HS256 key from `JWT_SECRET`. `None` outside production: a random key is
    /// generated on first start and kept in the database, where every instance finds it
    /// (see [`crate::core::signing_key`]).
    pub jwt_secret: Option<Secret>,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub upload_dir: String,
    pub upload_max_bytes: u64,
    pub log_dir: String,
    /// The tracing filter: `RUST_LOG` when set (the usual override), else `LOG_LEVEL`.
    pub log_level: String,
    /// Daily log files kept in `log_dir`.
    pub log_max_files: usize,
    /// How lines are written to stdout.
    pub log_format: LogFormat,
    /// Sustained requests per second allowed per client IP on every route.
    pub rate_limit_per_sec: u32,
    /// Extra requests a client IP may fire at once on top of the sustained rate.
    pub rate_limit_burst: u32,
    /// Password attempts per minute, per client IP and per (account, IP).
    pub rate_limit_login_per_min: u32,
    /// KYC uploads per hour from one client IP.
    pub rate_limit_uploads_per_hour: u32,
    /// Free space the upload store keeps: below it, uploads are refused (503) before
    /// a byte is written, so documents can never fill the disk the database and logs share.
    pub upload_min_free_bytes: u64,
    /// How long the file of a rejected KYC submission is kept after the decision.
    pub kyc_rejected_retention: Duration,
    pub db_pool_size: usize,
    /// How long a request waits for a pooled connection before it gets 503.
    pub db_pool_timeout: Duration,
    /// Server-side cap on any one SQL statement.
    pub db_statement_timeout: Duration,
    /// Connections that one-statement public reads share, pipelined (a pool of their
    /// own, beside `db_pool_size`; see [`crate::db::shared`]). Each is one PostgreSQL
    /// backend, so at most one database core: raise it when those reads outgrow that.
    pub db_shared_reads: usize,
    /// Connections of the separate pool public search runs on: at most this many
    /// searches run at once, whatever they cost.
    pub search_pool_size: usize,
    /// Statement timeout on the search pool.
    pub search_statement_timeout: Duration,
    /// Searches one client address may run at once, so no one address holds every
    /// search connection.
    pub search_max_per_ip: usize,
    pub currency: String,
    pub cors_origins: Vec<String>,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    pub job_request_ttl: Duration,
    pub job_expiry_interval: Duration,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_timeout: Duration,
    /// How long a request's head may take to arrive, from its first byte.
    pub http_header_timeout: Duration,
    /// How long a connection may sit with no traffic between requests.
    pub http_idle_timeout: Duration,
    /// Bytes per second a request body must average after `http_header_timeout`.
    pub http_min_body_rate: u64,
    /// Open connections one client address may hold (trusted proxies exempt).
    pub http_max_connections_per_ip: usize,
    /// Bearer token a scraper must present for `/metrics`; unset, `/metrics` is not
    /// served (it shows routes, error rates and pool use: reconnaissance for an attacker).
    pub metrics_token: Option<Secret>,
    /// WebSockets one user may hold open on one instance.
    pub ws_max_sockets_per_user: usize,
    /// A WebSocket that sends nothing (not even a pong) for this long is closed.
    pub ws_idle_timeout: Duration,
    /// How often the server pings each WebSocket.
    pub ws_ping_interval: Duration,
    /// How often the event dispatcher looks for due events without being woken by
    /// `NOTIFY` (a fallback: a commit wakes it at once).
    pub event_poll_interval: Duration,
    /// Failed attempts after which an event is parked (kept, counted, never retried).
    pub event_max_attempts: i32,
    /// How long dispatched events are kept before they are pruned.
    pub event_retention: Duration,
    /// Base of the links in emails (`{PUBLIC_URL}/verify-email?token=…`).
    pub public_url: Url,
    /// The mail server; `None` in development: emails are written under `LOG_DIR/mail/`.
    pub smtp: Option<SmtpSettings>,
    /// The sender of every email.
    pub mail_from: lettre::message::Mailbox,
    /// OpenID Connect providers people may sign in with (`OIDC_PROVIDERS`), in order.
    pub oidc_providers: Vec<OidcProviderSettings>,
}

/// One OpenID Connect provider, from `OIDC_<ID>_*`.
#[derive(Debug, Clone)]
pub struct OidcProviderSettings {
    /// Lower-case letters, digits, `-` and `_`: the `{provider}` of the API paths.
    pub id: String,
    /// Shown to people choosing how to sign in.
    pub name: String,
    /// Discovery is at `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Secret,
    /// Where the provider may send people back; `start` accepts exactly these.
    pub redirect_uris: Vec<String>,
}

/// `SMTP_URL` taken apart, so its password can only be read on purpose.
#[derive(Debug, Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    /// User name and password, when the URL has them.
    pub credentials: Option<(String, Secret)>,
    /// PEM file of the CA(s) the server's STARTTLS certificate is verified against
    /// (`SMTP_CA_CERT`); `None`: the public web PKI roots.
    pub ca_cert: Option<std::path::PathBuf>,
}

impl SmtpSettings {
    /// `smtp://[user[:password]@]host[:port]` (port 25 by default); user and password
    /// are percent-decoded.
    fn parse(url: &Url) -> Option<Self> {
        if url.scheme() != "smtp" || url.path().len() > 1 {
            return None;
        }
        let host = url.host_str().filter(|h| !h.is_empty())?.to_owned();
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .ok()
                .map(|v| v.into_owned())
        };
        let credentials = match url.username() {
            "" => None,
            user => Some((
                decode(user)?,
                Secret::new(decode(url.password().unwrap_or(""))?),
            )),
        };
        Some(Self {
            host,
            port: url.port().unwrap_or(25),
            credentials,
            ca_cert: None,
        })
    }
}

/// A configuration key that could not be used, with the form it expects.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid configuration: {key}={value:?}: expected {expected}")]
pub struct ConfigError {
    pub key: &'static str,
    pub value: String,
    pub expected: &'static str,
}

impl Settings {
    /// Reads `.env` (when present) and the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        // A missing .env is normal; the environment alone is then the source.
        let _ = dotenvy::dotenv();
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Builds settings from any key lookup, so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&lookup);
        let app_env = env.parse(
            "APP_ENV",
            "development",
            "one of development, test, production",
            |v| match v {
                "development" => Some(AppEnv::Development),
                "test" => Some(AppEnv::Test),
                "production" => Some(AppEnv::Production),
                _ => None,
            },
        )?;
        let jwt_secret = match env.get("JWT_SECRET") {
            Some(secret) if secret == PUBLISHED_DEV_SECRET => {
                return Err(ConfigError {
                    key: "JWT_SECRET",
                    value: "***".into(),
                    expected: "a secret of your own: this development key is public",
                });
            }
            Some(secret) if secret.len() >= 32 => Some(Secret::new(secret)),
            Some(secret) if app_env == AppEnv::Production || !secret.is_empty() => {
                return Err(ConfigError {
                    key: "JWT_SECRET",
                    value: "***".into(),
                    expected: "at least 32 bytes",
                });
            }
            _ if app_env == AppEnv::Production => {
                return Err(ConfigError {
                    key: "JWT_SECRET",
                    value: String::new(),
                    expected: "a secret of at least 32 bytes (required when APP_ENV=production)",
                });
            }
            _ => None,
        };

        let mut database_url = env.url(
            "DATABASE_URL",
            "postgres://postgres@127.0.0.1:5432/marketplace",
            &["postgres", "postgresql"],
            "postgres://user[:password]@host[:port]/database",
        )?;
        let database_tls = PgTls::take_from(&mut database_url)
            .map_err(|expected| env.error("DATABASE_URL", expected))?;

        let redis_url = env.url(
            "REDIS_URL",
            "redis://127.0.0.1:6379/0",
            &["redis", "rediss"],
            "redis://host[:port][/db], or rediss:// for TLS",
        )?;

        Ok(Self {
            app_env,
            database_url,
            database_tls,
            redis_ca_cert: match env.get("REDIS_CA_CERT").filter(|v| !v.is_empty()) {
                Some(path) if redis_url.scheme() == "rediss" => Some(path.into()),
                Some(_) => {
                    return Err(env.error(
                        "REDIS_CA_CERT",
                        "to be unset unless REDIS_URL is rediss:// (TLS)",
                    ));
                }
                None => None,
            },
            redis_url,
            redis_prefix: env.parse(
                "REDIS_KEY_PREFIX",
                "marketplace:",
                "letters, digits and ':_-'",
                |v| {
                    v.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b":_-".contains(&b))
                        .then(|| v.to_owned())
                },
            )?,
            bind: env.parsed("BIND", "127.0.0.1:8080", "host:port, e.g. 127.0.0.1:8080")?,
            jwt_secret,
            access_token_ttl: env.seconds("ACCESS_TOKEN_TTL", 900)?,
            refresh_token_ttl: env.seconds("REFRESH_TOKEN_TTL", 30 * 24 * 3600)?,
            upload_dir: env.non_empty("UPLOAD_DIR", "uploads")?,
            upload_max_bytes: env.positive("UPLOAD_MAX_BYTES", 10 * 1024 * 1024)?,
            log_dir: env.non_empty("LOG_DIR", "logs")?,
            log_level: {
                let key = if env.get("RUST_LOG").is_some_and(|v| !v.is_empty()) {
                    "RUST_LOG"
                } else {
                    "LOG_LEVEL"
                };
                env.parse(
                    key,
                    "info",
                    "a tracing filter such as info or marketplace=debug,info",
                    |v| {
                        tracing_subscriber::EnvFilter::try_new(v)
                            .ok()
                            .map(|_| v.to_owned())
                    },
                )?
            },
            log_max_files: env.positive("LOG_MAX_FILES", 14)?,
            log_format: env.parse("LOG_FORMAT", "text", "text or json", |v| match v {
                "text" => Some(LogFormat::Text),
                "json" => Some(LogFormat::Json),
                _ => None,
            })?,
            rate_limit_per_sec: env.positive("RATE_LIMIT_PER_SEC", 50)?,
            rate_limit_burst: env.positive("RATE_LIMIT_BURST", 100)?,
            rate_limit_login_per_min: env.positive("RATE_LIMIT_LOGIN_PER_MIN", 10)?,
            rate_limit_uploads_per_hour: env.positive("RATE_LIMIT_UPLOADS_PER_HOUR", 20)?,
            upload_min_free_bytes: env.positive("UPLOAD_MIN_FREE_BYTES", 1024 * 1024 * 1024)?,
            kyc_rejected_retention: env.seconds("KYC_REJECTED_RETENTION", 30 * 24 * 3600)?,
            db_pool_size: env.positive("DB_POOL_SIZE", 16)?,
            db_pool_timeout: env.seconds("DB_POOL_TIMEOUT", 5)?,
            db_statement_timeout: env.seconds("DB_STATEMENT_TIMEOUT", 30)?,
            db_shared_reads: env.positive("DB_SHARED_READS", 1)?,
            search_pool_size: env.positive("SEARCH_POOL_SIZE", 4)?,
            search_statement_timeout: env.seconds("SEARCH_STATEMENT_TIMEOUT", 2)?,
            search_max_per_ip: env.positive("SEARCH_MAX_PER_IP", 2)?,
            currency: env.parse(
                "CURRENCY",
                "EUR",
                "a three-letter ISO 4217 code such as EUR",
                |v| {
                    (v.len() == 3 && v.bytes().all(|b| b.is_ascii_uppercase()))
                        .then(|| v.to_owned())
                },
            )?,
            cors_origins: env.list("CORS_ORIGINS"),
            trusted_proxies: env
                .list("TRUSTED_PROXIES")
                .iter()
                .map(|item| parse_net(item))
                .collect::<Option<_>>()
                .ok_or_else(|| {
                    env.error("TRUSTED_PROXIES", "comma-separated IP addresses or CIDRs")
                })?,
            job_request_ttl: env.seconds("JOB_REQUEST_TTL", 172_800)?,
            job_expiry_interval: env.seconds("JOB_EXPIRY_INTERVAL", 60)?,
            shutdown_timeout: env.seconds("SHUTDOWN_TIMEOUT", 10)?,
            http_header_timeout: env.seconds("HTTP_HEADER_TIMEOUT", 10)?,
            http_idle_timeout: env.seconds("HTTP_IDLE_TIMEOUT", 60)?,
            http_min_body_rate: env.positive("HTTP_MIN_BODY_RATE", 1024)?,
            http_max_connections_per_ip: env.positive("HTTP_MAX_CONNECTIONS_PER_IP", 256)?,
            metrics_token: match env.get("METRICS_TOKEN").filter(|t| !t.is_empty()) {
                Some(token) if token.len() >= 16 => Some(Secret::new(token)),
                Some(_) => {
                    return Err(ConfigError {
                        key: "METRICS_TOKEN",
                        value: "***".into(),
                        expected: "at least 16 characters",
                    });
                }
                None => None,
            },
            ws_max_sockets_per_user: env.positive("WS_MAX_SOCKETS_PER_USER", 5)?,
            ws_idle_timeout: env.seconds("WS_IDLE_TIMEOUT", 60)?,
            ws_ping_interval: env.seconds("WS_PING_INTERVAL", 25)?,
            event_poll_interval: env.seconds("EVENT_POLL_INTERVAL", 1)?,
            event_max_attempts: env.positive("EVENT_MAX_ATTEMPTS", 8)?,
            event_retention: env.seconds("EVENT_RETENTION", 7 * 24 * 3600)?,
            public_url: env.url(
                "PUBLIC_URL",
                "http://127.0.0.1:8080",
                &["http", "https"],
                "the service's public base URL, e.g. https://marketplace.example.com",
            )?,
            smtp: match (
                env.get("SMTP_URL").filter(|v| !v.is_empty()),
                env.get("SMTP_CA_CERT").filter(|v| !v.is_empty()),
            ) {
                (None, None) => None,
                (None, Some(_)) => {
                    return Err(env.error("SMTP_CA_CERT", "to be unset unless SMTP_URL is set"));
                }
                (Some(raw), ca_cert) => Some(SmtpSettings {
                    ca_cert: ca_cert.map(Into::into),
                    ..Url::parse(&raw)
                        .ok()
                        .as_ref()
                        .and_then(SmtpSettings::parse)
                        .ok_or_else(|| {
                            env.error("SMTP_URL", "smtp://[user:password@]host[:port]")
                        })?
                }),
            },
            mail_from: env.parse(
                "MAIL_FROM",
                "Marketplace <no-reply@localhost>",
                "a mailbox such as Marketplace <no-reply@example.com>",
                |v| v.parse().ok(),
            )?,
            oidc_providers: env
                .list("OIDC_PROVIDERS")
                .iter()
                .map(|id| oidc_provider(&env, id))
                .collect::<Result<_, _>>()?,
        })
    }
}

/// The settings of provider `id` (from `OIDC_PROVIDERS`): its `OIDC_<ID>_*` keys.
fn oidc_provider(env: &Env<'_>, id: &str) -> Result<OidcProviderSettings, ConfigError> {
    let valid_id = !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !valid_id {
        return Err(env.error(
            "OIDC_PROVIDERS",
            "comma-separated ids of lower-case letters, digits, '-' and '_'",
        ));
    }
    // Key names are made from the id. Settings are read once per process, so leaking
    // these few strings gives ConfigError the `'static` key it names.
    let key = |suffix: &str| -> &'static str {
        let upper = id.to_ascii_uppercase().replace('-', "_");
        Box::leak(format!("OIDC_{upper}_{suffix}").into_boxed_str())
    };
    let required = |suffix: &str, expected: &'static str| {
        let key = key(suffix);
        env.get(key)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| env.error(key, expected))
    };
    let issuer_key = key("ISSUER");
    env.url(
        issuer_key,
        "",
        &["https", "http"],
        "the provider's issuer URL, e.g. https://accounts.google.com",
    )?;
    // Kept as written: discovery compares the issuer it finds with this one, exactly.
    let issuer = env.get(issuer_key).unwrap_or_default();
    let redirect_key = key("REDIRECT_URIS");
    let redirect_uris = env.list(redirect_key);
    if redirect_uris.is_empty() || redirect_uris.iter().any(|u| Url::parse(u).is_err()) {
        return Err(env.error(redirect_key, "comma-separated absolute URLs"));
    }
    Ok(OidcProviderSettings {
        id: id.to_owned(),
        name: env
            .get(key("NAME"))
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| id.to_owned()),
        issuer,
        client_id: required("CLIENT_ID", "the client id the provider issued")?,
        client_secret: Secret::new(required(
            "CLIENT_SECRET",
            "the client secret the provider issued",
        )?),
        redirect_uris,
    })
}

/// An IP address (a /32 or /128) or a CIDR block.
fn parse_net(item: &str) -> Option<IpNet> {
    item.parse::<IpNet>()
        .ok()
        .or_else(|| item.parse::<std::net::IpAddr>().ok().map(IpNet::from))
}

/// Typed access to one lookup; each method names the key in its error.
struct Env<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    fn get(&self, key: &str) -> Option<String> {
        (self.0)(key).map(|v| v.trim().to_owned())
    }

    /// The error for `key`; URL values are shown without their password.
    fn error(&self, key: &'static str, expected: &'static str) -> ConfigError {
        let value = self.get(key).unwrap_or_default();
        let value = match Url::parse(&value) {
            Ok(url) if url.password().is_some() => crate::db::redacted(&url),
            Ok(_) => value,
            // Unparsable: keep only what precedes a possible `user:password@`.
            Err(_) => match value.split_once('@') {
                Some((_, host)) => format!("***@{host}"),
                None => value,
            },
        };
        ConfigError {
            key,
            value,
            expected,
        }
    }

    fn parse<T>(
        &self,
        key: &'static str,
        default: &str,
        expected: &'static str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<T, ConfigError> {
        let raw = self.get(key).filter(|v| !v.is_empty());
        parse(raw.as_deref().unwrap_or(default)).ok_or_else(|| self.error(key, expected))
    }

    fn parsed<T: FromStr>(
        &self,
        key: &'static str,
        default: &str,
        expected: &'static str,
    ) -> Result<T, ConfigError> {
        self.parse(key, default, expected, |v| v.parse().ok())
    }

    fn positive<T: FromStr + Default + PartialOrd + ToString>(
        &self,
        key: &'static str,
        default: T,
    ) -> Result<T, ConfigError> {
        self.parse(key, &default.to_string(), "a positive whole number", |v| {
            v.parse::<T>().ok().filter(|n| *n > T::default())
        })
    }

    /// A positive number of seconds, at most ten years (beyond that, date arithmetic
    /// on token expiries would overflow).
    fn seconds(&self, key: &'static str, default: u64) -> Result<Duration, ConfigError> {
        const TEN_YEARS: u64 = 10 * 365 * 24 * 3600;
        let raw = self.get(key).filter(|v| !v.is_empty());
        match raw {
            None => Ok(Duration::from_secs(default)),
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|n| (1..=TEN_YEARS).contains(n))
                .map(Duration::from_secs)
                .ok_or_else(|| self.error(key, "a whole number of seconds from 1 to 315360000")),
        }
    }

    fn non_empty(&self, key: &'static str, default: &str) -> Result<String, ConfigError> {
        self.parse(key, default, "a non-empty path", |v| Some(v.to_owned()))
    }

    fn url(
        &self,
        key: &'static str,
        default: &str,
        schemes: &[&str],
        expected: &'static str,
    ) -> Result<Url, ConfigError> {
        self.parse(key, default, expected, |v| {
            Url::parse(v).ok().filter(|u| {
                schemes.contains(&u.scheme()) && u.host_str().is_some_and(|h| !h.is_empty())
            })
        })
    }

    fn list(&self, key: &str) -> Vec<String> {
        self.get(key)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_are_valid() {
        let s = settings(&[]).expect("defaults");
        assert_eq!(s.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(s.upload_max_bytes, 10 * 1024 * 1024);
        assert_eq!(s.access_token_ttl, Duration::from_secs(900));
        assert_eq!(s.database_url.path(), "/marketplace");
    }

    #[test]
    fn bad_values_name_their_key() {
        for (key, value) in [
            ("BIND", "nonsense"),
            ("UPLOAD_MAX_BYTES", "-1"),
            ("UPLOAD_MAX_BYTES", "0"),
            ("DATABASE_URL", "not a url"),
            ("DATABASE_URL", "mysql://localhost/x"),
            ("DATABASE_URL", "postgres://db/x?sslmode=verify-ca"),
            ("REDIS_CA_CERT", "/etc/ca.pem"),
            ("REDIS_URL", "http://x"),
            ("DB_POOL_SIZE", "many"),
            ("TRUSTED_PROXIES", "10.0.0.0/8,nope"),
            ("APP_ENV", "staging"),
            ("CURRENCY", "euro"),
            ("SMTP_URL", "http://mail.example.com"),
            ("PUBLIC_URL", "ftp://x"),
            ("MAIL_FROM", "not a mailbox"),
        ] {
            let err = settings(&[(key, value)]).expect_err(key);
            assert_eq!(err.key, key);
            assert!(err.to_string().contains(key), "{err}");
        }
    }

    #[test]
    fn durations_are_bounded() {
        assert_eq!(
            settings(&[("REFRESH_TOKEN_TTL", "99999999999999")])
                .expect_err("huge")
                .key,
            "REFRESH_TOKEN_TTL"
        );
        assert_eq!(
            settings(&[("ACCESS_TOKEN_TTL", "0")])
                .expect_err("zero")
                .key,
            "ACCESS_TOKEN_TTL"
        );
        assert!(settings(&[("ACCESS_TOKEN_TTL", "60")]).is_ok());
    }

    #[test]
    fn url_passwords_are_not_echoed() {
        let err = settings(&[("DATABASE_URL", "mysql://u:hunter2@db/x")]).expect_err("scheme");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let err = settings(&[("REDIS_URL", "redis://:hunter2@ host")]).expect_err("unparsable");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn smtp_urls_keep_their_password_secret() {
        let s =
            settings(&[("SMTP_URL", "smtp://mailer:p%40ss@mail.example.com:587")]).expect("valid");
        let smtp = s.smtp.as_ref().expect("smtp");
        assert_eq!((smtp.host.as_str(), smtp.port), ("mail.example.com", 587));
        let (user, password) = smtp.credentials.as_ref().expect("credentials");
        assert_eq!((user.as_str(), password.expose()), ("mailer", "p@ss"));
        assert!(!format!("{s:?}").contains("p@ss"));
        assert!(settings(&[]).expect("defaults").smtp.is_none());
        let err = settings(&[("SMTP_URL", "smtps://u:hunter2@mail")]).expect_err("scheme");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let s = settings(&[
            ("SMTP_URL", "smtp://mail.example.com"),
            ("SMTP_CA_CERT", "/etc/smtp-ca.pem"),
        ])
        .expect("valid");
        let ca = s.smtp.and_then(|smtp| smtp.ca_cert);
        assert_eq!(
            ca.as_deref(),
            Some(std::path::Path::new("/etc/smtp-ca.pem"))
        );
        let err = settings(&[("SMTP_CA_CERT", "/etc/smtp-ca.pem")]).expect_err("no server");
        assert_eq!(err.key, "SMTP_CA_CERT");
    }

    #[test]
    fn oidc_providers_come_from_their_own_keys() {
        let s = settings(&[
            ("OIDC_PROVIDERS", "google, my-idp"),
            ("OIDC_GOOGLE_ISSUER", "https://accounts.google.com"),
            ("OIDC_GOOGLE_CLIENT_ID", "cid"),
            ("OIDC_GOOGLE_CLIENT_SECRET", "hunter2hunter2"),
            (
                "OIDC_GOOGLE_REDIRECT_URIS",
                "https://app.example/cb,myapp://cb",
            ),
            ("OIDC_GOOGLE_NAME", "Google"),
            ("OIDC_MY_IDP_ISSUER", "http://127.0.0.1:9400"),
            ("OIDC_MY_IDP_CLIENT_ID", "local"),
            ("OIDC_MY_IDP_CLIENT_SECRET", "s"),
            ("OIDC_MY_IDP_REDIRECT_URIS", "http://localhost:3000/cb"),
        ])
        .expect("valid");
        let [google, local] = &s.oidc_providers[..] else {
            panic!("two providers: {:?}", s.oidc_providers);
        };
        assert_eq!(
            (google.id.as_str(), google.name.as_str()),
            ("google", "Google")
        );
        assert_eq!(google.issuer, "https://accounts.google.com");
        assert_eq!(
            google.redirect_uris,
            ["https://app.example/cb", "myapp://cb"]
        );
        assert_eq!(
            (local.name.as_str(), local.issuer.as_str()),
            ("my-idp", "http://127.0.0.1:9400")
        );
        assert!(!format!("{s:?}").contains("hunter2"));
        let err = settings(&[("OIDC_PROVIDERS", "google")]).expect_err("no issuer");
        assert_eq!(err.key, "OIDC_GOOGLE_ISSUER");
        assert_eq!(
            settings(&[("OIDC_PROVIDERS", "Bad!")]).expect_err("id").key,
            "OIDC_PROVIDERS"
        );
        assert!(settings(&[]).expect("defaults").oidc_providers.is_empty());
    }

    #[test]
    fn production_requires_a_long_secret() {
        let err = settings(&[("APP_ENV", "production")]).expect_err("missing secret");
        assert_eq!(err.key, "JWT_SECRET");
        let err =
            settings(&[("APP_ENV", "production"), ("JWT_SECRET", "short")]).expect_err("short");
        assert!(
            !err.to_string().contains("short"),
            "the secret must not be echoed"
        );
        let long = "x".repeat(32);
        assert!(settings(&[("APP_ENV", "production"), ("JWT_SECRET", &long)]).is_ok());
    }

    #[test]
    fn a_short_metrics_token_is_not_echoed() {
        let err = settings(&[("METRICS_TOKEN", "hunter2")]).expect_err("short");
        assert_eq!(err.key, "METRICS_TOKEN");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn the_published_development_key_is_refused_everywhere() {
        for env in ["development", "test", "production"] {
            let err = settings(&[("APP_ENV", env), ("JWT_SECRET", PUBLISHED_DEV_SECRET)])
                .expect_err("published key");
            assert_eq!(err.key, "JWT_SECRET");
        }
        assert!(settings(&[]).expect("defaults").jwt_secret.is_none());
    }

    #[test]
    fn rust_log_overrides_log_level() {
        let s =
            settings(&[("LOG_LEVEL", "warn"), ("RUST_LOG", "marketplace=trace")]).expect("valid");
        assert_eq!(s.log_level, "marketplace=trace");
        assert_eq!(
            settings(&[("LOG_LEVEL", "warn")]).expect("valid").log_level,
            "warn"
        );
        let err =
            settings(&[("LOG_LEVEL", "warn"), ("RUST_LOG", "marketplace=loud")]).expect_err("bad");
        assert_eq!(err.key, "RUST_LOG");
    }

    #[test]
    fn log_retention_and_format_are_parsed() {
        let s = settings(&[]).expect("defaults");
        assert_eq!((s.log_max_files, s.log_format), (14, LogFormat::Text));
        let s = settings(&[("LOG_MAX_FILES", "3"), ("LOG_FORMAT", "json")]).expect("valid");
        assert_eq!((s.log_max_files, s.log_format), (3, LogFormat::Json));
        for (key, value) in [("LOG_MAX_FILES", "0"), ("LOG_FORMAT", "xml")] {
            assert_eq!(settings(&[(key, value)]).expect_err(key).key, key);
        }
    }

    #[test]
    fn trusted_proxies_take_ips_and_cidrs() {
        let s = settings(&[("TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8")]).expect("valid");
        assert_eq!(s.trusted_proxies.len(), 2);
        assert!(
            s.trusted_proxies[1].contains(&"10.1.2.3".parse::<std::net::IpAddr>().expect("ip"))
        );
    }

    #[test]
    fn secrets_do_not_debug_print() {
        let s = settings(&[("JWT_SECRET", &"s".repeat(40))]).expect("valid");
        assert!(!format!("{s:?}").contains(&"s".repeat(40)));
    }
}
