//! When a registered resource is loaded before anyone asks for it.

use serde::Serialize;
use std::fmt;
use std::time::Duration;

/// A preload strategy of a resource in a [`crate::LazyRegistry`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "strategy", content = "param", rename_all = "snake_case")]
pub enum Preload {
    /// Loaded when registered.
    Eager,
    /// Loaded when the registry's idle detector says the service is idle.
    Idle,
    /// Loaded this long after registration.
    Delay(#[serde(serialize_with = "crate::state::secs")] Duration),
    /// Loaded when the application fires this named signal (`"interaction"`, `"visible"`).
    OnSignal(String),
    /// Not preloaded: loaded by the first `get`.
    OnFirstUse,
}

impl Preload {
    /// A signal strategy.
    pub fn on_signal(name: impl Into<String>) -> Self {
        Preload::OnSignal(name.into())
    }
}

impl fmt::Display for Preload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Preload::Eager => f.write_str("eager"),
            Preload::Idle => f.write_str("idle"),
            Preload::Delay(d) => write!(f, "delay {}", perfkit_core::units::format_duration(*d)),
            Preload::OnSignal(name) => write!(f, "on signal {name:?}"),
            Preload::OnFirstUse => f.write_str("on first use"),
        }
    }
}
