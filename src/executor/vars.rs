//! A host's variables for one step, layered by Ansible's precedence:
//! role defaults < inventory (group, then host) < play vars < facts and
//! registered results < task vars < loop item < extra vars; plus the magic
//! variables (`inventory_hostname`, `groups`, `hostvars`, ...).

use std::sync::Arc;

use minijinja::value::{Enumerator, Object, Value};
use serde_json::{json, Value as Json};

use crate::inventory::Inventory;
use crate::template::{Templates, Vars};
use crate::transport::Target;

/// Variables layered over the play's: templates (task vars), or data that is never rendered
/// (registered results, facts set by `set_fact`, a loop item: already rendered or a host's answer).
pub enum Layer<'a> {
    Templates(&'a Vars),
    Data(&'a Vars),
}

/// Run-wide inputs for building contexts ([`VarSources::new`]).
pub struct VarSources {
    /// The inventory, as `add_host` and `group_by` leave it (see [`VarSources::inventory`]).
    inventory: std::sync::RwLock<Arc<Inventory>>,
    pub templates: Templates,
    pub extra: Vars,
    pub playbook_dir: String,
    pub check: bool,
    pub run_id: String,
    /// The run's start, `YYYYMMDD-HHMMSS` (`recover_timestamp`), for artifact names.
    pub timestamp: String,
    /// `groups`, built once: it lists every host, and building it for every step of every
    /// host made a run's own CPU grow with the square of its hosts.
    groups: std::sync::RwLock<Value>,
    binary: String,
    /// `-v` given this many times (`ansible_verbosity`, `debug: verbosity`).
    pub verbosity: u8,
    /// Each host's gathered facts, as `{ansible_facts: ..., ansible_<name>: ...}`, converted
    /// once when gathered and shared by every step's context (and by `hostvars`).
    facts: std::sync::RwLock<std::collections::HashMap<String, Value>>,
    /// Magic variables of the whole run (`ansible_run_tags`, `ansible_forks`, ...): see
    /// [`VarSources::set_run_magic`].
    run_magic: std::sync::RwLock<Vars>,
    /// Each host's facts as gathered (names without `ansible_`): what a later gather, or one
    /// delegated to it with `delegate_facts`, adds to.
    fact_maps: std::sync::RwLock<std::collections::HashMap<String, serde_json::Map<String, Json>>>,
    /// Each host's set_fact, registered and include_vars variables, as its last task left
    /// them: what `hostvars[host]` shows to the other hosts, as ansible-core's does.
    live: std::sync::RwLock<std::collections::HashMap<String, Vars>>,
    /// Variables another host's task gave this one with `delegate_facts: true` (set_fact).
    delegated: std::sync::RwLock<std::collections::HashMap<String, Vars>>,
}

/// A play's hosts, and `ansible_play_hosts` built from them once for every step of the play.
pub struct PlayHosts {
    value: Value,
    /// `ansible_play_name`, `role_names`: the play's own magic variables.
    play: Vars,
}

impl PlayHosts {
    pub fn new(names: &[String]) -> PlayHosts {
        PlayHosts { value: crate::template::to_value(&json!(names)), play: Vars::new() }
    }
    /// With the play's name and the names of its roles.
    pub fn of_play(names: &[String], play: &str, roles: &[String], dependents: &[String], connection: Option<&str>) -> PlayHosts {
        let mut p = Vars::new();
        p.insert(CONNECTION_KEYWORD.into(), json!(connection));
        let roles: Vec<&str> = roles.iter().map(|r| r.rsplit('/').next().unwrap_or(r)).collect();
        let all: Vec<&str> = roles.iter().copied().chain(dependents.iter().map(String::as_str).filter(|d| !roles.contains(d))).collect();
        p.insert("ansible_play_name".into(), json!(play));
        p.insert("role_names".into(), json!(roles));
        p.insert("ansible_play_role_names".into(), json!(roles));
        p.insert("ansible_role_names".into(), json!(all));
        p.insert("ansible_dependent_role_names".into(), json!(dependents));
        PlayHosts { value: crate::template::to_value(&json!(names)), play: p }
    }
}

impl VarSources {
    pub fn new(inventory: Arc<Inventory>, templates: Templates, extra: Vars, playbook_dir: String, check: bool, run_id: String) -> Arc<VarSources> {
        VarSources::with_verbosity(inventory, templates, extra, playbook_dir, check, run_id, 0)
    }
    pub fn with_verbosity(inventory: Arc<Inventory>, templates: Templates, extra: Vars, playbook_dir: String, check: bool, run_id: String, verbosity: u8) -> Arc<VarSources> {
        VarSources::with_timestamp(inventory, templates, extra, playbook_dir, check, run_id, verbosity, None)
    }
    /// `timestamp`: `recover_timestamp` to use (a saved plan's), else now.
    #[allow(clippy::too_many_arguments)]
    pub fn with_timestamp(inventory: Arc<Inventory>, templates: Templates, extra: Vars, playbook_dir: String, check: bool, run_id: String, verbosity: u8, timestamp: Option<String>) -> Arc<VarSources> {
        Arc::new(VarSources {
            groups: std::sync::RwLock::new(groups_value(&inventory)),
            verbosity,
            binary: std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_default(),
            facts: Default::default(),
            run_magic: Default::default(),
            fact_maps: Default::default(),
            live: Default::default(),
            delegated: Default::default(),
            timestamp: timestamp.unwrap_or_else(|| chrono::Local::now().format("%Y%m%d-%H%M%S").to_string()),
            inventory: std::sync::RwLock::new(inventory),
            templates,
            extra,
            playbook_dir,
            check,
            run_id,
        })
    }

    /// The inventory as it is now: what was read, and the hosts and groups `add_host` and
    /// `group_by` added since.
    pub fn inventory(&self) -> Arc<Inventory> {
        self.inventory.read().map(|i| i.clone()).unwrap_or_default()
    }

    /// Changes the inventory (`add_host`, `group_by`); true when it changed.
    pub fn change_inventory(&self, f: impl FnOnce(&mut Inventory) -> bool) -> bool {
        let Ok(mut inv) = self.inventory.write() else { return false };
        let mut next = (**inv).clone();
        if !f(&mut next) {
            return false;
        }
        if let Ok(mut g) = self.groups.write() {
            *g = groups_value(&next);
        }
        *inv = Arc::new(next);
        true
    }

    /// Sets the run's magic variables: those of the command line and configuration.
    pub fn set_run_magic(&self, v: Vars) {
        if let Ok(mut m) = self.run_magic.write() {
            *m = v;
        }
    }

    /// Records `host`'s facts (replacing what it had): every later context of it sees them.
    pub fn set_facts(&self, host: &str, facts: &crate::template::Vars) {
        let v = crate::template::to_value(facts);
        if let Ok(mut m) = self.facts.write() {
            m.insert(host.to_string(), v);
        }
    }
    /// `meta: clear_facts`.
    pub fn clear_facts(&self, host: &str) {
        if let Ok(mut m) = self.facts.write() {
            m.remove(host);
        }
        if let Ok(mut m) = self.fact_maps.write() {
            m.remove(host);
        }
    }

    /// `host`'s gathered facts so far (names without `ansible_`).
    pub fn fact_map(&self, host: &str) -> serde_json::Map<String, Json> {
        self.fact_maps.read().ok().and_then(|m| m.get(host).cloned()).unwrap_or_default()
    }

    /// Records `host`'s gathered facts (`all`, names without `ansible_`) with the facts other
    /// modules returned (`extra`, under their own names): every later context sees them.
    pub fn record_facts(&self, host: &str, all: serde_json::Map<String, Json>, extra: &serde_json::Map<String, Json>) {
        let mut vars = crate::gather::as_vars(&all);
        for (k, v) in extra {
            vars.insert(k.clone(), v.clone());
        }
        self.set_facts(host, &vars);
        if let Ok(mut m) = self.fact_maps.write() {
            m.insert(host.to_string(), all);
        }
    }

    /// A variable of `host` set by set_fact, register or include_vars: `hostvars[host]` shows it.
    pub fn publish(&self, host: &str, name: &str, value: &Json) {
        if let Ok(mut m) = self.live.write() {
            m.entry(host.to_string()).or_default().insert(name.to_string(), value.clone());
        }
    }

    /// set_fact of another host's task with `delegate_facts: true`: `host`'s own from now on.
    pub fn delegate_vars(&self, host: &str, vars: &serde_json::Map<String, Json>) {
        if let Ok(mut m) = self.delegated.write() {
            m.entry(host.to_string()).or_default().extend(vars.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        for (k, v) in vars {
            self.publish(host, k, v);
        }
    }

    /// What other hosts' tasks gave `host` with `delegate_facts` (empty: none).
    pub fn delegated_vars(&self, host: &str) -> Option<Vars> {
        self.delegated.read().ok().and_then(|m| m.get(host).cloned())
    }

    /// `hostvars[host]`: its inventory context with the variables its tasks set.
    fn hostvars_context(self: &Arc<Self>, host: &str) -> Value {
        let live = self.live.read().ok().and_then(|m| m.get(host).cloned()).unwrap_or_default();
        self.context(host, &PlayHosts::new(&[]), &Vars::new(), &Vars::new(), &[Layer::Data(&live)])
    }
    fn facts_of(&self, host: &str) -> Option<Value> {
        self.facts.read().ok().and_then(|m| m.get(host).cloned())
    }

    /// The magic variables of `host`, but for [`SHARED`]'s, which the context object serves.
    fn magic(&self, host: &str) -> Vars {
        let inv = self.inventory();
        let mut m = Vars::new();
        m.insert("inventory_hostname".into(), json!(host));
        m.insert("inventory_hostname_short".into(), json!(host.split('.').next().unwrap_or(host)));
        m.insert("group_names".into(), json!(inv.group_names(host)));
        m.insert("ansible_version".into(), crate::ansible_version());
        m.insert("playbook_dir".into(), json!(std::path::absolute(&self.playbook_dir).map(|p| p.display().to_string()).unwrap_or_else(|_| self.playbook_dir.clone())));
        m.insert("ansible_check_mode".into(), json!(self.check));
        m.insert("ansible_verbosity".into(), json!(self.verbosity));
        m.insert("recover_run_id".into(), json!(self.run_id));
        m.insert("recover_timestamp".into(), json!(self.timestamp));
        m.insert("recover_binary".into(), json!(self.binary));
        // The inventory source (the first one given).
        if let Some(src) = inv.sources.first() {
            let dir = if src.is_dir() { src.to_path_buf() } else { src.parent().map(|p| p.to_path_buf()).unwrap_or_default() };
            m.insert("inventory_file".into(), json!(src.display().to_string()));
            m.insert("inventory_dir".into(), json!(dir.display().to_string()));
        }
        if let Ok(r) = self.run_magic.read() {
            m.extend(r.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        m
    }

    /// The full context for a step; `layers` go between play vars and extra vars, lowest first.
    pub fn context(self: &Arc<Self>, host: &str, play_hosts: &PlayHosts, role_defaults: &Vars, play_vars: &Vars, layers: &[Layer<'_>]) -> Value {
        let mut vars = role_defaults.clone();
        vars.extend(self.inventory().host_vars(host));
        vars.extend(play_vars.iter().map(|(k, v)| (k.clone(), v.clone())));
        let mut data = std::collections::HashSet::new();
        for l in layers {
            let (layer, is_data) = match l {
                Layer::Templates(v) => (v, false),
                Layer::Data(v) => (v, true),
            };
            for (k, v) in layer.iter() {
                vars.insert(k.clone(), v.clone());
                if is_data {
                    data.insert(k.clone());
                } else {
                    data.remove(k);
                }
            }
        }
        for (k, v) in self.extra.iter() {
            vars.insert(k.clone(), v.clone());
            data.remove(k);
        }
        for (k, v) in self.magic(host).into_iter().chain(play_hosts.play.iter().map(|(k, v)| (k.clone(), v.clone()))) {
            data.insert(k.clone());
            vars.insert(k, v);
        }
        // ansible_connection: the host's own, else the play's `connection:`, else ssh (local for
        // the implicit localhost), as ansible-core's play context sets it for every task.
        // (A task's context only: connecting reads the host's own.)
        let keyword = vars.shift_remove(CONNECTION_KEYWORD);
        data.remove(CONNECTION_KEYWORD);
        if let Some(keyword) = keyword.filter(|_| !vars.contains_key("ansible_connection")) {
            let local = !self.inventory().hosts.contains_key(host) && matches!(host, "localhost" | "127.0.0.1" | "::1");
            let c = if local {
                json!("local")
            } else if keyword.is_null() {
                json!("ssh")
            } else {
                keyword
            };
            vars.insert("ansible_connection".into(), c);
            data.insert("ansible_connection".into());
        }
        for k in SHARED {
            vars.shift_remove(k);
        }
        let shared = Shared { groups: self.groups.read().map(|g| g.clone()).unwrap_or_default(), play_hosts: play_hosts.value.clone() };
        let outer = HostOuter { shared, sources: self.clone(), facts: self.facts_of(host) };
        self.templates.context_with_outer(vars, data, Some(Arc::new(outer)))
    }

    /// The inventory-level context of a host (for `hostvars` and connecting).
    pub fn inventory_context(self: &Arc<Self>, host: &str) -> Value {
        self.context(host, &PlayHosts::new(&[]), &Vars::new(), &Vars::new(), &[])
    }
}

/// What a host's context serves around its variables: a lazy `hostvars` mapping and the shared
/// magic variables (which win), and the host's facts (under every variable it has).
#[derive(Debug)]
struct HostOuter {
    shared: Shared,
    sources: Arc<VarSources>,
    facts: Option<Value>,
}

/// Magic variables with one value for every host of a play (cheap to clone: shared).
#[derive(Debug)]
struct Shared {
    groups: Value,
    play_hosts: Value,
}

/// The play's `connection:` keyword among the play's magic variables, until `context` uses it.
const CONNECTION_KEYWORD: &str = "__recover_play_connection";

/// Their names: like every magic variable, they win over a variable of the same name.
const SHARED: [&str; 5] = ["groups", "ansible_play_hosts", "ansible_play_batch", "play_hosts", "ansible_play_hosts_all"];

impl Shared {
    fn get(&self, name: &str) -> Option<Value> {
        match name {
            "groups" => Some(self.groups.clone()),
            // recover runs a play's hosts as one batch unless `serial` splits them; the batch
            // variables name the play's hosts.
            "ansible_play_hosts" | "ansible_play_batch" | "play_hosts" | "ansible_play_hosts_all" => Some(self.play_hosts.clone()),
            _ => None,
        }
    }
}

impl std::fmt::Debug for VarSources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VarSources")
    }
}

impl crate::template::context::Outer for HostOuter {
    fn first(&self, key: &str) -> Option<Value> {
        if key == "hostvars" {
            return Some(Value::from_object(HostVars { sources: self.sources.clone() }));
        }
        self.shared.get(key)
    }
    fn last(&self, key: &str) -> Option<Value> {
        let fact = self.facts.as_ref().and_then(|f| f.get_attr(key).ok()).filter(|v| !v.is_undefined());
        // `ansible_facts` is there before any gathering, empty, as in ansible-core.
        if fact.is_none() && key == "ansible_facts" {
            return Some(crate::template::to_value(&Json::Object(Default::default())));
        }
        fact
    }
    fn keys(&self) -> Vec<Value> {
        let mut keys: Vec<Value> = SHARED.iter().map(|k| Value::from(*k)).collect();
        if let Some(f) = &self.facts {
            keys.extend(f.try_iter().into_iter().flatten());
        }
        keys
    }
}

#[derive(Debug)]
struct HostVars {
    sources: Arc<VarSources>,
}

impl Object for HostVars {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let host = key.as_str()?;
        self.sources.inventory().hosts.contains_key(host).then(|| self.sources.hostvars_context(host))
    }
    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.sources.inventory().hosts.keys().map(|h| Value::from(h.as_str())).collect())
    }
}

/// `groups`: every group's hosts, in ansible-core's order.
fn groups_value(inventory: &Inventory) -> Value {
    let groups: serde_json::Map<String, Json> = inventory.groups.keys().map(|g| (g.clone(), json!(inventory.group_hosts(g)))).collect();
    crate::template::to_value(&Json::Object(groups))
}

fn get_str(ctx: &Value, key: &str) -> Result<Option<String>, String> {
    match ctx.get_attr(key) {
        Ok(v) if v.is_undefined() || v.is_none() => Ok(None),
        Ok(v) if v.kind() == minijinja::value::ValueKind::Invalid => Err(format!("{key}: {v}")),
        Ok(v) => Ok(Some(crate::template::pyrepr::py_str(&v))),
        Err(e) => Err(format!("{key}: {e}")),
    }
}

/// How to reach `host`, from its (rendered) `ansible_*` variables.
pub fn target(ctx: &Value, host: &str) -> Result<Target, String> {
    let port = match get_str(ctx, "ansible_port")?.or(get_str(ctx, "ansible_ssh_port")?) {
        Some(p) => Some(p.parse::<u16>().map_err(|_| format!("ansible_port {p:?} is not a port number"))?),
        None => None,
    };
    let connection = get_str(ctx, "ansible_connection")?.unwrap_or_else(|| "ssh".into());
    if !matches!(connection.as_str(), "ssh" | "local" | "smart" | "paramiko") {
        return Err(format!("ansible_connection '{connection}' is not supported (ssh or local)"));
    }
    Ok(Target {
        name: host.to_string(),
        address: get_str(ctx, "ansible_host")?.or(get_str(ctx, "ansible_ssh_host")?).unwrap_or_else(|| host.to_string()),
        port,
        user: get_str(ctx, "ansible_user")?.or(get_str(ctx, "ansible_ssh_user")?),
        key_file: get_str(ctx, "ansible_ssh_private_key_file")?.or(get_str(ctx, "ansible_private_key_file")?),
        common_args: get_str(ctx, "ansible_ssh_common_args")?,
        local: connection == "local",
        r#become: crate::transport::Become {
            method: match get_str(ctx, "ansible_become_method")? {
                Some(m) => crate::transport::BecomeMethod::parse(&m).map_err(|e| format!("ansible_become_method: {e}"))?,
                None => Default::default(),
            },
            exe: get_str(ctx, "ansible_become_exe")?,
            flags: get_str(ctx, "ansible_become_flags")?,
            password: get_str(ctx, "ansible_become_password")?.or(get_str(ctx, "ansible_become_pass")?).or(get_str(ctx, "ansible_sudo_pass")?).or_else(crate::transport::default_become_password),
        },
        persist: ssh_persist(get_str(ctx, "recover_ssh_persist")?)?,
    })
}

