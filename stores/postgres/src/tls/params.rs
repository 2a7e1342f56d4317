//! Taking `sslmode` and `sslrootcert` out of a connection string before tokio-postgres
//! parses the rest (it knows neither `verify-ca`, `verify-full` nor `sslrootcert`).
//!
//! Both forms are read the way tokio-postgres reads them: a URL's parameters follow the
//! first `?` after the user part, split at `&` and the first `=`, percent-decoded; a
//! key=value string is whitespace-separated `key = value` pairs whose values may be
//! single-quoted, with `\` escaping the next character. The last of a repeated key wins.

use percent_encoding::percent_decode_str;

use super::TlsError;

/// A connection string without its TLS parameters, and their values.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Split {
    /// What tokio-postgres parses.
    pub rest: String,
    pub mode: Option<String>,
    pub root_cert: Option<String>,
}

impl Split {
    /// Takes `key = value` if it is one of the TLS parameters; false otherwise.
    fn take(&mut self, key: &str, value: String) -> bool {
        match key {
            "sslmode" => self.mode = Some(value),
            "sslrootcert" => self.root_cert = Some(value),
            _ => return false,
        }
        true
    }
}

/// Splits `s` (`postgres://…`, `postgresql://…` or key=value form).
pub(super) fn split(s: &str) -> Result<Split, TlsError> {
    let body = ["postgres://", "postgresql://"]
        .into_iter()
        .find_map(|prefix| s.strip_prefix(prefix));
    match body {
        Some(body) => url(s, s.len() - body.len()),
        None => Ok(key_value(s)),
    }
}

fn url(s: &str, body_start: usize) -> Result<Split, TlsError> {
    let host_start = body_start + s[body_start..].find('@').map_or(0, |at| at + 1);
    let Some(query) = s[host_start..].find('?').map(|q| host_start + q) else {
        return Ok(Split {
            rest: s.to_owned(),
            ..Split::default()
        });
    };
    let mut split = Split {
        rest: s[..query].to_owned(),
        ..Split::default()
    };
    let mut kept = Vec::new();
    for pair in s[query + 1..].split('&') {
        let taken = match pair.split_once('=') {
            Some((key, value)) => split.take(&decode(key)?, decode(value)?),
            None => false, // tokio-postgres reports it
        };
        if !taken {
            kept.push(pair);
        }
    }
    if !kept.is_empty() {
        split.rest.push('?');
        split.rest.push_str(&kept.join("&"));
    }
    Ok(split)
}

fn decode(s: &str) -> Result<String, TlsError> {
    percent_decode_str(s)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|e| TlsError::InvalidUrl(format!("{s:?} is not UTF-8 once decoded: {e}")))
}

/// A key=value string without the TLS pairs, the others written back quoted. A string
/// that does not tokenize is left whole for tokio-postgres to report.
fn key_value(s: &str) -> Split {
    let Some(pairs) = tokenize(s) else {
        return Split {
            rest: s.to_owned(),
            ..Split::default()
        };
    };
    let mut split = Split::default();
    let mut kept = Vec::new();
    for (key, value) in pairs {
        if !split.take(key, value.clone()) {
            let quoted = value.replace('\\', "\\\\").replace('\'', "\\'");
            kept.push(format!("{key}='{quoted}'"));
        }
    }
    split.rest = kept.join(" ");
    split
}

/// The `key = value` pairs of `s`, or `None` where tokio-postgres would stop or fail.
fn tokenize(s: &str) -> Option<Vec<(&str, String)>> {
    let mut pairs = Vec::new();
    let mut rest = s.trim_start();
    while !rest.is_empty() {
        let key_end = rest.find(|c: char| c.is_whitespace() || c == '=')?;
        let key = &rest[..key_end];
        rest = rest[key_end..].trim_start().strip_prefix('=')?.trim_start();
        let (value, after) = match rest.strip_prefix('\'') {
            Some(quoted) => {
                let (value, end) = unescape(quoted, |c| c == '\'');
                (value, &quoted[end? + 1..])
            }
            None => {
                let (value, end) = unescape(rest, char::is_whitespace);
                if value.is_empty() {
                    return None;
                }
                (value, &rest[end.unwrap_or(rest.len())..])
            }
        };
        if key.is_empty() {
            return None;
        }
        pairs.push((key, value));
        rest = after.trim_start();
    }
    Some(pairs)
}

/// The unescaped text of `s` up to the first unescaped char matching `end`, and where
/// that char is (`None`: the text ran to the end).
fn unescape(s: &str, end: impl Fn(char) -> bool) -> (String, Option<usize>) {
    let mut value = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            c if end(c) => return (value, Some(i)),
            '\\' => value.extend(chars.next().map(|(_, c)| c)),
            c => value.push(c),
        }
    }
    (value, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(s: &str) -> (String, Option<String>, Option<String>) {
        let split = split(s).expect("splits");
        (split.rest, split.mode, split.root_cert)
    }

    #[test]
    fn a_url_loses_only_its_tls_parameters() {
        let (rest, mode, root) = parts(
            "postgres://u:p%3Fw@h:5433/db?application_name=a&sslmode=verify-full&sslrootcert=%2Ftmp%2Fmy%20ca.pem&connect_timeout=3",
        );
        assert_eq!(
            rest,
            "postgres://u:p%3Fw@h:5433/db?application_name=a&connect_timeout=3"
        );
        assert_eq!(mode.as_deref(), Some("verify-full"));
        assert_eq!(root.as_deref(), Some("/tmp/my ca.pem"));

        let (rest, mode, root) = parts("postgresql://h/db?sslmode=require");
        assert_eq!(
            (rest.as_str(), mode.as_deref(), root),
            ("postgresql://h/db", Some("require"), None)
        );
        assert_eq!(parts("postgres://h/db").0, "postgres://h/db");
        // A `?` in the password is not the start of the parameters.
        let (rest, mode, _) = parts("postgres://u:a?b@h/db?sslmode=disable");
        assert_eq!(
            (rest.as_str(), mode.as_deref()),
            ("postgres://u:a?b@h/db", Some("disable"))
        );
        // The last of a repeated key wins, as in libpq.
        assert_eq!(
            parts("postgres://h?sslmode=require&sslmode=verify-ca")
                .1
                .as_deref(),
            Some("verify-ca")
        );
    }

    #[test]
    fn a_key_value_string_loses_only_its_tls_pairs() {
        let (rest, mode, root) = parts(
            "host=h  user = u password='it\\'s' sslmode=verify-ca sslrootcert='/tmp/a b\\'c.pem' dbname=d\\ x",
        );
        assert_eq!(mode.as_deref(), Some("verify-ca"));
        assert_eq!(root.as_deref(), Some("/tmp/a b'c.pem"));
        let config: tokio_postgres::Config = rest.parse().expect("the rest parses");
        assert_eq!(config.get_user(), Some("u"));
        assert_eq!(config.get_dbname(), Some("d x"));
        assert_eq!(config.get_password(), Some(&b"it's"[..]));
    }

    #[test]
    fn a_string_that_does_not_tokenize_is_left_for_tokio_postgres() {
        for bad in ["host=h sslmode", "host='h", "host=h password="] {
            let split = split(bad).expect("splits");
            assert_eq!(split.rest, bad);
            assert!(bad.parse::<tokio_postgres::Config>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_url_whose_parameter_is_not_utf8_is_refused() {
        assert!(matches!(
            split("postgres://h?sslrootcert=%FF"),
            Err(TlsError::InvalidUrl(_))
        ));
    }
}
