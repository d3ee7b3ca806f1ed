//! The process allocator: jemalloc instead of glibc malloc.
//!
//! Why: the hot path allocates a little per request (request head, hyper's channels and buffers). With glibc
//! malloc that cost ~7 % of a load thread's CPU, and glibc's per-thread arenas let a soak's RSS creep up as freed
//! memory stays fragmented across threads; jemalloc is cheaper per call and hands unused pages back over time.
//! oha, the generator the harness is measured against, uses it too.

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
