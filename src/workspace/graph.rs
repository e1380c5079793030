//! The system as a graph (petgraph): services and queues, and who depends on, calls,
//! publishes to and consumes what; and the dependency graph alone, whose cycles
//! validation reports and whose order `msvc up` starts services in.

use std::collections::{BTreeMap, HashMap};

use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::{Control, DfsEvent, EdgeRef as _, depth_first_search};
use serde::ser::{Serialize, SerializeStruct as _, Serializer};

use super::model::{Kind, Manifest};

/// A node: a service (of a kind) or a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    Service(Kind),
    Queue,
}

impl NodeKind {
    /// `rest`, `grpc`, `worker`, `process` or `queue`.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Service(kind) => kind.as_str(),
            NodeKind::Queue => "queue",
        }
    }
}

impl Serialize for NodeKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Node {
    /// The service or queue name.
    pub name: String,
    pub kind: NodeKind,
    /// The main port; workers have none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EdgeKind {
    /// A `depends_on` entry (labelled with the calls made over it).
    DependsOn,
    /// Calls to a peer that is not a dependency.
    Calls,
    /// Service to queue.
    Publishes,
    /// Queue to service.
    Consumes,
}

impl EdgeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EdgeKind::DependsOn => "depends_on",
            EdgeKind::Calls => "calls",
            EdgeKind::Publishes => "publishes",
            EdgeKind::Consumes => "consumes",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Edge {
    pub kind: EdgeKind,
    /// The RPCs or routes called over this edge.
    pub calls: Vec<String>,
}

/// Services (in name order), then queues (in name order), and the edges between them
/// in the manifest's order, service by service.
#[derive(Debug, Clone)]
pub struct SystemGraph {
    graph: DiGraph<Node, Edge>,
}

impl SystemGraph {
    /// The graph of a manifest, valid or not: relations to services it does not declare
    /// are left out, so that a broken manifest can still be drawn.
    pub fn new(m: &Manifest) -> Self {
        let mut graph = DiGraph::new();
        let mut services = HashMap::new();
        for (name, svc) in &m.services {
            let node = graph.add_node(Node {
                name: name.clone(),
                kind: NodeKind::Service(svc.kind),
                port: if svc.kind == Kind::Worker {
                    None
                } else {
                    svc.port
                },
            });
            services.insert(name.as_str(), node);
        }
        let mut queues = HashMap::new();
        for q in m.queues() {
            let node = graph.add_node(Node {
                name: q.clone(),
                kind: NodeKind::Queue,
                port: None,
            });
            queues.insert(q, node);
        }
        let edge = |kind, calls| Edge { kind, calls };
        for (name, svc) in &m.services {
            let from = services[name.as_str()];
            // The calls made to each peer, as the label of the edge to it.
            let mut calls: BTreeMap<&str, Vec<String>> = BTreeMap::new();
            for c in &svc.calls {
                if let Some((peer, target)) = c.split_once('/') {
                    calls.entry(peer).or_default().push(target.to_string());
                }
            }
            for dep in &svc.depends_on {
                if let Some(&to) = services.get(dep.as_str()) {
                    let made = calls.remove(dep.as_str()).unwrap_or_default();
                    graph.add_edge(from, to, edge(EdgeKind::DependsOn, made));
                }
            }
            for (peer, targets) in calls {
                if let Some(&to) = services.get(peer) {
                    graph.add_edge(from, to, edge(EdgeKind::Calls, targets));
                }
            }
            for q in &svc.publishes {
                graph.add_edge(from, queues[q], edge(EdgeKind::Publishes, Vec::new()));
            }
            for q in &svc.consumes {
                graph.add_edge(queues[q], from, edge(EdgeKind::Consumes, Vec::new()));
            }
        }
        Self { graph }
    }

    /// Every node, services first; a node's position here is its index in [`Self::edges`].
    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.graph.node_weights()
    }

    /// Every edge, as the positions of its ends in [`Self::nodes`], in the manifest's order.
    pub fn edges(&self) -> impl Iterator<Item = (usize, usize, &Edge)> {
        self.graph
            .edge_references()
            .map(|e| (e.source().index(), e.target().index(), e.weight()))
    }
}

