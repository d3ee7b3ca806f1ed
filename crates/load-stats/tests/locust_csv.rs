//! Our Locust CSVs against real Locust 2.47 output (`tests/fixtures/locust/`, see its README).

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use load_stats::locust::{
    write_exceptions_csv, write_failures_csv, write_stats_csv, ExceptionRow, HistoryCsvWriter,
};
use load_stats::{ErrorClass, Outcome, OutcomeResult, Recorder, RunStats};

fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/locust")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn first_line(text: &str) -> &str {
    &text[..text.find("\r\n").expect("CRLF row ending") + 2]
}

fn written(write: impl FnOnce(&mut Vec<u8>)) -> String {
    let mut out = Vec::new();
    write(&mut out);
    String::from_utf8(out).unwrap()
}

/// A run shaped like the fixture's: successes, 404s, 429 failures, accepted 429s, a transport error.
fn busy_run() -> RunStats {
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_783_692);
    let mut run = RunStats::new(t0);
    let mut recorder = Recorder::new();
    let cases: [(&str, OutcomeResult<'static>, bool); 5] = [
        ("/ok", OutcomeResult::Status(200), true),
        ("/missing", OutcomeResult::Status(404), false),
        ("/limited", OutcomeResult::Status(429), false),
        ("/limited rapid", OutcomeResult::Status(429), true),
        (
            "/down",
            OutcomeResult::Error(ErrorClass::ConnectRefused, "connection refused"),
            false,
        ),
    ];
    for i in 0..200u64 {
        let (name, result, success) = cases[(i % 5) as usize].clone();
        recorder.record(&Outcome {
            name,
            method: "GET",
            result,
            success,
            latency: Duration::from_micros(900 + i * 233),
            bytes: 25,
            stream: None,
        });
    }
    run.merge(&recorder.take());
    run.close_interval(t0 + Duration::from_secs(9), 4);
    run
}

#[test]
fn headers_match_locust_byte_for_byte() {
    let run = busy_run();
    let stats = written(|out| write_stats_csv(out, &run).unwrap());
    let failures = written(|out| write_failures_csv(out, &run.totals().errors).unwrap());
    let exceptions = written(|out| write_exceptions_csv(out, &[]).unwrap());
    let history = written(|out| drop(HistoryCsvWriter::new(out).unwrap()));
    for (ours, theirs) in [
        (&stats, "results_stats.csv"),
        (&failures, "results_failures.csv"),
        (&exceptions, "results_exceptions.csv"),
        (&history, "results_stats_history.csv"),
    ] {
        assert_eq!(first_line(ours), first_line(&fixture(theirs)), "{theirs}");
    }
}

#[test]
fn empty_run_files_equal_locust_empty_run() {
    let run = RunStats::new(SystemTime::UNIX_EPOCH);
    for (ours, theirs) in [
        (
            written(|out| write_stats_csv(out, &run).unwrap()),
            "empty/results_stats.csv",
        ),
        (
            written(|out| write_failures_csv(out, &run.totals().errors).unwrap()),
            "empty/results_failures.csv",
        ),
        (
            written(|out| write_exceptions_csv(out, &[]).unwrap()),
            "empty/results_exceptions.csv",
        ),
    ] {
        assert_eq!(ours, fixture(theirs), "{theirs}");
    }
}

#[test]
fn empty_history_row_equals_locust_after_timestamp_and_users() {
    let mut run = RunStats::new(SystemTime::UNIX_EPOCH);
    let row = run.close_interval(SystemTime::UNIX_EPOCH + Duration::from_secs(1), 1);
    let ours = written(|out| HistoryCsvWriter::new(out).unwrap().write_row(&row).unwrap());
    let theirs = fixture("empty/results_stats_history.csv");
    let tail = |text: &str| {
        text.lines()
            .nth(1)
            .unwrap()
            .splitn(3, ',')
            .nth(2)
            .unwrap()
            .to_owned()
    };
    assert_eq!(tail(&ours), tail(&theirs));
}

/// `int`, `float`, `N/A` or `text` — what a parser of the column sees.
fn shape(cell: &str) -> &'static str {
    if cell == "N/A" {
        "N/A"
    } else if cell.parse::<i64>().is_ok() {
        "int"
    } else if cell.parse::<f64>().is_ok() {
        "float"
    } else {
        "text"
    }
}

