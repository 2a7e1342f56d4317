//! Secrets kept out of output: the admin token, the password in a connection URL.
//!
//! Both wrap the value so that `Debug` (of the settings, of the parsed command line) and
//! `Display` cannot show it; code that needs the value asks for it by name
//! ([`Token::expose`]) or, for a URL handed to a driver, derefs to `&str`.

use std::fmt;
use std::ops::Deref;

use axum::http::{header, HeaderMap};

/// What a hidden value is shown as.
const HIDDEN: &str = "***";

/// A bearer token. Shown as `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// The token itself, for comparing with what a request brings.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `given` is the token, comparing every byte of the token whatever `given`
    /// holds (`subtle`): the time taken tells nothing of how much of a guess was right
    /// (it does depend on the token's length, which a long random token can afford).
    pub fn matches(&self, given: &[u8]) -> bool {
        use subtle::ConstantTimeEq;
        let token = self.0.as_bytes();
        let mut same = given.len().ct_eq(&token.len());
        for (i, t) in token.iter().enumerate() {
            same &= given.get(i).unwrap_or(&0).ct_eq(t);
        }
        same.into()
    }

    /// Whether `headers` carry the token as `Authorization: Bearer <token>` (the scheme
    /// as written, one space, then the token exactly; the first such header if there
    /// are several), compared as [`Token::matches`] does.
    pub fn matches_bearer(&self, headers: &HeaderMap) -> bool {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        given.is_some_and(|t| self.matches(t.as_bytes()))
    }
}

impl From<String> for Token {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Token {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Token").field(&HIDDEN).finish()
    }
}

/// A connection URL (`postgres://…`, `esdb://…`, or a `key=value` PostgreSQL connection
/// string). Derefs to the whole URL for the driver; shown with its password hidden
/// ([`redact`]).
#[derive(Clone, PartialEq, Eq)]
pub struct Url(String);

impl From<String> for Url {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl Deref for Url {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact(&self.0))
    }
}

impl fmt::Debug for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Url").field(&redact(&self.0)).finish()
    }
}

/// `url` with its passwords replaced by `***`: the one in the user info
/// (`postgres://user:pw@host/db`) and the value of any `password` or `sslpassword`
/// parameter (`?password=pw`, or `password=pw` in a `key=value` connection string).
pub fn redact(url: &str) -> String {
    let mut out = hide_userinfo_password(url).unwrap_or_else(|| url.to_owned());
    let mut from = 0;
    while let Some(at) = out[from..].find("password") {
        let key_end = from + at + "password".len();
        let key_start = out[..key_end - "password".len()]
            .trim_end_matches(|c: char| c.is_ascii_alphanumeric() || c == '_')
            .len();
        let is_key = matches!(&out[key_start..key_end], "password" | "sslpassword");
        let value = out[key_end..].trim_start().strip_prefix('=');
        let Some(value) = value.filter(|_| is_key) else {
            from = key_end;
            continue;
        };
        let value = value.trim_start();
        let start = out.len() - value.len();
        let len = match value.strip_prefix('\'') {
            Some(quoted) => quoted.find('\'').map_or(value.len(), |end| end + 2),
            None => value
                .find(['&', ' ', '\t', '\n', '#'])
                .unwrap_or(value.len()),
        };
        out.replace_range(start..start + len, HIDDEN);
        from = start + HIDDEN.len();
    }
    out
}

/// `scheme://user:***@rest` for a URL with a password in its user info.
fn hide_userinfo_password(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.find(['/', '?', '#']).map_or(rest, |end| &rest[..end]);
    let (userinfo, _) = authority.rsplit_once('@')?;
    let (user, _) = userinfo.split_once(':')?;
    let after = &rest[userinfo.len()..];
    Some(format!("{scheme}://{user}:{HIDDEN}{after}"))
}

#[cfg(test)]
mod tests {
    use axum::http::header::AUTHORIZATION;
    use axum::http::{HeaderMap, HeaderValue};

    use super::{redact, Token, Url};

    #[test]
    fn passwords_are_hidden() {
        for (url, shown) in [
            ("postgres://u:s3cretpw@h/db", "postgres://u:***@h/db"),
            (
                "postgres://u:s3c:ret@pw@h:5432/db?x=1",
                "postgres://u:***@h:5432/db?x=1",
            ),
            ("postgres://u@h/db", "postgres://u@h/db"),
            ("postgres://h/db", "postgres://h/db"),
            (
                "esdb://admin:changeit@h:2113?tls=false",
                "esdb://admin:***@h:2113?tls=false",
            ),
            (
                "postgres://u@h/db?password=s3cretpw&sslmode=require",
                "postgres://u@h/db?password=***&sslmode=require",
            ),
            (
                "host=h user=u password=s3cretpw dbname=d",
                "host=h user=u password=*** dbname=d",
            ),
            (
                "host=h password = 's3cret pw' dbname=d",
                "host=h password = *** dbname=d",
            ),
            ("host=h dbname=password", "host=h dbname=password"),
            (
                "host=h sslpassword=k3y mypassword=x",
                "host=h sslpassword=*** mypassword=x",
            ),
            (
                "postgres://u@h/db?password=",
                "postgres://u@h/db?password=***",
            ),
        ] {
            assert_eq!(redact(url), shown, "{url}");
        }
    }

    #[test]
    fn debug_and_display_hide_the_secret() {
        let url = Url::from("postgres://u:s3cretpw@h/db".to_owned());
        assert_eq!(
            &*url, "postgres://u:s3cretpw@h/db",
            "the driver gets it all"
        );
        for shown in [format!("{url}"), format!("{url:?}")] {
            assert!(!shown.contains("s3cretpw"), "{shown}");
        }
        let token = Token::from("s3cret-token");
        assert_eq!(token.expose(), "s3cret-token");
        assert_eq!(format!("{token:?}"), "Token(\"***\")");
        assert!(token.matches(b"s3cret-token"));
        for wrong in [&b""[..], b"s3cret", b"s3cret-token!", b"S3cret-token"] {
            assert!(!token.matches(wrong), "{wrong:?}");
        }
    }

    #[test]
    fn a_bearer_header_matches_only_with_the_token_itself() {
        let token = Token::from("s3cret-token");
        let with = |value: &[u8]| {
            let mut headers = HeaderMap::new();
            let value = HeaderValue::from_bytes(value).expect("value");
            headers.insert(AUTHORIZATION, value);
            headers
        };
        assert!(token.matches_bearer(&with(b"Bearer s3cret-token")));
        assert!(!token.matches_bearer(&HeaderMap::new()), "no header");
        for wrong in [
            &b"Bearer s3cret"[..],
            b"Bearer s3cret-token!",
            b"Bearer  s3cret-token",
            b"bearer s3cret-token",
            b"Basic s3cret-token",
            b"s3cret-token",
            b"Bearer ",
            b"Bearer s3cret-token\xff",
        ] {
            let shown = String::from_utf8_lossy(wrong);
            assert!(!token.matches_bearer(&with(wrong)), "{shown}");
        }
    }
}
