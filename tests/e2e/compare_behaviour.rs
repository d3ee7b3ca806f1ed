//! `harness compare` on real runs: `scenarios/key_rate_limited.toml` cut to 8 s, run once against the default
//! reference proxy, once more against it (a rerun), and once against the misbehaving fixture with its
//! `first-key-only` defect (every request starts at the first key, so key fairness collapses to about 1/3).
//! Each run's results directory is wrapped in a suite directory with a hand-written `suite.json`, as a suite run
//! writes it. Comparing the reference suite with the defect's must exit 1 naming the scenario and key fairness;
//! with the rerun it must exit 0; a suite against a single run is bad input (exit 2).
//!
//! The load figures' budgets are turned off here: three 8-second runs share the machine's cores at once, so their
//! latency and throughput are noise. The behaviour budgets stay at their defaults, which is what is under test.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use common::{harness_bin, misbehaving_command, run_scenario_file, temp_dir};

const SCENARIO: &str = "key_rate_limited";
const RUN_TIME: &str = "16s";

/// The load-figure budgets off, the behaviour budgets at their defaults.
const BEHAVIOUR_ONLY_BUDGET: &str = "\
throughput_drop_percent = false
p95_increase_percent = false
p99_increase_percent = false
error_percent_increase_points = false
ttft_p95_increase_percent = false
rss_slope_increase_percent = false
rss_peak_increase_percent = false
";

/// Runs `scenario` into `suite/<SCENARIO>/` and writes `suite/suite.json` around it; returns the summary.
async fn run_as_suite(scenario: &Path, suite: &Path) -> serde_json::Value {
    let (output, summary) = run_scenario_file(
        scenario,
        &suite.join(SCENARIO),
        &["-t".to_string(), RUN_TIME.to_string()],
        Duration::from_secs(120),
    )
    .await;
    let index = serde_json::json!({
        "kind": "suite",
        "started": summary["started_at"],
        "profile": null,
        "verdict": summary["verdict"],
        "exit_code": output.status.code(),
        "runs": [{
            "scenario": SCENARIO,
            "file": scenario.display().to_string(),
            "dir": SCENARIO,
            "verdict": summary["verdict"],
            "exit_code": output.status.code(),
            "duration_secs": summary["duration_secs"],
        }],
    });
    std::fs::write(suite.join("suite.json"), index.to_string()).expect("write suite.json");
    summary
}

fn compare(baseline: &Path, current: &Path, extra: &[&Path]) -> Output {
    std::process::Command::new(harness_bin())
        .arg("compare")
        .arg(baseline)
        .arg(current)
        .args(extra)
        .output()
        .expect("run harness compare")
}

fn describe(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn fairness(summary: &serde_json::Value) -> f64 {
    summary["engine"]["behaviour"]["measurements"]["distribution"]["fairness"]
        .as_f64()
        .unwrap_or(f64::NAN)
}

#[tokio::test(flavor = "multi_thread")]
async fn compare_flags_the_first_key_only_proxy_and_not_a_rerun_of_the_reference() {
    let root = temp_dir();
    let catalogue = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scenarios/key_rate_limited.toml"
    );
    let text = std::fs::read_to_string(catalogue).expect("read key_rate_limited.toml");
    let reference = root.join("reference.toml");
    let defect = root.join("first_key_only.toml");
    std::fs::write(&reference, &text).expect("write scenario");
    let with_fixture = format!(
        "{text}\n[proxy]\ncommand = {}\n",
        misbehaving_command("first-key-only", &[])
    );
    std::fs::write(&defect, with_fixture).expect("write scenario");
    let suite = |name: &str| -> PathBuf { root.join(name) };
    let (baseline, rerun, first_key_only) = (suite("baseline"), suite("rerun"), suite("defect"));
    let (b, r, d) = tokio::join!(
        run_as_suite(&reference, &baseline),
        run_as_suite(&reference, &rerun),
        run_as_suite(&defect, &first_key_only)
    );
    // The runs did what they are for, whatever compare says.
    assert!(
        fairness(&b) > 0.9 && fairness(&r) > 0.9,
        "reference fairness {} / {}",
        fairness(&b),
        fairness(&r)
    );
    assert!(
        fairness(&d) < 0.5,
        "first-key-only fairness {}",
        fairness(&d)
    );

    let budget = root.join("budget.toml");
    std::fs::write(&budget, BEHAVIOUR_ONLY_BUDGET).expect("write budget");
    let markdown = root.join("comparison.md");
    let with_budget = [Path::new("--budget"), &budget];

    let regressed = compare(
        &baseline,
        &first_key_only,
        &[&with_budget[..], &[Path::new("--markdown"), &markdown]].concat(),
    );
    let why = describe(&regressed);
    let stdout = String::from_utf8_lossy(&regressed.stdout);
    assert_eq!(regressed.status.code(), Some(1), "{why}");
    assert!(
        stdout.contains("REGRESSION in 1 of 1 scenarios: key_rate_limited (key fairness"),
        "{why}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("key fairness") && l.ends_with("REGRESSED")),
        "{why}"
    );
    let md = std::fs::read_to_string(&markdown).expect("markdown written");
    assert!(
        md.contains("#### key_rate_limited") && md.contains("| key fairness |"),
        "{md}"
    );

    let same = compare(&baseline, &rerun, &with_budget);
    assert_eq!(same.status.code(), Some(0), "{}", describe(&same));
    assert!(
        String::from_utf8_lossy(&same.stdout)
            .contains("No regression beyond the budget in the 1 scenarios compared."),
        "{}",
        describe(&same)
    );

    // Single runs still compare: a results directory against a summary.json.
    let single = compare(
        &baseline.join(SCENARIO),
        &first_key_only.join(SCENARIO).join("summary.json"),
        &with_budget,
    );
    assert_eq!(single.status.code(), Some(1), "{}", describe(&single));

    let mixed = compare(&baseline, &rerun.join(SCENARIO), &[]);
    let stderr = String::from_utf8_lossy(&mixed.stderr);
    assert_eq!(mixed.status.code(), Some(2), "{}", describe(&mixed));
    assert!(
        stderr.contains("a single run, but") && stderr.contains("is a suite directory"),
        "{}",
        describe(&mixed)
    );
}
