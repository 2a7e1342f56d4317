//! What the tests share: the server, isolated buses that remove their streams, a
//! private server to kill, a log to relay and a recording inbox handler.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::StreamExt;
use tessera_core::{
    BoxError, EventAppender, EventReader, ExpectedVersion, MemoryStore, NewEvent, Position,
    ReadAll, StreamId,
};
use tessera_nats::{NatsBuilder, NatsBus};
use tessera_projections::integration::{Consumer, Delivery, InboxHandler, Message, PublicEvents};
use tokio::process::{Child, Command};

/// The shared server's address: `NATS_URL`, or the local default.
pub fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// A fresh lower-case name: `{prefix}{8 hex digits}`.
pub fn unique(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}{}", &id[..8])
}

/// A bus on the shared server whose streams and subjects are its own (a random prefix
/// for both), and that deletes its streams when dropped, passed or failed.
pub struct Isolated {
    pub bus: NatsBus,
    prefix: String,
    url: String,
}

impl std::ops::Deref for Isolated {
    type Target = NatsBus;
    fn deref(&self) -> &NatsBus {
        &self.bus
    }
}

/// Connects `builder`, failing the test with how to start NATS if it cannot.
pub async fn connect(builder: NatsBuilder, url: &str) -> NatsBus {
    builder.connect().await.unwrap_or_else(|e| {
        panic!(
            "these tests need a NATS server with JetStream at {url} (NATS_URL overrides): {e}. \
             Start one with `nats-server -js` (it listens on 127.0.0.1:4222)."
        )
    })
}

/// Settings for a bus on the shared server with a stream prefix and a subject prefix
/// of its own; the stream prefix.
pub fn isolated_builder() -> (NatsBuilder, String) {
    let tag = unique("");
    let prefix = format!("T{}", tag.to_uppercase());
    let builder = NatsBus::builder(nats_url())
        .stream_prefix(prefix.clone())
        .subject_prefix(format!("t{tag}"));
    (builder, prefix)
}

/// An isolated bus on the shared server, with `tune` applied to its settings.
pub async fn isolated_with(tune: impl FnOnce(NatsBuilder) -> NatsBuilder) -> Isolated {
    let url = nats_url();
    let (builder, prefix) = isolated_builder();
    let bus = connect(tune(builder), &url).await;
    Isolated { bus, prefix, url }
}

/// An isolated bus on the shared server.
pub async fn isolated() -> Isolated {
    isolated_with(|b| b).await
}

/// Deletes every stream named `{prefix}_…` or `{prefix}-…` on the server at `url`.
pub async fn delete_streams(url: &str, prefix: &str) {
    let Ok(client) = async_nats_client(url).await else {
        return;
    };
    let js = tessera_nats::async_nats::jetstream::new(client);
    let names: Vec<String> = js
        .stream_names()
        .filter_map(|n| async move { n.ok() })
        .collect()
        .await;
    for name in names {
        if name.starts_with(&format!("{prefix}_")) || name.starts_with(&format!("{prefix}-")) {
            let _ = js.delete_stream(&name).await;
        }
    }
}

async fn async_nats_client(
    url: &str,
) -> Result<tessera_nats::async_nats::Client, tessera_nats::async_nats::ConnectError> {
    tessera_nats::async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(2))
        .connect(url)
        .await
}

impl Drop for Isolated {
    fn drop(&mut self) {
        delete_streams_blocking(&self.url, &self.prefix);
    }
}

/// [`delete_streams`] on a thread and runtime of its own: usable in `drop`, after a
/// failure too, when the test's runtime may be unwinding.
pub fn delete_streams_blocking(url: &str, prefix: &str) {
    let (url, prefix) = (url.to_owned(), prefix.to_owned());
    let _ = std::thread::spawn(move || {
        if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            rt.block_on(async {
                let _ =
                    tokio::time::timeout(Duration::from_secs(10), delete_streams(&url, &prefix))
                        .await;
            });
        }
    })
    .join();
}

/// A `nats-server -js` of the test's own, on a free port with a temporary store
/// directory, to kill with SIGKILL and start again. Killed (and its directory removed)
/// when dropped.
pub struct PrivateServer {
    pub port: u16,
    pub dir: PathBuf,
    config: Option<PathBuf>,
    child: Option<Child>,
}

