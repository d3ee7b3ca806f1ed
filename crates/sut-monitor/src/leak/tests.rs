//! Verdicts on synthetic series with known shapes (see [`super::synthetic`]).

use super::synthetic::*;
use super::*;
use crate::monitor::Phase;

/// A 10-minute run whose memory is `level(t)` + realistic noise, healthy counts.
fn memory_run(level: impl Fn(f64) -> f64, seed: u64) -> ResourceSeries {
    let run = Run::TEN_MINUTES;
    let mut r = rng(seed);
    let rss = noisy_memory(level, Noise::REALISTIC, run.warmup + run.steady, &mut r);
    build(run, &rss, steady_counts(seed), &mut r)
}

#[test]
fn clean_noisy_plateau_never_leaks() {
    let mut passes = 0;
    for seed in 0..100 {
        let report = analyze(
            &memory_run(warmed(80.0 * MIB), seed),
            &LeakConfig::default(),
        );
        assert_ne!(
            report.verdict,
            Verdict::Leak,
            "seed {seed}: {:?}",
            report.reasons
        );
        assert_ne!(
            report.verdict,
            Verdict::Growth,
            "seed {seed}: {:?}",
            report.reasons
        );
        passes += usize::from(report.verdict == Verdict::Pass);
    }
    assert!(passes >= 95, "only {passes}/100 clean runs passed");
}

#[test]
fn leak_of_256_kib_per_minute_over_ten_minutes_is_caught() {
    for seed in 0..20 {
        let leaking = move |t: f64| warmed(80.0 * MIB)(t) + 256.0 * KIB * t / 60.0;
        let report = analyze(&memory_run(leaking, seed), &LeakConfig::default());
        assert_eq!(
            report.verdict,
            Verdict::Leak,
            "seed {seed}: {:?}",
            report.reasons
        );
        let rss = report
            .metric(Metric::Rss)
            .and_then(|m| m.trend.numbers.clone())
            .expect("numbers");
        let true_slope = 256.0 * KIB * 60.0;
        assert!(
            (rss.slope_per_hour / true_slope - 1.0).abs() < 0.3,
            "seed {seed}: slope {}",
            rss.slope_per_hour
        );
    }
}

/// A 10-minute GC-like sawtooth: 24 MiB cycles every ~45 s, floors rising by `floor_per_min`.
fn sawtooth_run(floor_per_min: f64, seed: u64) -> ResourceSeries {
    let run = Run::TEN_MINUTES;
    let mut r = rng(seed);
    let rss = sawtooth(
        |t| 120.0 * MIB + floor_per_min * t / 60.0,
        24.0 * MIB,
        45.0,
        run.warmup + run.steady,
        &mut r,
    );
    build(run, &rss, steady_counts(seed), &mut r)
}

#[test]
fn sawtooth_is_judged_on_its_floors() {
    // (floor growth per minute, expected RSS verdict)
    let cases = [
        (0.0, Verdict::Pass),
        (512.0 * KIB, Verdict::Leak),
        (256.0 * KIB, Verdict::Leak),
    ];
    for (floor_per_min, want) in cases {
        for seed in 0..20 {
            let report = analyze(&sawtooth_run(floor_per_min, seed), &LeakConfig::default());
            let rss = report.metric(Metric::Rss).expect("rss");
            assert_eq!(
                rss.verdict, want,
                "floor {floor_per_min}/min seed {seed}: {}",
                rss.trend.reason
            );
            assert_eq!(
                rss.trend.numbers.as_ref().map(|n| n.basis),
                Some(Basis::CycleFloors)
            );
        }
    }
}

#[test]
fn shapes_that_are_not_leaks_pass() {
    // (name, level(t)) over a 10-minute run with a 2-minute warm-up
    type Level = Box<dyn Fn(f64) -> f64>;
    let cases: Vec<(&str, Level)> = vec![
        ("flat", Box::new(|_| 64.0 * MIB)),
        (
            "warm-up levelling off in steady",
            Box::new(|t| 64.0 * MIB - 24.0 * MIB * (-t / 30.0).exp()),
        ),
        ("shrinking", Box::new(|t| 96.0 * MIB - 16.0 * KIB * t)),
        (
            "slow growth under the limit",
            Box::new(|t| 64.0 * MIB + 16.0 * KIB * t / 60.0),
        ),
    ];
    for (name, level) in cases {
        let mut passes = 0;
        for seed in 0..10 {
            let report = analyze(&memory_run(&level, seed), &LeakConfig::default());
            let rss = report.metric(Metric::Rss).expect("rss");
            // Never a leak; occasionally the noise leaves a 10-minute window undecided.
            assert_ne!(
                rss.verdict,
                Verdict::Leak,
                "{name} seed {seed}: {}",
                rss.trend.reason
            );
            passes += usize::from(rss.verdict == Verdict::Pass);
        }
        assert!(passes >= 8, "{name}: only {passes}/10 passed");
    }
}

