//! `msvc graph`: the system as a graph of services and queues, in mermaid, DOT or JSON.

use std::path::Path;

use crate::cli::Format;
use crate::error::Result;
use crate::graph;
use crate::printer::Printer;
use crate::workspace::Workspace;
use crate::workspace::graph::SystemGraph;

pub fn run(cwd: &Path, printer: &Printer) -> Result<i32> {
    let root = Workspace::find(cwd)?;
    // A picture is useful even of a manifest that does not validate (a cycle, say).
    let ws = Workspace::load_unchecked(&root)?;
    let system = SystemGraph::new(&ws.manifest);
    let text = match printer.format {
        Format::Dot => graph::dot(&system, &ws.manifest.workspace.name),
        Format::Json => graph::json(&system),
        _ => graph::mermaid(&system),
    };
    printer.write(&text);
    Ok(0)
}
