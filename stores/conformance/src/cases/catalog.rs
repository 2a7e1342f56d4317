//! Browsing a store's categories and streams, page by page, in byte order.

use std::collections::BTreeSet;

use tessera_core::{category_of, EventReader, EventStore, ExpectedVersion, ListStreams};

use crate::support::{
    answer, append_ok, assert_empty_store, assert_invalid_input, evs, first_answer, ok, sid,
    version_of, within,
};
use crate::Browsing;

/// Stream ids whose byte order is not a typical locale's (upper case before lower case,
/// `-` < `.` < digits < `_` by code point, `order-10` before `order-2`, non-ASCII last,
/// an empty category), with how many events each gets, in the (unsorted) order they are
/// appended. `order-1` gets one more event at the end.
const SCRIPT: [(&str, u64); 17] = [
    ("order-2", 1),
    ("é-1", 1),
    ("order-1", 2),
    ("Order-1", 1),
    ("orders-1", 1),
    ("_-1", 1),
    ("order_x-1", 2),
    ("b-1", 1),
    ("order", 1),
    ("ORDER-9", 1),
    ("z", 3),
    ("order.x-1", 1),
    ("-lead", 1),
    ("a-1", 1),
    ("order-10", 1),
    ("B-1", 1),
    ("x-y-z", 1),
];

/// The categories of [`SCRIPT`] in byte order.
const CATEGORIES: [&str; 14] = [
    "", "B", "ORDER", "Order", "_", "a", "b", "order", "order.x", "order_x", "orders", "x", "z",
    "é",
];

/// The streams of [`SCRIPT`] in byte order, with their versions once it is appended.
const STREAMS: [(&str, u64); 17] = [
    ("-lead", 0),
    ("B-1", 0),
    ("ORDER-9", 0),
    ("Order-1", 0),
    ("_-1", 0),
    ("a-1", 0),
    ("b-1", 0),
    ("order", 0),
    ("order-1", 2),
    ("order-10", 0),
    ("order-2", 0),
    ("order.x-1", 0),
    ("order_x-1", 1),
    ("orders-1", 0),
    ("x-y-z", 0),
    ("z", 2),
    ("é-1", 0),
];

/// Page sizes every listing is read with.
const LIMITS: [usize; 5] = [1, 2, 3, 5, 1000];

async fn append_script<S: EventStore>(store: &S) {
    for (i, (stream, n)) in SCRIPT.into_iter().enumerate() {
        let events = evs("Browsed", i as u64 * 10, n);
        append_ok(store, &sid(stream), ExpectedVersion::NoStream, events).await;
    }
    let more = evs("Browsed", 1000, 1);
    append_ok(store, &sid("order-1"), ExpectedVersion::Any, more).await;
    // The suite's own expectations, from the script in Rust's byte order.
    let categories: BTreeSet<&str> = SCRIPT.iter().map(|(s, _)| category_of(s)).collect();
    assert!(categories.iter().eq(CATEGORIES.iter()), "CATEGORIES");
    let streams: BTreeSet<&str> = SCRIPT.iter().map(|(s, _)| *s).collect();
    assert!(streams.iter().eq(STREAMS.iter().map(|(s, _)| s)), "STREAMS");
}

/// `categories` lists each category holding an event exactly once, in byte order,
/// strictly after `after`, whatever the page size; a limit of 0 is `InvalidInput`.
/// Skipped, visibly, for a store that cannot list categories and may say so.
pub async fn categories_in_byte_order<S: EventStore>(store: S, browsing: Browsing) {
    assert_empty_store(&store).await;
    let call = "categories(None, 10)";
    let first = ok(call, within(call, store.categories(None, 10)).await);
    let case = "categories_in_byte_order";
    let Some(first) = first_answer(case, call, browsing, first) else {
        return;
    };
    assert!(first.is_empty(), "{call} of an empty store: {first:?}");
    append_script(&store).await;

    for limit in LIMITS {
        let got = category_pages(&store, None, limit).await;
        assert_eq!(got, CATEGORIES, "categories in pages of {limit}");
    }
    for after in ["", "Order", "order", "order-", "orders", "é", "\u{10FFFF}"] {
        let expected: Vec<&str> = CATEGORIES.into_iter().filter(|c| *c > after).collect();
        for limit in [2, 1000] {
            let got = category_pages(&store, Some(after), limit).await;
            assert_eq!(
                got, expected,
                "categories after {after:?} in pages of {limit}"
            );
        }
    }
    let result = store.categories(None, 0).await;
    assert_invalid_input(result, "categories with limit 0");
}

