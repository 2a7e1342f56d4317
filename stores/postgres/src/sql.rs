//! The statements a store runs, with its schema substituted in.

use tessera_core::ExpectedVersion;

use crate::SchemaName;

/// Every statement of one store, built once.
#[derive(Debug)]
pub(crate) struct Sql {
    pub(crate) append_no_stream: String,
    pub(crate) append_exact: String,
    pub(crate) append_stream_exists: String,
    pub(crate) append_any: String,
    /// The same four for a single event, with scalar parameters.
    pub(crate) append_one: [String; 4],
    pub(crate) append_group: String,
    pub(crate) catalog_categories: String,
    pub(crate) catalog_correlated: String,
    pub(crate) catalog_streams: String,
    pub(crate) conflict: String,
    pub(crate) count: String,
    pub(crate) count_filtered: String,
    pub(crate) read_all: String,
    /// The log after a position and the hidden-events check, in one statement.
    pub(crate) read_all_checked: String,
    pub(crate) read_all_filtered: String,
    pub(crate) read_all_types: String,
    pub(crate) read_stream_forward: String,
    pub(crate) read_stream_backward: String,
    pub(crate) find_event: String,
    /// The last event of given types below a version, for many streams.
    pub(crate) last_of_types: String,
    pub(crate) stream_version: String,
    pub(crate) head: String,
    pub(crate) hidden: String,
    pub(crate) lag: String,
    pub(crate) snapshot_load: String,
    pub(crate) snapshot_save: String,
}

impl Sql {
    pub(crate) fn new(schema: &SchemaName) -> Self {
        let q = schema.quoted();
        let s = |text: &str| text.replace("{schema}", &q);
        let append = |cas: &str| {
            format!(
                "WITH cas AS (\n{}\n)\n{}",
                s(cas).trim_end(),
                s(include_str!("append/sql/append_insert.sql"))
            )
        };
        let append_one = |cas: &str| {
            format!(
                "WITH cas AS (\n{}\n)\n{}",
                s(cas).replace("cardinality($2::uuid[])", "1").trim_end(),
                s(include_str!("append/sql/append_insert_one.sql"))
            )
        };
        Self {
            append_one: [
                append_one(include_str!("append/sql/append_cas_no_stream.sql")),
                append_one(include_str!("append/sql/append_cas_exact.sql")),
                append_one(include_str!("append/sql/append_cas_stream_exists.sql")),
                append_one(include_str!("append/sql/append_cas_any.sql")),
            ],
            append_no_stream: append(include_str!("append/sql/append_cas_no_stream.sql")),
            append_exact: append(include_str!("append/sql/append_cas_exact.sql")),
            append_stream_exists: append(include_str!("append/sql/append_cas_stream_exists.sql")),
            append_any: append(include_str!("append/sql/append_cas_any.sql")),
            append_group: s(include_str!("append/sql/append_group.sql")),
            catalog_categories: s(include_str!("sql/catalog_categories.sql")),
            catalog_correlated: s(include_str!("sql/catalog_correlated.sql")),
            catalog_streams: s(include_str!("sql/catalog_streams.sql")),
            conflict: s(include_str!("append/sql/conflict.sql")),
            count: s(include_str!("sql/count.sql")),
            count_filtered: s(include_str!("sql/count_filtered.sql")),
            read_all: s(include_str!("sql/read_all.sql")),
            read_all_checked: s(include_str!("sql/read_all_checked.sql")),
            read_all_filtered: s(include_str!("sql/read_all_filtered.sql")),
            read_all_types: s(include_str!("sql/read_all_types.sql")),
            read_stream_forward: s(include_str!("sql/read_stream_forward.sql")),
            read_stream_backward: s(include_str!("sql/read_stream_backward.sql")),
            find_event: s(include_str!("sql/find_event.sql")),
            last_of_types: s(include_str!("sql/last_of_types.sql")),
            stream_version: s(include_str!("sql/stream_version.sql")),
            head: s(include_str!("sql/head.sql")),
            hidden: s(include_str!("sql/hidden.sql")),
            lag: s(include_str!("sql/lag.sql")),
            snapshot_load: s(include_str!("sql/snapshot_load.sql")),
            snapshot_save: s(include_str!("sql/snapshot_save.sql")),
        }
    }

    /// The append statement for an expectation and a batch of `events` events.
    pub(crate) fn append(&self, expected: ExpectedVersion, events: usize) -> &str {
        let i = match expected {
            ExpectedVersion::NoStream => 0,
            ExpectedVersion::Exact(_) => 1,
            ExpectedVersion::StreamExists => 2,
            ExpectedVersion::Any => 3,
        };
        if events == 1 {
            return &self.append_one[i];
        }
        [
            &self.append_no_stream,
            &self.append_exact,
            &self.append_stream_exists,
            &self.append_any,
        ][i]
    }
}
