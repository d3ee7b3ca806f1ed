//! Offline sensitivity study of the default leak verdicts over synthetic series.
//! Run it with `bench/monitor-leak-sensitivity.sh` (release build, prints tables).
//!
//! Questions it answers: the smallest leak rate caught in a 10-minute run; how often a clean run is called LEAK
//! (must be never); how a 90-second CI run fares; whether the slope's confidence interval covers the truth.

use sut_monitor::leak::synthetic::*;
use sut_monitor::leak::{analyze, LeakConfig, Metric, Verdict};
use sut_monitor::monitor::ResourceSeries;

/// Tally of overall verdicts.
#[derive(Default)]
struct Tally {
    leak: usize,
    pass: usize,
    inconclusive: usize,
    other: usize,
}

impl Tally {
    fn add(&mut self, verdict: Verdict) {
        match verdict {
            Verdict::Leak | Verdict::Growth => self.leak += 1,
            Verdict::Pass => self.pass += 1,
            Verdict::Inconclusive => self.inconclusive += 1,
            _ => self.other += 1,
        }
    }

    fn row(&self, label: &str) -> String {
        let n = (self.leak + self.pass + self.inconclusive + self.other).max(1) as f64;
        let pct = |k: usize| 100.0 * k as f64 / n;
        format!(
            "{label:<44} {:>5} {:>7.1}% {:>7.1}% {:>7.1}%",
            n,
            pct(self.leak),
            pct(self.pass),
            pct(self.inconclusive)
        )
    }
}

fn header(title: &str) {
    println!("\n{title}");
    println!(
        "{:<44} {:>5} {:>8} {:>8} {:>8}",
        "series", "runs", "LEAK", "PASS", "INCONCL"
    );
}

fn tally(seeds: u64, make: impl Fn(u64) -> ResourceSeries) -> Tally {
    let config = LeakConfig::default();
    let mut t = Tally::default();
    for seed in 0..seeds {
        t.add(analyze(&make(seed), &config).verdict);
    }
    t
}

fn memory_run(run: Run, noise: Noise, level: impl Fn(f64) -> f64, seed: u64) -> ResourceSeries {
    let mut r = rng(seed);
    let rss = noisy_memory(level, noise, run.len(), &mut r);
    build(run, &rss, steady_counts(seed), &mut r)
}

fn main() {
    let ten = Run::TEN_MINUTES;
    let harsh = Noise {
        phi: 0.98,
        ar_sigma: MIB,
        ..Noise::REALISTIC
    };
    header("10-minute runs (2 min warm-up, 8 min steady), realistic noise, 80 MiB process: leak rate vs verdict");
    for kib_per_min in [0.0, 32.0, 64.0, 128.0, 160.0, 192.0, 256.0, 512.0] {
        let t = tally(300, |seed| {
            memory_run(
                ten,
                Noise::REALISTIC,
                move |t| warmed(80.0 * MIB)(t) + kib_per_min * KIB * t / 60.0,
                seed,
            )
        });
        println!("{}", t.row(&format!("leak {kib_per_min:>5} KiB/min")));
    }

    header("False positives on clean runs");
    let clean = tally(2000, |seed| {
        memory_run(ten, Noise::REALISTIC, warmed(80.0 * MIB), seed + 10_000)
    });
    println!("{}", clean.row("10 min plateau, realistic noise"));
    let clean_harsh = tally(1000, |seed| {
        memory_run(ten, harsh, warmed(80.0 * MIB), seed + 20_000)
    });
    println!(
        "{}",
        clean_harsh.row("10 min plateau, harsh wander (phi .98, 1 MiB)")
    );
    let flat_saw = tally(500, |seed| {
        let mut r = rng(seed + 30_000);
        let rss = sawtooth(|_| 120.0 * MIB, 24.0 * MIB, 45.0, ten.len(), &mut r);
        build(ten, &rss, steady_counts(seed), &mut r)
    });
    println!("{}", flat_saw.row("10 min GC sawtooth, flat floors"));
    let rising_saw = tally(500, |seed| {
        let mut r = rng(seed + 40_000);
        let rss = sawtooth(
            |t| 120.0 * MIB + 256.0 * KIB * t / 60.0,
            24.0 * MIB,
            45.0,
            ten.len(),
            &mut r,
        );
        build(ten, &rss, steady_counts(seed), &mut r)
    });
    println!(
        "{}",
        rising_saw.row("10 min GC sawtooth, floors +256 KiB/min")
    );

    header("90-second CI runs (15 s warm-up, 75 s steady), realistic noise");
    let ci = Run {
        warmup: 15,
        steady: 75,
        drain: 0,
    };
    for mib_per_min in [0.0, 1.0, 4.0, 16.0] {
        let t = tally(500, |seed| {
            memory_run(
                ci,
                Noise::REALISTIC,
                move |t| 80.0 * MIB + mib_per_min * MIB * t / 60.0,
                seed + 50_000,
            )
        });
        println!("{}", t.row(&format!("leak {mib_per_min:>4} MiB/min")));
    }

    let quiet = Noise {
        ar_sigma: 64.0 * KIB,
        white_sigma: 16.0 * KIB,
        spike_prob: 0.0,
        ..Noise::REALISTIC
    };
    for mib_per_min in [0.0, 1.0] {
        let t = tally(500, |seed| {
            memory_run(
                ci,
                quiet,
                move |t| 80.0 * MIB + mib_per_min * MIB * t / 60.0,
                seed + 55_000,
            )
        });
        println!(
            "{}",
            t.row(&format!(
                "leak {mib_per_min:>4} MiB/min, quiet noise (64 KiB)"
            ))
        );
    }

    let config = LeakConfig::default();
    let true_slope = 256.0 * KIB * 60.0;
    let covered = (0..500)
        .filter(|&seed| {
            let series = memory_run(
                ten,
                Noise::REALISTIC,
                move |t| 80.0 * MIB + 256.0 * KIB * t / 60.0,
                seed + 60_000,
            );
            let report = analyze(&series, &config);
            let ci = report
                .metric(Metric::Rss)
                .and_then(|m| m.trend.numbers.as_ref())
                .map(|n| n.slope_ci_per_hour);
            ci.is_some_and(|[lo, hi]| lo <= true_slope && true_slope <= hi)
        })
        .count();
    println!(
        "\nslope CI (nominal 98 %) covers the true 256 KiB/min slope in {:.1} % of 500 runs",
        covered as f64 / 5.0
    );
}
