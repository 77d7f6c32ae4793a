//! The baseline's phases as a dependency graph, laid out for a server-drawn SVG: each phase in
//! the column of its longest chain of `depends_on`, arrows from a dependency to what needs it.

use std::collections::HashMap;

/// A phase's box.
pub struct Node {
    pub name: String,
    /// PASS, WARN, BLOCKED or "not checked yet": the text in the box (colour is never the only sign).
    pub label: String,
    /// The CSS class of its colour.
    pub class: &'static str,
    pub first_blocked: bool,
    pub x: u32,
    pub y: u32,
}

pub struct Edge {
    pub x1: u32,
    pub y1: u32,
    pub x2: u32,
    pub y2: u32,
}

pub struct Graph {
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
    pub width: u32,
    pub height: u32,
}

/// The CSS class of a gate's status (PASS, WARN, BLOCKED; anything else is not checked yet).
pub fn class_of(status: &str) -> &'static str {
    match status {
        "PASS" => "pass",
        "WARN" => "warn",
        "BLOCKED" => "blocked",
        _ => "unknown",
    }
}

pub const BOX_W: u32 = 236;
pub const BOX_H: u32 = 46;
const COL: u32 = 280;
const ROW: u32 = 66;
const PAD: u32 = 10;

/// `phases`: name and dependencies, in the baseline's order; `status` of each checked phase;
/// `first`: the first blocked phase.
pub fn layout(phases: &[(String, Vec<String>)], status: &HashMap<String, &'static str>, first: Option<&str>) -> Graph {
    let index: HashMap<&str, usize> = phases.iter().enumerate().map(|(i, (n, _))| (n.as_str(), i)).collect();
    // Column: the longest chain of dependencies below a phase (a cycle stops at the baseline's size).
    let mut col: Vec<Option<u32>> = vec![None; phases.len()];
    fn depth(i: usize, phases: &[(String, Vec<String>)], index: &HashMap<&str, usize>, col: &mut Vec<Option<u32>>, seen: usize) -> u32 {
        if let Some(c) = col[i] {
            return c;
        }
        if seen > phases.len() {
            return 0;
        }
        let c = phases[i].1.iter().filter_map(|d| index.get(d.as_str())).map(|&d| depth(d, phases, index, col, seen + 1) + 1).max().unwrap_or(0);
        col[i] = Some(c);
        c
    }
    for i in 0..phases.len() {
        depth(i, phases, &index, &mut col, 0);
    }
    let mut rows: HashMap<u32, u32> = HashMap::new();
    let mut place = Vec::with_capacity(phases.len());
    for c in &col {
        let c = c.unwrap_or(0);
        let r = rows.entry(c).or_insert(0);
        place.push((PAD + c * COL, PAD + *r * ROW));
        *r += 1;
    }
    let nodes: Vec<Node> = phases
        .iter()
        .zip(&place)
        .map(|((name, _), &(x, y))| {
            let s = status.get(name).copied();
            Node {
                name: name.clone(),
                label: s.unwrap_or("not checked yet").to_string(),
                class: class_of(s.unwrap_or_default()),
                first_blocked: first == Some(name.as_str()),
                x,
                y,
            }
        })
        .collect();
    let mut edges = Vec::new();
    for (i, (_, deps)) in phases.iter().enumerate() {
        for d in deps {
            if let Some(&j) = index.get(d.as_str()) {
                let (from, to) = (place[j], place[i]);
                edges.push(Edge { x1: from.0 + BOX_W, y1: from.1 + BOX_H / 2, x2: to.0, y2: to.1 + BOX_H / 2 });
            }
        }
    }
    let width = place.iter().map(|p| p.0 + BOX_W + PAD).max().unwrap_or(BOX_W + 2 * PAD);
    let height = place.iter().map(|p| p.1 + BOX_H + PAD).max().unwrap_or(BOX_H + 2 * PAD);
    Graph { nodes, edges, width, height }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_phase_sits_right_of_everything_it_depends_on() {
        let p = |n: &str, d: &[&str]| (n.to_string(), d.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let phases = vec![p("net", &[]), p("storage", &["net"]), p("db", &["storage", "net"]), p("apps", &["db"]), p("loop", &["loop"])];
        let status = HashMap::from([("net".to_string(), "PASS"), ("db".to_string(), "BLOCKED")]);
        let g = layout(&phases, &status, Some("db"));
        let x = |n: &str| g.nodes.iter().find(|x| x.name == n).unwrap().x;
        assert!(x("net") < x("storage") && x("storage") < x("db") && x("db") < x("apps"));
        assert_eq!(g.edges.len(), 5);
        let db = g.nodes.iter().find(|x| x.name == "db").unwrap();
        assert!(db.first_blocked && db.class == "blocked" && db.label == "BLOCKED");
        assert_eq!(g.nodes.iter().find(|x| x.name == "apps").unwrap().label, "not checked yet");
        assert!(g.width >= x("apps") + BOX_W);
    }
}
