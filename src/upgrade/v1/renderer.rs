//! Version 1's template set (templates-v1/, embedded) and its Tera, frozen: the filters,
//! the trailing-newline rule and the override lookup as version 1 rendered them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use include_dir::{Dir, DirEntry, include_dir};
use tera::Tera;

use crate::error::{Error, Location, Result};
use crate::workspace::model::Manifest;

static EMBEDDED: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/templates-v1");

/// Suffix every template file carries; stripped from the destination path.
const TEMPLATE_SUFFIX: &str = ".tera";

/// Where a template's text came from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Origin {
    Embedded,
    Override(PathBuf),
}

#[derive(Debug, Clone)]
struct Template {
    name: String,
    text: String,
    origin: Origin,
}

/// Version 1's templates, a workspace's overrides replacing them where present.
#[derive(Debug, Clone)]
struct TemplateSet {
    templates: BTreeMap<String, Template>,
}

impl TemplateSet {
    fn embedded() -> Self {
        let mut templates = BTreeMap::new();
        collect(&EMBEDDED, &mut templates);
        Self { templates }
    }

    fn with_overrides(dir: &Path) -> Result<Self> {
        let mut set = Self::embedded();
        if !dir.is_dir() {
            return Err(Error::new(format!(
                "template directory `{}` does not exist",
                dir.display()
            ))
            .hint("create it with `msvc templates export DIR`, or remove `templates` from [workspace]"));
        }
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for entry in fs_err::read_dir(&d)? {
                let entry = entry?;
                let path = entry.path();
                if entry.file_type()?.is_dir() {
                    stack.push(path);
                    continue;
                }
                let rel = path.strip_prefix(dir).expect("walked from dir");
                let name = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                if !name.ends_with(TEMPLATE_SUFFIX) {
                    continue;
                }
                // An override of a template version 1 did not have played no part in
                // what version 1 wrote.
                if !set.templates.contains_key(&name) {
                    continue;
                }
                let text = fs_err::read_to_string(&path)?;
                set.templates.insert(
                    name.clone(),
                    Template {
                        name,
                        text,
                        origin: Origin::Override(path),
                    },
                );
            }
        }
        Ok(set)
    }

    fn get(&self, name: &str) -> Option<&Template> {
        self.templates.get(name)
    }

    fn under<'a>(&'a self, dir: &'a str) -> impl Iterator<Item = (&'a str, &'a Template)> {
        let prefix = format!("{dir}/");
        self.templates
            .iter()
            .filter_map(move |(name, t)| name.strip_prefix(&prefix).map(|rel| (rel, t)))
    }
}

fn collect(dir: &Dir<'static>, out: &mut BTreeMap<String, Template>) {
    for entry in dir.entries() {
        match entry {
            DirEntry::Dir(d) => collect(d, out),
            DirEntry::File(f) => {
                let name = f.path().to_string_lossy().replace('\\', "/");
                if !name.ends_with(TEMPLATE_SUFFIX) {
                    continue;
                }
                let text = f
                    .contents_utf8()
                    .expect("embedded templates are UTF-8")
                    .to_string();
                out.insert(
                    name.clone(),
                    Template {
                        name,
                        text,
                        origin: Origin::Embedded,
                    },
                );
            }
        }
    }
}

/// Tera over version 1's templates, every one parsed up front.
pub struct Renderer {
    tera: Tera,
    set: TemplateSet,
}

impl Renderer {
    /// Version 1's templates, or the workspace's overrides on top of them.
    pub fn for_workspace(root: &Path, manifest: &Manifest) -> Result<Self> {
        let set = match &manifest.workspace.templates {
            Some(dir) => TemplateSet::with_overrides(&root.join(dir))?,
            None => TemplateSet::embedded(),
        };
        let mut tera = Tera::new();
        tera.autoescape_on(Vec::<&str>::new());
        register_filters(&mut tera);
        tera.add_raw_templates(
            set.templates
                .values()
                .map(|t| (t.name.as_str(), t.text.as_str())),
        )
        .map_err(|e| {
            let text = e.to_string();
            let culprit = set
                .templates
                .values()
                .find(|t| text.contains(t.name.as_str()));
            match culprit {
                Some(t) => template_error(&t.name, &t.origin, e),
                None => Error::new("msvc's version 1 templates failed to load").source(e),
            }
        })?;
        Ok(Self { tera, set })
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
        let trimmed = text.trim_end();
        Ok(if trimmed.is_empty() {
            String::new()
        } else {
            format!("{trimmed}\n")
        })
    }

    /// Renders templates under `dirs` (later dirs winning), by destination path relative
    /// to the first directory; a template that renders to nothing does not apply.
    pub fn render_dirs(
        &self,
        dirs: &[&str],
        ctx: &tera::Context,
    ) -> Result<BTreeMap<String, String>> {
        let mut chosen: BTreeMap<String, String> = BTreeMap::new();
        for dir in dirs {
            for (rel, t) in self.set.under(dir) {
                chosen.insert(
                    rel.trim_end_matches(TEMPLATE_SUFFIX).to_string(),
                    t.name.clone(),
                );
            }
        }
        let mut out = BTreeMap::new();
        for (rel, name) in chosen {
            let text = self.render(&name, ctx)?;
            if text.is_empty() && !rel.ends_with(".gitkeep") {
                continue;
            }
            out.insert(rel, text);
        }
        Ok(out)
    }
}

fn template_error(name: &str, origin: &Origin, err: tera::Error) -> Error {
    let mut e = Error::new(format!("version 1 template `{name}` failed")).source(err);
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
    tera.register_filter("quoted", |s: &str, _: tera::Kwargs, _: &tera::State| {
        serde_json::to_string(s).expect("strings serialise")
    });
    tera.register_filter(
        "shouty_case",
        |s: &str, _: tera::Kwargs, _: &tera::State| s.to_shouty_snake_case(),
    );
}
