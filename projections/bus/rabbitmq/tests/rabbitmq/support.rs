//! The shared RabbitMQ, with a virtual host of its own for each test.

use std::collections::BTreeSet;
use std::net::ToSocketAddrs;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lapin::types::ShortString;
use lapin::{Connection, ConnectionProperties};
use tessera_core::Position;
use tessera_projections::integration::{
    Consumer, ConsumerSpec, Delivery, Message, MessageKind, JSON,
};
use tessera_rabbitmq::{RabbitBus, RabbitConfig};

/// The broker the tests use (`AMQP_URL` overrides).
pub fn base_url() -> String {
    std::env::var("AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// `host:port` of `url`.
pub fn address(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:5672")
    }
}

/// `url` with its `host:port` replaced by `address` and its virtual host by `vhost`.
pub fn rewrite(url: &str, address_to: &str, vhost: Option<&str>) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("amqp", url));
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let userinfo = authority.rsplit_once('@').map(|(u, _)| format!("{u}@"));
    let path = match vhost {
        Some(v) => format!("/{v}"),
        None => path.to_owned(),
    };
    format!(
        "{scheme}://{}{address_to}{path}",
        userinfo.unwrap_or_default()
    )
}

fn user(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split_once('@')
        .and_then(|(u, _)| u.split(':').next())
        .unwrap_or("guest")
        .to_owned()
}

fn rabbitmqctl(args: &[&str]) -> bool {
    Command::new("rabbitmqctl")
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// One test's piece of the broker: a virtual host of its own (made with `rabbitmqctl`
/// and deleted on drop), or, where `rabbitmqctl` cannot be used, a name prefix of its
/// own on the broker's virtual host.
pub struct Broker {
    /// The URL for this test (its virtual host, with credentials).
    pub url: String,
    /// Prefix of the test's exchange and queue names.
    pub prefix: String,
    vhost: Option<String>,
    made: Arc<Made>,
}

/// The contexts and consumer queues a test used: what is deleted after it when it has
/// no virtual host of its own.
#[derive(Default)]
pub struct Made {
    contexts: Mutex<BTreeSet<String>>,
    queues: Mutex<BTreeSet<String>>,
}

impl Made {
    /// Notes that the test used `context`.
    pub fn context(&self, context: &str) {
        self.contexts.lock().unwrap().insert(context.to_owned());
    }

    /// Notes that the test declared the consumer queue `queue`.
    pub fn queue(&self, queue: &str) {
        self.queues.lock().unwrap().insert(queue.to_owned());
    }
}

static NEXT: AtomicU32 = AtomicU32::new(0);

impl Broker {
    /// A fresh piece of the shared broker for `test`. Fails, saying how to start
    /// RabbitMQ, when it cannot be reached.
    pub async fn new(test: &'static str) -> Broker {
        tokio::task::spawn_blocking(move || Broker::open(test))
            .await
            .expect("open the test's piece of the broker")
    }

    /// The same, blocking.
    pub fn open(test: &str) -> Broker {
        let base = base_url();
        let addr = address(&base);
        let reachable = addr
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .is_some_and(|a| {
                std::net::TcpStream::connect_timeout(&a, Duration::from_secs(3)).is_ok()
            });
        if !reachable {
            panic!(
                "RabbitMQ is not reachable at {addr}: these tests need it. Start it with \
                 `service rabbitmq-server start` (RabbitMQ 3.10+, guest/guest), or point \
                 AMQP_URL at one (amqp://user:password@host:5672/%2f)."
            );
        }
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("tessera-test-{}-{test}-{n}", std::process::id());
        let user = user(&base);
        let made = rabbitmqctl(&["add_vhost", &name])
            && rabbitmqctl(&["set_permissions", "-p", &name, &user, ".*", ".*", ".*"]);
        if made {
            Broker {
                url: rewrite(&base, &addr, Some(&name)),
                prefix: "tessera.".to_owned(),
                vhost: Some(name),
                made: Arc::default(),
            }
        } else {
            eprintln!(
                "rabbitmqctl cannot add a virtual host here: isolating {test} by name prefix"
            );
            Broker {
                url: base,
                prefix: format!("{name}."),
                vhost: None,
                made: Arc::default(),
            }
        }
    }

    /// The bus settings of this test (its prefix).
    pub fn config(&self) -> RabbitConfig {
        RabbitConfig::default().with_prefix(self.prefix.clone())
    }

    /// A bus on this test's piece of the broker.
    pub async fn bus(&self) -> RabbitBus {
        RabbitBus::connect_with(&self.url, self.config())
            .await
            .expect("connect to RabbitMQ")
    }

    /// A consumer spec whose queue name is unique to this test.
    pub fn spec(&self, name: &str, context: &str, filter: &str) -> ConsumerSpec {
        let name = match self.vhost {
            Some(_) => name.to_owned(),
            None => format!("{}{name}", self.prefix),
        };
        self.made.context(context);
        self.made.queue(&name);
        ConsumerSpec::new(name, context, filter)
    }

    /// Where to note what the test made beyond [`Self::spec`].
    pub fn made(&self) -> Arc<Made> {
        Arc::clone(&self.made)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(v) = &self.vhost {
            if !rabbitmqctl(&["delete_vhost", v]) {
                eprintln!("could not delete the test virtual host {v}");
            }
            return;
        }
        // Sharing the broker's virtual host: delete what the test made, by name.
        let (url, config, made) = (self.url.clone(), self.config(), Arc::clone(&self.made));
        let cleaning = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime to clean up");
            runtime.block_on(delete(&url, &config, &made));
        });
        if cleaning.join().is_err() {
            eprintln!("the clean-up of {} failed", self.prefix);
        }
    }
}

