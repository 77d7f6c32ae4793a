//! What a play, block, role or include hands down to its tasks: the keywords they inherit
//! (`when`, `tags`, `become`, ...), and a keyword's value fixed at load or templated.

use serde_json::Value as Json;

use super::{walk_mut, Cond, Include, Item, Task};
use crate::error::Span;
use crate::template::Vars;

/// `become_method`, `become_flags` and `become_exe` as written (templates), innermost first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BecomeKw {
    pub method: Option<String>,
    pub flags: Option<String>,
    pub exe: Option<String>,
}

impl BecomeKw {
    /// These, with `outer`'s where these do not say.
    pub fn or(&self, outer: &BecomeKw) -> BecomeKw {
        BecomeKw {
            method: self.method.clone().or_else(|| outer.method.clone()),
            flags: self.flags.clone().or_else(|| outer.flags.clone()),
            exe: self.exe.clone().or_else(|| outer.exe.clone()),
        }
    }
}

/// Keywords a block, a role entry, an import or `apply:` passes down to every task under it.
#[derive(Clone, Debug, Default)]
pub struct Inherited {
    pub when: Vec<Cond>,
    pub tags: Vec<String>,
    pub vars: Vars,
    pub r#become: Option<Flag>,
    pub become_user: Option<String>,
    pub become_kw: BecomeKw,
    pub ignore_errors: Option<Flag>,
    pub no_log: Option<Flag>,
    pub environment: Vec<(Json, Span)>,
    /// `module_defaults:` mappings, outermost first.
    pub module_defaults: Vec<(Json, Span)>,
    pub remote_user: Option<String>,
    pub delegate_to: Option<String>,
    pub run_once: Option<Flag>,
    pub check_mode: Option<Flag>,
    pub timeout: Option<u64>,
    pub any_errors_fatal: Option<bool>,
    /// `throttle`: at most this many hosts run each task at once.
    pub throttle: Option<u64>,
    /// A block's `notify`: the handlers its tasks notify when they change something (a
    /// task's own `notify` instead, as ansible-core's attribute inheritance).
    pub notify: Vec<String>,
}

impl Inherited {
    /// Gives `t` what it does not set itself (a `when` goes first, tags and vars add up).
    pub fn apply(&self, t: &mut Task) {
        t.when.splice(0..0, self.when.iter().cloned());
        t.tags.extend(self.tags.iter().cloned());
        for (k, v) in &self.vars {
            t.scope_vars.entry(k.clone()).or_insert_with(|| v.clone());
        }
        if t.r#become.is_none() {
            t.r#become.clone_from(&self.r#become);
        }
        if t.become_user.is_none() {
            t.become_user.clone_from(&self.become_user);
        }
        t.become_kw = t.become_kw.or(&self.become_kw);
        if t.ignore_errors.is_none() {
            t.ignore_errors.clone_from(&self.ignore_errors);
        }
        if t.no_log.is_none() {
            t.no_log.clone_from(&self.no_log);
        }
        t.environment.splice(0..0, self.environment.iter().cloned());
        t.module_defaults.splice(0..0, self.module_defaults.iter().cloned());
        if t.remote_user.is_none() {
            t.remote_user.clone_from(&self.remote_user);
        }
        if t.delegate_to.is_none() {
            t.delegate_to.clone_from(&self.delegate_to);
        }
        if t.run_once.is_none() {
            t.run_once.clone_from(&self.run_once);
        }
        if t.check_mode.is_none() {
            t.check_mode.clone_from(&self.check_mode);
        }
        t.timeout = t.timeout.or(self.timeout);
        t.throttle = t.throttle.or(self.throttle);
        t.any_errors_fatal = t.any_errors_fatal.or(self.any_errors_fatal);
        if t.notify.is_empty() {
            t.notify.clone_from(&self.notify);
        }
    }
    /// Passes these (outer) keywords to every task of `items` and to the includes among them.
    pub fn push_into(&self, items: &mut [Item]) {
        walk_mut(items, &mut |t| self.apply(t), &mut |inc| self.push_to_include(inc));
    }
    /// An include inside a block (role, import, play) with these keywords: they select and
    /// condition the include itself, and (as its tasks' parents in Ansible) reach its tasks.
    pub fn push_to_include(&self, inc: &mut Include) {
        inc.tags.extend(self.tags.iter().cloned());
        inc.when.splice(0..0, self.when.iter().cloned());
        for (k, v) in &self.vars {
            inc.vars.entry(k.clone()).or_insert_with(|| v.clone());
        }
        let mut down = self.clone();
        down.vars.clear();
        inc.inherit = inc.inherit.under(&down);
        if let Some(p) = &mut inc.preloaded {
            down.push_into(p);
        }
    }
    /// These keywords under `outer`'s (an include inside a block).
    pub fn under(&self, outer: &Inherited) -> Inherited {
        let mut t = self.clone();
        t.when.splice(0..0, outer.when.iter().cloned());
        t.tags.extend(outer.tags.iter().cloned());
        for (k, v) in &outer.vars {
            t.vars.entry(k.clone()).or_insert_with(|| v.clone());
        }
        t.r#become = t.r#become.or(outer.r#become.clone());
        t.become_user = t.become_user.or(outer.become_user.clone());
        t.become_kw = t.become_kw.or(&outer.become_kw);
        t.ignore_errors = t.ignore_errors.or(outer.ignore_errors.clone());
        t.no_log = t.no_log.or(outer.no_log.clone());
        t.environment.splice(0..0, outer.environment.iter().cloned());
        t.module_defaults.splice(0..0, outer.module_defaults.iter().cloned());
        t.remote_user = t.remote_user.or(outer.remote_user.clone());
        t.delegate_to = t.delegate_to.or(outer.delegate_to.clone());
        t.run_once = t.run_once.or(outer.run_once.clone());
        t.check_mode = t.check_mode.or(outer.check_mode.clone());
        t.timeout = t.timeout.or(outer.timeout);
        t.throttle = t.throttle.or(outer.throttle);
        t.any_errors_fatal = t.any_errors_fatal.or(outer.any_errors_fatal);
        if t.notify.is_empty() {
            t.notify.clone_from(&outer.notify);
        }
        t
    }
}

/// A boolean keyword: written as a value, or a template evaluated per host.
#[derive(Clone, Debug)]
pub enum Flag {
    Fixed(bool),
    Expr(Cond),
}

impl Flag {
    /// The value when it is written as one (a template is evaluated per host first).
    pub fn fixed(&self) -> Option<bool> {
        match self {
            Flag::Fixed(b) => Some(*b),
            Flag::Expr(_) => None,
        }
    }
}
