//! The decisions of `msvc up`'s supervisor without their effects: given its state, an
//! event and the time, what to start, probe, signal, say or answer. No I/O, no threads,
//! no clock: the driver (`run.rs`) performs the [`Action`]s and feeds back [`Event`]s,
//! so every transition is tested here without a process.

mod action;
mod event;
mod restart_requests;
mod slot;

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

pub use action::{Action, InstanceOutcome, ReplyStatus, Say, Settled, with_last_lines};
pub use event::{Event, Now, ProcessId, RequestId};
use restart_requests::PendingRestart;
pub use slot::Phase;
use slot::Slot;

use super::plan::RunPlan;
use super::restart::{CrashHistory, Decision, RestartPolicy};
use super::state::InstanceState;
use super::unit::Unit;
use crate::error::EXIT_FAILURE;

/// After this long without passing its health check, msvc says what it waits for.
pub const SLOW_START: Duration = Duration::from_secs(30);

/// What the machine is told once: restart or not, and how.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    pub no_restart: bool,
    pub policy: RestartPolicy,
}

/// The supervisor's state: one slot per unit, the plan's order, the shutdown and the
/// restarts asked for.
pub struct Machine {
    plan: RunPlan,
    slots: Vec<Slot>,
    rules: Rules,
    rng: fastrand::Rng,
    started: Instant,
    all_ready_said: bool,
    shutting_down: bool,
    /// When the first Ctrl-C or SIGTERM came, for the closing message.
    stop_requested: Option<Instant>,
    kill_now: bool,
    any_failed: bool,
    pending: Vec<PendingRestart>,
    dirty: bool,
    settle_wanted: bool,
    done: bool,
    out: Vec<Action>,
}

impl Machine {
    /// Slots for `units` (in that order), none started; `plan` gives the start order
    /// and what depends on what.
    pub fn new(plan: RunPlan, units: &[Unit], rules: Rules, now: Now) -> Self {
        let slots = units
            .iter()
            .map(|unit| Slot {
                instance: unit.instance.clone(),
                is_infrastructure: unit.is_infrastructure,
                phase: Phase::Waiting,
                since_ms: now.epoch_ms,
                started: now.at,
                generation: 0,
                pid: None,
                healthy: None,
                restarts: 0,
                history: CrashHistory::default(),
                restart_at: None,
                kill_at: None,
                start_after_stop: false,
                warned_slow: false,
                last_exit: None,
            })
            .collect();
        Self {
            plan,
            slots,
            rules,
            rng: fastrand::Rng::new(),
            started: now.at,
            all_ready_said: false,
            shutting_down: false,
            stop_requested: None,
            kill_now: false,
            any_failed: false,
            pending: Vec::new(),
            dirty: true,
            settle_wanted: false,
            done: false,
            out: Vec::new(),
        }
    }

