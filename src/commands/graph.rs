//! `msvc graph`: the system as a graph of services and queues, in mermaid, DOT or JSON.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::cli::Format;
use crate::error::Result;
use crate::printer::Printer;
use crate::workspace::Workspace;
use crate::workspace::model::{Kind, Manifest};

pub fn run(cwd: &Path, printer: &Printer) -> Result<i32> {
    let root = Workspace::find(cwd)?;
    // A picture is useful even of a manifest that does not validate (a cycle, say).
    let ws = Workspace::load_unchecked(&root)?;
    let graph = Graph::new(&ws.manifest);
    let text = match printer.format {
        Format::Dot => dot(&graph, &ws.manifest.workspace.name),
        Format::Json => {
            let mut t = serde_json::to_string_pretty(&graph).expect("plain data serialises");
            t.push('\n');
            t
        }
        _ => mermaid(&graph),
    };
    let mut stdout = anstream::stdout();
    let _ = stdout.write_all(text.as_bytes());
    Ok(0)
}

/// Services and queues, and the edges between them.
#[derive(Debug, Serialize)]
pub struct Graph {
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
}

#[derive(Debug, Serialize)]
pub struct Node {
    /// The service or queue name.
    pub name: String,
    /// `rest`, `grpc`, `worker`, `process` or `queue`.
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// An identifier safe in mermaid and DOT, unique in the graph.
    #[serde(skip)]
    id: String,
}

#[derive(Debug, Serialize)]
pub struct Edge {
    pub from: String,
    pub to: String,
    /// `depends_on`, `calls` (a call to a peer that is not a dependency), `publishes`, `consumes`.
    pub kind: &'static str,
    /// The RPCs or routes called over this edge.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub calls: Vec<String>,
}

impl Graph {
    pub fn new(m: &Manifest) -> Self {
        let mut ids = BTreeSet::new();
        let mut unique = |stem: String| {
            let mut id = stem.clone();
            let mut n = 2;
            while !ids.insert(id.clone()) {
                id = format!("{stem}_{n}");
                n += 1;
            }
            id
        };
        let mut nodes = Vec::new();
        for (name, svc) in &m.services {
            nodes.push(Node {
                id: unique(sanitize(name)),
                name: name.clone(),
                kind: svc.kind.as_str(),
                port: if svc.kind == Kind::Worker {
                    None
                } else {
                    svc.port
                },
            });
        }
        for q in m.queues() {
            nodes.push(Node {
                id: unique(format!("q_{}", sanitize(&q))),
                name: q,
                kind: "queue",
                port: None,
            });
        }
        let mut edges = Vec::new();
        for (name, svc) in &m.services {
            // The calls made to each peer, as the label of the edge to it.
            let mut calls: BTreeMap<&str, Vec<String>> = BTreeMap::new();
            for c in &svc.calls {
                if let Some((peer, target)) = c.split_once('/') {
                    calls.entry(peer).or_default().push(target.to_string());
                }
            }
            for dep in &svc.depends_on {
                if m.services.contains_key(dep) {
                    edges.push(Edge {
                        from: name.clone(),
                        to: dep.clone(),
                        kind: "depends_on",
                        calls: calls.remove(dep.as_str()).unwrap_or_default(),
                    });
                }
            }
            for (peer, targets) in calls {
                if m.services.contains_key(peer) {
                    edges.push(Edge {
                        from: name.clone(),
                        to: peer.to_string(),
                        kind: "calls",
                        calls: targets,
                    });
                }
            }
            for q in &svc.publishes {
                edges.push(Edge {
                    from: name.clone(),
                    to: q.clone(),
                    kind: "publishes",
                    calls: Vec::new(),
                });
            }
            for q in &svc.consumes {
                edges.push(Edge {
                    from: q.clone(),
                    to: name.clone(),
                    kind: "consumes",
                    calls: Vec::new(),
                });
            }
        }
        Self { nodes, edges }
    }

