//! `msvc up`: build once, provision the broker, run every service under supervision.

use std::path::Path;

use crate::cli::UpArgs;
use crate::error::{Error, Result};
use crate::printer::Printer;
use crate::supervisor::setup::{BringUp, Progress, prepare};
use crate::workspace::Workspace;

pub fn run(cwd: &Path, args: &UpArgs, printer: &Printer) -> Result<i32> {
    if args.watch {
        return Err(Error::new("`msvc up --watch` is not there yet").hint(
            "run `msvc up`, and after an edit `msvc restart SERVICE` from another terminal: it rebuilds and restarts that service behind its health check",
        ));
    }
    let root = Workspace::find(cwd)?;
    let ws = Workspace::load(&root)?;
    if let Some(code) = super::check::stop_before_build(&root, "up", *printer)? {
        return Ok(code);
    }
    let settings = BringUp {
        services: &args.services,
        release: args.release,
        no_restart: args.no_restart,
        echo_logs: true,
        prometheus: args.prometheus,
        fresh_databases: false,
    };
    let prepared = prepare(&ws, &settings, printer)?;
    Ok(prepared.supervisor.run())
}

/// The set-up's status lines go where every command's go (`msvc test` too).
impl Progress for Printer {
    fn status(&self, verb: &str, message: &str) {
        Printer::status(self, verb, message);
    }

    fn quiet(&self) -> bool {
        self.quiet
    }

    fn is_json(&self) -> bool {
        Printer::is_json(self)
    }
}
