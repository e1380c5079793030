//! Rendering: templates plus the manifest become files in a `WritePlan`.

pub mod context;
pub mod runtime;
pub mod templates;

use std::collections::BTreeMap;
use std::path::Path;

use tera::Tera;

use self::context::{ServiceContext, WorkspaceContext};
use self::templates::{Origin, TEMPLATE_SUFFIX, TemplateSet};
use crate::error::{Error, Location, Result};
use crate::plan::{Ownership, WritePlan};
use crate::workspace::model::{Kind, Manifest};
use crate::workspace::proto::ProtoInfo;
use crate::workspace::service_dir;

/// Path of the generated contracts crate, relative to the workspace root.
pub const CONTRACTS_DIR: &str = "crates/contracts";
pub use crate::workspace::RUNTIME_DIR;
/// Path of the generated compose file.
pub const COMPOSE_FILE: &str = "docker-compose.yml";

/// Tera with every template of a set parsed up front, so a broken one fails first.
pub struct Renderer {
    tera: Tera,
    set: TemplateSet,
}

impl Renderer {
    pub fn new(set: TemplateSet) -> Result<Self> {
        let mut tera = Tera::new();
        // Generated files are code, not HTML.
        tera.autoescape_on(Vec::<&str>::new());
        register_filters(&mut tera);
        // One call, so `{% include %}` and `{% extends %}` resolve whatever the order.
        tera.add_raw_templates(set.iter().map(|t| (t.name.as_str(), t.text.as_str())))
            .map_err(|e| {
                // Tera names the failing template in its message; point at an override.
                let text = e.to_string();
                let culprit = set.iter().find(|t| text.contains(t.name.as_str()));
                match culprit {
                    Some(t) => template_error(&t.name, &t.origin, e),
                    None => Error::new("msvc's templates failed to load").source(e),
                }
            })?;
        Ok(Self { tera, set })
    }

    /// The embedded templates, or the workspace's overrides on top of them.
    pub fn for_workspace(root: &Path, manifest: &Manifest) -> Result<Self> {
        match &manifest.workspace.templates {
            Some(dir) => Self::new(TemplateSet::with_overrides(&root.join(dir))?),
            None => Self::new(TemplateSet::embedded()),
        }
    }

    pub fn render(&self, name: &str, ctx: &tera::Context) -> Result<String> {
        let origin = self
            .set
            .get(name)
            .map_or(Origin::Embedded, |t| t.origin.clone());
        let text = self
            .tera
            .render(name, ctx)
            .map_err(|e| template_error(name, &origin, e))?;
        // Whitespace control in templates is fiddly; every file ends with one newline.
        let trimmed = text.trim_end();
        Ok(if trimmed.is_empty() {
            String::new()
        } else {
            format!("{trimmed}\n")
        })
    }

    pub fn set(&self) -> &TemplateSet {
        &self.set
    }
}

fn template_error(name: &str, origin: &Origin, err: tera::Error) -> Error {
    let mut e = Error::new(format!("template `{name}` failed")).source(err);
    match origin {
        Origin::Override(path) => {
            e = e.at(Location::file(path)).hint(
                "fix the overriding template, or delete it to use msvc's own; `msvc templates export DIR` shows the originals",
            );
        }
        Origin::Embedded => {
            e = e.hint("this is a bug in msvc's templates; please report it");
        }
    }
    e
}

fn register_filters(tera: &mut Tera) {
    use heck::{ToKebabCase, ToPascalCase, ToShoutySnakeCase, ToSnakeCase};
    tera.register_filter("snake_case", |s: &str, _: tera::Kwargs, _: &tera::State| {
        s.to_snake_case()
    });
    tera.register_filter(
        "pascal_case",
        |s: &str, _: tera::Kwargs, _: &tera::State| s.to_pascal_case(),
    );
    tera.register_filter("kebab_case", |s: &str, _: tera::Kwargs, _: &tera::State| {
        s.to_kebab_case()
    });
    // A double-quoted string that is valid in YAML, TOML and Rust alike.
    tera.register_filter("quoted", |s: &str, _: tera::Kwargs, _: &tera::State| {
        serde_json::to_string(s).expect("strings serialise")
    });
    tera.register_filter(
        "shouty_case",
        |s: &str, _: tera::Kwargs, _: &tera::State| s.to_shouty_snake_case(),
    );
}

