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

    /// The exit for a process code (`None` for a code the harness never returns).
    pub fn from_code(code: i32) -> Option<Exit> {
        [
            Exit::Pass,
            Exit::Failed,
            Exit::BadInput,
            Exit::SutStartFailed,
            Exit::SutCrashed,
            Exit::Invalid,
            Exit::Interrupted,
        ]
        .into_iter()
        .find(|e| e.code() == code)
    }

    /// How bad an ending is, for a suite's exit code (the worst of its runs): interrupted, crashed, failed to
    /// start, bad input, failed, inconclusive, passed. An interrupted suite did not run everything, so nothing
    /// outranks it; a crash says more than a start-up failure, which says more than one scenario's bad input,
    /// which hides what a failed verdict would have said; INCONCLUSIVE only outranks a PASS.
    pub fn severity(self) -> u8 {
        match self {
            Exit::Pass => 0,
            Exit::Invalid => 1,
            Exit::Failed => 2,
            Exit::BadInput => 3,
            Exit::SutStartFailed => 4,
            Exit::SutCrashed => 5,
            Exit::Interrupted => 6,
        }
    }

    /// The worse of two endings (see [`Exit::severity`]).
    pub fn worst(self, other: Exit) -> Exit {
        if other.severity() > self.severity() {
            other
        } else {
            self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Exit;

    #[test]
    fn suite_precedence_is_130_4_3_2_1_5_0() {
        let order = [130, 4, 3, 2, 1, 5, 0];
        for (i, &worse) in order.iter().enumerate() {
            for &better in &order[i..] {
                let (w, b) = (
                    Exit::from_code(worse).unwrap(),
                    Exit::from_code(better).unwrap(),
                );
                assert_eq!(w.worst(b), w, "{worse} vs {better}");
                assert_eq!(b.worst(w), w, "{better} vs {worse}");
            }
        }
        assert_eq!(Exit::from_code(7), None);
    }
}
