//! A leak that does not count: the harness runs the leaky fixture proxy (really leaking 32 KiB a request) with
//! `[monitor] judge_leaks = false`. The run passes (exit 0), `summary.json` echoes `judge_leaks`, and every
//! place that shows the LEAK says "reported, not judged (judge_leaks = false)" without styling or counting it
//! as a failure: the terminal after the run, `report.html` (banner and resource table) and the JUnit file
//! (`<skipped>`, no `<failure>`). The same run with `judge_leaks = true` fails (exit 1) and still shows a red
//! LEAK and a JUnit `<failure>`. Both runs go at once (about 35 s of wall time).

mod common;

use std::path::Path;

use common::{harness_bin, leaky_proxy_bin, temp_dir};
use run_report::leak_judging::NOT_JUDGED;

/// 4 s warm-up + 26 s steady at 2 samples a second and 50 req/s, leaking 32 KiB a request: a leak this steep
/// is judged in a short window (`min_steady` lowered; the defaults need 60 s, see `leak_verdicts`).
fn leaking_scenario(judge_leaks: bool) -> String {
    format!(
        r#"
name = "leak_judged_{judge_leaks}"
description = "a real memory leak, judge_leaks = {judge_leaks}"
seed = 5

[load]
model = "open"
rate = 50
run_time = "30s"
timeout = "5s"

[[request]]
name = "chat"
method = "POST"
path = "/v1/chat/completions"
body = {{ model = "gpt-4", messages = [{{ role = "user", content = "leak probe" }}], max_tokens = 16 }}

[proxy]
command = ["{proxy}", "--listen", "127.0.0.1:{{port}}", "--upstream", "{{upstream_url}}", "--keys-file", "{{keys_file}}"]
env = {{ LEAK_BYTES_PER_REQUEST = "32768" }}

[monitor]
judge_leaks = {judge_leaks}
interval = "500ms"
warmup = "4s"

[monitor.leak]
min_steady = "15s"
"#,
        proxy = leaky_proxy_bin(),
    )
}

/// What a finished run left: exit code, terminal output (stderr, not `--quiet`), summary, report and JUnit.
struct Finished {
    exit: Option<i32>,
    stderr: String,
    summary: serde_json::Value,
    html: String,
    junit: String,
}

impl Finished {
    fn describe(&self) -> String {
        format!(
            "exit {:?}, verdict {}, reasons {}\nleak report verdict: {}\nstderr:\n{}",
            self.exit,
            self.summary["verdict"],
            self.summary["verdict_reasons"],
            self.summary["leak_report"]["verdict"],
            self.stderr
        )
    }
}

async fn run(dir: &Path, judge_leaks: bool) -> Finished {
    let scenario = dir.join("scenario.toml");
    std::fs::write(&scenario, leaking_scenario(judge_leaks)).expect("write scenario");
    let (out, junit) = (dir.join("results"), dir.join("junit.xml"));
    let output = tokio::process::Command::new(harness_bin())
        .arg("run")
        .arg(&scenario)
        .arg("--out")
        .arg(&out)
        .arg("--junit")
        .arg(&junit)
        .kill_on_drop(true)
        .output()
        .await
        .expect("run harness");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let read = |path: &Path| {
        std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("{}: {e}; stderr:\n{stderr}", path.display()))
    };
    Finished {
        exit: output.status.code(),
        summary: serde_json::from_str(&read(&out.join("summary.json"))).expect("summary parses"),
        html: read(&out.join("report.html")),
        junit: read(&junit),
        stderr,
    }
}

/// The `<testcase>` elements of the resource metrics, each up to its closing tag.
fn resource_cases(junit: &str) -> Vec<&str> {
    junit
        .split("<testcase ")
        .filter(|case| case.starts_with("classname=\"harness.resources\""))
        .map(|case| case.split("</testcase>").next().unwrap_or(case))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_leak_reported_but_not_judged_says_so_everywhere_and_a_judged_one_fails() {
    let (reported_dir, judged_dir) = (temp_dir(), temp_dir());
    let (reported, judged) = tokio::join!(run(&reported_dir, false), run(&judged_dir, true));

    let why = reported.describe();
    assert_eq!(reported.summary["leak_report"]["verdict"], "LEAK", "{why}");
    assert_eq!(
        reported.summary["config"]["monitor"]["judge_leaks"], false,
        "{why}"
    );
    assert_eq!(
        (reported.exit, &reported.summary["verdict"]),
        (Some(0), &"PASS".into()),
        "{why}"
    );
    assert!(
        reported
            .stderr
            .contains(&format!("resources LEAK — {NOT_JUDGED}")),
        "terminal: {why}"
    );
    assert!(
        reported
            .html
            .contains(&format!("Proxy resources: LEAK — {NOT_JUDGED}"))
            && reported.html.contains("<header class=\"banner pass\"")
            && !reported.html.contains("badge fail"),
        "report.html banner and table: {why}"
    );
    assert!(!reported.junit.contains("<failure"), "{}", reported.junit);
    let cases = resource_cases(&reported.junit);
    assert!(!cases.is_empty(), "{}", reported.junit);
    for case in &cases {
        assert!(
            case.contains("<skipped message=") && case.contains(NOT_JUDGED),
            "{case}"
        );
    }

    let why = judged.describe();
    assert_eq!(judged.summary["leak_report"]["verdict"], "LEAK", "{why}");
    assert_eq!(
        (judged.exit, &judged.summary["verdict"]),
        (Some(1), &"FAIL".into()),
        "{why}"
    );
    assert!(
        judged.stderr.contains("resources LEAK\n") && !judged.stderr.contains(NOT_JUDGED),
        "terminal: {why}"
    );
    assert!(
        judged
            .html
            .contains("<span class=\"badge fail\">LEAK</span>")
            && !judged.html.contains(NOT_JUDGED),
        "report.html: {why}"
    );
    assert!(
        resource_cases(&judged.junit)
            .iter()
            .any(|case| case.contains("<failure message=\"LEAK: ")),
        "{}",
        judged.junit
    );
}
