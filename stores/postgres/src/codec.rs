//! Column codecs: `jsonb` as raw JSON text, `xid8` as `u64`, rows as recorded events.

use std::error::Error;
use std::time::SystemTime;

use bytes::{BufMut, Bytes, BytesMut};
use postgres_types::{accepts, to_sql_checked, FromSql, IsNull, ToSql, Type};
use tessera_core::{
    EventData, EventId, Metadata, Position, RecordedEvent, StoreError, StreamId, Version,
};
use tokio_postgres::Row;
use uuid::Uuid;

type BoxError = Box<dyn Error + Sync + Send>;

/// The `jsonb` binary format's version byte.
const JSONB_VERSION: u8 = 1;

/// JSON text sent to or read from a `jsonb` column without re-parsing it in Rust.
#[derive(Debug, Clone)]
pub(crate) struct Jsonb(pub(crate) Bytes);

impl ToSql for Jsonb {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        if *ty == Type::JSONB {
            out.put_u8(JSONB_VERSION);
        }
        out.put_slice(&self.0);
        Ok(IsNull::No)
    }
    accepts!(JSON, JSONB);
    to_sql_checked!();
}

impl<'a> FromSql<'a> for Jsonb {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        let text = if *ty == Type::JSONB {
            match raw.split_first() {
                Some((&JSONB_VERSION, text)) => text,
                _ => return Err("unsupported jsonb binary format version".into()),
            }
        } else {
            raw
        };
        Ok(Jsonb(Bytes::copy_from_slice(text)))
    }
    accepts!(JSON, JSONB);
}

/// A full (epoch-extended) transaction id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Xid8(pub(crate) u64);

impl ToSql for Xid8 {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        out.put_u64(self.0);
        Ok(IsNull::No)
    }
    accepts!(XID8);
    to_sql_checked!();
}

impl<'a> FromSql<'a> for Xid8 {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        let bytes: [u8; 8] = raw.try_into().map_err(|_| "xid8 is not 8 bytes")?;
        Ok(Xid8(u64::from_be_bytes(bytes)))
    }
    accepts!(XID8);
}

/// A position from its columns.
pub(crate) fn position(tx_id: Xid8, global_position: i64) -> Result<Position, String> {
    let prepare = u64::try_from(global_position)
        .map_err(|_| format!("negative global_position {global_position}"))?;
    Ok(Position::new(tx_id.0, prepare))
}

/// A stored `bigint` that must be a `u64`.
pub(crate) fn unsigned(value: i64, column: &str) -> Result<u64, String> {
    u64::try_from(value).map_err(|_| format!("negative {column} {value}"))
}

/// Decodes a row of `global_position, tx_id, stream_id, version, event_id, event_type,
/// schema_version, data, metadata, recorded_at` (the read statements' column list).
pub(crate) fn recorded_event(row: &Row) -> Result<RecordedEvent, StoreError> {
    decode_event(row).map_err(|reason| StoreError::Corrupt {
        stream: row
            .try_get::<_, String>("stream_id")
            .unwrap_or_else(|_| "<unreadable stream_id>".to_owned()),
        version: row
            .try_get::<_, i64>("version")
            .ok()
            .and_then(|v| u64::try_from(v).ok())
            .unwrap_or(0),
        reason,
    })
}

/// Reads a column, naming it in the error.
pub(crate) fn get<'a, T: FromSql<'a>>(row: &'a Row, name: &str) -> Result<T, String> {
    row.try_get(name).map_err(|e| format!("column {name}: {e}"))
}

fn decode_event(row: &Row) -> Result<RecordedEvent, String> {
    let stream: String = get(row, "stream_id")?;
    let stream_id = StreamId::new(stream).map_err(|e| e.to_string())?;
    let version = Version(unsigned(get(row, "version")?, "version")?);
    let position = position(get(row, "tx_id")?, get(row, "global_position")?)?;
    let schema_version: i64 = get(row, "schema_version")?;
    let schema_version = u32::try_from(schema_version)
        .map_err(|_| format!("schema_version {schema_version} out of range"))?;
    let Jsonb(data) = get(row, "data")?;
    let Jsonb(metadata) = get(row, "metadata")?;
    let metadata: Metadata = serde_json::from_slice(&metadata)
        .map_err(|e| format!("metadata is not valid event metadata: {e}"))?;
    Ok(RecordedEvent {
        id: EventId(get::<Uuid>(row, "event_id")?),
        stream_id,
        version,
        position,
        event_type: get(row, "event_type")?,
        schema_version,
        data: EventData::from_trusted_json(data),
        metadata,
        recorded_at: get::<SystemTime>(row, "recorded_at")?,
    })
}
