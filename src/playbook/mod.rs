//! The playbook model: plays of tasks, as close to Ansible's as the SOP's
//! playbooks need, each task with the source spans of its parts so that every
//! load error and every template error names `file:line:col`.

mod check;
mod loader;

use std::path::PathBuf;

use serde_json::Value as Json;

use crate::error::Span;
use crate::template::Vars;

pub use check::check_undefined;
pub use loader::load;
pub use loader::is_identifier;
pub(crate) use loader::closest as closest_name;

/// A loaded playbook file.
#[derive(Clone, Debug)]
pub struct Playbook {
    pub path: PathBuf,
    pub plays: Vec<Play>,
}

impl Playbook {
    /// The first play's description (or name), for `recover list`.
    pub fn description(&self) -> String {
        self.plays.first().map(|p| p.description.clone().unwrap_or_else(|| p.name.clone())).unwrap_or_default()
    }
    /// The folder the playbook is in (`playbook_dir`).
    pub fn dir(&self) -> PathBuf {
        self.path.parent().map(|p| p.to_path_buf()).unwrap_or_default()
    }
}

/// `serial:` batches: a count or a percentage of the play's hosts.
#[derive(Clone, Debug, PartialEq)]
pub enum Serial {
    Count(usize),
    Percent(f64),
}

/// One play.
#[derive(Clone, Debug)]
pub struct Play {
    pub name: String,
    pub description: Option<String>,
    pub hosts: String,
    pub span: Span,
    pub vars: Vars,
    /// Role defaults: the lowest precedence of all variables.
    pub role_defaults: Vars,
    /// pre_tasks, role tasks, tasks and post_tasks, in the order they run.
    pub tasks: Vec<Task>,
    pub handlers: Vec<Task>,
    pub serial: Option<Serial>,
    pub max_fail_percentage: Option<f64>,
    pub r#become: Option<bool>,
    pub become_user: Option<String>,
    /// Default per-task timeout in seconds.
    pub timeout: Option<u64>,
}

/// A condition (`when`, `changed_when`, `failed_when`, `that`) and where it is written.
#[derive(Clone, Debug)]
pub struct Cond {
    pub expr: String,
    pub span: Span,
}

/// One task (or handler).
#[derive(Clone, Debug)]
pub struct Task {
    pub name: Option<String>,
    pub span: Span,
    pub module: String,
    pub module_span: Span,
    /// The module's arguments, unrendered.
    pub args: Json,
    /// Where each argument is written, for errors about it.
    pub arg_spans: Vec<(String, Span)>,
    pub when: Vec<Cond>,
    pub register: Option<String>,
    pub r#become: Option<bool>,
    pub become_user: Option<String>,
    pub loop_items: Option<(Json, Span)>,
    pub loop_var: String,
    pub changed_when: Vec<Cond>,
    pub failed_when: Vec<Cond>,
    pub ignore_errors: bool,
    pub notify: Vec<String>,
    pub listen: Vec<String>,
    pub tags: Vec<String>,
    /// The tags of each dynamic `include_tasks` this task came through: the include must be
    /// selected by `--tags`/`--skip-tags` too (its tags are not the task's own, as in Ansible).
    pub include_tags: Vec<Vec<String>>,
    /// A diagnostic: runs in dry-run too, and never counts as a change.
    pub read_only: bool,
    pub timeout: Option<u64>,
    pub vars: Vars,
    pub no_log: bool,
    /// The role this task came from, for `templates/` lookups.
    pub role_dir: Option<PathBuf>,
    /// `destructive:`: the author says this step changes data (a command such
    /// as `pg_resetwal`), which paths and services it touches, and its tier.
    pub declared: Option<Declared>,
}

/// A task's own `destructive:` declaration; paths are templates.
#[derive(Clone, Debug, Default)]
pub struct Declared {
    pub reason: Option<String>,
    pub paths: Vec<String>,
    pub services: Vec<String>,
    pub tier: Option<crate::safety::Tier>,
    /// The step preserves the data itself (e.g. renames the original aside).
    pub preserves: Option<String>,
}

/// ansible-core's `Taggable.evaluate_tags`: does a task with `tags` run under `--tags only`
/// (empty: `all`) and `--skip-tags skip`? A task without tags is `untagged`; `always` runs
/// unless skipped by name; `never` runs only when one of its tags is asked for.
pub fn tags_select(tags: &[String], only: &[String], skip: &[String]) -> bool {
    let untagged = vec!["untagged".to_string()];
    let tags: &[String] = if tags.is_empty() { &untagged } else { tags };
    let has = |t: &str| tags.iter().any(|x| x == t);
    let any_of = |list: &[String]| tags.iter().any(|t| list.contains(t));
    let is_untagged = tags == untagged.as_slice();
    let all = vec!["all".to_string()];
    let only: &[String] = if only.is_empty() { &all } else { only };
    let mut run = has("always")
        || (only.iter().any(|o| o == "all") && !has("never"))
        || any_of(only)
        || (only.iter().any(|o| o == "tagged") && !is_untagged && !has("never"));
    if run && !skip.is_empty() {
        if skip.iter().any(|s| s == "all") {
            if !has("always") || skip.iter().any(|s| s == "always") {
                run = false;
            }
        } else if any_of(skip) || (skip.iter().any(|s| s == "tagged") && !is_untagged) {
            run = false;
        }
    }
    run
}

impl Task {
    /// Whether `--tags`/`--skip-tags` select this task (and every include it came through).
    pub fn selected(&self, only: &[String], skip: &[String]) -> bool {
        tags_select(&self.tags, only, skip) && self.include_tags.iter().all(|t| tags_select(t, only, skip))
    }

    /// The name shown in output: the task's name, else `module: first argument`.
    pub fn display_name(&self) -> String {
        if let Some(n) = &self.name {
            return n.clone();
        }
        let first = match &self.args {
            Json::Object(m) => m.get("_raw_params").or_else(|| m.values().next()).map(|v| match v {
                Json::String(s) => s.clone(),
                other => other.to_string(),
            }),
            _ => None,
        };
        match first {
            Some(f) => format!("{} {}", self.module, f.chars().take(60).collect::<String>()),
            None => self.module.clone(),
        }
    }
    /// Where argument `name` is written (the task's module otherwise).
    pub fn arg_span(&self, name: &str) -> Span {
        self.arg_spans.iter().find(|(n, _)| n == name).map(|(_, s)| s.clone()).unwrap_or_else(|| self.module_span.clone())
    }
}

#[cfg(test)]
mod tests;
