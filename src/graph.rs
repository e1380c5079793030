//! The system graph drawn: a mermaid flowchart, a Graphviz digraph, or JSON.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::workspace::graph::{EdgeKind, Node, NodeKind, SystemGraph};

/// `graph` as pretty JSON: its nodes, then its edges.
pub fn json(graph: &SystemGraph) -> String {
    let mut text = serde_json::to_string_pretty(graph).expect("plain data serialises");
    text.push('\n');
    text
}

/// An identifier per node, safe in mermaid and DOT and unique in the graph, in node order.
fn ids(graph: &SystemGraph) -> Vec<String> {
    let mut taken = BTreeSet::new();
    graph
        .nodes()
        .map(|n| {
            let stem = match n.kind {
                NodeKind::Queue => format!("q_{}", sanitize(&n.name)),
                NodeKind::Service(_) => sanitize(&n.name),
            };
            let mut id = stem.clone();
            let mut k = 2;
            while !taken.insert(id.clone()) {
                id = format!("{stem}_{k}");
                k += 1;
            }
            id
        })
        .collect()
}

fn sanitize(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if s.starts_with(|c: char| c.is_ascii_alphabetic()) {
        s
    } else {
        format!("n_{s}")
    }
}

fn node_label(n: &Node) -> String {
    match (n.kind, n.port) {
        (NodeKind::Queue, _) => n.name.clone(),
        (kind, Some(p)) => format!("{}\n{} :{p}", n.name, kind.as_str()),
        (kind, None) => format!("{}\n{}", n.name, kind.as_str()),
    }
}

/// A mermaid flowchart, left to right.
pub fn mermaid(g: &SystemGraph) -> String {
    use crate::workspace::Kind;
    let esc = |s: &str| s.replace('"', "#quot;").replace('\n', "<br/>");
    let ids = ids(g);
    let mut out = String::from("flowchart LR\n");
    for (n, id) in g.nodes().zip(&ids) {
        let label = esc(&node_label(n));
        let (open, close) = match n.kind {
            NodeKind::Service(Kind::Rest) => ("[\"", "\"]"),
            NodeKind::Service(Kind::Grpc) => ("([\"", "\"])"),
            NodeKind::Service(Kind::Worker) => ("[[\"", "\"]]"),
            NodeKind::Queue => ("[(\"", "\")]"),
            NodeKind::Service(Kind::Process) => ("[/\"", "\"/]"),
        };
        let _ = writeln!(out, "    {id}{open}{label}{close}");
    }
    for (from, to, e) in g.edges() {
        let arrow = match (e.kind, e.calls.is_empty()) {
            (EdgeKind::Publishes | EdgeKind::Consumes, _) => format!("-.->|{}|", e.kind.as_str()),
            (EdgeKind::Calls, _) | (_, false) => format!("-->|\"{}\"|", esc(&e.calls.join("\n"))),
            _ => "-->".to_string(),
        };
        let _ = writeln!(out, "    {} {arrow} {}", ids[from], ids[to]);
    }
    let kinds: BTreeSet<&str> = g.nodes().map(|n| n.kind.as_str()).collect();
    for (kind, style) in [
        ("rest", "fill:#e8f1fb,stroke:#3b7dd8"),
        ("grpc", "fill:#eaf7ea,stroke:#3c9a3c"),
        ("worker", "fill:#f6ecfb,stroke:#8e44ad"),
        ("process", "fill:#f2f2f2,stroke:#777"),
        ("queue", "fill:#fff6dd,stroke:#c99a06"),
    ] {
        if !kinds.contains(kind) {
            continue;
        }
        let members: Vec<&str> = g
            .nodes()
            .zip(&ids)
            .filter(|(n, _)| n.kind.as_str() == kind)
            .map(|(_, id)| id.as_str())
            .collect();
        let _ = writeln!(out, "    classDef {kind} {style}");
        let _ = writeln!(out, "    class {} {kind}", members.join(","));
    }
    out
}

/// A Graphviz digraph named `name`, left to right.
pub fn dot(g: &SystemGraph, name: &str) -> String {
    use crate::workspace::Kind;
    let q = |s: &str| {
        format!(
            "\"{}\"",
            s.replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n")
        )
    };
    let ids = ids(g);
    let mut out = format!(
        "digraph {} {{\n    rankdir=LR;\n    node [fontname=\"Helvetica\", fontsize=11];\n    edge [fontname=\"Helvetica\", fontsize=9];\n",
        q(name)
    );
    for (n, id) in g.nodes().zip(&ids) {
        let shape = match n.kind {
            NodeKind::Service(Kind::Rest) => "shape=box",
            NodeKind::Service(Kind::Grpc) => "shape=box, style=rounded",
            NodeKind::Service(Kind::Worker) => "shape=component",
            NodeKind::Queue => "shape=cylinder",
            NodeKind::Service(Kind::Process) => "shape=parallelogram",
        };
        let _ = writeln!(out, "    {} [label={}, {shape}];", q(id), q(&node_label(n)));
    }
    for (from, to, e) in g.edges() {
        let attrs = match e.kind {
            EdgeKind::Publishes | EdgeKind::Consumes => {
                format!(" [style=dashed, label={}]", q(e.kind.as_str()))
            }
            _ if !e.calls.is_empty() => format!(
                " [label={}{}]",
                q(&e.calls.join("\n")),
                if e.kind == EdgeKind::Calls {
                    ", style=dotted"
                } else {
                    ""
                }
            ),
            _ => String::new(),
        };
        let _ = writeln!(out, "    {} -> {}{attrs};", q(&ids[from]), q(&ids[to]));
    }
    out.push_str("}\n");
    out
}
