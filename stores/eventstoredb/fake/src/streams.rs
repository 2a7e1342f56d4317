//! `event_store.client.streams.Streams`: `Append` (client streaming) and `Read` (server
//! streaming: stream and `$all` reads, and catch-up subscriptions).

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;
use tonic::codegen::tokio_stream::wrappers::ReceiverStream;
use tonic::codegen::BoxFuture;
use tonic::{Request, Response, Status, Streaming};

use super::log::{Decision, Expected, Proposed, Stored};
use super::messages as pb;
use super::State;

/// `Streams/Append`.
pub struct AppendSvc(pub Arc<State>);

impl tonic::server::ClientStreamingService<pb::AppendReq> for AppendSvc {
    type Response = pb::AppendResp;
    type Future = BoxFuture<Response<pb::AppendResp>, Status>;

    fn call(&mut self, request: Request<Streaming<pb::AppendReq>>) -> Self::Future {
        let state = self.0.clone();
        Box::pin(async move {
            state.refuse_if_asked()?;
            append(&state, request.into_inner())
                .await
                .map(Response::new)
        })
    }
}

async fn append(
    state: &State,
    mut requests: Streaming<pb::AppendReq>,
) -> Result<pb::AppendResp, Status> {
    let Some(pb::AppendReq {
        content: Some(pb::AppendContent::Options(options)),
    }) = requests.message().await?
    else {
        return Err(Status::invalid_argument(
            "the first message must be the options",
        ));
    };
    let stream = stream_name(options.stream_identifier)?;
    let expected = match options.expected_stream_revision {
        Some(pb::ExpectedRevision::Revision(r)) => Expected::Exact(r),
        Some(pb::ExpectedRevision::NoStream(_)) => Expected::NoStream,
        Some(pb::ExpectedRevision::Any(_)) => Expected::Any,
        Some(pb::ExpectedRevision::StreamExists(_)) => Expected::StreamExists,
        None => return Err(Status::invalid_argument("no expected revision")),
    };
    let mut events = Vec::new();
    while let Some(message) = requests.message().await? {
        let Some(pb::AppendContent::ProposedMessage(m)) = message.content else {
            return Err(Status::invalid_argument("expected a proposed message"));
        };
        let required = |key: &str| {
            m.metadata.get(key).cloned().ok_or_else(|| {
                Status::invalid_argument(format!("required metadata property {key} is missing"))
            })
        };
        events.push(Proposed {
            id: uuid_from(m.id.as_ref())?,
            event_type: required("type")?,
            content_type: required("content-type")?,
            data: m.data,
            custom_metadata: m.custom_metadata,
        });
    }
    if events.is_empty() {
        return Err(Status::invalid_argument(
            "the fake does not model empty appends",
        ));
    }
    let decision = state.append(&stream, expected, events);
    let result = match decision {
        Decision::Written { last, position } | Decision::Idempotent { last, position } => {
            pb::AppendResult::Success(pb::AppendSuccess {
                current_revision_option: Some(pb::CurrentRevision::CurrentRevision(last)),
                position_option: Some(pb::AppendPosition::Position(position)),
            })
        }
        Decision::WrongExpectedVersion { current } => {
            pb::AppendResult::WrongExpectedVersion(wrong_expected_version(expected, current))
        }
    };
    Ok(pb::AppendResp {
        result: Some(result),
    })
}

fn wrong_expected_version(expected: Expected, current: Option<u64>) -> pb::WrongExpectedVersion {
    let empty = pb::Empty::default;
    pb::WrongExpectedVersion {
        current_revision_option_20_6_0: Some(match current {
            Some(c) => pb::CurrentRevision::CurrentRevision(c),
            None => pb::CurrentRevision::NoStream(empty()),
        }),
        expected_revision_option_20_6_0: match expected {
            Expected::Exact(r) => Some(pb::OldExpected::Revision(r)),
            Expected::Any => Some(pb::OldExpected::Any(empty())),
            Expected::StreamExists => Some(pb::OldExpected::StreamExists(empty())),
            Expected::NoStream => None,
        },
        current_revision_option: Some(match current {
            Some(c) => pb::WrongCurrent::CurrentRevision(c),
            None => pb::WrongCurrent::CurrentNoStream(empty()),
        }),
        expected_revision_option: Some(match expected {
            Expected::Exact(r) => pb::WrongExpected::ExpectedRevision(r),
            Expected::Any => pb::WrongExpected::ExpectedAny(empty()),
            Expected::StreamExists => pb::WrongExpected::ExpectedStreamExists(empty()),
            Expected::NoStream => pb::WrongExpected::ExpectedNoStream(empty()),
        }),
    }
}

