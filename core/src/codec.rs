//! Typed domain events and their JSON codec.
//!
//! A domain event type is a serde enum in serde's default (externally tagged) form. Each
//! variant's serde name is its stable event-type name, and the variant's content alone is
//! the stored JSON data. Pin names with `#[serde(rename = "...")]` so a Rust rename never
//! changes what is stored.
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use tessera_core::DomainEvent;
//!
//! #[derive(Debug, PartialEq, Serialize, Deserialize)]
//! enum OrderEvent {
//!     #[serde(rename = "OrderPlaced")]
//!     Placed { total_cents: u64 },
//!     #[serde(rename = "OrderCancelled")]
//!     Cancelled,
//! }
//! impl DomainEvent for OrderEvent {}
//!
//! let (ty, data) = OrderEvent::Placed { total_cents: 5 }.encode().unwrap();
//! assert_eq!(ty, "OrderPlaced");
//! assert_eq!(data.as_bytes(), br#"{"total_cents":5}"#);
//! assert_eq!(OrderEvent::decode("OrderPlaced", data.as_bytes()).unwrap(), OrderEvent::Placed { total_cents: 5 });
//! ```

use std::cell::Cell;

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, Visitor};
use serde::Serialize;

use crate::EventData;

mod split;

/// Why an event could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The Rust type is not an externally tagged enum, or its data failed to serialize.
    #[error("event could not be encoded: {0}")]
    Encode(#[source] serde_json::Error),
    /// No variant has this event-type name.
    #[error("unknown event type {event_type:?}")]
    UnknownEventType {
        /// The stored type name.
        event_type: String,
    },
    /// The data does not fit the variant.
    #[error("event {event_type:?} (schema version {schema_version}) failed to decode: {source}")]
    Decode {
        /// The stored type name.
        event_type: String,
        /// The stored schema version.
        schema_version: u32,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// The stored schema version is newer than the code knows.
    #[error("event {event_type:?} has schema version {stored}, newer than the current {current}")]
    FutureSchema {
        /// The stored type name.
        event_type: String,
        /// Stored version.
        stored: u32,
        /// Version the code knows.
        current: u32,
    },
    /// An older schema version with no upcaster to the current one.
    #[error("event {event_type:?} schema version {from}: {reason}")]
    Upcast {
        /// The type name being upcast.
        event_type: String,
        /// The version being upcast from.
        from: u32,
        /// What failed.
        reason: String,
    },
}

/// A typed domain event: a serde enum whose variant names are stable event-type names.
pub trait DomainEvent: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The current schema version of `event_type`'s data. Bump it when the shape
    /// changes, and register an upcaster from the old version.
    fn schema_version(event_type: &str) -> u32 {
        let _ = event_type;
        1
    }

    /// The stable event-type name of this value (its serde variant name).
    fn event_type(&self) -> &'static str {
        // The name-only pass serializes nothing but the variant tag.
        self.serialize(split::Split::<Vec<u8>>::name_only())
            .unwrap_or("<not an externally tagged enum>")
    }

    /// Encodes to (event type, JSON data).
    fn encode(&self) -> Result<(&'static str, EventData), CodecError> {
        let mut out = Vec::with_capacity(128);
        let mut json = serde_json::Serializer::new(&mut out);
        let name = self
            .serialize(split::Split::writing(&mut json))
            .map_err(CodecError::Encode)?;
        Ok((name, EventData::from_trusted_json(out)))
    }

    /// Decodes data stored under `event_type` (already at the current schema version).
    fn decode(event_type: &str, data: &[u8]) -> Result<Self, CodecError> {
        let unknown = Cell::new(false);
        let joined = Join {
            variant: event_type,
            data,
            unknown: &unknown,
        };
        Self::deserialize(joined).map_err(|source| {
            if unknown.get() {
                CodecError::UnknownEventType {
                    event_type: event_type.to_owned(),
                }
            } else {
                CodecError::Decode {
                    event_type: event_type.to_owned(),
                    schema_version: Self::schema_version(event_type),
                    source,
                }
            }
        })
    }
}

/// Presents (event type, data) to serde as one externally tagged enum value.
struct Join<'de, 'c> {
    variant: &'de str,
    data: &'de [u8],
    unknown: &'c Cell<bool>,
}

