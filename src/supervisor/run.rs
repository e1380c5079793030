//! The supervisor loop of `msvc up`: starts instances in dependency order behind their
//! health checks, restarts crashed ones with backoff, answers `msvc restart`, keeps
//! `.msvc/up.json` current, and stops everything in reverse order on Ctrl-C or SIGTERM.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use super::build::{BuildRequest, build};
use super::logs::LogSink;
use super::now_ms;
use super::plan::{Instance, RunPlan};
use super::probe::HealthProbe;
use super::reaper::{ReaperEvent, ReaperHandle, Request, SpawnRequest};
use super::restart::{CrashHistory, Decision, RestartPolicy};
use super::state::{ControlReply, ControlRequest, InstanceState, StateDir, UpState};
use crate::error::{EXIT_FAILURE, Result};

/// After this long without passing its health check, msvc says what it waits for.
const SLOW_START: Duration = Duration::from_secs(30);

/// How a slot is started: resolved once, before anything starts.
#[derive(Debug, Clone)]
pub struct Launch {
    pub program: String,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub cwd: PathBuf,
}

/// One thing to supervise: a service instance, or the private broker node.
#[derive(Debug, Clone)]
pub struct Unit {
    pub instance: Instance,
    pub launch: Launch,
    pub is_broker: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub no_restart: bool,
    pub release: bool,
    pub policy: RestartPolicy,
}

enum Event {
    Reaper(ReaperEvent),
    ReaperGone,
    Health {
        index: usize,
        generation: u32,
        ok: bool,
    },
    Signal,
    /// A stop asked for by the program (`msvc test` once its checks are done).
    Stop,
    Control(ControlRequest, UnixStream),
    Built {
        service: String,
        result: std::result::Result<(), String>,
    },
}

/// One instance once the start-up has settled, for callers that wait on it.
#[derive(Debug, Clone)]
pub struct InstanceOutcome {
    pub service: String,
    pub label: String,
    pub is_broker: bool,
    /// Started and passes its health check.
    pub ready: bool,
    pub pid: Option<i32>,
    /// Why it is not running: how it exited, or why it was not started.
    pub problem: Option<String>,
    /// Its last output lines, oldest first.
    pub recent: Vec<String>,
}

/// Sent once, when no instance is starting or waiting any more: each is running or over.
#[derive(Debug, Clone)]
pub struct Settled {
    pub instances: Vec<InstanceOutcome>,
}

impl Settled {
    pub fn all_ready(&self) -> bool {
        self.instances.iter().all(|i| i.ready)
    }
}

/// Asks a running [`Supervisor`] to stop everything, as Ctrl-C would.
#[derive(Clone)]
pub struct Stopper(Sender<Event>);

