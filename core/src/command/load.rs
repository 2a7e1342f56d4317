//! Loading an aggregate: a snapshot if there is a usable one, then the events after it.

use super::replay::KeyScan;
use super::snapshots::Snapshotting;
use crate::{
    decode_recorded, Aggregate, CommandError, EventReader, Loaded, ReadStream, StreamId, Upcasters,
    Version,
};

/// Events read per page.
const PAGE: usize = 4096;

/// Loads `stream`: a usable snapshot from `snapshots`, then every event after it,
/// upcast and folded. Each event read is also shown to `scan`. The flag is `true` when
/// no snapshot was used, so every event of the stream was read.
pub(super) async fn load<A: Aggregate, S: EventReader>(
    store: &S,
    upcasters: &Upcasters,
    snapshots: Option<&Snapshotting>,
    stream: &StreamId,
    mut scan: Option<&mut KeyScan<'_>>,
) -> Result<(Loaded<A>, bool), CommandError<A::Error>> {
    let snapshot = match snapshots {
        Some(snapshots) => snapshots.load::<A>(stream).await,
        None => None,
    };
    let from_start = snapshot.is_none();
    let (mut state, mut version) = snapshot.map_or((A::default(), None), |(s, v)| (s, Some(v)));
    let mut folded = 0u64;
    loop {
        let from = version.map_or(Version::FIRST, Version::next);
        let page = store
            .read_stream(stream, ReadStream::forward().from(from).limit(PAGE))
            .await?;
        for recorded in &page {
            let event: A::Event = decode_recorded(recorded, upcasters)?;
            state.apply(&event);
            version = Some(recorded.version);
            folded += 1;
            if let Some(scan) = scan.as_deref_mut() {
                scan.see(recorded);
            }
        }
        if page.len() < PAGE {
            break;
        }
    }
    let loaded = Loaded {
        state,
        version,
        events_since_snapshot: folded,
    };
    Ok((loaded, from_start))
}
