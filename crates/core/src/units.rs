//! Byte sizes, rates and durations, parsed from and formatted for humans.
//!
//! Parsing accepts what people type on a command line:
//!
//! | input | meaning |
//! |---|---|
//! | `1024`, `1024B` | bytes |
//! | `10kB`, `10MB`, `2GB`, `1TB` | decimal multiples (1000ⁿ), as in SI |
//! | `512KiB`, `512MiB`, `2GiB`, `1TiB` | binary multiples (1024ⁿ) |
//! | `512K`, `512M`, `2G` | binary multiples, as `ulimit`, Docker and the JVM read them |
//! | `1.5GiB` | fractions are allowed and rounded to the nearest byte |
//! | `10MB/s`, `10MiB/s` | rates: a byte size per second |
//! | `250ms`, `30s`, `5m`, `2h`, `1.5s` | durations |
//!
//! Units are case-sensitive where it matters (`mb` is accepted as `MB`, but `b` always
//! means bytes). Formatting picks binary units (`1.50 GiB`).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Why a size, rate or duration could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseUnitError {
    /// The input was empty.
    #[error("empty value")]
    Empty,
    /// The numeric part is not a non-negative number.
    #[error("{input:?} does not start with a non-negative number")]
    BadNumber {
        /// The whole input.
        input: String,
    },
    /// The unit suffix is not one that is understood.
    #[error("{input:?} has an unknown unit {unit:?} (expected {expected})")]
    BadUnit {
        /// The whole input.
        input: String,
        /// The suffix that was not understood.
        unit: String,
        /// What would have been accepted.
        expected: &'static str,
    },
    /// The value does not fit.
    #[error("{input:?} is too large")]
    Overflow {
        /// The whole input.
        input: String,
    },
}

/// A number of bytes that parses from and displays as a human size.
///
/// ```
/// use perfkit_core::ByteSize;
/// let s: ByteSize = "1.5GiB".parse().unwrap();
/// assert_eq!(s.as_u64(), 1_610_612_736);
/// assert_eq!(s.to_string(), "1.50 GiB");
/// assert_eq!("10MB".parse::<ByteSize>().unwrap().as_u64(), 10_000_000);
/// ```
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// The size in bytes.
    pub const fn as_u64(self) -> u64 {
        self.0
    }
}

impl From<u64> for ByteSize {
    fn from(v: u64) -> Self {
        ByteSize(v)
    }
}

const SIZE_UNITS: &str = "B, kB, MB, GB, TB, KiB, MiB, GiB, TiB, K, M, G or T";

fn unit_multiplier(unit: &str) -> Option<u64> {
    Some(match unit {
        "" | "B" | "b" => 1,
        "kB" | "KB" | "kb" => 1_000,
        "MB" | "mb" => 1_000_000,
        "GB" | "gb" => 1_000_000_000,
        "TB" | "tb" => 1_000_000_000_000,
        "KiB" | "kiB" | "K" | "k" | "Ki" => 1 << 10,
        "MiB" | "M" | "m" | "Mi" => 1 << 20,
        "GiB" | "G" | "g" | "Gi" => 1 << 30,
        "TiB" | "T" | "t" | "Ti" => 1 << 40,
        _ => return None,
    })
}

/// Splits `"1.5GiB"` into `(1.5, "GiB")`.
fn split_number(input: &str) -> Result<(f64, &str), ParseUnitError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(ParseUnitError::Empty);
    }
    let end = s
        .char_indices()
        .find(|&(_, c)| !(c.is_ascii_digit() || c == '.' || c == '_'))
        .map_or(s.len(), |(i, _)| i);
    let number: String = s[..end].chars().filter(|&c| c != '_').collect();
    let value: f64 = number.parse().map_err(|_| ParseUnitError::BadNumber {
        input: input.to_owned(),
    })?;
    if !value.is_finite() {
        return Err(ParseUnitError::BadNumber {
            input: input.to_owned(),
        });
    }
    Ok((value, s[end..].trim()))
}