    /// The node id of a service (`from`/`to` of a service edge) or of a queue.
    fn id(&self, name: &str, queue: bool) -> &str {
        self.nodes
            .iter()
            .find(|n| n.name == name && (n.kind == "queue") == queue)
            .map_or("unknown", |n| n.id.as_str())
    }
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
        ("queue", _) => n.name.clone(),
        (kind, Some(p)) => format!("{}\n{kind} :{p}", n.name),
        (kind, None) => format!("{}\n{kind}", n.name),
    }
}

/// A mermaid flowchart, left to right.
pub fn mermaid(g: &Graph) -> String {
    let esc = |s: &str| s.replace('"', "#quot;").replace('\n', "<br/>");
    let mut out = String::from("flowchart LR\n");
    for n in &g.nodes {
        let label = esc(&node_label(n));
        let (open, close) = match n.kind {
            "rest" => ("[\"", "\"]"),
            "grpc" => ("([\"", "\"])"),
            "worker" => ("[[\"", "\"]]"),
            "queue" => ("[(\"", "\")]"),
            _ => ("[/\"", "\"/]"),
        };
        let _ = writeln!(out, "    {}{open}{label}{close}", n.id);
    }
    for e in &g.edges {
        let (from, to) = match e.kind {
            "publishes" => (g.id(&e.from, false), g.id(&e.to, true)),
            "consumes" => (g.id(&e.from, true), g.id(&e.to, false)),
            _ => (g.id(&e.from, false), g.id(&e.to, false)),
        };
        let arrow = match (e.kind, e.calls.is_empty()) {
            ("publishes" | "consumes", _) => format!("-.->|{}|", e.kind),
            ("calls", _) | (_, false) => format!("-->|\"{}\"|", esc(&e.calls.join("\n"))),
            _ => "-->".to_string(),
        };
        let _ = writeln!(out, "    {from} {arrow} {to}");
    }
    let kinds: BTreeSet<&str> = g.nodes.iter().map(|n| n.kind).collect();
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
            .nodes
            .iter()
            .filter(|n| n.kind == kind)
            .map(|n| n.id.as_str())
            .collect();
        let _ = writeln!(out, "    classDef {kind} {style}");
        let _ = writeln!(out, "    class {} {kind}", members.join(","));
    }
    out
}

/// A Graphviz digraph, left to right.
pub fn dot(g: &Graph, name: &str) -> String {
    let q = |s: &str| {
        format!(
            "\"{}\"",
            s.replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n")
        )
    };
    let mut out = format!(
        "digraph {} {{\n    rankdir=LR;\n    node [fontname=\"Helvetica\", fontsize=11];\n    edge [fontname=\"Helvetica\", fontsize=9];\n",
        q(name)
    );
    for n in &g.nodes {
        let shape = match n.kind {
            "rest" => "shape=box",
            "grpc" => "shape=box, style=rounded",
            "worker" => "shape=component",
            "queue" => "shape=cylinder",
            _ => "shape=parallelogram",
        };
        let _ = writeln!(
            out,
            "    {} [label={}, {shape}];",
            q(&n.id),
            q(&node_label(n))
        );
    }
    for e in &g.edges {
        let (from, to) = match e.kind {
            "publishes" => (g.id(&e.from, false), g.id(&e.to, true)),
            "consumes" => (g.id(&e.from, true), g.id(&e.to, false)),
            _ => (g.id(&e.from, false), g.id(&e.to, false)),
        };
        let attrs = match e.kind {
            "publishes" | "consumes" => format!(" [style=dashed, label={}]", q(e.kind)),
            _ if !e.calls.is_empty() => format!(
                " [label={}{}]",
                q(&e.calls.join("\n")),
                if e.kind == "calls" {
                    ", style=dotted"
                } else {
                    ""
                }
            ),
            _ => String::new(),
        };
        let _ = writeln!(out, "    {} -> {}{attrs};", q(from), q(to));
    }
    out.push_str("}\n");
    out
}
