//! `harness run --shard I/N` and `harness merge`, on real processes over loopback: an external mock-upstream
//! (served by this test, with an admin token) behind the workspace's reference proxy (the harness binary's
//! `__reference-proxy`), loaded by one harness process, then by three side by side. The merged run must hold
//! what the single one did (request count within the open model's schedule tolerance), its histogram must be
//! the exact sum of the shards' (bucket for bucket, from their own summaries and hlogs), a throughput limit
//! each shard fails alone must pass on the whole, a shard killed mid-run must make the merge INVALID, and proxy
//! behaviour must be judged once on the shards' observations added.

use load_stats::LatencyHistogram;
use mock_upstream::{AdminConfig, KeyConfig, MockConfig, RunningMock};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;
use tokio::io::AsyncBufReadExt;
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_harness");
const TOKEN: &str = "shards-test-token";

/// An open-model chat load (the rate and run time are given per test). The generator limits are wide open:
/// three harness processes share this box's cores with the proxy and the mock, and what is tested here is the
/// merge, not the generator's health.
fn scenario(rate: u32, run_time: &str) -> String {
    format!(
        r#"
name = "sharded_chat"
seed = 9
[load]
model = "open"
rate = {rate}
run_time = "{run_time}"
timeout = "5s"
[load.generator]
max_late_percent = 100.0
max_dropped_percent = 100.0
max_cpu_percent = 100.0

[[request]]
name = "chat"
method = "POST"
path = "/v1/chat/completions"
body = {{ model = "gpt-4", messages = [{{ role = "user", content = "hi" }}], max_tokens = 8 }}
"#
    )
}

/// The mock (external to the harness processes) and the reference proxy in front of it.
struct SharedSut {
    mock: RunningMock,
    _proxy: Child,
    target: String,
}

