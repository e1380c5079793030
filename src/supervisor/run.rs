//! The supervisor loop of `msvc up`: the effects of the [`Machine`]'s decisions. It
//! starts processes through the reaper, signals process groups, runs the health
//! probes, answers on the control socket, writes `.msvc/up.json` and the log, and
//! feeds what happens back to the machine as events.

use std::collections::HashMap;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::killpg;
use nix::unistd::Pid;

use super::build::{BuildRequest, build};
use super::control;
use super::logs::LogSink;
use super::machine::{Action, Event, Machine, Now, ProcessId, RequestId, Rules, Say};
pub use super::machine::{InstanceOutcome, Settled};
use super::plan::RunPlan;
use super::probe;
use super::reaper::{ReaperEvent, ReaperHandle, Request, SpawnRequest};
use super::restart::RestartPolicy;
use super::state::{ControlRequest, StateDir, UpState};
use super::unit::Unit;
use crate::error::Result;

#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub no_restart: bool,
    pub release: bool,
    pub policy: RestartPolicy,
}

/// What reaches the loop from its threads.
enum Message {
    Event(Event),
    /// A control request, with the connection its answers go to.
    Control(ControlRequest, UnixStream),
}

/// Asks a running [`Supervisor`] to stop everything, as Ctrl-C would.
#[derive(Clone)]
pub struct Stopper(Sender<Message>);

impl Stopper {
    pub fn stop(&self) {
        let _ = self.0.send(Message::Event(Event::Stop));
    }
}

