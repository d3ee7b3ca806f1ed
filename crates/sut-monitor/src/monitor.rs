//! The resource monitor: samples the system under test (a process and all its descendants) on its own thread at
//! a fixed interval, appends every sample to `resources.csv`, and hands back the whole series when stopped.
//!
//! Why a dedicated OS thread rather than a tokio task: the sampler does blocking process-table reads, and its timing
//! must not depend on how busy the load generator's runtime is — a late sample is recorded as a gap (see
//! [`ResourceSeries::max_gap_secs`]) and makes the leak verdict INVALID, so the sampler should not be the cause.
//! Ticks are scheduled on an absolute grid (`start + k * interval`); a tick missed by more than one interval is
//! skipped, never burst-sampled, so gaps show honestly in the timestamps.

use parking_lot::{Mutex, MutexGuard};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::linux_extras::UNAVAILABLE_COLUMNS;
use crate::process_tree::{self, ProcessTree};
use crate::resources_csv::ResourcesCsv;
use crate::sampler::Sampler;
use crate::source::replicas::TickOutcome;
use crate::source::scrape::RemoteSampler;
use crate::source::MonitorSource;

/// Which part of the run a sample belongs to. Only `Steady` samples are judged for trends; `Drain` samples are
/// checked for a return to the pre-load baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Load ramping up, caches and pools filling: excluded from trend analysis.
    #[serde(rename = "warmup")]
    WarmUp,
    /// Steady load: the window judged for leaks and growth.
    Steady,
    /// Load stopped: resources should return near the pre-load baseline.
    Drain,
}

impl Phase {
    fn to_u8(self) -> u8 {
        self as u8
    }

    fn from_u8(v: u8) -> Self {
        match v {
            0 => Phase::WarmUp,
            1 => Phase::Steady,
            _ => Phase::Drain,
        }
    }
}

/// How the monitor samples.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorConfig {
    /// Time between samples (default 1 s; at least [`MIN_INTERVAL`]).
    pub interval: Duration,
    /// Phase of the first samples (default [`Phase::WarmUp`]).
    pub initial_phase: Phase,
    /// If set, the monitor itself switches from `WarmUp` to `Steady` this long after start, unless
    /// [`MonitorHandle::set_phase`] was called before. `None` (default): phases change only via `set_phase`.
    pub steady_after: Option<Duration>,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(1),
            initial_phase: Phase::WarmUp,
            steady_after: None,
        }
    }
}

/// Every this many samples (5 s at the default 1 Hz) the monitor redoes two expensive walks: resolving every fd
/// to find the sockets (a syscall per fd: thousands for a busy proxy) and, on kernels without
/// `/proc/PID/task/*/children`, the discovery of new child processes (one `stat` read per process on the
/// machine). `socket_fds` carries the last value in between; memory, CPU, threads and the fd count are read at
/// every sample.
pub const SLOW_REFRESH_SAMPLES: u64 = 5;

/// Every this many samples (15 s at 1 Hz) the TCP state breakdown is redone: reading `/proc/PID/net/tcp{,6}`
/// makes the kernel walk its whole socket hash table, ~1–2 ms of CPU per file on a large machine however few
/// sockets the process owns — the largest single cost of the monitor. The `tcp_*` columns carry the last
/// breakdown in between (they are diagnostic; socket growth is judged on `socket_fds`).
pub const TCP_REFRESH_SAMPLES: u64 = 3 * SLOW_REFRESH_SAMPLES;

