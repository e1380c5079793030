//! msvc: scaffold, check and run Rust microservice workspaces from one manifest.

pub mod cli;
pub mod commands;
pub mod error;
pub mod manifest;
pub mod printer;
pub mod render;

use std::path::PathBuf;

use cli::{Cli, Command};
use error::Result;
use printer::Printer;

/// Runs one command; returns the process exit code, or an error to print.
pub fn run(cli: Cli) -> Result<i32> {
    let printer = Printer::new(cli.format, cli.quiet);
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
        Command::Templates(cmd) => commands::templates::run(&cwd, &cmd, &printer),
        Command::Doctor => commands::doctor::run(&cwd, &printer),
    }
}
