//! Which events of a context are public, and what each becomes on the wire.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tessera_core::{BoxError, EventFilter, RecordedEvent};

use super::{Message, MessageKind, JSON};

/// Makes a public event's payload, serialized.
type Convert = Arc<dyn Fn(&RecordedEvent) -> Result<Vec<u8>, BoxError> + Send + Sync>;

#[derive(Clone)]
struct Mapping {
    name: String,
    schema_version: u32,
    /// `{context}.{topic}.{name}` (the topic is the category unless mapped under
    /// another), made once.
    subject: String,
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
    /// By category, then event type: looked up with the event's own `&str`s, so that
    /// telling and making a message allocates no key.
    maps: HashMap<String, HashMap<String, Mapping>>,
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
        self,
        category: &str,
        event_type: &str,
        name: &str,
        schema_version: u32,
        convert: impl Fn(&RecordedEvent) -> Result<serde_json::Value, BoxError> + Send + Sync + 'static,
    ) -> Self {
        self.map_under(
            category,
            event_type,
            category,
            name,
            schema_version,
            convert,
        )
    }

    /// Declares `event_type` of streams in `category` public as [`map`](Self::map)
    /// does, but under subject `{context}.{topic}.{name}`: for an event that belongs
    /// with another category's, so that their consumers read it with the same filter
    /// (a context's answer that it refused a command about an aggregate, read by those
    /// who read the aggregate's outcomes). The message's stream, version and order are
    /// still those of its own stream.
    ///
    /// ```
    /// use tessera_projections::integration::PublicEvents;
    /// let public = PublicEvents::new("inventory")
    ///     .map("product", "StockReserved", "StockReserved", 1, |e| Ok(e.data.to_value()?))
    ///     .map_under("rejection", "CommandRejected", "product", "CommandRejected", 1, |e| {
    ///         Ok(e.data.to_value()?)
    ///     });
    /// assert!(public.is_public("rejection", "CommandRejected"));
    /// ```
    #[must_use]
    pub fn map_under(
        self,
        category: &str,
        event_type: &str,
        topic: &str,
        name: &str,
        schema_version: u32,
        convert: impl Fn(&RecordedEvent) -> Result<serde_json::Value, BoxError> + Send + Sync + 'static,
    ) -> Self {
        self.insert(
            category,
            event_type,
            topic,
            name,
            schema_version,
            move |e| Ok(serde_json::to_vec(&convert(e)?)?),
        )
    }

    /// The same, decoding the event's data as `T` and publishing `convert`'s result,
    /// serialized straight to JSON (an object's keys in the order `P` serializes them).
    #[must_use]
    pub fn map_json<T: DeserializeOwned, P: Serialize>(
        self,
        category: &str,
        event_type: &str,
        name: &str,
        schema_version: u32,
        convert: impl Fn(T) -> P + Send + Sync + 'static,
    ) -> Self {
        self.insert(
            category,
            event_type,
            category,
            name,
            schema_version,
            move |e| {
                let data: T = serde_json::from_slice(e.data.bytes())?;
                Ok(serde_json::to_vec(&convert(data))?)
            },
        )
    }

    fn insert(
        mut self,
        category: &str,
        event_type: &str,
        topic: &str,
        name: &str,
        schema_version: u32,
        convert: impl Fn(&RecordedEvent) -> Result<Vec<u8>, BoxError> + Send + Sync + 'static,
    ) -> Self {
        let mapping = Mapping {
            name: name.to_owned(),
            schema_version,
            subject: format!("{}.{topic}.{name}", self.context),
            convert: Arc::new(convert),
        };
        self.maps
            .entry(category.to_owned())
            .or_default()
            .insert(event_type.to_owned(), mapping);
        self
    }

    fn mapping(&self, category: &str, event_type: &str) -> Option<&Mapping> {
        self.maps.get(category)?.get(event_type)
    }

    /// Whether `event_type` of `category` is public.
    pub fn is_public(&self, category: &str, event_type: &str) -> bool {
        self.mapping(category, event_type).is_some()
    }

    /// Whether `event` is public.
    pub fn publishes(&self, event: &RecordedEvent) -> bool {
        self.is_public(event.stream_id.category(), &event.event_type)
    }

    /// The public event types of `category`.
    pub(crate) fn types_of(&self, category: &str) -> Vec<String> {
        self.maps
            .get(category)
            .map(|types| types.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The log filter that reads every public event (and perhaps a few private ones of
    /// the same types in other categories, which [`Self::message`] leaves out).
    pub fn filter(&self) -> EventFilter {
        let mut categories: Vec<&str> = self.maps.keys().map(String::as_str).collect();
        let mut types: Vec<&str> = self
            .maps
            .values()
            .flat_map(HashMap::keys)
            .map(String::as_str)
            .collect();
        categories.sort_unstable();
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
        let Some(m) = self.mapping(event.stream_id.category(), &event.event_type) else {
            return Ok(None);
        };
        let payload = (m.convert)(event)?;
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
            subject: m.subject.clone(),
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

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};
    use tessera_core::{EventData, EventId, Metadata, Position, StreamId, Version};

    use super::*;

    #[derive(Deserialize)]
    struct Placed {
        order_id: String,
        total_cents: i64,
    }

    #[derive(Serialize)]
    struct PlacedV1 {
        total_cents: i64,
        order_id: String,
    }

    fn event(stream: &str, event_type: &str) -> RecordedEvent {
        RecordedEvent {
            id: EventId::derived(stream.as_bytes()),
            stream_id: StreamId::new(stream).expect("stream id"),
            version: Version(4),
            position: Position::new(9, 9),
            event_type: event_type.to_owned(),
            schema_version: 1,
            data: EventData::to_json(&serde_json::json!({"order_id": "o-1", "total_cents": 250}))
                .expect("json"),
            metadata: Metadata::default(),
            recorded_at: std::time::SystemTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn mappings_are_found_by_category_and_type_and_make_their_message() {
        let public = PublicEvents::new("ordering")
            .map_json("order", "Placed", "OrderPlaced", 1, |p: Placed| PlacedV1 {
                total_cents: p.total_cents,
                order_id: p.order_id,
            })
            .map("order", "Shipped", "OrderShipped", 2, |e| {
                Ok(e.data.to_value()?)
            })
            .map("cart", "Placed", "CartPlaced", 1, |e| {
                Ok(e.data.to_value()?)
            });
        assert!(public.is_public("order", "Placed") && public.is_public("cart", "Placed"));
        assert!(!public.is_public("order", "Cancelled") && !public.is_public("shop", "Placed"));
        let m = public
            .message(&event("order-1", "Placed"), Some(2))
            .expect("converts")
            .expect("public");
        assert_eq!(m.subject, "ordering.order.OrderPlaced");
        assert_eq!((m.name.as_str(), m.schema_version), ("OrderPlaced", 1));
        assert_eq!((m.version, m.previous), (4, Some(2)));
        let payload: serde_json::Value = m.decode().expect("json");
        assert_eq!(
            payload,
            serde_json::json!({"order_id": "o-1", "total_cents": 250})
        );
        let shipped = public
            .message(&event("order-1", "Shipped"), None)
            .expect("converts");
        assert_eq!(
            shipped.expect("public").subject,
            "ordering.order.OrderShipped"
        );
        assert!(public
            .message(&event("shop-1", "Placed"), None)
            .expect("no conversion")
            .is_none());
    }

    #[test]
    fn an_event_mapped_under_another_topic_keeps_its_stream() {
        let public = PublicEvents::new("ordering")
            .map("order", "Placed", "OrderPlaced", 1, |e| {
                Ok(e.data.to_value()?)
            })
            .map_under("note", "Placed", "order", "NotePlaced", 1, |e| {
                Ok(e.data.to_value()?)
            });
        let m = public
            .message(&event("note-1", "Placed"), None)
            .expect("converts")
            .expect("public");
        assert_eq!(m.subject, "ordering.order.NotePlaced");
        assert_eq!(m.stream, "note-1");
        assert!(public.filter().matches_parts("note-1", "Placed"));
    }
}