/// Resource usage of the watched tree at one instant (also one row of `resources.csv`, same field order).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Wall-clock time, milliseconds since the Unix epoch.
    pub unix_ms: u64,
    /// Seconds since the monitor started (monotonic clock).
    pub t_secs: f64,
    /// Phase when the sample was taken.
    pub phase: Phase,
    /// Live processes in the tree (root + descendants).
    pub processes: u32,
    /// Resident set size summed over the tree, bytes.
    pub rss_bytes: u64,
    /// Anonymous resident memory (`RssAnon`, heap-like) summed over the tree, bytes.
    pub rss_anon_bytes: u64,
    /// Virtual size summed over the tree, bytes.
    pub vsize_bytes: u64,
    /// CPU use of the tree since the previous sample, percent of one core (first sample: lifetime average).
    pub cpu_percent: f64,
    /// Threads summed over the tree.
    pub threads: u64,
    /// Open file descriptors summed over the tree.
    pub fds: u64,
    /// Of those, sockets of any kind (the metric judged for socket growth); refreshed every
    /// [`SLOW_REFRESH_SAMPLES`] samples and carried forward in between.
    pub socket_fds: u64,
    /// TCP sockets owned by the tree (all states except TIME_WAIT, which no process owns); refreshed every
    /// [`TCP_REFRESH_SAMPLES`] samples and carried forward in between, like the four columns below.
    pub tcp_sockets: u64,
    /// ... of which ESTABLISHED.
    pub tcp_established: u64,
    /// ... of which CLOSE_WAIT (peer closed, the proxy did not: the classic socket leak).
    pub tcp_close_wait: u64,
    /// ... of which LISTEN.
    pub tcp_listen: u64,
    /// ... in any other state.
    pub tcp_other: u64,
    /// RSS of the process running the monitor (the harness), bytes.
    pub harness_rss_bytes: u64,
    /// CPU of the process running the monitor (the harness, load generation included), percent of one core.
    pub harness_cpu_percent: f64,
    /// CPU of the sampling thread alone, percent of one core: the monitor's own cost.
    pub monitor_cpu_percent: f64,
    /// Which replica the sample is of: the PID for the process source, the `/metrics` URL's `host:port` or the
    /// replica label's value for remote sources (empty in files written before the column existed).
    #[serde(default)]
    pub replica: String,
}

/// A replica whose process start time changed between two answers: it restarted (judged CRASHED).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplicaRestart {
    /// The replica.
    pub replica: String,
    /// When the new start time was first seen, seconds since the monitor started.
    pub at_secs: f64,
    /// The start time before, seconds since the Unix epoch.
    pub previous_start_unix_secs: f64,
    /// The start time after.
    pub new_start_unix_secs: f64,
}

/// Everything the monitor saw, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceSeries {
    /// The watched root PID.
    pub root_pid: u32,
    /// The configured sampling interval, seconds.
    pub interval_secs: f64,
    /// Samples in time order.
    pub samples: Vec<Sample>,
    /// Set when the root process was found gone (exited, zombie, or PID reused): seconds since start.
    pub exited_at_secs: Option<f64>,
    /// Sample columns the sampling platform cannot read (written as 0, never judged); the monitor fills it from
    /// [`UNAVAILABLE_COLUMNS`], empty on Linux.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unavailable_columns: Vec<String>,
    /// Replicas that restarted during the run (remote sources).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replica_restarts: Vec<ReplicaRestart>,
    /// Why the process counts as gone, when it is not simply the root process exiting (a replica restarted or
    /// stopped answering); the leak report gives it as the CRASHED reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_reason: Option<String>,
}

/// A hole in the sampling: two consecutive samples further apart than expected.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SamplingGap {
    /// Time of the sample before the gap, seconds since start.
    pub after_secs: f64,
    /// Seconds between the two samples.
    pub length_secs: f64,
}

impl ResourceSeries {
    /// An empty series for a root PID sampled every `interval`.
    pub fn new(root_pid: u32, interval: Duration) -> Self {
        Self {
            root_pid,
            interval_secs: interval.as_secs_f64(),
            samples: Vec::new(),
            exited_at_secs: None,
            unavailable_columns: Vec::new(),
            replica_restarts: Vec::new(),
            exit_reason: None,
        }
    }

