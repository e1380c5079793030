//! Rendering: templates plus the manifest become files in a `WritePlan`.

pub mod context;
pub mod runtime;
pub mod templates;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use tera::Tera;

use self::context::{ServiceContext, WorkspaceContext};
use self::templates::{Origin, TEMPLATE_SUFFIX, TemplateSet};
use crate::error::{Error, Location, Result};
use crate::plan::{Ownership, WritePlan};
use crate::workspace::model::{Kind, Manifest};
use crate::workspace::names::QueueForms;
use crate::workspace::openapi::RestApis;
use crate::workspace::proto::ProtoInfo;
use crate::workspace::service_dir;
use crate::workspace::source::Files as _;

/// Path of the generated contracts crate, relative to the workspace root.
pub const CONTRACTS_DIR: &str = "crates/contracts";
pub use crate::workspace::RUNTIME_DIR;
/// Path of the generated compose file.
pub const COMPOSE_FILE: &str = "docker-compose.yml";

/// Tera with every template of a set parsed up front, so a broken one fails first.
pub struct Renderer {
    tera: Tera,
    set: TemplateSet,
    /// Whether some Rust template was given a value longer than its layout is made for;
    /// see [`Renderer::output_is_formatted`].
    overlong: AtomicBool,
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
        Ok(Self {
            tera,
            set,
            overlong: AtomicBool::new(false),
        })
    }

    /// The embedded templates, or the workspace's overrides on top of them.
    pub fn for_workspace(root: &Path, manifest: &Manifest) -> Result<Self> {
        Self::for_workspace_with(root, manifest, TemplateSet::embedded())
    }

    /// Like [`Renderer::for_workspace`], with `set` (an earlier version's templates) in
    /// place of the current ones; the workspace's overrides still take precedence.
    pub fn for_workspace_with(root: &Path, manifest: &Manifest, set: TemplateSet) -> Result<Self> {
        match &manifest.workspace.templates {
            Some(dir) => Self::new(set.overridden_by(&root.join(dir))?),
            None => Self::new(set),
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
        if name.ends_with(".rs.tera") {
            let fits = CONTEXT_KEYS
                .iter()
                .filter_map(|key| ctx.get(key))
                .all(fits_layout);
            if !fits {
                self.overlong.store(true, Ordering::Relaxed);
            }
        }
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

    /// Whether the Rust rendered so far is already what rustfmt would make of it, so that
    /// no formatter process need run. msvc's templates are laid out rustfmt-clean for
    /// names up to [`CLEAN_NAMES_UP_TO`] characters (a test renders each length and runs
    /// `cargo fmt --check`); a longer value, templates of the user's, or a rustfmt config
    /// that could apply (in the workspace or above it) mean rustfmt runs.
    pub fn output_is_formatted(&self, root: &Path) -> bool {
        !self.overlong.load(Ordering::Relaxed)
            && self.set.iter().all(|t| t.origin == Origin::Embedded)
            && crate::plan::rustfmt::user_config(root).is_none()
    }
}

/// A name (service, queue, resource, proto or openapi identifier) up to this many
/// characters leaves the rendered Rust rustfmt-clean.
pub const CLEAN_NAMES_UP_TO: usize = 24;
/// So does a path made of such names (`contracts::pkg::v1::Msg`, a proto's file path):
/// the longest the templates build from names of [`CLEAN_NAMES_UP_TO`] characters.
const CLEAN_PATHS_UP_TO: usize = 2 * CLEAN_NAMES_UP_TO + 27;
/// And a URL (the broker's default) up to this many.
pub const CLEAN_URLS_UP_TO: usize = 60;

/// The context entries Rust templates read values from.
const CONTEXT_KEYS: [&str; 3] = ["ws", "service", "queue"];

/// Whether every string a template could paste into code is within the lengths the
/// templates are laid out for. Prose (doc text, with spaces) does not count: rustfmt does
/// not rewrap comments.
fn fits_layout(value: &tera::Value) -> bool {
    if let Some(s) = value.as_str() {
        let len = s.chars().count();
        return if s.contains(char::is_whitespace) {
            true
        } else if s.contains("://") {
            len <= CLEAN_URLS_UP_TO
        } else if s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            len <= CLEAN_NAMES_UP_TO
        } else {
            len <= CLEAN_PATHS_UP_TO
        };
    }
    if let Some(items) = value.as_array() {
        return items.iter().all(fits_layout);
    }
    if let Some(map) = value.as_map() {
        return map
            .iter()
            .all(|(key, v)| ANY_LENGTH.iter().any(|k| key.as_str() == Some(k)) || fits_layout(v));
    }
    true
}

/// Context entries the templates lay out at whatever length: a constant's value goes on
/// a line of its own when it would not fit beside its name (`database_url`), or the value
/// is written into no Rust at all (`database_name`: compose, Kubernetes, SQL).
const ANY_LENGTH: [&str; 2] = ["database_url", "database_name"];

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

/// Whether a queue's message type is still what msvc writes for it (or not written yet).
fn message_is_new(
    plan: &WritePlan,
    renderer: &Renderer,
    ctx: &tera::Context,
    queue: &QueueForms,
) -> bool {
    let rel = Path::new(CONTRACTS_DIR)
        .join("src/messages")
        .join(format!("{}.rs", queue.module));
    let Some(text) = plan.read_text(&rel) else {
        return true;
    };
    let mut qctx = ctx.clone();
    qctx.insert("queue", queue);
    renderer
        .render("message/message.rs.tera", &qctx)
        .is_ok_and(|fresh| fresh == text)
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
    let mut ctx = workspace_context(manifest, protos);
    let mut service = ServiceContext::new(manifest, name, protos);
    // Only a REST service's routes show samples; the peers' APIs are read for them alone.
    if kind == Kind::Rest {
        let apis = RestApis::read(plan.root(), manifest, plan);
        service = service.with_samples(manifest, &apis, |queue| {
            message_is_new(plan, renderer, &ctx, queue)
        });
    }
    ctx.insert("service", &service);
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
