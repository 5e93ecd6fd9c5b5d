//! The byte format of keys and values in the disk and Redis tiers: compact (postcard, a
//! serde format with varints and no field names), versioned and checksummed.
//!
//! A key is `[version] ++ postcard(key)`: bumping the version makes every old entry a miss
//! rather than a misread.
//!
//! A value record is
//!
//! ```text
//! offset  size  field
//! 0       1     magic 0xC7
//! 1       1     format version (1)
//! 2       8     expiry, unix milliseconds, little endian (0 = never)
//! 10      n     postcard(value)
//! 10+n    4     CRC-32 (IEEE) of bytes 0..10+n, little endian
//! ```
//!
//! A record that is too short, has another magic or version, or whose checksum does not
//! match is rejected with a [`CodecError`]; the tiers drop such entries and count them.

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The first byte of every value record.
pub const MAGIC: u8 = 0xC7;
/// The current format version (of keys and value records).
pub const FORMAT_VERSION: u8 = 1;
/// Bytes of a value record besides the payload (header and checksum).
pub const RECORD_OVERHEAD: usize = 14;
const HEADER: usize = 10;

/// Why bytes could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// Fewer bytes than a record's header and checksum.
    #[error("record too short: {0} bytes")]
    TooShort(usize),
    /// The first byte is not [`MAGIC`].
    #[error("not a perfkit cache record (magic byte {0:#04x})")]
    BadMagic(u8),
    /// A format version this build does not read.
    #[error("unsupported cache record version {0} (this build reads version {FORMAT_VERSION})")]
    UnsupportedVersion(u8),
    /// The stored checksum does not match the record's bytes.
    #[error("checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    Checksum {
        /// The checksum stored in the record.
        stored: u32,
        /// The checksum of the bytes read.
        computed: u32,
    },
    /// The payload decoded with bytes left over: it holds another type.
    #[error("{0} bytes left over after the value: the record holds another type")]
    TrailingBytes(usize),
    /// serde (postcard) failed.
    #[error("serialization failed")]
    Serde(#[from] postcard::Error),
}

/// Encodes a key: the format version, then the key in postcard.
pub fn encode_key<K: Serialize + ?Sized>(key: &K) -> Result<Vec<u8>, CodecError> {
    Ok(postcard::to_extend(key, vec![FORMAT_VERSION])?)
}

/// Decodes a key written by [`encode_key`].
pub fn decode_key<K: DeserializeOwned>(bytes: &[u8]) -> Result<K, CodecError> {
    match bytes.first() {
        None => Err(CodecError::TooShort(0)),
        Some(&FORMAT_VERSION) => Ok(postcard::from_bytes(&bytes[1..])?),
        Some(&v) => Err(CodecError::UnsupportedVersion(v)),
    }
}

/// A value record's expiry as unix milliseconds (0 = never).
pub fn expiry_millis(expires_at: Option<SystemTime>) -> u64 {
    expires_at
        .map(|t| {
            t.duration_since(UNIX_EPOCH).map_or(1, |d| {
                u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
            })
        })
        .unwrap_or(0)
}

/// The expiry encoded by [`expiry_millis`].
pub fn expiry_from_millis(millis: u64) -> Option<SystemTime> {
    (millis != 0).then(|| UNIX_EPOCH + Duration::from_millis(millis))
}

/// Encodes a value record with its expiry.
pub fn encode_value<V: Serialize + ?Sized>(
    value: &V,
    expires_at: Option<SystemTime>,
) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(64);
    out.push(MAGIC);
    out.push(FORMAT_VERSION);
    out.extend_from_slice(&expiry_millis(expires_at).to_le_bytes());
    let mut out = postcard::to_extend(value, out)?;
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// A value record's header and payload, after its checksum was verified.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// When the value expires (`None`: never).
    pub expires_at: Option<SystemTime>,
    /// The postcard payload.
    pub payload: &'a [u8],
}

