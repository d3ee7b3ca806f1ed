//! Scenario parsing and validation, table-driven over small TOML snippets.

use super::*;
use std::path::Path;

const HEAD: &str = "name = \"t\"\n[load]\nmodel = \"closed\"\nusers = 2\nrun_time = \"1s\"\n";

fn parse(text: &str) -> Result<Scenario, ScenarioError> {
    Scenario::from_str_at(text, "t.toml", Path::new("."))
}

#[test]
fn shipped_scenarios_parse() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).expect("scenarios dir").flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|x| x == "toml") {
            let s = Scenario::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
            assert!(
                !s.requests.is_empty() && !s.description.is_empty(),
                "{}",
                path.display()
            );
            count += 1;
        }
    }
    assert!(
        count >= 14,
        "the Locust-suite scenarios, quick_smoke, soak, nightly and the seven failure scenarios"
    );
}

#[test]
fn think_time_forms() {
    let cases = [
        (
            "think_time = \"1s\"",
            ThinkTime::Constant(std::time::Duration::from_secs(1)),
        ),
        (
            "think_time = 2",
            ThinkTime::Constant(std::time::Duration::from_secs(2)),
        ),
        (
            "think_time = { min = \"1s\", max = \"3s\" }",
            ThinkTime::Uniform {
                min: std::time::Duration::from_secs(1),
                max: std::time::Duration::from_secs(3),
            },
        ),
    ];
    for (line, want) in cases {
        let text = format!("{HEAD}{line}\n[[request]]\nname = \"a\"\npath = \"/\"\n");
        let s = parse(&text).unwrap_or_else(|e| panic!("{line}: {e}"));
        let LoadSpec::Closed(c) = &s.load else {
            panic!("closed")
        };
        assert_eq!(c.think_time, want, "{line}");
    }
}