#[test]
fn a_one_time_step_is_never_a_leak_and_passes_once_the_window_is_long_enough() {
    let step = |at: f64| move |t: f64| 64.0 * MIB + if t > at { 8.0 * MIB } else { 0.0 };
    for seed in 0..10 {
        // 10-minute run, step in the second quarter: flat afterwards, but the step blurs the trend statistics.
        let short = analyze(&memory_run(step(330.0), seed), &LeakConfig::default());
        let verdict = short.metric(Metric::Rss).map(|m| m.verdict);
        assert!(
            matches!(verdict, Some(Verdict::Pass | Verdict::Inconclusive)),
            "seed {seed}: {:?}",
            short.reasons
        );
        // 30-minute run, step early in the steady window.
        let run = Run {
            warmup: 120,
            steady: 1680,
            drain: 0,
        };
        let mut r = rng(seed);
        let rss = noisy_memory(step(400.0), Noise::REALISTIC, run.len(), &mut r);
        let long = analyze(
            &build(run, &rss, steady_counts(seed), &mut r),
            &LeakConfig::default(),
        );
        let m = long.metric(Metric::Rss).expect("rss");
        assert_eq!(m.verdict, Verdict::Pass, "seed {seed}: {}", m.trend.reason);
    }
}

#[test]
fn noiseless_linear_leak_numbers_are_exact() {
    let run = Run::TEN_MINUTES;
    let rss: Vec<f64> = (0..run.warmup + run.steady)
        .map(|i| 64.0 * MIB + 4096.0 * i as f64)
        .collect();
    let series = build(run, &rss, |_| (40, 20, 8), &mut rng(1));
    let report = analyze(&series, &LeakConfig::default());
    assert_eq!(report.verdict, Verdict::Leak);
    let n = report
        .metric(Metric::Rss)
        .and_then(|m| m.trend.numbers.clone())
        .expect("numbers");
    assert!(
        (n.slope_per_hour - 4096.0 * 3600.0).abs() / (4096.0 * 3600.0) < 0.01,
        "{}",
        n.slope_per_hour
    );
    assert_eq!(n.basis, Basis::BinMedians);
    assert_eq!(n.points, 120);
    assert!(n.p_value < 1e-6);
    // Counts are constant: exact PASS with a zero-width interval.
    let fds = report
        .metric(Metric::Fds)
        .and_then(|m| m.trend.numbers.clone())
        .expect("numbers");
    assert_eq!(
        (fds.slope_per_hour, fds.slope_ci_per_hour),
        (0.0, [0.0, 0.0])
    );
}

/// A run with noise-free memory and counts from `counts(t)`.
fn counts_run(run: Run, counts: impl Fn(f64) -> Counts) -> ResourceSeries {
    let rss = vec![64.0 * MIB; run.len()];
    build(run, &rss, counts, &mut rng(7))
}

#[test]
fn count_growth_and_drain() {
    let run = Run {
        warmup: 30,
        steady: 300,
        drain: 60,
    };
    let in_drain = |t: f64| t >= 330.0;
    // (name, counts(t), metric, expected verdict)
    type CountsFn = Box<dyn Fn(f64) -> Counts>;
    let cases: Vec<(&str, CountsFn, Metric, Verdict)> = vec![
        (
            "healthy, drains",
            Box::new(move |t| {
                if in_drain(t) {
                    (12, 1, 8)
                } else {
                    (40 + (t as u64 % 4), 20, 8)
                }
            }),
            Metric::Fds,
            Verdict::Pass,
        ),
        (
            "an fd per 10 s",
            Box::new(|t| (40 + (t / 10.0) as u64, 20, 8)),
            Metric::Fds,
            Verdict::Growth,
        ),
        (
            "a socket per 5 s",
            Box::new(|t| (40, 20 + (t / 5.0) as u64, 8)),
            Metric::Sockets,
            Verdict::Growth,
        ),
        (
            "a thread per minute",
            Box::new(|t| (40, 20, 8 + (t / 60.0) as u64)),
            Metric::Threads,
            Verdict::Growth,
        ),
        (
            "fds never drain",
            Box::new(move |t| {
                if in_drain(t) {
                    (140, 1, 8)
                } else {
                    (140, 20, 8)
                }
            }),
            Metric::Fds,
            Verdict::Growth,
        ),
        (
            "threads drain late",
            Box::new(move |t| if t >= 380.0 { (12, 1, 8) } else { (40, 20, 30) }),
            Metric::Threads,
            Verdict::Growth,
        ),
    ];
    for (name, counts, metric, want) in cases {
        let mut series = counts_run(run, counts);
        // pre-load baseline: 12 fds, 1 listening socket, 8 threads
        series.samples[0].fds = 12;
        series.samples[0].socket_fds = 1;
        series.samples[0].threads = 8;
        let report = analyze(&series, &LeakConfig::default());
        let m = report.metric(metric).expect("metric");
        assert_eq!(m.verdict, want, "{name}: {:?}", report.reasons);
        assert_eq!(report.verdict, want, "{name}: overall");
    }
}

