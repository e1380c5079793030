//! Wiring checks: every `calls` entry names an RPC the gRPC peer's proto declares or a
//! route the REST peer's openapi.yaml declares, and the peer is a dependency; REST
//! services' openapi.yaml files read; contracts.toml reads as `msvc test` reads it.

use std::collections::BTreeSet;
use std::path::Path;

use super::Context;
use crate::error::Location;
use crate::workspace::calls::{self, Contracts};
use crate::workspace::cases;
use crate::workspace::diagnostic::Diagnostic;
use crate::workspace::model::Kind;
use crate::workspace::openapi::RestApis;
use crate::workspace::protos::ProtoSet;
use crate::workspace::service_dir;
use crate::workspace::source::Disk;

pub fn check(ctx: &Context<'_>, protos: &ProtoSet, out: &mut Vec<Diagnostic>) {
    let apis = read_openapis(ctx, out);
    let contracts = Contracts {
        protos: &protos.infos,
        apis: &|peer| apis.get(peer),
    };
    let manifest = &ctx.ws.manifest;
    for (name, svc) in &manifest.services {
        for (i, call) in svc.calls.iter().enumerate() {
            let index = i.to_string();
            let keys = ["services", name.as_str(), "calls", index.as_str()];
            let peer = match calls::resolve(manifest, &contracts, name, call) {
                Ok(resolved) => resolved.peer,
                Err(problem) => {
                    let peer = calls::split(call).map_or("", |(p, _)| p);
                    if problem.unknown_peer && ctx.broken.contains(peer) {
                        continue;
                    }
                    out.push(
                        Diagnostic::new(problem.id, problem.message)
                            .at(ctx.locate(&keys))
                            .hint(problem.hint),
                    );
                    if problem.id == "CALL_INVALID" {
                        continue;
                    }
                    peer
                }
            };
            if !svc.depends_on.iter().any(|d| d == peer) {
                out.push(
                    Diagnostic::new(
                        "CALL_WITHOUT_DEPENDENCY",
                        format!("`{name}` calls `{peer}` but does not depend on it"),
                    )
                    .at(ctx.locate(&keys))
                    .hint(format!(
                        "add it to depends_on, which gives `{name}` the client and {}: `msvc link {name} --depends-on {peer}`",
                        crate::workspace::names::NameForms::new(peer).env_url
                    )),
                );
            }
        }
    }
}

/// `CONTRACTS_INVALID`: contracts.toml reads as `msvc test` reads it.
pub fn contract_cases(ctx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    let path = ctx.root.join(cases::FILE);
    if !path.is_file() {
        return;
    }
    let text = match fs_err::read(&path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => {
            out.push(
                Diagnostic::new(
                    "CONTRACTS_INVALID",
                    format!("cannot read {}: {}", cases::FILE, e.kind()),
                )
                .at(Location::file(cases::FILE))
                .hint("check the file's permissions"),
            );
            return;
        }
    };
    if let Err(err) = cases::parse(ctx.ws, Path::new(cases::FILE), &text) {
        let mut d = Diagnostic::new("CONTRACTS_INVALID", err.message);
        if let Some(location) = err.location {
            d = d.at(*location);
        }
        if let Some(hint) = err.hint {
            d = d.hint(hint);
        }
        out.push(d);
    }
}

/// The openapi.yaml of every REST service with a directory, reporting the ones that do not
/// read (or are missing while another service depends on or calls the service).
fn read_openapis(ctx: &Context<'_>, out: &mut Vec<Diagnostic>) -> RestApis {
    let services = &ctx.ws.manifest.services;
    let apis = RestApis::read(ctx.root, &ctx.ws.manifest, &Disk(ctx.root));
    // Services some other service depends on or calls.
    let called: BTreeSet<&str> = services
        .values()
        .flat_map(|s| {
            s.depends_on.iter().map(String::as_str).chain(
                s.calls
                    .iter()
                    .filter_map(|c| calls::split(c).map(|(p, _)| p)),
            )
        })
        .collect();
    for (name, svc) in services {
        if svc.kind != Kind::Rest || !ctx.root.join(service_dir(name)).is_dir() {
            continue;
        }
        out.extend(apis.problem(name, called.contains(name.as_str())));
    }
    apis
}