/// `Streams/Read`.
pub struct ReadSvc(pub Arc<State>);

impl tonic::server::ServerStreamingService<pb::ReadReq> for ReadSvc {
    type Response = pb::ReadResp;
    type ResponseStream = ReceiverStream<Result<pb::ReadResp, Status>>;
    type Future = BoxFuture<Response<Self::ResponseStream>, Status>;

    fn call(&mut self, request: Request<pb::ReadReq>) -> Self::Future {
        let state = self.0.clone();
        Box::pin(async move {
            let options = request
                .into_inner()
                .options
                .ok_or_else(|| Status::invalid_argument("no read options"))?;
            if matches!(options.count_option, Some(pb::CountOption::Count(_))) {
                state.refuse_if_asked()?;
            }
            let filter = Filter::from(options.filter_option.clone())?;
            let string_ids = !matches!(
                options.uuid_option.and_then(|u| u.content),
                Some(pb::UuidContent::Structured(_))
            );
            let forwards = options.read_direction == 0;
            let (tx, rx) = mpsc::channel(64);
            let out = Out { tx, string_ids };
            match (options.stream_option, options.count_option) {
                (Some(pb::StreamOption::Stream(s)), Some(pb::CountOption::Count(n))) => {
                    let name = stream_name(s.stream_identifier)?;
                    let from = match s.revision_option {
                        Some(pb::RevisionOption::Revision(r)) => Some(r),
                        Some(pb::RevisionOption::Start(_)) | None => Some(0),
                        Some(pb::RevisionOption::End(_)) if forwards => Some(u64::MAX),
                        Some(pb::RevisionOption::End(_)) => None,
                    };
                    let read = state.log().read_stream(&name, from, forwards, n);
                    tokio::spawn(async move {
                        match read {
                            Some(events) => {
                                out.events(&events).await;
                            }
                            None => out.not_found(name).await,
                        }
                    });
                }
                (Some(pb::StreamOption::All(a)), Some(pb::CountOption::Count(n))) => {
                    let from = match a.all_option {
                        Some(pb::AllOption::Position(p)) => Some(p),
                        _ => None,
                    };
                    let events = state.log().read_all(from, forwards, n);
                    tokio::spawn(async move {
                        let events: Vec<_> =
                            events.into_iter().filter(|e| filter.matches(e)).collect();
                        out.events(&events).await;
                    });
                }
                (Some(stream), Some(pb::CountOption::Subscription(_))) => {
                    tokio::spawn(super::subscription::run(state, stream, filter, out));
                }
                _ => return Err(Status::invalid_argument("unsupported read options")),
            }
            Ok(Response::new(ReceiverStream::new(rx)))
        })
    }
}

/// The sending half of a read's response stream.
pub struct Out {
    pub tx: mpsc::Sender<Result<pb::ReadResp, Status>>,
    pub string_ids: bool,
}

impl Out {
    /// Sends one message; `false` once the client has gone.
    pub async fn send(&self, content: pb::ReadContent) -> bool {
        let resp = pb::ReadResp {
            content: Some(content),
        };
        self.tx.send(Ok(resp)).await.is_ok()
    }

    /// Sends events; `false` once the client has gone.
    pub async fn events(&self, events: &[Stored]) -> bool {
        for e in events {
            if !self.send(pb::ReadContent::Event(self.read_event(e))).await {
                return false;
            }
        }
        true
    }

    async fn not_found(&self, name: Bytes) {
        let stream_identifier = Some(pb::StreamIdentifier { stream_name: name });
        self.send(pb::ReadContent::StreamNotFound(pb::StreamNotFound {
            stream_identifier,
        }))
        .await;
    }

