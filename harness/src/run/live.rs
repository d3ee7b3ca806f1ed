//! What a run hands its live metrics beyond the run loop's deltas: the timeline's fault windows before the
//! load, and every judged check once the run is judged.

use super::{timeline, Verdict};
use crate::live_metrics::{threshold_check, FaultWindow, LiveMetrics};
use proxy_behaviour::BehaviourReport;

/// The timeline's windows as the live metrics show them: none when no mock is under the harness's control
/// (no fault is switched then).
pub(super) fn windows(planned: &[timeline::Planned], switched: bool) -> Vec<FaultWindow> {
    planned
        .iter()
        .filter(|_| switched)
        .map(|w| FaultWindow {
            label: w.label.clone(),
            start: w.start,
            end: w.end,
        })
        .collect()
}

/// Every judged check on the live metrics (1 PASS, 0 otherwise), and the run's verdict as check `run`.
pub(super) fn publish_verdicts(
    metrics: &LiveMetrics,
    thresholds: &[load_stats::thresholds::ThresholdResult],
    behaviour: Option<&BehaviourReport>,
    verdict: &Verdict,
) {
    for t in thresholds {
        let state = if t.passed { "PASS" } else { "FAIL" };
        metrics.set_verdict(&threshold_check(t), state);
    }
    let name = |x: serde_json::Result<serde_json::Value>| {
        x.ok()
            .and_then(|x| x.as_str().map(str::to_string))
            .unwrap_or_default()
    };
    for v in behaviour.iter().flat_map(|b| &b.verdicts) {
        let subject = v
            .subject
            .as_deref()
            .map(|s| format!(" [{s}]"))
            .unwrap_or_default();
        let check = format!("behaviour {}{subject}", name(serde_json::to_value(v.check)));
        metrics.set_verdict(
            &check,
            &name(serde_json::to_value(v.outcome)).to_uppercase(),
        );
    }
    metrics.set_verdict("run", verdict.name);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn windows_are_shown_only_when_the_harness_switches_them() {
        let planned = vec![timeline::Planned {
            index: 0,
            label: "key2 rate_limit".into(),
            start: Duration::from_secs(1),
            end: Duration::from_secs(3),
        }];
        let shown = windows(&planned, true);
        assert_eq!(shown.len(), 1);
        assert_eq!(
            (shown[0].label.as_str(), shown[0].start, shown[0].end),
            (
                "key2 rate_limit",
                Duration::from_secs(1),
                Duration::from_secs(3)
            )
        );
        assert!(windows(&planned, false).is_empty());
    }
}