#[test]
fn metrics_the_platform_cannot_read_are_named_not_judged() {
    let run = Run {
        warmup: 30,
        steady: 300,
        drain: 0,
    };
    // Zeros where the platform reads nothing; an fd "growth" that must not be judged either.
    let mut series = counts_run(run, |t| ((t / 10.0) as u64, 0, 0));
    series.unavailable_columns = ["rss_anon_bytes", "threads", "fds", "socket_fds"]
        .map(String::from)
        .to_vec();
    let report = analyze(&series, &LeakConfig::default());
    assert_eq!(report.verdict, Verdict::Pass, "{:?}", report.reasons);
    let judged: Vec<Metric> = report.metrics.iter().map(|m| m.metric).collect();
    assert_eq!(judged, [Metric::Rss]);
    assert_eq!(
        report.sampling.not_available_on_platform,
        [
            Metric::RssAnon,
            Metric::Fds,
            Metric::Sockets,
            Metric::Threads
        ]
    );
    assert_eq!(
        report.reasons,
        ["rss_anon, fds, sockets, threads: not available on this platform or source (not judged)"]
    );
    let json = serde_json::to_value(&report).expect("serializes");
    assert_eq!(
        json["sampling"]["not_available_on_platform"],
        serde_json::json!(["rss_anon", "fds", "sockets", "threads"])
    );
}

#[test]
fn drain_observed_too_briefly_is_inconclusive() {
    let run = Run {
        warmup: 30,
        steady: 120,
        drain: 5,
    };
    let mut series = counts_run(run, |_| (140, 20, 8));
    series.samples[0].fds = 12;
    let drain = analyze(&series, &LeakConfig::default())
        .metric(Metric::Fds)
        .and_then(|m| m.drain.clone());
    assert_eq!(drain.map(|d| d.verdict), Some(Verdict::Inconclusive));
}

#[test]
fn gaps_make_the_run_invalid_never_pass() {
    let mut series = memory_run(warmed(80.0 * MIB), 3);
    assert_eq!(
        analyze(&series, &LeakConfig::default()).verdict,
        Verdict::Pass
    );
    // Drop 4 consecutive samples: a 5 s hole with a 1 s interval.
    series.samples.drain(300..304);
    let report = analyze(&series, &LeakConfig::default());
    assert_eq!(report.verdict, Verdict::Invalid);
    assert_eq!(report.sampling.gaps.len(), 1);
    assert!(
        report.reasons.iter().any(|r| r.contains("gap")),
        "{:?}",
        report.reasons
    );
    assert_eq!(report.exit_code(), 5);
}

#[test]
fn short_runs_are_inconclusive_and_say_how_long_is_enough() {
    let run = Run {
        warmup: 10,
        steady: 20,
        drain: 0,
    };
    let rss = noisy_memory(|_| 64.0 * MIB, Noise::REALISTIC, 30, &mut rng(5));
    let report = analyze(
        &build(run, &rss, |_| (40, 20, 8), &mut rng(5)),
        &LeakConfig::default(),
    );
    assert_eq!(report.verdict, Verdict::Inconclusive);
    let rss = report.metric(Metric::Rss).expect("rss");
    assert_eq!(rss.trend.steady_secs_needed, Some(30.0));
    assert!(
        rss.trend.reason.contains("shorter than"),
        "{}",
        rss.trend.reason
    );
}