impl<'de> de::Deserializer<'de> for Join<'de, '_> {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom(
            "a DomainEvent must be an externally tagged serde enum",
        ))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        if !variants.contains(&self.variant) {
            self.unknown.set(true);
            return Err(de::Error::unknown_variant(self.variant, variants));
        }
        visitor.visit_enum(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct identifier ignored_any
    }
}

impl<'de> de::EnumAccess<'de> for Join<'de, '_> {
    type Error = serde_json::Error;
    type Variant = Content<'de>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self::Variant), Self::Error> {
        let name: de::value::StrDeserializer<'_, serde_json::Error> =
            self.variant.into_deserializer();
        Ok((seed.deserialize(name)?, Content { data: self.data }))
    }
}

/// The variant's content: the stored JSON data.
struct Content<'de> {
    data: &'de [u8],
}

impl<'de> Content<'de> {
    fn with<T>(
        self,
        f: impl FnOnce(
            &mut serde_json::Deserializer<serde_json::de::SliceRead<'de>>,
        ) -> Result<T, serde_json::Error>,
    ) -> Result<T, serde_json::Error> {
        let mut de = serde_json::Deserializer::from_slice(self.data);
        let value = f(&mut de)?;
        de.end()?;
        Ok(value)
    }
}

impl<'de> de::VariantAccess<'de> for Content<'de> {
    type Error = serde_json::Error;

    fn unit_variant(self) -> Result<(), Self::Error> {
        // Unit variants store `null`; anything else is ignored rather than rejected so
        // that adding fields later is backwards compatible.
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, Self::Error> {
        self.with(|de| seed.deserialize(de))
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.with(|de| de::Deserializer::deserialize_tuple(de, len, visitor))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.with(|de| de::Deserializer::deserialize_struct(de, "", fields, visitor))
    }
}

/// Makes the serializer-side error for non-enum values.
fn not_an_enum<E: serde::ser::Error>() -> E {
    E::custom("a DomainEvent must be an externally tagged serde enum")
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Inner {
        a: String,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Ev {
        #[serde(rename = "unit")]
        Unit,
        #[serde(rename = "newtype")]
        Newtype(Inner),
        #[serde(rename = "tuple")]
        Tuple(u8, String),
        #[serde(rename = "struct")]
        Struct { x: i64, name: String },
    }
    impl DomainEvent for Ev {}

    #[test]
    fn round_trips_every_variant_shape() {
        let cases = [
            (Ev::Unit, "unit", "null"),
            (
                Ev::Newtype(Inner { a: "é".into() }),
                "newtype",
                r#"{"a":"é"}"#,
            ),
            (Ev::Tuple(1, "x".into()), "tuple", r#"[1,"x"]"#),
            (
                Ev::Struct {
                    x: -3,
                    name: "n".into(),
                },
                "struct",
                r#"{"x":-3,"name":"n"}"#,
            ),
        ];
        for (ev, ty, json) in cases {
            assert_eq!(ev.event_type(), ty);
            let (t, data) = ev.encode().unwrap();
            assert_eq!(t, ty);
            assert_eq!(std::str::from_utf8(data.as_bytes()).unwrap(), json);
            assert_eq!(Ev::decode(ty, data.as_bytes()).unwrap(), ev);
        }
    }

    #[test]
    fn unknown_types_and_bad_data_are_typed_errors() {
        assert!(matches!(
            Ev::decode("nope", b"{}"),
            Err(CodecError::UnknownEventType { event_type }) if event_type == "nope"
        ));
        assert!(matches!(
            Ev::decode("struct", br#"{"x":"not a number","name":"n"}"#),
            Err(CodecError::Decode { event_type, .. }) if event_type == "struct"
        ));
        assert!(matches!(
            Ev::decode("struct", br#"{"x":1,"name":"n"} trailing"#),
            Err(CodecError::Decode { .. })
        ));
    }

    #[test]
    fn non_enums_are_rejected() {
        #[derive(Serialize, Deserialize)]
        struct NotEnum {
            a: u8,
        }
        impl DomainEvent for NotEnum {}
        assert!(matches!(
            NotEnum { a: 1 }.encode(),
            Err(CodecError::Encode(_))
        ));
        assert!(NotEnum::decode("a", b"{}").is_err());
    }
}
