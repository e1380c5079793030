//! `msvc check`: proves the wiring across the services of a workspace before anything
//! runs. One module per family of checks; each adds [`Diagnostic`]s, and the report
//! applies the levels set in services.toml's `[checks]` table.
//!
//! Every check is documented in [`catalog`]. The checks read the workspace and never
//! write: generated files are rendered in memory and compared.

pub mod breaking;
pub mod calls;
pub mod catalog;
pub mod dockerfile;
pub mod drift;
pub mod junit;
pub mod layout;
pub mod migrations;
pub mod output;
pub mod queues;
pub mod sarif;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

pub use crate::workspace::diagnostic::{Diagnostic, Level};

use crate::error::{Location, Result};
use crate::workspace::collect;
use crate::workspace::model::CheckLevel;
use crate::workspace::protos::ProtoSet;
use crate::workspace::source::Disk;
use crate::workspace::{MANIFEST_FILE, Workspace};

/// The stack of the threads checks run on: parsers recurse into nested input, and no input
/// may overflow it (deeply nested TOML or protos are refused by the parsers well before).
pub const STACK_SIZE: usize = 256 << 20;

/// What a run checks beyond the defaults.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// A git revision to compare protos and migrations with (`PROTO_BREAKING`,
    /// `MIGRATION_EDITED`).
    pub against: Option<String>,
    /// `--deny warnings`: warnings count as errors.
    pub deny_warnings: bool,
}

/// The level of every check, resolved once: the manifest's `[checks]` over the defaults,
/// then `--deny warnings`.
#[derive(Debug, Clone)]
pub struct Levels {
    levels: HashMap<&'static str, Option<Level>>,
}

impl Levels {
    pub fn resolve(config: &BTreeMap<String, CheckLevel>, deny_warnings: bool) -> Self {
        let levels = catalog::CHECKS
            .iter()
            .map(|c| {
                let configured = match config.get(c.id) {
                    // The manifest cannot turn off the check that reads it.
                    _ if c.id == "MANIFEST_SYNTAX" => Some(c.level),
                    Some(CheckLevel::Off) => None,
                    Some(CheckLevel::Warning) => Some(Level::Warning),
                    Some(CheckLevel::Error) => Some(Level::Error),
                    None => Some(c.level),
                };
                let level = configured.map(|l| if deny_warnings { Level::Error } else { l });
                (c.id, level)
            })
            .collect();
        Self { levels }
    }

    /// The level of a check, `None` when it is off. Unknown IDs are errors.
    pub fn level(&self, id: &str) -> Option<Level> {
        self.levels.get(id).copied().unwrap_or(Some(Level::Error))
    }

    pub fn enabled(&self, id: &str) -> bool {
        self.level(id).is_some()
    }
}

/// What a run found.
#[derive(Debug, Clone)]
pub struct Report {
    /// Sorted by file, line and column; each with its level applied.
    pub diagnostics: Vec<Diagnostic>,
    pub levels: Levels,
    pub services: usize,
    pub protos: usize,
    /// Whether `--against` ran the breaking-change check.
    pub ran_breaking: bool,
    /// Whether services.toml could be read; when not, nothing else was checked.
    pub manifest_read: bool,
}

impl Report {
    pub fn errors(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.level == Level::Error)
            .count()
    }

    pub fn warnings(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.level == Level::Warning)
            .count()
    }

    /// The number of checks that were on.
    pub fn checks_run(&self) -> usize {
        catalog::CHECKS
            .iter()
            .filter(|c| {
                self.levels.enabled(c.id)
                    && (!catalog::AGAINST_ONLY.contains(&c.id) || self.ran_breaking)
            })
            .count()
    }

    /// 1 when any error was found, else 0.
    pub fn exit_code(&self) -> i32 {
        i32::from(self.errors() > 0)
    }
}