#[test]
fn noisy_short_window_is_inconclusive_with_a_longer_duration_suggested() {
    // 60 s steady with heavy jitter: a 4 MiB/h leak can neither be seen nor ruled out.
    let run = Run {
        warmup: 10,
        steady: 60,
        drain: 0,
    };
    let heavy = Noise {
        white_sigma: 2.0 * MIB,
        ..Noise::REALISTIC
    };
    let mut inconclusive = 0;
    for seed in 0..20 {
        let rss = noisy_memory(|_| 64.0 * MIB, heavy, 70, &mut rng(seed));
        let report = analyze(
            &build(run, &rss, |_| (40, 20, 8), &mut rng(seed)),
            &LeakConfig::default(),
        );
        let m = report.metric(Metric::Rss).expect("rss");
        assert_ne!(m.verdict, Verdict::Leak, "seed {seed}: {}", m.trend.reason);
        if m.verdict == Verdict::Inconclusive {
            inconclusive += 1;
            assert!(
                m.trend.steady_secs_needed.is_some_and(|s| s > 60.0),
                "{:?}",
                m.trend
            );
        }
    }
    assert!(inconclusive >= 15, "only {inconclusive}/20 inconclusive");
}

#[test]
fn crash_and_peak_limits() {
    let mut series = memory_run(warmed(80.0 * MIB), 9);
    series.exited_at_secs = Some(599.5);
    let report = analyze(&series, &LeakConfig::default());
    assert_eq!((report.verdict, report.exit_code()), (Verdict::Crashed, 4));

    let series = memory_run(warmed(80.0 * MIB), 9);
    let config = LeakConfig {
        peak: PeakLimits {
            rss_bytes: Some(64 << 20),
            fds: Some(30),
            threads: None,
        },
        ..LeakConfig::default()
    };
    let report = analyze(&series, &config);
    assert_eq!(
        report.metric(Metric::Rss).map(|m| m.verdict),
        Some(Verdict::Leak)
    );
    assert_eq!(
        report.metric(Metric::Fds).map(|m| m.verdict),
        Some(Verdict::Growth)
    );
    assert_eq!((report.verdict, report.exit_code()), (Verdict::Leak, 1));
    assert!(
        report
            .reasons
            .iter()
            .any(|r| r.contains("exceeds the limit")),
        "{:?}",
        report.reasons
    );
}

#[test]
fn long_soak_is_binned_and_still_judged() {
    // 3 hours at 1 Hz: a slow 64 KiB/min leak (3.75 MiB/h) on a 1 GiB process is under its 1 %/h limit; 4x is not.
    let run = Run {
        warmup: 600,
        steady: 10_200,
        drain: 0,
    };
    for (per_min, want) in [
        (64.0 * KIB, Verdict::Pass),
        (256.0 * KIB * 4.0, Verdict::Leak),
    ] {
        let mut r = rng(11);
        let rss = noisy_memory(
            |t| 1024.0 * MIB + per_min * t / 60.0,
            Noise::REALISTIC,
            run.len(),
            &mut r,
        );
        let report = analyze(
            &build(run, &rss, steady_counts(1), &mut r),
            &LeakConfig::default(),
        );
        let m = report.metric(Metric::Rss).expect("rss");
        assert_eq!(m.verdict, want, "{per_min}: {}", m.trend.reason);
        assert_eq!(
            m.trend.numbers.as_ref().map(|n| (n.basis, n.points)),
            Some((Basis::BinMedians, 120))
        );
    }
}

#[test]
fn report_serializes_and_renders() {
    let report = analyze(
        &memory_run(|t| 64.0 * MIB + 512.0 * KIB * t / 60.0, 2),
        &LeakConfig::default(),
    );
    let json = serde_json::to_string(&report).expect("serializes");
    assert!(json.contains("\"verdict\":\"LEAK\""), "{json}");
    let back: LeakReport = serde_json::from_str(&json).expect("round-trips");
    assert_eq!(back.verdict, report.verdict);
    let mut table = Vec::new();
    report.write_table(&mut table).expect("renders");
    let table = String::from_utf8(table).expect("utf8");
    assert!(table.starts_with("Resource verdict: LEAK"), "{table}");
    assert!(table.contains("rss ") && table.contains("MiB/h"), "{table}");
}

#[test]
fn live_slope_follows_the_steady_samples() {
    let series = memory_run(|t| 64.0 * MIB + 60.0 * KIB * t, 4);
    let slope = live_slope_per_hour(&series, Metric::Rss).expect("slope");
    assert!((slope / (60.0 * KIB * 3600.0) - 1.0).abs() < 0.1, "{slope}");
    let mut warm_only = series.clone();
    warm_only
        .samples
        .iter_mut()
        .for_each(|s| s.phase = Phase::WarmUp);
    assert_eq!(live_slope_per_hour(&warm_only, Metric::Rss), None);
}

