//! Where a run's files go and writing them (through load-stats' writers).
//!
//! Layout of a results directory: `<prefix>_stats.csv`, `_stats_history.csv` (appended every second),
//! `_failures.csv`, `_exceptions.csv` (Locust 2.x formats), `summary.json`, `resources.csv` (proxy resources,
//! appended by the monitor) and `proxy.log`. `--csv PREFIX` puts the Locust CSVs at `PREFIX_*.csv` instead,
//! exactly like Locust's flag, so existing CI steps find them.

use crate::error::HarnessError;
use load_stats::interval_log::IntervalLogWriter;
use load_stats::locust::{
    write_exceptions_csv, write_failures_csv, write_stats_csv, HistoryCsvWriter,
};
use load_stats::RunStats;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

/// Paths of one run's result files.
#[derive(Debug, Clone)]
pub struct Outputs {
    dir: PathBuf,
    csv_prefix: PathBuf,
    extra_json: Option<PathBuf>,
    hlog: bool,
}

impl Outputs {
    /// Creates the results directory: `out`, or `results/<scenario>-<UTC timestamp>/`.
    pub fn create(
        scenario: &str,
        out: Option<&Path>,
        csv: Option<&str>,
        json: Option<&Path>,
    ) -> Result<Self, HarnessError> {
        let dir = match out {
            Some(d) => d.to_path_buf(),
            None => {
                PathBuf::from("results").join(format!("{}-{}", sanitize(scenario), utc_stamp()))
            }
        };
        std::fs::create_dir_all(&dir).map_err(|e| HarnessError::io(&dir, e))?;
        let csv_prefix = match csv {
            Some(p) => PathBuf::from(p),
            None => dir.join("results"),
        };
        if let Some(parent) = csv_prefix.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| HarnessError::io(parent, e))?;
        }
        Ok(Outputs {
            dir,
            csv_prefix,
            extra_json: json.map(Path::to_path_buf),
            hlog: false,
        })
    }

    /// The results directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `<prefix>_<suffix>.csv`.
    pub fn csv(&self, suffix: &str) -> PathBuf {
        let mut name = self.csv_prefix.as_os_str().to_owned();
        name.push(format!("_{suffix}.csv"));
        PathBuf::from(name)
    }

    /// `resources.csv` in the results directory.
    pub fn resources_csv(&self) -> PathBuf {
        self.dir.join("resources.csv")
    }

    /// `summary.json` in the results directory.
    pub fn summary_json(&self) -> PathBuf {
        self.dir.join("summary.json")
    }

    /// Opens the history CSV (header written and flushed).
    pub fn history_writer(&self) -> Result<HistoryCsvWriter<File>, HarnessError> {
        let path = self.csv("stats_history");
        File::create(&path)
            .and_then(HistoryCsvWriter::new)
            .map_err(|e| HarnessError::io(&path, e))
    }

    /// Also write the per-second latency histograms as `history.hlog` (a shard's, for `harness merge`).
    pub fn enable_hlog(&mut self) {
        self.hlog = true;
    }

    /// Opens `history.hlog` (header written and flushed) when enabled; `started` is the load's start.
    pub fn hlog_writer(
        &self,
        started: std::time::SystemTime,
    ) -> Result<Option<IntervalLogWriter<File>>, HarnessError> {
        if !self.hlog {
            return Ok(None);
        }
        let path = self.dir.join(crate::shard::HLOG_FILE);
        let file = File::create(&path).map_err(|e| HarnessError::io(&path, e))?;
        IntervalLogWriter::new(file, started)
            .map(Some)
            .map_err(|e| HarnessError::Environment(format!("{}: {e}", path.display())))
    }

    /// Writes `_stats.csv`, `_failures.csv` and `_exceptions.csv`.
    pub fn write_final_csvs(&self, run: &RunStats) -> Result<(), HarnessError> {
        let write = |suffix: &str, f: &dyn Fn(BufWriter<File>) -> std::io::Result<()>| {
            let path = self.csv(suffix);
            File::create(&path)
                .map(BufWriter::new)
                .and_then(f)
                .map_err(|e| HarnessError::io(&path, e))
        };
        write("stats", &|w| write_stats_csv(w, run))?;
        write("failures", &|w| write_failures_csv(w, &run.totals().errors))?;
        write("exceptions", &|w| write_exceptions_csv(w, &[]))
    }

    /// Writes `report.html` into the results directory (unless `html` is false) and the JUnit XML to `junit`.
    /// A report that cannot be rendered is a warning, not a failed run: the data files are already written.
    pub fn write_reports(
        &self,
        summary: &load_stats::summary::Summary,
        html: bool,
        junit: Option<&Path>,
    ) -> Result<(), HarnessError> {
        if html {
            if let Err(e) = run_report::write_report(&self.summary_json(), None) {
                eprintln!("harness: warning: report.html not written: {e}");
            }
        }
        if let Some(path) = junit {
            run_report::junit::write(summary, path)
                .map_err(|e| HarnessError::Environment(e.to_string()))?;
        }
        Ok(())
    }

    /// Writes `summary.json` (and the `--json` copy).
    pub fn write_summary<T: serde::Serialize>(&self, summary: &T) -> Result<(), HarnessError> {
        let text = serde_json::to_string_pretty(summary)
            .map_err(|e| HarnessError::Environment(e.to_string()))?;
        for path in std::iter::once(self.summary_json()).chain(self.extra_json.clone()) {
            std::fs::write(&path, &text).map_err(|e| HarnessError::io(&path, e))?;
        }
        Ok(())
    }
}

/// A scenario name safe as a directory name.
pub(crate) fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `20261127T125501Z`.
pub(crate) fn utc_stamp() -> String {
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    time::OffsetDateTime::now_utc()
        .format(&format)
        .unwrap_or_else(|_| "now".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_table() {
        for (name, want) in [
            ("normal_load", "normal_load"),
            ("a b/c", "a_b_c"),
            ("x-1", "x-1"),
        ] {
            assert_eq!(sanitize(name), want);
        }
    }

    #[test]
    fn csv_paths_follow_the_prefix() {
        let tmp = tempfile::tempdir().expect("tmp");
        let prefix = tmp.path().join("ci/results").display().to_string();
        let out = Outputs::create("s", Some(&tmp.path().join("run")), Some(&prefix), None)
            .expect("create");
        assert_eq!(out.csv("stats"), tmp.path().join("ci/results_stats.csv"));
        let out = Outputs::create("s", Some(&tmp.path().join("run")), None, None).expect("create");
        assert_eq!(
            out.csv("failures"),
            tmp.path().join("run/results_failures.csv")
        );
    }
}
