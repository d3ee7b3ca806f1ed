//! Which scenarios a suite runs: the files and directories given, every file parsed up front (so a typo in the
//! fifth scenario stops the suite before the first one runs, not an hour later), then `--scenario-tags`.

use crate::error::HarnessError;
use crate::scenario::Scenario;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// One scenario of the suite.
#[derive(Debug)]
pub struct Selected {
    /// Its file.
    pub file: PathBuf,
    /// Parsed and validated.
    pub scenario: Scenario,
    /// Its results directory's name inside the suite directory (the scenario's name, made unique).
    pub dir: String,
}

/// Expands `paths` (files, or directories whose `*.toml` files are taken in name order), parses every file and
/// keeps the scenarios with one of `tags` (all when empty). Every unreadable or invalid file is reported at once.
pub fn select(paths: &[PathBuf], tags: &[String]) -> Result<Vec<Selected>, HarnessError> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            files.extend(toml_files(path)?);
        } else {
            files.push(path.clone());
        }
    }
    let mut errors = Vec::new();
    let mut parsed = Vec::new();
    for file in files {
        match Scenario::from_file(&file) {
            Ok(scenario) => parsed.push((file, scenario)),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if !errors.is_empty() {
        return Err(HarnessError::BadInput(format!(
            "{} of the suite's scenario files are invalid; nothing was run:\n  {}",
            errors.len(),
            errors.join("\n  ")
        )));
    }
    let present: BTreeSet<String> = parsed
        .iter()
        .flat_map(|(_, s)| s.tags.iter().cloned())
        .collect();
    parsed.retain(|(_, s)| tags.is_empty() || s.tags.iter().any(|t| tags.contains(t)));
    if parsed.is_empty() {
        return Err(HarnessError::BadInput(format!(
            "--scenario-tags {}: no scenario has one of these tags (tags present: {})",
            tags.join(","),
            present.into_iter().collect::<Vec<_>>().join(", ")
        )));
    }
    let mut used = BTreeSet::new();
    Ok(parsed
        .into_iter()
        .map(|(file, scenario)| {
            let base = crate::run::sanitize(&scenario.name);
            let dir = (1..)
                .map(|n| {
                    if n == 1 {
                        base.clone()
                    } else {
                        format!("{base}-{n}")
                    }
                })
                .find(|d| used.insert(d.clone()))
                .unwrap_or(base);
            Selected {
                file,
                scenario,
                dir,
            }
        })
        .collect())
}

/// The `*.toml` files directly in `dir`, in name order.
fn toml_files(dir: &Path) -> Result<Vec<PathBuf>, HarnessError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| HarnessError::BadInput(format!("{}: {e}", dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(name: &str, tags: &str) -> String {
        format!(
            "name = \"{name}\"\ntags = [{tags}]\n[load]\nmodel = \"closed\"\nusers = 1\nrun_time = \"1s\"\n\
             [[request]]\nname = \"a\"\npath = \"/\"\n"
        )
    }

    #[test]
    fn directories_expand_in_name_order_and_tags_select() {
        let dir = tempfile::tempdir().expect("tempdir");
        let write =
            |file: &str, text: &str| std::fs::write(dir.path().join(file), text).expect("write");
        write("b.toml", &scenario("beta", "\"failure\", \"keys\""));
        write("a.toml", &scenario("alpha", "\"load\""));
        write("c.toml", &scenario("beta", "\"failure\""));
        write("notes.md", "not a scenario");
        std::fs::create_dir(dir.path().join("bodies")).expect("mkdir");
        let all = select(&[dir.path().to_path_buf()], &[]).expect("valid");
        let names: Vec<_> = all
            .iter()
            .map(|s| (s.scenario.name.as_str(), s.dir.as_str()))
            .collect();
        assert_eq!(
            names,
            [("alpha", "alpha"), ("beta", "beta"), ("beta", "beta-2")]
        );
        let failure = select(&[dir.path().to_path_buf()], &["failure".into()]).expect("valid");
        assert_eq!(failure.len(), 2);
        let err = select(&[dir.path().to_path_buf()], &["nope".into()]).expect_err("none");
        assert!(
            err.to_string()
                .contains("tags present: failure, keys, load"),
            "{err}"
        );
    }

    #[test]
    fn every_invalid_file_is_reported_before_anything_runs() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("ok.toml"), scenario("ok", "")).expect("write");
        std::fs::write(dir.path().join("bad1.toml"), "name = 3").expect("write");
        std::fs::write(dir.path().join("bad2.toml"), "nme = \"x\"").expect("write");
        let err = select(&[dir.path().to_path_buf()], &[])
            .expect_err("invalid")
            .to_string();
        assert!(
            err.starts_with("2 of the suite's scenario files are invalid"),
            "{err}"
        );
        assert!(
            err.contains("bad1.toml:1:8") && err.contains("bad2.toml:1:1"),
            "{err}"
        );
        let missing = select(&[dir.path().join("missing.toml")], &[]).expect_err("missing");
        assert!(
            missing.to_string().contains("missing.toml: cannot read"),
            "{missing}"
        );
    }
}
