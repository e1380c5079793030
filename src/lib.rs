//! msvc: scaffold, check and run Rust microservice workspaces from one manifest.
//!
//! The modules are layers. Each imports only the modules listed before it here, so
//! every dependency points one way and none runs in a circle (a test reads this list):
//!
//! ```text
//! error       the one error type, the diagnostic renderer and its palette; places in files
//! workspace   what a workspace declares, read once: manifest, protos, OpenAPI, calls,
//!             contract cases, the system graph; and the diagnostics of its readers
//! plan        WritePlan: every file a command writes, decided in memory, written all or none
//! printer     the one writer of stdout and stderr: formats, colour, quiet
//! render      the embedded templates and Tera: files into a plan
//! deploy      Kubernetes and Prometheus files, on the same plan
//! generate    the one path that rewrites msvc-owned files (new, link, rm, sync, deploy)
//! upgrade     msvc upgrade: template version 1 frozen, three-way merges to the current one
//! graph       the system graph drawn: mermaid, DOT, JSON
//! check       msvc check: diagnostics about a workspace; prints nothing
//! supervisor  msvc up: build, broker, processes, probes, restarts, logs, run state
//! testing     msvc test: each service's own tests and the contract cases
//! cli         clap definitions and nothing else
//! commands    one glue function per subcommand: settings, layers, printing
//! ```

pub mod check;
pub mod cli;
pub mod commands;
pub mod deploy;
pub mod error;
pub mod generate;
pub mod graph;
pub mod plan;
pub mod printer;
pub mod render;
pub mod supervisor;
pub mod testing;
pub mod upgrade;
pub mod workspace;

use std::path::PathBuf;

use cli::{Cli, Command};
use error::Result;
use printer::Printer;

/// Runs one command; returns the process exit code, or an error to print.
pub fn run(cli: Cli) -> Result<i32> {
    let printer = Printer::new(cli.format(), cli.quiet);
    let cwd = match &cli.directory {
        Some(dir) => {
            if !dir.is_dir() {
                return Err(
                    error::Error::new(format!("`{}` is not a directory", dir.display()))
                        .hint("pass an existing directory to -C"),
                );
            }
            dir.clone()
        }
        None => PathBuf::from("."),
    };
    match cli.command {
        Command::Init(args) => commands::init::run(&cwd, &args, &printer),
        Command::New(args) => commands::new::run(&cwd, &args, &printer),
        Command::Link(args) => commands::link::run(&cwd, &args, &printer),
        Command::Rm(args) => commands::rm::run(&cwd, &args, &printer),
        Command::Sync(args) => commands::sync::run(&cwd, &args, &printer),
        Command::Deploy(cmd) => commands::deploy::run(&cwd, &cmd, &printer),
        Command::Templates(cmd) => commands::templates::run(&cwd, &cmd, &printer),
        Command::Doctor(_) => commands::doctor::run(&cwd, &printer),
        Command::Check(args) => commands::check::run(&cwd, &args, &printer),
        Command::Graph(_) => commands::graph::run(&cwd, &printer),
        Command::Up(args) => commands::up::run(&cwd, &args, &printer),
        Command::Test(args) => commands::test::run(&cwd, &args, &printer),
        Command::Status(_) => commands::status::run(&cwd, &printer),
        Command::Logs(args) => commands::logs::run(&cwd, &args, &printer),
        Command::Restart(args) => commands::restart::run(&cwd, &args, &printer),
        Command::Upgrade(args) => commands::upgrade::run(&cwd, &args, &printer),
        Command::Reaper => supervisor::reaper::run(),
    }
}
