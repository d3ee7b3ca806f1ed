//! Exit codes of `harness` (the contract CI jobs rely on; documented in the README).

/// How a harness invocation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Every threshold and verdict passed.
    Pass = 0,
    /// A threshold or verdict failed (including LEAK / GROWTH).
    Failed = 1,
    /// Bad input: scenario, config or command line.
    BadInput = 2,
    /// The system under test failed to start (or never became ready).
    SutStartFailed = 3,
    /// The system under test crashed during the run.
    SutCrashed = 4,
    /// The run is invalid or inconclusive (monitor gaps, overloaded generator, I/O failure writing results).
    Invalid = 5,
    /// Interrupted by Ctrl-C / SIGTERM; results were still written.
    Interrupted = 130,
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> i32 {
        self as i32
    }
}
