//! Memory series: samples, and the repairs applied before analysis (time order, duplicate
//! times, a restart, downsampling very long series).

use serde::{Deserialize, Serialize};

/// One memory sample: a time in seconds (any origin) and the bytes in use.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Seconds since some origin (a detector's start, the Unix epoch, ...).
    pub t_secs: f64,
    /// Bytes in use at that time.
    pub bytes: u64,
}

impl Sample {
    /// A sample.
    pub fn new(t_secs: f64, bytes: u64) -> Self {
        Sample { t_secs, bytes }
    }
}

/// A series ready for analysis: in time order, distinct times, from the last restart on,
/// at most `max_points` long. Times are relative to `origin`.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    pub(crate) t: Vec<f64>,
    pub(crate) y: Vec<f64>,
    /// Added to `t` to get back the caller's times.
    pub(crate) origin: f64,
    /// What was repaired, in sentences.
    pub(crate) notes: Vec<String>,
    /// The caller's time of the restart analysed from, if one was found.
    pub(crate) restart_at: Option<f64>,
}

/// How the series is prepared.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PrepareOptions {
    pub(crate) restart_ratio: f64,
    pub(crate) max_points: usize,
    /// The fewest samples an analysis needs: a restart followed by fewer is the series'
    /// end, not its new start.
    pub(crate) min_points: usize,
}

pub(crate) fn prepare(samples: &[Sample], opts: PrepareOptions) -> Prepared {
    let mut notes = Vec::new();
    let mut points: Vec<(f64, f64)> = samples
        .iter()
        .filter(|s| s.t_secs.is_finite())
        .map(|s| (s.t_secs, s.bytes as f64))
        .collect();
    if points.len() < samples.len() {
        notes.push(format!(
            "ignored {} samples with a non-finite time",
            samples.len() - points.len()
        ));
    }
    let out_of_order = points.windows(2).filter(|w| w[1].0 < w[0].0).count();
    if out_of_order > 0 {
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        notes.push(format!(
            "{out_of_order} samples were out of time order; the series was sorted by time"
        ));
    }
    // Merge samples sharing a time into their mean.
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(points.len());
    let mut duplicates = 0usize;
    let mut i = 0;
    while i < points.len() {
        let t = points[i].0;
        let mut j = i;
        let mut sum = 0.0;
        while j < points.len() && points[j].0 == t {
            sum += points[j].1;
            j += 1;
        }
        duplicates += j - i - 1;
        merged.push((t, sum / (j - i) as f64));
        i = j;
    }
    if duplicates > 0 {
        notes.push(format!(
            "{duplicates} samples repeated an earlier time and were averaged with it"
        ));
    }

    let mut restart_at = None;
    let start = restart_index(&merged, opts.restart_ratio);
    if let Some(idx) = start.filter(|&i| merged.len() - i < opts.min_points && i >= opts.min_points)
    {
        // Too few samples after the fall to analyse, and enough before: the process
        // ending (its memory freed as it exits), or a restart too recent to tell anything
        // yet. The history before it is what there is to analyse.
        notes.push(format!(
            "memory fell from {:.0} to {:.0} bytes at t={} with {} samples after (the process ending, or a restart too recent to analyse); analysing the {} samples before",
            merged[idx - 1].1,
            merged[idx].1,
            merged[idx].0,
            merged.len() - idx,
            idx
        ));
        merged.truncate(idx);
    } else if let Some(idx) = start {
        restart_at = Some(merged[idx].0);
        notes.push(format!(
            "memory fell from {:.0} to {:.0} bytes at t={} (a restart); analysing the {} samples from there",
            merged[idx - 1].1,
            merged[idx].1,
            merged[idx].0,
            merged.len() - idx
        ));
        merged.drain(..idx);
    }

    if merged.len() > opts.max_points && opts.max_points >= 2 {
        let before = merged.len();
        merged = downsample(&merged, opts.max_points);
        notes.push(format!(
            "{before} samples were averaged into {} buckets for analysis",
            merged.len()
        ));
    }
    let origin = merged.first().map_or(0.0, |p| p.0);
    Prepared {
        t: merged.iter().map(|p| p.0 - origin).collect(),
        y: merged.iter().map(|p| p.1).collect(),
        origin,
        notes,
        restart_at,
    }
}