impl Stopper {
    pub fn stop(&self) {
        let _ = self.0.send(Event::Stop);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
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
    fn as_str(self) -> &'static str {
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
    fn has_process(self) -> bool {
        matches!(self, Phase::Starting | Phase::Running | Phase::Stopping)
    }

    fn is_over(self) -> bool {
        matches!(self, Phase::Stopped | Phase::Exited | Phase::Failed)
    }
}

struct Slot {
    unit: Unit,
    phase: Phase,
    since_ms: u64,
    started: Instant,
    generation: u32,
    pid: Option<i32>,
    healthy: Option<bool>,
    restarts: u32,
    history: CrashHistory,
    probe_stop: Option<Arc<AtomicBool>>,
    restart_at: Option<Instant>,
    kill_at: Option<Instant>,
    start_after_stop: bool,
    warned_slow: bool,
    last_exit: Option<String>,
}

struct PendingRestart {
    service: String,
    stream: UnixStream,
    /// Generations of the service's slots when the restart began; `None` while building.
    generations: Option<Vec<(usize, u32)>>,
}

pub struct Supervisor {
    plan: RunPlan,
    slots: Vec<Slot>,
    opts: Options,
    root: PathBuf,
    sink: Arc<Mutex<LogSink>>,
    reaper: ReaperHandle,
    tx: Sender<Event>,
    rx: Receiver<Event>,
    state: StateDir,
    broker_url: Option<String>,
    started: Instant,
    started_ms: u64,
    all_ready_said: bool,
    shutting_down: bool,
    /// When the first Ctrl-C or SIGTERM came, for the closing message.
    stop_requested: Option<Instant>,
    kill_now: bool,
    any_failed: bool,
    pending: Vec<PendingRestart>,
    dirty: bool,
    settled: Option<Sender<Settled>>,
}

impl Supervisor {
    /// Starts the reaper, the signal handler and the control socket; nothing runs yet.
    pub fn new(
        root: PathBuf,
        plan: RunPlan,
        units: Vec<Unit>,
        sink: Arc<Mutex<LogSink>>,
        state: StateDir,
        broker_url: Option<String>,
        opts: Options,
    ) -> Result<Self> {
        let (tx, rx) = channel();
        let to_loop = tx.clone();
        let reaper = ReaperHandle::start(Arc::clone(&sink), move |event| {
            let _ = to_loop.send(event.map_or(Event::ReaperGone, Event::Reaper));
        })?;

        let mut signals = signal_hook::iterator::Signals::new([
            signal_hook::consts::SIGINT,
            signal_hook::consts::SIGTERM,
            signal_hook::consts::SIGHUP,
        ])?;
        let to_loop = tx.clone();
        std::thread::spawn(move || {
            for _ in signals.forever() {
                if to_loop.send(Event::Signal).is_err() {
                    break;
                }
            }
        });

        let socket = state.socket_path();
        let _ = fs_err::remove_file(&socket);
        match UnixListener::bind(&socket) {
            Ok(listener) => {
                let to_loop = tx.clone();
                std::thread::spawn(move || serve_control(&listener, &to_loop));
            }
            Err(e) => sink.lock().expect("sink lock").event(
                "warning",
                "Warning",
                None,
                &format!(
                    "no control socket at {} ({e}): `msvc restart` will not reach this run",
                    socket.display()
                ),
            ),
        }

        let now = Instant::now();
        let slots = units
            .into_iter()
            .map(|unit| Slot {
                unit,
                phase: Phase::Waiting,
                since_ms: now_ms(),
                started: now,
                generation: 0,
                pid: None,
                healthy: None,
                restarts: 0,
                history: CrashHistory::default(),
                probe_stop: None,
                restart_at: None,
                kill_at: None,
                start_after_stop: false,
                warned_slow: false,
                last_exit: None,
            })
            .collect();
        Ok(Self {
            plan,
            slots,
            opts,
            root,
            sink,
            reaper,
            tx,
            rx,
            state,
            broker_url,
            started: now,
            started_ms: now_ms(),
            all_ready_said: false,
            shutting_down: false,
            stop_requested: None,
            kill_now: false,
            any_failed: false,
            pending: Vec::new(),
            dirty: true,
            settled: None,
        })
    }

    /// A handle that stops this supervisor from another thread.
    pub fn stopper(&self) -> Stopper {
        Stopper(self.tx.clone())
    }

    /// Sends one [`Settled`] on `tx` once every instance is running or over.
    pub fn notify_settled(&mut self, tx: Sender<Settled>) {
        self.settled = Some(tx);
    }