/// The JSON of `msvc graph --format json`: nodes, then edges naming their ends.
impl Serialize for SystemGraph {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(serde::Serialize)]
        struct EdgeJson<'a> {
            from: &'a str,
            to: &'a str,
            kind: EdgeKind,
            #[serde(skip_serializing_if = "<[String]>::is_empty")]
            calls: &'a [String],
        }
        let nodes: Vec<&Node> = self.nodes().collect();
        let edges: Vec<EdgeJson> = self
            .edges()
            .map(|(from, to, e)| EdgeJson {
                from: &nodes[from].name,
                to: &nodes[to].name,
                kind: e.kind,
                calls: &e.calls,
            })
            .collect();
        let mut out = s.serialize_struct("Graph", 2)?;
        out.serialize_field("nodes", &nodes)?;
        out.serialize_field("edges", &edges)?;
        out.end()
    }
}

/// Who depends on whom: an edge from each service to each of its `depends_on`.
#[derive(Debug, Clone)]
pub struct Dependencies {
    graph: DiGraph<Dependency, ()>,
}

#[derive(Debug, Clone)]
struct Dependency {
    name: String,
    /// False for a name only found in a `depends_on` list (validation reports those).
    declared: bool,
}

impl Dependencies {
    pub fn of(m: &Manifest) -> Self {
        Self::new(
            m.services
                .iter()
                .map(|(name, svc)| (name.as_str(), svc.depends_on.as_slice())),
        )
    }

