//! Which events of a context are public, and what each becomes on the wire.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tessera_core::{BoxError, EventFilter, RecordedEvent};

use super::{Message, MessageKind, JSON};

type Convert = Arc<dyn Fn(&RecordedEvent) -> Result<serde_json::Value, BoxError> + Send + Sync>;

#[derive(Clone)]
struct Mapping {
    name: String,
    schema_version: u32,
    convert: Convert,
}

/// The public events of one context: for each `(category, event type)` declared, its
/// stable integration name, schema version and payload. Anything not declared is
/// private and never published.
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use tessera_projections::integration::PublicEvents;
///
/// #[derive(Deserialize)]
/// struct Placed { order_id: String, total_cents: i64, internal_note: String }
/// #[derive(Serialize)]
/// struct OrderPlacedV1 { order_id: String, total_cents: i64 }
///
/// let public = PublicEvents::new("ordering").map_json(
///     "order", "OrderPlaced", "OrderPlaced", 1,
///     |p: Placed| OrderPlacedV1 { order_id: p.order_id, total_cents: p.total_cents },
/// );
/// assert!(public.is_public("order", "OrderPlaced"));
/// assert!(!public.is_public("order", "NoteAdded"));
/// ```
#[derive(Clone)]
pub struct PublicEvents {
    context: String,
    maps: HashMap<(String, String), Mapping>,
}

impl PublicEvents {
    /// No public events yet, for `context` (the first token of every subject).
    pub fn new(context: impl Into<String>) -> Self {
        Self {
            context: context.into(),
            maps: HashMap::new(),
        }
    }

    /// The context.
    pub fn context(&self) -> &str {
        &self.context
    }

    /// Declares `event_type` of streams in `category` public as integration event
    /// `name` of `schema_version`, its payload made by `convert`.
    #[must_use]
    pub fn map(
        mut self,
        category: &str,
        event_type: &str,
        name: &str,
        schema_version: u32,
        convert: impl Fn(&RecordedEvent) -> Result<serde_json::Value, BoxError> + Send + Sync + 'static,
    ) -> Self {
        let mapping = Mapping {
            name: name.to_owned(),
            schema_version,
            convert: Arc::new(convert),
        };
        self.maps
            .insert((category.to_owned(), event_type.to_owned()), mapping);
        self
    }

    /// The same, decoding the event's data as `T` and publishing `convert`'s result.
    #[must_use]
    pub fn map_json<T: DeserializeOwned, P: Serialize>(
        self,
        category: &str,
        event_type: &str,
        name: &str,
        schema_version: u32,
        convert: impl Fn(T) -> P + Send + Sync + 'static,
    ) -> Self {
        self.map(category, event_type, name, schema_version, move |e| {
            let data: T = serde_json::from_slice(e.data.bytes())?;
            Ok(serde_json::to_value(convert(data))?)
        })
    }

    /// Whether `event_type` of `category` is public.
    pub fn is_public(&self, category: &str, event_type: &str) -> bool {
        self.maps
            .contains_key(&(category.to_owned(), event_type.to_owned()))
    }

    /// Whether `event` is public.
    pub fn publishes(&self, event: &RecordedEvent) -> bool {
        self.is_public(event.stream_id.category(), &event.event_type)
    }

    /// The log filter that reads every public event (and perhaps a few private ones of
    /// the same types in other categories, which [`Self::message`] leaves out).
    pub fn filter(&self) -> EventFilter {
        let mut categories: Vec<&str> = self.maps.keys().map(|(c, _)| c.as_str()).collect();
        let mut types: Vec<&str> = self.maps.keys().map(|(_, t)| t.as_str()).collect();
        categories.sort_unstable();
        categories.dedup();
        types.sort_unstable();
        types.dedup();
        EventFilter::categories(categories).with_types(types)
    }

    /// The message `event` becomes (`None` if it is private), `previous` being the
    /// version of the stream's last public event before it.
    pub fn message(
        &self,
        event: &RecordedEvent,
        previous: Option<u64>,
    ) -> Result<Option<Message>, BoxError> {
        let category = event.stream_id.category();
        let Some(m) = self
            .maps
            .get(&(category.to_owned(), event.event_type.clone()))
        else {
            return Ok(None);
        };
        let payload = serde_json::to_vec(&(m.convert)(event)?)?;
        let headers: BTreeMap<String, String> = event
            .metadata
            .headers
            .iter()
            .filter(|(k, _)| matches!(k.as_str(), "traceparent" | "tracestate"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(Some(Message {
            id: event.id.0,
            kind: MessageKind::Event,
            name: m.name.clone(),
            schema_version: m.schema_version,
            source: self.context.clone(),
            subject: format!("{}.{category}.{}", self.context, m.name),
            stream: event.stream_id.as_str().to_owned(),
            version: event.version.0,
            previous,
            position: event.position,
            correlation_id: event.metadata.correlation_id,
            causation_id: event.metadata.causation_id,
            idempotency_key: None,
            headers,
            content_type: JSON.to_owned(),
            payload: payload.into(),
        }))
    }
}
