//! An inbox's source-stream positions, read and moved for many lanes at once.
//!
//! Each lane reads a source stream's stored position before its first message and
//! moves it after each one: with a new stream per order, two round trips per message.
//! Lanes queue their reads and moves here instead; whichever finds no round trip under
//! way starts one ([`CheckpointStore::load_all`] and [`CheckpointStore::advance_all`]:
//! one statement each on PostgreSQL) for everything queued, and whatever queues
//! meanwhile goes in the next, so under load one round trip serves many lanes and
//! alone a lane waits for nothing. Each move is still its own compare-and-set, and a
//! lane still waits for its own answer before it acknowledges its message.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tessera_core::{BoxError, Position};
use tokio::sync::oneshot;

use crate::checkpoint::CheckpointStore;

type Reply<T> = oneshot::Sender<Result<T, String>>;

/// What the lanes queued since the last round trip started.
#[derive(Default)]
struct Queued {
    loads: Vec<(String, Reply<Position>)>,
    moves: Vec<((String, Position, Position), Reply<bool>)>,
    /// A round trip is under way (its task takes what queues next, too).
    running: bool,
}

/// The positions of one inbox, in `store`.
pub(super) struct Positions<C> {
    store: C,
    queued: Mutex<Queued>,
}

impl<C: CheckpointStore> Positions<C> {
    pub(super) fn new(store: C) -> Arc<Self> {
        Arc::new(Self {
            store,
            queued: Mutex::default(),
        })
    }

    fn queued(&self) -> MutexGuard<'_, Queued> {
        self.queued.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The stored position of `name`.
    pub(super) async fn load(self: &Arc<Self>, name: &str) -> Result<Position, BoxError> {
        let (reply, answer) = oneshot::channel();
        let start = {
            let mut q = self.queued();
            q.loads.push((name.to_owned(), reply));
            !std::mem::replace(&mut q.running, true)
        };
        self.answer(start, answer).await
    }

    /// Moves `name` from `from` to `to` (a compare-and-set): whether it moved.
    pub(super) async fn advance(
        self: &Arc<Self>,
        name: &str,
        from: Position,
        to: Position,
    ) -> Result<bool, BoxError> {
        let (reply, answer) = oneshot::channel();
        let start = {
            let mut q = self.queued();
            q.moves.push(((name.to_owned(), from, to), reply));
            !std::mem::replace(&mut q.running, true)
        };
        self.answer(start, answer).await
    }

    /// Starts the round trips if `start`, then waits for `answer`.
    async fn answer<T>(
        self: &Arc<Self>,
        start: bool,
        answer: oneshot::Receiver<Result<T, String>>,
    ) -> Result<T, BoxError> {
        if start {
            // A task of its own: a lane dropped while waiting (its inbox stopping) does
            // not leave the others' requests unanswered.
            tokio::spawn(Arc::clone(self).run());
        }
        match answer.await {
            Ok(result) => result.map_err(BoxError::from),
            Err(_) => Err("the inbox's positions task ended without answering".into()),
        }
    }

    /// Round trips until nothing is queued.
    async fn run(self: Arc<Self>) {
        loop {
            let (loads, moves) = {
                let mut q = self.queued();
                if q.loads.is_empty() && q.moves.is_empty() {
                    q.running = false;
                    return;
                }
                (std::mem::take(&mut q.loads), std::mem::take(&mut q.moves))
            };
            if !loads.is_empty() {
                let (names, replies): (Vec<String>, Vec<_>) = loads.into_iter().unzip();
                answer_all(self.store.load_all(&names).await, replies);
            }
            if !moves.is_empty() {
                let (moves, replies): (Vec<_>, Vec<_>) = moves.into_iter().unzip();
                answer_all(self.store.advance_all(&moves).await, replies);
            }
        }
    }
}

/// Sends each reply its answer, or every reply the error.
fn answer_all<T>(result: Result<Vec<T>, BoxError>, replies: Vec<Reply<T>>) {
    match result {
        Ok(answers) if answers.len() == replies.len() => {
            for (reply, answer) in replies.into_iter().zip(answers) {
                let _ = reply.send(Ok(answer));
            }
        }
        Ok(answers) => {
            let error = format!(
                "the checkpoint store answered {} of {} requests",
                answers.len(),
                replies.len()
            );
            for reply in replies {
                let _ = reply.send(Err(error.clone()));
            }
        }
        Err(e) => {
            let error = e.to_string();
            for reply in replies {
                let _ = reply.send(Err(error.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::MemoryCheckpoints;

    /// Memory checkpoints that count the batched calls.
    #[derive(Clone, Default)]
    struct Counted {
        inner: MemoryCheckpoints,
        calls: Arc<AtomicUsize>,
    }

    impl CheckpointStore for Counted {
        async fn load(&self, name: &str) -> Result<Position, BoxError> {
            self.inner.load(name).await
        }

        async fn advance(
            &self,
            name: &str,
            from: Position,
            to: Position,
        ) -> Result<bool, BoxError> {
            self.inner.advance(name, from, to).await
        }

        async fn load_all(&self, names: &[String]) -> Result<Vec<Position>, BoxError> {
            self.calls.fetch_add(1, Ordering::Relaxed);
            tokio::task::yield_now().await;
            self.inner.load_all(names).await
        }

        async fn advance_all(
            &self,
            moves: &[(String, Position, Position)],
        ) -> Result<Vec<bool>, BoxError> {
            self.calls.fetch_add(1, Ordering::Relaxed);
            tokio::task::yield_now().await;
            self.inner.advance_all(moves).await
        }
    }

    /// Many lanes at once share round trips, and each gets its own answer: its stored
    /// position, whether its move happened (a stale `from` does not move).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lanes_share_round_trips_and_each_gets_its_answer() {
        let store = Counted::default();
        let at = |n: u64| Position::new(n, n);
        store
            .inner
            .advance("s-odd", Position::START, at(5))
            .await
            .unwrap();
        let positions = Positions::new(store.clone());
        let lanes: Vec<_> = (0..64u64)
            .map(|i| {
                let positions = Arc::clone(&positions);
                tokio::spawn(async move {
                    let name = format!("s-{i}");
                    let stored = positions.load(&name).await.unwrap();
                    let moved = positions.advance(&name, stored, at(i + 1)).await.unwrap();
                    // A second move from the old position is refused.
                    let again = positions.advance(&name, stored, at(i + 2)).await.unwrap();
                    (stored, moved, again)
                })
            })
            .collect();
        for lane in lanes {
            assert_eq!(lane.await.unwrap(), (Position::START, true, false));
        }
        for i in 0..64u64 {
            assert_eq!(
                store.inner.load(&format!("s-{i}")).await.unwrap(),
                at(i + 1)
            );
        }
        let odd = positions.load("s-odd").await.unwrap();
        assert_eq!(odd, at(5));
        let calls = store.calls.load(Ordering::Relaxed);
        assert!(
            calls <= 64,
            "{calls} round trips for 192 requests (one each without sharing)"
        );
    }
}
