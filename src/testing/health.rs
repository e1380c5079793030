//! The first contract case of each service: all its instances started and passed
//! their health check.

use std::time::Duration;

use crate::supervisor::run::{InstanceOutcome, Settled};

use super::report::{Case, Outcome, Suite};

/// One case per service: did all its instances start and pass their health check.
pub fn health(settled: &Settled, took: Duration) -> Vec<Case> {
    let mut cases: Vec<Case> = Vec::new();
    for i in &settled.instances {
        let service = i.service.as_str();
        if cases.iter().any(|c| c.service == service) {
            // One case per service: its first instance that is not ready decides.
            if let Some(c) = cases.iter_mut().find(|c| c.service == service)
                && c.outcome == Outcome::Passed
                && !i.ready
            {
                *c = health_case(service, i, took);
            }
            continue;
        }
        cases.push(health_case(service, i, took));
    }
    cases
}

fn health_case(service: &str, i: &InstanceOutcome, took: Duration) -> Case {
    let problem = i.problem.clone().unwrap_or_default();
    let (outcome, message) = if i.ready {
        (Outcome::Passed, None)
    } else if let Some(why) = problem.strip_prefix("not started: ") {
        (
            Outcome::Skipped,
            Some(format!("{} was not started: {why}", i.label)),
        )
    } else {
        (
            Outcome::Failed,
            Some(format!(
                "{} did not start: it {problem} before passing its health check",
                i.label
            )),
        )
    };
    Case {
        service: service.to_string(),
        suite: Suite::Contract,
        name: "starts and passes its health check".to_string(),
        outcome,
        message,
        time: took,
    }
}
