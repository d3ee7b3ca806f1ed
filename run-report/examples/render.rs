//! Renders the outputs of one results directory, for trying the crate before `harness report` is wired:
//! `cargo run -p run-report --example render -- <results dir or summary.json> [baseline summary.json]`
//! writes `report.html` and `junit.xml` next to the summary and prints the comparison when a baseline is given.

use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(target) = args.first() else {
        return Err("usage: render <results dir | summary.json> [baseline summary.json]".into());
    };
    let input = run_report::ReportInput::load(Path::new(target))?;
    std::fs::write(
        input.dir.join("report.html"),
        run_report::render_html(&input),
    )?;
    std::fs::write(
        input.dir.join("junit.xml"),
        run_report::junit::render(&input.summary),
    )?;
    println!("wrote {}/report.html and junit.xml", input.dir.display());
    if let Some(baseline) = args.get(1) {
        let current = input.dir.join(run_report::input::SUMMARY_FILE);
        let comparison =
            run_report::compare_files(Path::new(baseline), &current, &Default::default())?;
        print!("{}", comparison.to_table());
    }
    Ok(())
}
