//! The `msvc` binary: parse arguments, run, map the result to an exit code.

use clap::Parser;

fn main() {
    let cli = msvc::cli::Cli::parse();
    let printer = msvc::printer::Printer::new(cli.format(), cli.quiet);
    let code = match msvc::run(cli) {
        Ok(code) => code,
        Err(err) => {
            let err = match std::env::current_dir() {
                Ok(cwd) => err.paths_from(&cwd),
                Err(_) => err,
            };
            printer.error(&err);
            err.exit_code
        }
    };
    std::process::exit(code);
}
