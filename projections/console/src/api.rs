//! The JSON API the pages read, under `api/`. Every list is one page with a cursor.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tessera_core::process::{InstanceId, Status};
use tessera_core::{
    EventFilter, ListStreams, Position, ReadAll, ReadStream, StoreError, StreamId, Version,
};

use crate::log::{EventBody, Log};
use crate::operate::{millis, ActionError};
use crate::processes::ms;
use crate::{Denied, Parts, MAX_PAGE};

type Shared = State<Arc<Parts>>;
type Params = Result<Query<BTreeMap<String, String>>, QueryRejection>;
type ApiResult = Result<Json<Value>, Denied>;

pub(crate) fn routes(parts: Arc<Parts>) -> Router {
    let check = parts.authorize.clone();
    Router::new()
        .route("/api/overview", get(overview))
        .route("/api/stores/{store}/categories", get(categories))
        .route("/api/stores/{store}/streams", get(streams))
        .route("/api/stores/{store}/streams/{stream}", get(stream))
        .route("/api/stores/{store}/log", get(log))
        .route("/api/correlated/{id}", get(correlated))
        .route("/api/runners", get(runners))
        .route("/api/runners/{name}/rebuild", post(rebuild))
        .route("/api/runners/{name}/restart", post(restart))
        .route("/api/processes", get(processes))
        .route("/api/processes/{name}/instances", get(instances))
        .route("/api/processes/{name}/instances/{id}", get(instance))
        .route("/api/resilience", get(resilience))
        .fallback(|| async { Denied::not_found("no such console API route") })
        .route_layer(middleware::from_fn(move |req: Request, next: Next| {
            let check = check.clone();
            async move {
                if let Some(check) = &check {
                    if let Err(denied) = check(req.method(), req.headers()) {
                        return denied.into_response();
                    }
                }
                next.run(req).await
            }
        }))
        // Every answer, refusals and unknown routes included: never cached, never sniffed.
        .layer(middleware::map_response(
            |mut res: axum::response::Response| async move {
                let headers = res.headers_mut();
                headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                headers.insert(
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                );
                res
            },
        ))
        .with_state(parts)
}

fn query(params: Params) -> Result<BTreeMap<String, String>, Denied> {
    params
        .map(|Query(q)| q)
        .map_err(|e| Denied::bad_request(format!("bad query string: {e}")))
}

fn path<T>(p: Result<Path<T>, PathRejection>) -> Result<T, Denied> {
    p.map(|Path(t)| t)
        .map_err(|e| Denied::bad_request(format!("bad path: {e}")))
}

fn limit(q: &BTreeMap<String, String>) -> Result<usize, Denied> {
    match q.get("limit") {
        None => Ok(50),
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
            _ => Err(Denied::bad_request(format!(
                "limit must be a whole number from 1 to {MAX_PAGE}, not {:?}",
                truncate(s)
            ))),
        },
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

fn position(q: &BTreeMap<String, String>, key: &str) -> Result<Position, Denied> {
    match q.get(key).filter(|s| !s.is_empty()) {
        None => Ok(Position::START),
        Some(s) => s
            .parse()
            .map_err(|e| Denied::bad_request(format!("{key}: {e}"))),
    }
}

fn nonempty<'a>(q: &'a BTreeMap<String, String>, key: &str) -> Option<&'a str> {
    q.get(key).map(String::as_str).filter(|s| !s.is_empty())
}

fn store_error(e: StoreError) -> Denied {
    match e {
        StoreError::InvalidInput(_) | StoreError::InvalidStreamId(_) => {
            Denied::bad_request(e.to_string())
        }
        // Not an outage: what is stored there cannot be read (a runner stopped on it
        // links here).
        StoreError::Corrupt { .. } => Denied::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        other => Denied::unavailable(format!("the store did not answer: {other}")),
    }
}

fn find_store<'a>(parts: &'a Parts, name: &str) -> Result<&'a Arc<dyn Log>, Denied> {
    parts
        .stores
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, s)| s)
        .ok_or_else(|| Denied::not_found(format!("no store named {:?}", truncate(name))))
}

