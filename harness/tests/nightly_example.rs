//! The nightly GitHub Actions example in `crates/run-report/README.md` must run as written: its timeouts have
//! to cover the scenarios its `harness run` command selects, and the job has to fit a GitHub-hosted runner,
//! which stops any job at 6 h. A job whose timeout is shorter than its load ends INTERRUPTED every night.
//!
//! The test reads the README's ```yaml block (the job's and the run step's `timeout-minutes`, the run step's
//! command) and the scenario files that command selects (their `[load] run_time` and `[monitor] drain`, or the
//! command's `-t`), then checks the sizing rule of [`check_sizing`]. The workflow is read line by line rather than
//! with a YAML library: the block is ours, and the few keys read are found by indentation.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// GitHub-hosted runners stop a job after 6 h.
const HOSTED_JOB_LIMIT: Duration = Duration::from_secs(6 * 3600);
/// Per scenario of a suite, beyond its run time and drain: starting the mock and the proxy, waiting for
/// readiness, reading the ledger, writing the CSVs, `summary.json` and `report.html`.
const PER_RUN_OVERHEAD: Duration = Duration::from_secs(30);
/// The job's time outside the run step: checkout, toolchain, cache, two release builds (10-15 min cold on a
/// hosted runner), the baseline download, compare, upload and the JUnit report.
const OUTSIDE_THE_RUN: Duration = Duration::from_secs(30 * 60);

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("harness/ sits in the workspace")
        .to_path_buf()
}

/// What the workflow example says about time.
#[derive(Debug, Clone, PartialEq)]
struct Workflow {
    /// The job's `timeout-minutes`.
    job_timeout: Duration,
    /// The run step's `timeout-minutes`, if it has one.
    run_step_timeout: Option<Duration>,
    /// The words of the run step's `harness run` command, from `run` on.
    command: Vec<String>,
}

/// The first ```yaml block after the `## Nightly job` heading.
fn workflow_block(readme: &str) -> Result<&str, String> {
    let section = readme
        .split_once("## Nightly job")
        .ok_or("no `## Nightly job` heading")?
        .1;
    let block = section
        .split_once("```yaml\n")
        .ok_or("no ```yaml block in the nightly job section")?
        .1;
    Ok(block.split_once("```").map_or(block, |(b, _)| b))
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// `timeout-minutes: N` (a trailing comment allowed).
fn minutes(line: &str) -> Option<Result<Duration, String>> {
    let value = line.trim().strip_prefix("timeout-minutes:")?;
    let value = value.split('#').next().unwrap_or_default().trim();
    Some(
        value
            .parse::<u64>()
            .map(|m| Duration::from_secs(m * 60))
            .map_err(|e| format!("timeout-minutes {value:?}: {e}")),
    )
}

/// The steps: each from its `- ` line to the next at the same indentation.
fn steps(block: &str) -> Vec<Vec<&str>> {
    let lines: Vec<&str> = block.lines().collect();
    let Some(start) = lines.iter().position(|l| l.trim() == "steps:") else {
        return Vec::new();
    };
    let mut steps: Vec<Vec<&str>> = Vec::new();
    let step_indent = lines[start + 1..]
        .iter()
        .find(|l| l.trim_start().starts_with("- "))
        .map(|l| indent(l));
    for line in &lines[start + 1..] {
        if line.trim_start().starts_with("- ") && Some(indent(line)) == step_indent {
            steps.push(vec![line]);
        } else if let Some(step) = steps.last_mut() {
            step.push(line);
        }
    }
    steps
}

/// The `harness run` command of a step's script, continuation lines joined, comments left out.
fn harness_run_command(step: &[&str]) -> Option<Vec<String>> {
    let script: Vec<&str> = step
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.starts_with('#'))
        .collect();
    let joined = script.join("\n").replace("\\\n", " ");
    let line = joined.lines().find(|l| l.contains("harness run "))?;
    let words: Vec<String> = line.split_whitespace().map(String::from).collect();
    let run = words.iter().position(|w| w == "run")?;
    Some(words[run..].to_vec())
}

fn parse_workflow(readme: &str) -> Result<Workflow, String> {
    let block = workflow_block(readme)?;
    let job_timeout = block
        .lines()
        .filter(|l| indent(l) == 4)
        .find_map(minutes)
        .ok_or("the job has no `timeout-minutes` (GitHub's default is the 6 h limit)")??;
    let (step, command) = steps(block)
        .into_iter()
        .find_map(|s| harness_run_command(&s).map(|c| (s, c)))
        .ok_or("no step runs `harness run`")?;
    let run_step_timeout = step.iter().skip(1).find_map(|l| minutes(l)).transpose()?;
    Ok(Workflow {
        job_timeout,
        run_step_timeout,
        command,
    })
}

