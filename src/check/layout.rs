//! Layout checks: every service of the manifest has its directory under services/, and
//! every directory there is a service of the manifest.

use std::collections::BTreeSet;

use super::Context;
use crate::error::Location;
use crate::workspace::diagnostic::Diagnostic;
use crate::workspace::model::Kind;
use crate::workspace::service_dir;

/// The directories under services/, sorted (hidden ones left out).
pub fn service_dirs(ctx: &Context<'_>) -> BTreeSet<String> {
    let Ok(entries) = fs_err::read_dir(ctx.root.join("services")) else {
        return BTreeSet::new();
    };
    entries
        .filter_map(Result::ok)
        // A symlink to a directory counts: nothing here recurses into it.
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect()
}

pub fn check(ctx: &Context<'_>, dirs: &BTreeSet<String>, out: &mut Vec<Diagnostic>) {
    let services = &ctx.ws.manifest.services;
    for (name, svc) in services {
        // An invalid name is reported by SERVICE_NAME, and cannot be scaffolded.
        if svc.kind == Kind::Process
            || dirs.contains(name)
            || crate::workspace::names::validate_service_name(name).is_err()
        {
            continue;
        }
        out.push(
            Diagnostic::new(
                "SERVICE_DIR_MISSING",
                format!("service `{name}` has no directory services/{name}"),
            )
            .at(ctx.locate(&["services", name]))
            .hint(format!(
                "`msvc sync` scaffolds it; or `msvc rm {name}` if the service is gone"
            )),
        );
    }
    for dir in dirs {
        if services.contains_key(dir) || ctx.broken.contains(dir) {
            continue;
        }
        let hint = match crate::workspace::validate::did_you_mean(dir, services.keys()) {
            Some(dym) => format!(
                "{dym} If the service was renamed, rename its directory to match; otherwise delete it"
            ),
            None => format!("add `[services.{dir}]` to services.toml, or delete the directory"),
        };
        out.push(
            Diagnostic::new(
                "SERVICE_DIR_UNLISTED",
                format!("services/{dir} is not a service of services.toml"),
            )
            .at(Location::file(service_dir(dir)))
            .hint(hint),
        );
    }
}
