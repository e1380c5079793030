//! One supervised unit as the machine sees it: its phase and the facts of its current
//! process.

use std::time::Instant;

use super::action::InstanceOutcome;
use crate::supervisor::plan::Instance;
use crate::supervisor::restart::CrashHistory;
use crate::supervisor::state::InstanceState;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Its dependencies are not ready yet.
    Waiting,
    /// Spawned, not yet healthy.
    Starting,
    Running,
    /// Crashed; starts again at `restart_at`.
    Backoff,
    Stopping,
    Stopped,
    /// Exited on its own with `--no-restart`.
    Exited,
    /// Gave up on it, or it could not start.
    Failed,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Waiting => "waiting",
            Phase::Starting => "starting",
            Phase::Running => "running",
            Phase::Backoff => "backoff",
            Phase::Stopping => "stopping",
            Phase::Stopped => "stopped",
            Phase::Exited => "exited",
            Phase::Failed => "failed",
        }
    }

    /// Whether a process of the slot may be running.
    pub fn has_process(self) -> bool {
        matches!(self, Phase::Starting | Phase::Running | Phase::Stopping)
    }

    pub fn is_over(self) -> bool {
        matches!(self, Phase::Stopped | Phase::Exited | Phase::Failed)
    }
}

pub(super) struct Slot {
    pub(super) instance: Instance,
    pub(super) is_infrastructure: bool,
    pub(super) phase: Phase,
    pub(super) since_ms: u64,
    pub(super) started: Instant,
    pub(super) generation: u32,
    pub(super) pid: Option<i32>,
    pub(super) healthy: Option<bool>,
    pub(super) restarts: u32,
    pub(super) history: CrashHistory,
    pub(super) restart_at: Option<Instant>,
    pub(super) kill_at: Option<Instant>,
    pub(super) start_after_stop: bool,
    pub(super) warned_slow: bool,
    pub(super) last_exit: Option<String>,
}

impl Slot {
    /// What `msvc status` shows of it.
    pub(super) fn status(&self) -> InstanceState {
        InstanceState {
            service: self.instance.service.clone(),
            instance: self.instance.label.clone(),
            replica: self.instance.replica,
            kind: if self.is_infrastructure {
                self.instance.service.clone()
            } else {
                self.instance.kind.to_string()
            },
            state: self.phase.as_str().to_string(),
            pid: self.pid.filter(|_| self.phase.has_process()),
            port: self.instance.port,
            admin_port: self.instance.admin_port,
            restarts: self.restarts,
            health: match (self.phase.has_process(), self.healthy) {
                (true, Some(true)) => "healthy",
                (true, Some(false)) => "unhealthy",
                _ => "unknown",
            }
            .to_string(),
            last_exit: self.last_exit.clone(),
            since_ms: self.since_ms,
        }
    }

    /// How its start-up ended; the driver adds the recent lines.
    pub(super) fn outcome(&self) -> InstanceOutcome {
        InstanceOutcome {
            service: self.instance.service.clone(),
            label: self.instance.label.clone(),
            is_infrastructure: self.is_infrastructure,
            ready: self.phase == Phase::Running,
            pid: self.pid.filter(|_| self.phase.has_process()),
            problem: (self.phase != Phase::Running).then(|| {
                self.last_exit
                    .clone()
                    .unwrap_or_else(|| self.phase.as_str().to_string())
            }),
            recent: Vec::new(),
        }
    }
}