/// One scenario the command runs.
#[derive(Debug, Clone, PartialEq)]
struct SelectedRun {
    file: PathBuf,
    run_time: Duration,
    drain: Duration,
}

fn duration_at(doc: &toml::Table, table: &str, key: &str) -> Result<Option<Duration>, String> {
    doc.get(table)
        .and_then(|t| t.get(key))
        .map(|v| {
            let text = v
                .as_str()
                .ok_or(format!("[{table}] {key} is not a string"))?;
            human_duration::parse(text).map_err(|e| format!("[{table}] {key}: {e}"))
        })
        .transpose()
}

/// The value of `--flag VALUE` or `--flag=VALUE`.
fn flag<'a>(command: &'a [String], names: &[&str]) -> Option<&'a str> {
    command.iter().enumerate().find_map(|(i, word)| {
        names.iter().find_map(|name| {
            if word == name {
                command.get(i + 1).map(String::as_str)
            } else {
                word.strip_prefix(&format!("{name}="))
            }
        })
    })
}

/// The scenarios `harness run PATH... [--scenario-tags a,b] [-t D]` runs: files as given, and the `*.toml` files
/// directly in a directory that carry any of the tags (all of them without `--scenario-tags`); `-t` replaces
/// every run time.
fn select(command: &[String], root: &Path) -> Result<Vec<SelectedRun>, String> {
    let paths = command[1..].iter().take_while(|w| !w.starts_with('-'));
    let tags: Option<Vec<&str>> =
        flag(command, &["--scenario-tags"]).map(|t| t.split(',').collect());
    let run_time_override = flag(command, &["-t", "--run-time"])
        .map(|t| human_duration::parse(t).map_err(|e| format!("-t {t}: {e}")))
        .transpose()?;
    let mut runs = Vec::new();
    for path in paths {
        let path = root.join(path);
        let (files, filtered) = if path.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(&path)
                .map_err(|e| format!("{}: {e}", path.display()))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "toml"))
                .collect();
            files.sort();
            (files, true)
        } else {
            (vec![path], false)
        };
        for file in files {
            let text =
                std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            let doc: toml::Table =
                toml::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
            let own_tags: Vec<&str> = doc
                .get("tags")
                .and_then(|t| t.as_array())
                .map(|t| t.iter().filter_map(|v| v.as_str()).collect())
                .unwrap_or_default();
            let wanted = tags
                .as_ref()
                .is_none_or(|tags| tags.iter().any(|t| own_tags.contains(t)));
            if filtered && !wanted {
                continue;
            }
            let at = |e: String| format!("{}: {e}", file.display());
            let run_time = match run_time_override {
                Some(t) => t,
                None => duration_at(&doc, "load", "run_time")
                    .map_err(at)?
                    .ok_or_else(|| at("no [load] run_time".into()))?,
            };
            let drain = duration_at(&doc, "monitor", "drain")
                .map_err(at)?
                .unwrap_or_default();
            runs.push(SelectedRun {
                file,
                run_time,
                drain,
            });
        }
    }
    Ok(runs)
}

/// The time the run step needs: every run's time and drain plus [`PER_RUN_OVERHEAD`] each.
fn suite_time(runs: &[SelectedRun]) -> Duration {
    runs.iter()
        .map(|r| r.run_time + r.drain + PER_RUN_OVERHEAD)
        .sum()
}