fn scale(input: &str, value: f64, multiplier: u64) -> Result<u64, ParseUnitError> {
    let bytes = (value * multiplier as f64).round();
    if bytes >= u64::MAX as f64 {
        return Err(ParseUnitError::Overflow {
            input: input.to_owned(),
        });
    }
    Ok(bytes as u64)
}

impl FromStr for ByteSize {
    type Err = ParseUnitError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let (value, unit) = split_number(input)?;
        let multiplier = unit_multiplier(unit).ok_or_else(|| ParseUnitError::BadUnit {
            input: input.to_owned(),
            unit: unit.to_owned(),
            expected: SIZE_UNITS,
        })?;
        scale(input, value, multiplier).map(ByteSize)
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&format_bytes(self.0))
    }
}

/// Formats a byte count with binary units: `512 B`, `1.50 KiB`, `2.00 GiB`.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.2} {}", UNITS[unit])
}

/// A rate in bytes per second, parsed from `10MB/s` (or `10MB`, the `/s` being implied).
///
/// ```
/// use perfkit_core::Rate;
/// let r: Rate = "10MB/s".parse().unwrap();
/// assert_eq!(r.bytes_per_sec(), 10_000_000.0);
/// assert_eq!(r.to_string(), "9.54 MiB/s");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Rate(pub f64);

impl Rate {
    /// Bytes per second.
    pub const fn bytes_per_sec(self) -> f64 {
        self.0
    }
}

impl FromStr for Rate {
    type Err = ParseUnitError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let s = input.trim();
        let size_part = s
            .strip_suffix("/s")
            .or_else(|| s.strip_suffix("/sec"))
            .or_else(|| s.strip_suffix("ps"))
            .unwrap_or(s);
        let (value, unit) = split_number(size_part).map_err(|e| match e {
            ParseUnitError::Empty => ParseUnitError::Empty,
            _ => ParseUnitError::BadNumber {
                input: input.to_owned(),
            },
        })?;
        let multiplier = unit_multiplier(unit).ok_or_else(|| ParseUnitError::BadUnit {
            input: input.to_owned(),
            unit: unit.to_owned(),
            expected: "a byte size per second, such as 10MB/s or 512KiB/s",
        })?;
        Ok(Rate(value * multiplier as f64))
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = if self.0.is_finite() && self.0 > 0.0 {
            self.0.round() as u64
        } else {
            0
        };
        f.pad(&format!("{}/s", format_bytes(bytes)))
    }
}

/// Parses a duration such as `250ms`, `30s`, `1.5s`, `5m`, `2h` or `1d`. A bare number is
/// seconds.
///
/// ```
/// use perfkit_core::units::parse_duration;
/// use std::time::Duration;
/// assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
/// assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
/// assert!(parse_duration("banana").is_err());
/// ```
pub fn parse_duration(input: &str) -> Result<Duration, ParseUnitError> {
    let (value, unit) = split_number(input)?;
    let secs_per_unit = match unit {
        "ns" => 1e-9,
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "" | "s" | "sec" | "secs" => 1.0,
        "m" | "min" | "mins" => 60.0,
        "h" | "hr" | "hours" => 3600.0,
        "d" | "days" => 86_400.0,
        _ => {
            return Err(ParseUnitError::BadUnit {
                input: input.to_owned(),
                unit: unit.to_owned(),
                expected: "ns, us, ms, s, m, h or d",
            });
        }
    };
    Duration::try_from_secs_f64(value * secs_per_unit).map_err(|_| ParseUnitError::Overflow {
        input: input.to_owned(),
    })
}