/// Deletes the queues and exchanges of `made` (each on a channel of its own: a failed
/// deletion closes its channel).
async fn delete(url: &str, config: &RabbitConfig, made: &Made) {
    let Ok(connection) = Connection::connect(url, ConnectionProperties::default()).await else {
        eprintln!("could not connect to delete the test's queues and exchanges");
        return;
    };
    let mut queues: Vec<String> = made.queues.lock().unwrap().iter().cloned().collect();
    let mut exchanges = Vec::new();
    for context in made.contexts.lock().unwrap().iter() {
        queues.push(config.dead_letter_queue(context));
        queues.push(config.unrouted_queue(context));
        exchanges.push(config.exchange(context));
        exchanges.push(config.unrouted_queue(context));
    }
    // Names AMQP cannot carry (tests of refusals note them too) were never made.
    let short = |name: String| ShortString::try_new(name).ok();
    for queue in queues.into_iter().filter_map(short) {
        if let Ok(channel) = connection.create_channel().await {
            let options = lapin::options::QueueDeleteOptions::default();
            let _ = channel.queue_delete(queue, options).await;
        }
    }
    for exchange in exchanges.into_iter().filter_map(short) {
        if let Ok(channel) = connection.create_channel().await {
            let options = lapin::options::ExchangeDeleteOptions::default();
            let _ = channel.exchange_delete(exchange, options).await;
        }
    }
    let _ = connection.close(200, "OK".into()).await;
}

/// Waits until `check` holds, polling every 20 ms, or panics naming `what` after
/// `timeout`.
pub async fn eventually(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How long a test waits for a delivery it expects.
pub const WAIT: Duration = Duration::from_secs(10);

/// The next delivery, which must come within [`WAIT`].
pub async fn next(consumer: &mut Box<dyn Consumer>) -> Delivery {
    consumer
        .next(WAIT)
        .await
        .expect("next delivery")
        .expect("a delivery in time")
}

/// Asserts that nothing more arrives within 300 ms.
pub async fn nothing_more(consumer: &mut Box<dyn Consumer>) {
    let more = consumer.next(Duration::from_millis(300)).await.unwrap();
    assert!(more.is_none(), "nothing more arrives: {more:?}");
}

/// An event of context `ordering` on `subject`, from `stream` at `version`.
pub fn event(subject: &str, stream: &str, version: u64) -> Message {
    Message {
        id: uuid::Uuid::new_v4(),
        kind: MessageKind::Event,
        name: subject.rsplit('.').next().unwrap_or_default().to_owned(),
        schema_version: 1,
        source: "ordering".to_owned(),
        subject: subject.to_owned(),
        stream: stream.to_owned(),
        version,
        previous: version.checked_sub(1),
        position: Position::new(version + 1, 0),
        correlation_id: None,
        causation_id: None,
        idempotency_key: None,
        headers: Default::default(),
        content_type: JSON.to_owned(),
        payload: b"{}".to_vec().into(),
    }
}
