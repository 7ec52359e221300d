//! A real SMTP server for the tests: aiosmtpd (`smtp_sink.py`), started once per test
//! process on a free port, ending with the process.

use std::{
    path::{Path, PathBuf},
    sync::OnceLock,
    time::{Duration, Instant},
};

use serde_json::Value;

use super::python::PythonServer;

pub struct MailServer {
    pub port: u16,
    dir: PathBuf,
    _server: PythonServer,
}

/// One email as the server received it.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The process's SMTP server (no TLS, no AUTH), started on first use.
pub fn server() -> &'static MailServer {
    static SERVER: OnceLock<MailServer> = OnceLock::new();
    SERVER.get_or_init(MailServer::start)
}

impl MailServer {
    fn start() -> Self {
        Self::start_with(&[])
    }

    /// A server of its own that offers STARTTLS with `cert`/`key` (PEM files) and
    /// requires it, then AUTH as `user` with `password`, before it takes any mail.
    pub fn start_secure(cert: &Path, key: &Path, user: &str, password: &str) -> Self {
        let path = |p: &Path| p.to_str().expect("utf-8 path").to_owned();
        Self::start_with(&[path(cert), path(key), user.to_owned(), password.to_owned()])
    }

    fn start_with(extra: &[String]) -> Self {
        let port = super::tcp_proxy::free_port();
        let dir = PathBuf::from(format!(
            "{}/mail-{}-{port}",
            env!("CARGO_TARGET_TMPDIR"),
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let mut args = vec![
            port.to_string(),
            dir.to_str().expect("utf-8 path").to_owned(),
        ];
        args.extend_from_slice(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let server = PythonServer::start("smtp_sink.py", &args);
        Self {
            port,
            dir,
            _server: server,
        }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every email received for `to` so far, oldest first.
    pub fn received(&self, to: &str) -> Vec<Mail> {
        let prefix = format!("{to}-");
        let mut names: Vec<String> = std::fs::read_dir(&self.dir)
            .map(|entries| {
                entries
                    .flatten()
                    .filter_map(|e| e.file_name().into_string().ok())
                    .filter(|n| n.starts_with(&prefix) && n.ends_with(".json"))
                    .collect()
            })
            .unwrap_or_default();
        names.sort_by_key(|n| {
            n[prefix.len()..n.len() - 5]
                .parse::<u128>()
                .unwrap_or_default()
        });
        names
            .iter()
            .map(|name| {
                let raw = std::fs::read_to_string(self.dir.join(name)).expect("mail file");
                let json: Value = serde_json::from_str(&raw).expect("mail json");
                let field = |k: &str| json[k].as_str().unwrap_or_default().to_owned();
                Mail {
                    to: field("to"),
                    subject: field("subject"),
                    text: field("text"),
                    html: field("html"),
                }
            })
            .collect()
    }

    /// Waits (up to 15 s) until `to` has received `count` emails, and returns them.
    pub async fn wait_for(&self, to: &str, count: usize) -> Vec<Mail> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let mails = self.received(to);
            if mails.len() >= count {
                return mails;
            }
            assert!(
                Instant::now() < deadline,
                "{to} received {} emails, expected {count}",
                mails.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The token of the link to `{public_url}/{path}?token=…` in `text`.
pub fn link_token(text: &str, path: &str) -> String {
    let marker = format!("/{path}?token=");
    let start = text
        .find(&marker)
        .unwrap_or_else(|| panic!("no {path} link in {text}"))
        + marker.len();
    text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}
