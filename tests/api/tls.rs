//! TLS to PostgreSQL and Redis against private servers started with TLS on and a CA
//! generated here: the right CA connects (and the session really is encrypted), a
//! wrong CA is refused.

use std::{path::PathBuf, process::Stdio, time::Duration};

use diesel_async::RunQueryDsl;
use marketplace::{config::Settings, core::redis, db};

use crate::common::{
    pki::{new_ca, pem_file, pki},
    private_postgres::PrivatePostgres,
    tcp_proxy::free_port,
};

fn settings(pairs: &[(&str, &str)]) -> Settings {
    Settings::from_lookup(|key| {
        pairs
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| (*v).to_owned())
    })
    .expect("settings")
}

#[derive(diesel::QueryableByName)]
struct Ssl {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    ssl: bool,
}

#[tokio::test]
async fn postgres_over_tls_verifies_the_server() {
    if !PrivatePostgres::available() {
        eprintln!("SKIPPED: initdb/pg_ctl not on PATH");
        return;
    }
    let pki = pki();
    let cluster = PrivatePostgres::start(
        &["ssl = on"],
        &[
            ("server.crt", pki.server_cert_pem.as_bytes()),
            ("server.key", pki.server_key_pem.as_bytes()),
        ],
    );
    let ca = pem_file("pg-ca.pem", &pki.ca_pem);
    let wrong_ca = pem_file("pg-wrong-ca.pem", &new_ca().2);
    let base = format!("postgres://postgres@127.0.0.1:{}/marketplace", cluster.port);

    // verify-full with the right CA: the database is created and migrated, and the
    // pool's connections are encrypted.
    let url = format!("{base}?sslmode=verify-full&sslrootcert={}", ca.display());
    let s = settings(&[("DATABASE_URL", &url), ("DB_POOL_TIMEOUT", "5")]);
    marketplace::server::migrate(&s)
        .await
        .expect("migrate over TLS");
    let pool = db::pool(&s).expect("pool");
    let mut conn = db::checkout(&pool).await.expect("TLS connection");
    let row: Ssl = diesel::sql_query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .get_result(&mut conn)
        .await
        .expect("pg_stat_ssl");
    assert!(row.ssl, "the session is encrypted");

    // require: encrypted, not verified (libpq's meaning).
    let s = settings(&[("DATABASE_URL", &format!("{base}?sslmode=require"))]);
    let pool = db::pool(&s).expect("pool");
    let mut conn = db::checkout(&pool).await.expect("require connects");
    let row: Ssl = diesel::sql_query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .get_result(&mut conn)
        .await
        .expect("pg_stat_ssl");
    assert!(row.ssl);

    // A CA that did not sign the server's certificate is refused.
    let url = format!(
        "{base}?sslmode=verify-full&sslrootcert={}",
        wrong_ca.display()
    );
    let s = settings(&[("DATABASE_URL", &url), ("DB_POOL_TIMEOUT", "2")]);
    let err = marketplace::server::migrate(&s)
        .await
        .expect_err("wrong CA must be refused");
    assert!(
        format!("{err:#}").to_lowercase().contains("certificate"),
        "{err:#}"
    );
    let pool = db::pool(&s).expect("pool");
    assert!(db::checkout(&pool).await.is_err());

    let _ = std::fs::remove_file(ca);
    let _ = std::fs::remove_file(wrong_ca);
}

/// A redis-server with only a TLS port, killed on drop.
struct TlsRedis(std::process::Child);

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn rediss_verifies_the_server() {
    if std::process::Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_err()
    {
        eprintln!("SKIPPED: redis-server not on PATH");
        return;
    }
    let pki = pki();
    let ca = pem_file("redis-ca.pem", &pki.ca_pem);
    let wrong_ca = pem_file("redis-wrong-ca.pem", &new_ca().2);
    let cert = pem_file("redis.crt", &pki.server_cert_pem);
    let key = pem_file("redis.key", &pki.server_key_pem);
    let port = free_port();
    let _server = TlsRedis(
        std::process::Command::new("redis-server")
            .args(["--port", "0", "--tls-port", &port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--tls-cert-file")
            .arg(&cert)
            .arg("--tls-key-file")
            .arg(&key)
            .arg("--tls-ca-cert-file")
            .arg(&ca)
            .args(["--tls-auth-clients", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server"),
    );
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let url: url::Url = format!("rediss://127.0.0.1:{port}/0").parse().expect("url");
    let ping = async |ca_file: &PathBuf| {
        let client = redis::client(&url, Some(ca_file)).expect("client");
        let pool = redis::pool(client, 2, Duration::from_secs(2)).expect("pool");
        redis::run(&pool, async |conn| {
            deadpool_redis::redis::cmd("PING")
                .query_async::<String>(conn)
                .await
        })
        .await
    };
    assert_eq!(ping(&ca).await.expect("TLS with the right CA"), "PONG");
    assert!(ping(&wrong_ca).await.is_err(), "a wrong CA is refused");

    // The settings path: REDIS_CA_CERT is honoured for rediss:// only.
    let s = settings(&[
        ("REDIS_URL", url.as_str()),
        ("REDIS_CA_CERT", &ca.to_string_lossy()),
    ]);
    assert_eq!(s.redis_ca_cert.as_deref(), Some(ca.as_path()));

    for path in [ca, wrong_ca, cert, key] {
        let _ = std::fs::remove_file(path);
    }
}
