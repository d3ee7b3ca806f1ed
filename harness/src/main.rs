//! `harness` binary: everything lives in the library ([`harness::main_entry`]); this only exits with its code.

fn main() {
    std::process::exit(harness::main_entry());
}
