//! Leak verdicts for a proxy that is not a local PID: replicas behind a load balancer, judged from their
//! Prometheus metrics. Four replicas of the fixture proxy run on loopback, each serving `/metrics`: `leak-a`
//! and `leak-b` keep 256 KiB per request, `clean` keeps nothing, and `doomed` (clean too) is killed halfway.
//! nginx balances them round-robin; a real Prometheus scrapes them every second. Two `harness run`s go at once
//! through nginx, one with `[monitor] source = "prometheus"` and one with `source = "metrics"` (scraping the
//! four `/metrics` directly), and each must judge the leaking replicas LEAK (or GROWTH), the clean one PASS and
//! the killed one CRASHED — by name.
//!
//! Kept CI-short: one 14 s load, a 3 s warm-up, a steady window of 11 samples (`min_steady = "8s"`,
//! `min_points = 8`), and a leak far above any limit (about 4 MiB/s per leaking replica). Without `prometheus` or
//! `nginx` the test is skipped with a message on stderr; with `CI` set it fails instead.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{describe, leaky_proxy_bin, temp_dir, ListeningProcess};

const ADMIN_TOKEN: &str = "monitor-sources-admin";
const RUN_SECS: u64 = 14;
/// When `doomed` is killed, counted from the start of the runs.
const KILL_AFTER: Duration = Duration::from_secs(7);

/// One replica: its name (the Prometheus `pod` label) and how much it keeps per request.
const REPLICAS: [(&str, u32); 4] = [
    ("leak-a", 256 * 1024),
    ("leak-b", 256 * 1024),
    ("clean", 0),
    ("doomed", 0),
];

/// `prometheus` and `nginx`, or what is missing.
fn tools() -> Result<(PathBuf, PathBuf), String> {
    let find = |name: &str, extra: &[&str]| {
        std::env::var_os("PATH")
            .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .chain(extra.iter().map(PathBuf::from))
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
            .ok_or_else(|| {
                format!("{name} not found (apt-get install --no-install-recommends {name})")
            })
    };
    Ok((find("prometheus", &[])?, find("nginx", &["/usr/sbin"])?))
}

/// A port free on loopback right now (the server that gets it binds it a moment later).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The mock's config (three keys, an admin token) and the proxies' keys file.
fn write_keys(dir: &Path) -> (PathBuf, PathBuf) {
    let keys: String = (1..=3)
        .map(|i| format!("[[keys]]\nid = \"key{i}\"\nsecret = \"sk-harness-mock-{i}\"\n"))
        .collect();
    let mock = dir.join("mock.toml");
    std::fs::write(
        &mock,
        format!("seed = 1\n{keys}[admin]\ntoken = \"{ADMIN_TOKEN}\"\n"),
    )
    .expect("write mock config");
    let proxy_keys = dir.join("keys.toml");
    std::fs::write(&proxy_keys, keys).expect("write keys");
    (mock, proxy_keys)
}

/// A child process started for the test, killed on drop (nginx and Prometheus print no `listening on` line).
struct Daemon {
    _child: tokio::process::Child,
}

impl Daemon {
    fn start(program: &Path, args: &[String], log: &Path) -> Daemon {
        let log = std::fs::File::create(log).expect("log file");
        let child = tokio::process::Command::new(program)
            .args(args)
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        Daemon { _child: child }
    }
}

/// Polls `url` until `accept(body)`, for at most 20 s.
async fn wait_for(url: &str, accept: impl Fn(&str) -> bool, log: &Path) {
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if let Ok(response) = client.get(url).send().await {
            if response.status() == 200 && accept(&response.text().await.unwrap_or_default()) {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{url} not ready within 20 s; log {}:\n{}",
        log.display(),
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

fn nginx_config(dir: &Path, port: u16, upstreams: &[String]) -> String {
    use std::os::unix::fs::MetadataExt;
    // Run as the current user: as root, the workers would otherwise switch to `nobody`.
    let as_root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    let servers: String = upstreams
        .iter()
        .map(|u| format!("    server {};\n", u.trim_start_matches("http://")))
        .collect();
    let d = dir.display();
    format!(
        "{user}worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/nginx-error.log;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
           fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
           upstream replicas {{\n{servers}    keepalive 32;\n  }}\n\
           server {{\n    listen 127.0.0.1:{port};\n    location / {{\n      proxy_pass http://replicas;\n\
               proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n      proxy_buffering off;\n\
               proxy_next_upstream error timeout non_idempotent;\n    }}\n  }}\n}}\n",
        user = if as_root { "user root;\n" } else { "" },
    )
}

fn prometheus_config(replicas: &[(&str, String)]) -> String {
    let targets: String = replicas
        .iter()
        .map(|(name, url)| {
            format!(
                "      - targets: [\"{}\"]\n        labels: {{ pod: \"{name}\" }}\n",
                url.trim_start_matches("http://")
            )
        })
        .collect();
    format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n\
         scrape_configs:\n  - job_name: proxy\n    static_configs:\n{targets}"
    )
}