#[test]
fn choose_expands_body_variants() {
    let text = format!(
        "{HEAD}[[request]]\nname = \"a\"\npath = \"/\"\nbody = {{ model = \"x\" }}\nchoose = {{ model = [\"a\", \"b\", \"c\"] }}\n"
    );
    let s = parse(&text).expect("valid");
    let bodies: Vec<String> = s.requests[0]
        .get_ref()
        .body_variants
        .iter()
        .map(|b| String::from_utf8_lossy(&b.json).into_owned())
        .collect();
    assert_eq!(
        bodies,
        vec![r#"{"model":"a"}"#, r#"{"model":"b"}"#, r#"{"model":"c"}"#]
    );
}

/// Each bad file must fail with a message naming file, line and field.
#[test]
fn bad_files_name_file_line_and_field() {
    let req = "[[request]]\nname = \"a\"\npath = \"/\"\n";
    let cases: Vec<(String, &str)> = vec![
        (
            format!("{HEAD}{req}colour = \"red\"\n"),
            "t.toml:9:1: unknown field `colour`",
        ),
        (format!("{HEAD}{req}weight = -1\n"), "t.toml:9:10"),
        (
            format!("{HEAD}{req}expect = [200, 999]\n"),
            "t.toml:9: request[0].expect",
        ),
        (
            format!("{HEAD}{req}method = \"GE T\"\n"),
            "t.toml:9: request[0].method",
        ),
        (
            format!("{HEAD}{req}\n[[request]]\nname = \"b\"\npath = \"nope\"\n"),
            "t.toml:12: request[1].path",
        ),
        (
            format!("{HEAD}{req}body = {{ a = 1 }}\nbody_file = \"x.json\"\n"),
            "t.toml:9: request[0].body",
        ),
        (
            format!("{HEAD}think_time = \"soon\"\n{req}"),
            "t.toml:6:14: invalid duration",
        ),
        (
            format!("{HEAD}think_time = {{ min = \"3s\", max = \"1s\" }}\n{req}"),
            "t.toml:6: load.think_time",
        ),
        (
            format!("name = \"t\"\n[load]\nmodel = \"open\"\nrun_time = \"1s\"\n{req}"),
            "t.toml:2: load.rate",
        ),
        (
            format!("name = \"t\"\n[load]\nmodel = \"bursty\"\n{req}"),
            "t.toml:3:9: unknown variant `bursty`",
        ),
        (
            format!("{HEAD}rate = 5.0\n{req}"),
            "t.toml:6: load.rate: not a field of the closed model",
        ),
        (
            format!("{HEAD}stages = [{{ duration = \"1s\" }}]\n{req}"),
            "t.toml:6: load.stages[0].users",
        ),
        (HEAD.to_string(), "missing field `request`"),
        (format!("{HEAD}{req}[oops\n"), "t.toml:9:"),
    ];
    for (text, want) in cases {
        let err = parse(&text).expect_err(want).to_string();
        assert!(err.contains(want), "want {want:?} in {err:?}");
        assert!(err.starts_with("t.toml:"), "{err}");
    }
}

#[test]
fn behaviour_and_timeline_are_parsed_and_checked() {
    let req = "[[request]]\nname = \"a\"\npath = \"/x\"\n";
    let ok = format!(
        "{HEAD}{req}[behaviour]\nmin_fairness = 0.9\nmax_recovery = \"5s\"\n\
         [[timeline]]\nat = \"10s\"\nfor = \"30s\"\nfault = {{ keys = [\"k2\"], action = \"rate_limit\", retry_after = \"5s\" }}\n\
         [[timeline]]\nat = 60\nlabel = \"down\"\nfault = {{ action = \"error\", status = 503 }}\n"
    );
    let named = format!(
        "{HEAD}{req}[behaviour]\nmax_recovery = \"5s\"\nrequired_checks = [\"recovery\", \"stream_buffering\"]\n\
         key_names = {{ \"key-1\" = \"key1\" }}\n"
    );
    let b = parse(&named)
        .expect("required checks and key names")
        .behaviour
        .unwrap()
        .into_inner();
    assert_eq!(b.required_checks.len(), 2);
    assert_eq!(b.key_names["key-1"], "key1");
    let s = parse(&ok).expect("valid behaviour and timeline");
    let b = s.behaviour.expect("[behaviour]").into_inner();
    assert_eq!(b.min_fairness, Some(0.9));
    assert_eq!(b.max_recovery, Some(std::time::Duration::from_secs(5)));
    let events: Vec<TimelineEvent> = s.timeline.into_iter().map(|e| e.into_inner()).collect();
    assert_eq!(events[0].duration, Some(std::time::Duration::from_secs(30)));
    assert_eq!(events[1].duration, None);
    assert_eq!(events[1].label.as_deref(), Some("down"));

    let cases = [
        (
            format!("{HEAD}{req}[behaviour]\nmin_fairness = 1.5\n"),
            "behaviour.min_fairness",
        ),
        (
            format!("{HEAD}{req}[behaviour]\nmin_fairnes = 0.5\n"),
            "unknown field `min_fairnes`",
        ),
        (
            format!("{HEAD}{req}[[timeline]]\nat = \"1s\"\nfor = \"0s\"\nfault = {{ action = \"close\" }}\n"),
            "t.toml:11: timeline[0].for",
        ),
        (
            format!("{HEAD}{req}[[timeline]]\nat = \"1s\"\nfault = {{ action = \"close\", ttl = \"1s\" }}\n"),
            "timeline[0].fault",
        ),
        (
            format!("{HEAD}{req}[[timeline]]\nat = \"1s\"\nfault = {{ action = \"error\", probability = 2.0 }}\n"),
            "timeline[0].fault",
        ),
        (
            format!("{HEAD}{req}[[timeline]]\nat = \"1s\"\nfault = {{ action = \"explode\" }}\n"),
            "unknown variant `explode`",
        ),
        (
            format!("{HEAD}{req}[behaviour]\nmax_recovery = \"5s\"\nrequired_checks = [\"recovry\"]\n"),
            "t.toml:11:19: required_checks: unknown check `recovry` (known: fairness, key_report,",
        ),
        (
            format!("{HEAD}{req}[behaviour]\nmin_fairness = 0.5\nrequired_checks = [\"recovery\"]\n"),
            "t.toml:11: behaviour.required_checks: behaviour check `recovery` is in `required_checks` but `max_recovery` is not set",
        ),
        (
            format!("{HEAD}{req}[behaviour]\nkey_names = {{ \"key-1\" = \"key1\", \"key-4\" = \"key4\" }}\n"),
            "t.toml:10: behaviour.key_names: `key_names` maps \"key-4\" to \"key4\", which is not a mock key id (known: key1, key2, key3)",
        ),
    ];
    for (text, want) in cases {
        let err = parse(&text).expect_err(want).to_string();
        assert!(err.contains(want), "want {want:?} in {err:?}");
        assert!(err.starts_with("t.toml:"), "{err}");
    }
}
