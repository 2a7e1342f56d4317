//! The bus: connecting, the streams of each context, and acknowledged publishing.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_nats::jetstream::context::{CreateStreamErrorKind, PublishAckFuture, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, stream};
use async_nats::{HeaderMap, HeaderName, HeaderValue};
use async_trait::async_trait;
use tessera_projections::integration::{
    wire, Bus, BusError, Confirmation, Consumer, ConsumerSpec, Message,
};

use crate::names::{self, Names, DEAD_TOKEN};
use crate::window::{InFlight, Window};

/// Tessera's integration events on NATS JetStream. Clones share one connection.
///
/// See the [crate](crate) docs for where messages go and what a confirmation promises.
#[derive(Clone)]
pub struct NatsBus {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) client: async_nats::Client,
    pub(crate) js: jetstream::Context,
    pub(crate) names: Names,
    pub(crate) settings: NatsBuilder,
    /// The address without credentials.
    pub(crate) url: String,
    /// Streams known to exist (created or found), by name.
    streams: Mutex<HashSet<String>>,
    /// Publishes sent and not yet acknowledged.
    window: Window,
}

impl std::fmt::Debug for NatsBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsBus")
            .field("url", &self.inner.url)
            .field("stream_prefix", &self.inner.names.stream_prefix)
            .field("subject_prefix", &self.inner.names.subject_prefix)
            .finish_non_exhaustive()
    }
}

/// Settings of a [`NatsBus`], then [`connect`](NatsBuilder::connect).
#[derive(Clone)]
pub struct NatsBuilder {
    url: String,
    stream_prefix: String,
    subject_prefix: String,
    connect_timeout: Duration,
    pub(crate) request_timeout: Duration,
    max_pending_publishes: usize,
    pub(crate) ack_wait: Duration,
    duplicate_window: Duration,
    replicas: usize,
}

impl std::fmt::Debug for NatsBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsBuilder")
            .field("url", &names::redact(&self.url))
            .field("stream_prefix", &self.stream_prefix)
            .field("subject_prefix", &self.subject_prefix)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("max_pending_publishes", &self.max_pending_publishes)
            .field("ack_wait", &self.ack_wait)
            .field("duplicate_window", &self.duplicate_window)
            .field("replicas", &self.replicas)
            .finish()
    }
}

impl NatsBuilder {
    /// Streams are named `{prefix}_{CONTEXT}` (the context upper-cased), dead letters
    /// go to `{prefix}-DEAD`. Default `TESSERA`.
    #[must_use]
    pub fn stream_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.stream_prefix = prefix.into();
        self
    }

    /// Every subject is put under `prefix` on the server (`{prefix}.{subject}`), so that
    /// two buses with different prefixes share a server without sharing a subject (the
    /// message's own `subject` stays as the relay made it). Default none.
    #[must_use]
    pub fn subject_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.subject_prefix = prefix.into();
        self
    }

    /// How long connecting may take before the server counts as unreachable. Default
    /// 5 s.
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long a JetStream request or a publish's acknowledgement may take. Default
    /// 5 s.
    #[must_use]
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Most publishes sent and not yet acknowledged on this bus (its clones share the
    /// window), across [`send`](Bus::send) and [`publish`](Bus::publish) calls: a relay
    /// sending its next batch while the previous one awaits acknowledgements has at most
    /// this many of both outstanding. Default 256.
    #[must_use]
    pub fn max_pending_publishes(mut self, max: usize) -> Self {
        self.max_pending_publishes = max.max(1);
        self
    }

    /// How long JetStream waits for a delivery to be settled before it delivers the
    /// message again (consumers created from then on; an existing consumer is updated
    /// when opened). Default 30 s.
    #[must_use]
    pub fn ack_wait(mut self, ack_wait: Duration) -> Self {
        self.ack_wait = ack_wait;
        self
    }

    /// How long a stream remembers message ids to drop re-publishes (streams created
    /// from then on). Default 2 minutes, JetStream's default.
    #[must_use]
    pub fn duplicate_window(mut self, window: Duration) -> Self {
        self.duplicate_window = window;
        self
    }

    /// Replicas of each stream created (1 on a single server; 3 in a cluster keeps an
    /// acknowledged message through the loss of one machine). Default 1.
    #[must_use]
    pub fn replicas(mut self, replicas: usize) -> Self {
        self.replicas = replicas.max(1);
        self
    }

    /// Connects. A server that cannot be reached within the connect timeout, or that
    /// has JetStream disabled, is [`BusError::Unavailable`] naming the address without
    /// credentials.
    pub async fn connect(self) -> Result<NatsBus, BusError> {
        let url = names::redact(&self.url);
        let unreachable = |why: String| {
            BusError::Unavailable(format!(
                "cannot connect to NATS at {url}: {}",
                names::scrub(&why, &self.url)
            ))
        };
        let options = async_nats::ConnectOptions::new()
            .name("tessera")
            .connection_timeout(self.connect_timeout)
            .request_timeout(Some(self.request_timeout))
            // Reconnect quickly after the server comes back (the default waits up to
            // several seconds between attempts).
            .reconnect_delay_callback(|attempts| {
                let exponent = u32::try_from(attempts.min(5)).unwrap_or(5);
                Duration::from_millis(50 * 2u64.pow(exponent)).min(Duration::from_secs(1))
            });
        let grace = self.connect_timeout + Duration::from_secs(1);
        let client = match tokio::time::timeout(grace, options.connect(self.url.as_str())).await {
            Ok(Ok(client)) => client,
            Ok(Err(e)) => return Err(unreachable(e.to_string())),
            Err(_) => return Err(unreachable(format!("timed out after {grace:?}"))),
        };
        // Not `query_account` (its reply from a 2.9 server does not parse): any answer
        // to the JetStream API's INFO request says JetStream is there.
        match tokio::time::timeout(
            self.request_timeout,
            client.request("$JS.API.INFO", bytes::Bytes::new()),
        )
        .await
        {
            Ok(Ok(_)) => {}
            Ok(Err(e)) if e.kind() == async_nats::RequestErrorKind::NoResponders => {
                return Err(BusError::Unavailable(format!(
                    "NATS at {url} has JetStream disabled (start nats-server with -js)"
                )))
            }
            Ok(Err(e)) => return Err(unreachable(format!("JetStream API: {e}"))),
            Err(_) => return Err(unreachable("JetStream API did not answer".into())),
        }
        let js = jetstream::context::ContextBuilder::new()
            .timeout(self.request_timeout)
            .build(client.clone());
        Ok(NatsBus {
            inner: Arc::new(Inner {
                client,
                js,
                names: Names {
                    stream_prefix: self.stream_prefix.clone(),
                    subject_prefix: self.subject_prefix.clone(),
                },
                window: Window::new(self.max_pending_publishes),
                settings: self,
                url,
                streams: Mutex::new(HashSet::new()),
            }),
        })
    }
}