    /// From each service and its dependencies, in the order they are declared.
    pub fn new<'a>(services: impl IntoIterator<Item = (&'a str, &'a [String])>) -> Self {
        let services: Vec<(&str, &[String])> = services.into_iter().collect();
        let mut graph = DiGraph::new();
        let mut index: HashMap<&str, NodeIndex> = HashMap::new();
        for (name, _) in &services {
            let node = graph.add_node(Dependency {
                name: (*name).to_string(),
                declared: true,
            });
            index.insert(name, node);
        }
        for (name, deps) in &services {
            // petgraph lists a node's neighbours newest first: adding them in reverse
            // makes a search follow `depends_on` in the manifest's order, so the cycle
            // reported is the one a reader finds first.
            for dep in deps.iter().rev() {
                let to = *index.entry(dep.as_str()).or_insert_with(|| {
                    graph.add_node(Dependency {
                        name: dep.clone(),
                        declared: false,
                    })
                });
                graph.add_edge(index[name], to, ());
            }
        }
        Self { graph }
    }

    /// The declared services, in name order.
    fn services(&self) -> Vec<NodeIndex> {
        let mut nodes: Vec<NodeIndex> = self
            .graph
            .node_indices()
            .filter(|&n| self.graph[n].declared)
            .collect();
        nodes.sort_by(|a, b| self.graph[*a].name.cmp(&self.graph[*b].name));
        nodes
    }

    /// The first dependency cycle met by a depth-first search from each service in name
    /// order, as the services around it (the first repeated last). A service that
    /// depends on itself is no cycle here: validation reports it on its own.
    pub fn cycle(&self) -> Option<Vec<String>> {
        let mut parent: HashMap<NodeIndex, NodeIndex> = HashMap::new();
        let found = depth_first_search(&self.graph, self.services(), |event| match event {
            DfsEvent::TreeEdge(u, v) => {
                parent.insert(v, u);
                Control::Continue
            }
            DfsEvent::BackEdge(u, v) if u != v => Control::Break((u, v)),
            _ => Control::Continue,
        });
        let (last, first) = found.break_value()?;
        let mut around = vec![last];
        let mut node = last;
        while node != first {
            node = parent[&node];
            around.push(node);
        }
        around.reverse();
        around.push(first);
        Some(
            around
                .into_iter()
                .map(|n| self.graph[n].name.clone())
                .collect(),
        )
    }

    /// The order to start services in: each after everything it depends on, those
    /// with the shortest chain of dependencies first, ties in name order, so that the
    /// order is stable. Services in or behind a cycle (or behind an undeclared
    /// dependency), which validation refuses, come last in name order.
    pub fn start_order(&self) -> Vec<String> {
        // Strongly connected components come dependencies first (petgraph returns them
        // in reverse topological order of the edges, which point at dependencies).
        let mut depth: HashMap<NodeIndex, Option<usize>> = HashMap::new();
        for component in petgraph::algo::tarjan_scc(&self.graph) {
            let cyclic = component.len() > 1
                || component
                    .iter()
                    .any(|&n| self.graph.contains_edge(n, n) || !self.graph[n].declared);
            let deps = component.iter().flat_map(|&n| {
                self.graph
                    .neighbors_directed(n, Direction::Outgoing)
                    .filter(|d| !component.contains(d))
            });
            let mut level = Some(0);
            if cyclic {
                level = None;
            } else {
                for d in deps {
                    level = level.zip(depth[&d]).map(|(l, d)| l.max(d + 1));
                }
            }
            for &n in &component {
                depth.insert(n, level);
            }
        }
        let mut order: Vec<(usize, &str)> = self
            .services()
            .into_iter()
            .map(|n| (depth[&n].unwrap_or(usize::MAX), self.graph[n].name.as_str()))
            .collect();
        order.sort_unstable();
        order
            .into_iter()
            .map(|(_, name)| name.to_string())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn deps(pairs: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.iter().map(ToString::to_string).collect()))
            .collect()
    }

    fn graph(map: &BTreeMap<String, Vec<String>>) -> Dependencies {
        Dependencies::new(map.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
    }

    #[test]
    fn the_first_cycle_in_manifest_order() {
        let map = deps(&[
            ("a", &["b"]),
            ("b", &["x", "c", "a"]),
            ("c", &["b"]),
            ("x", &[]),
        ]);
        assert_eq!(
            graph(&map).cycle().unwrap(),
            ["b", "c", "b"].map(String::from)
        );
        let map = deps(&[("a", &["a"]), ("b", &["c"]), ("c", &[])]);
        assert_eq!(graph(&map).cycle(), None);
    }

    #[test]
    fn dependencies_first_then_names() {
        let map = deps(&[
            ("a-api", &["z-service"]),
            ("b-front", &["a-api"]),
            ("z-service", &[]),
            ("c-worker", &[]),
            ("d", &["d"]),
            ("e", &["nowhere"]),
        ]);
        assert_eq!(
            graph(&map).start_order(),
            ["c-worker", "z-service", "a-api", "b-front", "d", "e"]
        );
    }

    /// The search msvc used before the graph: the cycle it reports is the message users
    /// know, so the graph's must be the same one.
    fn old_cycle(map: &BTreeMap<String, Vec<String>>) -> Option<Vec<String>> {
        fn visit<'a>(
            node: &'a str,
            map: &'a BTreeMap<String, Vec<String>>,
            stack: &mut Vec<&'a str>,
            done: &mut BTreeSet<&'a str>,
        ) -> Option<Vec<String>> {
            if let Some(pos) = stack.iter().position(|n| *n == node) {
                let mut cycle: Vec<String> = stack[pos..].iter().map(ToString::to_string).collect();
                cycle.push(node.to_string());
                return Some(cycle);
            }
            if done.contains(node) {
                return None;
            }
            stack.push(node);
            for dep in map.get(node).into_iter().flatten() {
                if dep != node
                    && let Some(c) = visit(dep, map, stack, done)
                {
                    return Some(c);
                }
            }
            stack.pop();
            done.insert(node);
            None
        }
        let mut done = BTreeSet::new();
        map.keys()
            .find_map(|name| visit(name, map, &mut Vec::new(), &mut done))
    }

    /// The order `msvc up` used before the graph: Kahn's algorithm in waves.
    fn old_order(map: &BTreeMap<String, Vec<String>>) -> Vec<String> {
        let mut order = Vec::new();
        let mut done: BTreeSet<&str> = BTreeSet::new();
        while order.len() < map.len() {
            let ready: Vec<&String> = map
                .iter()
                .filter(|(n, d)| {
                    !done.contains(n.as_str()) && d.iter().all(|d| done.contains(d.as_str()))
                })
                .map(|(n, _)| n)
                .collect();
            if ready.is_empty() {
                order.extend(map.keys().filter(|n| !done.contains(n.as_str())).cloned());
                break;
            }
            for n in ready {
                done.insert(n);
                order.push(n.clone());
            }
        }
        order
    }

    #[test]
    fn same_cycles_and_order_as_before_on_random_graphs() {
        let names = ["a", "b", "c", "d", "e", "f", "g"];
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..3000 {
            let n = rng.usize(1..=names.len());
            let map: BTreeMap<String, Vec<String>> = names[..n]
                .iter()
                .map(|name| {
                    let k = rng.usize(0..=3);
                    let deps = (0..k)
                        .map(|_| names[rng.usize(0..names.len())].to_string())
                        .collect();
                    (name.to_string(), deps)
                })
                .collect();
            let g = graph(&map);
            assert_eq!(g.cycle(), old_cycle(&map), "{map:?}");
            assert_eq!(g.start_order(), old_order(&map), "{map:?}");
        }
    }
}
