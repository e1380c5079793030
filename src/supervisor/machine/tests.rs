//! The machine's transitions, driven by hand: no process, no thread, no clock.

use std::collections::{BTreeMap, HashMap};

use super::*;
use crate::supervisor::plan::{Instance, Program};
use crate::supervisor::probe::HealthProbe;
use crate::supervisor::unit::{Launch, Unit};
use crate::workspace::Kind;

const GRACE_MS: u64 = 1_000;

fn unit(service: &str, program: Program, is_infrastructure: bool) -> Unit {
    Unit {
        instance: Instance {
            service: service.to_string(),
            replica: 1,
            label: service.to_string(),
            kind: Kind::Rest,
            port: None,
            admin_port: None,
            probe: HealthProbe::Started,
            program,
            grace_ms: GRACE_MS,
        },
        launch: Launch {
            program: service.to_string(),
            args: Vec::new(),
            env: BTreeMap::new(),
            cwd: ".".into(),
        },
        is_infrastructure,
    }
}

/// A machine and its clock, with the pid and generation of each slot's last start.
struct Sim {
    machine: Machine,
    t0: Instant,
    ms: u64,
    labels: Vec<String>,
    current: HashMap<usize, ProcessId>,
    next_pid: i32,
    pids: HashMap<usize, i32>,
}

impl Sim {
    /// `services` in start order, each with what it depends on.
    fn new(services: &[(&str, &[&str])]) -> Self {
        Self::with(services, false, None)
    }

    fn with(services: &[(&str, &[&str])], no_restart: bool, broker: Option<&str>) -> Self {
        let mut units: Vec<Unit> = broker
            .map(|b| unit(b, Program::Shell(b.to_string()), true))
            .into_iter()
            .collect();
        for (name, _) in services {
            let program = if name.starts_with("sh-") {
                Program::Shell((*name).to_string())
            } else {
                Program::Binary((*name).to_string())
            };
            units.push(unit(name, program, false));
        }
        let plan = RunPlan {
            order: services.iter().map(|(n, _)| (*n).to_string()).collect(),
            depends_on: services
                .iter()
                .map(|(n, deps)| {
                    (
                        (*n).to_string(),
                        deps.iter().map(|d| (*d).to_string()).collect(),
                    )
                })
                .collect(),
            instances: units.iter().map(|u| u.instance.clone()).collect(),
            needs_broker: broker.is_some(),
        };
        let t0 = Instant::now();
        let rules = Rules {
            no_restart,
            policy: RestartPolicy::default(),
        };
        let now = Now {
            at: t0,
            epoch_ms: 0,
        };
        Self {
            machine: Machine::new(plan, &units, rules, now).with_seed(7),
            t0,
            ms: 0,
            labels: units.iter().map(|u| u.instance.label.clone()).collect(),
            current: HashMap::new(),
            next_pid: 100,
            pids: HashMap::new(),
        }
    }

    fn slot(&self, label: &str) -> usize {
        self.labels.iter().position(|l| l == label).unwrap()
    }

    fn now(&self) -> Now {
        Now {
            at: self.t0 + Duration::from_millis(self.ms),
            epoch_ms: self.ms,
        }
    }

    fn step(&mut self, event: Event) -> Step {
        let actions = self.machine.step(event, self.now());
        for a in &actions {
            if let Action::Spawn(p) = a {
                self.current.insert(p.slot, *p);
            }
        }
        self.seen(actions)
    }

    /// The actions, with what the test needs to name their processes.
    fn seen(&self, actions: Vec<Action>) -> Step {
        Step {
            actions,
            labels: self.labels.clone(),
            pids: self
                .pids
                .iter()
                .map(|(slot, pid)| (*pid, self.labels[*slot].clone()))
                .collect(),
        }
    }

    fn finish_at(&mut self, ms: u64) -> Step {
        self.ms = ms;
        let actions = self.machine.finish(self.now());
        self.seen(actions)
    }

    fn tick_at(&mut self, ms: u64) -> Step {
        self.ms = ms;
        self.step(Event::Tick)
    }

    fn process(&self, label: &str) -> ProcessId {
        self.current[&self.slot(label)]
    }

