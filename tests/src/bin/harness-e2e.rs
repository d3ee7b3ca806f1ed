//! The `harness` program built inside this package, so the end-to-end tests get its path from Cargo
//! (`CARGO_BIN_EXE_harness-e2e`) without depending on another package's binary having been built.

fn main() {
    std::process::exit(harness::main_entry());
}
