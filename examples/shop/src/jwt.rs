//! Bearer JWTs of customers: checked by the gateway (`shop gateway`) and, when given the
//! same options, by the all-in-one server (`shop serve`).
//!
//! A token is accepted when its signature verifies with the configured key, its `exp`
//! has not passed (60 s of leeway for clocks apart), its `aud` names `shop`, and its
//! `sub`, the customer id, has 1 to 100 characters and no control character. HS256 with
//! a shared secret (`--jwt-secret`), or RS256 or EdDSA with a PEM public key
//! (`--jwt-public-key`, the algorithm read from the key). Only that one algorithm is
//! accepted: a token whose header names another (`none`, or HS256 signed with the public
//! key) is refused.

use std::fmt;
use std::path::Path;

use clap::Args;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

/// The audience every token must name.
pub const AUDIENCE: &str = "shop";

/// How customers' tokens are checked, from the command line (shared by `serve` and
/// `gateway`).
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Customer authentication")]
pub struct JwtArgs {
    /// Check customers' bearer JWTs signed HS256 with this secret (`sub`: the customer
    /// id, `aud`: shop, `exp` required). Without this or --jwt-public-key, customer
    /// routes are open.
    #[arg(
        long,
        env = "SHOP_JWT_SECRET",
        hide_env_values = true,
        conflicts_with = "jwt_public_key"
    )]
    pub jwt_secret: Option<crate::secret::Token>,
    /// Check customers' bearer JWTs signed RS256 or EdDSA against this PEM public key
    /// (`-----BEGIN PUBLIC KEY-----`; the algorithm follows the key).
    #[arg(long, value_name = "FILE")]
    pub jwt_public_key: Option<std::path::PathBuf>,
}

impl JwtArgs {
    /// The verifier these flags ask for, if any.
    pub fn verifier(&self) -> Result<Option<Verifier>, JwtError> {
        match (&self.jwt_secret, &self.jwt_public_key) {
            (Some(secret), _) => Verifier::hs256(secret.expose().as_bytes()).map(Some),
            (None, Some(path)) => Verifier::from_pem_file(path).map(Some),
            (None, None) => Ok(None),
        }
    }
}

/// Checks customers' tokens with one key and one algorithm. `Debug` shows the algorithm
/// only.
#[derive(Clone)]
pub struct Verifier {
    key: DecodingKey,
    validation: Validation,
}

/// A customer a token vouches for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer(pub String);

/// Why a verifier could not be made, or a token was refused.
#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    /// The key is unusable.
    #[error("JWT key: {0}")]
    Key(String),
    /// The token is missing, malformed, badly signed, expired or for another audience.
    #[error("{0}")]
    Token(String),
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
}

impl Verifier {
    /// HS256 with `secret` (at least 32 bytes: a shorter one can be guessed offline from
    /// any token).
    pub fn hs256(secret: &[u8]) -> Result<Self, JwtError> {
        if secret.len() < 32 {
            return Err(JwtError::Key(
                "an HS256 secret needs at least 32 bytes".to_owned(),
            ));
        }
        Ok(Self::new(
            DecodingKey::from_secret(secret),
            Algorithm::HS256,
        ))
    }

    /// RS256 or EdDSA, whichever key `pem` holds (a `PUBLIC KEY` or `RSA PUBLIC KEY`).
    pub fn from_pem(pem: &[u8]) -> Result<Self, JwtError> {
        if let Ok(key) = DecodingKey::from_ed_pem(pem) {
            return Ok(Self::new(key, Algorithm::EdDSA));
        }
        DecodingKey::from_rsa_pem(pem)
            .map(|key| Self::new(key, Algorithm::RS256))
            .map_err(|e| JwtError::Key(format!("not an RSA or Ed25519 public key in PEM ({e})")))
    }

    /// [`Verifier::from_pem`] with the file at `path`.
    pub fn from_pem_file(path: &Path) -> Result<Self, JwtError> {
        let pem = std::fs::read(path)
            .map_err(|e| JwtError::Key(format!("cannot read {}: {e}", path.display())))?;
        Self::from_pem(&pem)
    }