/// A 10-minute run whose open sockets are `sockets(t)` and whose memory is `memory(t, sockets)` + realistic noise.
fn load_run(
    sockets: impl Fn(f64) -> f64,
    memory: impl Fn(f64, f64) -> f64,
    seed: u64,
) -> ResourceSeries {
    let run = Run::TEN_MINUTES;
    let mut r = rng(seed);
    let level = |t: f64| memory(t, sockets(t));
    let rss = noisy_memory(level, Noise::REALISTIC, run.len(), &mut r);
    let counts = |t: f64| {
        let s = sockets(t).round() as u64;
        (s + 9, s, 8)
    };
    build(run, &rss, counts, &mut r)
}

/// The guard switched off, to show what the memory verdict would be without it.
fn without_load_guard() -> LeakConfig {
    let mut config = LeakConfig::default();
    config.load.ratio = f64::INFINITY;
    config
}

#[test]
fn memory_following_a_late_rise_of_connections_is_inconclusive_not_leak() {
    // The false-LEAK shape of the loaded-box runs: from t = 420 s the box slows, open sockets climb from 10 to
    // ~130 and a clean proxy's memory follows them (48 KiB a connection), still rising at the end.
    let sockets = |t: f64| 10.0 + (t - 420.0).max(0.0) * 0.7;
    let memory = |t: f64, s: f64| warmed(64.0 * MIB)(t) + 48.0 * KIB * (s - 10.0);
    let mut shape_leaks = 0;
    for seed in 0..10 {
        let series = load_run(sockets, memory, seed);
        let unguarded = analyze(&series, &without_load_guard());
        let report = analyze(&series, &LeakConfig::default());
        for metric in [Metric::Rss, Metric::RssAnon] {
            let after = report.metric(metric).expect("metric");
            assert_ne!(after.verdict, Verdict::Leak, "seed {seed}: {metric:?}");
            if unguarded.metric(metric).map(|m| m.verdict) != Some(Verdict::Leak) {
                continue;
            }
            shape_leaks += 1;
            assert_eq!(
                after.verdict,
                Verdict::Inconclusive,
                "seed {seed}: {metric:?}"
            );
            assert!(
                after
                    .trend
                    .reason
                    .starts_with("open sockets rose from 10 to ")
                    && after.trend.reason.contains("in the final quarter"),
                "seed {seed}: {}",
                after.trend.reason
            );
        }
        // The counts keep their own verdicts; the run is never PASS.
        for metric in [Metric::Fds, Metric::Sockets, Metric::Threads] {
            assert_eq!(
                report.metric(metric).map(|m| m.verdict),
                unguarded.metric(metric).map(|m| m.verdict),
                "seed {seed}: {metric:?}"
            );
        }
        assert_ne!(report.verdict, Verdict::Pass, "seed {seed}");
        assert_ne!(report.verdict, Verdict::Leak, "seed {seed}");
    }
    // Without the guard this shape is a (false) LEAK nearly every time.
    assert!(shape_leaks >= 16, "only {shape_leaks}/20 unguarded LEAKs");
}

#[test]
fn a_leak_under_steady_or_breathing_connections_is_still_a_leak() {
    // (name, sockets(t)): the guard needs > 2× AND +20 sockets in the last quarter over the second.
    type Sockets = Box<dyn Fn(f64) -> f64>;
    let cases: Vec<(&str, Sockets)> = vec![
        ("steady 20", Box::new(|_| 20.0)),
        (
            "breathing 10 then 25",
            Box::new(|t| if t < 360.0 { 10.0 } else { 25.0 }),
        ),
        (
            "big pool 100 then 160",
            Box::new(|t| if t < 360.0 { 100.0 } else { 160.0 }),
        ),
        (
            "tiny pool 3 then 12",
            Box::new(|t| if t < 360.0 { 3.0 } else { 12.0 }),
        ),
        (
            "falling 120 to 10",
            Box::new(|t| (120.0 - t / 4.0).max(10.0)),
        ),
    ];
    let leaking = |t: f64, _| warmed(80.0 * MIB)(t) + 256.0 * KIB * t / 60.0;
    for (name, sockets) in &cases {
        for seed in 0..10 {
            let report = analyze(&load_run(sockets, leaking, seed), &LeakConfig::default());
            let rss = report.metric(Metric::Rss).expect("rss");
            assert_eq!(
                rss.verdict,
                Verdict::Leak,
                "{name} seed {seed}: {}",
                rss.trend.reason
            );
            assert_eq!(report.verdict, Verdict::Leak, "{name} seed {seed}");
        }
    }
}

