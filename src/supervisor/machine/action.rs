//! What the supervisor's machine asks of its driver, and what it reports once the
//! start-up has settled.

use nix::sys::signal::Signal;

use super::event::{ProcessId, RequestId};

/// How a control request stands; `Ok` and `Error` are the last answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyStatus {
    Progress,
    Ok,
    Error,
}

impl ReplyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReplyStatus::Progress => "progress",
            ReplyStatus::Ok => "ok",
            ReplyStatus::Error => "error",
        }
    }

    pub fn is_final(self) -> bool {
        self != ReplyStatus::Progress
    }
}

/// A line of msvc's own in the merged log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Say {
    pub kind: &'static str,
    pub verb: &'static str,
    pub instance: Option<String>,
    pub message: String,
    /// Followed by the last lines this slot printed, which only the log sink has.
    pub last_lines_of: Option<usize>,
}

/// What the driver does, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Start the slot's launch; the reaper reports on it under this id.
    Spawn(ProcessId),
    /// Send `signal` to the process group of `pid`.
    Signal {
        pid: i32,
        signal: Signal,
    },
    /// Watch the process's health; answers come back as [`Event::Health`].
    StartProbe(ProcessId),
    /// Stop watching the slot's health (nothing to do when no probe runs).
    StopProbe {
        slot: usize,
    },
    Say(Say),
    /// Answer a control request; a final answer ends the conversation.
    Reply {
        request: RequestId,
        status: ReplyStatus,
        message: String,
    },
    /// Rebuild the service's package; the result comes back as [`Event::Built`].
    Build {
        service: String,
    },
    /// Write `.msvc/up.json` from [`Machine::instance_states`].
    WriteState,
    /// Every instance is running or over: tell who waits (once). The driver fills in
    /// the recent lines.
    Settled(Settled),
}

/// One instance once the start-up has settled, for callers that wait on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceOutcome {
    pub service: String,
    pub label: String,
    pub is_infrastructure: bool,
    /// Started and passes its health check.
    pub ready: bool,
    pub pid: Option<i32>,
    /// Why it is not running: how it exited, or why it was not started.
    pub problem: Option<String>,
    /// Its last output lines, oldest first.
    pub recent: Vec<String>,
}

/// Sent once, when no instance is starting or waiting any more: each is running or over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    pub instances: Vec<InstanceOutcome>,
}

impl Settled {
    pub fn all_ready(&self) -> bool {
        self.instances.iter().all(|i| i.ready)
    }
}

/// A give-up message followed by the last lines the instance printed.
pub fn with_last_lines(mut message: String, recent: &[String]) -> String {
    if recent.is_empty() {
        message.push_str("\n             (it printed nothing)");
    } else {
        message.push_str("\n             its last lines:");
        for line in recent {
            message.push_str("\n             | ");
            message.push_str(line);
        }
    }
    message
}
