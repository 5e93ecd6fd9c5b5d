//! Single flight: one load per key at a time, the other callers waiting for its value.

use std::hash::{BuildHasher, Hash};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::task::{Poll, Waker};

use super::MemoryCache;

/// A load in progress for one key (single flight).
pub(super) struct Flight<V> {
    pub(super) state: Mutex<FlightState<V>>,
    pub(super) cv: Condvar,
}

pub(super) struct FlightState<V> {
    pub(super) done: bool,
    pub(super) value: Option<V>,
    pub(super) wakers: Vec<Waker>,
}

impl<V: Clone> Flight<V> {
    pub(super) fn new() -> Self {
        Flight {
            state: Mutex::new(FlightState {
                done: false,
                value: None,
                wakers: Vec::new(),
            }),
            cv: Condvar::new(),
        }
    }

    pub(super) fn finish(&self, value: Option<V>) {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        st.done = true;
        st.value = value;
        for w in st.wakers.drain(..) {
            w.wake();
        }
        drop(st);
        self.cv.notify_all();
    }

    pub(super) fn wait(&self) -> Option<V> {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        while !st.done {
            st = self.cv.wait(st).unwrap_or_else(PoisonError::into_inner);
        }
        st.value.clone()
    }

    pub(super) async fn wait_async(&self) -> Option<V> {
        std::future::poll_fn(|cx| {
            let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            if st.done {
                Poll::Ready(st.value.clone())
            } else {
                if !st.wakers.iter().any(|w| w.will_wake(cx.waker())) {
                    st.wakers.push(cx.waker().clone());
                }
                Poll::Pending
            }
        })
        .await
    }
}

/// Ends a flight: on completion stores the value; on drop without completion (panic,
/// cancelled future) releases the key so a waiting caller loads instead.
pub(super) struct FlightGuard<'a, K, V, S>
where
    K: Hash + Eq + Send + 'static,
    V: Clone + Send + 'static,
    S: BuildHasher,
{
    pub(super) cache: &'a MemoryCache<K, V, S>,
    pub(super) h: u64,
    pub(super) flight: Arc<Flight<V>>,
    pub(super) done: bool,
}

impl<K, V, S> FlightGuard<'_, K, V, S>
where
    K: Hash + Eq + Send + 'static,
    V: Clone + Send + 'static,
    S: BuildHasher,
{
    pub(super) fn complete(&mut self, key: K, value: V) {
        let shard = self.cache.shard(self.h);
        {
            let mut core = shard.lock();
            core.loading.remove(&self.h);
            self.cache
                .insert_locked(&mut core, self.h, key, value.clone());
        }
        self.done = true;
        self.flight.finish(Some(value));
    }
}

impl<K, V, S> Drop for FlightGuard<'_, K, V, S>
where
    K: Hash + Eq + Send + 'static,
    V: Clone + Send + 'static,
    S: BuildHasher,
{
    fn drop(&mut self) {
        if !self.done {
            let shard = self.cache.shard(self.h);
            shard.lock().loading.remove(&self.h);
            self.flight.finish(None);
        }
    }
}