#[test]
fn a_hard_peak_limit_is_a_leak_even_under_unsteady_load() {
    let sockets = |t: f64| 10.0 + (t - 420.0).max(0.0) * 0.7;
    let memory = |t: f64, s: f64| warmed(64.0 * MIB)(t) + 48.0 * KIB * (s - 10.0);
    let mut config = LeakConfig::default();
    config.peak.rss_bytes = Some(66 << 20);
    let report = analyze(&load_run(sockets, memory, 3), &config);
    let rss = report.metric(Metric::Rss).expect("rss");
    assert_eq!(
        rss.trend.verdict,
        Verdict::Inconclusive,
        "{}",
        rss.trend.reason
    );
    assert_eq!(
        (rss.verdict, report.verdict),
        (Verdict::Leak, Verdict::Leak)
    );
}

#[test]
fn a_leak_already_visible_before_the_load_rose_is_still_a_leak() {
    // 512 KiB/min leak; from t = 480 s (the last quarter) the box slows and connections climb from 10 to ~94.
    let sockets = |t: f64| 10.0 + (t - 480.0).max(0.0) * 0.7;
    let memory =
        |t: f64, s: f64| warmed(64.0 * MIB)(t) + 512.0 * KIB * t / 60.0 + 48.0 * KIB * (s - 10.0);
    for seed in 0..10 {
        let report = analyze(&load_run(sockets, memory, seed), &LeakConfig::default());
        let rss = report.metric(Metric::Rss).expect("rss");
        assert_eq!(
            rss.verdict,
            Verdict::Leak,
            "seed {seed}: {}",
            rss.trend.reason
        );
        assert!(
            rss.trend.reason.contains("while the load was steady")
                && rss.trend.reason.contains("open sockets rose from 10 to "),
            "seed {seed}: {}",
            rss.trend.reason
        );
        let window = rss.trend.numbers.as_ref().map_or(0.0, |n| n.window_secs);
        assert!(
            (360.0..=380.0).contains(&window),
            "seed {seed}: judged {window} s"
        );
    }
}

#[test]
fn too_few_cycle_floors_are_judged_on_the_samples() {
    // One burst at t = 150 s (+3 MiB) released in three 1 MiB steps: three "drops", but no sawtooth. Before,
    // three floors (< min_cycles) made the verdict INCONCLUSIVE; now the samples are judged.
    let burst = |t: f64| {
        let released = [200.0, 250.0, 300.0].iter().filter(|&&at| t >= at).count();
        if t >= 150.0 {
            (3 - released) as f64 * MIB
        } else {
            0.0
        }
    };
    let quiet = Noise {
        phi: 0.9,
        ar_sigma: 32.0 * KIB,
        white_sigma: 8.0 * KIB,
        spike_prob: 0.0,
        spike_bytes: 0.0,
    };
    // (leak per minute, expected rss verdict)
    let cases = [(0.0, Verdict::Pass), (1024.0 * KIB, Verdict::Leak)];
    for (leak_per_min, want) in cases {
        for seed in 0..5 {
            let run = Run::TEN_MINUTES;
            let mut r = rng(seed);
            let level = |t: f64| 64.0 * MIB + burst(t) + leak_per_min * t / 60.0;
            let rss = noisy_memory(level, quiet, run.len(), &mut r);
            let series = build(run, &rss, steady_counts(seed), &mut r);
            let steady = series::phase_points(&series, Metric::Rss, Phase::Steady);
            let floors = series::cycle_floors(&steady).map_or(0, |f| f.floors.len());
            assert!(
                (3..LeakConfig::default().min_cycles).contains(&floors),
                "seed {seed}: {floors} floors"
            );
            let report = analyze(&series, &LeakConfig::default());
            let m = report.metric(Metric::Rss).expect("rss");
            assert_eq!(
                m.verdict, want,
                "{leak_per_min} seed {seed}: {}",
                m.trend.reason
            );
            let basis = m.trend.numbers.as_ref().map(|n| n.basis);
            assert_eq!(basis, Some(Basis::BinMedians), "seed {seed}");
        }
    }
}

/// A `harness watch` of `secs` seconds (1-minute warm-up) on memory `level(t)` + `noise`, healthy counts.
fn watch_run(level: impl Fn(f64) -> f64, noise: Noise, secs: usize, seed: u64) -> ResourceSeries {
    let run = Run {
        warmup: 60,
        steady: secs - 60,
        drain: 0,
    };
    let mut r = rng(seed);
    let rss = noisy_memory(level, noise, run.len(), &mut r);
    build(run, &rss, steady_counts(seed), &mut r)
}