/// The sizing rule: the run step's timeout (or, without one, the job's less [`OUTSIDE_THE_RUN`]) exceeds the
/// suite's time; the job's timeout covers the run step plus [`OUTSIDE_THE_RUN`]; and the job fits a hosted
/// runner.
fn check_sizing(workflow: &Workflow, runs: &[SelectedRun]) -> Result<(), String> {
    let minutes = |d: Duration| format!("{:.1} min", d.as_secs_f64() / 60.0);
    let needed = suite_time(runs);
    let run_step = workflow
        .run_step_timeout
        .unwrap_or(workflow.job_timeout.saturating_sub(OUTSIDE_THE_RUN));
    let mut problems = Vec::new();
    if run_step <= needed {
        problems.push(format!(
            "the run step may take {} but its {} scenarios need {} (run times, drains and {} s each to start and write results)",
            minutes(run_step),
            runs.len(),
            minutes(needed),
            PER_RUN_OVERHEAD.as_secs()
        ));
    }
    if workflow.job_timeout < run_step + OUTSIDE_THE_RUN {
        problems.push(format!(
            "the job's timeout-minutes ({}) leaves less than {} outside the run step ({})",
            minutes(workflow.job_timeout),
            minutes(OUTSIDE_THE_RUN),
            minutes(run_step)
        ));
    }
    if workflow.job_timeout > HOSTED_JOB_LIMIT {
        problems.push(format!(
            "the job's timeout-minutes ({}) is above a hosted runner's {} limit",
            minutes(workflow.job_timeout),
            minutes(HOSTED_JOB_LIMIT)
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

#[test]
fn the_readme_nightly_job_fits_its_timeouts_and_a_hosted_runner() {
    let root = workspace_root();
    let readme_path = root.join("crates/run-report/README.md");
    let readme = std::fs::read_to_string(&readme_path).expect("read the run-report README");
    let workflow = parse_workflow(&readme)
        .unwrap_or_else(|e| panic!("{}: nightly job: {e}", readme_path.display()));
    let runs = select(&workflow.command, &root).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<_> = runs
        .iter()
        .filter_map(|r| r.file.file_stem()?.to_str())
        .collect();
    assert!(
        names.contains(&"nightly") && names.contains(&"key_rate_limited"),
        "the command selects the soak and the failure scenarios: {names:?} from {:?}",
        workflow.command
    );
    if let Err(problem) = check_sizing(&workflow, &runs) {
        panic!(
            "{}: the nightly job would not run as written: {problem}\nworkflow: {workflow:?}",
            readme_path.display()
        );
    }
}

/// The rule on the numbers it was written for: the old example (a 120-minute job around an 8 h soak) fails,
/// so does a timeout above the hosted limit, a run step too short for its suite and a job with no room for
/// the build; the example's own numbers pass.
#[test]
fn sizing_rule_table() {
    let run = |name: &str, secs: u64, drain: u64| SelectedRun {
        file: PathBuf::from(format!("scenarios/{name}.toml")),
        run_time: Duration::from_secs(secs),
        drain: Duration::from_secs(drain),
    };
    let failures: Vec<SelectedRun> = [45, 60, 40, 50, 45, 40]
        .iter()
        .enumerate()
        .map(|(i, secs)| run(&format!("failure_{i}"), *secs, 0))
        .collect();
    let with = |soak: SelectedRun| {
        let mut runs = failures.clone();
        runs.push(soak);
        runs
    };
    let workflow = |job: u64, step: Option<u64>| Workflow {
        job_timeout: Duration::from_secs(job * 60),
        run_step_timeout: step.map(|m| Duration::from_secs(m * 60)),
        command: Vec::new(),
    };
    let two_hours = with(run("nightly", 7200, 60));
    let eight_hours = with(run("nightly", 8 * 3600, 60));
    for (what, flow, runs, fits) in [
        ("the example", workflow(180, Some(150)), &two_hours, true),
        ("no step timeout", workflow(170, None), &two_hours, true),
        (
            "120 min around 8 h",
            workflow(120, None),
            &eight_hours,
            false,
        ),
        ("120 min around 2 h", workflow(120, None), &two_hours, false),
        (
            "step just under the suite",
            workflow(180, Some(129)),
            &two_hours,
            false,
        ),
        (
            "no room to build",
            workflow(160, Some(150)),
            &two_hours,
            false,
        ),
        ("above 6 h", workflow(540, Some(500)), &eight_hours, false),
    ] {
        let result = check_sizing(&flow, runs);
        assert_eq!(result.is_ok(), fits, "{what}: {result:?}");
    }
}

#[test]
fn the_workflow_parser_reads_timeouts_and_the_command() {
    let readme = r#"
## Nightly job (GitHub Actions)

```yaml
jobs:
  soak:
    runs-on: ubuntu-latest
    timeout-minutes: 120   # too short
    steps:
      - uses: actions/checkout@v4
      - name: Run
        timeout-minutes: 90
        run: |
          # a comment with harness run in it
          ./target/release/harness run scenarios/ --scenario-tags failure,nightly \
            --proxy ci/my-proxy.toml -t 30s
      - name: Upload
        run: echo done
```
"#;
    let workflow = parse_workflow(readme).expect("parses");
    assert_eq!(workflow.job_timeout, Duration::from_secs(120 * 60));
    assert_eq!(
        workflow.run_step_timeout,
        Some(Duration::from_secs(90 * 60))
    );
    assert_eq!(
        workflow.command,
        [
            "run",
            "scenarios/",
            "--scenario-tags",
            "failure,nightly",
            "--proxy",
            "ci/my-proxy.toml",
            "-t",
            "30s"
        ]
    );
    let runs = select(&workflow.command, &workspace_root()).expect("selects");
    assert!(runs.len() >= 2, "{runs:?}");
    assert!(runs.iter().all(|r| r.run_time == Duration::from_secs(30)));
    for (broken, problem) in [
        (
            readme.replace("    timeout-minutes: 120", ""),
            "no `timeout-minutes`",
        ),
        (readme.replace("120", "two hours"), "timeout-minutes"),
        (
            readme.replace("harness run", "harness report"),
            "no step runs",
        ),
    ] {
        let err = parse_workflow(&broken).expect_err(problem);
        assert!(err.contains(problem), "{err}");
    }
}
