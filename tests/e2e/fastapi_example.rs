//! The example FastAPI proxy (`examples/fastapi-proxy`, correct: no `--defect`) through the behaviour scenarios of
//! the catalogue, the two ways a user tests their own proxy. Each run must PASS (exit 0) and the checks the
//! scenario is about must have been judged as passed. This calibrates the verdicts on a proxy in the users' own
//! stack, not only on the workspace's reference proxy.
//!
//! - **The failure suite through the example's profile**, exactly the pull-request smoke a user runs:
//!   `harness run scenarios/ --proxy examples/fastapi-proxy/profile.toml --scenario-tags failure -t 30s` — the
//!   harness starts a fresh proxy and in-process mock per scenario; the suite must exit 0 with every run PASS.
//! - **Attached, through an external mock** (`burst_then_recover`): an external `mock-upstream` process with an
//!   admin token, the Python proxy started by the test in front of it, and `harness run SCENARIO --target URL
//!   --proxy-pid PID --upstream MOCK --upstream-admin-token T`. The external mock is configured from the scenario's
//!   `[upstream]` table (keys, latency, seed), because keys, latency and seed are the mock's own: the harness
//!   changes only its rules, latency, ledger and epoch at runtime. The proxy gets the mock's keys in the reference
//!   proxy's keys-file format.
//!
//! Runs are one at a time (the Python proxy needs a core of its own on a 2-core machine): about 4 minutes in
//! all. Without `python3` or the example's requirements the test is skipped with a message on stderr; with `CI`
//! set it fails instead, naming what is missing.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::ListeningProcess;

const ADMIN_TOKEN: &str = "fastapi-example-admin";

/// One shortened scenario run and the checks it is about.
struct Case {
    /// Scenario file name without `.toml`.
    name: &'static str,
    /// `-t`: the same run time as in the catalogue test, long enough to contain each fault and its recovery.
    run_time: &'static str,
    /// Behaviour checks that must have been judged as passed.
    behaviour: &'static [&'static str],
    /// Threshold metrics that must have been judged as passed.
    thresholds: &'static [&'static str],
}

/// The failure scenarios' run time: a pull-request smoke runs the `failure` tag at `-t 30s`, and their timelines
/// are laid out for it (each fault, its 10 s baseline and a confirmable recovery fit in 30 s).
const FAILURE_SMOKE: &str = "30s";