async fn overview(State(parts): Shared) -> ApiResult {
    let mut stores = Vec::new();
    for (name, log) in &parts.stores {
        let head = log.head().await.ok().flatten().map(|p| p.to_string());
        stores.push(json!({ "name": name, "head": head }));
    }
    Ok(Json(json!({
        "title": parts.title,
        "stores": stores,
        "processes": parts.processes.iter().map(|p| p.name()).collect::<Vec<_>>(),
        "guards": parts.guards.iter().map(|(n, _)| n).collect::<Vec<_>>(),
        "operations": parts.operations.is_some(),
    })))
}

async fn categories(
    State(parts): Shared,
    store: Result<Path<String>, PathRejection>,
    params: Params,
) -> ApiResult {
    let (store, q) = (path(store)?, query(params)?);
    let (log, limit) = (find_store(&parts, &store)?, limit(&q)?);
    let after = nonempty(&q, "after").map(str::to_owned);
    let listed = log.categories(after, limit).await.map_err(store_error)?;
    let next = listed
        .as_ref()
        .filter(|l| l.len() == limit)
        .and_then(|l| l.last().cloned());
    Ok(Json(json!({
        "store": store,
        "supported": listed.is_some(),
        "categories": listed.unwrap_or_default(),
        "next_after": next,
    })))
}

async fn streams(
    State(parts): Shared,
    store: Result<Path<String>, PathRejection>,
    params: Params,
) -> ApiResult {
    let (store, q) = (path(store)?, query(params)?);
    let (log, limit) = (find_store(&parts, &store)?, limit(&q)?);
    let mut list = ListStreams::all(limit);
    if let Some(c) = nonempty(&q, "category") {
        list = list.category(c);
    }
    if let Some(a) = nonempty(&q, "after") {
        let after = StreamId::new(a).map_err(|e| Denied::bad_request(format!("after: {e}")))?;
        list = list.after(after);
    }
    let listed = log.streams(list).await.map_err(store_error)?;
    let rows: Vec<Value> = listed
        .iter()
        .flatten()
        .map(|s| json!({ "stream_id": s.stream_id.to_string(), "version": s.version.0 }))
        .collect();
    let next = (rows.len() == limit)
        .then(|| rows.last().map(|r| r["stream_id"].clone()))
        .flatten();
    Ok(Json(json!({
        "store": store,
        "supported": listed.is_some(),
        "streams": rows,
        "next_after": next,
    })))
}

async fn stream(
    State(parts): Shared,
    p: Result<Path<(String, String)>, PathRejection>,
    params: Params,
) -> ApiResult {
    let ((store, stream), q) = (path(p)?, query(params)?);
    let log = find_store(&parts, &store)?;
    let id = StreamId::new(&stream).map_err(|e| Denied::bad_request(e.to_string()))?;
    let limit = limit(&q)?;
    let backward = match nonempty(&q, "direction") {
        None | Some("forward") => false,
        Some("backward") => true,
        Some(other) => {
            return Err(Denied::bad_request(format!(
                "direction must be forward or backward, not {:?}",
                truncate(other)
            )))
        }
    };
    let from = match nonempty(&q, "from") {
        None => None,
        Some(s) => Some(Version(s.parse::<u64>().map_err(|_| {
            Denied::bad_request(format!(
                "from must be a stream version (a whole number), not {:?}",
                truncate(s)
            ))
        })?)),
    };
    let Some(version) = log.stream_version(id.clone()).await.map_err(store_error)? else {
        return Err(Denied::not_found(format!(
            "stream {:?} holds no event in store {store:?}",
            truncate(&stream)
        )));
    };
    let mut read = if backward {
        ReadStream::backward()
    } else {
        ReadStream::forward()
    }
    .limit(limit);
    if let Some(from) = from {
        read = read.from(from);
    }
    let events = log.read_stream(id, read).await.map_err(store_error)?;
    let next_from = match (events.len() == limit, events.last()) {
        (true, Some(last)) if backward => last.version.0.checked_sub(1),
        (true, Some(last)) => Some(last.version.0 + 1).filter(|v| *v <= version.0),
        _ => None,
    };
    let events: Vec<EventBody> = events.into_iter().map(EventBody::from).collect();
    Ok(Json(json!({
        "store": store,
        "stream_id": stream,
        "version": version.0,
        "direction": if backward { "backward" } else { "forward" },
        "events": events,
        "next_from": next_from,
    })))
}

