//! `msvc restart SERVICE`: the running `msvc up` rebuilds and restarts one service.

use std::path::Path;

use crate::cli::RestartArgs;
use crate::error::{EXIT_FAILURE, Error, Result};
use crate::printer::Printer;
use crate::supervisor::state::{ControlRequest, StateDir};
use crate::workspace::Workspace;
use crate::workspace::validate::did_you_mean;

pub fn run(cwd: &Path, args: &RestartArgs, printer: &Printer) -> Result<i32> {
    let root = Workspace::find(cwd)?;
    let ws = Workspace::load(&root)?;
    if !ws.manifest.services.contains_key(&args.service) {
        return Err(
            Error::new(format!("no service `{}` in services.toml", args.service)).hint(
                did_you_mean(&args.service, ws.manifest.services.keys())
                    .unwrap_or_else(|| "see `msvc status` for what runs".to_string()),
            ),
        );
    }
    let dir = StateDir::new(&root);
    if !dir.is_running() {
        return Err(dir.not_running());
    }
    let last = dir.control(
        &ControlRequest::Restart {
            service: args.service.clone(),
        },
        |reply| {
            if reply.status == "progress" {
                // "building user-api" is shown as cargo shows it: `Building user-api`.
                let (verb, rest) = reply
                    .message
                    .split_once(' ')
                    .unwrap_or(("", &reply.message));
                let mut verb = verb.to_string();
                if let Some(first) = verb.get_mut(..1) {
                    first.make_ascii_uppercase();
                }
                printer.status(&verb, rest);
            }
        },
    )?;
    printer.json(&last);
    if last.status == "ok" {
        printer.status("Restarted", &last.message);
        Ok(0)
    } else {
        Err(Error::new(format!(
            "restart of `{}` failed: {}",
            args.service, last.message
        ))
        .hint(format!("see `msvc logs {}`", args.service))
        .exit_code(EXIT_FAILURE))
    }
}