fn rows(text: &str) -> Vec<Vec<String>> {
    csv::Reader::from_reader(text.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

#[test]
fn stats_cells_have_locust_shapes_and_end_with_aggregated() {
    let ours = rows(&written(|out| write_stats_csv(out, &busy_run()).unwrap()));
    let theirs = rows(&fixture("results_stats.csv"));
    let (our_agg, their_agg) = (ours.last().unwrap(), theirs.last().unwrap());
    assert_eq!(
        (our_agg[0].as_str(), our_agg[1].as_str()),
        ("", "Aggregated")
    );
    assert_eq!(our_agg[..2], their_agg[..2]);
    assert_eq!(ours.len(), 6, "five requests + Aggregated");
    let their_shapes: Vec<_> = theirs[0].iter().map(|c| shape(c)).collect();
    for row in &ours {
        let shapes: Vec<_> = row.iter().map(|c| shape(c)).collect();
        assert_eq!(shapes[2..], their_shapes[2..], "{row:?}");
    }
    assert_eq!(our_agg[2], "200");
    assert_eq!(
        our_agg[3], "120",
        "404s, 429 failures and connection refusals all count"
    );
}

#[test]
fn history_rows_have_locust_shapes() {
    let mut run = busy_run();
    let mut recorder = Recorder::new();
    recorder.record(&Outcome {
        name: "/ok",
        method: "GET",
        result: OutcomeResult::Status(200),
        success: true,
        latency: Duration::from_millis(43),
        bytes: 12,
        stream: None,
    });
    run.merge(&recorder.take());
    let row = run.close_interval(run.started() + Duration::from_secs(10), 4);
    let ours = rows(&written(|out| {
        HistoryCsvWriter::new(out).unwrap().write_row(&row).unwrap()
    }));
    let theirs = rows(&fixture("results_stats_history.csv"));
    let their_shapes: Vec<_> = theirs.last().unwrap().iter().map(|c| shape(c)).collect();
    let our_shapes: Vec<_> = ours[0].iter().map(|c| shape(c)).collect();
    assert_eq!(our_shapes, their_shapes);
    assert_eq!(
        ours[0][4], "1.000000",
        "one request in a one-second interval"
    );
}

#[test]
fn exceptions_quoting_reproduces_locust_bytes() {
    let theirs = fixture("results_exceptions.csv");
    let parsed = rows(&theirs);
    let exceptions: Vec<ExceptionRow> = parsed
        .iter()
        .map(|r| ExceptionRow {
            count: r[0].parse().unwrap(),
            message: r[1].clone(),
            traceback: r[2].clone(),
            nodes: r[3].split(", ").map(str::to_owned).collect(),
        })
        .collect();
    assert_eq!(
        written(|out| write_exceptions_csv(out, &exceptions).unwrap()),
        theirs
    );
}

#[test]
fn failures_rows_carry_kind_message_count_and_utc_times() {
    let run = busy_run();
    let text = written(|out| write_failures_csv(out, &run.totals().errors).unwrap());
    let ours = rows(&text);
    let find = |name: &str| ours.iter().find(|r| r[1] == name).unwrap().clone();
    assert_eq!(find("/limited")[2], "unexpected status 429");
    assert_eq!(find("/down")[2], "connect_refused: connection refused");
    assert_eq!(find("/missing")[3], "40");
    assert!(
        ours.iter().all(|r| r[4].len() == 20 && r[4].ends_with('Z')),
        "{text}"
    );
    assert!(
        !ours.iter().any(|r| r[1] == "/limited rapid"),
        "accepted 429s are not failures"
    );
}

/// Cell for cell against Locust's own statistics code fed the same latencies
/// (`fixtures/locust/reference/reference_stats.py`).
#[test]
fn stats_rows_equal_locust_on_the_same_latencies() {
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
    let mut run = RunStats::new(t0);
    let mut recorder = Recorder::new();
    let requests: [(&str, &str, u64, u64, bool); 9] = [
        ("GET", "/ref", 750, 10, false),
        ("GET", "/ref", 1_250, 20, false),
        ("GET", "/ref", 43_250, 30, true),
        ("GET", "/ref", 44_750, 40, false),
        ("GET", "/ref", 58_250, 50, false),
        ("GET", "/ref", 147_250, 60, true),
        ("GET", "/ref", 1_004_500, 70, false),
        ("POST", "/one-slow", 1_004_500, 5, false),
        ("GET", "/third", 2_250, 0, false),
    ];
    for (method, name, us, bytes, failed) in requests {
        recorder.record(&Outcome {
            name,
            method,
            result: OutcomeResult::Status(if failed { 500 } else { 200 }),
            success: !failed,
            latency: Duration::from_micros(us),
            bytes,
            stream: None,
        });
    }
    run.merge(&recorder.take());
    let row = run.close_interval(t0 + Duration::from_secs(10), 0);
    let ours = written(|out| write_stats_csv(out, &run).unwrap());
    assert_eq!(ours, fixture("reference/reference_stats.csv"));

    // The history row: identical except Requests/s and Failures/s, which are Locust's ~10 s moving window
    // (0 here, as Locust had no per-second samples) and this interval's rate for us.
    let history = written(|out| HistoryCsvWriter::new(out).unwrap().write_row(&row).unwrap());
    let mut ours: Vec<String> = rows(&history)[0].clone();
    assert_eq!(
        (ours[4].as_str(), ours[5].as_str()),
        ("0.900000", "0.200000")
    );
    ours[4] = "0.000000".into();
    ours[5] = "0.000000".into();
    let theirs = fixture("reference/reference_history.csv");
    assert_eq!(format!("{}\r\n", ours.join(",")), theirs);
}