fn scenario(name: &str, source: &str) -> String {
    format!(
        r#"
name = "{name}"
seed = 1

[load]
model = "open"
rate = 60
run_time = "{RUN_SECS}s"
timeout = "5s"

[[request]]
name = "chat"
method = "POST"
path = "/v1/chat/completions"
body = {{ model = "gpt-4", messages = [{{ role = "user", content = "monitor source probe" }}], max_tokens = 16 }}

[monitor]
judge_leaks = true
interval = "1s"
warmup = "3s"
{source}

[monitor.leak]
min_steady = "8s"
min_points = 8
"#
    )
}

/// Each replica's verdict in `summary.json`'s leak report, by replica name.
fn replica_verdicts(summary: &serde_json::Value) -> Vec<(String, String)> {
    summary["leak_report"]["replicas"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            (
                r["replica"].as_str().unwrap_or_default().to_string(),
                r["report"]["verdict"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect()
}

/// What is wrong with a run's verdicts, given each replica's name as that source calls it.
fn problems(summary: &serde_json::Value, names: &[String; 4]) -> Vec<String> {
    let verdicts = replica_verdicts(summary);
    let verdict_of = |name: &str| {
        verdicts
            .iter()
            .find(|(replica, _)| replica == name)
            .map_or("(no verdict)", |(_, v)| v.as_str())
    };
    let mut wrong = Vec::new();
    for (name, allowed) in names.iter().zip([
        &["LEAK", "GROWTH"][..],
        &["LEAK", "GROWTH"][..],
        &["PASS"][..],
        &["CRASHED"][..],
    ]) {
        if !allowed.contains(&verdict_of(name)) {
            wrong.push(format!("{name}: {} (want {allowed:?})", verdict_of(name)));
        }
    }
    if summary["leak_report"]["verdict"] != "CRASHED" {
        wrong.push(format!(
            "overall {} (want CRASHED)",
            summary["leak_report"]["verdict"]
        ));
    }
    let reasons = summary["leak_report"]["reasons"].to_string();
    let doomed = &names[3];
    if !reasons.contains(&format!("replica {doomed} disappeared")) {
        wrong.push(format!("no reason names {doomed} as gone: {reasons}"));
    }
    wrong
}

async fn run_harness(
    dir: &Path,
    text: &str,
    target: &str,
    mock: &str,
) -> (std::process::Output, serde_json::Value) {
    let scenario = dir.join("scenario.toml");
    std::fs::write(&scenario, text).expect("write scenario");
    let args = [
        "--target",
        target,
        "--upstream",
        mock,
        "--upstream-admin-token",
        ADMIN_TOKEN,
    ]
    .map(String::from);
    common::run_scenario_file(
        &scenario,
        &dir.join("results"),
        &args,
        Duration::from_secs(60),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_are_judged_by_name_from_prometheus_and_from_their_metrics() {
    let (prometheus, nginx) = match tools() {
        Ok(tools) => tools,
        Err(missing) => {
            assert!(std::env::var_os("CI").is_none(), "CI is set and {missing}");
            eprintln!("skipped: {missing}");
            return;
        }
    };
    let dir = temp_dir();
    let (mock_config, keys) = write_keys(&dir);
    let mock_args = ["--listen", "127.0.0.1:0", "--config"].map(String::from);
    let mock_args = [&mock_args[..], &[mock_config.display().to_string()]].concat();
    let mock = ListeningProcess::start(
        env!("CARGO_BIN_EXE_mock-upstream-e2e"),
        &mock_args,
        &dir.join("mock.log"),
    )
    .await
    .expect("start the mock");

    let mut replicas = Vec::new();
    for (name, keep) in REPLICAS {
        let args = [
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            mock.url(),
            "--keys-file",
        ]
        .map(String::from)
        .into_iter()
        .chain([keys.display().to_string()])
        .collect::<Vec<_>>();
        std::env::set_var("LEAK_BYTES_PER_REQUEST", keep.to_string());
        let replica =
            ListeningProcess::start(leaky_proxy_bin(), &args, &dir.join(format!("{name}.log")))
                .await
                .unwrap_or_else(|e| panic!("start {name}: {e}"));
        replicas.push((name, replica));
    }
    std::env::remove_var("LEAK_BYTES_PER_REQUEST");
    let urls: Vec<(&str, String)> = replicas
        .iter()
        .map(|(n, r)| (*n, r.url().to_string()))
        .collect();

    let nginx_port = free_port();
    let upstream_urls: Vec<String> = urls.iter().map(|(_, u)| u.clone()).collect();
    let nginx_conf = dir.join("nginx.conf");
    std::fs::write(&nginx_conf, nginx_config(&dir, nginx_port, &upstream_urls))
        .expect("nginx.conf");
    let nginx_args = [
        "-c".into(),
        nginx_conf.display().to_string(),
        "-p".into(),
        dir.display().to_string(),
        "-e".into(),
        dir.join("nginx-error.log").display().to_string(),
        "-g".into(),
        "daemon off;".into(),
    ];
    let _nginx = Daemon::start(&nginx, &nginx_args, &dir.join("nginx.log"));
    let target = format!("http://127.0.0.1:{nginx_port}");

    let prometheus_port = free_port();
    let prometheus_yml = dir.join("prometheus.yml");
    std::fs::write(&prometheus_yml, prometheus_config(&urls)).expect("prometheus.yml");
    let prometheus_args = [
        format!("--config.file={}", prometheus_yml.display()),
        format!("--storage.tsdb.path={}", dir.join("tsdb").display()),
        format!("--web.listen-address=127.0.0.1:{prometheus_port}"),
        "--log.level=warn".into(),
    ];
    let prometheus_log = dir.join("prometheus.log");
    let _prometheus = Daemon::start(&prometheus, &prometheus_args, &prometheus_log);
    let prometheus_url = format!("http://127.0.0.1:{prometheus_port}");
    wait_for(
        &format!("{target}/metrics"),
        |body| body.contains("process_open_fds"),
        &dir.join("nginx-error.log"),
    )
    .await;
    // Every replica scraped once, so the monitor's first tick sees all four.
    wait_for(
        &format!("{prometheus_url}/api/v1/query?query=up%7Bjob%3D%22proxy%22%7D%3D%3D1"),
        |body| body.matches("\"pod\"").count() == REPLICAS.len(),
        &prometheus_log,
    )
    .await;

    let via_prometheus = scenario(
        "replicas_via_prometheus",
        &format!("source = \"prometheus\"\n[monitor.prometheus]\nurl = \"{prometheus_url}\"\nselector = '{{job=\"proxy\"}}'"),
    );
    let metrics_urls: Vec<String> = urls
        .iter()
        .map(|(_, u)| format!("\"{u}/metrics\""))
        .collect();
    let via_metrics = scenario(
        "replicas_via_metrics",
        &format!(
            "source = \"metrics\"\nmetrics_urls = [{}]",
            metrics_urls.join(", ")
        ),
    );
    let (prometheus_dir, metrics_dir) = (dir.join("prometheus-run"), dir.join("metrics-run"));
    std::fs::create_dir_all(&prometheus_dir).expect("dir");
    std::fs::create_dir_all(&metrics_dir).expect("dir");
    let doomed = replicas.pop().expect("doomed replica");
    let kill = async move {
        tokio::time::sleep(KILL_AFTER).await;
        drop(doomed);
    };
    let (((p_out, p_summary), (m_out, m_summary)), ()) = tokio::join!(
        async {
            tokio::join!(
                run_harness(&prometheus_dir, &via_prometheus, &target, mock.url()),
                run_harness(&metrics_dir, &via_metrics, &target, mock.url()),
            )
        },
        kill
    );

    let pod_names = REPLICAS.map(|(name, _)| name.to_string());
    let host_ports = {
        let names: Vec<String> = urls
            .iter()
            .map(|(_, u)| u.trim_start_matches("http://").to_string())
            .collect();
        [
            names[0].clone(),
            names[1].clone(),
            names[2].clone(),
            names[3].clone(),
        ]
    };
    let mut report = Vec::new();
    for (source, summary, output, names) in [
        ("prometheus", &p_summary, &p_out, &pod_names),
        ("metrics", &m_summary, &m_out, &host_ports),
    ] {
        let wrong = problems(summary, names);
        if !wrong.is_empty() {
            report.push(format!(
                "{source}: {}\n{}",
                wrong.join("; "),
                describe(output, summary)
            ));
        }
        if output.status.code() != Some(1) {
            report.push(format!(
                "{source}: exit {:?}, want 1 (resources failed)",
                output.status.code()
            ));
        }
    }
    let csv = std::fs::read_to_string(prometheus_dir.join("results/resources.csv"))
        .expect("resources.csv");
    let header = csv.lines().next().unwrap_or_default();
    assert!(
        header.split(',').any(|c| c == "replica"),
        "no replica column: {header}"
    );
    assert!(
        csv.lines().any(|l| l.ends_with(",leak-a")),
        "no leak-a rows in resources.csv"
    );
    assert!(
        report.is_empty(),
        "results in {}\n{}",
        dir.display(),
        report.join("\n")
    );
}
