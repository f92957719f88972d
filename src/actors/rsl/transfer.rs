//! State transfer of any size: a replica that fell behind what a quorum executed (so the
//! decisions it misses may be truncated everywhere) fetches the executor's state instead.
//!
//! IronRSL sends the app state and the reply cache in one message, which stops for good once
//! they outgrow one datagram (a reply-cache entry per client ever seen; here the session table
//! is bounded, but its bound may still be far above one datagram). Here the supplier
//! encodes the snapshot (postcard, deterministic), cuts it into chunks of
//! `Params::state_chunk_bytes`, and sends them all, each stamped with the slot count, the chunk
//! count and a BLAKE3 digest of the whole encoding. The receiver collects the chunks of one
//! snapshot (keeping them across its repeated requests, so a transfer resumes where losses left
//! it), and installs the state only when every chunk is in, the digest matches and the encoding
//! decodes; a snapshot of a later slot replaces a partial one of an earlier slot.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::app::App;
use super::sessions::ClientSessions;
use super::types::{OpNum, Sessions};

/// The most chunks one snapshot may have (64 GiB at the largest chunk size): a transfer claiming
/// more is ignored.
const MAX_CHUNKS: u32 = 1 << 20;

/// What a snapshot carries, as decoded: the executor's app state and session table after `opn`
/// slots (encoded from references, so the supplier copies neither).
type Snapshot<A> = (<A as App>::State, ClientSessions<<A as App>::Reply>);

/// One chunk of a snapshot, as it travels in `RslMsg::AppStateChunk`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Chunk {
    /// Slots executed to produce the snapshot.
    pub opn: OpNum,
    /// BLAKE3 digest of the whole encoded snapshot.
    pub digest: [u8; 32],
    /// How many chunks the snapshot has.
    pub total: u32,
    /// This chunk's position, from 0.
    pub index: u32,
    /// Its bytes.
    pub bytes: Arc<Vec<u8>>,
}

/// The chunks of the snapshot after `opn` slots, `chunk_bytes` bytes each (at least one chunk,
/// even for an empty encoding).
pub fn chunks<A: App>(
    opn: OpNum,
    app_state: &A::State,
    sessions: &ClientSessions<A::Reply>,
    chunk_bytes: usize,
) -> Vec<Chunk> {
    let bytes = postcard::to_allocvec(&(app_state, sessions)).expect("an app state always encodes");
    let digest = *blake3::hash(&bytes).as_bytes();
    let pieces: Vec<&[u8]> = if bytes.is_empty() {
        vec![&[][..]]
    } else {
        bytes.chunks(chunk_bytes.max(1)).collect()
    };
    let total = u32::try_from(pieces.len()).expect("fewer than 2^32 chunks");
    pieces
        .into_iter()
        .enumerate()
        .map(|(i, p)| Chunk {
            opn,
            digest,
            total,
            index: i as u32,
            bytes: Arc::new(p.to_vec()),
        })
        .collect()
}

/// A snapshot being received.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Transfer {
    /// The snapshot's slot count.
    pub opn: OpNum,
    /// Its digest.
    pub digest: [u8; 32],
    /// How many chunks it has.
    pub total: u32,
    /// The chunks received so far, by index.
    pub received: BTreeMap<u32, Arc<Vec<u8>>>,
}

/// A complete, verified snapshot, ready to install.
pub(crate) struct Installed<A: App> {
    pub(crate) opn: OpNum,
    pub(crate) app_state: Arc<A::State>,
    pub(crate) sessions: Sessions<A>,
}

