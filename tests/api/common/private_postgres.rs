//! A PostgreSQL cluster of the test's own (`initdb` into a temporary directory, its own
//! port), so a test can configure it (TLS) without touching the machine's shared server.
//! PostgreSQL refuses to run as root: as root, the cluster runs as the `postgres` user.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

pub struct PrivatePostgres {
    pub port: u16,
    pub dir: PathBuf,
}

impl PrivatePostgres {
    /// Whether `initdb` and `pg_ctl` exist; tests skip (saying so) when not.
    pub fn available() -> bool {
        ["initdb", "pg_ctl"].iter().all(|bin| {
            Command::new(tool(bin))
                .arg("--version")
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
    }

    /// Creates a cluster (trust authentication, user `postgres`) and starts it with
    /// `settings` (`key=value` lines appended to postgresql.conf); `files` are written
    /// into the data directory first (readable by the server only), e.g. TLS keys.
    pub fn start(settings: &[&str], files: &[(&str, &[u8])]) -> Self {
        let port = super::tcp_proxy::free_port();
        let dir = std::env::temp_dir().join(format!("mpt-pg-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("cluster dir");
        let cluster = Self { port, dir };
        cluster.chown(&cluster.dir);
        cluster.run(
            "initdb",
            &[
                "-D",
                &cluster.data().to_string_lossy(),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
            ],
        );
        let mut conf = format!(
            "\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\nfsync = off\n",
            cluster.dir.display()
        );
        for line in settings {
            conf.push_str(line);
            conf.push('\n');
        }
        append(&cluster.data().join("postgresql.conf"), &conf);
        for (name, bytes) in files {
            let path = cluster.data().join(name);
            std::fs::write(&path, bytes).expect("write file");
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .expect("chmod");
            cluster.chown(&path);
        }
        cluster.run(
            "pg_ctl",
            &[
                "-D",
                &cluster.data().to_string_lossy(),
                "-l",
                &cluster.dir.join("server.log").to_string_lossy(),
                "-w",
                "start",
            ],
        );
        cluster
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn is_root() -> bool {
        rustix::process::geteuid().is_root()
    }

    fn chown(&self, path: &Path) {
        if Self::is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(path)
                .status()
                .expect("chown");
            assert!(status.success(), "chown {}", path.display());
        }
    }

    /// Runs a PostgreSQL tool, as the `postgres` user when we are root.
    fn run(&self, bin: &str, args: &[&str]) {
        let bin = tool(bin);
        let mut command = if Self::is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&bin);
            c
        } else {
            Command::new(&bin)
        };
        let output = command.args(args).output().expect("a PostgreSQL tool");
        assert!(
            output.status.success(),
            "{} failed: {}{}",
            bin.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// A server tool: from PATH, else from the newest Debian install
/// (`/usr/lib/postgresql/<version>/bin`, which the packages keep off PATH).
fn tool(name: &str) -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).any(|dir| dir.join(name).is_file()))
        .unwrap_or(false);
    if on_path {
        return PathBuf::from(name);
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dir| {
            dir.flatten()
                .map(|e| e.path().join("bin").join(name))
                .collect()
        })
        .unwrap_or_default();
    versions.retain(|p| p.is_file());
    versions.sort_by_key(|p| {
        p.iter()
            .nth(4)
            .and_then(|v| v.to_str()?.parse::<u32>().ok())
            .unwrap_or(0)
    });
    versions.pop().unwrap_or_else(|| PathBuf::from(name))
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open");
    file.write_all(text.as_bytes()).expect("append");
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data().to_string_lossy(),
                "-m",
                "immediate",
                "stop",
            ],
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