impl NatsBus {
    /// Settings for a bus on the server(s) at `url` (`nats://host:4222`, with
    /// credentials `nats://user:password@host:4222`, several separated by commas).
    pub fn builder(url: impl Into<String>) -> NatsBuilder {
        NatsBuilder {
            url: url.into(),
            stream_prefix: "TESSERA".to_owned(),
            subject_prefix: String::new(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(5),
            max_pending_publishes: 256,
            ack_wait: Duration::from_secs(30),
            duplicate_window: Duration::from_secs(120),
            replicas: 1,
        }
    }

    /// A bus on `url` with the default settings (see [`NatsBus::builder`]).
    pub async fn connect(url: impl Into<String>) -> Result<Self, BusError> {
        Self::builder(url).connect().await
    }

    /// The NATS client (to publish messages Tessera did not make, or to inspect the
    /// server).
    pub fn client(&self) -> &async_nats::Client {
        &self.inner.client
    }

    /// The JetStream context (to inspect or remove streams).
    pub fn jetstream(&self) -> &jetstream::Context {
        &self.inner.js
    }

    /// The name of the stream holding `context`'s messages.
    pub fn stream_name(&self, context: &str) -> String {
        self.inner.names.stream(context)
    }

    /// The name of the stream holding dead letters.
    pub fn dead_letter_stream_name(&self) -> String {
        self.inner.names.dead_stream()
    }

    /// `subject` as it is published on the server (with the subject prefix).
    pub fn server_subject(&self, subject: &str) -> String {
        self.inner.names.subject(subject)
    }

    /// Creates `context`'s stream unless it exists, and returns its name.
    pub async fn ensure_context(&self, context: &str) -> Result<String, BusError> {
        names::check_context(context)?;
        let name = self.inner.names.stream(context);
        let subjects = self.inner.names.subject(&format!("{context}.>"));
        self.ensure_stream(&name, &subjects).await?;
        Ok(name)
    }

    /// Creates the dead-letter stream unless it exists, and returns its name.
    pub(crate) async fn ensure_dead_stream(&self) -> Result<String, BusError> {
        let name = self.inner.names.dead_stream();
        let subjects = self.inner.names.subject(&format!("{DEAD_TOKEN}.>"));
        self.ensure_stream(&name, &subjects).await?;
        Ok(name)
    }

    /// Gets or creates stream `name` with `subjects`; refuses one of that name holding
    /// other subjects.
    async fn ensure_stream(&self, name: &str, subjects: &str) -> Result<(), BusError> {
        if self.known().contains(name) {
            return Ok(());
        }
        let settings = &self.inner.settings;
        let config = stream::Config {
            name: name.to_owned(),
            subjects: vec![subjects.to_owned()],
            storage: stream::StorageType::File,
            retention: stream::RetentionPolicy::Limits,
            duplicate_window: settings.duplicate_window,
            num_replicas: settings.replicas,
            ..Default::default()
        };
        let stream = self
            .inner
            .js
            .get_or_create_stream(config)
            .await
            .map_err(|e| match e.kind() {
                CreateStreamErrorKind::JetStream(api) => BusError::Refused(format!(
                    "NATS at {} refused stream {name} ({subjects}): {api}",
                    self.inner.url
                )),
                _ => {
                    BusError::Unavailable(format!("NATS at {}: stream {name}: {e}", self.inner.url))
                }
            })?;
        let held = &stream.cached_info().config.subjects;
        if !held.iter().any(|s| s == subjects) {
            return Err(BusError::Refused(format!(
                "stream {name} on NATS at {} holds subjects {held:?}, not {subjects} \
                 (two contexts whose names differ only in case?)",
                self.inner.url
            )));
        }
        self.known().insert(name.to_owned());
        Ok(())
    }

    /// Forgets that stream `name` exists (after a publish found no stream).
    fn forget(&self, name: &str) {
        self.known().remove(name);
    }

    fn known(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.inner
            .streams
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn not_confirmed(&self, m: &Message, stream: &str, why: impl std::fmt::Display) -> BusError {
        BusError::NotConfirmed(format!(
            "NATS at {}: message {} to {} (stream {stream}): {why}",
            self.inner.url, m.id, m.subject
        ))
    }
}

/// `m`'s headers as [`NatsBus`] sends them; refuses a name NATS cannot carry.
/// Tessera's own header names are taken as they are (static, no copy); a free-form
/// header's name is checked. Values are printable ASCII once encoded
/// ([`wire::each_header`]), which NATS carries. Public for clients that publish
/// integration messages themselves (the benchmark's raw-client baseline does).
///
/// ```
/// let m = tessera_projections::integration::command_message("a", "b", "Do", "k1", &1, None).unwrap();
/// let headers = tessera_nats::headers(&m).unwrap();
/// assert!(headers.get("Nats-Msg-Id").is_none()); // set per publish, not here
/// assert!(headers.iter().count() > 5);
/// ```
pub fn headers(m: &Message) -> Result<HeaderMap, BusError> {
    let mut map = HeaderMap::new();
    let mut refused = None;
    wire::each_header(m, |name, value| {
        let header = match name {
            Cow::Borrowed(name) => HeaderName::from_static(name),
            Cow::Owned(name) => match name.parse::<HeaderName>() {
                Ok(header) => header,
                Err(_) => {
                    refused.get_or_insert(name);
                    return;
                }
            },
        };
        map.insert(header, HeaderValue::from(value));
    });
    match refused {
        None => Ok(map),
        Some(name) => Err(BusError::Refused(format!(
            "message {}: header {name:?} cannot be carried by NATS (no ':', spaces or line breaks)",
            m.id
        ))),
    }
}

#[async_trait]
impl Bus for NatsBus {
    async fn publish(&self, messages: &[Message]) -> Result<(), BusError> {
        self.send(messages).await?.await
    }

    async fn send(&self, messages: &[Message]) -> Result<Confirmation, BusError> {
        let window = &self.inner.window;
        let batch = window.batch();
        let sending = window.sending();
        // The stream of the context of the messages before (they share one, as a rule).
        let mut last: Option<(&str, Arc<str>)> = None;
        for m in messages {
            let context = names::context_of(m)?;
            let stream = match &last {
                Some((c, stream)) if *c == context => Arc::clone(stream),
                _ => {
                    let stream: Arc<str> = self.ensure_context(context).await?.into();
                    last = Some((context, Arc::clone(&stream)));
                    stream
                }
            };
            let publish = PublishMessage::build()
                .payload(m.payload.clone())
                .headers(headers(m)?)
                .message_id(m.id.to_string())
                .expected_stream(&stream);
            // While the window is full, awaits the oldest acknowledgements (of these
            // messages or of earlier sends').
            window.reserve(self).await;
            let ack = self
                .inner
                .js
                .send_publish(self.inner.names.subject(&m.subject), publish)
                .await
                .map_err(|e| self.not_confirmed(m, &stream, e))?;
            window.push(InFlight {
                ack,
                batch: Arc::clone(&batch),
                id: m.id.as_u128(),
                stream,
            });
        }
        batch.seal();
        drop(sending);
        let bus = self.clone();
        Ok(Confirmation::pending(async move {
            bus.inner.window.confirm(&bus, &batch).await
        }))
    }

    async fn consume(&self, spec: &ConsumerSpec) -> Result<Box<dyn Consumer>, BusError> {
        Ok(Box::new(crate::consumer::open(self, spec).await?))
    }

    fn describe(&self) -> String {
        self.inner.url.clone()
    }
}

impl NatsBus {
    /// Waits for `ack`, JetStream's acknowledgement of message `id` (its 128 bits) in
    /// `stream` (stored, or a repeat it dropped).
    pub(crate) async fn confirmed(
        &self,
        id: u128,
        stream: &str,
        ack: PublishAckFuture,
    ) -> Result<(), BusError> {
        match ack.await {
            Ok(_) => Ok(()),
            Err(e) => {
                if e.kind() == PublishErrorKind::StreamNotFound {
                    self.forget(stream);
                }
                let id = format!("{id:032x}");
                let id = format!(
                    "{}-{}-{}-{}-{}",
                    &id[..8],
                    &id[8..12],
                    &id[12..16],
                    &id[16..20],
                    &id[20..]
                );
                Err(BusError::NotConfirmed(format!(
                    "NATS at {}: message {id} (stream {stream}): {e}",
                    self.inner.url
                )))
            }
        }
    }
}