    fn read_event(&self, e: &Stored) -> pb::ReadEvent {
        let id = if self.string_ids {
            pb::UuidValue::String(e.id.to_string())
        } else {
            let (msb, lsb) = e.id.as_u64_pair();
            pb::UuidValue::Structured(pb::StructuredUuid {
                most_significant_bits: i64::from_be_bytes(msb.to_be_bytes()),
                least_significant_bits: i64::from_be_bytes(lsb.to_be_bytes()),
            })
        };
        let metadata = [
            ("type", e.event_type.clone()),
            ("content-type", e.content_type.clone()),
            ("created", e.created_ticks.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        pb::ReadEvent {
            event: Some(pb::RecordedEvent {
                id: Some(pb::Uuid { value: Some(id) }),
                stream_identifier: Some(pb::StreamIdentifier {
                    stream_name: e.stream.clone(),
                }),
                stream_revision: e.revision,
                prepare_position: e.position.prepare_position,
                commit_position: e.position.commit_position,
                metadata,
                custom_metadata: e.custom_metadata.clone(),
                data: e.data.clone(),
            }),
            position: Some(pb::ReadEventPosition::CommitPosition(
                e.position.commit_position,
            )),
        }
    }
}

/// A server-side `$all` filter: prefixes, or the one regular expression the client
/// builds (`exclude_system_events`); any other expression is refused.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    on_stream: bool,
    prefixes: Vec<String>,
    exclude_system: bool,
}

/// `SubscriptionFilter::exclude_system_events()`'s expression.
const NOT_SYSTEM: &str = "^[^\\$].*";

impl Filter {
    fn from(option: Option<pb::FilterOption>) -> Result<Self, Status> {
        let Some(pb::FilterOption::Filter(f)) = option else {
            return Ok(Self::default());
        };
        let (on_stream, expr) = match f.filter {
            Some(pb::FilterOn::StreamIdentifier(e)) => (true, e),
            Some(pb::FilterOn::EventType(e)) => (false, e),
            None => return Err(Status::invalid_argument("empty filter")),
        };
        let exclude_system = match expr.regex.as_str() {
            "" => false,
            NOT_SYSTEM => true,
            other => {
                return Err(Status::unimplemented(format!(
                "the fake server supports no filter expression but {NOT_SYSTEM:?}, got {other:?}"
            )))
            }
        };
        Ok(Self {
            on_stream,
            prefixes: expr.prefix,
            exclude_system,
        })
    }

    /// Whether `e` passes.
    pub fn matches(&self, e: &Stored) -> bool {
        let subject = if self.on_stream {
            String::from_utf8_lossy(&e.stream).into_owned()
        } else {
            e.event_type.clone()
        };
        (self.prefixes.is_empty()
            || self
                .prefixes
                .iter()
                .any(|p| subject.starts_with(p.as_str())))
            && !(self.exclude_system && subject.starts_with('$'))
    }

    /// Whether any filter is set (filtered subscriptions also get checkpoints).
    pub fn is_set(&self) -> bool {
        self.exclude_system || !self.prefixes.is_empty()
    }
}

fn stream_name(id: Option<pb::StreamIdentifier>) -> Result<Bytes, Status> {
    match id {
        Some(id) if !id.stream_name.is_empty() => Ok(id.stream_name),
        _ => Err(Status::invalid_argument("no stream name")),
    }
}

fn uuid_from(id: Option<&pb::Uuid>) -> Result<uuid::Uuid, Status> {
    match id.and_then(|u| u.value.as_ref()) {
        Some(pb::UuidValue::Structured(s)) => Ok(uuid::Uuid::from_u64_pair(
            u64::from_be_bytes(s.most_significant_bits.to_be_bytes()),
            u64::from_be_bytes(s.least_significant_bits.to_be_bytes()),
        )),
        Some(pb::UuidValue::String(s)) => s
            .parse()
            .map_err(|e| Status::invalid_argument(format!("bad event id: {e}"))),
        None => Err(Status::invalid_argument("an event has no id")),
    }
}
