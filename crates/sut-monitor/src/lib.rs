//! # sut-monitor — the proxy under test as a monitored process
//!
//! Samples the resource use of the system under test (a process and all its descendants) while load runs, and
//! judges the series for leaks and unbounded growth with verdicts a CI job can trust.
//!
//! ## Layout
//! - [`monitor`]: the sampling thread and its handle ([`monitor::Monitor::start`]), the [`monitor::Sample`] and
//!   [`monitor::ResourceSeries`] types; writes `resources.csv` as it goes ([`resources_csv`]).
//! - `process_tree`, `cpu`, `sampler` (private): reading one tree's memory, CPU time and identity through
//!   `sysinfo` (any platform), CPU % from CPU-time deltas, and one-sample assembly.
//! - [`linux_extras`]: what only Linux reports, through `procfs` (RssAnon, threads, fds, sockets, TCP states),
//!   and the list of `resources.csv` columns other platforms cannot fill.
//! - [`leak`]: pure trend statistics (Theil–Sen, Mann–Kendall with Hamed–Rao correction, cycle floors) and the
//!   PASS / LEAK / GROWTH / INCONCLUSIVE / CRASHED / INVALID verdicts.
//! - [`source`]: the remote sources (each replica's `/metrics`, or a Prometheus server) and their pure parts:
//!   exposition and PromQL answers → readings, readings → per-replica samples and restarts.
//! - [`watch`]: the `harness watch` command's logic: monitor an existing PID until a duration, Ctrl-C or its exit,
//!   then judge and report.

pub mod leak;
pub mod linux_extras;
pub mod monitor;
pub mod resources_csv;
pub mod source;
pub mod watch;

mod cpu;
mod process_tree;
mod sampler;
