//! Per-thread reuse of the scratch lists of hits. A call redacting a small body
//! would otherwise allocate (and free) one or two of them every time: the proxy
//! redacts every logged body, on a few long-lived worker threads, so the lists
//! left by one call serve the next one on the same thread.

use std::cell::Cell;

use crate::rules::Hit;

/// Lists grown past this many hits are freed after use rather than kept, so a
/// thread never holds on to more than a few kilobytes.
const KEEP: usize = 256;

thread_local! {
    /// Taken out for the length of a call, so a nested call (there is none
    /// today) would find empty lists and allocate its own.
    static FREE: Cell<(Vec<Hit>, Vec<Hit>)> = const { Cell::new((Vec::new(), Vec::new())) };
}

/// Two empty lists: the ones kept on this thread, if any.
pub(crate) fn take() -> (Vec<Hit>, Vec<Hit>) {
    // `try_with`: during thread teardown the lists may be gone; allocate then
    FREE.try_with(Cell::take).unwrap_or_default()
}

/// Hands lists back for the next [`take`] on this thread.
pub(crate) fn give(a: Vec<Hit>, b: Vec<Hit>) {
    let keep = |mut v: Vec<Hit>| {
        if v.capacity() > KEEP {
            return Vec::new();
        }
        v.clear();
        v
    };
    let _ = FREE.try_with(|f| f.set((keep(a), keep(b))));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_come_back_empty_and_big_ones_are_not_kept() {
        let (mut a, b) = take();
        a.push(Hit::new(0, 1, 0, false));
        let (cap, ptr) = (a.capacity(), a.as_ptr());
        give(a, b);
        let (a, mut b) = take();
        assert!(a.is_empty());
        assert_eq!((a.capacity(), a.as_ptr()), (cap, ptr));
        b.reserve(KEEP + 1);
        give(a, b);
        let (a, b) = take();
        assert_eq!((a.capacity(), b.capacity()), (cap, 0));
    }
}
