//! The bell: wakes connection tasks when the server stops, and idle
//! client connections on every tick so that they can check their deadline
//! (which they count in ticks); at the connection cap it asks the
//! longest-idle keep-alive connection to close, to make room for a new one.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Mutex, PoisonError};
use std::task::Waker;

use tokio::sync::Notify;

/// Wakes connection tasks when the server stops, and idle client
/// connections on every tick so that they can check their deadline (which
/// they count in ticks). Busy connections wait on the `Notify`; idle ones
/// park their waker in a shared list, which costs them a 4-byte slot
/// number instead of a timer or a `Notified` (64 bytes) of their own.
#[derive(Default)]
pub(super) struct Bell {
    stopping: AtomicBool,
    rings: AtomicU32,
    notify: Notify,
    idle: Mutex<Parked>,
}

/// Idle connections; a free slot is `None` and listed in `free`.
#[derive(Default)]
struct Parked {
    entries: Vec<Option<Entry>>,
    free: Vec<u32>,
}

/// One idle connection: its waker, the ring at which its idle wait ends
/// (the smallest is the longest idle), and whether it was asked to close.
struct Entry {
    waker: Waker,
    until: u32,
    evicted: bool,
}

/// A connection's place in [`Parked`]: its index plus one.
pub(super) type Slot = NonZeroU32;

impl Bell {
    pub(super) fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
        self.wake_idle();
    }

    pub(super) fn ring(&self) {
        self.rings.fetch_add(1, Ordering::SeqCst);
        self.wake_idle();
    }

    pub(super) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Rings so far.
    pub(super) fn rings(&self) -> u32 {
        self.rings.load(Ordering::SeqCst)
    }

    fn wake_idle(&self) {
        let parked = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        for entry in parked.entries.iter().flatten() {
            entry.waker.wake_by_ref();
        }
    }

    /// Keep `waker` to be woken on the next ring, stop or eviction, in
    /// `slot` (taken on the first call); `until` is the ring at which its
    /// idle wait ends.
    pub(super) fn park(&self, slot: &mut Option<Slot>, waker: &Waker, until: u32) {
        let mut parked = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let parked = &mut *parked;
        if let Some(Some(kept)) = slot.and_then(|s| parked.entries.get_mut(index(s))) {
            if !kept.waker.will_wake(waker) {
                kept.waker = waker.clone();
            }
            return;
        }
        let at = match parked.free.pop() {
            Some(at) => at,
            None => {
                parked.entries.push(None);
                u32::try_from(parked.entries.len() - 1).unwrap_or(u32::MAX)
            }
        };
        if let Some(kept) = parked.entries.get_mut(at as usize) {
            *kept = Some(Entry {
                waker: waker.clone(),
                until,
                evicted: false,
            });
            *slot = Slot::new(at.saturating_add(1));
        }
    }

    /// Give `slot` back: its connection is no longer idle.
    pub(super) fn unpark(&self, slot: &mut Option<Slot>) {
        let Some(s) = slot.take() else { return };
        let mut parked = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(kept) = parked.entries.get_mut(index(s)) {
            *kept = None;
            parked.free.push(s.get() - 1);
        }
    }

    /// Whether the connection in `slot` was asked to close.
    pub(super) fn is_evicted(&self, slot: Option<Slot>) -> bool {
        let Some(s) = slot else { return false };
        let parked = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        matches!(parked.entries.get(index(s)), Some(Some(e)) if e.evicted)
    }

    /// Ask the longest-idle keep-alive connection not yet asked to close;
    /// false when there is none.
    pub(super) fn evict_longest_idle(&self) -> bool {
        let mut parked = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let oldest = parked
            .entries
            .iter_mut()
            .flatten()
            .filter(|e| !e.evicted)
            .min_by_key(|e| e.until);
        match oldest {
            Some(entry) => {
                entry.evicted = true;
                entry.waker.wake_by_ref();
                true
            }
            None => false,
        }
    }

    /// Completes once the server stops.
    pub(super) async fn stopped(&self) {
        loop {
            // Created before the flag is read: a stop in between still
            // completes it.
            let rung = self.notify.notified();
            if self.is_stopping() {
                return;
            }
            rung.await;
        }
    }
}

fn index(slot: Slot) -> usize {
    (slot.get() - 1) as usize
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    use super::*;

    /// A waker that counts its wakes.
    #[derive(Default)]
    struct Counter(AtomicUsize);

    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counter() -> (Arc<Counter>, Waker) {
        let c = Arc::new(Counter::default());
        (Arc::clone(&c), Waker::from(c))
    }

    fn wakes(c: &Counter) -> usize {
        c.0.load(Ordering::SeqCst)
    }

    #[test]
    fn parked_wakers_are_woken_by_rings_and_stop_until_unparked() {
        let bell = Bell::default();
        let (a, a_waker) = counter();
        let (b, b_waker) = counter();
        let (mut a_slot, mut b_slot) = (None, None);
        bell.park(&mut a_slot, &a_waker, 10);
        bell.park(&mut b_slot, &b_waker, 20);
        // Parking again with the same waker keeps the slot.
        let kept = a_slot;
        bell.park(&mut a_slot, &a_waker, 10);
        assert_eq!(a_slot, kept);
        bell.ring();
        assert_eq!((wakes(&a), wakes(&b), bell.rings()), (1, 1, 1));

        bell.unpark(&mut a_slot);
        assert_eq!(a_slot, None);
        bell.ring();
        assert_eq!((wakes(&a), wakes(&b)), (1, 2));

        // A freed slot is reused rather than the list growing.
        let (c, c_waker) = counter();
        let mut c_slot = None;
        bell.park(&mut c_slot, &c_waker, 30);
        assert_eq!(c_slot, kept);
        assert_eq!(bell.idle.lock().expect("lock").entries.len(), 2);

        bell.stop();
        assert!(bell.is_stopping());
        assert_eq!((wakes(&a), wakes(&b), wakes(&c)), (1, 3, 1));
        assert_eq!(bell.rings(), 2, "a stop is not a ring");
        bell.unpark(&mut b_slot);
        bell.unpark(&mut c_slot);
        assert!(bell.idle.lock().expect("lock").entries.iter().all(Option::is_none));
    }

    #[test]
    fn eviction_picks_the_longest_idle_once() {
        let bell = Bell::default();
        let (a, a_waker) = counter();
        let (_b, b_waker) = counter();
        let (mut a_slot, mut b_slot) = (None, None);
        bell.park(&mut b_slot, &b_waker, 50);
        bell.park(&mut a_slot, &a_waker, 20);
        assert!(bell.evict_longest_idle());
        assert!(
            bell.is_evicted(a_slot),
            "a's idle wait ends first: it has waited longest"
        );
        assert!(!bell.is_evicted(b_slot));
        assert_eq!(wakes(&a), 1, "woken to close");
        assert!(bell.evict_longest_idle());
        assert!(bell.is_evicted(b_slot));
        assert!(!bell.evict_longest_idle(), "nobody left to ask");
        bell.unpark(&mut a_slot);
        bell.unpark(&mut b_slot);
    }
}
