//! The binary itself: configuration errors and `create-admin`.

use std::{
    io::Write,
    process::{Command, Output, Stdio},
};

use crate::common::TestApp;

fn marketplace(args: &[&str], env: &[(&str, &str)], stdin: &str) -> Output {
    let dir = std::env::temp_dir();
    let mut child = Command::new(env!("CARGO_BIN_EXE_marketplace"))
        .args(args)
        .current_dir(&dir) // away from any developer .env
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("LOG_DIR", crate::common::log_dir())
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn marketplace");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}

#[test]
fn bad_configuration_stops_startup_naming_the_key() {
    for (key, value) in [
        ("BIND", "nonsense"),
        ("UPLOAD_MAX_BYTES", "-1"),
        ("DATABASE_URL", "::not a url::"),
    ] {
        let output = marketplace(&["serve"], &[(key, value)], "");
        assert_eq!(output.status.code(), Some(2), "{key}={value}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.lines().count(), 1, "one clear line: {stderr}");
        assert!(
            stderr.contains(key) && stderr.contains("expected"),
            "{stderr}"
        );
    }
}

#[test]
fn production_refuses_a_short_secret() {
    let output = marketplace(
        &["serve"],
        &[("APP_ENV", "production"), ("JWT_SECRET", "short")],
        "",
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("JWT_SECRET") && !stderr.contains("short\""),
        "{stderr}"
    );
}

#[tokio::test]
async fn create_admin_then_duplicate() {
    let app = TestApp::spawn().await;
    let url = app.settings.database_url.to_string();
    let env = [
        ("DATABASE_URL", url.as_str()),
        ("REDIS_URL", crate::common::REDIS_URL),
    ];
    let args = [
        "create-admin",
        "--email",
        "Boss@Example.com",
        "--password-stdin",
    ];

    let output = marketplace(&args, &env, "an admin password\n");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // No token is signed here, so no warning about the signing key.
    assert!(
        !String::from_utf8_lossy(&output.stdout).contains("JWT_SECRET"),
        "{output:?}"
    );
    let tokens = app.login("boss@example.com", "an admin password").await;
    let me = app.get("/api/v1/auth/me", Some(&tokens.access)).await;
    assert_eq!(me.json["role"], "admin");

    let output = marketplace(&args, &env, "another password\n");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("already exists"), "{stderr}");
    // Said once, on the terminal, not also as a log line.
    let printed = format!("{stderr}{}", String::from_utf8_lossy(&output.stdout));
    assert_eq!(printed.matches("already exists").count(), 1, "{printed}");
}

#[tokio::test]
async fn sigterm_drains_and_exits_cleanly() {
    let app = TestApp::spawn().await;
    let port = crate::common::tcp_proxy::free_port();
    let bind = format!("127.0.0.1:{port}");
    let url = app.settings.database_url.to_string();
    let server = Command::new(env!("CARGO_BIN_EXE_marketplace"))
        .current_dir(std::env::temp_dir())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("LOG_DIR", crate::common::log_dir())
        .env("DATABASE_URL", &url)
        .env("REDIS_URL", crate::common::REDIS_URL)
        .env("REDIS_KEY_PREFIX", &app.settings.redis_prefix)
        .env("BIND", &bind)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn marketplace");
    let health = format!("http://{bind}/health");
    let mut up = false;
    for _ in 0..200 {
        if reqwest::get(&health)
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(up, "the server came up");

    let pid = server.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = tokio::task::spawn_blocking(move || server.wait_with_output())
        .await
        .expect("join")
        .expect("wait");
    assert!(status.status.success(), "exit status {:?}", status.status);
    let stdout = String::from_utf8_lossy(&status.stdout);
    assert!(
        stdout.contains("shutting down") && stdout.contains("stopped"),
        "{stdout}"
    );
    assert!(reqwest::get(&health).await.is_err(), "no longer accepting");
}

#[tokio::test]
async fn log_files_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let app = TestApp::spawn().await;
    let dir = std::env::temp_dir().join(format!("mp-logs-{}", uuid::Uuid::now_v7()));
    let url = app.settings.database_url.to_string();
    let output = marketplace(
        &["migrate"],
        &[
            ("DATABASE_URL", url.as_str()),
            ("LOG_DIR", dir.to_str().expect("utf-8")),
        ],
        "",
    );
    assert!(output.status.success(), "{output:?}");
    let files: Vec<_> = std::fs::read_dir(&dir)
        .expect("log dir")
        .flatten()
        .collect();
    assert!(!files.is_empty());
    for file in files {
        let mode = file.metadata().expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{:?}", file.path());
    }
    let _ = std::fs::remove_dir_all(dir);
}
