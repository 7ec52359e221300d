//! What an operator gets from the binary's logs: JSON on stdout when asked, `RUST_LOG`
//! over `LOG_LEVEL`, and no more than `LOG_MAX_FILES` daily files kept.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::Duration,
};

use crate::common::{REDIS_URL, TestApp};

#[tokio::test]
async fn json_stdout_rust_log_override_and_file_retention() {
    let app = TestApp::spawn().await;
    let dir = std::env::temp_dir().join(format!("mpt-logs-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).expect("log dir");
    for day in 1..=5 {
        std::fs::write(dir.join(format!("app.log.2020-01-0{day}")), "{}\n").expect("old log");
    }
    let url = app.settings.database_url.to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_marketplace"))
        .current_dir(std::env::temp_dir()) // away from any developer .env
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs([
            ("DATABASE_URL", url.as_str()),
            ("REDIS_URL", REDIS_URL),
            ("REDIS_KEY_PREFIX", "logging-test:"),
            ("BIND", "127.0.0.1:0"),
            ("LOG_DIR", &dir.to_string_lossy()),
            ("LOG_MAX_FILES", "2"),
            ("LOG_FORMAT", "json"),
            // RUST_LOG wins: at LOG_LEVEL=error the info line below would not appear.
            ("LOG_LEVEL", "error"),
            ("RUST_LOG", "info"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn marketplace");
    let stdout = child.stdout.take().expect("stdout");
    let reader = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find(|line| line.contains("listening"))
            .unwrap_or_default()
    });
    // Killing the server closes its stdout, which ends the reader either way.
    let waited = tokio::time::timeout(Duration::from_secs(30), reader).await;
    let _ = child.kill();
    let _ = child.wait();
    let line = waited
        .expect("a `listening` line within 30 s")
        .expect("reader");
    let parsed: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|_| panic!("one JSON object per line: {line}"));
    assert_eq!(parsed["level"], "INFO");
    assert_eq!(parsed["fields"]["message"], "listening");

    let kept: Vec<String> = std::fs::read_dir(&dir)
        .expect("log dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("app.log"))
        .collect();
    assert_eq!(kept.len(), 2, "LOG_MAX_FILES=2 keeps two files: {kept:?}");
    let _ = std::fs::remove_dir_all(dir);
}