    fn pid(&self, label: &str) -> i32 {
        self.pids[&self.slot(label)]
    }

    /// The reaper reports the start of the slot's last spawn.
    fn started(&mut self, label: &str) -> Step {
        let process = self.process(label);
        let pid = self.next_pid;
        self.next_pid += 1;
        self.pids.insert(process.slot, pid);
        self.step(Event::Spawned { process, pid })
    }

    fn health(&mut self, label: &str, ok: bool) -> Step {
        let process = self.process(label);
        self.step(Event::Health { process, ok })
    }

    /// Started and passing its probe.
    fn up(&mut self, label: &str) -> Step {
        self.started(label);
        self.health(label, true)
    }

    fn exited(&mut self, label: &str, code: Option<i32>) -> Step {
        let process = self.process(label);
        self.step(Event::Exited {
            process,
            code,
            signal: if code.is_none() { Some(15) } else { None },
        })
    }

    fn phase(&self, label: &str) -> Phase {
        self.machine.phases()[self.slot(label)]
    }
}

/// What one step asked for.
struct Step {
    actions: Vec<Action>,
    labels: Vec<String>,
    pids: HashMap<i32, String>,
}

impl Step {
    /// The labels of the slots the actions spawn.
    fn spawned(&self) -> Vec<String> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                Action::Spawn(p) => Some(self.labels[p.slot].clone()),
                _ => None,
            })
            .collect()
    }

    /// The labels of the processes the actions send `signal` to.
    fn signalled(&self, signal: Signal) -> Vec<String> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                Action::Signal { pid, signal: s } if *s == signal => self.pids.get(pid).cloned(),
                _ => None,
            })
            .collect()
    }

    fn said(&self, kind: &str) -> Option<&Say> {
        self.actions.iter().find_map(|a| match a {
            Action::Say(say) if say.kind == kind => Some(say),
            _ => None,
        })
    }

    fn replies(&self) -> Vec<(ReplyStatus, String)> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                Action::Reply {
                    status, message, ..
                } => Some((*status, message.clone())),
                _ => None,
            })
            .collect()
    }

    fn contains(&self, action: &Action) -> bool {
        self.actions.contains(action)
    }
}

const SHOP: &[(&str, &[&str])] = &[
    ("db", &[]),
    ("mail", &[]),
    ("api", &["db"]),
    ("front", &["api"]),
];

#[test]
fn start_order_respects_depends_on() {
    let mut sim = Sim::new(SHOP);
    let first = sim.step(Event::Tick);
    assert_eq!(first.spawned(), ["db", "mail"]);
    assert!(first.contains(&Action::WriteState));
    assert_eq!(sim.phase("api"), Phase::Waiting);
    assert_eq!(sim.phase("front"), Phase::Waiting);
    // Nothing is spawned twice while it starts.
    assert!(sim.tick_at(10).spawned().is_empty());
}

#[test]
fn a_service_starts_only_after_its_dependencies_probes_pass() {
    let mut sim = Sim::new(SHOP);
    sim.step(Event::Tick);
    let started = sim.started("db");
    assert!(started.contains(&Action::StartProbe(sim.process("db"))));
    assert!(started.said("started").is_some());
    assert!(started.spawned().is_empty(), "db is not healthy yet");
    assert!(sim.health("db", false).spawned().is_empty());
    let ready = sim.health("db", true);
    assert_eq!(sim.phase("db"), Phase::Running);
    assert!(ready.said("ready").is_some());
    assert_eq!(ready.spawned(), ["api"]);
    assert!(sim.up("mail").spawned().is_empty());
    assert_eq!(sim.up("api").spawned(), ["front"]);
    let all = sim.up("front");
    assert_eq!(
        all.said("all_ready").map(|s| s.message.as_str()),
        Some("all 4 service instances in 0.0s (Ctrl-C stops them)")
    );
}

