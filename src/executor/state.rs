//! What a host keeps between the steps of a run.

use serde_json::Value as Json;

use crate::playbook::Task;
use crate::template::Vars;

/// What a host keeps between tasks: facts, registered results, notified handlers.
#[derive(Default)]
pub struct HostState {
    pub vars: Vars,
    pub notified: Vec<String>,
    /// Verified backups taken on this host in this run.
    pub backups: Vec<crate::safety::backup::BackupRecord>,
    /// In a dry-run: how many steps so far would have changed this host.
    pub planned_changes: usize,
    /// Whether this host gathered its facts in this run (`setup`); the facts themselves are
    /// the run's (`VarSources::fact_map`).
    pub gathered: bool,
    /// Facts other modules returned (`getent_passwd`), under their own names as variables.
    pub module_facts: serde_json::Map<String, Json>,
    /// The last task that failed here, and its result: `ansible_failed_task` / `_result`.
    pub last_failed: Option<(String, Json)>,
    /// Variables from `include_vars` (templates, rendered when used).
    pub included: Vars,
    /// How many blocks with a `rescue:` the host is in (a failure there is not fatal).
    pub rescuable: usize,
    /// The host went unreachable because a host it delegated to was.
    pub delegate_unreachable: bool,
    /// `--start-at-task`: the host reached the task to start at.
    pub started: bool,
    /// Saved plans: how many steps of each name the host reached (a step's key), how many
    /// changes `apply` made here, and why the host no longer fits its plan.
    pub plan_seen: std::collections::HashMap<String, usize>,
    pub plan_applied: usize,
    pub plan_stale: Option<String>,
    /// Handlers of roles this host included (`include_role`), in the order they came.
    pub handlers: Vec<Task>,
    /// The play's templated `vars_files`, as found for this host (above the play's vars).
    pub vars_files: Vars,
    /// Where the host is in the play (see `linear::Place`).
    pub place: Vec<u32>,
    /// The host the current step was delegated to (rendered), for `delegate_facts`.
    pub delegated_to: Option<String>,
    /// Defaults and vars of roles included with `public: true`, for the tasks after them.
    pub public_defaults: Vars,
    pub public_vars: Vars,
    /// The backup root found for each user steps ran as here (`""`: the login user), when
    /// `recover_backup_root` is not set: see `step::protect::resolve`.
    pub backup_roots: std::collections::HashMap<String, String>,
}
