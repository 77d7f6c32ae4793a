//! The playbook model: plays of tasks, as close to Ansible's as the SOP's
//! playbooks need, each task with the source spans of its parts so that every
//! load error and every template error names `file:line:col`.

mod block;
mod catalog;
mod check;
mod fields;
mod include;
mod inherit;
mod keywords;
mod kv;
mod play;
mod role;
mod task;

use std::path::PathBuf;

use serde_json::Value as Json;

use crate::error::Span;
use crate::template::Vars;

pub use catalog::{find_src, find_src_kind, Catalog, Scope};

/// The modules whose ansible-core action plugin does not support `async`: a step of one with
/// `async:` fails, "This action (NAME) does not support async.", as in ansible-core.
pub const NO_ASYNC: &[&str] = &[
    "add_host", "assemble", "assert", "async_status", "copy", "debug", "fail", "fetch", "gather_facts", "group_by", "include_vars", "pause", "raw", "reboot",
    "script", "set_fact", "set_stats", "template", "unarchive", "validate_argument_spec", "wait_for_connection",
];
pub use check::{check_play, check_undefined};
pub use include::{Include, IncludeKind};
pub use inherit::{BecomeKw, Flag, Inherited};
pub use play::load;
pub use kv::{is_identifier, split_kv};
pub(crate) use block::{load_ctx, load_tasks_file};
pub(crate) use fields::closest as closest_name;
pub(crate) use include::find_tasks_file;
pub(crate) use role::load_role_dynamic;

/// A loaded playbook file.
#[derive(Clone, Debug)]
pub struct Playbook {
    pub path: PathBuf,
    pub plays: Vec<Play>,
    /// The modules it was loaded with: an include loaded as it runs names the same.
    pub catalog: &'static dyn Catalog,
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
    /// Batch sizes in turn, the last one repeated for the hosts left (`serial: [1, 5, "20%"]`).
    List(Vec<Serial>),
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
    /// The `vars/` of the roles of `roles:` and `import_role`: the play's tasks see them (above
    /// play vars and vars_files), as ansible-core exposes them unless roles are private.
    pub role_vars: Vars,
    /// pre_tasks, role tasks, tasks and post_tasks, in the order they run: a tree of tasks,
    /// blocks and dynamic includes (imports are resolved at load).
    pub tasks: Vec<Item>,
    pub handlers: Vec<Task>,
    pub serial: Option<Serial>,
    pub max_fail_percentage: Option<f64>,
    pub r#become: Option<bool>,
    pub become_user: Option<String>,
    /// The play's `become_method` / `become_flags` / `become_exe`: its hosts' connections'.
    pub become_kw: BecomeKw,
    /// Default per-task timeout in seconds.
    pub timeout: Option<u64>,
    /// `gather_facts:` as written (unset: on, as in Ansible).
    pub gather_facts: Option<bool>,
    pub gather_subset: Vec<String>,
    /// `gather_timeout` and `fact_path` of the play's fact gathering.
    pub gather_timeout: Option<u64>,
    pub fact_path: Option<String>,
    pub remote_user: Option<String>,
    /// `connection:` (`local`, or ssh).
    pub connection: Option<String>,
    pub force_handlers: bool,
    pub any_errors_fatal: bool,
    /// `vars_prompt`: variables asked of the operator when the play starts.
    pub vars_prompt: Vec<Prompt>,
    /// `port`: the ssh port of hosts whose variables name none (`ansible_port` wins).
    pub port: Option<u16>,
    /// `vars_files` whose names are templates (`vars/{{ ansible_os_family }}.yml`): each
    /// host's are found after its facts are gathered, in order (an entry's alternatives: the
    /// first that exists). Empty when every name is literal (those are read at load).
    pub vars_files: Vec<VarsFile>,
    /// The roles of `roles:`, by name (`role_names`).
    pub role_names: Vec<String>,
    /// The roles its roles depend on (`ansible_dependent_role_names`).
    pub dependent_role_names: Vec<String>,
    /// `order:` of its hosts (`inventory`, `reverse_inventory`, `sorted`, `reverse_sorted`,
    /// `shuffle`).
    pub order: Option<String>,
    /// `strategy:` `linear` (the default: hosts in step, task by task), `free` or
    /// `host_pinned` (each host at its own pace).
    pub strategy: Option<String>,
}

impl Play {
    /// Whether one host's failure can stop the others: `any_errors_fatal` on the play or on
    /// any block, task or include in it.
    pub fn any_errors_fatal_anywhere(&self) -> bool {
        fn items(list: &[Item]) -> bool {
            list.iter().any(|i| match i {
                Item::Task(t) => t.any_errors_fatal == Some(true),
                Item::Block(b) => items(&b.block) || items(&b.rescue) || items(&b.always),
                Item::Include(inc) => inc.inherit.any_errors_fatal == Some(true),
            })
        }
        self.any_errors_fatal || items(&self.tasks) || self.handlers.iter().any(|h| h.any_errors_fatal == Some(true))
    }
}

