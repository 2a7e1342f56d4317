//! Commands handled by this process's command inboxes, for a dispatcher that waits for
//! them to land.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use uuid::Uuid;

/// Handled messages not waited for that are remembered (a dispatcher that gave up
/// waiting and dispatches again finds them); past this, they are forgotten.
const REMEMBERED: usize = 10_000;

/// Which command messages the owners in this process have handled, by message id.
/// Clones share it.
#[derive(Clone, Default)]
pub struct Handled {
    slots: Arc<Mutex<HashMap<Uuid, Slot>>>,
}

enum Slot {
    /// A dispatcher waits for it.
    Waiting(Arc<Notify>),
    /// Handled with no one waiting (yet).
    Done,
}

/// A dispatcher's wait for one message: made before the message is published, so its
/// handling cannot come unseen in between.
pub struct Wait {
    handled: Handled,
    id: Uuid,
    notify: Option<Arc<Notify>>,
}

impl Handled {
    /// A tracker with nothing handled.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Uuid, Slot>> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Message `id` was handled (its effect or its refusal is written).
    pub fn done(&self, id: Uuid) {
        let mut slots = self.lock();
        match slots.entry(id) {
            Entry::Occupied(o) => {
                if let Slot::Waiting(notify) = o.remove() {
                    notify.notify_one();
                }
            }
            Entry::Vacant(v) => {
                v.insert(Slot::Done);
            }
        }
        if slots.len() > REMEMBERED {
            slots.retain(|_, s| matches!(s, Slot::Waiting(_)));
        }
    }

    /// Starts waiting for message `id`.
    pub fn expect(&self, id: Uuid) -> Wait {
        let mut slots = self.lock();
        let notify = match slots.remove(&id) {
            Some(Slot::Done) => None,
            Some(Slot::Waiting(notify)) => Some(notify),
            None => Some(Arc::new(Notify::new())),
        };
        if let Some(n) = &notify {
            slots.insert(id, Slot::Waiting(Arc::clone(n)));
        }
        Wait {
            handled: self.clone(),
            id,
            notify,
        }
    }
}

impl Wait {
    /// Waits until the message is handled, `within` at most: whether it was.
    pub async fn until_handled(mut self, within: Duration) -> bool {
        let Some(notify) = self.notify.take() else {
            return true;
        };
        let handled = tokio::time::timeout(within, notify.notified())
            .await
            .is_ok();
        if !handled {
            self.give_up();
        }
        handled
    }

    fn give_up(&self) {
        let mut slots = self.handled.lock();
        if matches!(slots.get(&self.id), Some(Slot::Waiting(_))) {
            slots.remove(&self.id);
        }
    }
}

impl Drop for Wait {
    /// A wait dropped unfinished (its publish failed, its dispatch was cut off) leaves
    /// no one waiting behind.
    fn drop(&mut self) {
        if self.notify.is_some() {
            self.give_up();
        }
    }
}
