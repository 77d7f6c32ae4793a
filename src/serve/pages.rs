//! The pages, from templates checked at compile time (src/serve/templates/), every value
//! escaped for HTML unless a template says otherwise (only the page's own style is).

use std::collections::HashMap;

use askama::Template;

use super::board::Snapshot;
use super::graph::{self, class_of, Graph};
use super::runs::{Run, SavedPlan, Summary};
use crate::safety::backup::BackupRecord;

pub struct ProbeView {
    pub name: String,
    pub host: String,
    pub mark: &'static str,
    pub class: &'static str,
    pub evidence: String,
    pub suggest: Option<String>,
}

pub struct GateView {
    pub name: String,
    pub status: &'static str,
    pub class: &'static str,
    pub blocked_by: Option<String>,
    pub passed: usize,
    pub probes: Vec<ProbeView>,
}

pub struct FirstBlocked {
    pub name: String,
    pub suggest: Option<String>,
}

/// The board's live part: what a gate pass changes.
pub struct BoardView {
    pub result: String,
    pub class: &'static str,
    pub checked: String,
    pub passes: u64,
    pub plan: String,
    pub first: Option<FirstBlocked>,
    pub graph: Graph,
    pub box_w: u32,
    pub box_h: u32,
    pub gates: Vec<GateView>,
    /// Condition, phase, its status (text), its class.
    pub automation: Vec<(String, String, &'static str, &'static str)>,
    pub freeze: Option<String>,
}

fn view(s: &Snapshot) -> BoardView {
    let mut status: HashMap<String, &'static str> = HashMap::new();
    let mut gates = Vec::new();
    let (mut result, mut checked, mut first) = ("not checked yet".to_string(), "the first gate pass is running".to_string(), None);
    if let Some(r) = &s.report {
        for g in &r.gates {
            status.insert(g.name.clone(), g.status.as_str());
            gates.push(GateView {
                name: g.name.clone(),
                status: g.status.as_str(),
                class: class_of(g.status.as_str()),
                blocked_by: g.blocked_by.clone(),
                passed: g.probes.iter().filter(|p| p.ok).count(),
                probes: g
                    .probes
                    .iter()
                    .map(|p| ProbeView {
                        name: p.name.clone(),
                        host: p.host.clone().unwrap_or_default(),
                        mark: if p.ok { "ok" } else if p.required { "FAIL" } else { "warn" },
                        class: if p.ok { "pass" } else if p.required { "blocked" } else { "warn" },
                        evidence: p.evidence.clone(),
                        suggest: p.suggest.clone().filter(|_| !p.ok),
                    })
                    .collect(),
            });
        }
        result = format!("{}: PASS {} WARN {} BLOCKED {}", r.result, r.pass, r.warn, r.blocked);
        checked = format!("checked {} ({:.1} s)", chrono::DateTime::from_timestamp(r.at, 0).map(|t| t.to_rfc3339()).unwrap_or_default(), r.seconds);
        first = r.first_blocked.as_ref().map(|f| FirstBlocked { name: f.clone(), suggest: r.gates.iter().find(|g| &g.name == f).and_then(|g| g.probes.iter().filter(|p| !p.ok).find_map(|p| p.suggest.clone())) });
    }
    let class = match s.report.as_ref().map(|r| r.result.as_str()) {
        Some("GREEN") => "pass",
        Some("DEGRADED") => "warn",
        Some(_) => "blocked",
        None => "unknown",
    };
    let graph = graph::layout(&s.phases, &status, first.as_ref().map(|f: &FirstBlocked| f.name.as_str()));
    let automation = s
        .automation
        .iter()
        .map(|(n, p)| {
            let st = status.get(p).copied().unwrap_or("not checked yet");
            (n.clone(), p.clone(), st, class_of(st))
        })
        .collect();
    let plan = match s.max_attempts {
        Some(m) => format!("a gate pass every {} s, {m} at most", s.interval),
        None => format!("a gate pass every {} s", s.interval),
    };
    BoardView { result, class, checked, passes: s.passes, plan, first, graph, box_w: graph::BOX_W, box_h: graph::BOX_H, gates, automation, freeze: s.freeze.clone() }
}

