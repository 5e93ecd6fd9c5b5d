//! Callback lists that isolate their members.
//!
//! Components notify applications through callbacks (`Fn(&Event) + Send + Sync`). A
//! callback that panics must not take the component down with it: [`Callbacks::emit`]
//! catches the panic, logs it with `tracing` and goes on with the next callback.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, RwLock};

/// A boxed callback receiving events of type `E`.
pub type Callback<E> = Arc<dyn Fn(&E) + Send + Sync + 'static>;

/// A list of callbacks. Cheap to clone (clones share the list).
///
/// ```
/// use perfkit_core::Callbacks;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
///
/// let seen = Arc::new(AtomicUsize::new(0));
/// let callbacks: Callbacks<u32> = Callbacks::new();
/// let s = seen.clone();
/// callbacks.register(move |n| { s.fetch_add(*n as usize, Ordering::SeqCst); });
/// callbacks.register(|_| panic!("a broken callback"));
/// let failed = callbacks.emit(&5);
/// assert_eq!(failed, 1);
/// assert_eq!(seen.load(Ordering::SeqCst), 5);
/// ```
pub struct Callbacks<E> {
    list: Arc<RwLock<Vec<Callback<E>>>>,
}

impl<E> Callbacks<E> {
    /// An empty list.
    pub fn new() -> Self {
        Callbacks {
            list: Arc::new(RwLock::new(Vec::new())),
        }
    }

    /// Adds a callback.
    pub fn register(&self, f: impl Fn(&E) + Send + Sync + 'static) {
        self.list
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::new(f));
    }

    /// Number of registered callbacks.
    pub fn len(&self) -> usize {
        self.list.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether no callback is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Calls every callback with `event`, isolating panics. Returns how many panicked.
    ///
    /// The list is copied before the calls, so a callback may register another one
    /// without deadlocking.
    pub fn emit(&self, event: &E) -> usize {
        let snapshot: Vec<Callback<E>> =
            self.list.read().unwrap_or_else(|e| e.into_inner()).clone();
        let mut failed = 0;
        for callback in snapshot {
            if catch_unwind(AssertUnwindSafe(|| callback(event))).is_err() {
                failed += 1;
                tracing::error!(target: "perfkit", "a perfkit callback panicked; it was isolated and skipped");
            }
        }
        failed
    }
}

impl<E> Clone for Callbacks<E> {
    fn clone(&self) -> Self {
        Callbacks {
            list: Arc::clone(&self.list),
        }
    }
}

impl<E> Default for Callbacks<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> fmt::Debug for Callbacks<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Callbacks")
            .field("len", &self.len())
            .finish()
    }
}
