//! TLS to PostgreSQL on rustls, with a connection string's `sslmode` honoured as libpq
//! honours it.
//!
//! [`connector_for`] takes `sslmode` and `sslrootcert` out of a connection string (URL
//! or key=value form), parses the rest with tokio-postgres, and returns that [`Config`]
//! with the [`Connector`] that sets up TLS for it. The store's [`Builder`](crate::Builder)
//! uses it for its pool and its LISTEN connection; build any other pool on the same
//! database with it too, so that every connection honours the URL:
//!
//! ```
//! use tessera_postgres::deadpool_postgres::{Manager, Pool};
//!
//! let url = "postgres://app@db.example.com/shop?sslmode=require";
//! let (config, tls) = tessera_postgres::tls::connector_for(url)?;
//! let pool = Pool::builder(Manager::new(config, tls)).max_size(4).build()?;
//! # drop(pool);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! | `sslmode` | encrypted | certificate chain checked | host name checked |
//! |---|---|---|---|
//! | `disable` | no | – | – |
//! | `prefer` (the default) | when the server offers TLS | only with `sslrootcert` | no |
//! | `require` | yes, or the connection fails | only with `sslrootcert` | no |
//! | `verify-ca` | yes | yes | no |
//! | `verify-full` | yes | yes | yes (DNS name or IP address in the certificate) |
//!
//! The roots that a checked chain must lead to are the PEM certificates in
//! `sslrootcert=<file>` or, without it, the system's trust store (read with
//! `rustls-native-certs`, so a private CA installed there for OpenSSL counts too, as it
//! does for libpq's `sslrootcert=system`). `sslrootcert=system` names the system store
//! explicitly and, as in libpq, makes `verify-full` the default and refuses any weaker
//! mode. Where this differs from libpq: without `sslrootcert`, libpq reads
//! `~/.postgresql/root.crt` and this does not (name the file with `sslrootcert`); `allow`
//! is refused; client certificates (`sslcert`, `sslkey`) and environment variables such
//! as `PGSSLMODE` are not read. A certificate the server shows that fails the check ends
//! the connection attempt with the reason (unknown issuer, expired, not valid for the
//! host name, …); the store reports it as a [`StoreError::Backend`](tessera_core::StoreError::Backend),
//! not as a transient outage.

mod params;
mod verify;

use std::path::PathBuf;
use std::str::FromStr;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::Config;
use tokio_postgres_rustls::MakeRustlsConnect;

/// How a connection uses TLS, by libpq's names (see the [module docs](self)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SslMode {
    /// Plain text only.
    Disable,
    /// TLS when the server offers it, else plain text (libpq's default).
    #[default]
    Prefer,
    /// TLS or no connection; the certificate is checked only against an `sslrootcert`.
    Require,
    /// TLS with the server's certificate chain checked against the roots.
    VerifyCa,
    /// As `VerifyCa`, and the certificate must name the host connected to.
    VerifyFull,
}

impl SslMode {
    /// libpq's name of the mode (`verify-full`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// What tokio-postgres is told: it negotiates TLS; the checks are the connector's.
    fn negotiation(self) -> tokio_postgres::config::SslMode {
        match self {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            _ => tokio_postgres::config::SslMode::Require,
        }
    }
}

impl std::fmt::Display for SslMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SslMode {
    type Err = TlsError;

    fn from_str(s: &str) -> Result<Self, TlsError> {
        [
            SslMode::Disable,
            SslMode::Prefer,
            SslMode::Require,
            SslMode::VerifyCa,
            SslMode::VerifyFull,
        ]
        .into_iter()
        .find(|mode| mode.as_str() == s)
        .ok_or_else(|| TlsError::UnsupportedMode(s.to_owned()))
    }
}

