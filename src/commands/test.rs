//! `msvc test`: the services' own tests, then contract tests against the system brought
//! up by `msvc up`'s machinery, in one report.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::cli::{Format, TestArgs};
use crate::error::{EXIT_FAILURE, Error, Result};
use crate::printer::Printer;
use crate::supervisor::plan::RunPlan;
use crate::supervisor::setup::{BringUp, prepare};
use crate::supervisor::state::StateDir;
use crate::testing::own;
use crate::testing::report::{Case, Outcome, Report};
use crate::testing::suite;
use crate::workspace::Workspace;
use crate::workspace::cases::{self, UserCase};
use crate::workspace::model::Kind;

pub fn run(cwd: &Path, args: &TestArgs, printer: &Printer) -> Result<i32> {
    let root = Workspace::find(cwd)?;
    let ws = Workspace::load(&root)?;
    // Bad input stops everything before anything runs (exit 2).
    let plan = RunPlan::new(&ws, &args.services)?;
    // The contract tests start the system on the manifest's ports: say so before the
    // own tests run for minutes, not after.
    let state = StateDir::new(&root);
    if !args.no_contracts && state.is_running() {
        let pid = state.read().ok().map(|s| s.pid);
        return Err(Error::new(format!(
            "`msvc up` is running in this workspace{}, and the contract tests start the system themselves",
            pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
        ))
        .hint("stop it with Ctrl-C in its terminal first, or run only the services' own tests with `msvc test --no-contracts`"));
    }
    if let Some(code) = super::check::stop_before_build(&root, "test", *printer)? {
        return Ok(code);
    }
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
            printer.write(&report.junit());
        }
        Format::Json => printer.json(&report),
        _ => {
            if !printer.quiet {
                printer.write(&format!("\n{}", report.text()));
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
    let started = Instant::now();
    let settings = BringUp {
        services: &args.services,
        release: args.release,
        // A service that exits during the tests is a failure to report, not to hide.
        no_restart: true,
        echo_logs: false,
        prometheus: false,
        // Contract tests start from the migrations, and leave the services' data be.
        fresh_databases: true,
    };
    let prepared = match prepare(ws, &settings, &printer) {
        Ok(p) => p,
        Err(e) => {
            report
                .cases
                .push(suite::start_failed(e.render(), started.elapsed()));
            return;
        }
    };
    // Held until everything stopped: no other `msvc up` runs meanwhile; the run's
    // databases are dropped after that.
    let lock = prepared.lock;
    let databases = prepared.fresh_databases;
    let system = suite::System {
        supervisor: prepared.supervisor,
        plan: prepared.plan,
        amqp_url: prepared.amqp_url,
        log_path: prepared.log_path,
    };
    let settings = suite::Settings {
        user_cases,
        start_timeout: Duration::from_secs(args.start_timeout),
        started,
    };
    suite::run(
        ws,
        system,
        &settings,
        &|verb, what| printer.status(verb, what),
        report,
    );
    drop(lock);
    drop(databases);
}
