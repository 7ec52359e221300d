//! Test servers written in Python (a real SMTP server, a real OpenID provider): each
//! prints "ready" once listening and exits when its standard input closes, so it ends
//! with the test process that started it, however that process ends.

use std::{
    io::{BufRead, BufReader},
    process::{Child, ChildStdin, Command, Stdio},
    sync::Mutex,
    time::{Duration, Instant},
};

/// How long a server may take to exit once its stdin closes before it is killed (a
/// server can wait on a client's open connection, e.g. aiosmtpd on a pooled TLS one).
const EXIT_GRACE: Duration = Duration::from_secs(5);

pub struct PythonServer {
    /// Held open: the server exits when it closes.
    stdin: Mutex<Option<ChildStdin>>,
    child: Mutex<Child>,
}

impl PythonServer {
    /// Runs `tests/api/common/<script>` with `args` and waits until it is ready.
    pub fn start(script: &str, args: &[&str]) -> Self {
        let path = format!("{}/tests/api/common/{script}", env!("CARGO_MANIFEST_DIR"));
        let mut child = Command::new("python3")
            .arg(path)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 with the test servers' packages (run scripts/services.sh)");
        let mut ready = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut ready)
            .expect("test server output");
        assert_eq!(ready.trim(), "ready", "{script} did not start");
        Self {
            stdin: Mutex::new(child.stdin.take()),
            child: Mutex::new(child),
        }
    }
}

impl Drop for PythonServer {
    /// Closes its stdin and waits until it has exited (so its port is free again),
    /// killing it after [`EXIT_GRACE`]: a test's cleanup must not hang.
    fn drop(&mut self) {
        if let Ok(mut stdin) = self.stdin.lock() {
            stdin.take();
        }
        if let Ok(mut child) = self.child.lock() {
            let deadline = Instant::now() + EXIT_GRACE;
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
