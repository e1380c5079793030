//! `msvc up`'s machinery: the run plan, its set-up (build, broker, launches), the
//! supervisor (decisions in `machine`, effects in `run`), probes, restart policy, logs,
//! state in `.msvc/`, and the reaper that guarantees no orphan.

pub mod broker;
pub mod build;
pub mod control;
pub mod database;
pub mod env;
pub mod logs;
pub mod machine;
pub mod plan;
pub mod ports;
pub mod postgres;
pub mod probe;
pub mod prometheus;
pub mod reaper;
pub mod restart;
pub mod run;
pub mod setup;
pub mod state;
pub mod unit;

/// Milliseconds since the Unix epoch, for log lines and state.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
