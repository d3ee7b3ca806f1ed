//! JUnit XML parsed back with quick-xml: the testsuites/testsuite/testcase shape CI systems read, with counts
//! that match the cases, failures for failed limits, errors for runs that could not be judged, and escaping.

mod support;

use std::collections::BTreeMap;

use quick_xml::events::Event;
use quick_xml::Reader;

/// Elements in document order with their attributes, plus each element's parent name.
#[derive(Debug)]
struct Element {
    name: String,
    parent: String,
    attrs: BTreeMap<String, String>,
}

fn parse(xml: &str) -> Vec<Element> {
    let mut reader = Reader::from_str(xml);
    reader.config_mut().trim_text(true);
    let (mut stack, mut elements) = (Vec::<String>::new(), Vec::new());
    loop {
        let (start, empty) = match reader.read_event().expect("well-formed XML") {
            Event::Start(e) => (e.into_owned(), false),
            Event::Empty(e) => (e.into_owned(), true),
            Event::End(_) => {
                stack.pop();
                continue;
            }
            Event::Eof => break,
            _ => continue,
        };
        let name = String::from_utf8(start.name().as_ref().to_vec()).unwrap();
        let attrs = start
            .attributes()
            .map(|a| {
                let a = a.unwrap();
                (
                    String::from_utf8(a.key.as_ref().to_vec()).unwrap(),
                    a.unescape_value().unwrap().into_owned(),
                )
            })
            .collect();
        elements.push(Element {
            name: name.clone(),
            parent: stack.last().cloned().unwrap_or_default(),
            attrs,
        });
        if !empty {
            stack.push(name);
        }
    }
    assert!(stack.is_empty(), "unclosed elements: {stack:?}");
    elements
}

fn count(elements: &[Element], name: &str) -> usize {
    elements.iter().filter(|e| e.name == name).count()
}

fn attr(e: &Element, key: &str) -> usize {
    e.attrs[key]
        .parse()
        .unwrap_or_else(|_| panic!("{key} of {} is not a count", e.name))
}

/// Checks the shape and that every count attribute equals what the document contains.
fn check_counts(elements: &[Element]) {
    assert_eq!(elements[0].name, "testsuites");
    let suites: Vec<usize> = elements
        .iter()
        .enumerate()
        .filter(|(_, e)| e.name == "testsuite")
        .map(|(i, _)| i)
        .collect();
    assert!(
        suites.len() >= 2,
        "thresholds, verdicts (and behaviour when present)"
    );
    for (n, &start) in suites.iter().enumerate() {
        let end = suites.get(n + 1).copied().unwrap_or(elements.len());
        let inside = &elements[start..end];
        let suite = &elements[start];
        assert_eq!(suite.parent, "testsuites");
        assert!(inside
            .iter()
            .filter(|e| e.name == "testcase")
            .all(|e| e.parent == "testsuite" && e.attrs.contains_key("classname")));
        for (key, element) in [
            ("tests", "testcase"),
            ("failures", "failure"),
            ("errors", "error"),
            ("skipped", "skipped"),
        ] {
            assert_eq!(
                attr(suite, key),
                count(inside, element),
                "suite {} {key}",
                suite.attrs["name"]
            );
        }
    }
    for (key, element) in [
        ("tests", "testcase"),
        ("failures", "failure"),
        ("errors", "error"),
        ("skipped", "skipped"),
    ] {
        assert_eq!(
            attr(&elements[0], key),
            count(elements, element),
            "testsuites {key}"
        );
    }
}

#[test]
fn a_failed_run_has_one_case_per_threshold_and_verdict_with_failures() {
    let dir = tempfile::tempdir().unwrap();
    let summary = support::write_results_dir(dir.path());
    let xml = run_report::junit::render(&summary);
    let elements = parse(&xml);
    check_counts(&elements);
    let failed_thresholds = summary.thresholds.iter().filter(|t| !t.passed).count();
    assert!(failed_thresholds > 0, "fixture has failed thresholds");
    // thresholds + overall verdict + 5 resource metrics
    let (behaviour, behaviour_failed) = support::BEHAVIOUR_VERDICTS;
    // thresholds + overall verdict + 5 resource metrics + behaviour verdicts
    assert_eq!(
        count(&elements, "testcase"),
        summary.thresholds.len() + 1 + 5 + behaviour
    );
    assert_eq!(
        count(&elements, "failure"),
        failed_thresholds + 1 + behaviour_failed,
        "failed thresholds + FAIL verdict + failed behaviour"
    );
    assert_eq!(count(&elements, "skipped"), 1, "skipped recovery verdict");
    let recovery = elements.iter().find(|e| {
        e.name == "testcase"
            && e.attrs["classname"] == "harness.behaviour"
            && e.attrs["name"] == "recovery (k2 rate_limit)"
    });
    assert!(
        recovery.is_some(),
        "per-window behaviour case named with its window"
    );
    let p95 = elements
        .iter()
        .find(|e| e.name == "testcase" && e.attrs["name"] == "p95 <= 100 ms")
        .expect("p95 case");
    assert_eq!(p95.attrs["classname"], "harness.thresholds.Aggregated");
    let failure = elements
        .iter()
        .find(|e| e.name == "failure" && e.attrs["message"].starts_with("p95 "))
        .expect("p95 failure");
    assert!(
        failure.attrs["message"].contains("> limit 100 ms"),
        "{:?}",
        failure.attrs
    );
    let seed = elements
        .iter()
        .find(|e| e.name == "property" && e.attrs["name"] == "seed")
        .expect("seed property");
    assert_eq!(seed.attrs["value"], "42");
}

#[test]
fn crashed_and_pending_runs_are_errors_and_skips_and_text_is_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let mut summary = support::write_results_dir(dir.path());
    summary.verdict = "CRASHED".into();
    summary.verdict_reasons = vec!["proxy exited <signal 9> & \"core\" 'dumped'\u{1}".into()];
    let elements = parse(&run_report::junit::render(&summary));
    check_counts(&elements);
    let error = elements
        .iter()
        .find(|e| e.name == "error")
        .expect("CRASHED is an <error>");
    assert_eq!(
        error.attrs["message"],
        "CRASHED: proxy exited <signal 9> & \"core\" 'dumped'\u{fffd}"
    );

    summary.verdict = "PENDING".into();
    summary.leak_report = serde_json::Value::Null;
    summary.engine = serde_json::Value::Null;
    summary.thresholds.clear();
    let elements = parse(&run_report::junit::render(&summary));
    check_counts(&elements);
    assert_eq!(
        (count(&elements, "testcase"), count(&elements, "skipped")),
        (1, 1)
    );
}