/// How long a host's SSH master outlives the run: `recover_ssh_persist` (a host or group
/// variable), else `RECOVER_SSH_PERSIST`, else `ssh_persist:` in recover.yml; seconds or `60s`,
/// `5m`; off (`0`, `no`, `false`) by default.
fn ssh_persist(var: Option<String>) -> Result<Option<u64>, String> {
    let Some(v) = var.or_else(|| std::env::var("RECOVER_SSH_PERSIST").ok()).or_else(|| crate::safety::freeze::config_value("ssh_persist")) else { return Ok(None) };
    let v = v.trim().to_lowercase();
    if matches!(v.as_str(), "" | "0" | "no" | "false" | "off") {
        return Ok(None);
    }
    match crate::safety::freeze::parse_secs(&v) {
        Some(n) if n > 0 => Ok(Some(n as u64)),
        _ => Err(format!("recover_ssh_persist {v:?} is not a duration (seconds, or like 60s, 5m)")),
    }
}

/// `ansible_become` / `ansible_become_user` from the host's variables.
pub fn become_default(ctx: &Value) -> (bool, Option<String>) {
    let on = ctx.get_attr("ansible_become").ok().filter(|v| !v.is_undefined()).map(|v| match v.as_str() {
        Some(s) => matches!(s.to_lowercase().as_str(), "yes" | "true" | "1"),
        None => v.is_true(),
    });
    let cfg = crate::ansible_cfg::current();
    let user = get_str(ctx, "ansible_become_user").ok().flatten().or_else(|| cfg.get("become_user"));
    (on.or_else(|| cfg.flag("become")).unwrap_or(false), user)
}
