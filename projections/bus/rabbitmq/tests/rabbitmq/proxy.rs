//! A TCP proxy between a bus and RabbitMQ that can cut every connection or stall them.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// A running proxy; dropping it closes every connection.
pub struct Proxy {
    /// `127.0.0.1:port` to connect to instead of the broker.
    pub address: String,
    cut: watch::Sender<u64>,
    stall: Arc<watch::Sender<bool>>,
    task: JoinHandle<()>,
}

impl Proxy {
    /// A proxy on a free local port forwarding to `upstream` (`host:port`).
    pub async fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let address = listener.local_addr().expect("proxy address").to_string();
        let (cut, _) = watch::channel(0u64);
        let stall = Arc::new(watch::channel(false).0);
        let upstream = upstream.to_owned();
        let cuts = cut.clone();
        let stalls = Arc::clone(&stall);
        let task = tokio::spawn(async move {
            let mut links = JoinSet::new();
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                while links.try_join_next().is_some() {}
                let upstream = upstream.clone();
                let cut = cuts.subscribe();
                let stall = stalls.subscribe();
                links.spawn(link(client, upstream, cut, stall));
            }
        });
        Proxy {
            address,
            cut,
            stall,
            task,
        }
    }

    /// Closes every open connection (new ones are accepted).
    pub fn cut(&self) {
        self.cut.send_modify(|n| *n += 1);
    }

    /// Holds (`true`) or releases (`false`) every byte in both directions.
    pub fn stall(&self, on: bool) {
        self.stall.send_replace(on);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn link(
    client: TcpStream,
    upstream: String,
    mut cut: watch::Receiver<u64>,
    stall: watch::Receiver<bool>,
) {
    let Ok(server) = TcpStream::connect(&upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    cut.mark_unchanged();
    tokio::select! {
        () = pump(client_read, server_write, stall.clone()) => {}
        () = pump(server_read, client_write, stall) => {}
        _ = cut.changed() => {}
    }
}

async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut stall: watch::Receiver<bool>) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        while *stall.borrow_and_update() {
            if stall.changed().await.is_err() {
                return;
            }
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