    /// The largest time between consecutive samples (including from start to the first sample), seconds.
    pub fn max_gap_secs(&self) -> f64 {
        self.deltas().map(|(_, d)| d).fold(0.0, f64::max)
    }

    /// Every gap longer than `intervals` sampling intervals.
    pub fn gaps_longer_than(&self, intervals: f64) -> Vec<SamplingGap> {
        let limit = intervals * self.interval_secs;
        self.deltas()
            .filter(|&(_, d)| d > limit)
            .map(|(after_secs, length_secs)| SamplingGap {
                after_secs,
                length_secs,
            })
            .collect()
    }

    fn deltas(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        self.samples
            .windows(2)
            .map(|w| (w[0].t_secs, w[1].t_secs - w[0].t_secs))
    }
}

/// Why the monitor could not start.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    /// The PID does not exist (or is already a zombie).
    #[error("no running process with PID {pid} to monitor")]
    NoSuchProcess {
        /// The PID asked for.
        pid: u32,
    },
    /// `/proc/PID/fd` cannot be listed: another user's process and we are not root.
    #[error("cannot read /proc/{pid}/fd (permission denied?): run the monitor as the same user as the process, or as root")]
    FdsUnreadable {
        /// The PID asked for.
        pid: u32,
    },
    /// `resources.csv` could not be created or written.
    #[error("cannot write {}: {source}", path.display())]
    Csv {
        /// The CSV path.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The sampling thread could not be spawned.
    #[error("cannot start the sampling thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// Shortest sampling interval; shorter ones are raised to it.
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// Entry point: see [`Monitor::start`].
#[derive(Debug)]
pub struct Monitor;

/// State shared between the sampling thread and the handle.
#[derive(Debug)]
struct Shared {
    series: Mutex<ResourceSeries>,
    phase: AtomicU8,
    phase_set_explicitly: AtomicBool,
    exited: AtomicBool,
}

impl Shared {
    fn series(&self) -> MutexGuard<'_, ResourceSeries> {
        // A panic while holding the lock cannot leave a half-pushed sample; keep the data.
        self.series.lock()
    }
}