const CASES: [Case; 7] = [
    Case {
        name: "key_rate_limited",
        run_time: FAILURE_SMOKE,
        behaviour: &[
            "retry_after",
            "failover_masking",
            "fairness",
            "key_report",
            "recovery",
        ],
        thresholds: &["error_percent"],
    },
    Case {
        name: "all_keys_exhausted",
        run_time: FAILURE_SMOKE,
        behaviour: &["retry_after", "recovery", "exhausted_answer"],
        thresholds: &[],
    },
    Case {
        name: "key_revoked",
        run_time: FAILURE_SMOKE,
        behaviour: &["key_report", "retry_after", "stream_buffering"],
        thresholds: &["error_percent"],
    },
    Case {
        name: "stream_interrupted",
        run_time: FAILURE_SMOKE,
        behaviour: &["stream_buffering", "ttft_overhead", "recovery"],
        thresholds: &[],
    },
    Case {
        name: "upstream_outage",
        run_time: FAILURE_SMOKE,
        behaviour: &["recovery", "fairness"],
        thresholds: &[],
    },
    Case {
        name: "slow_upstream",
        run_time: FAILURE_SMOKE,
        behaviour: &["recovery", "fairness"],
        thresholds: &["error_percent"],
    },
    Case {
        name: "burst_then_recover",
        // Its peak ends at 25 s: recovery after it needs the two 3 s windows beyond that.
        run_time: "40s",
        behaviour: &["recovery", "fairness"],
        thresholds: &["error_percent"],
    },
];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The mock's config file and the proxy's keys file for `scenario`: its `[upstream]` table (default keys
/// `key1..key3` as the harness uses, the scenario's seed) plus the admin token.
fn write_mock_and_keys_files(scenario: &Path, dir: &Path) -> (PathBuf, PathBuf) {
    let text = std::fs::read_to_string(scenario).expect("read scenario");
    let doc: toml::Table = toml::from_str(&text).expect("scenario is TOML");
    let mut mock = doc
        .get("upstream")
        .and_then(toml::Value::as_table)
        .cloned()
        .unwrap_or_default();
    if !mock.contains_key("keys") {
        let keys = (1..=3)
            .map(|i| {
                let mut key = toml::Table::new();
                key.insert("id".into(), format!("key{i}").into());
                key.insert("secret".into(), format!("sk-harness-mock-{i}").into());
                toml::Value::Table(key)
            })
            .collect::<Vec<_>>();
        mock.insert("keys".into(), keys.into());
    }
    if !mock.contains_key("seed") {
        mock.insert("seed".into(), doc["seed"].clone());
    }
    let mut admin = toml::Table::new();
    admin.insert("token".into(), ADMIN_TOKEN.into());
    mock.insert("admin".into(), admin.into());

    let proxy_keys: Vec<toml::Value> = mock["keys"]
        .as_array()
        .expect("keys is an array")
        .iter()
        .map(|key| {
            let mut entry = toml::Table::new();
            for field in ["id", "secret", "provider"] {
                if let Some(value) = key.get(field) {
                    entry.insert(field.into(), value.clone());
                }
            }
            entry.into()
        })
        .collect();
    let mut keys_file = toml::Table::new();
    keys_file.insert("keys".into(), proxy_keys.into());

    let (mock_path, keys_path) = (dir.join("mock.toml"), dir.join("keys.toml"));
    std::fs::write(&mock_path, toml::to_string(&mock).expect("mock config")).expect("write mock");
    std::fs::write(&keys_path, toml::to_string(&keys_file).expect("keys")).expect("write keys");
    (mock_path, keys_path)
}

/// Starts the mock and the example proxy for `case`, runs the harness against them and returns what is wrong.
async fn run_case(case: &Case, dir: &Path) -> Vec<String> {
    std::fs::create_dir_all(dir).expect("case dir");
    let scenario = repo_root().join(format!("scenarios/{}.toml", case.name));
    let (mock_config, keys_file) = write_mock_and_keys_files(&scenario, dir);
    let mock_args = ["--listen", "127.0.0.1:0", "--config"].map(String::from);
    let mock_args = [&mock_args[..], &[mock_config.display().to_string()]].concat();
    let mock = ListeningProcess::start(
        env!("CARGO_BIN_EXE_mock-upstream-e2e"),
        &mock_args,
        &dir.join("mock.log"),
    )
    .await
    .expect("start the mock");
    let app = repo_root().join("examples/fastapi-proxy/app.py");
    let proxy_args = [
        app.display().to_string(),
        "--port".into(),
        "0".into(),
        "--upstream".into(),
        mock.url().into(),
        "--keys-file".into(),
        keys_file.display().to_string(),
    ];
    let proxy = ListeningProcess::start("python3", &proxy_args, &dir.join("proxy.log"))
        .await
        .expect("start the example proxy");
    proxy
        .wait_ready("/health", Duration::from_secs(30))
        .await
        .expect("example proxy ready");

    let args = [
        "-t".to_string(),
        case.run_time.into(),
        "--target".into(),
        proxy.url().into(),
        "--proxy-pid".into(),
        proxy.pid().to_string(),
        "--upstream".into(),
        mock.url().into(),
        "--upstream-admin-token".into(),
        ADMIN_TOKEN.into(),
    ];
    let out = dir.join("results");
    let (output, summary) =
        common::run_scenario_file(&scenario, &out, &args, Duration::from_secs(150)).await;
    eprintln!(
        "{} against the FastAPI example: exit {:?}, verdict {}\n{}",
        case.name,
        output.status.code(),
        summary["verdict"],
        verdict_lines(&summary)
    );
    problems(case, output.status.code(), &summary)
}

/// The failure scenarios as one suite through the example's profile; returns what is wrong, per scenario.
async fn run_failure_suite(out: &Path) -> Vec<String> {
    let profile = repo_root().join("examples/fastapi-proxy/profile.toml");
    let run = tokio::process::Command::new(common::harness_bin())
        .arg("run")
        .arg(repo_root().join("scenarios"))
        .arg("--proxy")
        .arg(&profile)
        .args([
            "--scenario-tags",
            "failure",
            "-t",
            FAILURE_SMOKE,
            "--quiet",
            "--no-report",
        ])
        .arg("--out")
        .arg(out)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(600), run)
        .await
        .expect("the failure suite took over 10 minutes")
        .expect("run harness");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let read = |path: PathBuf| -> serde_json::Value {
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}; stderr:\n{stderr}", path.display()));
        serde_json::from_str(&text).expect("JSON")
    };
    let index = read(out.join("suite.json"));
    let mut wrong = Vec::new();
    if output.status.code() != Some(0) {
        wrong.push(format!(
            "suite: exit {:?}, expected 0",
            output.status.code()
        ));
    }
    let suite_cases: Vec<&Case> = CASES
        .iter()
        .filter(|c| c.run_time == FAILURE_SMOKE)
        .collect();
    let ran: Vec<&str> = index["runs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["scenario"].as_str())
        .collect();
    let mut expected: Vec<&str> = suite_cases.iter().map(|c| c.name).collect();
    expected.sort_unstable();
    let mut ran_sorted = ran.clone();
    ran_sorted.sort_unstable();
    assert_eq!(
        ran_sorted, expected,
        "the failure tag selects the failure cases"
    );
    for case in suite_cases {
        let summary = read(out.join(case.name).join("summary.json"));
        let code = summary["exit_code"].as_i64().map(|c| c as i32);
        eprintln!(
            "{} (suite) against the FastAPI example: exit {code:?}, verdict {}\n{}",
            case.name,
            summary["verdict"],
            verdict_lines(&summary)
        );
        let problems = problems(case, code, &summary);
        if !problems.is_empty() {
            wrong.push(format!("{}: {}", case.name, problems.join("; ")));
        }
    }
    let junit = std::fs::read_to_string(out.join("junit.xml")).expect("the suite's junit.xml");
    if junit.contains("<failure") || junit.contains("<error") {
        wrong.push("suite junit.xml has failures or errors".into());
    }
    wrong
}

