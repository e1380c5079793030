//! `msvc check`: run every check on the workspace and print the report.

use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

use crate::check::catalog::{self, CHECKS};
use crate::check::output::{self, PathStyle};
use crate::check::{self, Levels, Options, Report, junit, sarif};
use crate::cli::{CheckArgs, CheckFormat, Deny, Format};
use crate::error::{EXIT_FAILURE, Error, Result};
use crate::printer::Printer;
use crate::workspace::{MANIFEST_FILE, Workspace};

pub fn run(cwd: &Path, args: &CheckArgs, printer: &Printer) -> Result<i32> {
    // clap knows the formats of `check`, but not that these two modes have fewer.
    if (args.explain.is_some() || args.list)
        && !matches!(args.format, CheckFormat::Text | CheckFormat::Json)
    {
        return Err(Error::new(format!(
            "`--format {}` does not apply to `check --explain` and `check --list`",
            printer.format.as_str()
        ))
        .hint("use one of: text, json"));
    }
    if let Some(id) = &args.explain {
        return explain(id, *printer);
    }
    let root = Workspace::find(cwd)?;
    let deny_warnings = args.deny == Some(Deny::Warnings);
    if args.list {
        return Ok(list(&root, deny_warnings, *printer));
    }
    let options = Options {
        against: args.against.clone(),
        deny_warnings,
    };
    let report = run_guarded(&root, options)?;
    let paths = PathStyle::new(&root_from_cwd(&root));
    let text = match printer.format {
        Format::Json => output::json(&report, &paths),
        Format::Github => output::github(&report, &paths),
        Format::Sarif => sarif::sarif(&report, &paths),
        Format::Junit => junit::junit(&report, &paths),
        _ => output::text(&report, &paths, true, printer.quiet),
    };
    printer.write(&text);
    Ok(report.exit_code())
}

/// Stops `msvc up` and `msvc test` before any build when the checks find what would make
/// the build or the start fail; the exit code when they did.
pub fn stop_before_build(root: &Path, command: &str, printer: Printer) -> Result<Option<i32>> {
    let report = check::blockers(root)?;
    if report.diagnostics.is_empty() {
        return Ok(None);
    }
    let paths = PathStyle::new(&root_from_cwd(root));
    if printer.is_json() {
        printer.write(&output::json(&report, &paths));
    } else {
        let mut text = String::new();
        for d in &report.diagnostics {
            text.push_str(&output::render(d, &paths, true));
            text.push('\n');
        }
        let n = report.diagnostics.len();
        let _ = writeln!(
            text,
            "msvc {command}: stopped before building: {n} error{} above would make the build or the start fail (`msvc check` runs every check)",
            if n == 1 { "" } else { "s" }
        );
        printer.write_err(&text);
    }
    Ok(Some(EXIT_FAILURE))
}

/// Runs the checks on a thread with a large stack, and turns a panic (a bug) into an
/// error message instead of a crash with a backtrace.
fn run_guarded(root: &Path, options: Options) -> Result<Report> {
    let root = root.to_path_buf();
    let message = std::sync::Arc::new(std::sync::Mutex::new(None::<String>));
    let sink = message.clone();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .map(ToString::to_string)
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        if let Ok(mut m) = sink.lock() {
            *m = Some(format!("{payload}{at}"));
        }
    }));
    let result = std::thread::Builder::new()
        .name("msvc-check".into())
        .stack_size(check::STACK_SIZE)
        .spawn(move || check::run(&root, &options))
        .map_err(|e| Error::new(format!("cannot start the check: {e}")))?
        .join();
    std::panic::set_hook(previous);
    let Ok(report) = result else {
        let detail = message
            .lock()
            .ok()
            .and_then(|m| m.clone())
            .unwrap_or_default();
        return Err(
            Error::new(format!("msvc check failed unexpectedly: {detail}"))
                .hint("this is a bug in msvc; please report it with the files that trigger it"),
        );
    };
    report
}

/// The workspace root as seen from the process's current directory, for paths that can
/// be clicked: empty (here), `shop` or `../..`.
fn root_from_cwd(root: &Path) -> PathBuf {
    let Ok(cwd) = std::env::current_dir() else {
        return root.to_path_buf();
    };
    let (Ok(root), Ok(cwd)) = (std::path::absolute(root), std::path::absolute(cwd)) else {
        return root.to_path_buf();
    };
    let r: Vec<Component> = root.components().collect();
    let c: Vec<Component> = cwd.components().collect();
    let common = r.iter().zip(&c).take_while(|(a, b)| a == b).count();
    if common == 0 {
        return root;
    }
    let mut out = PathBuf::new();
    for _ in common..c.len() {
        out.push("..");
    }
    for part in &r[common..] {
        out.push(part);
    }
    out
}

fn explain(id: &str, printer: Printer) -> Result<i32> {
    let upper = id.to_ascii_uppercase();
    let Some(info) = catalog::info(&upper) else {
        return Err(Error::new(format!("`{id}` is not a check")).hint(
            catalog::suggest(id)
                .unwrap_or_else(|| "`msvc check --list` lists every check".to_string()),
        ));
    };
    if printer.is_json() {
        printer.json(&serde_json::json!({
            "id": info.id,
            "family": info.family.as_str(),
            "level": info.level,
            "summary": info.summary,
            "detail": info.detail,
            "fix": info.fix,
        }));
    } else {
        printer.write(&catalog::explain(info));
    }
    Ok(0)
}

/// Every check with its level in this workspace: the manifest's `[checks]` when it reads,
/// else the defaults.
fn list(root: &Path, deny_warnings: bool, printer: Printer) -> i32 {
    let config = fs_err::read_to_string(root.join(MANIFEST_FILE))
        .ok()
        .and_then(|text| Workspace::parse(&root.join(MANIFEST_FILE), &text).ok())
        .map(|m| m.checks)
        .unwrap_or_default();
    let levels = Levels::resolve(&config, deny_warnings);
    let rows: Vec<serde_json::Value> = CHECKS
        .iter()
        .map(|c| {
            serde_json::json!({
                "id": c.id,
                "family": c.family.as_str(),
                "default": c.level,
                "level": levels.level(c.id).map_or("off", |l| l.as_str()),
                "summary": c.summary,
            })
        })
        .collect();
    if printer.is_json() {
        printer.json(&rows);
        return 0;
    }
    let mut out = String::new();
    for c in CHECKS {
        let level = levels.level(c.id).map_or("off", |l| l.as_str());
        let changed = if levels.level(c.id) == Some(c.level) {
            ""
        } else {
            "*"
        };
        let _ = writeln!(
            out,
            "{:<26} {:<8} {:<11} {}",
            c.id,
            format!("{level}{changed}"),
            c.family.as_str(),
            c.summary
        );
    }
    out.push_str("\n* set in services.toml [checks] or by --deny warnings; `msvc check --explain ID` for more\n");
    printer.write(&out);
    0
}