/// What every family of checks reads.
pub struct Context<'a> {
    pub root: &'a Path,
    pub ws: &'a Workspace,
    pub index: &'a collect::ManifestIndex<'a>,
    /// Services whose table could not be read (see [`collect::Loaded::broken`]).
    pub broken: &'a BTreeSet<String>,
    /// What those services still say they publish and consume.
    pub broken_queues: &'a BTreeMap<String, collect::BrokenQueues>,
    pub levels: &'a Levels,
}

impl Context<'_> {
    /// Where a key of services.toml is.
    pub fn locate(&self, keys: &[&str]) -> Location {
        self.index.locate(keys)
    }
}

/// Runs every check on the workspace at `root`. An `Err` is a usage or I/O error (exit 2);
/// everything wrong with the workspace itself is a diagnostic in the report.
pub fn run(root: &Path, options: &Options) -> Result<Report> {
    let manifest_path = root.join(MANIFEST_FILE);
    let bytes = fs_err::read(&manifest_path)?;
    let (text, not_utf8) = match String::from_utf8(bytes) {
        Ok(t) => (t, None),
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            (
                String::from_utf8_lossy(e.as_bytes()).into_owned(),
                Some(valid),
            )
        }
    };
    let mut out = Vec::new();
    let default_levels = || Levels::resolve(&BTreeMap::new(), options.deny_warnings);
    if let Some(valid) = not_utf8 {
        let source = crate::error::SourceText::new(MANIFEST_FILE, &text);
        out.push(
            Diagnostic::new("MANIFEST_SYNTAX", "services.toml is not valid UTF-8")
                .at(source.location(valid..valid + 1))
                .hint("save the file as UTF-8"),
        );
        return Ok(finish(out, default_levels(), None, false));
    }
    let (index, loaded) = collect::load(&text, &mut out);
    let Some(loaded) = loaded else {
        return Ok(finish(out, default_levels(), None, false));
    };
    let levels = Levels::resolve(&loaded.manifest.checks, options.deny_warnings);
    let ws = Workspace {
        root: root.to_path_buf(),
        manifest_path,
        text: text.clone(),
        manifest: loaded.manifest,
    };
    let ctx = Context {
        root,
        ws: &ws,
        index: &index,
        broken: &loaded.broken,
        broken_queues: &loaded.broken_queues,
        levels: &levels,
    };
    collect::validate(&ws, &index, &loaded.broken, &mut out);
    unknown_checks(&index, &ws.manifest.checks, &mut out);
    // Generated files are compared only with what a valid manifest generates: `msvc sync`,
    // the fix drift diagnostics name, refuses any other.
    let manifest_valid = !loaded.schema_errors && out.iter().all(|d| d.id == "UNKNOWN_CHECK");

    let mut protos = ProtoSet::read(root, &ws.manifest, &Disk(root), &|keys| ctx.locate(keys));
    out.append(&mut protos.problems);
    // Compiling the protos takes the longest; it runs beside the other checks.
    let compiled = std::thread::scope(|scope| {
        // As deep a stack as the thread `msvc check` runs on: protos nest.
        let compile = levels.enabled("PROTO_COMPILE").then(|| {
            std::thread::Builder::new()
                .stack_size(STACK_SIZE)
                .spawn_scoped(scope, || protos.compile())
                .expect("a thread can be started")
        });
        calls::check(&ctx, &protos, &mut out);
        calls::contract_cases(&ctx, &mut out);
        queues::check(&ctx, &mut out);
        let dirs = layout::service_dirs(&ctx);
        layout::check(&ctx, &dirs, &mut out);
        migrations::check(&ctx, &mut out);
        dockerfile::check(&ctx, &dirs, &mut out);
        if manifest_valid {
            // A proto or openapi.yaml that does not read explains a failed render.
            let blocked = out
                .iter()
                .any(|d| d.id == "OPENAPI_INVALID" || d.id.starts_with("PROTO_"));
            drift::check(&ctx, &protos, blocked, &mut out);
        }
        compile.map(|handle| {
            handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    });
    out.extend(compiled.into_iter().flatten());
    if let Some(rev) = &options.against {
        breaking::check(&ctx, &protos, rev, &mut out)?;
        migrations::edited_since(&ctx, rev, &mut out)?;
    }
    let service_count = ws.manifest.services.len() + loaded.broken.len();
    Ok(finish(
        out,
        levels,
        Some((service_count, protos.files.len())),
        options.against.is_some(),
    ))
}

/// The checks whose errors make `cargo build` or the start of the services fail.
const BLOCKS_START: &[&str] = &[
    "PROTO_MISSING",
    "PROTO_COMPILE",
    "PROTO_NO_SERVICE",
    "PROTO_NO_PACKAGE",
    "SERVICE_DIR_MISSING",
    "BROKER_MISSING",
    "MIGRATION_FILE",
    "MIGRATION_VERSION",
];

/// What would make the build or the start fail, found before either: `msvc up` and
/// `msvc test` stop on these with the diagnostics instead of failing inside a build script.
pub fn blockers(root: &Path) -> Result<Report> {
    let root = root.to_path_buf();
    let mut report = std::thread::Builder::new()
        .stack_size(STACK_SIZE)
        .spawn(move || run(&root, &Options::default()))
        .expect("a thread can be started")
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
    report
        .diagnostics
        .retain(|d| d.level == Level::Error && BLOCKS_START.contains(&d.id));
    Ok(report)
}

/// `[checks]` entries that name no check.
fn unknown_checks(
    index: &collect::ManifestIndex<'_>,
    checks: &BTreeMap<String, CheckLevel>,
    out: &mut Vec<Diagnostic>,
) {
    for id in checks.keys() {
        if catalog::info(id).is_some() {
            continue;
        }
        let hint = catalog::suggest(id)
            .unwrap_or_else(|| "`msvc check --list` lists the check IDs".into());
        out.push(
            Diagnostic::new(
                "UNKNOWN_CHECK",
                format!("[checks] names `{id}`, which is not a check"),
            )
            .at(index.locate_key(&["checks", id]))
            .hint(hint),
        );
    }
}

/// Applies levels, drops what is off or repeated, and sorts.
fn finish(
    found: Vec<Diagnostic>,
    levels: Levels,
    counts: Option<(usize, usize)>,
    ran_breaking: bool,
) -> Report {
    let (services, protos) = counts.unwrap_or_default();
    let mut seen = std::collections::HashSet::new();
    let mut diagnostics: Vec<Diagnostic> = found
        .into_iter()
        .filter_map(|mut d| {
            d.level = levels.level(d.id)?;
            let key = (
                d.id,
                d.message.clone(),
                d.location.clone().map(|l| (l.path, l.line, l.column)),
            );
            seen.insert(key).then_some(d)
        })
        .collect();
    diagnostics.sort_by_cached_key(Diagnostic::sort_key);
    Report {
        diagnostics,
        levels,
        services,
        protos,
        ran_breaking,
        manifest_read: counts.is_some(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checks_entry_that_names_no_check_is_reported_at_its_key() {
        let text = "[workspace]\nname = \"shop\"\n[services.c]\nkind = \"rest\"\nport = 1\n[checks]\nPORT_CONFLIT = \"off\"\nDURATION = \"loud\"\n";
        let mut out = Vec::new();
        let (index, loaded) = collect::load(text, &mut out);
        let loaded = loaded.expect("the TOML parses");
        let mut found = Vec::new();
        unknown_checks(&index, &loaded.manifest.checks, &mut found);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].id, "UNKNOWN_CHECK");
        assert_eq!(
            found[0].message,
            "[checks] names `PORT_CONFLIT`, which is not a check"
        );
        assert_eq!(
            found[0].location.as_ref().map(|l| (l.line, l.column)),
            Some((7, 1))
        );
        assert_eq!(
            found[0].hint.as_deref(),
            Some("did you mean `PORT_CONFLICT`?")
        );
    }
}