async fn log(
    State(parts): Shared,
    store: Result<Path<String>, PathRejection>,
    params: Params,
) -> ApiResult {
    let (store, q) = (path(store)?, query(params)?);
    let (log, limit) = (find_store(&parts, &store)?, limit(&q)?);
    let after = position(&q, "after")?;
    let split = |key: &str| -> Vec<String> {
        nonempty(&q, key)
            .map(|s| {
                s.split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let (cats, types) = (split("category"), split("type"));
    let mut filter = if cats.is_empty() {
        EventFilter::all()
    } else {
        EventFilter::categories(cats)
    };
    if !types.is_empty() {
        filter = filter.with_types(types);
    }
    let head = log.head().await.map_err(store_error)?;
    let events = log
        .read_all(ReadAll::after(after, limit).filter(filter))
        .await
        .map_err(store_error)?;
    let next_after = (events.len() == limit)
        .then(|| events.last().map(|e| e.position.to_string()))
        .flatten();
    let events: Vec<EventBody> = events.into_iter().map(EventBody::from).collect();
    Ok(Json(json!({
        "store": store,
        "after": after.to_string(),
        "head": head.map(|h| h.to_string()),
        "events": events,
        "next_after": next_after,
    })))
}

/// The events of one correlation id in every store (a page of each; `store` and
/// `after` page on in one).
async fn correlated(
    State(parts): Shared,
    id: Result<Path<String>, PathRejection>,
    params: Params,
) -> ApiResult {
    let (id, q) = (path(id)?, query(params)?);
    let id = uuid::Uuid::parse_str(&id)
        .map_err(|_| Denied::bad_request(format!("{:?} is not a UUID", truncate(&id))))?;
    let limit = limit(&q)?;
    let only = nonempty(&q, "store");
    if let Some(only) = only {
        find_store(&parts, only)?;
    }
    let after = position(&q, "after")?;
    let mut out = Vec::new();
    for (name, log) in &parts.stores {
        if only.is_some_and(|o| o != name) {
            continue;
        }
        // One store failing does not hide the others' part of the chain.
        let found = match log.correlated(id, after, limit).await {
            Ok(found) => found,
            Err(e) => {
                out.push(json!({
                    "store": name, "supported": true, "events": [], "error": e.to_string(),
                }));
                continue;
            }
        };
        let next = found
            .as_ref()
            .filter(|f| f.len() == limit)
            .and_then(|f| f.last().map(|e| e.position.to_string()));
        let events: Vec<EventBody> = found
            .iter()
            .flatten()
            .cloned()
            .map(EventBody::from)
            .collect();
        out.push(json!({
            "store": name,
            "supported": found.is_some(),
            "events": events,
            "next_after": next,
        }));
    }
    Ok(Json(json!({ "correlation_id": id, "stores": out })))
}

async fn runners(State(parts): Shared) -> ApiResult {
    let Some(ops) = &parts.operations else {
        return Ok(Json(
            json!({ "supported": false, "runners": [], "rebuilds": [] }),
        ));
    };
    let now = std::time::SystemTime::now();
    Ok(Json(json!({
        "supported": true,
        "sampled_at_ms": ms(now),
        "runners": ops.runners(),
        "rebuilds": ops.rebuilds(),
    })))
}

/// Runs `act` on the service's runner `name`: 202, or the refusal as 404 / 409.
fn action(
    parts: &Parts,
    name: Result<Path<String>, PathRejection>,
    act: impl FnOnce(&dyn crate::Operations, &str) -> Result<(), ActionError>,
    done: &str,
) -> Result<(StatusCode, Json<Value>), Denied> {
    let name = path(name)?;
    let Some(ops) = &parts.operations else {
        return Err(Denied::not_found("this console has no runners to act on"));
    };
    match act(ops.as_ref(), &name) {
        Ok(()) => Ok((
            StatusCode::ACCEPTED,
            Json(json!({ "name": name, "status": done })),
        )),
        Err(ActionError::Unknown(m)) => Err(Denied::not_found(m)),
        Err(ActionError::Conflict(m)) => Err(Denied::conflict(m)),
    }
}

async fn rebuild(
    State(parts): Shared,
    name: Result<Path<String>, PathRejection>,
) -> Result<(StatusCode, Json<Value>), Denied> {
    action(&parts, name, |ops, n| ops.rebuild(n), "rebuild started")
}

async fn restart(
    State(parts): Shared,
    name: Result<Path<String>, PathRejection>,
) -> Result<(StatusCode, Json<Value>), Denied> {
    action(&parts, name, |ops, n| ops.restart(n), "restarted")
}

async fn processes(State(parts): Shared) -> ApiResult {
    let mut out = Vec::new();
    let now = std::time::SystemTime::now();
    for p in &parts.processes {
        let row = match p.backlog().await {
            Ok(b) => json!({
                "name": p.name(),
                "instances": {
                    "pending": b.instances.pending,
                    "compensating": b.instances.compensating,
                    "completed": b.instances.completed,
                    "failed": b.instances.failed,
                },
                "commands_waiting": b.waiting,
                "commands_retrying": b.retrying,
                "oldest_waiting_ms": millis(b.oldest_age(now)),
                "deadlines_scheduled": b.deadlines_scheduled,
                "deadlines_due": b.deadlines_due,
            }),
            Err(e) => json!({ "name": p.name(), "error": e.to_string() }),
        };
        out.push(row);
    }
    Ok(Json(json!({ "processes": out })))
}

fn find_process<'a>(
    parts: &'a Parts,
    name: &str,
) -> Result<&'a Arc<dyn crate::processes::Processes>, Denied> {
    parts
        .processes
        .iter()
        .find(|p| p.name() == name)
        .ok_or_else(|| Denied::not_found(format!("no process manager named {:?}", truncate(name))))
}

async fn instances(
    State(parts): Shared,
    name: Result<Path<String>, PathRejection>,
    params: Params,
) -> ApiResult {
    let (name, q) = (path(name)?, query(params)?);
    let process = find_process(&parts, &name)?;
    let limit = limit(&q)?;
    let status = match nonempty(&q, "status") {
        None => None,
        Some(s) => Some(s.parse::<Status>().map_err(Denied::bad_request)?),
    };
    let after = nonempty(&q, "after").map(|a| InstanceId(a.to_owned()));
    let page = process
        .page(status, after, limit)
        .await
        .map_err(Denied::unavailable)?;
    let next = (page.len() == limit)
        .then(|| page.last().map(|i| i["id"].clone()))
        .flatten();
    Ok(Json(json!({
        "process": name,
        "status": status.map(Status::as_str),
        "instances": page,
        "next_after": next,
    })))
}

async fn instance(
    State(parts): Shared,
    p: Result<Path<(String, String)>, PathRejection>,
) -> ApiResult {
    let (name, id) = path(p)?;
    let process = find_process(&parts, &name)?;
    match process
        .detail(InstanceId(id.clone()))
        .await
        .map_err(Denied::unavailable)?
    {
        Some(detail) => Ok(Json(detail)),
        None => Err(Denied::not_found(format!(
            "{name} has no instance {:?}",
            truncate(&id)
        ))),
    }
}

async fn resilience(State(parts): Shared) -> ApiResult {
    let guards: Vec<Value> = parts
        .guards
        .iter()
        .map(|(name, g)| {
            let b = g.breaker().snapshot();
            let h = g.bulkhead().snapshot();
            json!({
                "name": name,
                "breaker": {
                    "state": b.state.as_str(),
                    "consecutive_failures": b.consecutive_failures,
                    "calls": b.calls,
                    "failures": b.failures,
                    "rejected": b.rejected,
                    "opened": b.opened,
                },
                "bulkhead": {
                    "max_concurrent": h.max_concurrent,
                    "in_flight": h.in_flight,
                    "rejected": h.rejected,
                },
            })
        })
        .collect();
    Ok(Json(
        json!({ "sampled_at_ms": ms(std::time::SystemTime::now()), "guards": guards }),
    ))
}
