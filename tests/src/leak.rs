//! A middleware that leaks on purpose, so the leak verdicts have a known positive to find.
//!
//! The leak is real (memory that is written to, so it is resident; descriptors that stay open; TCP connections to
//! the upstream that are never closed), not simulated numbers: the monitor must see it the same way it would see a
//! bug in a user's proxy. The socket leak is the classic one — a new upstream connection for a request, kept
//! open forever — so it shows in `socket_fds` (and `fds`, and the `tcp_established` column), not only as an fd.
//!
//! Memory is leaked into an append-only arena of large blocks rather than one allocation per request: a small
//! per-request allocation would cost its malloc header, size-class rounding and a pointer in the hoard on top
//! of the requested bytes (about 1.3× the nominal rate at 87 bytes a request), so the sensitivity benchmark
//! (`bench/leak-sensitivity-real.sh`) could not say which leak rate it detected. With the arena, RSS grows by
//! exactly the nominal bytes per request, at page granularity.

use parking_lot::Mutex;
use std::fs::File;

use axum::{extract::Request, middleware::Next, response::Response};

/// What the fixture leaks per request, read once from the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeakPlan {
    /// Bytes of heap kept alive (and touched, so they count in RSS) per request.
    pub bytes_per_request: usize,
    /// Leak one file descriptor every this many requests (0 = never).
    pub fd_every: u64,
    /// Leak one TCP connection to the upstream every this many requests (0 = never).
    pub socket_every: u64,
}

impl LeakPlan {
    /// Reads `LEAK_BYTES_PER_REQUEST`, `LEAK_FD_EVERY` and `LEAK_SOCKET_EVERY` (all default 0); a malformed value
    /// is an error naming the variable.
    pub fn from_env() -> Result<Self, BadLeakVariable> {
        Ok(Self {
            bytes_per_request: env_number("LEAK_BYTES_PER_REQUEST")?.unwrap_or(0) as usize,
            fd_every: env_number("LEAK_FD_EVERY")?.unwrap_or(0),
            socket_every: env_number("LEAK_SOCKET_EVERY")?.unwrap_or(0),
        })
    }
}

/// A `LEAK_*` variable that is not a non-negative integer.
#[derive(Debug, thiserror::Error)]
#[error("{name}={text:?} is not a non-negative integer")]
pub struct BadLeakVariable {
    /// The variable.
    pub name: &'static str,
    /// Its value.
    pub text: String,
}

fn env_number(name: &'static str) -> Result<Option<u64>, BadLeakVariable> {
    match std::env::var(name) {
        Ok(text) => text
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| BadLeakVariable { name, text }),
        Err(_) => Ok(None),
    }
}

/// `LEAK_SOCKET_EVERY` is set but the upstream URL names no `host:port` to connect to.
#[derive(Debug, thiserror::Error)]
#[error("LEAK_SOCKET_EVERY needs an upstream http://HOST:PORT to leak connections to, got {0:?}")]
pub struct NoSocketTarget(pub String);

/// `host:port` of an `http://` or `https://` URL (the port is required: the fixture never guesses one).
pub fn authority_of(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))?;
    let authority = rest.split('/').next()?;
    let (host, port) = authority.rsplit_once(':')?;
    (!host.is_empty() && port.parse::<u16>().is_ok()).then_some(authority)
}

static PLAN: Mutex<LeakPlan> = Mutex::new(LeakPlan {
    bytes_per_request: 0,
    fd_every: 0,
    socket_every: 0,
});
static SOCKET_TARGET: Mutex<String> = Mutex::new(String::new());
static OPEN_SOCKETS: Mutex<Vec<tokio::net::TcpStream>> = Mutex::new(Vec::new());
static HOARD: Mutex<Arena> = Mutex::new(Arena { blocks: Vec::new() });
static OPEN_FILES: Mutex<Vec<File>> = Mutex::new(Vec::new());
static REQUESTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Size of one arena block. Above glibc's mmap threshold, so a block's pages become resident only as they are
/// written.
const ARENA_BLOCK: usize = 4 << 20;

/// Append-only memory that is never freed: the leaked bytes.
struct Arena {
    blocks: Vec<Vec<u8>>,
}