/// Every behaviour verdict and threshold of a run, one per line, as the harness prints them.
fn verdict_lines(summary: &serde_json::Value) -> String {
    let behaviour = summary["engine"]["behaviour"]["verdicts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| {
            format!(
                "  {} behaviour {}: {}",
                v["outcome"], v["check"], v["detail"]
            )
        });
    let thresholds = summary["thresholds"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| format!("  passed={} {}: {}", t["passed"], t["metric"], t["detail"]));
    behaviour.chain(thresholds).collect::<Vec<_>>().join("\n")
}

/// What is wrong with one run: not exit 0, a failed verdict, or a check the scenario is about that was not judged.
fn problems(case: &Case, code: Option<i32>, summary: &serde_json::Value) -> Vec<String> {
    let mut wrong = Vec::new();
    if code != Some(0) {
        wrong.push(format!(
            "exit {code:?}, expected 0; reasons {}",
            summary["verdict_reasons"]
        ));
    }
    let verdicts = summary["engine"]["behaviour"]["verdicts"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for check in case.behaviour {
        let judged: Vec<String> = verdicts
            .iter()
            .filter(|v| v["check"] == *check)
            .map(|v| format!("{} {}", v["outcome"], v["detail"]))
            .collect();
        let passed = verdicts
            .iter()
            .any(|v| v["check"] == *check && v["outcome"] == "pass");
        let failed = verdicts
            .iter()
            .any(|v| v["check"] == *check && v["outcome"] == "fail");
        if !passed || failed {
            wrong.push(format!("behaviour {check} not judged as pass: {judged:?}"));
        }
    }
    let thresholds = summary["thresholds"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for metric in case.thresholds {
        if !thresholds
            .iter()
            .any(|t| t["metric"] == *metric && t["passed"] == true)
        {
            wrong.push(format!("threshold {metric} not judged as pass"));
        }
    }
    wrong
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_correct_fastapi_example_passes_the_behaviour_scenarios() {
    if !common::fastapi_example_can_run() {
        return;
    }
    let dir = common::temp_dir();
    let mut report = run_failure_suite(&dir.join("suite")).await;
    for case in CASES.iter().filter(|c| c.run_time != FAILURE_SMOKE) {
        let wrong = run_case(case, &dir.join(case.name)).await;
        if !wrong.is_empty() {
            report.push(format!("{}: {}", case.name, wrong.join("; ")));
        }
    }
    assert!(
        report.is_empty(),
        "results in {}\n{}",
        dir.display(),
        report.join("\n")
    );
}
