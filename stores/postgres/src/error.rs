//! Mapping PostgreSQL and pool failures to [`StoreError`]s, by SQLSTATE, never by text.

use std::error::Error as _;

use deadpool_postgres::PoolError;
use tessera_core::StoreError;
use tokio_postgres::error::SqlState;

/// SQLSTATEs after which the connection is gone or the server refuses work for now.
const UNAVAILABLE: &[SqlState] = &[
    SqlState::ADMIN_SHUTDOWN,
    SqlState::CRASH_SHUTDOWN,
    SqlState::CANNOT_CONNECT_NOW,
    SqlState::TOO_MANY_CONNECTIONS,
    SqlState::IDLE_SESSION_TIMEOUT,
];

/// Whether `e` means the connection is lost or unusable (the outcome of a write in
/// flight is then unknown).
pub(crate) fn is_connection_error(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        Some(code) => code.code().starts_with("08") || UNAVAILABLE.contains(code),
        None => e.as_db_error().is_none() && io_source(e),
    }
}

/// SQLSTATEs of a statement the server refused because of other transactions (its
/// transaction rolled back, nothing written): a lock timeout, a serialization failure
/// (also a conflict with recovery on a standby), a deadlock. A retry resolves them, so
/// they surface as [`StoreError::Unavailable`] (a subscription retries instead of
/// ending).
const CONTENDED: &[SqlState] = &[
    SqlState::LOCK_NOT_AVAILABLE,
    SqlState::T_R_SERIALIZATION_FAILURE,
    SqlState::T_R_DEADLOCK_DETECTED,
];

/// Whether `e` is worth retrying as it is: the connection is gone or unusable, or the
/// statement lost to other transactions ([`CONTENDED`]).
pub(crate) fn is_transient(e: &tokio_postgres::Error) -> bool {
    is_connection_error(e) || e.code().is_some_and(|c| CONTENDED.contains(c))
}

/// Whether an append that failed with `e` is worth retrying with the same event ids:
/// [`is_transient`], or cut short for now (a statement timeout or cancel, a lack of
/// resources). Nothing was written, and unlike a read, which would fail the same way
/// again and again without a subscriber seeing why, a command's retries are bounded.
pub(crate) fn is_transient_append(e: &tokio_postgres::Error) -> bool {
    is_transient(e)
        || e.code()
            .is_some_and(|c| *c == SqlState::QUERY_CANCELED || c.code().starts_with("53"))
}

/// Whether the transaction was rolled back by the server for reasons a retry may fix.
pub(crate) fn is_retryable_abort(e: &tokio_postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE
    )
}

/// Whether `e` is a unique violation of one of the given constraints.
pub(crate) fn is_unique_violation(e: &tokio_postgres::Error, constraints: &[&str]) -> bool {
    e.as_db_error().is_some_and(|db| {
        *db.code() == SqlState::UNIQUE_VIOLATION
            && db.constraint().is_some_and(|c| constraints.contains(&c))
    })
}

fn io_source(e: &tokio_postgres::Error) -> bool {
    let mut source = e.source();
    while let Some(s) = source {
        if s.is::<std::io::Error>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// The reason a server's certificate failed the connector's check, if that is what
/// ended `e`'s connection attempt (tokio-rustls reports it as an I/O error wrapping it).
pub(crate) fn certificate_refused(e: &tokio_postgres::Error) -> Option<&rustls::CertificateError> {
    let mut source = e.source();
    while let Some(s) = source {
        let tls = s
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            .and_then(|inner| inner.downcast_ref::<rustls::Error>());
        if let Some(rustls::Error::InvalidCertificate(reason)) = tls {
            return Some(reason);
        }
        source = s.source();
    }
    None
}

/// A human description of `e` including the server's message and SQLSTATE.
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} {}: {}", db.severity(), db.code().code(), db.message()),
        None => match e.source() {
            Some(s) => format!("{e}: {s}"),
            None => e.to_string(),
        },
    }
}

/// Maps a driver error during `what` against `endpoint`.
pub(crate) fn map_pg(e: tokio_postgres::Error, what: &str, endpoint: &str) -> StoreError {
    let transient = is_transient(&e);
    classify(e, what, endpoint, transient)
}

/// Maps a driver error that failed an append ([`is_transient_append`]).
pub(crate) fn map_append(e: tokio_postgres::Error, endpoint: &str) -> StoreError {
    let transient = is_transient_append(&e);
    classify(e, "append", endpoint, transient)
}

fn classify(e: tokio_postgres::Error, what: &str, endpoint: &str, transient: bool) -> StoreError {
    let message = format!("{what} on PostgreSQL at {endpoint}: {}", describe(&e));
    if transient {
        StoreError::unavailable(message, e)
    } else {
        StoreError::backend(message, e)
    }
}

/// Maps a failure to get a pooled connection to `endpoint`.
pub(crate) fn map_pool(e: PoolError, endpoint: &str) -> StoreError {
    match e {
        PoolError::Backend(e) => {
            if let Some(refused) = certificate_refused(&e) {
                // A check of sslmode failed: retrying will not help either.
                let hint = match refused {
                    rustls::CertificateError::UnknownIssuer => {
                        " (it is not signed by a root of sslrootcert or of the system store)"
                    }
                    rustls::CertificateError::NotValidForName
                    | rustls::CertificateError::NotValidForNameContext { .. } => {
                        " (sslmode=verify-full needs the certificate to name the host connected to)"
                    }
                    _ => "",
                };
                let message = format!(
                    "cannot connect to PostgreSQL at {endpoint}: TLS handshake failed, the server's certificate was refused: {refused}{hint}"
                );
                return StoreError::backend(message, e);
            }
            let message = format!(
                "cannot connect to PostgreSQL at {endpoint}: {}",
                describe(&e)
            );
            if e.as_db_error().is_some() && !is_connection_error(&e) {
                // Bad credentials, unknown database: retrying will not help.
                StoreError::backend(message, e)
            } else {
                StoreError::unavailable(message, e)
            }
        }
        other => StoreError::unavailable(
            format!("no connection to PostgreSQL at {endpoint}: {other}"),
            other,
        ),
    }
}