impl PrivateServer {
    /// Starts one; `config` is the text of a configuration file to start it with (its
    /// `store_dir` is set to the server's directory), if any.
    pub async fn start(config: Option<&str>) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir = std::env::temp_dir().join(unique("tessera-nats-"));
        std::fs::create_dir_all(&dir).expect("store directory");
        let config = config.map(|text| {
            let path = dir.join("server.conf");
            let store = dir.join("store");
            let text = format!("jetstream {{ store_dir: {store:?} }}\n{text}\n");
            std::fs::write(&path, text).expect("config file");
            path
        });
        let mut server = Self {
            port,
            dir,
            config,
            child: None,
        };
        server.run().await;
        server
    }

    /// The client address.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    async fn run(&mut self) {
        let mut command = Command::new("nats-server");
        command.args(["-js", "-a", "127.0.0.1", "-p", &self.port.to_string()]);
        match &self.config {
            Some(path) => command.arg("-c").arg(path),
            None => command.arg("-sd").arg(self.dir.join("store")),
        };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("server.log"))
            .expect("log file");
        let child = command
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start nats-server (is it on the PATH? this test starts its own `nats-server -js`): {e}")
            });
        self.child = Some(child);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the private nats-server on port {} did not start; see {}",
                self.port,
                self.dir.join("server.log").display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Kills it with SIGKILL (no shutdown, no flush) and waits until it is gone.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.start_kill().expect("SIGKILL the private nats-server");
            let _ = child.wait().await;
        }
    }

    /// Starts it again on the same port and store directory.
    pub async fn restart(&mut self) {
        self.kill().await;
        self.run().await;
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The public events of `context`: `Deposited` of category `acct`; `Noted` is private.
pub fn public(context: &str) -> PublicEvents {
    PublicEvents::new(context).map("acct", "Deposited", "Deposited", 1, |e| {
        Ok(e.data.to_value()?)
    })
}

/// Appends event number `i` to stream `acct-{i % streams}`: a public `Deposited`, with a
/// private `Noted` after every seventh.
pub async fn deposit(store: &MemoryStore, streams: usize, i: usize) {
    let stream = StreamId::new(format!("acct-{}", i % streams)).expect("stream id");
    let mut events =
        vec![NewEvent::json("Deposited", &serde_json::json!({ "n": i })).expect("json")];
    if i % 7 == 0 {
        events.push(NewEvent::json("Noted", &serde_json::json!({ "n": i })).expect("json"));
    }
    store
        .append(&stream, ExpectedVersion::Any, events)
        .await
        .expect("append");
}

/// The public events of `store`'s log: id → (stream, version).
pub async fn public_events(store: &MemoryStore) -> HashMap<uuid::Uuid, (String, u64)> {
    store
        .read_all(ReadAll::after(Position::START, usize::MAX))
        .await
        .expect("read the log")
        .iter()
        .filter(|e| e.event_type == "Deposited")
        .map(|e| (e.id.0, (e.stream_id.as_str().to_owned(), e.version.0)))
        .collect()
}

/// What a [`Recorder`] saw.
#[derive(Default)]
pub struct Seen {
    /// Every call of the handler: (id, stream, version), in order.
    pub calls: Vec<(uuid::Uuid, String, u64)>,
    /// The ids handled (the effect).
    pub ids: HashSet<uuid::Uuid>,
}

/// An inbox handler whose effect is a set of message ids (a repeat changes nothing).
#[derive(Clone, Default)]
pub struct Recorder(pub Arc<Mutex<Seen>>);

impl Recorder {
    /// How many distinct messages it handled.
    pub fn distinct(&self) -> usize {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .ids
            .len()
    }

    /// Asserts that its effect is exactly the public events of the log, each stream's in
    /// version order; returns how many calls it had.
    pub fn assert_exactly(&self, public: &HashMap<uuid::Uuid, (String, u64)>) -> usize {
        let seen = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let mut first = HashSet::new();
        let mut last: BTreeMap<&str, u64> = BTreeMap::new();
        for (id, stream, version) in &seen.calls {
            let Some(expected) = public.get(id) else {
                panic!("message {id} ({stream} v{version}) is no public event of the log");
            };
            assert_eq!(
                (stream, *version),
                (&expected.0, expected.1),
                "headers of {id}"
            );
            if !first.insert(*id) {
                continue;
            }
            if let Some(before) = last.insert(stream.as_str(), *version) {
                assert!(
                    before < *version,
                    "{stream}: version {version} handled after {before}"
                );
            }
        }
        assert_eq!(
            seen.ids.len(),
            public.len(),
            "every public event handled once in effect"
        );
        seen.calls.len()
    }
}

impl InboxHandler for Recorder {
    async fn handle(&self, m: &Message) -> Result<(), BoxError> {
        let mut seen = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        seen.calls.push((m.id, m.stream.clone(), m.version));
        seen.ids.insert(m.id);
        Ok(())
    }
}

/// Waits until `done` holds, failing with `what` after `limit`.
pub async fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The consumer's next delivery within 5 seconds, if any.
pub async fn next(consumer: &mut Box<dyn Consumer>) -> Option<Delivery> {
    consumer
        .next(Duration::from_secs(5))
        .await
        .expect("the consumer works")
}