/// Why a connection string's TLS settings cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The connection string does not parse.
    #[error("invalid PostgreSQL connection string: {0}")]
    InvalidUrl(String),
    /// `sslmode` has a value other than the five supported.
    #[error(
        "sslmode={0} is not supported: use disable, prefer, require, verify-ca or verify-full"
    )]
    UnsupportedMode(String),
    /// `sslrootcert=system` with a mode weaker than `verify-full`, which libpq refuses too.
    #[error("sslrootcert=system needs sslmode=verify-full (or no sslmode), not sslmode={0}")]
    WeakModeWithSystemRoots(SslMode),
    /// The `sslrootcert` file cannot be read.
    #[error("cannot read sslrootcert {}: {source}", path.display())]
    RootCertUnreadable {
        /// The file named.
        path: PathBuf,
        /// Why it cannot be read.
        source: std::io::Error,
    },
    /// The `sslrootcert` file holds no usable certificate.
    #[error("sslrootcert {}: {reason}", path.display())]
    RootCertInvalid {
        /// The file named.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The mode checks certificates, no `sslrootcert` is given, and the system's trust
    /// store yields no root certificate.
    #[error("sslmode={mode} checks the server's certificate, but the system trust store has no root certificate ({reason}); name the CA with sslrootcert=<file>")]
    NoSystemRoots {
        /// The mode asked for.
        mode: SslMode,
        /// What loading the store reported.
        reason: String,
    },
    /// rustls refused the configuration (not expected with the ring provider).
    #[error("cannot set up TLS: {0}")]
    Setup(String),
}

/// Sets up TLS on connections as a connection string asked ([`connector_for`]); give it
/// to `deadpool_postgres::Manager` or `Config::connect`. Cheap to clone.
#[derive(Clone)]
pub struct Connector {
    mode: SslMode,
    roots: verify::Roots,
    inner: MakeRustlsConnect,
}

impl Connector {
    /// The `sslmode` this connector honours.
    pub fn mode(&self) -> SslMode {
        self.mode
    }
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("mode", &self.mode)
            .field("roots", &self.roots)
            .finish_non_exhaustive()
    }
}

impl<S> MakeTlsConnect<S> for Connector
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = <MakeRustlsConnect as MakeTlsConnect<S>>::Stream;
    type TlsConnect = <MakeRustlsConnect as MakeTlsConnect<S>>::TlsConnect;
    type Error = <MakeRustlsConnect as MakeTlsConnect<S>>::Error;

    fn make_tls_connect(&mut self, host: &str) -> Result<Self::TlsConnect, Self::Error> {
        MakeTlsConnect::<S>::make_tls_connect(&mut self.inner, host)
    }
}

/// The tokio-postgres [`Config`] of `url` (`postgres://…` or key=value form) and the
/// [`Connector`] that honours its `sslmode` and `sslrootcert` (see the
/// [module docs](self)). Reads the `sslrootcert` file, or the system's trust store when
/// the mode checks certificates without one, now: a missing or unusable file is an error
/// here, not at the first connection.
pub fn connector_for(url: &str) -> Result<(Config, Connector), TlsError> {
    let split = params::split(url)?;
    let mut config: Config = split.rest.parse().map_err(|e: tokio_postgres::Error| {
        let cause = std::error::Error::source(&e).map(ToString::to_string);
        TlsError::InvalidUrl(cause.unwrap_or_else(|| e.to_string()))
    })?;
    let system = split.root_cert.as_deref() == Some("system");
    let mode = match split.mode.as_deref() {
        Some(mode) => mode.parse()?,
        None if system => SslMode::VerifyFull,
        None => SslMode::default(),
    };
    if system && mode != SslMode::VerifyFull {
        return Err(TlsError::WeakModeWithSystemRoots(mode));
    }
    let roots = match split.root_cert {
        _ if mode == SslMode::Disable => verify::Roots::Unchecked, // never used
        Some(_) if system => verify::Roots::System,
        Some(file) => verify::Roots::File(file.into()),
        None if matches!(mode, SslMode::VerifyCa | SslMode::VerifyFull) => verify::Roots::System,
        None => verify::Roots::Unchecked,
    };
    let client = verify::client_config(mode, &roots)?;
    config.ssl_mode(mode.negotiation());
    let inner = MakeRustlsConnect::new(client);
    Ok((config, Connector { mode, roots, inner }))
}