/// The index analysis starts from after a restart: the last sharp fall to at most
/// `ratio` of the previous value. Three or more such falls are a cycle of the series
/// itself (cleanups), not restarts, and nothing is cut.
fn restart_index(points: &[(f64, f64)], ratio: f64) -> Option<usize> {
    if ratio <= 0.0 {
        return None;
    }
    let falls: Vec<usize> = (1..points.len())
        .filter(|&i| points[i - 1].1 > 0.0 && points[i].1 <= ratio * points[i - 1].1)
        .collect();
    match falls.len() {
        1 | 2 => falls.last().copied(),
        _ => None,
    }
}

/// Averages consecutive points into at most `buckets` buckets of equal count.
fn downsample(points: &[(f64, f64)], buckets: usize) -> Vec<(f64, f64)> {
    let per = points.len().div_ceil(buckets);
    points
        .chunks(per)
        .map(|chunk| {
            let n = chunk.len() as f64;
            let (st, sy) = chunk
                .iter()
                .fold((0.0, 0.0), |(a, b), p| (a + p.0, b + p.1));
            (st / n, sy / n)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTS: PrepareOptions = PrepareOptions {
        restart_ratio: 0.25,
        max_points: 100,
        min_points: 10,
    };

    #[test]
    fn sorts_merges_and_notes_repairs() {
        let s = [
            Sample::new(2.0, 20),
            Sample::new(1.0, 10),
            Sample::new(1.0, 30),
            Sample::new(f64::NAN, 5),
            Sample::new(3.0, 30),
        ];
        let p = prepare(&s, OPTS);
        assert_eq!(p.t, vec![0.0, 1.0, 2.0]);
        assert_eq!(p.y, vec![20.0, 20.0, 30.0]);
        assert_eq!(p.origin, 1.0);
        assert_eq!(p.notes.len(), 3, "{:?}", p.notes);
    }

    #[test]
    fn cuts_at_a_restart_but_not_at_repeated_cycles() {
        let mut s: Vec<Sample> = (0..20)
            .map(|i| Sample::new(i as f64, 1000 + i * 100))
            .collect();
        s.extend((20..30).map(|i| Sample::new(i as f64, 100 + i)));
        let p = prepare(&s, OPTS);
        assert_eq!(p.restart_at, Some(20.0));
        assert_eq!(p.y.len(), 10);
        let cycles: Vec<Sample> = (0..60)
            .map(|i| Sample::new(i as f64, if i % 10 == 9 { 5000 } else { 100 }))
            .collect();
        // Falls from 5000 to 100 six times: a cycle, nothing cut.
        assert_eq!(prepare(&cycles, OPTS).y.len(), 60);
    }

    #[test]
    fn a_fall_in_the_last_samples_ends_the_series_instead_of_restarting_it() {
        // A growing process whose last sample caught it freeing its memory on exit.
        let mut s: Vec<Sample> = (0..30)
            .map(|i| Sample::new(i as f64, 1000 + i * 100))
            .collect();
        s.push(Sample::new(30.0, 100));
        let p = prepare(&s, OPTS);
        assert_eq!(p.restart_at, None);
        assert_eq!(p.y.len(), 30, "the fall is dropped, the history kept");
        assert!(p.notes[0].contains("the process ending"), "{:?}", p.notes);
        // Too short a history before the fall: the fall is a restart as before.
        let short: Vec<Sample> = (0..5)
            .map(|i| Sample::new(i as f64, 1000 + i * 100))
            .chain([Sample::new(5.0, 100)])
            .collect();
        let p = prepare(&short, OPTS);
        assert_eq!(p.restart_at, Some(5.0));
        assert_eq!(p.y.len(), 1);
    }

    #[test]
    fn downsamples_long_series() {
        let s: Vec<Sample> = (0..1000).map(|i| Sample::new(i as f64, i)).collect();
        let p = prepare(&s, OPTS);
        assert_eq!(p.y.len(), 100);
        assert!((p.y[0] - 4.5).abs() < 1e-9);
    }
}