#[test]
fn services_wait_for_the_broker_and_fail_without_it() {
    let mut sim = Sim::with(
        &[("worker", &[]), ("api", &["worker"])],
        false,
        Some("broker"),
    );
    assert_eq!(sim.step(Event::Tick).spawned(), ["broker"]);
    assert!(sim.started("broker").spawned().is_empty());
    assert_eq!(sim.health("broker", true).spawned(), ["worker"]);

    // A service whose dependency is over is not started, and says why.
    let mut sim = Sim::with(SHOP, true, None);
    sim.step(Event::Tick);
    sim.started("db");
    let actions = sim.exited("db", Some(3));
    assert_eq!(sim.phase("db"), Phase::Exited);
    assert_eq!(sim.phase("api"), Phase::Failed);
    assert_eq!(sim.phase("front"), Phase::Failed);
    assert_eq!(
        actions.said("failed").map(|s| s.message.as_str()),
        Some("api: it depends on `db`, which is not running")
    );
    assert_eq!(sim.machine.exit_code(), EXIT_FAILURE);
}

#[test]
fn a_crash_restarts_with_growing_backoff_and_gives_up_after_the_limit() {
    let mut sim = Sim::new(&[("api", &[])]);
    sim.step(Event::Tick);
    let mut delays = Vec::new();
    let policy = RestartPolicy::default();
    for crash in 1..policy.max_crashes {
        sim.up("api");
        let pid = sim.pid("api");
        let actions = sim.exited("api", Some(1));
        // Its probe ends, and what it left in its process group is killed.
        assert!(actions.contains(&Action::StopProbe { slot: 0 }));
        assert!(actions.contains(&Action::Signal {
            pid,
            signal: Signal::SIGKILL
        }));
        let say = actions.said("crashed").expect("a crash is reported");
        assert!(
            say.message
                .starts_with("api exited with code 1; restarting in "),
            "{}",
            say.message
        );
        assert!(say.message.contains(&format!("(crash {crash};")));
        assert_eq!(sim.phase("api"), Phase::Backoff);
        let due = sim.machine.next_deadline().expect("a restart is due");
        let delay = due.duration_since(sim.now().at);
        delays.push(delay);
        // Not before the delay is over, then at once.
        let due_ms = sim.ms + u64::try_from(delay.as_micros().div_ceil(1000)).unwrap();
        assert!(sim.tick_at(due_ms - 1).spawned().is_empty());
        assert_eq!(sim.tick_at(due_ms).spawned(), ["api"]);
    }
    assert!(
        delays.windows(2).all(|w| w[0] < w[1]),
        "delays grow: {delays:?}"
    );
    assert!(delays[0] >= Duration::from_millis(400) && delays[0] <= Duration::from_millis(600));
    assert_eq!(sim.machine.instance_states()[0].restarts, 4);

    sim.up("api");
    let actions = sim.exited("api", Some(1));
    assert_eq!(sim.phase("api"), Phase::Failed);
    let gave_up = actions.said("gave_up").expect("msvc gives up");
    assert_eq!(gave_up.last_lines_of, Some(0));
    assert!(gave_up.message.contains("its 5th crash within 60s"));
    assert!(actions.spawned().is_empty());
    // It was the only service: the run is over, and failed.
    assert!(actions.said("no_service").is_some());
    assert!(sim.machine.is_done());
    assert_eq!(sim.machine.exit_code(), EXIT_FAILURE);
}

#[test]
fn without_restarts_an_exit_is_final() {
    let mut sim = Sim::with(&[("api", &[]), ("sh-job", &[])], true, None);
    sim.step(Event::Tick);
    sim.up("api");
    sim.up("sh-job");
    let actions = sim.exited("sh-job", Some(0));
    assert_eq!(sim.phase("sh-job"), Phase::Exited);
    assert!(actions.said("exited").is_some());
    assert!(actions.spawned().is_empty());
    assert!(!sim.machine.is_done());
    assert_eq!(sim.machine.exit_code(), 0);
}

fn all_up() -> Sim {
    let mut sim = Sim::new(SHOP);
    sim.step(Event::Tick);
    for s in ["db", "mail", "api", "front"] {
        sim.up(s);
    }
    sim
}

