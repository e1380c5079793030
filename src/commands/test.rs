//! `msvc test`: the services' own tests, then contract tests against the system brought
//! up by `msvc up`'s machinery, in one report.

use std::io::Write as _;
use std::path::Path;
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use crate::cli::{Format, TestArgs};
use crate::error::{EXIT_FAILURE, Result};
use crate::printer::Printer;
use crate::supervisor::logs::LoggedLine;
use crate::supervisor::plan::RunPlan;
use crate::supervisor::setup::{BringUp, prepare};
use crate::supervisor::state::StateDir;
use crate::testing::cases::{self, UserCase};
use crate::testing::contract;
use crate::testing::own;
use crate::testing::report::{Case, Outcome, Report, Suite};
use crate::workspace::Workspace;
use crate::workspace::model::Kind;

/// Lines of a failing service's output shown in the report.
const LAST_LINES: usize = 15;

pub fn run(cwd: &Path, args: &TestArgs, printer: &Printer) -> Result<i32> {
    let root = Workspace::find(cwd)?;
    let ws = Workspace::load(&root)?;
    // Bad input stops everything before anything runs (exit 2).
    let plan = RunPlan::new(&ws, &args.services)?;
    let user_cases: Vec<UserCase> = cases::load(&ws)?
        .into_iter()
        .filter(|c| plan.order.contains(&c.service))
        .collect();

    let mut report = Report::default();
    if !args.no_unit {
        let packages: Vec<String> = ws
            .manifest
            .services
            .iter()
            .filter(|(name, s)| {
                s.kind != Kind::Process
                    && (args.services.is_empty() || args.services.contains(name))
            })
            .map(|(name, _)| name.clone())
            .collect();
        if packages.is_empty() {
            printer.status("Skipping", "own tests: no service is a cargo package");
        } else {
            let nextest = own::uses_nextest();
            let what = if args.services.is_empty() {
                "the workspace".to_string()
            } else {
                packages.join(", ")
            };
            let runner = if nextest {
                "cargo nextest run"
            } else {
                "cargo test"
            };
            printer.status("Testing", &format!("{what} ({runner})"));
            let own = own::run(
                &root,
                &packages,
                args.services.is_empty(),
                args.release,
                nextest,
            )?;
            let (passed, failed) = count(&own.cases);
            printer.status("Tested", &format!("{passed} passed, {failed} failed"));
            report.cases.extend(own.cases);
        }
    }
    if !args.no_contracts {
        contracts(&ws, args, &user_cases, *printer, &mut report);
    }

    match printer.format {
        Format::Junit => {
            let mut out = anstream::stdout();
            let _ = out.write_all(report.junit().as_bytes());
        }
        Format::Json => printer.json(&report),
        _ => {
            if !printer.quiet {
                let mut out = anstream::stdout();
                let _ = writeln!(out);
                let _ = out.write_all(report.text().as_bytes());
            }
        }
    }
    Ok(if report.failed() { EXIT_FAILURE } else { 0 })
}

fn count(cases: &[Case]) -> (usize, usize) {
    (
        cases
            .iter()
            .filter(|c| c.outcome == Outcome::Passed)
            .count(),
        cases
            .iter()
            .filter(|c| c.outcome == Outcome::Failed)
            .count(),
    )
}

/// Brings the system up, runs the contract tests, and stops everything again.
fn contracts(
    ws: &Workspace,
    args: &TestArgs,
    user_cases: &[UserCase],
    printer: Printer,
    report: &mut Report,
) {
    let start = Instant::now();
    let settings = BringUp {
        services: &args.services,
        release: args.release,
        // A service that exits during the tests is a failure to report, not to hide.
        no_restart: true,
        echo_logs: false,
        prometheus: false,
    };
    let prepared = match prepare(ws, &settings, &printer) {
        Ok(p) => p,
        Err(e) => {
            report.cases.push(Case {
                service: "system".to_string(),
                suite: Suite::Contract,
                name: "start the system".to_string(),
                outcome: Outcome::Failed,
                message: Some(e.render()),
                time: start.elapsed(),
            });
            return;
        }
    };
    let plan = prepared.plan.clone();
    let amqp_url = prepared.amqp_url.clone();
    let log_path = prepared.log_path.clone();
    let mut supervisor = prepared.supervisor;
    let (tx, rx) = channel();
    supervisor.notify_settled(tx);
    let stopper = supervisor.stopper();
    let running_supervisor = std::thread::spawn(move || supervisor.run());

    let settled = rx.recv_timeout(Duration::from_secs(args.start_timeout));
    match settled {
        Ok(settled) => {
            let health = contract::health(&settled, start.elapsed());
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
                        .filter(|i| {
                            i.service == c.service || (i.is_broker && c.service == "broker")
                        })
                        .flat_map(|i| i.recent.clone())
                        .collect();
                    report.logs.insert(c.service.clone(), recent);
                }
            }
            report.cases.extend(health);
            printer.status("Checking", "routes, gRPC calls, contract cases and queues");
            let mut checks = contract::rest_routes(ws, &plan, &running);
            checks.extend(contract::grpc_calls(ws, &plan, &running));
            checks.extend(contract::user_cases(user_cases, &plan, &running));
            checks.extend(contract::queue_probes(
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
            report.cases.push(Case {
                service: "system".to_string(),
                suite: Suite::Contract,
                name: "start the system".to_string(),
                outcome: Outcome::Failed,
                message: Some(format!(
                    "not every service passed its health check within {}s (--start-timeout)",
                    args.start_timeout
                )),
                time: start.elapsed(),
            });
        }
        // The supervisor ended before every service settled: Ctrl-C, or its reaper died.
        Err(RecvTimeoutError::Disconnected) => {
            report.cases.push(Case {
                service: "system".to_string(),
                suite: Suite::Contract,
                name: "start the system".to_string(),
                outcome: Outcome::Failed,
                message: Some(
                    "the system stopped before the contract tests ran (interrupted)".to_string(),
                ),
                time: start.elapsed(),
            });
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
