//! `msvc templates`: export or list the template set.

use std::path::Path;

use crate::cli::TemplatesCommand;
use crate::error::Result;
use crate::printer::Printer;
use crate::render::templates::{self, TemplateSet};

pub fn run(cwd: &Path, cmd: &TemplatesCommand, printer: &Printer) -> Result<i32> {
    match cmd {
        TemplatesCommand::Export { dir, force, .. } => {
            let dir = cwd.join(dir);
            let written = templates::export(&dir, *force)?;
            printer.json(&serde_json::json!({ "dir": dir, "files": written }));
            printer.status(
                "Exported",
                &format!("{} templates to {}", written.len(), dir.display()),
            );
            printer.line(&format!(
                "\nUse them in a workspace: add `templates = \"{}\"` to [workspace] in services.toml.\nDelete the files you do not change, so they keep following msvc's.",
                dir.display()
            ));
        }
        TemplatesCommand::List(_) => {
            let set = TemplateSet::embedded();
            let names: Vec<&str> = set.iter().map(|t| t.name.as_str()).collect();
            printer.json(&names);
            for n in names {
                printer.line(n);
            }
        }
    }
    Ok(0)
}