    /// Runs until stopped, or until no service is left running; returns the exit code.
    pub fn run(mut self) -> i32 {
        loop {
            let done = self.advance();
            if self.dirty {
                self.write_state();
            }
            if done {
                break;
            }
            let wait = self
                .next_deadline()
                .map_or(Duration::from_millis(500), |d| {
                    d.saturating_duration_since(Instant::now())
                        .clamp(Duration::from_millis(5), Duration::from_millis(500))
                });
            match self.rx.recv_timeout(wait) {
                Ok(event) => self.handle(event),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        for slot in &self.slots {
            if let Some(stop) = &slot.probe_stop {
                stop.store(true, Ordering::Relaxed);
            }
        }
        // Anything the services left behind (a `setsid` grandchild) gets a short grace.
        self.reaper.shutdown(500);
        let _ = fs_err::remove_file(self.state.socket_path());
        for p in self.pending.drain(..) {
            reply(&p.stream, "error", "msvc up stopped");
        }
        self.write_state();
        // How long the stop took, then how long the run lasted (alone, that read as the
        // former).
        let up_for = self.started.elapsed().as_secs_f64();
        let message = match self.stop_requested {
            Some(at) => format!(
                "all services in {:.1}s (up {up_for:.1}s)",
                at.elapsed().as_secs_f64()
            ),
            None => format!("all services (up {up_for:.1}s)"),
        };
        self.say("stopped", "Stopped", None, &message);
        if self.any_failed { EXIT_FAILURE } else { 0 }
    }

    fn say(&self, kind: &str, verb: &str, instance: Option<&str>, message: &str) {
        self.sink
            .lock()
            .expect("sink lock")
            .event(kind, verb, instance, message);
    }

    fn next_deadline(&self) -> Option<Instant> {
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

    // -----------------------------------------------------------------------------
    // Progress: what to start, restart, stop; whether the run is over.

    fn advance(&mut self) -> bool {
        let now = Instant::now();
        if self.shutting_down {
            return self.advance_shutdown(now);
        }
        for i in 0..self.slots.len() {
            let s = &self.slots[i];
            if s.phase == Phase::Backoff && s.restart_at.is_some_and(|t| t <= now) {
                self.slots[i].restarts += 1;
                self.spawn(i);
            }
            let s = &self.slots[i];
            if s.phase == Phase::Starting && !s.warned_slow && now >= s.started + SLOW_START {
                self.slots[i].warned_slow = true;
                let s = &self.slots[i];
                self.say(
                    "slow",
                    "Waiting",
                    Some(&s.unit.instance.label),
                    &format!(
                        "for {} to pass its health check ({}) for {}s",
                        s.unit.instance.label,
                        s.unit.instance.probe.describe(),
                        SLOW_START.as_secs()
                    ),
                );
            }
        }
        // The broker first, then each service once what it depends on is ready.
        let broker = self.slots.iter().position(|s| s.unit.is_broker);
        if let Some(b) = broker
            && self.slots[b].phase == Phase::Waiting
        {
            self.spawn(b);
        }
        let broker_state = broker.map(|b| self.slots[b].phase);
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
                .or_else(|| {
                    broker_state
                        .filter(|p| p.is_over())
                        .map(|_| "broker".to_string())
                });
            if let Some(dead) = dead {
                for i in indices {
                    self.set_phase(i, Phase::Failed);
                    self.slots[i].last_exit = Some(format!("not started: `{dead}` is not running"));
                }
                self.any_failed = true;
                self.say(
                    "failed",
                    "Not started",
                    Some(&service),
                    &format!("{service}: it depends on `{dead}`, which is not running"),
                );
                continue;
            }
            let ready = deps.iter().all(|d| self.service_ready(d))
                && broker_state.is_none_or(|p| p == Phase::Running);
            if ready {
                for i in indices {
                    self.spawn(i);
                }
            }
        }
        if !self.all_ready_said && self.slots.iter().all(|s| s.phase == Phase::Running) {
            self.all_ready_said = true;
            let n = self.slots.iter().filter(|s| !s.unit.is_broker).count();
            self.say(
                "all_ready",
                "Ready",
                None,
                &format!(
                    "all {n} service instance{} in {:.1}s (Ctrl-C stops them)",
                    if n == 1 { "" } else { "s" },
                    self.started.elapsed().as_secs_f64()
                ),
            );
        }
        self.answer_restarts();
        self.tell_settled();
        let active = self.slots.iter().any(|s| !s.phase.is_over());
        if !active {
            self.say(
                "no_service",
                "Exiting",
                None,
                "no service is running any more",
            );
        }
        !active
    }

    fn tell_settled(&mut self) {
        if self.settled.is_none()
            || self
                .slots
                .iter()
                .any(|s| matches!(s.phase, Phase::Waiting | Phase::Starting | Phase::Backoff))
        {
            return;
        }
        let Some(tx) = self.settled.take() else {
            return;
        };
        let sink = self.sink.lock().expect("sink lock");
        let instances = self
            .slots
            .iter()
            .enumerate()
            .map(|(i, s)| InstanceOutcome {
                service: s.unit.instance.service.clone(),
                label: s.unit.instance.label.clone(),
                is_broker: s.unit.is_broker,
                ready: s.phase == Phase::Running,
                pid: s.pid.filter(|_| s.phase.has_process()),
                problem: (s.phase != Phase::Running).then(|| {
                    s.last_exit
                        .clone()
                        .unwrap_or_else(|| s.phase.as_str().to_string())
                }),
                recent: sink.recent(i),
            })
            .collect();
        drop(sink);
        let _ = tx.send(Settled { instances });
    }

    fn advance_shutdown(&mut self, now: Instant) -> bool {
        for i in 0..self.slots.len() {
            if matches!(self.slots[i].phase, Phase::Waiting | Phase::Backoff) {
                self.set_phase(i, Phase::Stopped);
            }
        }
        for i in 0..self.slots.len() {
            let phase = self.slots[i].phase;
            if matches!(phase, Phase::Starting | Phase::Running) && self.may_stop(i) {
                self.begin_stop(i);
            }
            let slot = &mut self.slots[i];
            if slot.phase == Phase::Stopping
                && (self.kill_now || slot.kill_at.is_some_and(|t| t <= now))
            {
                slot.kill_at = None;
                if let Some(pid) = slot.pid {
                    let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
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
        let me = &self.slots[index].unit;
        let dependents: Vec<&str> = if me.is_broker {
            self.plan.order.iter().map(String::as_str).collect()
        } else {
            self.plan.dependents(&me.instance.service)
        };
        !self.slots.iter().any(|s| {
            !s.unit.is_broker
                && s.phase.has_process()
                && dependents.contains(&s.unit.instance.service.as_str())
        })
    }

    fn indices_of(&self, service: &str) -> Vec<usize> {
        (0..self.slots.len())
            .filter(|i| {
                !self.slots[*i].unit.is_broker && self.slots[*i].unit.instance.service == service
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

    fn set_phase(&mut self, index: usize, phase: Phase) {
        let slot = &mut self.slots[index];
        if slot.phase != phase {
            slot.phase = phase;
            slot.since_ms = now_ms();
            self.dirty = true;
        }
    }

    // -----------------------------------------------------------------------------
    // Processes.

    fn spawn(&mut self, index: usize) {
        let slot = &mut self.slots[index];
        slot.generation += 1;
        slot.restart_at = None;
        slot.kill_at = None;
        slot.healthy = None;
        slot.pid = None;
        slot.warned_slow = false;
        slot.started = Instant::now();
        let id = ((index as u64) << 32) | u64::from(slot.generation);
        let launch = &slot.unit.launch;
        let request = Request::Spawn(SpawnRequest {
            id,
            program: launch.program.clone(),
            args: launch.args.clone(),
            env: launch.env.clone(),
            cwd: launch.cwd.clone(),
            grace_ms: slot.unit.instance.grace_ms,
        });
        self.set_phase(index, Phase::Starting);
        if let Err(e) = self.reaper.request(&request) {
            let label = self.slots[index].unit.instance.label.clone();
            self.fail(index, &format!("{label} could not be started: {e}"));
        }
    }

    fn fail(&mut self, index: usize, message: &str) {
        self.set_phase(index, Phase::Failed);
        self.slots[index].last_exit = Some(message.to_string());
        self.any_failed = true;
        let label = self.slots[index].unit.instance.label.clone();
        self.say("failed", "Failed", Some(&label), message);
    }

    fn begin_stop(&mut self, index: usize) {
        self.set_phase(index, Phase::Stopping);
        let slot = &mut self.slots[index];
        slot.kill_at = Some(Instant::now() + Duration::from_millis(slot.unit.instance.grace_ms));
        if let Some(pid) = slot.pid {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGTERM);
        }
    }

    fn slot_of(&self, id: u64) -> Option<usize> {
        let index = usize::try_from(id >> 32).ok()?;
        let generation = u32::try_from(id & 0xffff_ffff).ok()?;
        (self.slots.get(index)?.generation == generation).then_some(index)
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Reaper(ReaperEvent::Spawned { id, pid }) => {
                let Some(i) = self.slot_of(id) else { return };
                self.slots[i].pid = Some(pid);
                self.dirty = true;
                let inst = &self.slots[i].unit.instance;
                let ports = [("port", inst.port), ("admin port", inst.admin_port)]
                    .iter()
                    .filter_map(|(k, p)| p.map(|p| format!(", {k} {p}")))
                    .collect::<String>();
                let label = inst.label.clone();
                self.say(
                    "started",
                    "Started",
                    Some(&label),
                    &format!("{label} (pid {pid}{ports})"),
                );
                if self.slots[i].phase == Phase::Stopping {
                    let _ = killpg(Pid::from_raw(pid), Signal::SIGTERM);
                } else {
                    let stop = self.start_probe(i);
                    self.slots[i].probe_stop = Some(stop);
                }
            }
            Event::Reaper(ReaperEvent::SpawnFailed { id, error }) => {
                if let Some(i) = self.slot_of(id) {
                    self.fail(i, &error);
                }
            }
            Event::Reaper(ReaperEvent::Exited { id, code, signal }) => {
                if let Some(i) = self.slot_of(id) {
                    self.exited(i, code, signal);
                }
            }
            Event::ReaperGone => {
                if !self.slots.iter().any(|s| s.phase.has_process()) && self.shutting_down {
                    return;
                }
                self.say(
                    "failed",
                    "Failed",
                    None,
                    "msvc's reaper process is gone; stopping every service",
                );
                for s in &self.slots {
                    if let Some(pid) = s.pid.filter(|_| s.phase.has_process()) {
                        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
                    }
                }
                for i in 0..self.slots.len() {
                    if !self.slots[i].phase.is_over() {
                        self.set_phase(i, Phase::Failed);
                    }
                }
                self.any_failed = true;
            }
            Event::Health {
                index,
                generation,
                ok,
            } => self.health(index, generation, ok),
            Event::Stop => {
                if !self.shutting_down {
                    self.shutting_down = true;
                    self.say(
                        "stopping",
                        "Stopping",
                        None,
                        "services in reverse dependency order",
                    );
                }
            }
            Event::Signal => {
                if self.shutting_down {
                    self.kill_now = true;
                    self.say(
                        "killing",
                        "Killing",
                        None,
                        "every service now (second signal)",
                    );
                } else {
                    self.shutting_down = true;
                    self.stop_requested = Some(Instant::now());
                    self.say(
                        "stopping",
                        "Stopping",
                        None,
                        "services in reverse dependency order (Ctrl-C again kills them at once)",
                    );
                }
            }
            Event::Control(request, stream) => self.control(request, stream),
            Event::Built { service, result } => self.built(&service, result),
        }
    }

    fn exited(&mut self, index: usize, code: Option<i32>, signal: Option<i32>) {
        let slot = &mut self.slots[index];
        if let Some(stop) = slot.probe_stop.take() {
            stop.store(true, Ordering::Relaxed);
        }
        // What the service left in its process group goes with it.
        if let Some(pid) = slot.pid.take() {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
        slot.healthy = None;
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
        let label = slot.unit.instance.label.clone();
        if slot.phase == Phase::Stopping || self.shutting_down {
            let restart = slot.start_after_stop && !self.shutting_down;
            slot.start_after_stop = false;
            self.set_phase(index, Phase::Stopped);
            self.say(
                "stopped",
                "Stopped",
                Some(&label),
                &format!("{label} ({how})"),
            );
            if restart {
                self.slots[index].restarts += 1;
                self.spawn(index);
            }
            return;
        }
        slot.last_exit = Some(how.clone());
        if self.opts.no_restart {
            self.set_phase(index, Phase::Exited);
            if code != Some(0) {
                self.any_failed = true;
            }
            self.say(
                "exited",
                "Exited",
                Some(&label),
                &format!("{label} {how} (--no-restart)"),
            );
            return;
        }
        let policy = self.opts.policy;
        match policy.after_crash(&mut slot.history, Instant::now()) {
            Decision::Restart { delay, crashes } => {
                slot.restart_at = Some(Instant::now() + delay);
                self.set_phase(index, Phase::Backoff);
                self.say(
                    "crashed",
                    "Crashed",
                    Some(&label),
                    &format!(
                        "{label} {how}; restarting in {:.1}s (crash {crashes}; msvc gives up at {} within {}s)",
                        delay.as_secs_f64(),
                        policy.max_crashes,
                        policy.window.as_secs()
                    ),
                );
            }
            Decision::GiveUp { crashes } => {
                self.set_phase(index, Phase::Failed);
                self.any_failed = true;
                let recent = self.sink.lock().expect("sink lock").recent(index);
                let mut message = format!(
                    "on {label}: it {how}, its {crashes}th crash within {}s; the others keep running",
                    policy.window.as_secs()
                );
                if recent.is_empty() {
                    message.push_str("\n             (it printed nothing)");
                } else {
                    message.push_str("\n             its last lines:");
                    for line in recent {
                        message.push_str("\n             | ");
                        message.push_str(&line);
                    }
                }
                self.say("gave_up", "Giving up", Some(&label), &message);
            }
        }
    }

    fn start_probe(&self, index: usize) -> Arc<AtomicBool> {
        let stop = Arc::new(AtomicBool::new(false));
        let slot = &self.slots[index];
        let first: HealthProbe = slot.unit.instance.probe.clone();
        let generation = slot.generation;
        let tx = self.tx.clone();
        let stopped = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut last = None;
            let mut probe = first.clone();
            while !stopped.load(Ordering::Relaxed) {
                let ok = probe.check();
                if ok {
                    probe = first.when_ready();
                }
                if stopped.load(Ordering::Relaxed) {
                    break;
                }
                if last != Some(ok) {
                    last = Some(ok);
                    if tx
                        .send(Event::Health {
                            index,
                            generation,
                            ok,
                        })
                        .is_err()
                    {
                        break;
                    }
                }
                let pause = if ok { 2000 } else { 200 };
                for _ in 0..pause / 100 {
                    if stopped.load(Ordering::Relaxed) {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        });
        stop
    }

    fn health(&mut self, index: usize, generation: u32, ok: bool) {
        let Some(slot) = self.slots.get_mut(index) else {
            return;
        };
        if slot.generation != generation || !slot.phase.has_process() {
            return;
        }
        let was = slot.healthy.replace(ok);
        self.dirty = true;
        let label = slot.unit.instance.label.clone();
        let probe = slot.unit.instance.probe.describe();
        match (slot.phase, ok) {
            (Phase::Starting, true) => {
                let took = slot.started.elapsed().as_secs_f64();
                self.set_phase(index, Phase::Running);
                self.say(
                    "ready",
                    "Ready",
                    Some(&label),
                    &format!("{label} in {took:.1}s ({probe})"),
                );
            }
            (Phase::Running, false) if was == Some(true) => {
                self.say(
                    "unhealthy",
                    "Unhealthy",
                    Some(&label),
                    &format!("{label} fails its health check ({probe})"),
                );
            }
            (Phase::Running, true) if was == Some(false) => {
                self.say(
                    "healthy",
                    "Healthy",
                    Some(&label),
                    &format!("{label} passes its health check again"),
                );
            }
            _ => {}
        }
    }

    // -----------------------------------------------------------------------------
    // `msvc restart` from another terminal.

    fn control(&mut self, request: ControlRequest, stream: UnixStream) {
        let ControlRequest::Restart { service } = request;
        if self.indices_of(&service).is_empty() {
            reply(
                &stream,
                "error",
                &format!("`{service}` is not running in this `msvc up`"),
            );
            return;
        }
        if self.shutting_down {
            reply(&stream, "error", "msvc up is stopping");
            return;
        }
        let building = self
            .pending
            .iter()
            .any(|p| p.service == service && p.generations.is_none());
        self.pending.push(PendingRestart {
            service: service.clone(),
            stream,
            generations: None,
        });
        if building {
            return;
        }
        let is_binary = self.indices_of(&service).iter().any(|i| {
            matches!(
                self.slots[*i].unit.instance.program,
                super::plan::Program::Binary(_)
            )
        });
        let tx = self.tx.clone();
        if !is_binary {
            let _ = tx.send(Event::Built {
                service,
                result: Ok(()),
            });
            return;
        }
        for p in self.pending.iter().filter(|p| p.service == service) {
            reply(&p.stream, "progress", &format!("building {service}"));
        }
        self.say(
            "building",
            "Building",
            Some(&service),
            &format!("{service} (msvc restart)"),
        );
        let root = self.root.clone();
        let release = self.opts.release;
        std::thread::spawn(move || {
            let packages = [service.clone()];
            let result = build(&BuildRequest {
                root: &root,
                packages: &packages,
                all: false,
                release,
                progress: false,
            })
            .map(|_| ())
            .map_err(|e| e.message);
            let _ = tx.send(Event::Built { service, result });
        });
    }

    fn built(&mut self, service: &str, result: std::result::Result<(), String>) {
        if let Err(message) = result {
            self.say(
                "failed",
                "Failed",
                Some(service),
                &format!("to rebuild {service}; it keeps running as it was"),
            );
            self.pending.retain(|p| {
                if p.service == service && p.generations.is_none() {
                    reply(&p.stream, "error", &message);
                    false
                } else {
                    true
                }
            });
            return;
        }
        if self.shutting_down {
            return;
        }
        let indices = self.indices_of(service);
        let generations: Vec<(usize, u32)> = indices
            .iter()
            .map(|i| (*i, self.slots[*i].generation))
            .collect();
        for p in &mut self.pending {
            if p.service == service && p.generations.is_none() {
                p.generations = Some(generations.clone());
                reply(&p.stream, "progress", &format!("restarting {service}"));
            }
        }
        for i in indices {
            self.slots[i].history.clear();
            match self.slots[i].phase {
                Phase::Starting | Phase::Running => {
                    self.slots[i].start_after_stop = true;
                    self.begin_stop(i);
                }
                Phase::Stopping => self.slots[i].start_after_stop = true,
                Phase::Backoff
                | Phase::Failed
                | Phase::Exited
                | Phase::Stopped
                | Phase::Waiting => {
                    self.slots[i].restarts += 1;
                    self.spawn(i);
                }
            }
        }
    }

    fn answer_restarts(&mut self) {
        let slots = &self.slots;
        self.pending.retain(|p| {
            let Some(generations) = &p.generations else {
                return true;
            };
            let renewed = generations
                .iter()
                .all(|(i, g)| slots[*i].generation > *g && slots[*i].phase == Phase::Running);
            let failed = generations.iter().any(|(i, _)| slots[*i].phase.is_over());
            if renewed {
                let pids: Vec<String> = generations
                    .iter()
                    .filter_map(|(i, _)| slots[*i].pid.map(|p| p.to_string()))
                    .collect();
                reply(
                    &p.stream,
                    "ok",
                    &format!(
                        "{} is running again (pid {}) and passes its health check",
                        p.service,
                        pids.join(", ")
                    ),
                );
                false
            } else if failed {
                reply(
                    &p.stream,
                    "error",
                    &format!(
                        "{} did not start again; see `msvc logs {}`",
                        p.service, p.service
                    ),
                );
                false
            } else {
                true
            }
        });
    }

    // -----------------------------------------------------------------------------
    // State for `msvc status`.

    fn write_state(&mut self) {
        self.dirty = false;
        let instances = self
            .slots
            .iter()
            .map(|s| InstanceState {
                service: s.unit.instance.service.clone(),
                instance: s.unit.instance.label.clone(),
                replica: s.unit.instance.replica,
                kind: if s.unit.is_broker {
                    "broker".to_string()
                } else {
                    s.unit.instance.kind.to_string()
                },
                state: s.phase.as_str().to_string(),
                pid: s.pid.filter(|_| s.phase.has_process()),
                port: s.unit.instance.port,
                admin_port: s.unit.instance.admin_port,
                restarts: s.restarts,
                health: match (s.phase.has_process(), s.healthy) {
                    (true, Some(true)) => "healthy",
                    (true, Some(false)) => "unhealthy",
                    _ => "unknown",
                }
                .to_string(),
                last_exit: s.last_exit.clone(),
                since_ms: s.since_ms,
            })
            .collect();
        let state = UpState {
            pid: std::process::id(),
            reaper_pid: self.reaper.pid,
            started_ms: self.started_ms,
            workspace: self.root.clone(),
            broker: self.broker_url.clone(),
            instances,
        };
        if let Err(e) = self.state.write(&state) {
            self.say(
                "warning",
                "Warning",
                None,
                &format!("cannot write the run state: {e}"),
            );
        }
    }
}

fn reply(stream: &UnixStream, status: &str, message: &str) {
    let reply = ControlReply {
        status: status.to_string(),
        message: message.to_string(),
    };
    let mut line = serde_json::to_vec(&reply).expect("plain data serialises");
    line.push(b'\n');
    let mut stream = stream;
    let _ = stream.write_all(&line);
}

fn serve_control(listener: &UnixListener, tx: &Sender<Event>) {
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
        let mut line = String::new();
        let Ok(reader) = stream.try_clone() else {
            continue;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        if BufReader::new(reader).read_line(&mut line).is_err() {
            continue;
        }
        match serde_json::from_str::<ControlRequest>(&line) {
            Ok(request) => {
                if tx.send(Event::Control(request, stream)).is_err() {
                    break;
                }
            }
            Err(e) => reply(&stream, "error", &format!("bad request: {e}")),
        }
    }
}
