//! Extractors whose rejections are problems: JSON bodies, queries, path parameters,
//! correlation ids.

use std::time::Duration;

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;
use tessera_core::Position;
use uuid::Uuid;

use super::{Problem, CORRELATION};

/// Most bytes a request body may have.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// A JSON body; malformed JSON or a wrong type is a 400 problem naming the field.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Body(value)),
            Err(rejection) => Err(json_problem(&rejection)),
        }
    }
}

fn json_problem(rejection: &JsonRejection) -> Problem {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => {
            Problem::media_type("send the body as JSON with `Content-Type: application/json`")
        }
        JsonRejection::JsonDataError(e) => Problem::malformed(e.body_text()),
        JsonRejection::JsonSyntaxError(e) => Problem::malformed(e.body_text()),
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            Problem::too_large(format!("request bodies are limited to {BODY_LIMIT} bytes"))
        }
        other => Problem::malformed(other.body_text()),
    }
}

/// Query parameters; a wrong one is a 400 problem.
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(Params(value)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => {
                Err(Problem::malformed(e.body_text()))
            }
            Err(e) => Err(Problem::malformed(e.body_text())),
        }
    }
}

/// Path parameters; one that cannot be read (percent-decoded, it is not UTF-8) is a 400
/// problem naming it.
pub struct PathParam<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for PathParam<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(PathParam(value)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => {
                Err(Problem::malformed(e.body_text()))
            }
            Err(e) => Err(Problem::internal(e.body_text())),
        }
    }
}

/// The request's `Idempotency-Key`, if it has one: sent once, 1 to 200 visible ASCII
/// characters (spaces allowed).
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, Problem> {
    let mut all = headers.get_all("idempotency-key").iter();
    let Some(raw) = all.next() else {
        return Ok(None);
    };
    if all.next().is_some() {
        return Err(Problem::malformed("Idempotency-Key: give it once"));
    }
    // Printable ASCII and spaces: `to_str` would also let a tab through.
    let key = raw
        .to_str()
        .ok()
        .filter(|k| k.bytes().all(|b| (b' '..=b'~').contains(&b)))
        .ok_or_else(|| Problem::malformed("Idempotency-Key: must be visible ASCII"))?;
    if key.is_empty() || key.len() > 200 {
        return Err(Problem::malformed(
            "Idempotency-Key: must have 1 to 200 characters",
        ));
    }
    Ok(Some(key.to_owned()))
}

/// The correlation id of a request (`X-Correlation-Id`, or a new one).
#[derive(Debug, Clone, Copy)]
pub struct Correlation(pub Uuid);

impl Correlation {
    /// The id a request with `headers` carries: its `X-Correlation-Id` when that is a
    /// UUID, else a new (v4) one.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let given = headers
            .get(&CORRELATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| Uuid::parse_str(v).ok());
        Self(given.unwrap_or_else(Uuid::new_v4))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Correlation {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        Ok(parts
            .extensions
            .get::<Correlation>()
            .copied()
            .unwrap_or(Correlation(Uuid::new_v4())))
    }
}

/// Parses a `min_position` or cursor: `"<commit>.<prepare>"`.
pub fn position(field: &str, value: Option<&str>) -> Result<Option<Position>, Problem> {
    value
        .map(|v| {
            v.parse::<Position>()
                .map_err(|e| Problem::malformed(format!("{field}: {e}")))
        })
        .transpose()
}

/// Parses a list cursor: a position whose parts fit the read models' signed 64-bit
/// columns (the API never hands out another).
pub fn cursor(field: &str, value: Option<&str>) -> Result<Option<Position>, Problem> {
    let after = position(field, value)?;
    let fits = |n: u64| i64::try_from(n).is_ok();
    match after {
        Some(p) if !fits(p.commit) || !fits(p.prepare) => Err(Problem::malformed(format!(
            "{field}: not a cursor of this API (each part at most {})",
            i64::MAX
        ))),
        _ => Ok(after),
    }
}

/// Waits for runner `name` to reach `min`, or answers 503 with `Retry-After`.
pub async fn wait_for<S>(
    app: &crate::app::App<S>,
    name: &str,
    min: Option<Position>,
    timeout: Duration,
) -> Result<(), Problem>
where
    S: tessera_core::EventStore + tessera_core::SnapshotStore,
{
    let Some(min) = min else { return Ok(()) };
    app.wait_for(name, min, timeout)
        .await
        .map_err(Problem::not_ready)
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue};
    use uuid::Uuid;

    use super::{Correlation, CORRELATION};

    #[test]
    fn a_correlation_id_is_the_one_sent_or_a_new_one() {
        let sent = Uuid::new_v4();
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(CORRELATION, HeaderValue::from_str(value).expect("value"));
            headers
        };
        assert_eq!(Correlation::from_headers(&with(&sent.to_string())).0, sent);
        let simple = sent.as_simple().to_string();
        assert_eq!(
            Correlation::from_headers(&with(&simple)).0,
            sent,
            "any UUID form"
        );
        for headers in [HeaderMap::new(), with("not-a-uuid"), with("")] {
            let new = Correlation::from_headers(&headers).0;
            assert_eq!(new.get_version_num(), 4, "{headers:?}");
            assert_ne!(new, sent);
        }
    }
}
