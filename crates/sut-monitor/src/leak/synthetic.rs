//! Synthetic resource series with known shape and realistic noise, for the verdict tests and the offline
//! sensitivity study.
//!
//! Noise model for RSS, from what allocator-backed processes show under steady load: an AR(1) wander (φ = 0.9,
//! the level drifts for tens of seconds), white jitter, rare short spikes (a burst of large buffers), all
//! quantised to 4 KiB pages.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use crate::monitor::{Phase, ResourceSeries, Sample};

/// One kibibyte, in bytes.
pub const KIB: f64 = 1024.0;
/// One mebibyte, in bytes.
pub const MIB: f64 = 1024.0 * 1024.0;

/// Noise added to a memory level.
#[derive(Debug, Clone, Copy)]
pub struct Noise {
    /// AR(1) coefficient per sample.
    pub phi: f64,
    /// Stationary standard deviation of the AR(1) part, bytes.
    pub ar_sigma: f64,
    /// White jitter, bytes.
    pub white_sigma: f64,
    /// Probability per sample of a one-sample spike.
    pub spike_prob: f64,
    /// Spike height, bytes.
    pub spike_bytes: f64,
}

impl Noise {
    /// The default "realistic" noise.
    pub const REALISTIC: Noise = Noise {
        phi: 0.9,
        ar_sigma: 256.0 * KIB,
        white_sigma: 64.0 * KIB,
        spike_prob: 0.01,
        spike_bytes: 2.0 * MIB,
    };
}

/// Shape of a run: seconds of warm-up, steady and drain, sampled at 1 Hz.
#[derive(Debug, Clone, Copy)]
pub struct Run {
    /// Warm-up samples (seconds).
    pub warmup: usize,
    /// Steady samples (seconds).
    pub steady: usize,
    /// Drain samples (seconds).
    pub drain: usize,
}

impl Run {
    /// The standard 10-minute run: 2 min warm-up, 8 min steady.
    pub const TEN_MINUTES: Run = Run {
        warmup: 120,
        steady: 480,
        drain: 0,
    };

    fn phase(&self, i: usize) -> Phase {
        if i < self.warmup {
            Phase::WarmUp
        } else if i < self.warmup + self.steady {
            Phase::Steady
        } else {
            Phase::Drain
        }
    }

    /// Samples in the whole run.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.warmup + self.steady + self.drain
    }
}

/// `level(t)` plus noise, one value per second, quantised to pages.
pub fn noisy_memory(
    level: impl Fn(f64) -> f64,
    noise: Noise,
    n: usize,
    rng: &mut ChaCha8Rng,
) -> Vec<f64> {
    let innovation = noise.ar_sigma * (1.0 - noise.phi * noise.phi).sqrt();
    let normal = Normal::new(0.0, 1.0).expect("unit normal");
    let mut ar = noise.ar_sigma * normal.sample(rng);
    (0..n)
        .map(|i| {
            ar = noise.phi * ar + innovation * normal.sample(rng);
            let spike = if rng.random::<f64>() < noise.spike_prob {
                noise.spike_bytes
            } else {
                0.0
            };
            let v = level(i as f64) + ar + noise.white_sigma * normal.sample(rng) + spike;
            (v / 4096.0).round() * 4096.0
        })
        .collect()
}

/// Counts (fds, tcp sockets, threads) per second.
pub type Counts = (u64, u64, u64);

/// Builds a series: memory from `rss` (RssAnon = RSS − 8 MiB), counts from `counts(t)`, timestamps with a few
/// ms of jitter.
pub fn build(
    run: Run,
    rss: &[f64],
    counts: impl Fn(f64) -> Counts,
    rng: &mut ChaCha8Rng,
) -> ResourceSeries {
    let mut series = ResourceSeries::new(4242, std::time::Duration::from_secs(1));
    series.samples = (0..run.len())
        .map(|i| {
            let t = i as f64 + rng.random_range(0.0..0.01);
            let (fds, tcp, threads) = counts(i as f64);
            let rss = rss.get(i).copied().unwrap_or(0.0).max(0.0);
            sample(t, run.phase(i), rss, fds, tcp, threads)
        })
        .collect();
    series
}