#[derive(Template)]
#[template(path = "board.html")]
struct BoardPage<'a> {
    title: &'a str,
    baseline: &'a str,
    v: BoardView,
}

#[derive(Template)]
#[template(path = "board_live.html")]
struct BoardLive {
    v: BoardView,
}

pub fn board(s: &Snapshot) -> Result<String, askama::Error> {
    BoardPage { title: "Board", baseline: &s.baseline, v: view(s) }.render()
}

pub fn board_live(s: &Snapshot) -> Result<String, askama::Error> {
    BoardLive { v: view(s) }.render()
}

#[derive(Template)]
#[template(path = "runs.html")]
struct RunsPage<'a> {
    title: &'a str,
    runs: &'a [Summary],
}

pub fn runs(list: &[Summary]) -> Result<String, askama::Error> {
    RunsPage { title: "Runs", runs: list }.render()
}

#[derive(Template)]
#[template(path = "run.html")]
struct RunPage<'a> {
    title: &'a str,
    run: &'a Run,
}

#[derive(Template)]
#[template(path = "run_live.html")]
struct RunLive<'a> {
    run: &'a Run,
}

#[derive(Template)]
#[template(path = "run_file.html")]
struct RunFile<'a> {
    run: &'a Run,
    css: &'a str,
}

pub fn run(r: &Run) -> Result<String, askama::Error> {
    RunPage { title: "Run", run: r }.render()
}

pub fn run_live(r: &Run) -> Result<String, askama::Error> {
    RunLive { run: r }.render()
}

/// The run as one page for the incident record: its style inside, no script.
pub fn run_file(r: &Run) -> Result<String, askama::Error> {
    RunFile { run: r, css: include_str!("assets/app.css") }.render()
}

pub struct BackupView {
    pub r: BackupRecord,
    pub size: String,
    pub restore: String,
}

#[derive(Template)]
#[template(path = "backups.html")]
struct BackupsPage<'a> {
    title: &'a str,
    backups: Vec<BackupView>,
}

pub fn backups(list: &[BackupRecord]) -> Result<String, askama::Error> {
    let backups = list
        .iter()
        .rev()
        .map(|r| BackupView { size: crate::plan::human_bytes(r.bytes), restore: format!("recover backups restore {} --dry-run", r.id), r: r.clone() })
        .collect();
    BackupsPage { title: "Backups", backups }.render()
}

#[derive(Template)]
#[template(path = "plans.html")]
struct PlansPage<'a> {
    title: &'a str,
    plans: &'a [SavedPlan],
    /// Signed in: the approver's name and the session's CSRF token.
    who: Option<(&'a str, &'a str)>,
    note: Option<&'a str>,
}

pub fn plans(list: &[SavedPlan], session: Option<&super::auth::Session>, note: Option<&str>) -> Result<String, askama::Error> {
    PlansPage { title: "Plans", plans: list, who: session.map(|s| (s.name.as_str(), s.csrf.as_str())), note }.render()
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    title: &'a str,
    error: Option<&'a str>,
}

pub fn login(error: Option<&str>) -> Result<String, askama::Error> {
    LoginPage { title: "Sign in", error }.render()
}

#[derive(Template)]
#[template(path = "refused.html")]
struct RefusedPage<'a> {
    title: &'a str,
    why: &'a str,
}

pub fn refused(why: &str) -> Result<String, askama::Error> {
    RefusedPage { title: "Refused", why }.render()
}

#[derive(Template)]
#[template(path = "not_found.html")]
struct NotFound<'a> {
    title: &'a str,
}

pub fn not_found() -> Result<String, askama::Error> {
    NotFound { title: "Not found" }.render()
}