    /// Fixes the jitter of the restart delays, so a test knows them.
    #[must_use]
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.rng = fastrand::Rng::with_seed(seed);
        self
    }

    /// Asks for one [`Action::Settled`] once every instance is running or over.
    pub fn want_settled(&mut self) {
        self.settle_wanted = true;
    }

    /// Takes in one event, then moves on what the time and the new state allow.
    pub fn step(&mut self, event: Event, now: Now) -> Vec<Action> {
        self.handle(event, now);
        self.done = self.advance(now);
        if self.dirty {
            self.dirty = false;
            self.out.push(Action::WriteState);
        }
        std::mem::take(&mut self.out)
    }

    /// The last actions, once the driver has stopped the processes: refuse the restarts
    /// still waiting, write the state, say how the stop went.
    pub fn finish(&mut self, now: Now) -> Vec<Action> {
        for p in std::mem::take(&mut self.pending) {
            self.reply(p.request, ReplyStatus::Error, "msvc up stopped".to_string());
        }
        self.dirty = false;
        self.out.push(Action::WriteState);
        // How long the stop took, then how long the run lasted (alone, that read as the
        // former).
        let up_for = now.at.duration_since(self.started).as_secs_f64();
        let message = match self.stop_requested {
            Some(at) => format!(
                "all services in {:.1}s (up {up_for:.1}s)",
                now.at.duration_since(at).as_secs_f64()
            ),
            None => format!("all services (up {up_for:.1}s)"),
        };
        self.say("stopped", "Stopped", None, message);
        std::mem::take(&mut self.out)
    }

    /// Whether the run is over: stopped, or no service left to run.
    pub fn is_done(&self) -> bool {
        self.done
    }

    pub fn exit_code(&self) -> i32 {
        if self.any_failed { EXIT_FAILURE } else { 0 }
    }

    /// When something is due without an event: a restart, a kill, a slow-start notice.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.slots
            .iter()
            .filter_map(|s| match s.phase {
                Phase::Backoff => s.restart_at,
                Phase::Stopping => s.kill_at,
                Phase::Starting if !s.warned_slow => Some(s.started + SLOW_START),
                _ => None,
            })
            .min()
    }

    /// The phase of each slot, in the order of the units.
    pub fn phases(&self) -> Vec<Phase> {
        self.slots.iter().map(|s| s.phase).collect()
    }

    /// What `msvc status` shows of each slot.
    pub fn instance_states(&self) -> Vec<InstanceState> {
        self.slots.iter().map(Slot::status).collect()
    }

    fn say(
        &mut self,
        kind: &'static str,
        verb: &'static str,
        instance: Option<&str>,
        message: String,
    ) {
        self.out.push(Action::Say(Say {
            kind,
            verb,
            instance: instance.map(str::to_string),
            message,
            last_lines_of: None,
        }));
    }

    fn reply(&mut self, request: RequestId, status: ReplyStatus, message: String) {
        self.out.push(Action::Reply {
            request,
            status,
            message,
        });
    }

    fn signal(&mut self, pid: i32, signal: Signal) {
        self.out.push(Action::Signal { pid, signal });
    }

    // -----------------------------------------------------------------------------
    // Progress: what to start, restart, stop; whether the run is over.

    fn advance(&mut self, now: Now) -> bool {
        if self.shutting_down {
            return self.advance_shutdown(now);
        }
        for i in 0..self.slots.len() {
            let s = &self.slots[i];
            if s.phase == Phase::Backoff && s.restart_at.is_some_and(|t| t <= now.at) {
                self.slots[i].restarts += 1;
                self.spawn(i, now);
            }
            let s = &self.slots[i];
            if s.phase == Phase::Starting && !s.warned_slow && now.at >= s.started + SLOW_START {
                self.slots[i].warned_slow = true;
                let s = &self.slots[i];
                let label = s.instance.label.clone();
                let message = format!(
                    "for {label} to pass its health check ({}) for {}s",
                    s.instance.probe.describe(),
                    SLOW_START.as_secs()
                );
                self.say("slow", "Waiting", Some(&label), message);
            }
        }
        // The private servers first (broker, database), then each service once what it
        // depends on is ready.
        let infrastructure: Vec<usize> = (0..self.slots.len())
            .filter(|i| self.slots[*i].is_infrastructure)
            .collect();
        for &i in &infrastructure {
            if self.slots[i].phase == Phase::Waiting {
                self.spawn(i, now);
            }
        }
        let infrastructure_down = infrastructure
            .iter()
            .find(|i| self.slots[**i].phase.is_over())
            .map(|i| self.slots[*i].instance.service.clone());
        let infrastructure_ready = infrastructure
            .iter()
            .all(|i| self.slots[*i].phase == Phase::Running);
        for service in self.plan.order.clone() {
            let indices = self.indices_of(&service);
            if !indices
                .iter()
                .all(|i| self.slots[*i].phase == Phase::Waiting)
            {
                continue;
            }
            let deps = self.plan.depends_on[&service].clone();
            let dead = deps
                .iter()
                .find(|d| self.service_dead(d))
                .cloned()
                .or_else(|| infrastructure_down.clone());
            if let Some(dead) = dead {
                for i in indices {
                    self.set_phase(i, Phase::Failed, now);
                    self.slots[i].last_exit = Some(format!("not started: `{dead}` is not running"));
                }
                self.any_failed = true;
                self.say(
                    "failed",
                    "Not started",
                    Some(&service),
                    format!("{service}: it depends on `{dead}`, which is not running"),
                );
                continue;
            }
            let ready = deps.iter().all(|d| self.service_ready(d)) && infrastructure_ready;
            if ready {
                for i in indices {
                    self.spawn(i, now);
                }
            }
        }
        if !self.all_ready_said && self.slots.iter().all(|s| s.phase == Phase::Running) {
            self.all_ready_said = true;
            let n = self.slots.iter().filter(|s| !s.is_infrastructure).count();
            let message = format!(
                "all {n} service instance{} in {:.1}s (Ctrl-C stops them)",
                if n == 1 { "" } else { "s" },
                now.at.duration_since(self.started).as_secs_f64()
            );
            self.say("all_ready", "Ready", None, message);
        }
        self.answer_restarts();
        self.tell_settled();
        let active = self.slots.iter().any(|s| !s.phase.is_over());
        if !active {
            self.say(
                "no_service",
                "Exiting",
                None,
                "no service is running any more".to_string(),
            );
        }
        !active
    }

    fn tell_settled(&mut self) {
        if !self.settle_wanted
            || self
                .slots
                .iter()
                .any(|s| matches!(s.phase, Phase::Waiting | Phase::Starting | Phase::Backoff))
        {
            return;
        }
        self.settle_wanted = false;
        let instances = self.slots.iter().map(Slot::outcome).collect();
        self.out.push(Action::Settled(Settled { instances }));
    }

    fn advance_shutdown(&mut self, now: Now) -> bool {
        for i in 0..self.slots.len() {
            if matches!(self.slots[i].phase, Phase::Waiting | Phase::Backoff) {
                self.set_phase(i, Phase::Stopped, now);
            }
        }
        for i in 0..self.slots.len() {
            let phase = self.slots[i].phase;
            if matches!(phase, Phase::Starting | Phase::Running) && self.may_stop(i) {
                self.begin_stop(i, now);
            }
            let slot = &mut self.slots[i];
            if slot.phase == Phase::Stopping
                && (self.kill_now || slot.kill_at.is_some_and(|t| t <= now.at))
            {
                slot.kill_at = None;
                if let Some(pid) = slot.pid {
                    self.signal(pid, Signal::SIGKILL);
                }
            }
        }
        !self.slots.iter().any(|s| s.phase.has_process())
    }

    /// In shutdown: a slot stops once nothing that depends on it is still running.
    fn may_stop(&self, index: usize) -> bool {
        if self.kill_now {
            return true;
        }
        let me = &self.slots[index];
        let dependents: Vec<&str> = if me.is_infrastructure {
            self.plan.order.iter().map(String::as_str).collect()
        } else {
            self.plan.dependents(&me.instance.service)
        };
        !self.slots.iter().any(|s| {
            !s.is_infrastructure
                && s.phase.has_process()
                && dependents.contains(&s.instance.service.as_str())
        })
    }

    fn indices_of(&self, service: &str) -> Vec<usize> {
        (0..self.slots.len())
            .filter(|i| {
                !self.slots[*i].is_infrastructure && self.slots[*i].instance.service == service
            })
            .collect()
    }

    fn service_ready(&self, service: &str) -> bool {
        self.indices_of(service)
            .iter()
            .all(|i| self.slots[*i].phase == Phase::Running)
    }

    fn service_dead(&self, service: &str) -> bool {
        self.indices_of(service)
            .iter()
            .any(|i| self.slots[*i].phase.is_over())
    }

    fn set_phase(&mut self, index: usize, phase: Phase, now: Now) {
        let slot = &mut self.slots[index];
        if slot.phase != phase {
            slot.phase = phase;
            slot.since_ms = now.epoch_ms;
            self.dirty = true;
        }
    }

    // -----------------------------------------------------------------------------
    // Processes.

    fn spawn(&mut self, index: usize, now: Now) {
        let slot = &mut self.slots[index];
        slot.generation += 1;
        slot.restart_at = None;
        slot.kill_at = None;
        slot.healthy = None;
        slot.pid = None;
        slot.warned_slow = false;
        slot.started = now.at;
        let process = ProcessId {
            slot: index,
            generation: slot.generation,
        };
        self.set_phase(index, Phase::Starting, now);
        self.out.push(Action::Spawn(process));
    }

    fn fail(&mut self, index: usize, message: &str, now: Now) {
        self.set_phase(index, Phase::Failed, now);
        self.slots[index].last_exit = Some(message.to_string());
        self.any_failed = true;
        let label = self.slots[index].instance.label.clone();
        self.say("failed", "Failed", Some(&label), message.to_string());
    }

    fn begin_stop(&mut self, index: usize, now: Now) {
        self.set_phase(index, Phase::Stopping, now);
        let slot = &mut self.slots[index];
        slot.kill_at = Some(now.at + Duration::from_millis(slot.instance.grace_ms));
        if let Some(pid) = slot.pid {
            self.signal(pid, Signal::SIGTERM);
        }
    }

    /// The slot of `process` if it is the slot's current start.
    fn current(&self, process: ProcessId) -> Option<usize> {
        (self.slots.get(process.slot)?.generation == process.generation).then_some(process.slot)
    }

    fn handle(&mut self, event: Event, now: Now) {
        match event {
            Event::Tick => {}
            Event::Spawned { process, pid } => self.spawned(process, pid),
            Event::SpawnFailed { process, error } => {
                if let Some(i) = self.current(process) {
                    self.fail(i, &error, now);
                }
            }
            Event::Exited {
                process,
                code,
                signal,
            } => {
                if let Some(i) = self.current(process) {
                    self.exited(i, code, signal, now);
                }
            }
            Event::ReaperGone => self.reaper_gone(now),
            Event::Health { process, ok } => self.health(process, ok, now),
            Event::Stop => {
                if !self.shutting_down {
                    self.shutting_down = true;
                    self.say(
                        "stopping",
                        "Stopping",
                        None,
                        "services in reverse dependency order".to_string(),
                    );
                }
            }
            Event::Interrupt => {
                if self.shutting_down {
                    self.kill_now = true;
                    self.say(
                        "killing",
                        "Killing",
                        None,
                        "every service now (second signal)".to_string(),
                    );
                } else {
                    self.shutting_down = true;
                    self.stop_requested = Some(now.at);
                    self.say(
                        "stopping",
                        "Stopping",
                        None,
                        "services in reverse dependency order (Ctrl-C again kills them at once)"
                            .to_string(),
                    );
                }
            }
            Event::RestartRequested { request, service } => {
                self.restart_requested(request, service, now);
            }
            Event::Built { service, result } => self.built(&service, result, now),
        }
    }

    fn spawned(&mut self, process: ProcessId, pid: i32) {
        let Some(i) = self.current(process) else {
            return;
        };
        self.slots[i].pid = Some(pid);
        self.dirty = true;
        let inst = &self.slots[i].instance;
        let ports = [("port", inst.port), ("admin port", inst.admin_port)]
            .iter()
            .filter_map(|(k, p)| p.map(|p| format!(", {k} {p}")))
            .collect::<String>();
        let label = inst.label.clone();
        self.say(
            "started",
            "Started",
            Some(&label),
            format!("{label} (pid {pid}{ports})"),
        );
        if self.slots[i].phase == Phase::Stopping {
            self.signal(pid, Signal::SIGTERM);
        } else {
            self.out.push(Action::StartProbe(process));
        }
    }

    fn reaper_gone(&mut self, now: Now) {
        if !self.slots.iter().any(|s| s.phase.has_process()) && self.shutting_down {
            return;
        }
        self.say(
            "failed",
            "Failed",
            None,
            "msvc's reaper process is gone; stopping every service".to_string(),
        );
        let pids: Vec<i32> = self
            .slots
            .iter()
            .filter_map(|s| s.pid.filter(|_| s.phase.has_process()))
            .collect();
        for pid in pids {
            self.signal(pid, Signal::SIGKILL);
        }
        for i in 0..self.slots.len() {
            if !self.slots[i].phase.is_over() {
                self.set_phase(i, Phase::Failed, now);
            }
        }
        self.any_failed = true;
    }

    fn exited(&mut self, index: usize, code: Option<i32>, signal: Option<i32>, now: Now) {
        self.out.push(Action::StopProbe { slot: index });
        // What the service left in its process group goes with it.
        if let Some(pid) = self.slots[index].pid.take() {
            self.signal(pid, Signal::SIGKILL);
        }
        self.slots[index].healthy = None;
        self.dirty = true;
        let how = match (code, signal) {
            (Some(c), _) => format!("exited with code {c}"),
            (None, Some(s)) => format!(
                "was killed by {}",
                Signal::try_from(s)
                    .map_or_else(|_| format!("signal {s}"), |s| s.as_str().to_string())
            ),
            (None, None) => "exited".to_string(),
        };
        let label = self.slots[index].instance.label.clone();
        if self.slots[index].phase == Phase::Stopping || self.shutting_down {
            let restart = self.slots[index].start_after_stop && !self.shutting_down;
            self.slots[index].start_after_stop = false;
            self.set_phase(index, Phase::Stopped, now);
            self.say(
                "stopped",
                "Stopped",
                Some(&label),
                format!("{label} ({how})"),
            );
            if restart {
                self.slots[index].restarts += 1;
                self.spawn(index, now);
            }
            return;
        }
        self.slots[index].last_exit = Some(how.clone());
        if self.rules.no_restart {
            self.set_phase(index, Phase::Exited, now);
            if code != Some(0) {
                self.any_failed = true;
            }
            self.say(
                "exited",
                "Exited",
                Some(&label),
                format!("{label} {how} (--no-restart)"),
            );
            return;
        }
        let policy = self.rules.policy;
        let random = self.rng.f64();
        match policy.after_crash(&mut self.slots[index].history, now.at, random) {
            Decision::Restart { delay, crashes } => {
                self.slots[index].restart_at = Some(now.at + delay);
                self.set_phase(index, Phase::Backoff, now);
                self.say(
                    "crashed",
                    "Crashed",
                    Some(&label),
                    format!(
                        "{label} {how}; restarting in {:.1}s (crash {crashes}; msvc gives up at {} within {}s)",
                        delay.as_secs_f64(),
                        policy.max_crashes,
                        policy.window.as_secs()
                    ),
                );
            }
            Decision::GiveUp { crashes } => {
                self.set_phase(index, Phase::Failed, now);
                self.any_failed = true;
                self.out.push(Action::Say(Say {
                    kind: "gave_up",
                    verb: "Giving up",
                    instance: Some(label.clone()),
                    message: format!(
                        "on {label}: it {how}, its {crashes}th crash within {}s; the others keep running",
                        policy.window.as_secs()
                    ),
                    last_lines_of: Some(index),
                }));
            }
        }
    }

    fn health(&mut self, process: ProcessId, ok: bool, now: Now) {
        let Some(slot) = self.slots.get_mut(process.slot) else {
            return;
        };
        if slot.generation != process.generation || !slot.phase.has_process() {
            return;
        }
        let was = slot.healthy.replace(ok);
        self.dirty = true;
        let label = slot.instance.label.clone();
        let probe = slot.instance.probe.describe();
        match (slot.phase, ok) {
            (Phase::Starting, true) => {
                let took = now.at.duration_since(slot.started).as_secs_f64();
                self.set_phase(process.slot, Phase::Running, now);
                self.say(
                    "ready",
                    "Ready",
                    Some(&label),
                    format!("{label} in {took:.1}s ({probe})"),
                );
            }
            (Phase::Running, false) if was == Some(true) => {
                self.say(
                    "unhealthy",
                    "Unhealthy",
                    Some(&label),
                    format!("{label} fails its health check ({probe})"),
                );
            }
            (Phase::Running, true) if was == Some(false) => {
                self.say(
                    "healthy",
                    "Healthy",
                    Some(&label),
                    format!("{label} passes its health check again"),
                );
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests;