/// A sample with the given values and plausible constants elsewhere.
pub fn sample(t: f64, phase: Phase, rss: f64, fds: u64, tcp: u64, threads: u64) -> Sample {
    Sample {
        unix_ms: 1_700_000_000_000 + (t * 1000.0) as u64,
        t_secs: t,
        phase,
        processes: 1,
        rss_bytes: rss as u64,
        rss_anon_bytes: (rss - 8.0 * MIB).max(0.0) as u64,
        vsize_bytes: (rss * 8.0) as u64,
        cpu_percent: 35.0,
        threads,
        fds,
        socket_fds: tcp,
        tcp_sockets: tcp,
        tcp_established: tcp.saturating_sub(1),
        tcp_close_wait: 0,
        tcp_listen: 1.min(tcp),
        tcp_other: 0,
        harness_rss_bytes: 30 << 20,
        harness_cpu_percent: 80.0,
        monitor_cpu_percent: 0.1,
        replica: "proxy".into(),
    }
}

/// Healthy counts: 40 fds, 20 sockets, 8 threads, wobbling with connection churn.
pub fn steady_counts(seed: u64) -> impl Fn(f64) -> Counts {
    move |t| {
        let wobble = ((t as u64).wrapping_mul(2654435761).wrapping_add(seed) >> 7) % 5;
        (40 + wobble, 20 + wobble, 8)
    }
}

/// A seeded generator.
pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// Memory that warms up towards `base` (20 MiB below it at t=0, time constant 20 s).
pub fn warmed(base: f64) -> impl Fn(f64) -> f64 {
    move |t| base - 20.0 * MIB * (-t / 20.0).exp()
}

/// A GC-like sawtooth: floor `floor(t)`, climbing `amplitude` over each `period` (jittered ±10 %), then dropping.
pub fn sawtooth(
    floor: impl Fn(f64) -> f64,
    amplitude: f64,
    period: f64,
    n: usize,
    rng: &mut ChaCha8Rng,
) -> Vec<f64> {
    let mut next_drop = period;
    let mut cycle_start = 0.0;
    (0..n)
        .map(|i| {
            let t = i as f64;
            if t >= next_drop {
                cycle_start = t;
                next_drop = t + period * rng.random_range(0.9..1.1);
            }
            let phase = (t - cycle_start) / period;
            let jitter = rng.random_range(-32.0..32.0) * KIB;
            ((floor(t) + amplitude * phase + jitter) / 4096.0).round() * 4096.0
        })
        .collect()
}

/// The shape of one cycle of a fixed-period allocation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CycleShape {
    /// The whole amount allocated at once, held for half the period, then freed.
    Square,
    /// Allocated and freed within `burst_secs`, idle for the rest of the period.
    Burst {
        /// How long the allocation is held, seconds.
        burst_secs: f64,
    },
    /// Allocated bit by bit over the period, freed at once at its end.
    Ramp,
}

/// Memory held by a fixed-period allocation of up to `amplitude` bytes at time `t`, starting `offset` seconds
/// into a cycle (so the sampling grid does not line up with the cycle).
pub fn cycle(shape: CycleShape, amplitude: f64, period: f64, offset: f64) -> impl Fn(f64) -> f64 {
    move |t| {
        let into = (t + offset).rem_euclid(period);
        let fraction = match shape {
            CycleShape::Square => f64::from(u8::from(into < period / 2.0)),
            CycleShape::Burst { burst_secs } => f64::from(u8::from(into < burst_secs)),
            CycleShape::Ramp => into / period,
        };
        amplitude * fraction
    }
}
