//! `harness` binary: everything lives in the library ([`harness::main_entry`]); this only exits with its code.

/// jemalloc, as in `reference-proxy`: it hands memory freed after a burst (connections opened while the target
/// stalled, a report being built) back to the OS within seconds, so the harness's own RSS — which a soak records to
/// show the generator did not drift — stays flat; glibc's malloc keeps such memory in its arenas for the rest of
/// the run. It is also a little faster on the request path (figures in the README).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    std::process::exit(harness::main_entry());
}
