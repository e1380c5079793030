//! The contract suite of `msvc test`: waits for the system that `msvc up`'s machinery
//! started to settle, runs every contract case against it (health checks, routes, gRPC
//! calls, the user's cases, queue probes), keeps the last lines of each service that
//! failed one, and stops everything again.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use crate::supervisor::logs::LoggedLine;
use crate::supervisor::plan::RunPlan;
use crate::supervisor::run::Supervisor;
use crate::supervisor::state::StateDir;
use crate::workspace::Workspace;

use super::cases;
use super::report::{Case, Outcome, Report};
use super::{contract, health, queue_probe};
use crate::workspace::cases::UserCase;

/// Lines of a failing service's output shown in the report.
const LAST_LINES: usize = 15;

/// A system set up to run, not yet started.
pub struct System {
    pub supervisor: Supervisor,
    pub plan: RunPlan,
    /// The broker the services use, for the queue probes.
    pub amqp_url: Option<String>,
    /// `.msvc/up.log`, where the services' lines go.
    pub log_path: PathBuf,
}

/// What the contract suite needs besides the system.
pub struct Settings<'a> {
    pub user_cases: &'a [UserCase],
    /// How long every service gets to pass its health check (`--start-timeout`).
    pub start_timeout: Duration,
    /// When bringing the system up began, so its start counts in the health cases.
    pub started: Instant,
}

/// The case that stands for all the contract tests when the system did not start.
pub fn start_failed(message: String, time: Duration) -> Case {
    Case::contract(
        "system",
        "start the system",
        Outcome::Failed,
        Some(message),
        time,
    )
}

/// Starts `system`, runs the contract cases once it settled, and stops it; the cases and
/// the failing services' last lines go into `report`. `status` tells the user what is
/// happening (a verb and what it applies to).
pub fn run(
    ws: &Workspace,
    system: System,
    settings: &Settings<'_>,
    status: &dyn Fn(&str, &str),
    report: &mut Report,
) {
    let System {
        mut supervisor,
        plan,
        amqp_url,
        log_path,
    } = system;
    let (tx, rx) = channel();
    supervisor.notify_settled(tx);
    let stopper = supervisor.stopper();
    let running_supervisor = std::thread::spawn(move || supervisor.run());

    match rx.recv_timeout(settings.start_timeout) {
        Ok(settled) => {
            let health = health::health(&settled, settings.started.elapsed());
            let running: Vec<String> = health
                .iter()
                .filter(|c| c.outcome == Outcome::Passed)
                .map(|c| c.service.clone())
                .collect();
            for c in &health {
                if c.outcome == Outcome::Failed {
                    let recent: Vec<String> = settled
                        .instances
                        .iter()
                        .filter(|i| i.service == c.service)
                        .flat_map(|i| i.recent.clone())
                        .collect();
                    report.logs.insert(c.service.clone(), recent);
                }
            }
            report.cases.extend(health);
            status("Checking", "routes, gRPC calls, contract cases and queues");
            let mut checks = contract::rest_routes(ws, &plan, &running);
            checks.extend(contract::grpc_calls(ws, &plan, &running));
            checks.extend(cases::run(settings.user_cases, &plan, &running));
            checks.extend(queue_probe::queue_probes(
                ws,
                &plan,
                &settled,
                &running,
                amqp_url.as_deref(),
            ));
            for c in checks.iter().filter(|c| c.outcome == Outcome::Failed) {
                // A failed call is as much the peer's story: its lines are shown too.
                let peer = c
                    .name
                    .strip_prefix("calls ")
                    .and_then(|call| call.split('/').next())
                    .filter(|peer| plan.instances.iter().any(|i| i.service == *peer));
                for service in std::iter::once(c.service.as_str()).chain(peer) {
                    if !report.logs.contains_key(service) {
                        report
                            .logs
                            .insert(service.to_string(), last_lines(&log_path, service));
                    }
                }
            }
            report.cases.extend(checks);
        }
        Err(RecvTimeoutError::Timeout) => {
            report.cases.push(start_failed(
                format!(
                    "not every service passed its health check within {}s (--start-timeout)",
                    settings.start_timeout.as_secs()
                ),
                settings.started.elapsed(),
            ));
        }
        // The supervisor ended before every service settled: Ctrl-C, or its reaper died.
        Err(RecvTimeoutError::Disconnected) => {
            report.cases.push(start_failed(
                "the system stopped before the contract tests ran (interrupted)".to_string(),
                settings.started.elapsed(),
            ));
        }
    }
    stopper.stop();
    let _ = running_supervisor.join();
    // The state of this run is not one `msvc status` should show as current.
    let _ = fs_err::remove_file(StateDir::new(&ws.root).state_path());
}

/// The last lines a service (any of its replicas) printed, from `.msvc/up.log`.
fn last_lines(log: &Path, service: &str) -> Vec<String> {
    let Ok(text) = fs_err::read_to_string(log) else {
        return Vec::new();
    };
    let replica = format!("{service}.");
    let lines: Vec<String> = text
        .lines()
        .filter_map(LoggedLine::parse)
        .filter(|l| l.label == service || l.label.starts_with(&replica))
        .map(|l| l.line.to_string())
        .collect();
    lines[lines.len().saturating_sub(LAST_LINES)..].to_vec()
}