impl Arena {
    /// Appends `bytes` bytes of `fill` (written, so resident), starting a new block when the current one is full.
    fn leak(&mut self, mut bytes: usize, fill: u8) {
        while bytes > 0 {
            if self.blocks.last().is_none_or(|b| b.len() == b.capacity()) {
                self.blocks.push(Vec::with_capacity(ARENA_BLOCK));
            }
            let Some(block) = self.blocks.last_mut() else {
                return;
            };
            let take = bytes.min(block.capacity() - block.len());
            block.extend(std::iter::repeat_n(fill, take));
            bytes -= take;
        }
    }
}

/// Installs the plan used by [`leak_middleware`]; leaked connections go to `upstream_url`'s `host:port`.
pub fn install(plan: LeakPlan, upstream_url: &str) -> Result<(), NoSocketTarget> {
    if plan.socket_every > 0 {
        let target =
            authority_of(upstream_url).ok_or_else(|| NoSocketTarget(upstream_url.into()))?;
        *SOCKET_TARGET.lock() = target.to_string();
    }
    *PLAN.lock() = plan;
    Ok(())
}

/// Leaks according to the installed plan, then passes the request on untouched.
pub async fn leak_middleware(request: Request, next: Next) -> Response {
    let plan = *PLAN.lock();
    let n = REQUESTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
    if plan.bytes_per_request > 0 {
        // Fill with a request-dependent byte so the pages are really written (not zero pages shared by the kernel).
        let fill = (n % 251) as u8 + 1;
        HOARD.lock().leak(plan.bytes_per_request, fill);
    }
    if plan.fd_every > 0 && n.is_multiple_of(plan.fd_every) {
        if let Ok(file) = File::open("/dev/null") {
            OPEN_FILES.lock().push(file);
        }
    }
    if plan.socket_every > 0 && n.is_multiple_of(plan.socket_every) {
        let target = SOCKET_TARGET.lock().clone();
        // A refused connection leaks nothing; the request itself goes on either way.
        if let Ok(stream) = tokio::net::TcpStream::connect(target.as_str()).await {
            OPEN_SOCKETS.lock().push(stream);
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

    fn leaked(arena: &Arena) -> usize {
        arena.blocks.iter().map(Vec::len).sum()
    }

    #[test]
    fn arena_keeps_exactly_the_leaked_bytes_across_blocks() {
        let cases = [
            (0, 0),
            (87, 1),
            (ARENA_BLOCK - 1, 1),
            (ARENA_BLOCK, 1),
            (ARENA_BLOCK + 1, 2),
        ];
        for (bytes, blocks) in cases {
            let mut arena = Arena { blocks: Vec::new() };
            arena.leak(bytes, 7);
            assert_eq!(
                (leaked(&arena), arena.blocks.len()),
                (bytes, blocks),
                "{bytes} bytes"
            );
            assert!(arena.blocks.iter().flatten().all(|&b| b == 7));
        }
        let mut arena = Arena { blocks: Vec::new() };
        for _ in 0..100 {
            arena.leak(ARENA_BLOCK / 3, 1);
        }
        assert_eq!(leaked(&arena), 100 * (ARENA_BLOCK / 3));
    }

    #[test]
    fn socket_target_is_the_urls_host_and_port() {
        let cases = [
            ("http://127.0.0.1:9000", Some("127.0.0.1:9000")),
            ("http://127.0.0.1:9000/v1", Some("127.0.0.1:9000")),
            ("https://localhost:443/", Some("localhost:443")),
            ("http://[::1]:8080", Some("[::1]:8080")),
            ("http://127.0.0.1", None),
            ("http://:80", None),
            ("127.0.0.1:9000", None),
            ("http://host:port", None),
        ];
        for (url, authority) in cases {
            assert_eq!(authority_of(url), authority, "{url}");
        }
        let plan = LeakPlan {
            bytes_per_request: 0,
            fd_every: 0,
            socket_every: 1,
        };
        let err = install(plan, "http://nowhere").unwrap_err();
        assert!(err.to_string().contains("LEAK_SOCKET_EVERY"), "{err}");
    }

    #[test]
    fn malformed_env_value_names_the_variable() {
        let err = env_number("PATH").unwrap_err();
        assert!(err.to_string().starts_with("PATH="), "{err}");
    }
}
