//! Where things live on the server: stream names, subjects, and the address as shown.

use tessera_projections::integration::{BusError, Message, MessageKind};

/// The first subject token of dead letters (under the subject prefix); no context may
/// be named so.
pub(crate) const DEAD_TOKEN: &str = "_tessera_dead";

/// How a bus names its streams and subjects.
#[derive(Debug, Clone)]
pub(crate) struct Names {
    /// Streams are `{stream_prefix}_{CONTEXT}`, dead letters `{stream_prefix}-DEAD`.
    pub(crate) stream_prefix: String,
    /// Put before every subject (`{subject_prefix}.{subject}`), empty for none.
    pub(crate) subject_prefix: String,
}

impl Names {
    /// The stream holding `context`'s messages.
    pub(crate) fn stream(&self, context: &str) -> String {
        format!("{}_{}", self.stream_prefix, context.to_uppercase())
    }

    /// The stream holding dead letters. Its name cannot be a context's: those have `_`
    /// after the prefix.
    pub(crate) fn dead_stream(&self) -> String {
        format!("{}-DEAD", self.stream_prefix)
    }

    /// `subject` as published on the server.
    pub(crate) fn subject(&self, subject: &str) -> String {
        if self.subject_prefix.is_empty() {
            subject.to_owned()
        } else {
            format!("{}.{subject}", self.subject_prefix)
        }
    }

    /// Where a consumer of `consumer` parks the dead letters of `context`.
    pub(crate) fn dead_subject(&self, context: &str, consumer: &str) -> String {
        self.subject(&format!("{DEAD_TOKEN}.{context}.{consumer}"))
    }
}

/// The context a message is stored in: its source for an event, the subject's first
/// token (the owner) for a command. An event's subject must lie in its source context.
pub(crate) fn context_of(m: &Message) -> Result<&str, BusError> {
    let first = m.subject.split('.').next().unwrap_or_default();
    match m.kind {
        MessageKind::Command => Ok(first),
        MessageKind::Event if first == m.source => Ok(first),
        MessageKind::Event => Err(BusError::Refused(format!(
            "event {} of context {:?} has subject {:?} outside it",
            m.id, m.source, m.subject
        ))),
    }
}

/// A context name must be one subject token (it is the first token of its subjects)
/// and not the dead letters' token.
pub(crate) fn check_context(context: &str) -> Result<(), BusError> {
    if !is_token(context) || context == DEAD_TOKEN {
        return Err(BusError::Refused(format!(
            "context name {context:?} is not one NATS subject token (no '.', '*', '>', \
             spaces or slashes) or is reserved ({DEAD_TOKEN})"
        )));
    }
    Ok(())
}

/// A durable consumer's name must be a valid JetStream name.
pub(crate) fn check_consumer(name: &str) -> Result<(), BusError> {
    if !is_token(name) {
        return Err(BusError::Refused(format!(
            "consumer name {name:?} is not a valid JetStream name (no '.', '*', '>', spaces or slashes)"
        )));
    }
    Ok(())
}

fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name.chars().all(|c| {
            !c.is_whitespace() && !c.is_control() && !matches!(c, '.' | '*' | '>' | '/' | '\\')
        })
}

/// `url` (one server or a comma-separated list) without user names, passwords or
/// tokens: `nats://user:secret@host:4222` shows as `nats://host:4222`.
pub(crate) fn redact(url: &str) -> String {
    url.split(',')
        .map(|server| {
            let server = server.trim();
            let (scheme, rest) = match server.find("://") {
                Some(i) => server.split_at(i + 3),
                None => ("", server),
            };
            let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
            match authority.rfind('@') {
                Some(at) => format!("{scheme}{}", &rest[at + 1..]),
                None => server.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The user information (`user:secret`, a token) in `url` and its secret part, to scrub
/// from error texts.
pub(crate) fn secrets(url: &str) -> Vec<String> {
    url.split(',')
        .filter_map(|server| {
            let rest = server.trim().split_once("://").map_or(server, |(_, r)| r);
            let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
            let info = &authority[..authority.rfind('@')?];
            // The whole of it, and the password (or the token) alone.
            let secret = info.split_once(':').map_or(info, |(_, password)| password);
            Some([info.to_owned(), secret.to_owned()])
        })
        .flatten()
        .filter(|s| !s.is_empty())
        .collect()
}

/// `text` with every secret of `url` replaced by `***`.
pub(crate) fn scrub(text: &str, url: &str) -> String {
    let mut secrets = secrets(url);
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets
        .iter()
        .fold(text.to_owned(), |text, secret| text.replace(secret, "***"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_drops_user_information() {
        assert_eq!(redact("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
        assert_eq!(redact("nats://u:p@h:4222"), "nats://h:4222");
        assert_eq!(redact("tok@h:4222"), "h:4222");
        assert_eq!(
            redact("nats://a:b@h1:4222, tls://t@h2"),
            "nats://h1:4222,tls://h2"
        );
        assert_eq!(
            scrub("bad u:pw9 here, pw9 u", "nats://u:pw9@h"),
            "bad *** here, *** u"
        );
    }

    #[test]
    fn names() {
        let names = Names {
            stream_prefix: "TESSERA".into(),
            subject_prefix: String::new(),
        };
        assert_eq!(names.stream("ordering"), "TESSERA_ORDERING");
        assert_eq!(names.dead_stream(), "TESSERA-DEAD");
        assert_eq!(
            names.subject("ordering.order.Placed"),
            "ordering.order.Placed"
        );
        assert_eq!(
            names.dead_subject("ordering", "wh"),
            "_tessera_dead.ordering.wh"
        );
        let prefixed = Names {
            stream_prefix: "T1".into(),
            subject_prefix: "t1".into(),
        };
        assert_eq!(prefixed.subject("a.b"), "t1.a.b");
        assert!(check_context("ordering").is_ok());
        for bad in ["", "a.b", "a b", "a>", DEAD_TOKEN] {
            assert!(check_context(bad).is_err(), "{bad:?}");
        }
    }
}