    fn new(key: DecodingKey, algorithm: Algorithm) -> Self {
        let mut validation = Validation::new(algorithm);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "aud", "sub"]);
        Self { key, validation }
    }

    /// The algorithm tokens must be signed with.
    pub fn algorithm(&self) -> Algorithm {
        self.validation.algorithms[0]
    }

    /// The customer `token` vouches for.
    pub fn verify(&self, token: &str) -> Result<Customer, JwtError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|e| JwtError::Token(format!("the token is not valid: {e}")))?;
        let sub = data.claims.sub;
        let valid = !sub.trim().is_empty()
            && sub.trim() == sub
            && sub.chars().count() <= 100
            && !sub.chars().any(char::is_control);
        if !valid {
            return Err(JwtError::Token(
                "the token's sub (the customer id) must have 1 to 100 characters, no \
                 control characters and no surrounding spaces"
                    .to_owned(),
            ));
        }
        Ok(Customer(sub))
    }

    /// The customer of a request's `Authorization: Bearer …` header.
    pub fn verify_header(
        &self,
        header: Option<&axum::http::HeaderValue>,
    ) -> Result<Customer, JwtError> {
        let Some(value) = header else {
            return Err(JwtError::Token(
                "this route needs `Authorization: Bearer <JWT>`".to_owned(),
            ));
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| {
                JwtError::Token("the Authorization header must be `Bearer <JWT>`".to_owned())
            })?;
        self.verify(token.trim())
    }
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("algorithm", &self.algorithm())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::json;

    use super::{Customer, Verifier};

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn token(claims: &serde_json::Value) -> String {
        encode(
            &Header::default(),
            claims,
            &EncodingKey::from_secret(SECRET),
        )
        .expect("encode")
    }

    fn in_an_hour() -> u64 {
        jsonwebtoken::get_current_timestamp() + 3600
    }

    #[test]
    fn a_token_needs_signature_expiry_audience_and_a_customer() {
        let v = Verifier::hs256(SECRET).expect("verifier");
        let good = token(&json!({ "sub": "c1", "aud": "shop", "exp": in_an_hour() }));
        assert_eq!(v.verify(&good).expect("valid"), Customer("c1".into()));
        let listed = token(&json!({ "sub": "c1", "aud": ["other", "shop"], "exp": in_an_hour() }));
        assert!(v.verify(&listed).is_ok(), "shop among the audiences");
        for bad in [
            json!({ "sub": "c1", "aud": "shop", "exp": 1000 }),
            json!({ "sub": "c1", "aud": "shop" }),
            json!({ "sub": "c1", "aud": "other", "exp": in_an_hour() }),
            json!({ "sub": "c1", "exp": in_an_hour() }),
            json!({ "aud": "shop", "exp": in_an_hour() }),
            json!({ "sub": "", "aud": "shop", "exp": in_an_hour() }),
            json!({ "sub": " c1", "aud": "shop", "exp": in_an_hour() }),
            json!({ "sub": "c\n1", "aud": "shop", "exp": in_an_hour() }),
        ] {
            assert!(v.verify(&token(&bad)).is_err(), "{bad}");
        }
        let other = Verifier::hs256(b"another secret, 32 bytes or more!").expect("verifier");
        assert!(other.verify(&good).is_err(), "another key");
        assert!(Verifier::hs256(b"short").is_err(), "a short secret");
    }

    #[test]
    fn a_public_key_verifier_takes_only_its_algorithm() {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("key pair");
        let v = Verifier::from_pem(pair.public_key_pem().as_bytes()).expect("verifier");
        assert_eq!(v.algorithm(), jsonwebtoken::Algorithm::EdDSA);
        let claims = json!({ "sub": "c1", "aud": "shop", "exp": in_an_hour() });
        let key = EncodingKey::from_ed_pem(pair.serialize_pem().as_bytes()).expect("key");
        let signed =
            encode(&Header::new(jsonwebtoken::Algorithm::EdDSA), &claims, &key).expect("encode");
        assert_eq!(v.verify(&signed).expect("valid"), Customer("c1".into()));
        // The public key used as an HMAC secret: the classic confusion, refused.
        let confused = encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(pair.public_key_pem().as_bytes()),
        )
        .expect("encode");
        assert!(v.verify(&confused).is_err());
        assert!(Verifier::from_pem(b"not a key").is_err());
    }
}