pub struct Supervisor {
    machine: Machine,
    units: Vec<Unit>,
    release: bool,
    root: PathBuf,
    sink: Arc<Mutex<LogSink>>,
    reaper: ReaperHandle,
    tx: Sender<Message>,
    rx: Receiver<Message>,
    state: StateDir,
    broker_url: Option<String>,
    started_ms: u64,
    /// The running probe of each slot, by its stop flag.
    probes: HashMap<usize, Arc<AtomicBool>>,
    /// Connections of control requests not answered for the last time yet.
    requests: HashMap<u64, UnixStream>,
    next_request: u64,
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
            let _ = to_loop.send(Message::Event(event.map_or(Event::ReaperGone, from_reaper)));
        })?;

        let mut signals = signal_hook::iterator::Signals::new([
            signal_hook::consts::SIGINT,
            signal_hook::consts::SIGTERM,
            signal_hook::consts::SIGHUP,
        ])?;
        let to_loop = tx.clone();
        std::thread::spawn(move || {
            for _ in signals.forever() {
                if to_loop.send(Message::Event(Event::Interrupt)).is_err() {
                    break;
                }
            }
        });

        let socket = state.socket_path();
        let _ = fs_err::remove_file(&socket);
        match UnixListener::bind(&socket) {
            Ok(listener) => {
                let to_loop = tx.clone();
                std::thread::spawn(move || {
                    control::serve(&listener, |request, stream| {
                        to_loop.send(Message::Control(request, stream)).is_ok()
                    });
                });
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

        let now = Now::current();
        let rules = Rules {
            no_restart: opts.no_restart,
            policy: opts.policy,
        };
        Ok(Self {
            machine: Machine::new(plan, &units, rules, now),
            units,
            release: opts.release,
            root,
            sink,
            reaper,
            tx,
            rx,
            state,
            broker_url,
            started_ms: now.epoch_ms,
            probes: HashMap::new(),
            requests: HashMap::new(),
            next_request: 0,
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
        self.machine.want_settled();
    }

    /// Runs until stopped, or until no service is left running; returns the exit code.
    pub fn run(mut self) -> i32 {
        let mut event = Event::Tick;
        loop {
            let actions = self.machine.step(event, Now::current());
            self.perform(actions);
            if self.machine.is_done() {
                break;
            }
            let wait = self
                .machine
                .next_deadline()
                .map_or(Duration::from_millis(500), |d| {
                    d.saturating_duration_since(Instant::now())
                        .clamp(Duration::from_millis(5), Duration::from_millis(500))
                });
            event = match self.rx.recv_timeout(wait) {
                Ok(Message::Event(event)) => event,
                Ok(Message::Control(request, stream)) => self.control(request, stream),
                Err(RecvTimeoutError::Timeout) => Event::Tick,
                Err(RecvTimeoutError::Disconnected) => break,
            };
        }
        for (_, stop) in self.probes.drain() {
            stop.store(true, Ordering::Relaxed);
        }
        // Anything the services left behind (a `setsid` grandchild) gets a short grace.
        self.reaper.shutdown(500);
        let _ = fs_err::remove_file(self.state.socket_path());
        let actions = self.machine.finish(Now::current());
        self.perform(actions);
        self.machine.exit_code()
    }

    /// Keeps the connection of a control request; the machine knows it by its id.
    fn control(&mut self, request: ControlRequest, stream: UnixStream) -> Event {
        let ControlRequest::Restart { service } = request;
        let id = self.next_request;
        self.next_request += 1;
        self.requests.insert(id, stream);
        Event::RestartRequested {
            request: RequestId(id),
            service,
        }
    }

    /// Performs `actions` in order, and those of the events they cause at once.
    fn perform(&mut self, actions: Vec<Action>) {
        let mut feedback = Vec::new();
        for action in actions {
            if let Some(event) = self.perform_one(action) {
                feedback.push(event);
            }
        }
        for event in feedback {
            let actions = self.machine.step(event, Now::current());
            self.perform(actions);
        }
    }

    fn perform_one(&mut self, action: Action) -> Option<Event> {
        match action {
            Action::Spawn(process) => return self.spawn(process),
            Action::Signal { pid, signal } => {
                let _ = killpg(Pid::from_raw(pid), signal);
            }
            Action::StartProbe(process) => self.start_probe(process),
            Action::StopProbe { slot } => {
                if let Some(stop) = self.probes.remove(&slot) {
                    stop.store(true, Ordering::Relaxed);
                }
            }
            Action::Say(say) => self.say(say),
            Action::Reply {
                request,
                status,
                message,
            } => {
                if let Some(stream) = self.requests.get(&request.0) {
                    control::reply(stream, status.as_str(), &message);
                }
                if status.is_final() {
                    self.requests.remove(&request.0);
                }
            }
            Action::Build { service } => self.build(service),
            Action::WriteState => self.write_state(),
            Action::Settled(mut settled) => {
                let sink = self.sink.lock().expect("sink lock");
                for (i, instance) in settled.instances.iter_mut().enumerate() {
                    instance.recent = sink.recent(i);
                }
                drop(sink);
                if let Some(tx) = self.settled.take() {
                    let _ = tx.send(settled);
                }
            }
        }
        None
    }

    fn say(&self, say: Say) {
        let mut sink = self.sink.lock().expect("sink lock");
        let message = match say.last_lines_of {
            Some(slot) => super::machine::with_last_lines(say.message, &sink.recent(slot)),
            None => say.message,
        };
        sink.event(say.kind, say.verb, say.instance.as_deref(), &message);
    }

    /// Asks the reaper to start the process; a failure comes back as an event.
    fn spawn(&mut self, process: ProcessId) -> Option<Event> {
        let unit = &self.units[process.slot];
        let launch = &unit.launch;
        let request = Request::Spawn(SpawnRequest {
            id: process.to_reaper(),
            program: launch.program.clone(),
            args: launch.args.clone(),
            env: launch.env.clone(),
            cwd: launch.cwd.clone(),
            grace_ms: unit.instance.grace_ms,
        });
        let label = unit.instance.label.clone();
        self.reaper
            .request(&request)
            .err()
            .map(|e| Event::SpawnFailed {
                process,
                error: format!("{label} could not be started: {e}"),
            })
    }

    fn start_probe(&mut self, process: ProcessId) {
        let tx = self.tx.clone();
        let stop = probe::watch(self.units[process.slot].instance.probe.clone(), move |ok| {
            tx.send(Message::Event(Event::Health { process, ok }))
                .is_ok()
        });
        if let Some(old) = self.probes.insert(process.slot, stop) {
            old.store(true, Ordering::Relaxed);
        }
    }

    fn build(&self, service: String) {
        let tx = self.tx.clone();
        let root = self.root.clone();
        let release = self.release;
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
            let _ = tx.send(Message::Event(Event::Built { service, result }));
        });
    }

    fn write_state(&self) {
        let state = UpState {
            pid: std::process::id(),
            reaper_pid: self.reaper.pid,
            started_ms: self.started_ms,
            workspace: self.root.clone(),
            broker: self.broker_url.clone(),
            instances: self.machine.instance_states(),
        };
        if let Err(e) = self.state.write(&state) {
            self.sink.lock().expect("sink lock").event(
                "warning",
                "Warning",
                None,
                &format!("cannot write the run state: {e}"),
            );
        }
    }
}

fn from_reaper(event: ReaperEvent) -> Event {
    match event {
        ReaperEvent::Spawned { id, pid } => Event::Spawned {
            process: ProcessId::from_reaper(id),
            pid,
        },
        ReaperEvent::SpawnFailed { id, error } => Event::SpawnFailed {
            process: ProcessId::from_reaper(id),
            error,
        },
        ReaperEvent::Exited { id, code, signal } => Event::Exited {
            process: ProcessId::from_reaper(id),
            code,
            signal,
        },
    }
}
