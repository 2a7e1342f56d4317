//! The protobuf messages of EventStoreDB's gRPC API that the `eventstore` client sends
//! or expects, written by hand (prost derives) from the field numbers and types of the
//! `.proto` files shipped with the client crate (`shared.proto`, `streams.proto`,
//! `serverfeatures.proto`). Only the fields the client uses are declared: prost skips
//! unknown fields when decoding, as protobuf requires.

use std::collections::HashMap;

use bytes::Bytes;

/// `event_store.client.Empty`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Empty {}

/// `event_store.client.UUID`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Uuid {
    #[prost(oneof = "UuidValue", tags = "1, 2")]
    pub value: Option<UuidValue>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum UuidValue {
    #[prost(message, tag = "1")]
    Structured(StructuredUuid),
    #[prost(string, tag = "2")]
    String(String),
}

/// `UUID.Structured`: the 128 bits as two big-endian halves.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StructuredUuid {
    #[prost(int64, tag = "1")]
    pub most_significant_bits: i64,
    #[prost(int64, tag = "2")]
    pub least_significant_bits: i64,
}

/// `event_store.client.StreamIdentifier` (fields 1 and 2 are reserved).
#[derive(Clone, PartialEq, prost::Message)]
pub struct StreamIdentifier {
    #[prost(bytes = "bytes", tag = "3")]
    pub stream_name: Bytes,
}

/// A `$all` position: `ReadReq.Options.Position`, `ReadResp.Checkpoint`,
/// `AppendResp.Position` and `AllStreamPosition` share this shape.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, prost::Message)]
pub struct Position {
    #[prost(uint64, tag = "1")]
    pub commit_position: u64,
    #[prost(uint64, tag = "2")]
    pub prepare_position: u64,
}

// ---- Streams.Read -------------------------------------------------------------------

/// `streams.ReadReq`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ReadReq {
    #[prost(message, optional, tag = "1")]
    pub options: Option<ReadOptions>,
}