/// `streams` lists each stream exactly once with its current version, in byte order of
/// the ids, strictly after `after`, of one category when asked, whatever the page
/// size; a limit of 0 is `InvalidInput`. Skipped, visibly, for a store that cannot list
/// streams and may say so.
pub async fn streams_in_byte_order<S: EventStore>(store: S, browsing: Browsing) {
    assert_empty_store(&store).await;
    let call = "streams(ListStreams::all(10))";
    let first = ok(
        call,
        within(call, store.streams(ListStreams::all(10))).await,
    );
    let case = "streams_in_byte_order";
    let Some(first) = first_answer(case, call, browsing, first) else {
        return;
    };
    assert!(first.is_empty(), "{call} of an empty store: {first:?}");
    append_script(&store).await;

    let expected = |keep: &dyn Fn(&str) -> bool| -> Vec<(String, u64)> {
        let kept = STREAMS.iter().filter(|(s, _)| keep(s));
        kept.map(|(s, v)| ((*s).to_owned(), *v)).collect()
    };
    for limit in LIMITS {
        let got = stream_pages(&store, ListStreams::all(limit)).await;
        assert_eq!(got, expected(&|_| true), "streams in pages of {limit}");
    }
    for (stream, version) in STREAMS {
        let stored = version_of(&store, &sid(stream)).await.map(|v| v.0);
        assert_eq!(stored, Some(version), "stream_version({stream}) as listed");
    }
    let categories = [
        "order", "Order", "order_x", "order.x", "", "x", "z", "ord", "order-1",
    ];
    for category in categories {
        let want = expected(&|s| category_of(s) == category);
        for limit in [1, 2, 1000] {
            let list = ListStreams::all(limit).category(category);
            let got = stream_pages(&store, list).await;
            assert_eq!(
                got, want,
                "streams of category {category:?} in pages of {limit}"
            );
        }
    }
    let afters: [(Option<&str>, &str); 5] = [
        (None, "order-1"),
        (None, "orders"),
        (None, "Z"),
        (Some("order"), "order-10"),
        (Some("order"), "order-2"),
    ];
    for (category, after) in afters {
        let in_category = |s: &str| category.is_none_or(|c| category_of(s) == c);
        let want = expected(&|s| in_category(s) && s > after);
        for limit in [2, 1000] {
            let mut list = ListStreams::all(limit).after(sid(after));
            list.category = category.map(str::to_owned);
            let got = stream_pages(&store, list.clone()).await;
            assert_eq!(got, want, "streams of {list:?}, in pages");
        }
    }
    let result = store.streams(ListStreams::all(0)).await;
    assert_invalid_input(result, "streams with limit 0");
    let result = store.streams(ListStreams::all(0).category("order")).await;
    assert_invalid_input(result, "streams of a category with limit 0");
}

/// Every category after `after`, read in pages of `limit`, each page checked.
async fn category_pages<S: EventReader>(
    store: &S,
    after: Option<&str>,
    limit: usize,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut after = after.map(str::to_owned);
    loop {
        let what = format!("categories({after:?}, {limit})");
        let page = ok(
            &what,
            within(&what, store.categories(after.as_deref(), limit)).await,
        );
        let page = answer(&what, page);
        assert!(
            page.len() <= limit,
            "{what} returned {page:?}: over the limit"
        );
        let mut previous = after.as_deref();
        for c in &page {
            let ordered = previous.is_none_or(|p| c.as_str() > p);
            assert!(
                ordered,
                "{what} returned {page:?}: not after {after:?}, in byte order"
            );
            previous = Some(c.as_str());
        }
        let full = page.len() == limit;
        let Some(last) = page.last().cloned() else {
            break;
        };
        out.extend(page);
        assert!(out.len() <= 1000, "{what}: more categories than appended");
        if !full {
            break;
        }
        after = Some(last);
    }
    out
}

/// Every stream of `list` from its `after` on, read in pages of its limit, each page
/// checked, as `(id, version)` pairs.
async fn stream_pages<S: EventReader>(store: &S, mut list: ListStreams) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    loop {
        let what = format!("streams({list:?})");
        let page = answer(
            &what,
            ok(&what, within(&what, store.streams(list.clone())).await),
        );
        assert!(
            page.len() <= list.limit,
            "{what} returned {page:?}: over the limit"
        );
        let mut previous = list.after.clone();
        for s in &page {
            let ordered = previous.as_ref().is_none_or(|p| s.stream_id > *p);
            assert!(
                ordered,
                "{what} returned {page:?}: not after `after`, in byte order"
            );
            assert!(
                list.matches(&s.stream_id),
                "{what} returned {s:?}: not of its category"
            );
            previous = Some(s.stream_id.clone());
        }
        let full = page.len() == list.limit;
        let Some(last) = page.last().map(|s| s.stream_id.clone()) else {
            break;
        };
        out.extend(
            page.into_iter()
                .map(|s| (s.stream_id.to_string(), s.version.0)),
        );
        assert!(out.len() <= 1000, "{what}: more streams than appended");
        if !full {
            break;
        }
        list = list.after(last);
    }
    out
}