/// Controls a running monitor. Dropping it stops the sampling thread (the series is then lost; call `stop`).
#[derive(Debug)]
pub struct MonitorHandle {
    shared: Arc<Shared>,
    stop_tx: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Monitor {
    /// Starts sampling `root_pid` and its descendants every `config.interval`, appending and flushing a row to
    /// `csv_path` per sample. The first sample is taken before this returns (the pre-load baseline).
    pub fn start(
        root_pid: u32,
        mut config: MonitorConfig,
        csv_path: &Path,
    ) -> Result<MonitorHandle, MonitorError> {
        config.interval = config.interval.max(MIN_INTERVAL);
        let tree =
            ProcessTree::attach(root_pid).ok_or(MonitorError::NoSuchProcess { pid: root_pid })?;
        if !process_tree::fds_readable(root_pid) {
            return Err(MonitorError::FdsUnreadable { pid: root_pid });
        }
        let series = ResourceSeries {
            unavailable_columns: UNAVAILABLE_COLUMNS.iter().map(|c| c.to_string()).collect(),
            ..ResourceSeries::new(root_pid, config.interval)
        };
        Self::spawn(
            SampleSource::Process(Box::new(Sampler::new(tree))),
            series,
            config,
            csv_path,
        )
    }

    /// Starts sampling from `source`: a local process (as [`Monitor::start`]) or the replicas' metrics. A remote
    /// source takes its first sample on the sampling thread, right away (its HTTP client cannot run inside the
    /// caller's async runtime); a replica that does not answer is a gap, not an error.
    pub fn start_source(
        source: &MonitorSource,
        mut config: MonitorConfig,
        csv_path: &Path,
    ) -> Result<MonitorHandle, MonitorError> {
        config.interval = config.interval.max(MIN_INTERVAL);
        let sampler = match source {
            MonitorSource::Process { pid } => return Self::start(*pid, config, csv_path),
            MonitorSource::Metrics { .. } | MonitorSource::Prometheus(_) => {
                RemoteSampler::new(source.clone(), config.interval).map_err(MonitorError::Thread)?
            }
        };
        let series = ResourceSeries {
            unavailable_columns: sampler.unavailable_columns(),
            ..ResourceSeries::new(0, config.interval)
        };
        Self::spawn(
            SampleSource::Remote(Box::new(sampler)),
            series,
            config,
            csv_path,
        )
    }

    fn spawn(
        source: SampleSource,
        series: ResourceSeries,
        config: MonitorConfig,
        csv_path: &Path,
    ) -> Result<MonitorHandle, MonitorError> {
        let csv = ResourcesCsv::create(csv_path)?;
        let shared = Arc::new(Shared {
            series: Mutex::new(series),
            phase: AtomicU8::new(config.initial_phase.to_u8()),
            phase_set_explicitly: AtomicBool::new(false),
            exited: AtomicBool::new(false),
        });
        let origin = Instant::now();
        let baseline_on_thread = matches!(source, SampleSource::Remote(_));
        let mut run = SamplingLoop {
            source,
            csv,
            csv_failed: false,
            shared: shared.clone(),
            config,
            origin,
            failing: Default::default(),
        };
        if !baseline_on_thread {
            run.tick(origin);
        }
        let (stop_tx, stop_rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("sut-monitor".into())
            .spawn(move || {
                if baseline_on_thread {
                    run.tick(origin);
                }
                run.run(stop_rx)
            })
            .map_err(MonitorError::Thread)?;
        Ok(MonitorHandle {
            shared,
            stop_tx: Some(stop_tx),
            thread: Some(thread),
        })
    }
}

/// What the sampling thread reads.
enum SampleSource {
    /// A local process tree.
    Process(Box<Sampler>),
    /// Replicas' metrics over HTTP.
    Remote(Box<RemoteSampler>),
}

impl MonitorHandle {
    /// The most recent sample, if any.
    pub fn latest(&self) -> Option<Sample> {
        self.shared.series().samples.last().cloned()
    }

    /// Labels the following samples with `phase` (and disables the automatic `steady_after` switch).
    pub fn set_phase(&self, phase: Phase) {
        self.shared
            .phase_set_explicitly
            .store(true, Ordering::SeqCst);
        self.shared.phase.store(phase.to_u8(), Ordering::SeqCst);
    }

    /// The current phase label.
    pub fn phase(&self) -> Phase {
        Phase::from_u8(self.shared.phase.load(Ordering::SeqCst))
    }

    /// Whether the root process has been seen gone (sampling has then stopped).
    pub fn exited(&self) -> bool {
        self.shared.exited.load(Ordering::SeqCst)
    }

    /// Runs `f` on the series so far without copying it (sampling waits meanwhile: keep `f` short).
    pub fn inspect<R>(&self, f: impl FnOnce(&ResourceSeries) -> R) -> R {
        f(&self.shared.series())
    }

    /// A copy of the series so far (costs a clone of all samples; prefer [`MonitorHandle::inspect`]).
    pub fn snapshot(&self) -> ResourceSeries {
        self.shared.series().clone()
    }

    /// Stops sampling and returns the whole series.
    pub fn stop(mut self) -> ResourceSeries {
        self.halt();
        std::mem::replace(
            &mut *self.shared.series(),
            ResourceSeries::new(0, Duration::ZERO),
        )
    }

    fn halt(&mut self) {
        if let Some(tx) = self.stop_tx.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for MonitorHandle {
    fn drop(&mut self) {
        self.halt();
    }
}

/// The sampling thread's state.
struct SamplingLoop {
    source: SampleSource,
    /// Replicas whose last scrape failed (each failure streak is logged once).
    failing: std::collections::BTreeSet<String>,
    csv: ResourcesCsv,
    csv_failed: bool,
    shared: Arc<Shared>,
    config: MonitorConfig,
    /// Time zero of the series (the baseline sample).
    origin: Instant,
}

impl SamplingLoop {
    fn run(mut self, stop: mpsc::Receiver<()>) {
        let interval = self.config.interval;
        let origin = self.origin;
        let mut tick: u32 = 1;
        loop {
            let due = origin + interval * tick;
            match stop.recv_timeout(due.saturating_duration_since(Instant::now())) {
                Err(RecvTimeoutError::Timeout) => {}
                Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
            }
            let now = Instant::now();
            if !self.tick(now) {
                return;
            }
            // Skip ticks we are already late for by more than one interval: the gap stays visible.
            let behind = now.duration_since(origin).as_secs_f64() / interval.as_secs_f64();
            tick = (behind.floor() as u32 + 1).max(tick + 1);
        }
    }

    /// Takes one sample. Returns false when the root is gone.
    fn tick(&mut self, now: Instant) -> bool {
        let t_secs = now.duration_since(self.origin).as_secs_f64();
        let phase = self.phase_at(t_secs);
        let unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let (sample, root) = match &mut self.source {
            SampleSource::Process(sampler) => {
                (sampler.sample(now, t_secs, unix_ms, phase), sampler.root())
            }
            SampleSource::Remote(remote) => {
                let outcome = remote.sample(now, t_secs, unix_ms, phase);
                let unavailable = remote.unavailable_columns();
                self.record_remote(outcome, unavailable, t_secs);
                return true;
            }
        };
        let Some(sample) = sample else {
            tracing::info!(pid = root, t_secs, "monitored process is gone");
            self.shared.series().exited_at_secs = Some(t_secs);
            self.shared.exited.store(true, Ordering::SeqCst);
            return false;
        };
        self.append_csv(&sample);
        self.shared.series().samples.push(sample);
        true
    }

    /// One tick of a remote source: every replica that answered gets its row.
    fn record_remote(&mut self, outcome: TickOutcome, unavailable: Vec<String>, t_secs: f64) {
        self.note_failures(&outcome.failures, t_secs);
        for sample in &outcome.samples {
            self.append_csv(sample);
        }
        let mut series = self.shared.series();
        series.samples.extend(outcome.samples);
        series.replica_restarts.extend(outcome.restarts);
        series.unavailable_columns = unavailable;
    }

    fn append_csv(&mut self, sample: &Sample) {
        if let Err(e) = self.csv.append(sample) {
            // Keep sampling into memory; say it once rather than every second.
            if !std::mem::replace(&mut self.csv_failed, true) {
                tracing::warn!("{e}; further samples are kept in memory only");
            }
        }
    }

    /// Logs the first failure of each streak (a failed scrape is a gap in that replica's series).
    fn note_failures(&mut self, failures: &[(String, String)], t_secs: f64) {
        let now_failing: std::collections::BTreeSet<String> = failures
            .iter()
            .map(|(replica, _)| replica.clone())
            .collect();
        for (replica, why) in failures.iter().filter(|(r, _)| !self.failing.contains(r)) {
            tracing::warn!(
                replica,
                t_secs,
                "scrape failed (a gap in its series): {why}"
            );
        }
        self.failing = now_failing;
    }

    fn phase_at(&self, t_secs: f64) -> Phase {
        let current = Phase::from_u8(self.shared.phase.load(Ordering::SeqCst));
        let auto_steady = self
            .config
            .steady_after
            .is_some_and(|after| t_secs >= after.as_secs_f64());
        if current == Phase::WarmUp
            && auto_steady
            && !self.shared.phase_set_explicitly.load(Ordering::SeqCst)
        {
            self.shared
                .phase
                .store(Phase::Steady.to_u8(), Ordering::SeqCst);
            return Phase::Steady;
        }
        current
    }
}
