//! CPU usage as a percentage of one core, from accumulated CPU time (user + system) between two readings.
//!
//! Why not sysinfo's `cpu_usage()`: it is per process and reports 0 on a process's first refresh, so a worker
//! forked between two samples would hide the CPU it used. Here every process of the tree is keyed by (PID, start
//! time) so a reused PID never produces a negative or huge delta, a process that appeared since the last reading
//! contributes all the CPU it has used (it was born inside the interval), and one that vanished contributes
//! nothing for its last partial interval (unknowable).

use std::collections::HashMap;
use std::time::Instant;

/// Identity of a process across PID reuse: (pid, start time as the platform reports it).
pub(crate) type ProcessKey = (u32, u64);

/// Turns successive cumulative CPU-time readings (microseconds) of a set of processes into a CPU percentage.
#[derive(Debug, Default)]
pub(crate) struct CpuMeter {
    last: HashMap<ProcessKey, u64>,
    last_at: Option<Instant>,
}

impl CpuMeter {
    /// Records a reading of (process, CPU microseconds used so far); returns the CPU % (of one core) since the
    /// previous reading, or `None` for the first.
    pub fn observe(&mut self, readings: &[(ProcessKey, u64)], at: Instant) -> Option<f64> {
        let previous = self.last_at.replace(at);
        let delta: u64 = readings
            .iter()
            .map(|(key, micros)| micros.saturating_sub(self.last.get(key).copied().unwrap_or(0)))
            .sum();
        self.last = readings.iter().copied().collect();
        let elapsed = at.duration_since(previous?).as_secs_f64();
        (elapsed > 0.0).then(|| delta as f64 / 1e6 / elapsed * 100.0)
    }
}

/// Average CPU % of one process over its whole life, used for the very first sample where no delta exists yet.
pub(crate) fn lifetime_percent(cpu_micros: u64, age_secs: f64) -> f64 {
    if age_secs <= 0.0 {
        return 0.0;
    }
    cpu_micros as f64 / 1e6 / age_secs * 100.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn percent_comes_from_deltas_keyed_by_process_identity() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut meter = CpuMeter::default();
        const MS: u64 = 1000;
        // (readings in CPU microseconds, seconds since t0, expected %)
        type Step<'a> = (&'a [(ProcessKey, u64)], u64, Option<f64>);
        let steps: [Step; 5] = [
            (&[((1, 10), 5000 * MS)], 0, None),
            (&[((1, 10), 5500 * MS)], 1, Some(50.0)),
            // a new child born during the interval contributes all its CPU time
            (&[((1, 10), 6000 * MS), ((2, 900), 300 * MS)], 2, Some(80.0)),
            // the child vanished; PID 2 reused by a new process with 50 ms
            (&[((1, 10), 7000 * MS), ((2, 950), 50 * MS)], 3, Some(105.0)),
            // two seconds with no CPU at all
            (&[((1, 10), 7000 * MS), ((2, 950), 50 * MS)], 5, Some(0.0)),
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
            // CPU µs, age s, want
            (10_000_000, 20.0, 50.0),
            (1_000_000, 10.0, 10.0),
            (1_000_000, 0.0, 0.0), // clock oddity: no age yet
        ];
        for (micros, age, want) in cases {
            let got = lifetime_percent(micros, age);
            assert!((got - want).abs() < 1e-9, "{got} != {want}");
        }
    }
}