#[test]
fn shutdown_stops_dependents_first_then_kills_after_the_grace() {
    let mut sim = all_up();
    sim.ms = 5_000;
    let actions = sim.step(Event::Interrupt);
    assert!(actions.said("stopping").is_some());
    // `front` depends on `api`, which depends on `db`; `mail` on nothing.
    assert_eq!(actions.signalled(Signal::SIGTERM), ["mail", "front"]);
    assert_eq!(sim.phase("api"), Phase::Running);
    assert_eq!(sim.phase("front"), Phase::Stopping);

    // `mail` stops in time; the grace of `front` runs out: it is killed.
    sim.exited("mail", None);
    assert!(sim.tick_at(5_999).signalled(Signal::SIGKILL).is_empty());
    assert_eq!(sim.tick_at(6_000).signalled(Signal::SIGKILL), ["front"]);

    let actions = sim.exited("front", None);
    assert_eq!(sim.phase("front"), Phase::Stopped);
    assert_eq!(actions.signalled(Signal::SIGTERM), ["api"]);
    let actions = sim.exited("api", None);
    assert_eq!(actions.signalled(Signal::SIGTERM), ["db"]);
    assert!(!sim.machine.is_done());
    sim.exited("db", Some(0));
    assert!(sim.machine.is_done());
    // A stop is no failure, and nothing restarts.
    assert_eq!(sim.machine.exit_code(), 0);
    let last = sim.finish_at(7_500);
    assert_eq!(
        last.said("stopped").map(|s| s.message.as_str()),
        Some("all services in 2.5s (up 7.5s)")
    );
}

#[test]
fn a_second_interrupt_kills_at_once() {
    let mut sim = all_up();
    let first = sim.step(Event::Interrupt);
    assert_eq!(first.signalled(Signal::SIGTERM), ["mail", "front"]);
    let second = sim.step(Event::Interrupt);
    assert!(second.said("killing").is_some());
    let mut killed = second.signalled(Signal::SIGKILL);
    killed.sort();
    assert_eq!(killed, ["api", "db", "front", "mail"]);
    // Those that were still running got their SIGTERM too, on the way.
    assert_eq!(second.signalled(Signal::SIGTERM), ["db", "api"]);
}

#[test]
fn a_program_stop_waits_for_each_stage() {
    let mut sim = all_up();
    let actions = sim.step(Event::Stop);
    assert_eq!(actions.signalled(Signal::SIGTERM), ["mail", "front"]);
    // A Ctrl-C after it kills.
    let actions = sim.step(Event::Interrupt);
    assert!(actions.said("killing").is_some());
}

#[test]
fn a_restart_from_the_control_socket_rebuilds_then_replaces_the_service() {
    let mut sim = all_up();
    let old_pid = sim.pid("api");
    let request = RequestId(1);
    let actions = sim.step(Event::RestartRequested {
        request,
        service: "api".into(),
    });
    assert_eq!(
        actions.replies(),
        [(ReplyStatus::Progress, "building api".to_string())]
    );
    assert!(actions.contains(&Action::Build {
        service: "api".into()
    }));
    assert_eq!(sim.phase("api"), Phase::Running, "it runs while it builds");

    let actions = sim.step(Event::Built {
        service: "api".into(),
        result: Ok(()),
    });
    assert_eq!(
        actions.replies(),
        [(ReplyStatus::Progress, "restarting api".to_string())]
    );
    assert_eq!(actions.signalled(Signal::SIGTERM), ["api"]);
    // Its exit is the one asked for: a start, not a crash.
    let actions = sim.exited("api", None);
    assert!(actions.said("crashed").is_none());
    assert_eq!(actions.spawned(), ["api"]);
    assert!(sim.started("api").replies().is_empty());
    let actions = sim.health("api", true);
    let pid = sim.pid("api");
    assert_ne!(pid, old_pid);
    assert_eq!(
        actions.replies(),
        [(
            ReplyStatus::Ok,
            format!("api is running again (pid {pid}) and passes its health check")
        )]
    );
    assert_eq!(sim.machine.instance_states()[sim.slot("api")].restarts, 1);
    // `front`, which depends on it, was left alone.
    assert_eq!(sim.phase("front"), Phase::Running);
}

