//! A middleware that leaks on purpose, so the leak verdicts have a known positive to find.
//!
//! The leak is real (memory that is written to, so it is resident; descriptors that stay open), not simulated
//! numbers: the monitor must see it the same way it would see a bug in a user's proxy.

use std::fs::File;
use std::sync::Mutex;

use axum::{extract::Request, middleware::Next, response::Response};

/// What the fixture leaks per request, read once from the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeakPlan {
    /// Bytes of heap kept alive (and touched, so they count in RSS) per request.
    pub bytes_per_request: usize,
    /// Leak one file descriptor every this many requests (0 = never).
    pub fd_every: u64,
}

impl LeakPlan {
    /// Reads `LEAK_BYTES_PER_REQUEST` and `LEAK_FD_EVERY` (both default 0); a malformed value is an error
    /// naming the variable.
    pub fn from_env() -> Result<Self, String> {
        Ok(Self {
            bytes_per_request: env_number("LEAK_BYTES_PER_REQUEST")?.unwrap_or(0) as usize,
            fd_every: env_number("LEAK_FD_EVERY")?.unwrap_or(0),
        })
    }
}

fn env_number(name: &str) -> Result<Option<u64>, String> {
    match std::env::var(name) {
        Ok(text) => text
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| format!("{name}={text:?} is not a non-negative integer")),
        Err(_) => Ok(None),
    }
}

static PLAN: Mutex<LeakPlan> = Mutex::new(LeakPlan {
    bytes_per_request: 0,
    fd_every: 0,
});
static HOARD: Mutex<Vec<Box<[u8]>>> = Mutex::new(Vec::new());
static OPEN_FILES: Mutex<Vec<File>> = Mutex::new(Vec::new());
static REQUESTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Installs the plan used by [`leak_middleware`].
pub fn install(plan: LeakPlan) {
    *PLAN.lock().unwrap_or_else(|e| e.into_inner()) = plan;
}

/// Leaks according to the installed plan, then passes the request on untouched.
pub async fn leak_middleware(request: Request, next: Next) -> Response {
    let plan = *PLAN.lock().unwrap_or_else(|e| e.into_inner());
    let n = REQUESTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
    if plan.bytes_per_request > 0 {
        // Fill with a request-dependent byte so the pages are really written (not zero pages shared by the kernel).
        let block = vec![(n % 251) as u8 + 1; plan.bytes_per_request].into_boxed_slice();
        HOARD.lock().unwrap_or_else(|e| e.into_inner()).push(block);
    }
    if plan.fd_every > 0 && n.is_multiple_of(plan.fd_every) {
        if let Ok(file) = File::open("/dev/null") {
            OPEN_FILES
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(file);
        }
    }
    next.run(request).await
}

/// Wraps a router with [`leak_middleware`]; shaped to be passed to `reference_proxy::run`.
pub fn with_leak(router: axum::Router) -> axum::Router {
    router.layer(axum::middleware::from_fn(leak_middleware))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_env_value_names_the_variable() {
        let err = env_number("PATH").unwrap_err();
        assert!(err.starts_with("PATH="), "{err}");
    }
}