impl Record<'_> {
    /// Whether the value has expired at `now`.
    pub fn expired_at(&self, now: SystemTime) -> bool {
        self.expires_at.is_some_and(|t| t <= now)
    }

    /// Time left before expiry at `now` (`None`: never expires).
    pub fn ttl_left(&self, now: SystemTime) -> Option<Duration> {
        self.expires_at
            .map(|t| t.duration_since(now).unwrap_or(Duration::ZERO))
    }

    /// Deserializes the payload, which must be consumed exactly (trailing bytes mean the
    /// record holds another type).
    pub fn decode<V: DeserializeOwned>(&self) -> Result<V, CodecError> {
        let (value, rest) = postcard::take_from_bytes(self.payload)?;
        if rest.is_empty() {
            Ok(value)
        } else {
            Err(CodecError::TrailingBytes(rest.len()))
        }
    }
}

/// Verifies a value record (magic, version, checksum) and splits it.
pub fn open_record(bytes: &[u8]) -> Result<Record<'_>, CodecError> {
    if bytes.len() < RECORD_OVERHEAD {
        return Err(CodecError::TooShort(bytes.len()));
    }
    if bytes[0] != MAGIC {
        return Err(CodecError::BadMagic(bytes[0]));
    }
    if bytes[1] != FORMAT_VERSION {
        return Err(CodecError::UnsupportedVersion(bytes[1]));
    }
    let (body, tail) = bytes.split_at(bytes.len() - 4);
    let mut stored = [0u8; 4];
    stored.copy_from_slice(tail);
    let stored = u32::from_le_bytes(stored);
    let computed = crc32fast::hash(body);
    if stored != computed {
        return Err(CodecError::Checksum { stored, computed });
    }
    let mut millis = [0u8; 8];
    millis.copy_from_slice(&body[2..HEADER]);
    Ok(Record {
        expires_at: expiry_from_millis(u64::from_le_bytes(millis)),
        payload: &body[HEADER..],
    })
}

/// Decodes a whole value record: checks it, then deserializes the payload.
pub fn decode_value<V: DeserializeOwned>(
    bytes: &[u8],
) -> Result<(V, Option<SystemTime>), CodecError> {
    let record = open_record(bytes)?;
    Ok((record.decode()?, record.expires_at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_with_expiry() {
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        let bytes = encode_value(&("hello".to_owned(), 42u32), Some(t)).unwrap();
        let ((s, n), exp): ((String, u32), _) = decode_value(&bytes).unwrap();
        assert_eq!((s.as_str(), n, exp), ("hello", 42, Some(t)));
        let bytes = encode_value(&7u8, None).unwrap();
        assert_eq!(bytes.len(), RECORD_OVERHEAD + 1, "compact");
        assert_eq!(decode_value::<u8>(&bytes).unwrap(), (7, None));
        let bytes = encode_value(&"abc", None).unwrap();
        assert!(matches!(
            decode_value::<u64>(&bytes),
            Err(CodecError::TrailingBytes(3))
        ));
    }

    #[test]
    fn keys_round_trip_and_carry_the_version() {
        let k = encode_key(&(3u64, "user")).unwrap();
        assert_eq!(k[0], FORMAT_VERSION);
        assert_eq!(decode_key::<(u64, String)>(&k).unwrap(), (3, "user".into()));
        let mut old = k.clone();
        old[0] = 0;
        assert!(matches!(
            decode_key::<(u64, String)>(&old),
            Err(CodecError::UnsupportedVersion(0))
        ));
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let bytes = encode_value(&vec![1u32, 2, 3, 400_000], None).unwrap();
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut bad = bytes.clone();
                bad[i] ^= 1 << bit;
                assert!(
                    decode_value::<Vec<u32>>(&bad).is_err(),
                    "byte {i} bit {bit}"
                );
            }
        }
        for len in 0..bytes.len() {
            assert!(
                decode_value::<Vec<u32>>(&bytes[..len]).is_err(),
                "truncated to {len}"
            );
        }
    }

    #[test]
    fn expiry_and_ttl_left() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        let bytes = encode_value(&1u8, Some(now + Duration::from_secs(5))).unwrap();
        let rec = open_record(&bytes).unwrap();
        assert!(!rec.expired_at(now));
        assert_eq!(rec.ttl_left(now), Some(Duration::from_secs(5)));
        assert!(rec.expired_at(now + Duration::from_secs(5)));
    }
}
