//! A TCP proxy in front of PostgreSQL that a test can cut and restore, to see how the
//! service behaves when its database disappears and comes back, or freeze, to see how it
//! behaves when a connection goes silent.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use tokio::{
    net::{TcpListener, TcpStream},
    sync::Notify,
    task::JoinHandle,
};

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

pub struct TcpProxy {
    pub port: u16,
    upstream: SocketAddr,
    listener: Option<JoinHandle<()>>,
    connections: Arc<Mutex<Vec<Proxied>>>,
}

/// One proxied connection: its forwarding task, and the signal that freezes it.
struct Proxied {
    task: JoinHandle<()>,
    freeze: Arc<Notify>,
}

impl TcpProxy {
    pub async fn start(upstream: SocketAddr) -> Self {
        let mut proxy = Self {
            port: free_port(),
            upstream,
            listener: None,
            connections: Arc::default(),
        };
        proxy.restore().await;
        proxy
    }

    /// Closes the listener and every proxied connection: the database is "down".
    pub fn cut(&mut self) {
        if let Some(listener) = self.listener.take() {
            listener.abort();
        }
        for connection in self.connections.lock().expect("lock").drain(..) {
            connection.task.abort();
        }
    }

    /// Every connection open now stops forwarding in both directions but stays open, as
    /// over a network path that died without a reset; new connections still work.
    pub fn freeze_open(&self) {
        for connection in self.connections.lock().expect("lock").iter() {
            connection.freeze.notify_one();
        }
    }

    /// Listens again on the same port.
    pub async fn restore(&mut self) {
        self.cut();
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", self.port)).await {
                Ok(listener) => break listener,
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            }
        };
        let upstream = self.upstream;
        let connections = Arc::clone(&self.connections);
        self.listener = Some(tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let freeze = Arc::new(Notify::new());
                let frozen = Arc::clone(&freeze);
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                            () = frozen.notified() => {
                                // Both sockets stay open, silent, until the proxy goes.
                                std::future::pending::<()>().await;
                            }
                        }
                    }
                });
                connections
                    .lock()
                    .expect("lock")
                    .push(Proxied { task, freeze });
            }
        }));
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.cut();
    }
}