async fn shared_sut() -> SharedSut {
    let keys: Vec<KeyConfig> = (1..=3)
        .map(|i| KeyConfig {
            id: format!("key{i}"),
            secret: format!("sk-shards-{i}"),
            ..KeyConfig::default()
        })
        .collect();
    let config = MockConfig {
        keys: keys.clone(),
        admin: AdminConfig {
            token: Some(TOKEN.into()),
            ..AdminConfig::default()
        },
        ..MockConfig::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mock = mock_upstream::spawn(config, listener).await.unwrap();
    let mut args = vec![
        "__reference-proxy".to_string(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--upstream".into(),
        mock.base_url(),
    ];
    for k in &keys {
        args.extend(["--key".into(), format!("{}={}", k.id, k.secret)]);
    }
    let mut proxy = Command::new(BIN)
        .args(&args)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(proxy.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("proxy ready")
        .unwrap()
        .unwrap();
    let target = first
        .strip_prefix("listening on ")
        .expect("contract: first stdout line")
        .to_string();
    SharedSut {
        mock,
        _proxy: proxy,
        target,
    }
}

/// `harness run FILE --shard I/N --target --upstream --out DIR -q EXTRA...`, started (not awaited).
fn start_shard(sut: &SharedSut, file: &Path, shard: &str, out: &Path, extra: &[&str]) -> Child {
    Command::new(BIN)
        .arg("run")
        .arg(file)
        .args(["--shard", shard, "--target", &sut.target])
        .args([
            "--upstream",
            &sut.mock.base_url(),
            "--upstream-admin-token",
            TOKEN,
        ])
        .arg("--out")
        .arg(out)
        .arg("-q")
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn harness")
}

async fn finish(child: Child) -> Output {
    tokio::time::timeout(Duration::from_secs(40), child.wait_with_output())
        .await
        .expect("harness finished")
        .expect("harness output")
}

async fn harness(args: &[&str]) -> Output {
    let child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn harness");
    finish(child).await
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn summary(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("summary.json"))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    serde_json::from_str(&text).unwrap()
}

fn aggregate_histogram(summary: &serde_json::Value) -> LatencyHistogram {
    serde_json::from_value(summary["aggregate"]["histogram"].clone()).expect("histogram")
}

/// Every latency a shard logged in its `history.hlog`, added up.
fn hlog_total(dir: &Path) -> LatencyHistogram {
    let text = std::fs::read_to_string(dir.join("history.hlog")).expect("history.hlog");
    let mut all = LatencyHistogram::aggregate();
    for interval in load_stats::interval_log::read(&text).expect("readable hlog") {
        all.add(&interval.latency);
    }
    all
}

/// Now + `secs`, RFC 3339 (the shards' common `--start-at`).
fn start_in(secs: i64) -> String {
    (time::OffsetDateTime::now_utc() + time::Duration::seconds(secs))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// Starts shards 0/3, 1/3 and 2/3 of `file`, writing to `<dir>/shard<i>`, their load starting together
/// `start_secs` from now; `extra` flags go to each.
fn start_three_shards(
    sut: &SharedSut,
    file: &Path,
    dir: &Path,
    start_secs: i64,
    extra: &[&str],
) -> (Vec<PathBuf>, Vec<Child>) {
    let start_at = start_in(start_secs);
    let dirs: Vec<PathBuf> = (0..3).map(|i| dir.join(format!("shard{i}"))).collect();
    let children = (0..3)
        .map(|i| {
            let flags = [extra, &["--start-at", &start_at]].concat();
            start_shard(sut, file, &format!("{i}/3"), &dirs[i], &flags)
        })
        .collect();
    (dirs, children)
}

fn write_scenario(dir: &Path, text: &str) -> PathBuf {
    let file = dir.join("sharded_chat.toml");
    std::fs::write(&file, text).unwrap();
    file
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_run_as_one_and_as_three_shards_merges_exactly_and_is_judged_once() {
    let sut = shared_sut().await;
    let tmp = tempfile::tempdir().unwrap();
    let file = write_scenario(tmp.path(), &scenario(120, "4s"));
    // Each shard alone runs about 40 req/s: below the limit; the whole runs about 120.
    let limit = ["--min-rps", "80"];

    let single_dir = tmp.path().join("single");
    let single = finish(start_shard(&sut, &file, "0/1", &single_dir, &limit)).await;
    assert_eq!(single.status.code(), Some(0), "{}", stderr(&single));
    let single = summary(&single_dir);

    let (dirs, children) = start_three_shards(&sut, &file, tmp.path(), 3, &limit);
    let mut shards = Vec::new();
    for (i, child) in children.into_iter().enumerate() {
        let o = finish(child).await;
        assert_eq!(
            o.status.code(),
            Some(1),
            "shard {i} alone fails min_rps: {}",
            stderr(&o)
        );
        shards.push(summary(&dirs[i]));
    }
    for (i, s) in shards.iter().enumerate() {
        let record: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dirs[i].join("shard.json")).unwrap())
                .unwrap();
        assert_eq!(
            (record["index"].as_u64(), record["count"].as_u64()),
            (Some(i as u64), Some(3))
        );
        assert!(
            record["start_lateness_ms"].as_f64().unwrap() < 1000.0,
            "{record}"
        );
        assert_eq!(
            s["config"]["load"]["rate"].as_f64(),
            Some(40.0),
            "a third of the rate"
        );
        assert!(
            hlog_total(&dirs[i]).same_counts(&aggregate_histogram(s)),
            "shard {i}: its hlog holds every latency of its summary"
        );
    }
    let seeds: Vec<&serde_json::Value> = shards
        .iter()
        .map(|s| &s.get("config").unwrap()["seed"])
        .collect();
    assert!(seeds[0] != seeds[1] && seeds[1] != seeds[2], "{seeds:?}");

    let merged_dir = tmp.path().join("merged");
    let junit = tmp.path().join("junit.xml");
    let mut args = vec!["merge".to_string()];
    args.extend(dirs.iter().map(|d| d.display().to_string()));
    args.extend(["--out".into(), merged_dir.display().to_string()]);
    args.extend(["--junit".into(), junit.display().to_string(), "-q".into()]);
    let o = harness(&args.iter().map(String::as_str).collect::<Vec<_>>()).await;
    assert_eq!(
        o.status.code(),
        Some(0),
        "the whole passes min_rps: {}",
        stderr(&o)
    );
    let merged = summary(&merged_dir);
    assert_eq!(merged["verdict"], "PASS", "{}", merged["verdict_reasons"]);
    let min_rps = &merged["thresholds"][0];
    assert_eq!(
        (min_rps["metric"].as_str(), min_rps["passed"].as_bool()),
        (Some("min_rps"), Some(true)),
        "{min_rps}"
    );

    let requests = |s: &serde_json::Value| s["aggregate"]["requests"].as_u64().unwrap();
    let shard_sum: u64 = shards.iter().map(requests).sum();
    assert_eq!(requests(&merged), shard_sum);
    let (one, three) = (requests(&single) as f64, requests(&merged) as f64);
    assert!(
        (three - one).abs() <= one * 0.01,
        "3 shards sent {three} requests, 1 sent {one}: more than 1 % apart"
    );
    let mut sum = LatencyHistogram::aggregate();
    for s in &shards {
        sum.add(&aggregate_histogram(s));
    }
    assert!(
        aggregate_histogram(&merged).same_counts(&sum),
        "merged = sum of the shards' summaries"
    );
    let mut hlogs = LatencyHistogram::aggregate();
    for d in &dirs {
        hlogs.add(&hlog_total(d));
    }
    assert!(hlogs.same_counts(&sum), "merged = sum of the shards' hlogs");
    let history = std::fs::read_to_string(merged_dir.join("results_stats_history.csv")).unwrap();
    let last = history
        .lines()
        .last()
        .unwrap()
        .split(',')
        .collect::<Vec<_>>();
    let total_column = last.len() - 7;
    assert_eq!(
        last[total_column],
        requests(&merged).to_string(),
        "history's cumulative count: {history}"
    );
    assert_eq!(merged["engine"]["shards"].as_array().map(Vec::len), Some(3));
    assert!(merged_dir.join("results_stats.csv").is_file());
    assert!(merged_dir.join("report.html").is_file());
    let junit = std::fs::read_to_string(&junit).unwrap();
    assert!(
        junit.contains("harness.thresholds.Aggregated") && junit.contains("req/s"),
        "{junit}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_shard_makes_the_merge_invalid_naming_it() {
    let sut = shared_sut().await;
    let tmp = tempfile::tempdir().unwrap();
    let file = write_scenario(tmp.path(), &scenario(60, "5s"));
    let (dirs, mut children) = start_three_shards(&sut, &file, tmp.path(), 2, &[]);
    tokio::time::sleep(Duration::from_millis(3500)).await;
    children[2].start_kill().expect("SIGKILL shard 2");
    for child in children {
        finish(child).await;
    }
    assert!(
        dirs[2].join("shard.json").is_file(),
        "written when the load started"
    );
    assert!(
        !dirs[2].join("summary.json").exists(),
        "killed before its results"
    );
    let mut args = vec!["merge".to_string()];
    args.extend(dirs.iter().map(|d| d.display().to_string()));
    args.extend([
        "--out".into(),
        tmp.path().join("merged").display().to_string(),
        "-q".into(),
    ]);
    let o = harness(&args.iter().map(String::as_str).collect::<Vec<_>>()).await;
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    let merged = summary(&tmp.path().join("merged"));
    assert_eq!(merged["verdict"], "INVALID");
    let first = merged["verdict_reasons"][0].as_str().unwrap_or_default();
    assert!(first.starts_with("shard 2/3 ("), "{first}");
    assert!(first.contains("has no summary.json"), "{first}");

    // The same directories without shard 1: missing, named.
    let o = harness(&[
        "merge",
        dirs[0].to_str().unwrap(),
        "--out",
        tmp.path().join("m2").to_str().unwrap(),
        "-q",
    ])
    .await;
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    let reasons = summary(&tmp.path().join("m2"))["verdict_reasons"].to_string();
    assert!(
        reasons.contains("shard 1/3 is missing") && reasons.contains("shard 2/3 is missing"),
        "{reasons}"
    );
}

#[tokio::test]
async fn a_shard_needs_a_shared_target_and_upstream_and_a_valid_index() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write_scenario(tmp.path(), &scenario(10, "1s"));
    let file = file.to_str().unwrap();
    for (args, env, want) in [
        (
            vec!["--shard", "0/2"],
            None,
            "--shard needs --target URL and --upstream URL",
        ),
        (
            vec!["--shard", "0/2", "--target", "http://127.0.0.1:9"],
            None,
            "(missing: --upstream)",
        ),
        (
            vec!["--shard", "2/2"],
            None,
            "index 2 is not below the shard count 2",
        ),
        (
            vec!["--shards", "3"],
            None,
            "JOB_COMPLETION_INDEX is not set",
        ),
        (
            vec!["--shards", "3"],
            Some("7"),
            "JOB_COMPLETION_INDEX is 7",
        ),
        (
            vec!["--start-at", "soon"],
            None,
            "--start-at \"soon\": not an RFC 3339 time",
        ),
    ] {
        let mut cmd = Command::new(BIN);
        cmd.args(["run", file, "-q", "--out"])
            .arg(tmp.path().join("out"))
            .args(&args)
            .env_remove("JOB_COMPLETION_INDEX")
            .stdin(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(index) = env {
            cmd.env("JOB_COMPLETION_INDEX", index);
        }
        let o = cmd.output().await.unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(want), "{args:?}: {}", stderr(&o));
    }
    let o = harness(&["merge", tmp.path().join("nope").to_str().unwrap()]).await;
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

/// Shards other than 0 only read the mock (its ledger): they neither reset it, nor install the scenario's
/// rules, nor switch its timeline faults (they mark the windows); shard 0 does all of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_shard_zero_drives_the_mock_s_admin_api() {
    let sut = shared_sut().await;
    let tmp = tempfile::tempdir().unwrap();
    let rule = "\n[upstream]\nrules = [{ id = \"shard-zero-rule\", keys = [\"key1\"], action = \"latency\", latency = { fixed = \"1ms\" } }]\n\
                [[timeline]]\nat = \"200ms\"\nfor = \"600ms\"\nfault = { keys = [\"key2\"], action = \"rate_limit\", retry_after = \"1s\" }\n";
    let file = write_scenario(tmp.path(), &(scenario(20, "1s") + rule));
    let served = |m: &RunningMock| m.ledger().totals.requests;
    let has_rule = |m: &RunningMock| {
        m.rules()
            .iter()
            .any(|r| r.id.as_deref() == Some("shard-zero-rule"))
    };
    let mut before = served(&sut.mock);
    for run in 0..2 {
        let out = tmp.path().join(format!("one-{run}"));
        let o = finish(start_shard(&sut, &file, "1/2", &out, &[])).await;
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let now = served(&sut.mock);
        assert!(
            now > before,
            "shard 1 loaded the mock and did not reset its ledger: {before} -> {now}"
        );
        assert!(!has_rule(&sut.mock), "shard 1 installs no rule");
        let ledger = serde_json::to_value(sut.mock.ledger()).unwrap();
        let key2_faults = &ledger["keys"]["key2"]["faults"];
        assert!(
            key2_faults.get("rate_limit").is_none(),
            "shard 1 switched no timeline fault: {key2_faults}"
        );
        let windows = &summary(&out)["engine"]["timeline"]["windows"];
        assert_eq!(
            windows.as_array().map(Vec::len),
            Some(1),
            "shard 1 marks the window: {windows}"
        );
        before = now;
    }
    let out = tmp.path().join("zero");
    let o = finish(start_shard(&sut, &file, "0/2", &out, &[])).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let zero = summary(&out)["aggregate"]["requests"].as_u64().unwrap();
    // A request in flight when the load stopped reached the mock without being recorded.
    let served = served(&sut.mock);
    assert!(
        (zero..=zero + 2).contains(&served),
        "shard 0 reset the ledger before its load: it served {served}, shard 0 recorded {zero}, {before} before"
    );
    assert!(has_rule(&sut.mock), "shard 0 installed the scenario's rule");
    // ~12 requests in the window, round-robin over 3 keys: key2 met the fault shard 0 switched on.
    let ledger = serde_json::to_value(sut.mock.ledger()).unwrap();
    let key2_faults = &ledger["keys"]["key2"]["faults"];
    assert!(
        key2_faults["rate_limit"].as_u64().unwrap_or(0) > 0,
        "{key2_faults}"
    );
}

/// Reported keys (`X-Key-Used`) a summary's behaviour report counted, added over the keys.
fn reported_total(summary: &serde_json::Value) -> (u64, u64) {
    let keys = summary["engine"]["behaviour"]["measurements"]["key_report"]["keys"]
        .as_array()
        .unwrap_or_else(|| panic!("a key report: {}", summary["engine"]["behaviour"]))
        .clone();
    let sum = |field: &str| keys.iter().map(|k| k[field].as_u64().unwrap()).sum();
    (sum("reported"), sum("seen"))
}

/// Proxy behaviour is judged once on the merged whole: the shards' `X-Key-Used` observations added and
/// compared with the shared mock's ledger, which counted every shard's traffic. A shard alone compares its
/// third of the observations with that whole ledger.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behaviour_is_judged_once_on_the_merged_observations() {
    let sut = shared_sut().await;
    let tmp = tempfile::tempdir().unwrap();
    let limits = "\n[behaviour]\nmin_key_report_agreement = 0.95\nmin_fairness = 0.9\n";
    let file = write_scenario(tmp.path(), &(scenario(60, "3s") + limits));
    let (dirs, children) = start_three_shards(&sut, &file, tmp.path(), 2, &[]);
    for (i, child) in children.into_iter().enumerate() {
        let o = finish(child).await;
        assert!(o.status.code().is_some(), "shard {i}: {}", stderr(&o));
    }
    let ledger_requests: u64 = sut
        .mock
        .ledger()
        .keys
        .values()
        .map(|k| k.total_requests)
        .sum();
    let mut shard_reported = 0;
    for (i, dir) in dirs.iter().enumerate() {
        let inputs =
            std::fs::metadata(dir.join("behaviour_inputs.json")).expect("behaviour inputs");
        assert!(
            inputs.len() < 64 * 1024,
            "shard {i}: {} bytes",
            inputs.len()
        );
        let (reported, seen) = reported_total(&summary(dir));
        eprintln!(
            "shard {i}: behaviour_inputs.json {} bytes, {reported} reported of {seen} seen",
            inputs.len()
        );
        assert!(
            reported > 0 && (reported as f64) < 0.5 * seen as f64,
            "shard {i} compares its share ({reported} reported) with the whole ledger ({seen} seen)"
        );
        shard_reported += reported;
    }

    let merged_dir = tmp.path().join("merged");
    let junit = tmp.path().join("junit.xml");
    let mut args = vec!["merge".to_string()];
    args.extend(dirs.iter().map(|d| d.display().to_string()));
    args.extend(["--out".into(), merged_dir.display().to_string()]);
    args.extend(["--junit".into(), junit.display().to_string(), "-q".into()]);
    let o = harness(&args.iter().map(String::as_str).collect::<Vec<_>>()).await;
    let merged = summary(&merged_dir);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}: {}",
        merged["verdict_reasons"],
        stderr(&o)
    );
    let (reported, seen) = reported_total(&merged);
    assert_eq!(reported, shard_reported, "the shards' observations added");
    // Requests in flight when a shard's load stopped reached the mock without being counted by the client.
    assert!(
        seen <= ledger_requests && reported <= seen && seen - reported <= 6,
        "merged: {reported} reported, {seen} seen by the mock, {ledger_requests} served"
    );
    let report = &merged["engine"]["behaviour"];
    let agreement = report["measurements"]["key_report"]["agreement"]
        .as_f64()
        .unwrap();
    eprintln!("merged: {reported} reported, {seen} seen, agreement {agreement:.4}");
    assert!(agreement > 0.98, "{report}");
    let verdicts = report["verdicts"].as_array().unwrap();
    assert!(
        verdicts
            .iter()
            .any(|v| v["check"] == "key_report" && v["outcome"] == "pass"),
        "{report}"
    );
    assert!(merged_dir.join("ledger.json").is_file());
    let junit = std::fs::read_to_string(&junit).unwrap();
    assert!(junit.contains("behaviour"), "{junit}");

    // A shard without its inputs (an older harness): the merged behaviour is INCONCLUSIVE, naming it.
    std::fs::remove_file(dirs[1].join("behaviour_inputs.json")).unwrap();
    let out_at = args
        .iter()
        .position(|a| *a == merged_dir.display().to_string());
    args[out_at.unwrap()] = tmp.path().join("merged-without").display().to_string();
    let o = harness(&args.iter().map(String::as_str).collect::<Vec<_>>()).await;
    let without = summary(&tmp.path().join("merged-without"));
    assert_eq!(without["verdict"], "INCONCLUSIVE", "{}", stderr(&o));
    assert!(
        without["verdict_reasons"]
            .to_string()
            .contains("shard 1/3 wrote no behaviour_inputs.json"),
        "{}",
        without["verdict_reasons"]
    );
}