#[test]
fn restarts_that_cannot_happen_are_refused() {
    let mut sim = all_up();
    let ask = |sim: &mut Sim, service: &str| {
        sim.step(Event::RestartRequested {
            request: RequestId(9),
            service: service.into(),
        })
    };
    assert_eq!(
        ask(&mut sim, "nope").replies(),
        [(
            ReplyStatus::Error,
            "`nope` is not running in this `msvc up`".to_string()
        )]
    );
    ask(&mut sim, "api");
    let actions = sim.step(Event::Built {
        service: "api".into(),
        result: Err("error[E0308]: mismatched types".into()),
    });
    assert_eq!(
        actions.replies(),
        [(
            ReplyStatus::Error,
            "error[E0308]: mismatched types".to_string()
        )]
    );
    assert!(actions.signalled(Signal::SIGTERM).is_empty());
    assert_eq!(sim.phase("api"), Phase::Running);
    sim.step(Event::Interrupt);
    assert_eq!(
        ask(&mut sim, "api").replies(),
        [(ReplyStatus::Error, "msvc up is stopping".to_string())]
    );
}

#[test]
fn a_process_service_restarts_without_a_build() {
    let mut sim = Sim::new(&[("sh-db", &[])]);
    sim.step(Event::Tick);
    sim.up("sh-db");
    let actions = sim.step(Event::RestartRequested {
        request: RequestId(2),
        service: "sh-db".into(),
    });
    assert!(
        !actions
            .actions
            .iter()
            .any(|a| matches!(a, Action::Build { .. }))
    );
    assert_eq!(actions.signalled(Signal::SIGTERM), ["sh-db"]);
    assert_eq!(sim.exited("sh-db", None).spawned(), ["sh-db"]);
    assert_eq!(sim.up("sh-db").replies()[0].0, ReplyStatus::Ok);
}

#[test]
fn events_of_an_earlier_start_are_ignored() {
    let mut sim = Sim::new(&[("api", &[])]);
    sim.step(Event::Tick);
    sim.up("api");
    let old = sim.process("api");
    sim.exited("api", Some(1));
    sim.tick_at(10_000);
    assert_eq!(sim.phase("api"), Phase::Starting);
    let stale = sim.step(Event::Exited {
        process: old,
        code: Some(1),
        signal: None,
    });
    assert!(stale.said("crashed").is_none());
    assert!(
        sim.step(Event::Health {
            process: old,
            ok: true
        })
        .said("ready")
        .is_none()
    );
    assert_eq!(sim.phase("api"), Phase::Starting);
}

#[test]
fn a_slow_start_is_reported_once() {
    let mut sim = Sim::new(&[("api", &[])]);
    sim.step(Event::Tick);
    sim.started("api");
    let at = u64::try_from(SLOW_START.as_millis()).unwrap();
    assert!(sim.tick_at(at - 1).said("slow").is_none());
    assert!(sim.tick_at(at).said("slow").is_some());
    assert!(sim.tick_at(at + 1).said("slow").is_none());
}

#[test]
fn settled_is_told_once_everything_runs_or_is_over() {
    let mut sim = Sim::new(&[("api", &[]), ("front", &["api"])]);
    sim.machine.want_settled();
    sim.step(Event::Tick);
    let settled = |step: Step| {
        step.actions.into_iter().find_map(|a| match a {
            Action::Settled(s) => Some(s),
            _ => None,
        })
    };
    assert!(settled(sim.up("api")).is_none());
    sim.started("front");
    let s = settled(sim.health("front", true)).expect("settled");
    assert!(s.all_ready());
    assert_eq!(s.instances[1].pid, Some(sim.pid("front")));
    assert!(settled(sim.tick_at(100)).is_none(), "told once");
}

#[test]
fn the_reaper_id_carries_slot_and_generation() {
    let p = ProcessId {
        slot: 3,
        generation: 7,
    };
    assert_eq!(p.to_reaper() >> 32, 3);
    assert_eq!(ProcessId::from_reaper(p.to_reaper()), p);
}

#[test]
fn the_last_lines_follow_a_give_up() {
    assert_eq!(
        with_last_lines("on api".into(), &[]),
        "on api\n             (it printed nothing)"
    );
    assert_eq!(
        with_last_lines("on api".into(), &["boom".into()]),
        "on api\n             its last lines:\n             | boom"
    );
}
