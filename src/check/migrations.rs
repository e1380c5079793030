//! The migrations of the services with a database (`services/NAME/migrations/`), as sqlx
//! reads them: it embeds them at build time and refuses, at start, a migration that ran
//! and changed since. Found here, before a build or a deploy.

use std::collections::BTreeMap;

use super::Context;
use crate::error::{Location, Result};
use crate::workspace::diagnostic::Diagnostic;
use crate::workspace::service_dir;

/// One migration file: its version, and the direction for a reversible one.
#[derive(Debug, PartialEq, Eq)]
struct Name {
    version: i64,
    /// `up` or `down` for `V_name.up.sql` / `V_name.down.sql`; empty for `V_name.sql`.
    direction: &'static str,
}

/// What sqlx takes: `VERSION_DESCRIPTION.sql` (or `.up.sql`, `.down.sql`), the version a
/// positive integer, the description not empty.
fn parse(file: &str) -> Option<Name> {
    let stem = file.strip_suffix(".sql")?;
    let (stem, direction) = if let Some(s) = stem.strip_suffix(".up") {
        (s, "up")
    } else if let Some(s) = stem.strip_suffix(".down") {
        (s, "down")
    } else {
        (stem, "")
    };
    let (version, description) = stem.split_once('_')?;
    let digits = !version.is_empty() && version.bytes().all(|b| b.is_ascii_digit());
    let version: i64 = version.parse().ok().filter(|v| digits && *v > 0)?;
    (!description.is_empty()).then_some(Name { version, direction })
}

/// The `.sql` files of each service with a database: relative path to text (`None` when
/// it is not UTF-8).
fn migration_files(ctx: &Context<'_>) -> BTreeMap<String, BTreeMap<String, Option<String>>> {
    let mut by_service = BTreeMap::new();
    for (name, _) in ctx.ws.manifest.generated_with_database() {
        let dir = service_dir(name).join("migrations");
        let Ok(entries) = fs_err::read_dir(ctx.root.join(&dir)) else {
            continue;
        };
        let mut files = BTreeMap::new();
        for entry in entries.filter_map(std::result::Result::ok) {
            let file = entry.file_name().to_string_lossy().into_owned();
            // sqlx takes `.sql` as it is spelled: `0002_x.SQL` is not a migration to it.
            let sql = std::path::Path::new(&file)
                .extension()
                .is_some_and(|e| e == "sql");
            if !sql || !entry.path().is_file() {
                continue;
            }
            let text = fs_err::read(entry.path())
                .ok()
                .and_then(|b| String::from_utf8(b).ok());
            files.insert(dir.join(&file).to_string_lossy().into_owned(), text);
        }
        by_service.insert(name.clone(), files);
    }
    by_service
}

pub fn check(ctx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    for (service, files) in migration_files(ctx) {
        let mut versions: BTreeMap<(i64, &str), &str> = BTreeMap::new();
        for (path, text) in &files {
            let file = path.rsplit('/').next().unwrap_or(path);
            let Some(name) = parse(file) else {
                out.push(
                    Diagnostic::new(
                        "MIGRATION_FILE",
                        format!("`{file}` of {service} is not a migration sqlx reads"),
                    )
                    .at(Location::file(path))
                    .hint("name it VERSION_DESCRIPTION.sql, the version a positive number above the last one: `0002_add_orders.sql`"),
                );
                continue;
            };
            if text.is_none() {
                out.push(
                    Diagnostic::new(
                        "MIGRATION_FILE",
                        format!("`{file}` of {service} cannot be read as UTF-8 text"),
                    )
                    .at(Location::file(path))
                    .hint("save it as UTF-8"),
                );
            }
            if let Some(first) = versions.insert((name.version, name.direction), file) {
                out.push(
                    Diagnostic::new(
                        "MIGRATION_VERSION",
                        format!(
                            "`{file}` and `{first}` of {service} both have version {}",
                            name.version
                        ),
                    )
                    .at(Location::file(path))
                    .hint("give the newer one the next free version: versions are applied in order, once each"),
                );
            }
        }
    }
}

/// With `--against REF`: a migration REF had that is changed or gone now. sqlx records
/// each applied migration's checksum and refuses to start when a file no longer matches
/// it, or an applied one is missing: after a deploy, not in review.
pub fn edited_since(ctx: &Context<'_>, rev: &str, out: &mut Vec<Diagnostic>) -> Result<()> {
    let now = migration_files(ctx);
    for service in now.keys() {
        let dir = service_dir(service).join("migrations");
        let dir = dir.to_string_lossy();
        let then = crate::workspace::revision::files_at(ctx.root, rev, &dir, "sql")?;
        for (path, old) in then {
            let file = path.rsplit('/').next().unwrap_or(&path).to_owned();
            match now[service].get(&path) {
                Some(Some(text)) if *text == old => {}
                Some(_) => out.push(
                    Diagnostic::new(
                        "MIGRATION_EDITED",
                        format!("`{file}` of {service} changed since {rev}, where it existed"),
                    )
                    .at(Location::file(&path))
                    .hint(format!(
                        "a database that ran it refuses to start with it changed: restore it (`git checkout {rev} -- {path}`) and put the change in a new migration"
                    )),
                ),
                None => out.push(
                    Diagnostic::new(
                        "MIGRATION_EDITED",
                        format!("`{file}` of {service} was deleted since {rev}, where it existed"),
                    )
                    .at(Location::file(&path))
                    .hint(format!(
                        "a database that ran it refuses to start without it: restore it (`git checkout {rev} -- {path}`) and undo it in a new migration"
                    )),
                ),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sqlx_takes() {
        let ok = |file: &str, version: i64, direction: &'static str| {
            assert_eq!(parse(file), Some(Name { version, direction }), "{file}");
        };
        ok("0001_init.sql", 1, "");
        ok("20240102030405_add_orders.sql", 20_240_102_030_405, "");
        ok("2_orders.up.sql", 2, "up");
        ok("2_orders.down.sql", 2, "down");
        for bad in [
            "init.sql",
            "0001.sql",
            "0001_.sql",
            "x1_init.sql",
            "0000_zero.sql",
            "-1_a.sql",
            "+1_a.sql",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