/// One `vars_files` entry of a play with templated names: its alternatives, the folder they
/// are relative to, and where it was written.
#[derive(Clone, Debug)]
pub struct VarsFile {
    pub names: Vec<String>,
    pub dir: std::path::PathBuf,
    pub span: Span,
}

/// One `vars_prompt` entry.
#[derive(Clone, Debug)]
pub struct Prompt {
    pub name: String,
    pub prompt: Option<String>,
    pub default: Option<Json>,
    /// Hidden input (the default, as in Ansible).
    pub private: bool,
    /// Asked twice; the two answers must match.
    pub confirm: bool,
    /// A `password_hash` scheme (`sha512_crypt`, ...) the answer is hashed with.
    pub encrypt: Option<String>,
    pub salt: Option<String>,
    pub salt_size: Option<u64>,
    pub span: Span,
}

/// One entry of a task list.
#[derive(Clone, Debug)]
pub enum Item {
    Task(Box<Task>),
    Block(Box<Block>),
    /// `include_tasks` / `include_role`: resolved per host when it is reached.
    Include(Box<Include>),
}

/// `block:` with its `rescue:` and `always:`. The block's keywords (`when`, `become`, `vars`,
/// `tags`, ...) are already on each task inside it, as Ansible inherits them.
#[derive(Clone, Debug)]
pub struct Block {
    pub name: Option<String>,
    pub span: Span,
    pub block: Vec<Item>,
    pub rescue: Vec<Item>,
    pub always: Vec<Item>,
}

/// Every task of `items`, in order, through blocks and preloaded includes.
pub fn walk<'a>(items: &'a [Item], out: &mut Vec<&'a Task>) {
    for i in items {
        match i {
            Item::Task(t) => out.push(t),
            Item::Block(b) => {
                walk(&b.block, out);
                walk(&b.rescue, out);
                walk(&b.always, out);
            }
            Item::Include(inc) => {
                if let Some(p) = &inc.preloaded {
                    walk(p, out);
                }
            }
        }
    }
}

/// Every task of `items`, mutably (blocks and preloaded includes too; an include's `inherit`
/// is given `f`'s view through `on_include`).
pub fn walk_mut(items: &mut [Item], f: &mut dyn FnMut(&mut Task), on_include: &mut dyn FnMut(&mut Include)) {
    for i in items {
        match i {
            Item::Task(t) => f(t),
            Item::Block(b) => {
                walk_mut(&mut b.block, f, on_include);
                walk_mut(&mut b.rescue, f, on_include);
                walk_mut(&mut b.always, f, on_include);
            }
            Item::Include(inc) => on_include(inc),
        }
    }
}

impl Play {
    /// Every task known at load, in order (a dynamic include's only when its file is fixed).
    pub fn all_tasks(&self) -> Vec<&Task> {
        let mut out = Vec::new();
        walk(&self.tasks, &mut out);
        out
    }
}

/// A condition (`when`, `changed_when`, `failed_when`, `that`) and where it is written.
#[derive(Clone, Debug)]
pub struct Cond {
    pub expr: String,
    pub span: Span,
}

/// A handler that is an `include_tasks` (see [`Task::handler_of`]).
#[derive(Debug)]
pub struct HandlerInclude {
    /// Its name and `listen` topics.
    pub names: Vec<String>,
    pub file: String,
    /// Its own `when`: false, the include is skipped (once) with all its tasks.
    pub when: Vec<Cond>,
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
    /// `become:` (a template is evaluated per host before the task runs).
    pub r#become: Option<Flag>,
    pub become_user: Option<String>,
    /// `become_method` / `become_flags` / `become_exe` (its own, else its block's and play's).
    pub become_kw: BecomeKw,
    pub loop_items: Option<(Json, Span)>,
    pub loop_var: String,
    pub changed_when: Vec<Cond>,
    pub failed_when: Vec<Cond>,
    /// `until:` with `retries` (default 3) and `delay` (default 5 s).
    pub until: Vec<Cond>,
    pub retries: Option<Json>,
    pub delay: Option<Json>,
    pub ignore_errors: Option<Flag>,
    pub ignore_unreachable: Option<bool>,
    pub any_errors_fatal: Option<bool>,
    /// `environment:` mappings, outermost first (play, block, role, task); templates.
    pub environment: Vec<(Json, Span)>,
    /// `module_defaults:` mappings of the play, blocks and task, outermost first.
    pub module_defaults: Vec<(Json, Span)>,
    pub remote_user: Option<String>,
    pub delegate_to: Option<String>,
    pub delegate_facts: bool,
    /// A task of a handler that is an `include_tasks`: it answers only that handler's name
    /// (and listen topics), as in ansible-core; the first of them shows the include
    /// (`included: FILE`) when the handler runs.
    pub handler_of: Option<std::sync::Arc<HandlerInclude>>,
    pub run_once: Option<Flag>,
    /// `check_mode: true` runs this task as a dry-run; `false` runs it for real under --check.
    pub check_mode: Option<Flag>,
    pub diff: Option<bool>,
    pub loop_control: LoopControl,
    /// Role defaults of an `include_role` (below the inventory, above the play's role defaults).
    pub defaults: Option<std::sync::Arc<Vars>>,
    pub notify: Vec<String>,
    pub listen: Vec<String>,
    pub tags: Vec<String>,
    /// A diagnostic: runs in dry-run too, and never counts as a change.
    pub read_only: bool,
    pub timeout: Option<u64>,
    /// `throttle` (the task's, its block's or its play's): hosts running it at once.
    pub throttle: Option<u64>,
    /// `async: N` with `poll` > 0: the step may run N seconds, then it fails as ansible-core's.
    pub async_secs: Option<u64>,
    /// `poll: 0` with `async`: the step starts its command in the background and goes on
    /// (`async_status` follows it); `command` and `shell` only.
    pub poll_zero: bool,
    /// The task's own `vars:` (and the parameters of the include it came through).
    pub vars: Vars,
    /// The vars of the blocks and role around it (role `vars/`, block `vars:`): below its own
    /// and below `set_fact`, as in Ansible's precedence.
    pub scope_vars: Vars,
    pub no_log: Option<Flag>,
    /// The role this task came from, for `templates/` lookups.
    pub role_dir: Option<PathBuf>,
    /// `destructive:`: the author says this step changes data (a command such
    /// as `pg_resetwal`), which paths and services it touches, and its tier.
    pub declared: Option<Declared>,
}