/// 20 MB allocated and freed every 30 s (a `shape` cycle starting `seed × 7.3` s in), on top of 64 MiB and a
/// `leak_per_min` leak, watched for `secs` seconds.
fn periodic_run(
    shape: CycleShape,
    leak_per_min: f64,
    noise: Noise,
    secs: usize,
    seed: u64,
) -> ResourceSeries {
    let wave = cycle(shape, 20e6, 30.0, seed as f64 * 7.3);
    let level = |t: f64| 64.0 * MIB + leak_per_min * t / 60.0 + wave(t);
    watch_run(level, noise, secs, seed)
}

const BURST: CycleShape = CycleShape::Burst { burst_secs: 2.0 };

/// Allocator noise half the realistic model's (AR(1) σ 128 KiB; jitter and spikes as realistic).
const MODERATE: Noise = Noise {
    ar_sigma: 128.0 * KIB,
    ..Noise::REALISTIC
};

#[test]
fn periodic_memory_is_judged_on_its_cycles_within_ten_minutes() {
    // (shape, leak per minute, noise, watch length s, expected rss verdict)
    let cases = [
        (CycleShape::Square, 0.0, MODERATE, 360, Verdict::Pass),
        (CycleShape::Square, 0.0, MODERATE, 600, Verdict::Pass),
        (
            CycleShape::Square,
            3e6,
            Noise::REALISTIC,
            360,
            Verdict::Leak,
        ),
        (BURST, 0.0, MODERATE, 360, Verdict::Pass),
        (BURST, 0.0, MODERATE, 600, Verdict::Pass),
        (BURST, 3e6, Noise::REALISTIC, 360, Verdict::Leak),
        (CycleShape::Ramp, 0.0, MODERATE, 600, Verdict::Pass),
        (CycleShape::Ramp, 3e6, Noise::REALISTIC, 360, Verdict::Leak),
    ];
    for (shape, leak_per_min, noise, secs, want) in cases {
        for seed in 0..20 {
            let series = periodic_run(shape, leak_per_min, noise, secs, seed);
            let report = analyze(&series, &LeakConfig::default());
            let rss = report.metric(Metric::Rss).expect("rss");
            let what = format!("{shape:?} {leak_per_min}/min {secs} s seed {seed}");
            assert_eq!(rss.verdict, want, "{what}: {}", rss.trend.reason);
            let numbers = rss.trend.numbers.as_ref().expect("numbers");
            assert_eq!(numbers.basis, Basis::CycleFloors, "{what}");
            let period = numbers.cycle_period_secs.unwrap_or(0.0);
            assert!((29.0..=31.0).contains(&period), "{what}: period {period}");
            assert!(
                rss.trend.reason.starts_with("floors of a 30 s cycle: "),
                "{what}"
            );
        }
    }
}

#[test]
fn periodic_memory_with_realistic_noise_passes_in_ten_minutes_and_never_leaks() {
    for shape in [CycleShape::Square, BURST, CycleShape::Ramp] {
        let mut passes = 0;
        for seed in 0..40 {
            let report = analyze(
                &periodic_run(shape, 0.0, Noise::REALISTIC, 600, seed),
                &LeakConfig::default(),
            );
            let rss = report.metric(Metric::Rss).expect("rss");
            assert_ne!(rss.verdict, Verdict::Leak, "{shape:?} seed {seed}");
            passes += usize::from(rss.verdict == Verdict::Pass);
        }
        assert!(passes >= 36, "{shape:?}: only {passes}/40 passed");
    }
}

#[test]
fn cycle_peaks_that_keep_rising_are_a_leak() {
    // Each 30 s burst needs 3 MB more than the one before; the floors stay flat.
    let quiet = Noise {
        ar_sigma: 32.0 * KIB,
        spike_prob: 0.0,
        ..Noise::REALISTIC
    };
    for seed in 0..10 {
        let wave = cycle(BURST, 1.0, 30.0, seed as f64 * 7.3);
        let level = |t: f64| 64.0 * MIB + wave(t) * (20e6 + 3e6 * t / 60.0);
        let report = analyze(&watch_run(level, quiet, 600, seed), &LeakConfig::default());
        let rss = report.metric(Metric::Rss).expect("rss");
        assert_eq!(
            rss.verdict,
            Verdict::Leak,
            "seed {seed}: {}",
            rss.trend.reason
        );
        assert!(
            rss.trend.reason.starts_with("peaks of a 30 s cycle: "),
            "{}",
            rss.trend.reason
        );
        let basis = rss.trend.numbers.as_ref().map(|n| n.basis);
        assert_eq!(basis, Some(Basis::CyclePeaks), "seed {seed}");
    }
}

