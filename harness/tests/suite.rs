//! Suite runs on the real binary: several scenarios in one command, one results directory each, `suite.json`,
//! the index page, one JUnit file with a `<testsuite>` per scenario, and the worst exit code by the documented
//! precedence (a proxy that never started outranks a failed threshold, which outranks a pass).

mod common;

use std::path::Path;

/// A short scenario against the default system under test; `extra` adds tables.
fn scenario(name: &str, tags: &str, extra: &str) -> String {
    format!(
        r#"
name = "{name}"
tags = [{tags}]
seed = 4
[load]
model = "closed"
users = 2
run_time = "2s"

[[request]]
name = "chat"
method = "POST"
path = "/v1/chat/completions"
headers = {{ Authorization = "Bearer client-token" }}
body = {{ model = "gpt-4.1", messages = [{{ role = "user", content = "hi" }}], max_tokens = 5 }}
{extra}
"#
    )
}

fn write_suite(dir: &Path) {
    let files = [
        (
            "a_pass.toml",
            scenario(
                "passes",
                "\"failure\"",
                "[thresholds]\nmax_error_percent = 1\n",
            ),
        ),
        (
            "b_fail.toml",
            scenario("fails", "\"failure\"", "[thresholds]\np50 = \"1us\"\n"),
        ),
        (
            "c_nostart.toml",
            scenario(
                "never_starts",
                "\"broken\"",
                "[proxy]\ncommand = [\"/nonexistent/proxy-binary\"]\n",
            ),
        ),
    ];
    for (file, text) in files {
        common::scenario_file(dir, file, &text);
    }
}

fn harness(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_harness"))
        .arg("run")
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("spawn harness")
}

fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("JSON")
}

#[test]
fn a_suite_runs_each_scenario_and_exits_with_the_worst_code() {
    let tmp = tempfile::tempdir().unwrap();
    let scenarios = tmp.path().join("scenarios");
    std::fs::create_dir(&scenarios).unwrap();
    write_suite(&scenarios);
    let out = tmp.path().join("suite");
    let junit = tmp.path().join("suite-junit.xml");
    let output = harness(&[
        scenarios.to_str().unwrap(),
        "-t",
        "2s",
        "--out",
        out.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(3),
        "start-up failure outranks FAIL: {stderr}"
    );
    let index = read_json(&out.join("suite.json"));
    let runs: Vec<(String, String, i64)> = index["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| {
            (
                r["scenario"].as_str().unwrap().to_string(),
                r["verdict"].as_str().unwrap().to_string(),
                r["exit_code"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        runs,
        [
            ("passes".to_string(), "PASS".to_string(), 0),
            ("fails".to_string(), "FAIL".to_string(), 1),
            ("never_starts".to_string(), "ERROR".to_string(), 3),
        ]
    );
    assert_eq!(index["exit_code"], 3);
    assert_eq!(index["verdict"], "ERROR");
    let reason = index["runs"][2]["reasons"][0].as_str().unwrap_or_default();
    assert!(reason.contains("/nonexistent/proxy-binary"), "{reason}");
    for dir in ["passes", "fails"] {
        let summary = read_json(&out.join(dir).join("summary.json"));
        assert_eq!(summary["config"]["scenario"], dir);
        assert!(
            out.join(dir).join("report.html").is_file(),
            "{dir}/report.html"
        );
    }
    let page = std::fs::read_to_string(out.join("report.html")).expect("index page");
    assert!(
        page.contains("href=\"passes/report.html\"") && page.contains("href=\"fails/report.html\"")
    );
    assert!(page.contains("1 of 3 passed"), "{page}");
    let xml = std::fs::read_to_string(out.join("junit.xml")).expect("junit.xml");
    assert_eq!(std::fs::read_to_string(&junit).expect("--junit copy"), xml);
    assert_eq!(xml.matches("<testsuite ").count(), 3, "{xml}");
    assert!(xml.contains("<testsuite name=\"fails\""), "{xml}");
    assert!(
        xml.contains("classname=\"fails.harness.thresholds.Aggregated\""),
        "{xml}"
    );
    assert!(
        xml.contains("<failure message="),
        "the failed p50 is a failure: {xml}"
    );
    assert!(
        xml.contains("<error message=\"no results (exit 3)\""),
        "the proxy that never started is an error: {xml}"
    );
    assert!(
        stderr.contains("suite: 1 of 3 scenarios passed"),
        "{stderr}"
    );

    // The same directory with --scenario-tags and the reference proxy's profile: the broken scenario is not
    // selected, so FAIL (1) is the worst.
    let tagged = tmp.path().join("tagged");
    let profile =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/reference-proxy/profile.toml");
    let output = harness(&[
        scenarios.to_str().unwrap(),
        "--proxy",
        profile.to_str().unwrap(),
        "--scenario-tags",
        "failure",
        "-t",
        "2s",
        "-q",
        "--out",
        tagged.to_str().unwrap(),
    ]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let index = read_json(&tagged.join("suite.json"));
    assert_eq!(index["runs"].as_array().map(Vec::len), Some(2));
    assert!(index["profile"]
        .as_str()
        .unwrap_or_default()
        .ends_with("reference-proxy/profile.toml"));
    let summary = read_json(&tagged.join("passes").join("summary.json"));
    assert_eq!(summary["config"]["profile"]["name"], "reference");
}

#[test]
fn a_suite_with_an_invalid_scenario_runs_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    write_suite(tmp.path());
    common::scenario_file(
        tmp.path(),
        "d_bad.toml",
        "name = \"bad\"\n[load]\nmodel = \"sideways\"\n",
    );
    let out = tmp.path().join("suite");
    let output = harness(&[tmp.path().to_str().unwrap(), "--out", out.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("1 of the suite's scenario files are invalid; nothing was run"),
        "{stderr}"
    );
    assert!(stderr.contains("d_bad.toml:3:"), "{stderr}");
    assert!(!out.join("suite.json").exists(), "nothing ran, so no index");
    let csv = harness(&[tmp.path().to_str().unwrap(), "--csv", "x"]);
    assert_eq!(csv.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&csv.stderr).contains("--csv and --json name one run's files"));
}
