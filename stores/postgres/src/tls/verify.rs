//! The rustls client configuration of an `sslmode`: which roots, which checks.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_cert_signed_by_trust_anchor, verify_server_name};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::{SslMode, TlsError};

/// Where the roots that a server's certificate chain must lead to come from.
#[derive(Clone, Debug)]
pub(super) enum Roots {
    /// No chain check (`prefer` and `require` without `sslrootcert`).
    Unchecked,
    /// The system's trust store.
    System,
    /// The PEM certificates of an `sslrootcert` file.
    File(PathBuf),
}

/// The client configuration for `mode` with `roots`: the ring provider (named, not the
/// process default, so that a build with several rustls providers cannot make it
/// ambiguous), TLS 1.2 and 1.3, and a [`Verifier`] doing what `mode` asks.
pub(super) fn client_config(mode: SslMode, roots: &Roots) -> Result<ClientConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let store = match roots {
        Roots::Unchecked => None,
        Roots::System => Some(system(mode)?),
        Roots::File(path) => Some(Arc::new(file(path)?)),
    };
    let verifier = Verifier {
        roots: store,
        check_name: mode == SslMode::VerifyFull,
        algorithms: provider.signature_verification_algorithms,
    };
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Setup(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    // As libpq 17 does: PostgreSQL 17 requires it with `sslnegotiation=direct`, older
    // servers ignore it.
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(config)
}

/// The system's trust store, read once per process.
fn system(mode: SslMode) -> Result<Arc<RootCertStore>, TlsError> {
    static SYSTEM: OnceLock<Result<Arc<RootCertStore>, String>> = OnceLock::new();
    let loaded = SYSTEM.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        let mut store = RootCertStore::empty();
        let (added, _ignored) = store.add_parsable_certificates(found.certs);
        if added > 0 {
            return Ok(Arc::new(store));
        }
        let errors: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
        Err(if errors.is_empty() {
            "no certificate found".to_owned()
        } else {
            errors.join("; ")
        })
    });
    loaded
        .clone()
        .map_err(|reason| TlsError::NoSystemRoots { mode, reason })
}

/// Every certificate of the PEM file at `path`; at least one.
fn file(path: &Path) -> Result<RootCertStore, TlsError> {
    let invalid = |reason: String| TlsError::RootCertInvalid {
        path: path.to_owned(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|source| TlsError::RootCertUnreadable {
        path: path.to_owned(),
        source,
    })?;
    let mut store = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| invalid(format!("not valid PEM: {e}")))?;
        store
            .add(cert)
            .map_err(|e| invalid(format!("a certificate that cannot be used as a root: {e}")))?;
    }
    if store.is_empty() {
        return Err(invalid("no PEM certificate in it".to_owned()));
    }
    Ok(store)
}

/// Checks a server's certificate as an `sslmode` asks: nothing without roots, else the
/// chain up to one of them, and with `check_name` also the host name. The handshake's
/// signatures are always checked: they prove the server holds the certificate's key.
#[derive(Debug)]
struct Verifier {
    roots: Option<Arc<RootCertStore>>,
    check_name: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(roots) = &self.roots else {
            return Ok(ServerCertVerified::assertion());
        };
        let cert = ParsedCertificate::try_from(end_entity)?;
        verify_server_cert_signed_by_trust_anchor(
            &cert,
            roots,
            intermediates,
            now,
            self.algorithms.all,
        )?;
        if self.check_name {
            verify_server_name(&cert, server_name)?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
