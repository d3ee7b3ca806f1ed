//! The real `harness` binary over loopback: exit codes, result files, Ctrl-C, proxy lifecycle.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_harness");

fn small_scenario(path: &str, thresholds: &str, run_time: &str) -> String {
    format!(
        "name = \"cli\"\n[load]\nmodel = \"closed\"\nusers = 2\nspawn_rate = 100\nthink_time = \"10ms\"\n\
         run_time = \"{run_time}\"\n[[request]]\nname = \"x\"\npath = \"{path}\"\n[thresholds]\n{thresholds}\n"
    )
}

async fn harness(args: &[&str]) -> Output {
    let child = Command::new(BIN).args(args).stdin(Stdio::null()).output();
    tokio::time::timeout(Duration::from_secs(60), child)
        .await
        .expect("harness finished")
        .expect("spawn")
}

/// `harness run FILE --target URL --out OUT -q`.
async fn run_against(file: &Path, url: &str, out: &Path) -> Output {
    harness(&[
        "run",
        file.to_str().unwrap(),
        "--target",
        url,
        "--out",
        out.to_str().unwrap(),
        "-q",
    ])
    .await
}

fn summary(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("summary.json")).expect("summary.json written");
    serde_json::from_str(&text).expect("summary.json is JSON")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thresholds_decide_the_exit_code_and_every_file_is_written() {
    let (url, _) = common::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        ("pass", "p99 = \"1s\"", 0, "PASS"),
        ("fail", "min_rps = 1000000", 1, "FAIL"),
    ];
    for (name, limit, code, verdict) in cases {
        let file = common::scenario_file(
            tmp.path(),
            &format!("{name}.toml"),
            &small_scenario("/ok/x", limit, "1s"),
        );
        let out = tmp.path().join(name);
        let o = run_against(&file, &url, &out).await;
        assert_eq!(o.status.code(), Some(code), "{name}: {}", stderr(&o));
        let s = summary(&out);
        assert_eq!(s["verdict"], verdict, "{name}");
        assert_eq!(s["exit_code"], code, "{name}");
        assert!(
            s["aggregate"]["requests"].as_u64().unwrap() > 10,
            "{name}: requests recorded"
        );
        for f in [
            "results_stats.csv",
            "results_stats_history.csv",
            "results_failures.csv",
            "results_exceptions.csv",
        ] {
            assert!(out.join(f).is_file(), "{name}: {f}");
        }
        // `harness check` agrees on the summary it wrote (with the same limit on the command line).
        let flag: Vec<&str> = if code == 0 {
            vec!["--p99", "1s", "--min-rps", "1"]
        } else {
            vec!["--min-rps", "1000000"]
        };
        let mut args = vec!["check", out.to_str().unwrap()];
        args.extend(flag);
        let c = harness(&args).await;
        assert_eq!(
            c.status.code(),
            Some(code),
            "check {name}: {}",
            String::from_utf8_lossy(&c.stdout)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_mid_run_still_writes_results() {
    let (url, _) = common::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let file = common::scenario_file(tmp.path(), "long.toml", &small_scenario("/ok/x", "", "60s"));
    let out = tmp.path().join("out");
    let child = Command::new(BIN)
        .args([
            "run",
            file.to_str().unwrap(),
            "--target",
            &url,
            "--out",
            out.to_str().unwrap(),
            "-q",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id().unwrap() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let o = tokio::time::timeout(Duration::from_secs(15), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    let s = summary(&out);
    assert_eq!(s["verdict"], "INTERRUPTED");
    assert!(s["aggregate"]["requests"].as_u64().unwrap() > 10);
    let history = std::fs::read_to_string(out.join("results_stats_history.csv")).unwrap();
    assert!(
        history.lines().count() >= 3,
        "history rows written every second:\n{history}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_prefix_and_json_copy_like_locust() {
    let (url, _) = common::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let file = common::scenario_file(tmp.path(), "s.toml", &small_scenario("/ok/x", "", "1s"));
    let (out, prefix, json) = (
        tmp.path().join("out"),
        tmp.path().join("ci/results"),
        tmp.path().join("s.json"),
    );
    let args = [
        "run",
        file.to_str().unwrap(),
        "--target",
        &url,
        "-q",
        "--out",
        out.to_str().unwrap(),
    ];
    let o = harness(
        &[
            &args[..],
            &[
                "--csv",
                prefix.to_str().unwrap(),
                "--json",
                json.to_str().unwrap(),
            ],
        ]
        .concat(),
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    for suffix in ["stats", "stats_history", "failures", "exceptions"] {
        assert!(
            tmp.path()
                .join(format!("ci/results_{suffix}.csv"))
                .is_file(),
            "{suffix}"
        );
    }
    assert_eq!(summary(&out)["verdict"], "PASS");
    assert!(json.is_file(), "--json copy");
    // `harness check PREFIX` reads the Locust files like the users' CI step.
    let c = harness(&["check", prefix.to_str().unwrap(), "--min-rps", "1"]).await;
    assert_eq!(
        c.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&c.stdout)
    );
}

#[tokio::test]
async fn bad_scenarios_fail_with_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let text = small_scenario("/ok/x", "", "1s")
        .replace("spawn_rate = 100", "spawn_rate = 100\nusres = 3");
    let file = common::scenario_file(tmp.path(), "bad.toml", &text);
    let o = harness(&[
        "run",
        file.to_str().unwrap(),
        "--target",
        "http://127.0.0.1:9",
        "-q",
    ])
    .await;
    assert_eq!(o.status.code(), Some(2));
    let want = format!("{}:6:1: unknown field `usres`", file.display());
    assert!(stderr(&o).contains(&want), "{}", stderr(&o));
    let o = harness(&["run", "/nonexistent/x.toml"]).await;
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = harness(&["run", file.to_str().unwrap(), "--rate", "-5"]).await;
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

/// No `--target`, no `[proxy]`: the in-process mock plus the reference proxy re-executed from this binary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_run_uses_mock_and_reference_proxy_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let smoke = scenarios_dir().join("quick_smoke.toml");
    let o = harness(&[
        "run",
        smoke.to_str().unwrap(),
        "-t",
        "2s",
        "--out",
        out.to_str().unwrap(),
        "-q",
    ])
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let s = summary(&out);
    assert_eq!(s["verdict"], "PASS");
    assert!(s["aggregate"]["requests"].as_u64().unwrap() > 20);
    assert_eq!(s["aggregate"]["failures"], 0);
    assert!(
        s["streaming"][0]["chunks"].as_u64().unwrap() > 0,
        "streams were scanned"
    );
    assert!(!s["leak_report"].is_null(), "the proxy was monitored");
    let log = std::fs::read_to_string(out.join("proxy.log")).unwrap();
    assert!(log.starts_with("listening on http://127.0.0.1:"), "{log}");
    let resources = std::fs::read_to_string(out.join("resources.csv")).unwrap();
    assert!(resources.lines().count() >= 2, "{resources}");
}

/// Children of `parent` whose command line contains `needle`.
fn children_with(parent: u32, needle: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let ppid = stat
            .rsplit(')')
            .next()
            .and_then(|r| r.split_whitespace().nth(1))
            .and_then(|p| p.parse().ok());
        let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if ppid == Some(parent) && cmdline.contains(needle) {
            found.push(pid);
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_killed_mid_run_is_crashed_with_results() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let smoke = scenarios_dir().join("quick_smoke.toml");
    let child = Command::new(BIN)
        .args([
            "run",
            smoke.to_str().unwrap(),
            "-t",
            "30s",
            "--out",
            out.to_str().unwrap(),
            "-q",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let harness_pid = child.id().unwrap();
    let mut proxy = Vec::new();
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        proxy = children_with(harness_pid, "__reference-proxy");
        if !proxy.is_empty() && out.join("results_stats_history.csv").exists() {
            break;
        }
    }
    assert_eq!(
        proxy.len(),
        1,
        "the reference proxy runs as a child process"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(proxy[0] as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let o = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    let s = summary(&out);
    assert_eq!(s["verdict"], "CRASHED");
    let reasons = s["verdict_reasons"].to_string();
    assert!(reasons.contains("killed by signal 9"), "{reasons}");
    assert!(s["aggregate"]["requests"].as_u64().unwrap() > 10);
    assert!(out.join("results_stats.csv").is_file());
}

#[tokio::test]
async fn a_proxy_that_never_gets_ready_is_a_start_failure() {
    let tmp = tempfile::tempdir().unwrap();
    let text = small_scenario("/ok/x", "", "1s")
        + "[proxy]\ncommand = [\"sh\", \"-c\", \"echo booting on {port}; echo bad config >&2; exit 7\"]\nready_timeout = \"5s\"\n";
    let file = common::scenario_file(tmp.path(), "broken.toml", &text);
    let out = tmp.path().join("out");
    let o = harness(&[
        "run",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "-q",
    ])
    .await;
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("exited (exit status 7)"), "{err}");
    assert!(
        err.contains("bad config") && err.contains("booting on"),
        "log tail quoted: {err}"
    );
}

#[tokio::test]
async fn list_shows_every_scenario() {
    let o = harness(&["list", scenarios_dir().to_str().unwrap()]).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    for name in ["normal_load", "quick_smoke"] {
        assert!(text.contains(name), "{text}");
    }
}

/// Attach mode with a PID: the proxy (started elsewhere) is monitored, and its death ends the run as CRASHED.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attached_proxy_is_monitored_and_its_death_is_a_crash() {
    use tokio::io::AsyncBufReadExt;
    let mut proxy = Command::new(BIN)
        .args([
            "__reference-proxy",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            "http://127.0.0.1:9",
            "--key",
            "k1=sk-1",
        ])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(proxy.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let url = first
        .strip_prefix("listening on ")
        .expect("contract: first stdout line")
        .to_string();
    let pid = proxy.id().unwrap().to_string();
    let tmp = tempfile::tempdir().unwrap();
    let file = common::scenario_file(
        tmp.path(),
        "attach.toml",
        &small_scenario("/health", "", "30s"),
    );
    let out = tmp.path().join("out");
    let run = Command::new(BIN)
        .args([
            "run",
            file.to_str().unwrap(),
            "--target",
            &url,
            "--proxy-pid",
            &pid,
            "--out",
            out.to_str().unwrap(),
            "-q",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    proxy.kill().await.unwrap();
    let o = tokio::time::timeout(Duration::from_secs(20), run.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    let s = summary(&out);
    assert_eq!(s["verdict"], "CRASHED");
    assert!(s["aggregate"]["requests"].as_u64().unwrap() > 10);
    let resources = std::fs::read_to_string(out.join("resources.csv")).unwrap();
    assert!(
        resources.lines().count() >= 2,
        "the attached proxy was sampled: {resources}"
    );
}

/// A run with no limits at all whose requests never complete (a hung proxy) must not PASS: nothing was measured.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_completes_no_request_fails_even_without_thresholds() {
    let (url, _) = common::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let file = common::scenario_file(
        tmp.path(),
        "hung.toml",
        &small_scenario("/sleep/20000", "", "1s"),
    );
    let out = tmp.path().join("hung");
    let o = run_against(&file, &url, &out).await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let s = summary(&out);
    assert_eq!(s["verdict"], "FAIL");
    assert_eq!(s["aggregate"]["requests"], 0);
}

/// Without any limit, failed requests fail the run (Locust's default exit code), and with no failures it passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_thresholds_any_failed_request_fails_the_run() {
    let (url, _) = common::start().await;
    let tmp = tempfile::tempdir().unwrap();
    for (path, code) in [("/no-such-route", 1), ("/ok/x", 0)] {
        let file = common::scenario_file(tmp.path(), "bare.toml", &small_scenario(path, "", "1s"));
        let out = tmp.path().join(format!("bare{code}"));
        let o = run_against(&file, &url, &out).await;
        assert_eq!(o.status.code(), Some(code), "{path}: {}", stderr(&o));
    }
}

/// A scenario whose 5-minute warm-up is far longer than the runs below, sampled every 250 ms.
fn long_warmup_scenario(dir: &Path) -> PathBuf {
    let path = dir.join("long-warmup.toml");
    let text = "name = \"long-warmup\"\n[load]\nmodel = \"closed\"\nusers = 2\nspawn_rate = 50\n\
                think_time = \"20ms\"\nrun_time = \"1h\"\n[[request]]\nname = \"health\"\npath = \"/health\"\n\
                [monitor]\ninterval = \"250ms\"\nwarmup = \"5m\"\n[monitor.leak]\nmin_steady = \"1s\"\n";
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warmup_longer_than_the_run_is_clipped_and_said_before_the_load() {
    let tmp = tempfile::tempdir().unwrap();
    let scenario = long_warmup_scenario(tmp.path());
    let scenario = scenario.to_str().unwrap();
    // (extra flags, expected exit code, clip notice?, warm-up seconds range in summary.json)
    type Case<'a> = (&'a [&'a str], i32, bool, (f64, f64));
    let cases: [Case; 3] = [
        (&["--drain", "1s"], 0, true, (0.5, 1.3)),
        (&["--warmup", "2s"], 0, false, (1.5, 2.3)),
        (&["--warmup", "4s"], 2, false, (0.0, 0.0)),
    ];
    for (i, (flags, code, notice, (warmup_lo, warmup_hi))) in cases.into_iter().enumerate() {
        let out = tmp.path().join(format!("out{i}"));
        let mut args = vec!["run", scenario, "-t", "4s", "--out", out.to_str().unwrap()];
        args.extend(flags);
        let o = harness(&args).await;
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(code), "{flags:?}: {err}");
        let clip = "harness: the scenario's [monitor] warmup 5m leaves a steady window of 0s in this 4s run; \
                    warm-up clipped to 1s so the leak verdicts judge 3s (set it with --warmup)";
        assert_eq!(err.contains(clip), notice, "{flags:?}: {err}");
        if code == 2 {
            assert!(
                err.contains("--warmup 4s: must be shorter than the run time (4s)"),
                "{err}"
            );
            continue;
        }
        if notice {
            // Said at the start: right after the run's first line, before the results and the verdict.
            let first_lines: Vec<&str> = err.lines().take(2).collect();
            assert!(
                first_lines[0].starts_with("harness: long-warmup against"),
                "{err}"
            );
            assert_eq!(first_lines[1], clip, "{err}");
        }
        let sampling = &summary(&out)["leak_report"]["sampling"];
        let warmup = sampling["warmup_secs"].as_f64().unwrap();
        assert!(
            (warmup_lo..=warmup_hi).contains(&warmup),
            "{flags:?}: warm-up {warmup} s"
        );
        assert!(
            sampling["steady_secs"].as_f64().unwrap() >= 1.0,
            "{sampling}"
        );
        let drain = sampling["drain_secs"].as_f64().unwrap();
        assert_eq!(
            drain > 0.0,
            flags.contains(&"--drain"),
            "{flags:?}: drain {drain} s"
        );
    }
}
