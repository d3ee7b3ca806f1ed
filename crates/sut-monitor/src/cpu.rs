//! CPU usage as a percentage of one core, from accumulated CPU time (`utime + stime`) between two readings.
//!
//! Why not sysinfo's `cpu_usage()`: it needs two refreshes and reports 0 on the first, and it is per process.
//! Here every process of the tree is keyed by (PID, start time) so a reused PID never produces a negative or huge
//! delta, a process that appeared since the last reading contributes all the CPU it has used (it was born inside
//! the interval), and one that vanished contributes nothing for its last partial interval (unknowable).

use std::collections::HashMap;
use std::time::Instant;

/// Identity of a process across PID reuse: (pid, start time in ticks).
pub(crate) type ProcessKey = (u32, u64);

/// Turns successive cumulative CPU-tick readings of a set of processes into a CPU percentage.
#[derive(Debug)]
pub(crate) struct CpuMeter {
    ticks_per_sec: f64,
    last: HashMap<ProcessKey, u64>,
    last_at: Option<Instant>,
}

impl CpuMeter {
    /// A meter for a kernel with `ticks_per_sec` clock ticks per second (`sysconf(_SC_CLK_TCK)`).
    pub fn new(ticks_per_sec: u64) -> Self {
        Self {
            ticks_per_sec: ticks_per_sec.max(1) as f64,
            last: HashMap::new(),
            last_at: None,
        }
    }

    /// Records a reading; returns the CPU % (of one core) since the previous one, or `None` for the first.
    pub fn observe(&mut self, readings: &[(ProcessKey, u64)], at: Instant) -> Option<f64> {
        let previous = self.last_at.replace(at);
        let delta: u64 = readings
            .iter()
            .map(|(key, ticks)| ticks.saturating_sub(self.last.get(key).copied().unwrap_or(0)))
            .sum();
        self.last = readings.iter().copied().collect();
        let elapsed = at.duration_since(previous?).as_secs_f64();
        (elapsed > 0.0).then(|| delta as f64 / self.ticks_per_sec / elapsed * 100.0)
    }
}

/// Average CPU % of one process over its whole life, used for the very first sample where no delta exists yet.
pub(crate) fn lifetime_percent(
    cpu_ticks: u64,
    start_ticks: u64,
    uptime_secs: f64,
    ticks_per_sec: u64,
) -> f64 {
    let tps = ticks_per_sec.max(1) as f64;
    let age = uptime_secs - start_ticks as f64 / tps;
    if age <= 0.0 {
        return 0.0;
    }
    cpu_ticks as f64 / tps / age * 100.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn percent_comes_from_deltas_keyed_by_process_identity() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut meter = CpuMeter::new(100);
        // (readings, seconds since t0, expected %)
        type Step<'a> = (&'a [(ProcessKey, u64)], u64, Option<f64>);
        let steps: [Step; 5] = [
            (&[((1, 10), 500)], 0, None),
            (&[((1, 10), 550)], 1, Some(50.0)),
            // a new child born during the interval contributes all its ticks
            (&[((1, 10), 600), ((2, 900), 30)], 2, Some(80.0)),
            // the child vanished; PID 2 reused by a new process with 5 ticks
            (&[((1, 10), 700), ((2, 950), 5)], 3, Some(105.0)),
            // two seconds with no CPU at all
            (&[((1, 10), 700), ((2, 950), 5)], 5, Some(0.0)),
        ];
        for (i, (readings, secs, want)) in steps.into_iter().enumerate() {
            let got = meter.observe(readings, at(secs));
            match (got, want) {
                (Some(g), Some(w)) => assert!((g - w).abs() < 1e-9, "step {i}: {g} != {w}"),
                (g, w) => assert_eq!(g, w, "step {i}"),
            }
        }
    }

    #[test]
    fn lifetime_average() {
        let cases = [
            // ticks, start, uptime, tps, want
            (1000, 0, 20.0, 100, 50.0),
            (100, 1000, 20.0, 100, 10.0),
            (100, 5000, 20.0, 100, 0.0), // clock oddity: start after uptime
        ];
        for (ticks, start, uptime, tps, want) in cases {
            let got = lifetime_percent(ticks, start, uptime, tps);
            assert!((got - want).abs() < 1e-9, "{got} != {want}");
        }
    }
}
