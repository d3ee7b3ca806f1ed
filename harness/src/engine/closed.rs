//! Closed model: N users, each looping pick → send → think on its own connection, with the user count following
//! the stages.

use super::schedule::users_at;
use super::workers::Worker;
use super::{pause, rng_for, Shared};
use crate::http::Connection;
use crate::scenario::{ClosedLoad, ClosedStage, ThinkTime};
use rand::Rng;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// How often the controller re-evaluates the user count.
const TICK: Duration = Duration::from_millis(20);

/// Runs `worker`'s share of the closed model (users `worker.index`, `+ worker.count`, ...) from `start` until
/// the run time is over or the engine is stopped.
pub(super) async fn drive(
    shared: Arc<Shared>,
    load: ClosedLoad,
    seed: u64,
    worker: Worker,
    start: Instant,
) {
    let stages = if load.stages.is_empty() {
        vec![ClosedStage {
            duration: load.run_time,
            users: load.users,
            spawn_rate: None,
        }]
    } else {
        load.stages.clone()
    };
    let mut users = JoinSet::new();
    let mut spawned = 0u32;
    loop {
        let t = start.elapsed();
        if t >= load.run_time || shared.stop.is_cancelled() {
            break;
        }
        let want = users_at(&stages, load.spawn_rate, t);
        shared.counters.users.store(want, Ordering::Relaxed);
        while spawned < want {
            if worker.owns(u64::from(spawned)) {
                let user = user(shared.clone(), spawned, worker.index, load.think_time, seed);
                users.spawn(user);
            }
            spawned += 1;
        }
        let until_end = load.run_time.saturating_sub(start.elapsed());
        if !pause(TICK.min(until_end), &shared.stop).await {
            break;
        }
    }
    shared.stop.cancel();
    users.shutdown().await;
    shared.counters.users.store(0, Ordering::Relaxed);
}

/// One user: while its index is below the wanted count, pick → send → think, recording into `shard`.
async fn user(shared: Arc<Shared>, index: u32, shard: usize, think: ThinkTime, seed: u64) {
    let mut rng = rng_for(seed, u64::from(index) + 1);
    let mut conn = Connection::new(shared.keep_alive);
    while !shared.stop.is_cancelled() {
        if index >= shared.counters.users.load(Ordering::Relaxed) {
            if !pause(TICK, &shared.stop).await {
                break;
            }
            continue;
        }
        let pick = shared.mix.pick(&mut rng);
        shared.counters.sent.fetch_add(1, Ordering::Relaxed);
        shared.send(&mut conn, shard, pick, Instant::now()).await;
        let pause_for = think_time(think, &mut rng);
        if !pause_for.is_zero() && !pause(pause_for, &shared.stop).await {
            break;
        }
    }
}

/// One draw of the think time.
pub(super) fn think_time<R: Rng>(think: ThinkTime, rng: &mut R) -> Duration {
    match think {
        ThinkTime::None => Duration::ZERO,
        ThinkTime::Constant(d) => d,
        ThinkTime::Uniform { min, max } if max > min => rng.random_range(min..=max),
        ThinkTime::Uniform { min, .. } => min,
    }
}
