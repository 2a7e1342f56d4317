//! Validated schema names.

use std::fmt;

/// The PostgreSQL schema holding a store's tables: 1 to 50 characters, lowercase ASCII
/// letters, digits and `_`, starting with a letter or `_`, and not starting with `pg_`.
///
/// The name is always quoted in SQL, and the rules keep it from ever needing quotes, so
/// `psql` users can type it as it is.
///
/// ```
/// use tessera_postgres::SchemaName;
/// assert_eq!(SchemaName::new("ordering").unwrap().as_str(), "ordering");
/// assert!(SchemaName::new("Robert'); DROP TABLE students;--").is_err());
/// assert!(SchemaName::new("pg_catalog").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SchemaName(String);

/// Longest schema name accepted, in bytes (room for a channel prefix within 63).
pub const MAX_SCHEMA_NAME_LEN: usize = 50;

/// A string that is not an acceptable [`SchemaName`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid schema name {name:?}: {reason}")]
pub struct InvalidSchemaName {
    /// The rejected name (at most 100 characters of it).
    pub name: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl SchemaName {
    /// Validates `name`.
    pub fn new(name: impl AsRef<str>) -> Result<Self, InvalidSchemaName> {
        let name = name.as_ref();
        let reject = |reason| InvalidSchemaName {
            name: name.chars().take(100).collect(),
            reason,
        };
        let Some(first) = name.chars().next() else {
            return Err(reject("it is empty"));
        };
        if name.len() > MAX_SCHEMA_NAME_LEN {
            return Err(reject("it is longer than 50 bytes"));
        }
        if !(first.is_ascii_lowercase() || first == '_') {
            return Err(reject("it must start with a lowercase letter or '_'"));
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(reject(
                "it may only hold lowercase ASCII letters, digits and '_'",
            ));
        }
        if name.starts_with("pg_") {
            return Err(reject("names starting with 'pg_' are reserved"));
        }
        Ok(Self(name.to_owned()))
    }

    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as a quoted SQL identifier, ready to put in a statement.
    ///
    /// ```
    /// use tessera_postgres::SchemaName;
    /// assert_eq!(SchemaName::new("ordering").unwrap().quoted(), "\"ordering\"");
    /// ```
    pub fn quoted(&self) -> String {
        format!("\"{}\"", self.0)
    }

    /// The LISTEN/NOTIFY channel of this schema's log.
    pub(crate) fn channel(&self) -> String {
        format!("tessera_{}", self.0)
    }

    /// The key of the advisory lock migrations run under (FNV-1a of the name).
    pub(crate) fn lock_key(&self) -> i64 {
        let hash = format!("tessera-migrate:{}", self.0)
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
        i64::from_ne_bytes(hash.to_ne_bytes())
    }
}

impl Default for SchemaName {
    fn default() -> Self {
        Self("tessera".to_owned())
    }
}

impl fmt::Display for SchemaName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for SchemaName {
    type Err = InvalidSchemaName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_names_and_rejects_the_rest() {
        for ok in ["a", "_x", "ordering_v2", &"a".repeat(50)] {
            assert!(SchemaName::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "1abc",
            "Ordering",
            "a-b",
            "a b",
            "a\"b",
            "pg_x",
            "é",
            &"a".repeat(51),
        ] {
            assert!(SchemaName::new(bad).is_err(), "{bad}");
        }
        assert_eq!(SchemaName::new("s1").unwrap().quoted(), "\"s1\"");
        assert_ne!(
            SchemaName::new("a").unwrap().lock_key(),
            SchemaName::new("b").unwrap().lock_key()
        );
    }
}
