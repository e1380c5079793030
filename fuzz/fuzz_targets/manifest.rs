//! services.toml, any bytes: loading, schema and semantic checks never panic.

#![no_main]

use std::collections::BTreeSet;
use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;
use msvc::check::manifest;
use msvc::manifest::Workspace;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut out = Vec::new();
    let (index, loaded) = manifest::load(text, &mut out);
    if let Some(loaded) = loaded {
        let ws = Workspace {
            root: PathBuf::from("/nonexistent"),
            manifest_path: PathBuf::from("/nonexistent/services.toml"),
            text: text.to_string(),
            manifest: loaded.manifest,
        };
        manifest::validate(&ws, &index, &loaded.broken, &mut out);
        let graph = msvc::commands::graph::Graph::new(&ws.manifest);
        let _ = msvc::commands::graph::mermaid(&graph);
        let _ = msvc::commands::graph::dot(&graph, &ws.manifest.workspace.name);
    }
    let _ = BTreeSet::<&str>::new();
    for d in &out {
        let paths = msvc::check::output::PathStyle::new(std::path::Path::new(""));
        let _ = msvc::check::output::render(d, &paths, true);
    }
    // The other commands' loader must refuse what it cannot use, never panic.
    let _ = Workspace::parse(std::path::Path::new("services.toml"), text);
});
