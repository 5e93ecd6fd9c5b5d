//! The labelled corpus: synthetic memory series of every pattern, generated from seeds.

#![allow(dead_code, missing_docs)]

use perfkit_leak::{Pattern, Sample};

/// SplitMix64 with a normal sampler.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0x1234_5678)
    }
    pub(crate) fn u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub(crate) fn f64(&mut self) -> f64 {
        (self.u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub(crate) fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.f64()
    }
    pub(crate) fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[(self.u64() % xs.len() as u64) as usize]
    }
    pub(crate) fn normal(&mut self) -> f64 {
        let u1 = (self.f64() + 1e-12).min(1.0);
        let u2 = self.f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
    pub(crate) fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.f64()).max(1e-12).ln()
    }
}

/// The generators of the corpus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gen {
    Linear,
    Exponential,
    Sawtooth,
    Step,
    NoCleanup,
    FlatNoise,
    FlatAr1,
    HealthySawtooth,
    Spikes,
    Sine,
}

impl Gen {
    pub(crate) const ALL: [Gen; 10] = [
        Gen::Linear,
        Gen::Exponential,
        Gen::Sawtooth,
        Gen::Step,
        Gen::NoCleanup,
        Gen::FlatNoise,
        Gen::FlatAr1,
        Gen::HealthySawtooth,
        Gen::Spikes,
        Gen::Sine,
    ];

    pub(crate) fn label(self) -> Pattern {
        match self {
            Gen::Linear => Pattern::Linear,
            Gen::Exponential => Pattern::Exponential,
            Gen::Sawtooth => Pattern::Sawtooth,
            Gen::Step => Pattern::Step,
            Gen::NoCleanup => Pattern::NoCleanup,
            _ => Pattern::None,
        }
    }
}

/// A generated series with its truth.
pub(crate) struct Case {
    pub(crate) kind: Gen,
    pub(crate) n: usize,
    pub(crate) noise: f64,
    pub(crate) seed: u64,
    pub(crate) samples: Vec<Sample>,
    /// Growth rate of the leak (bytes/s), 0 for none.
    pub(crate) rate: f64,
    /// The level the leak has reached at the last sample (for a sawtooth, its peaks).
    pub(crate) end_level: f64,
    /// For an exponential leak `base + a (e^(k t) - 1)`: (base, a, k), t from the start.
    pub(crate) exp: Option<(f64, f64, f64)>,
}

pub(crate) const LENGTHS: [usize; 4] = [60, 200, 1000, 5000];
pub(crate) const NOISES: [f64; 3] = [0.002, 0.01, 0.03];
pub(crate) const INTERVALS: [f64; 3] = [0.25, 1.0, 10.0];
pub(crate) const BASES: [f64; 2] = [50.0 * 1048576.0, 2.0 * 1073741824.0];
pub(crate) const MAGNITUDES: [f64; 3] = [0.3, 1.0, 3.0];

/// Times: regular, jittered by ±50 %, or jittered with occasional gaps of 10 intervals.
pub(crate) fn timeline(rng: &mut Rng, n: usize, interval: f64) -> Vec<f64> {
    let mode = rng.u64() % 3;
    let mut t = 1_700_000_000.0 * f64::from(u8::from(rng.f64() < 0.3));
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(t);
        let dt = match mode {
            0 => interval,
            1 => interval * rng.range(0.5, 1.5),
            _ => {
                if rng.f64() < 0.02 {
                    interval * 10.0
                } else {
                    interval * rng.range(0.5, 1.5)
                }
            }
        };
        t += dt;
    }
    out
}

