//! The bundler-neutral description of a build that every reader produces and the
//! analysis consumes.

use crate::model::Format;
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};
use std::fmt;
use std::path::PathBuf;

/// A build as read from the bundler's output, before measuring.
#[derive(Debug, Clone)]
pub(crate) struct Build {
    pub(crate) format: Format,
    pub(crate) assets: Vec<BuildAsset>,
    pub(crate) chunks: Vec<BuildChunk>,
    pub(crate) modules: Vec<BuildModule>,
    pub(crate) entries: Vec<BuildEntry>,
    pub(crate) warnings: Vec<String>,
    /// Modules are not listed by the bundler: they are the sources of the source maps.
    pub(crate) modules_from_maps: bool,
    /// The bundler gives every module's output bytes (a module absent from an output has 0).
    pub(crate) outputs_from_bundler: bool,
}

impl Build {
    pub(crate) fn new(format: Format) -> Build {
        Build {
            format,
            assets: Vec::new(),
            chunks: Vec::new(),
            modules: Vec::new(),
            entries: Vec::new(),
            warnings: Vec::new(),
            modules_from_maps: false,
            outputs_from_bundler: false,
        }
    }
}

/// An emitted file and where it is on disk, if found.
#[derive(Debug, Clone)]
pub(crate) struct BuildAsset {
    pub(crate) name: String,
    pub(crate) path: Option<PathBuf>,
    /// The size the bundler reported, used when the file is missing.
    pub(crate) size_hint: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct BuildChunk {
    pub(crate) id: String,
    pub(crate) names: Vec<String>,
    pub(crate) initial: bool,
    pub(crate) files: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct BuildModule {
    pub(crate) name: String,
    pub(crate) chunks: Vec<String>,
    pub(crate) stat_size: u64,
    /// Output bytes per asset as the bundler reports them (esbuild's `bytesInOutput`).
    pub(crate) output: Vec<(String, u64)>,
    /// Whether the module is an ES module.
    pub(crate) esm: bool,
    pub(crate) provided: ExportsInfo,
    pub(crate) used: ExportsInfo,
}

#[derive(Debug, Clone)]
pub(crate) struct BuildEntry {
    pub(crate) name: String,
    pub(crate) chunks: Vec<String>,
}

/// What a stats file says about a module's exports: unknown, all of them, or how many.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum ExportsInfo {
    #[default]
    Unknown,
    All,
    Count(usize),
}

impl<'de> Deserialize<'de> for ExportsInfo {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ExportsInfo;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a boolean, null or a list of export names")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<ExportsInfo, E> {
                Ok(if v {
                    ExportsInfo::All
                } else {
                    ExportsInfo::Count(0)
                })
            }
            fn visit_unit<E: de::Error>(self) -> Result<ExportsInfo, E> {
                Ok(ExportsInfo::Unknown)
            }
            fn visit_none<E: de::Error>(self) -> Result<ExportsInfo, E> {
                Ok(ExportsInfo::Unknown)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ExportsInfo, A::Error> {
                let mut n = 0usize;
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    n += 1;
                }
                Ok(ExportsInfo::Count(n))
            }
        }
        d.deserialize_any(V)
    }
}

/// A chunk id, number or string, read as a string.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Id(pub(crate) String);

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Id;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a chunk id (number or string)")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Id, E> {
                Ok(Id(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Id, E> {
                Ok(Id(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Id, E> {
                Ok(Id(v.to_string()))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Id, E> {
                Ok(Id(v.to_owned()))
            }
        }
        d.deserialize_any(V)
    }
}

/// A byte count that tolerates floats and negative numbers (clamped, as a warning-free
/// reading of sloppy producers) but not other types.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Bytes(pub(crate) u64);

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Bytes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte count")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Bytes, E> {
                Ok(Bytes(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Bytes, E> {
                Ok(Bytes(v.max(0) as u64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Bytes, E> {
                if (0.0..9.0e18).contains(&v) {
                    Ok(Bytes(v as u64))
                } else {
                    Err(E::custom(format!("byte count {v} out of range")))
                }
            }
            fn visit_unit<E: de::Error>(self) -> Result<Bytes, E> {
                Ok(Bytes(0))
            }
        }
        d.deserialize_any(V)
    }
}