/// Formats a duration compactly for humans: `850 ns`, `12.3 µs`, `4.56 ms`, `2.50 s`,
/// `3m 20s`, `5h 02m`, `2d 03h`.
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 1e-6 {
        format!("{} ns", d.as_nanos())
    } else if secs < 1e-3 {
        format!("{:.1} µs", secs * 1e6)
    } else if secs < 1.0 {
        format!("{:.2} ms", secs * 1e3)
    } else if secs < 60.0 {
        format!("{secs:.2} s")
    } else if secs < 3600.0 {
        let s = d.as_secs();
        format!("{}m {:02}s", s / 60, s % 60)
    } else if secs < 86_400.0 {
        let s = d.as_secs();
        format!("{}h {:02}m", s / 3600, (s % 3600) / 60)
    } else {
        let s = d.as_secs();
        format!("{}d {:02}h", s / 86_400, (s % 86_400) / 3600)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_sizes() {
        let cases = [
            ("0", 0),
            ("1024", 1024),
            ("1024B", 1024),
            ("10kB", 10_000),
            ("10MB", 10_000_000),
            ("2GB", 2_000_000_000),
            ("512KiB", 512 * 1024),
            ("512MiB", 512 << 20),
            ("2GiB", 2 << 30),
            ("512M", 512 << 20),
            ("1.5GiB", 1_610_612_736),
            (" 4 GiB ", 4 << 30),
            ("1_000", 1000),
        ];
        for (input, want) in cases {
            assert_eq!(input.parse::<ByteSize>().unwrap().as_u64(), want, "{input}");
        }
    }

    #[test]
    fn rejects_bad_sizes_with_reasons() {
        assert_eq!("".parse::<ByteSize>(), Err(ParseUnitError::Empty));
        assert!(matches!(
            "banana".parse::<ByteSize>(),
            Err(ParseUnitError::BadNumber { .. })
        ));
        assert!(matches!(
            "-5MB".parse::<ByteSize>(),
            Err(ParseUnitError::BadNumber { .. })
        ));
        assert!(matches!(
            "5 parsecs".parse::<ByteSize>(),
            Err(ParseUnitError::BadUnit { .. })
        ));
        assert!(matches!(
            "99999999999TiB".parse::<ByteSize>(),
            Err(ParseUnitError::Overflow { .. })
        ));
        let msg = "5XB".parse::<ByteSize>().unwrap_err().to_string();
        assert!(msg.contains("XB") && msg.contains("MiB"), "{msg}");
    }

    #[test]
    fn parses_rates_and_durations() {
        assert_eq!("10MB/s".parse::<Rate>().unwrap().bytes_per_sec(), 1e7);
        assert_eq!("1MiB/s".parse::<Rate>().unwrap().bytes_per_sec(), 1048576.0);
        assert_eq!("500kB".parse::<Rate>().unwrap().bytes_per_sec(), 5e5);
        assert!("fast".parse::<Rate>().is_err());
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration("10").unwrap(), Duration::from_secs(10));
        assert!(parse_duration("banana").is_err());
        assert!(parse_duration("5 fortnights").is_err());
        assert!(parse_duration("1e400s").is_err());
    }

    #[test]
    fn formats() {
        assert_eq!(format_bytes(512), "512 B");
        assert_eq!(format_bytes(1536), "1.50 KiB");
        assert_eq!(ByteSize(2 << 30).to_string(), "2.00 GiB");
        assert_eq!(format_duration(Duration::from_millis(4560)), "4.56 s");
        assert_eq!(format_duration(Duration::from_secs(200)), "3m 20s");
        assert_eq!(format_duration(Duration::from_micros(12)), "12.0 µs");
    }

    proptest! {
        #[test]
        fn byte_counts_round_trip(n in 0u64..(1 << 50)) {
            prop_assert_eq!(n.to_string().parse::<ByteSize>().unwrap().as_u64(), n);
            prop_assert_eq!(format!("{n}B").parse::<ByteSize>().unwrap().as_u64(), n);
        }

        #[test]
        fn formatted_sizes_parse_back_within_rounding(n in 1024u64..(1 << 50)) {
            let text = format_bytes(n).replace(' ', "");
            let back = text.parse::<ByteSize>().unwrap().as_u64() as f64;
            prop_assert!((back - n as f64).abs() / (n as f64) < 0.005, "{} -> {}", n, text);
        }

        #[test]
        fn parsing_never_panics(s in ".{0,20}") {
            let _ = s.parse::<ByteSize>();
            let _ = s.parse::<Rate>();
            let _ = parse_duration(&s);
        }
    }
}