/// `loop_control:`.
#[derive(Clone, Debug, Default)]
pub struct LoopControl {
    pub label: Option<String>,
    pub index_var: Option<String>,
    pub extended: bool,
    pub pause: Option<f64>,
    /// `break_when`: the loop stops after an item for which these hold (with the item's
    /// result under the task's `register` name), as ansible-core 2.18+.
    pub break_when: Vec<Cond>,
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
    /// A task recover makes itself (`Gathering Facts`): no keywords, `args` as given.
    pub fn synthetic(name: &str, module: &str, args: Json, span: Span) -> Task {
        Task {
            name: Some(name.to_string()),
            span: span.clone(),
            module: module.to_string(),
            module_span: span,
            args,
            arg_spans: Vec::new(),
            when: Vec::new(),
            register: None,
            r#become: None,
            become_user: None,
            become_kw: BecomeKw::default(),
            loop_items: None,
            loop_var: "item".into(),
            changed_when: Vec::new(),
            failed_when: Vec::new(),
            until: Vec::new(),
            retries: None,
            delay: None,
            ignore_errors: None,
            ignore_unreachable: None,
            any_errors_fatal: None,
            environment: Vec::new(),
            module_defaults: Vec::new(),
            remote_user: None,
            delegate_to: None,
            delegate_facts: false,
            handler_of: None,
            run_once: None,
            check_mode: None,
            diff: None,
            loop_control: LoopControl::default(),
            defaults: None,
            notify: Vec::new(),
            listen: Vec::new(),
            tags: vec!["always".into()],
            read_only: true,
            timeout: None,
            throttle: None,
            async_secs: None,
            poll_zero: false,
            vars: Vars::new(),
            scope_vars: Vars::new(),
            no_log: None,
            role_dir: None,
            declared: None,
        }
    }
    /// `ignore_errors` once resolved (see [`Task::resolve_flags`]).
    pub fn ignores_errors(&self) -> bool {
        matches!(self.ignore_errors, Some(Flag::Fixed(true)))
    }
    /// `no_log` once resolved.
    pub fn hides(&self) -> bool {
        matches!(self.no_log, Some(Flag::Fixed(true)))
    }
    /// Whether a keyword of this task is a template to evaluate per host.
    pub fn has_templated_flags(&self) -> bool {
        [&self.ignore_errors, &self.no_log, &self.check_mode, &self.r#become, &self.run_once].iter().any(|f| matches!(f, Some(Flag::Expr(_))))
    }
    /// Whether a `notify:` of `n` reaches this handler: its name, its role-qualified name
    /// (`ROLE : name`), or a topic it listens to.
    pub fn answers(&self, n: &str) -> bool {
        if let Some(h) = &self.handler_of {
            return h.names.iter().any(|x| x == n);
        }
        if self.listen.iter().any(|l| l == n) {
            return true;
        }
        let Some(name) = self.name.as_deref() else { return false };
        name == n || self.role_name().is_some_and(|r| n.split_once(" : ").is_some_and(|(a, b)| a.trim() == r && b.trim() == name))
    }
    /// The role's name, for `role_name` and Ansible's `ROLE : task` display.
    pub fn role_name(&self) -> Option<String> {
        self.role_dir.as_ref().and_then(|d| d.file_name()).map(|n| n.to_string_lossy().into_owned())
    }
    /// Whether `--tags`/`--skip-tags` select this task (an include is selected by its own tags when reached).
    pub fn selected(&self, only: &[String], skip: &[String]) -> bool {
        tags_select(&self.tags, only, skip)
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