/// Takes `chunk` into `transfer` for a replica that executed `ops_complete` slots. Returns the
/// snapshot once it is complete and verified (and clears the transfer); ignores a chunk of a
/// snapshot no later than what the replica has, a malformed chunk, and a chunk of an earlier
/// snapshot than the one being received.
pub(crate) fn receive<A: App>(
    transfer: &mut Option<Transfer>,
    ops_complete: OpNum,
    chunk: Chunk,
) -> Option<Installed<A>> {
    if chunk.opn <= ops_complete
        || chunk.total == 0
        || chunk.total > MAX_CHUNKS
        || chunk.index >= chunk.total
    {
        return None;
    }
    let same =
        |t: &Transfer| t.opn == chunk.opn && t.digest == chunk.digest && t.total == chunk.total;
    match transfer {
        Some(t) if same(t) => {}
        Some(t) if t.opn > chunk.opn => return None,
        _ => {
            *transfer = Some(Transfer {
                opn: chunk.opn,
                digest: chunk.digest,
                total: chunk.total,
                received: BTreeMap::new(),
            })
        }
    }
    let t = transfer.as_mut().expect("set above");
    t.received.insert(chunk.index, chunk.bytes);
    if t.received.len() < t.total as usize {
        return None;
    }
    let done = transfer.take().expect("set above");
    let bytes: Vec<u8> = done
        .received
        .values()
        .flat_map(|b| b.iter().copied())
        .collect();
    if *blake3::hash(&bytes).as_bytes() != done.digest {
        return None;
    }
    let (app_state, sessions): Snapshot<A> = postcard::from_bytes(&bytes).ok()?;
    Some(Installed {
        opn: done.opn,
        app_state: Arc::new(app_state),
        sessions: Arc::new(sessions),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actors::rsl::app::Counter;
    use proptest::prelude::*;
    use stateright::actor::Id;

    fn cache(n: usize) -> ClientSessions<u64> {
        let mut t = ClientSessions::default();
        for i in 0..n {
            t.record(Id::from(i), i as u64 + 1, i as u64, 30);
        }
        t
    }

    proptest! {
        /// Chunks delivered in any order, with duplicates and chunks of an earlier snapshot mixed
        /// in, rebuild exactly the snapshot; until the last one arrives nothing is installed.
        #[test]
        fn chunks_in_any_order_rebuild_the_snapshot(
            clients in 0usize..40,
            chunk_bytes in 1usize..64,
            order in proptest::collection::vec(any::<proptest::sample::Index>(), 0..200),
        ) {
            let all = chunks::<Counter>(9, &41, &cache(clients), chunk_bytes);
            let old = chunks::<Counter>(3, &7, &cache(1), chunk_bytes);
            let mut t = None;
            // The later snapshot's first chunk starts the transfer; the earlier snapshot's
            // chunks, mixed in afterwards, are ignored.
            let mut feed = vec![all[0].clone()];
            feed.extend(order.iter().map(|i| all[i.index(all.len())].clone()));
            feed.extend(old.iter().cloned());
            feed.extend(all.iter().cloned());
            let mut installed = None;
            for c in feed {
                if let Some(done) = receive::<Counter>(&mut t, 0, c) {
                    installed = Some(done);
                    break;
                }
            }
            let done = installed.expect("every chunk was delivered");
            prop_assert_eq!(done.opn, 9);
            prop_assert_eq!(*done.app_state, 41);
            prop_assert_eq!(&*done.sessions, &cache(clients));
        }

        /// A damaged chunk (another chunk's bytes in its place) is never installed.
        #[test]
        fn a_damaged_snapshot_is_refused(clients in 1usize..40, flip in any::<proptest::sample::Index>()) {
            let mut all = chunks::<Counter>(9, &41, &cache(clients), 4);
            let i = flip.index(all.len());
            let mut b = (*all[i].bytes).clone();
            b[0] ^= 1;
            all[i].bytes = Arc::new(b);
            let mut t = None;
            for c in all {
                prop_assert!(receive::<Counter>(&mut t, 0, c).is_none());
            }
        }
    }

    #[test]
    fn a_snapshot_no_later_than_the_replica_is_ignored() {
        let all = chunks::<Counter>(5, &5, &cache(2), 1_000);
        let mut t = None;
        assert!(receive::<Counter>(&mut t, 5, all[0].clone()).is_none());
        assert!(t.is_none());
    }
}