pub(crate) fn generate(kind: Gen, n: usize, noise_rel: f64, seed: u64) -> Case {
    let mut rng = Rng::new(seed ^ ((kind as u64) << 40) ^ ((n as u64) << 20));
    let interval = rng.pick(&INTERVALS);
    let base = rng.pick(&BASES);
    let mag = rng.pick(&MAGNITUDES) * base;
    let times = timeline(&mut rng, n, interval);
    let t0 = times[0];
    let span = times[n - 1] - t0;
    let rel = |t: f64| t - t0;
    let mut rate = 0.0;
    let mut end_level = base;
    let mut exp = None;
    let ys: Vec<f64> = match kind {
        Gen::Linear => {
            let r = mag / span;
            rate = r;
            end_level = base + mag;
            // Ups and downs around the trend: noise at least twice a step's growth.
            let sd = (noise_rel * base).max(2.0 * r * interval);
            times
                .iter()
                .map(|&t| base + r * rel(t) + sd * rng.normal())
                .collect()
        }
        Gen::Exponential => {
            let kt = rng.pick(&[2.0, 3.0, 4.0]);
            let k = kt / span;
            let a = mag / (kt.exp() - 1.0);
            exp = Some((base, a, k));
            end_level = base + mag;
            // Ups and downs at the start: noise at least twice the first step's growth.
            let sd = (noise_rel * base).max(2.0 * a * k * interval);
            times
                .iter()
                .map(|&t| base + a * ((k * rel(t)).exp() - 1.0) + sd * rng.normal())
                .collect()
        }
        Gen::Sawtooth | Gen::HealthySawtooth => {
            let cycles = rng.pick(&[4usize, 8, 15]).min(n / 8).max(3) as f64;
            let period = span / cycles;
            let amp = rng.pick(&[0.2, 0.5]) * base;
            let r = if kind == Gen::Sawtooth {
                mag / span
            } else {
                0.0
            };
            rate = r;
            end_level = base + r * span + amp;
            let sd = (noise_rel * base).min(amp / 15.0);
            let phase = rng.range(0.0, 0.5);
            times
                .iter()
                .map(|&t| {
                    let x = rel(t) / period + phase;
                    base + r * rel(t) + amp * x.fract() + sd * rng.normal()
                })
                .collect()
        }
        Gen::Step => {
            let jumps = 2 + (rng.u64() % 5) as usize;
            let sizes: Vec<f64> = (0..jumps)
                .map(|_| mag / jumps as f64 * rng.range(0.6, 1.4))
                .collect();
            let min_jump = sizes.iter().copied().fold(f64::INFINITY, f64::min);
            // Jump positions: evenly spread with jitter, plateaus of several samples.
            let seg = n as f64 / (jumps + 1) as f64;
            let positions: Vec<usize> = (1..=jumps)
                .map(|j| ((j as f64 + rng.range(-0.25, 0.25)) * seg) as usize)
                .collect();
            let sd = (noise_rel * base).min(min_jump / 20.0);
            rate = sizes.iter().sum::<f64>() / span;
            end_level = base + sizes.iter().sum::<f64>();
            (0..n)
                .map(|i| {
                    let lvl: f64 = positions
                        .iter()
                        .zip(&sizes)
                        .filter(|(p, _)| i >= **p)
                        .map(|(_, s)| s)
                        .sum();
                    base + lvl + sd * rng.normal()
                })
                .collect()
        }
        Gen::NoCleanup => {
            let mean = mag / (0.65 * (n - 1) as f64);
            let mut y = base;
            rate = mag / span;
            (0..n)
                .map(|i| {
                    if i > 0 && rng.f64() < 0.65 {
                        y += rng.exp(mean);
                    }
                    y
                })
                .collect()
        }
        Gen::FlatNoise => {
            let sd = noise_rel * base;
            (0..n).map(|_| base + sd * rng.normal()).collect()
        }
        Gen::FlatAr1 => {
            let sd = noise_rel * base;
            let phi: f64 = 0.5;
            let innov = sd * (1.0 - phi * phi).sqrt();
            let mut e = sd * rng.normal();
            (0..n)
                .map(|_| {
                    e = phi * e + innov * rng.normal();
                    base + e
                })
                .collect()
        }
        Gen::Spikes => {
            let sd = noise_rel * base;
            (0..n)
                .map(|_| {
                    let spike = if rng.f64() < 0.01 { 0.3 * base } else { 0.0 };
                    base + spike + sd * rng.normal()
                })
                .collect()
        }
        Gen::Sine => {
            let m = rng.pick(&[2.0, 3.0, 5.0]);
            let phase = rng.range(0.0, std::f64::consts::TAU);
            let sd = noise_rel * base;
            times
                .iter()
                .map(|&t| {
                    base + 0.1 * base * (std::f64::consts::TAU * m * rel(t) / span + phase).sin()
                        + sd * rng.normal()
                })
                .collect()
        }
    };
    let samples = times
        .iter()
        .zip(&ys)
        .map(|(&t, &y)| Sample::new(t, y.max(0.0).round() as u64))
        .collect();
    Case {
        kind,
        n,
        noise: noise_rel,
        seed,
        samples,
        rate,
        end_level,
        exp,
    }
}

/// The whole corpus: every generator, length and noise level, with `seeds` seeds each.
pub(crate) fn corpus(seeds: u64) -> Vec<Case> {
    let mut out = Vec::new();
    for kind in Gen::ALL {
        for n in LENGTHS {
            for noise in NOISES {
                for seed in 0..seeds {
                    out.push(generate(kind, n, noise, seed));
                }
            }
        }
    }
    out
}