/// `ReadReq.Options` (`resolve_links` and `control_option` are not read).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ReadOptions {
    #[prost(oneof = "StreamOption", tags = "1, 2")]
    pub stream_option: Option<StreamOption>,
    /// 0 forwards, 1 backwards.
    #[prost(int32, tag = "3")]
    pub read_direction: i32,
    #[prost(oneof = "CountOption", tags = "5, 6")]
    pub count_option: Option<CountOption>,
    #[prost(oneof = "FilterOption", tags = "7, 8")]
    pub filter_option: Option<FilterOption>,
    #[prost(message, optional, tag = "9")]
    pub uuid_option: Option<UuidOption>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum StreamOption {
    #[prost(message, tag = "1")]
    Stream(StreamOptions),
    #[prost(message, tag = "2")]
    All(AllOptions),
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StreamOptions {
    #[prost(message, optional, tag = "1")]
    pub stream_identifier: Option<StreamIdentifier>,
    #[prost(oneof = "RevisionOption", tags = "2, 3, 4")]
    pub revision_option: Option<RevisionOption>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum RevisionOption {
    #[prost(uint64, tag = "2")]
    Revision(u64),
    #[prost(message, tag = "3")]
    Start(Empty),
    #[prost(message, tag = "4")]
    End(Empty),
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct AllOptions {
    #[prost(oneof = "AllOption", tags = "1, 2, 3")]
    pub all_option: Option<AllOption>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum AllOption {
    #[prost(message, tag = "1")]
    Position(Position),
    #[prost(message, tag = "2")]
    Start(Empty),
    #[prost(message, tag = "3")]
    End(Empty),
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum CountOption {
    #[prost(uint64, tag = "5")]
    Count(u64),
    #[prost(message, tag = "6")]
    Subscription(Empty),
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum FilterOption {
    #[prost(message, tag = "7")]
    Filter(FilterOptions),
    #[prost(message, tag = "8")]
    NoFilter(Empty),
}

/// `ReadReq.Options.FilterOptions` (the window and checkpoint multiplier are not read).
#[derive(Clone, PartialEq, prost::Message)]
pub struct FilterOptions {
    #[prost(oneof = "FilterOn", tags = "1, 2")]
    pub filter: Option<FilterOn>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum FilterOn {
    #[prost(message, tag = "1")]
    StreamIdentifier(Expression),
    #[prost(message, tag = "2")]
    EventType(Expression),
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Expression {
    #[prost(string, tag = "1")]
    pub regex: String,
    #[prost(string, repeated, tag = "2")]
    pub prefix: Vec<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct UuidOption {
    #[prost(oneof = "UuidContent", tags = "1, 2")]
    pub content: Option<UuidContent>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum UuidContent {
    #[prost(message, tag = "1")]
    Structured(Empty),
    #[prost(message, tag = "2")]
    String(Empty),
}

/// `streams.ReadResp`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ReadResp {
    #[prost(oneof = "ReadContent", tags = "1, 2, 3, 4, 8")]
    pub content: Option<ReadContent>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum ReadContent {
    #[prost(message, tag = "1")]
    Event(ReadEvent),
    #[prost(message, tag = "2")]
    Confirmation(SubscriptionConfirmation),
    #[prost(message, tag = "3")]
    Checkpoint(Position),
    #[prost(message, tag = "4")]
    StreamNotFound(StreamNotFound),
    #[prost(message, tag = "8")]
    CaughtUp(Empty),
}

/// `ReadResp.ReadEvent` (no link: the fake has no link events).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ReadEvent {
    #[prost(message, optional, tag = "1")]
    pub event: Option<RecordedEvent>,
    #[prost(oneof = "ReadEventPosition", tags = "3, 4")]
    pub position: Option<ReadEventPosition>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum ReadEventPosition {
    #[prost(uint64, tag = "3")]
    CommitPosition(u64),
    #[prost(message, tag = "4")]
    NoPosition(Empty),
}

/// `ReadResp.ReadEvent.RecordedEvent`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RecordedEvent {
    #[prost(message, optional, tag = "1")]
    pub id: Option<Uuid>,
    #[prost(message, optional, tag = "2")]
    pub stream_identifier: Option<StreamIdentifier>,
    #[prost(uint64, tag = "3")]
    pub stream_revision: u64,
    #[prost(uint64, tag = "4")]
    pub prepare_position: u64,
    #[prost(uint64, tag = "5")]
    pub commit_position: u64,
    /// `type`, `created` (ticks of 100 ns since the Unix epoch), `content-type`.
    #[prost(map = "string, string", tag = "6")]
    pub metadata: HashMap<String, String>,
    #[prost(bytes = "bytes", tag = "7")]
    pub custom_metadata: Bytes,
    #[prost(bytes = "bytes", tag = "8")]
    pub data: Bytes,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SubscriptionConfirmation {
    #[prost(string, tag = "1")]
    pub subscription_id: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StreamNotFound {
    #[prost(message, optional, tag = "1")]
    pub stream_identifier: Option<StreamIdentifier>,
}

// ---- Streams.Append -----------------------------------------------------------------

/// `streams.AppendReq`: first the options, then one proposed message per event.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AppendReq {
    #[prost(oneof = "AppendContent", tags = "1, 2")]
    pub content: Option<AppendContent>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum AppendContent {
    #[prost(message, tag = "1")]
    Options(AppendOptions),
    #[prost(message, tag = "2")]
    ProposedMessage(ProposedMessage),
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct AppendOptions {
    #[prost(message, optional, tag = "1")]
    pub stream_identifier: Option<StreamIdentifier>,
    #[prost(oneof = "ExpectedRevision", tags = "2, 3, 4, 5")]
    pub expected_stream_revision: Option<ExpectedRevision>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum ExpectedRevision {
    #[prost(uint64, tag = "2")]
    Revision(u64),
    #[prost(message, tag = "3")]
    NoStream(Empty),
    #[prost(message, tag = "4")]
    Any(Empty),
    #[prost(message, tag = "5")]
    StreamExists(Empty),
}

/// `AppendReq.ProposedMessage`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProposedMessage {
    #[prost(message, optional, tag = "1")]
    pub id: Option<Uuid>,
    /// `type` and `content-type`, both required by the server.
    #[prost(map = "string, string", tag = "2")]
    pub metadata: HashMap<String, String>,
    #[prost(bytes = "bytes", tag = "3")]
    pub custom_metadata: Bytes,
    #[prost(bytes = "bytes", tag = "4")]
    pub data: Bytes,
}

/// `streams.AppendResp`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AppendResp {
    #[prost(oneof = "AppendResult", tags = "1, 2")]
    pub result: Option<AppendResult>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum AppendResult {
    #[prost(message, tag = "1")]
    Success(AppendSuccess),
    #[prost(message, tag = "2")]
    WrongExpectedVersion(WrongExpectedVersion),
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct AppendSuccess {
    #[prost(oneof = "CurrentRevision", tags = "1, 2")]
    pub current_revision_option: Option<CurrentRevision>,
    #[prost(oneof = "AppendPosition", tags = "3, 4")]
    pub position_option: Option<AppendPosition>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum CurrentRevision {
    #[prost(uint64, tag = "1")]
    CurrentRevision(u64),
    #[prost(message, tag = "2")]
    NoStream(Empty),
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum AppendPosition {
    #[prost(message, tag = "3")]
    Position(Position),
    #[prost(message, tag = "4")]
    NoPosition(Empty),
}

/// `AppendResp.WrongExpectedVersion`: servers since 20.6 fill fields 6 to 11 (which
/// the client reads); older ones filled 1 to 5, which the fake fills as well.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WrongExpectedVersion {
    #[prost(oneof = "CurrentRevision", tags = "1, 2")]
    pub current_revision_option_20_6_0: Option<CurrentRevision>,
    #[prost(oneof = "OldExpected", tags = "3, 4, 5")]
    pub expected_revision_option_20_6_0: Option<OldExpected>,
    #[prost(oneof = "WrongCurrent", tags = "6, 7")]
    pub current_revision_option: Option<WrongCurrent>,
    #[prost(oneof = "WrongExpected", tags = "8, 9, 10, 11")]
    pub expected_revision_option: Option<WrongExpected>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum OldExpected {
    #[prost(uint64, tag = "3")]
    Revision(u64),
    #[prost(message, tag = "4")]
    Any(Empty),
    #[prost(message, tag = "5")]
    StreamExists(Empty),
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum WrongCurrent {
    #[prost(uint64, tag = "6")]
    CurrentRevision(u64),
    #[prost(message, tag = "7")]
    CurrentNoStream(Empty),
}

#[derive(Clone, PartialEq, prost::Oneof)]
#[allow(clippy::enum_variant_names)] // the proto's field names
pub enum WrongExpected {
    #[prost(uint64, tag = "8")]
    ExpectedRevision(u64),
    #[prost(message, tag = "9")]
    ExpectedAny(Empty),
    #[prost(message, tag = "10")]
    ExpectedStreamExists(Empty),
    #[prost(message, tag = "11")]
    ExpectedNoStream(Empty),
}

// ---- ServerFeatures.GetSupportedMethods ---------------------------------------------

/// `server_features.SupportedMethods`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SupportedMethods {
    #[prost(message, repeated, tag = "1")]
    pub methods: Vec<SupportedMethod>,
    #[prost(string, tag = "2")]
    pub event_store_server_version: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SupportedMethod {
    #[prost(string, tag = "1")]
    pub method_name: String,
    #[prost(string, tag = "2")]
    pub service_name: String,
    #[prost(string, repeated, tag = "3")]
    pub features: Vec<String>,
}