/// The template directories a kind of service is rendered from, later ones winning.
fn kind_dirs(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Rest => &["service", "rest"],
        Kind::Grpc => &["service", "grpc"],
        Kind::Worker => &["service", "worker"],
        Kind::Process => &[],
    }
}

/// Renders templates under `dirs` into `dest` (relative to the root), later dirs winning.
pub fn render_dirs(
    renderer: &Renderer,
    dirs: &[&str],
    ctx: &tera::Context,
) -> Result<BTreeMap<String, String>> {
    let mut chosen: BTreeMap<String, String> = BTreeMap::new();
    for dir in dirs {
        for (rel, t) in renderer.set().under(dir) {
            chosen.insert(
                rel.trim_end_matches(TEMPLATE_SUFFIX).to_string(),
                t.name.clone(),
            );
        }
    }
    let mut out = BTreeMap::new();
    for (rel, name) in chosen {
        let text = renderer.render(&name, ctx)?;
        // A template that renders to nothing does not apply (e.g. a store for a proto
        // scaffold); placeholder files such as .gitkeep are empty templates by name.
        if text.is_empty() && !rel.ends_with(".gitkeep") {
            continue;
        }
        out.insert(rel, text);
    }
    Ok(out)
}

/// The files of a new workspace (init): manifest, cargo workspace, README, ignores.
pub fn plan_workspace(
    plan: &mut WritePlan,
    renderer: &Renderer,
    manifest: &Manifest,
) -> Result<()> {
    let ctx = workspace_context(manifest, &BTreeMap::new());
    for (rel, text) in render_dirs(renderer, &["workspace"], &ctx)? {
        plan.put(rel, text, Ownership::Scaffolded);
    }
    Ok(())
}

pub fn workspace_context(
    manifest: &Manifest,
    protos: &BTreeMap<String, ProtoInfo>,
) -> tera::Context {
    let ws = WorkspaceContext::new(manifest, protos);
    let mut ctx = tera::Context::new();
    ctx.insert("ws", &ws);
    ctx
}

/// Renders the default proto of a new gRPC service into the plan.
pub fn plan_default_proto(
    plan: &mut WritePlan,
    renderer: &Renderer,
    manifest: &Manifest,
    name: &str,
) -> Result<()> {
    let svc = &manifest.services[name];
    let Some(path) = &svc.proto else {
        return Ok(());
    };
    let ctx = service_context(manifest, name, &BTreeMap::new());
    let text = renderer.render("proto/service.proto.tera", &ctx)?;
    plan.put(path.clone(), text, Ownership::Scaffolded);
    Ok(())
}

pub fn service_context(
    manifest: &Manifest,
    name: &str,
    protos: &BTreeMap<String, ProtoInfo>,
) -> tera::Context {
    let mut ctx = workspace_context(manifest, protos);
    ctx.insert("service", &ServiceContext::new(manifest, name, protos));
    ctx
}

/// Renders a service's own files (user-owned once written) into the plan.
pub fn plan_service(
    plan: &mut WritePlan,
    renderer: &Renderer,
    manifest: &Manifest,
    name: &str,
    protos: &BTreeMap<String, ProtoInfo>,
) -> Result<()> {
    plan_service_from(plan, renderer, manifest, name, protos, &[])
}

/// Renders the example system's version of a service (`init --example`): its kind's
/// templates with those under `example/<name>/` taking precedence, file by file.
pub fn plan_example_service(
    plan: &mut WritePlan,
    renderer: &Renderer,
    manifest: &Manifest,
    name: &str,
    protos: &BTreeMap<String, ProtoInfo>,
) -> Result<()> {
    let example_dir = format!("example/{name}");
    plan_service_from(
        plan,
        renderer,
        manifest,
        name,
        protos,
        &[example_dir.as_str()],
    )
}

fn plan_service_from(
    plan: &mut WritePlan,
    renderer: &Renderer,
    manifest: &Manifest,
    name: &str,
    protos: &BTreeMap<String, ProtoInfo>,
    overrides: &[&str],
) -> Result<()> {
    let kind = manifest.services[name].kind;
    let ctx = service_context(manifest, name, protos);
    let dir = service_dir(name);
    let dirs: Vec<&str> = kind_dirs(kind)
        .iter()
        .copied()
        .chain(overrides.iter().copied())
        .collect();
    for (rel, text) in render_dirs(renderer, &dirs, &ctx)? {
        plan.put(dir.join(rel), text, Ownership::Scaffolded);
    }
    Ok(())
}
