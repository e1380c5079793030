//! What the supervisor's machine is told: the events, the processes and requests they
//! name, and the time of a step.

use std::time::Instant;

/// The time of a step: monotonic for deadlines, wall clock for what `msvc status` shows.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    pub at: Instant,
    /// Milliseconds since the Unix epoch.
    pub epoch_ms: u64,
}

impl Now {
    pub fn current() -> Self {
        Self {
            at: Instant::now(),
            epoch_ms: crate::supervisor::now_ms(),
        }
    }
}

/// One process of a slot: which slot, and which start of it. Events about an older
/// start of the slot are stale and ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessId {
    pub slot: usize,
    pub generation: u32,
}

impl ProcessId {
    /// The id the reaper knows the process by; its output frames name the slot by the
    /// high half, which is how the log sink finds the label.
    pub fn to_reaper(self) -> u64 {
        ((self.slot as u64) << 32) | u64::from(self.generation)
    }

    pub fn from_reaper(id: u64) -> Self {
        Self {
            slot: (id >> 32) as usize,
            generation: id as u32,
        }
    }
}

/// Who asked for a restart on the control socket; the driver keeps the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestId(pub u64);

/// What happened. New sources of change (a rebuild on file change, a provisioned
/// database) come in as new variants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Time passed: backoffs end, graces run out, slow starts are reported.
    Tick,
    Spawned {
        process: ProcessId,
        pid: i32,
    },
    SpawnFailed {
        process: ProcessId,
        error: String,
    },
    /// Exited: a code, or the signal that killed it.
    Exited {
        process: ProcessId,
        code: Option<i32>,
        signal: Option<i32>,
    },
    /// The reaper process died: nothing can be started or watched any more.
    ReaperGone,
    /// A probe's answer changed.
    Health {
        process: ProcessId,
        ok: bool,
    },
    /// Ctrl-C, SIGTERM or SIGHUP: the first stops in order, the second kills.
    Interrupt,
    /// A stop asked for by the program (`msvc test` once its checks are done).
    Stop,
    /// `msvc restart SERVICE` from another terminal.
    RestartRequested {
        request: RequestId,
        service: String,
    },
    /// The rebuild a restart asked for is over.
    Built {
        service: String,
        result: Result<(), String>,
    },
}