#[test]
fn noise_alone_is_not_periodic() {
    // (name, level, noise): wandering, jittery and stepped series have no cycle to judge.
    let heavy = Noise {
        phi: 0.98,
        ar_sigma: 2.0 * MIB,
        ..Noise::REALISTIC
    };
    type Level = Box<dyn Fn(f64) -> f64>;
    let cases: Vec<(&str, Level, Noise)> = vec![
        (
            "realistic plateau",
            Box::new(|_| 64.0 * MIB),
            Noise::REALISTIC,
        ),
        ("slow heavy wander", Box::new(|_| 64.0 * MIB), heavy),
        (
            "leak",
            Box::new(|t| 64.0 * MIB + 3e6 * t / 60.0),
            Noise::REALISTIC,
        ),
    ];
    for (name, level, noise) in cases {
        for seed in 0..20 {
            let series = watch_run(&level, noise, 600, seed);
            let steady = series::phase_points(&series, Metric::Rss, Phase::Steady);
            let found = cycles::periodic_cycles(&steady, LeakConfig::default().min_cycles);
            assert_eq!(found.map(|c| c.period_secs), None, "{name} seed {seed}");
        }
    }
}

#[test]
fn gross_growth_is_growth_without_a_steady_window() {
    // Five minutes, all warm-up (the steady window is 0 s), realistic noise.
    let all_warmup = Run {
        warmup: 300,
        steady: 0,
        drain: 0,
    };
    let defaults = LeakConfig::default();
    let small = LeakConfig {
        gross_growth: GrossGrowthLimit {
            ratio: 2.0,
            min_growth: 64.0 * MIB,
        },
        ..LeakConfig::default()
    };
    type Level = Box<dyn Fn(f64) -> f64>;
    // (name, level(t), config, expected rss verdict)
    let cases: Vec<(&str, Level, &LeakConfig, Verdict)> = vec![
        (
            "16 KB a request at 100 req/s: 54 -> 496 MB",
            Box::new(|t| 54e6 + (496e6 - 54e6) / 300.0 * t),
            &defaults,
            Verdict::Growth,
        ),
        (
            "a warm-up that filled 350 MiB and levelled off",
            Box::new(|t| 50.0 * MIB + 350.0 * MIB * (1.0 - (-t / 30.0).exp())),
            &defaults,
            Verdict::Inconclusive,
        ),
        (
            "x4 but only +90 MiB",
            Box::new(|t| 30.0 * MIB + 0.3 * MIB * t),
            &defaults,
            Verdict::Inconclusive,
        ),
        (
            "+300 MiB on 1 GiB is not x3",
            Box::new(|t| 1024.0 * MIB + MIB * t),
            &defaults,
            Verdict::Inconclusive,
        ),
        (
            "x4 and +90 MiB with a lower configured limit",
            Box::new(|t| 30.0 * MIB + 0.3 * MIB * t),
            &small,
            Verdict::Growth,
        ),
    ];
    for (name, level, config, want) in cases {
        for seed in 0..5 {
            let mut r = rng(seed);
            let rss = noisy_memory(&level, Noise::REALISTIC, all_warmup.len(), &mut r);
            let series = build(all_warmup, &rss, steady_counts(seed), &mut r);
            let report = analyze(&series, config);
            let m = report.metric(Metric::Rss).expect("rss");
            assert_eq!(m.verdict, want, "{name} seed {seed}: {:?}", report.reasons);
            let gross = m.gross_growth.as_ref().expect("checked");
            assert_eq!(
                gross.verdict == Verdict::Growth,
                want == Verdict::Growth,
                "{name}"
            );
            if want == Verdict::Growth {
                assert_eq!(report.verdict, Verdict::Growth, "{name}");
                assert!(
                    report
                        .reasons
                        .iter()
                        .any(|r| r.starts_with("rss: grew from ") && r.contains("still rising")),
                    "{name}: {:?}",
                    report.reasons
                );
            }
        }
    }
    // Counts are not checked, and a run too short for a start and an end level has no check.
    let series = memory_run(warmed(80.0 * MIB), 1);
    let report = analyze(&series, &LeakConfig::default());
    assert_eq!(
        report
            .metric(Metric::Fds)
            .and_then(|m| m.gross_growth.clone()),
        None
    );
    let mut short = series.clone();
    short.samples.truncate(8);
    let report = analyze(&short, &LeakConfig::default());
    assert_eq!(
        report
            .metric(Metric::Rss)
            .and_then(|m| m.gross_growth.clone()),
        None
    );
}
