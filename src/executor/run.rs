//! A run of a playbook: its plays one after the other, each play's hosts in batches
//! (`serial`), each host on a task of its own; at the end every lock released and the recap.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::Semaphore;

use super::state::HostState;
use super::{exit, linear, order_hosts, select_hosts, vars, ConnMap, HostEnd, LockMap, PlayEnv, RunOptions, Safety, StepPrompts, VarSources};
use crate::inventory::Inventory;
use crate::playbook::{Play, Playbook, Serial};
use crate::report::{Event, Reporter};
use crate::safety::confirm::Confirmer;
use crate::safety::lock;
use crate::template::{Templates, Vars};

/// Runs every play of `pb`; returns the exit code.
pub async fn run(pb: &Playbook, inventory: Arc<Inventory>, opts: &RunOptions, reporter: Arc<Reporter>) -> i32 {
    let mut r = Runner::new(pb, inventory, opts, reporter);
    for play in &pb.plays {
        if r.fatal.load(Ordering::SeqCst) {
            break;
        }
        if let Err(code) = r.play(play).await {
            return code;
        }
    }
    r.release_hosts().await;
    r.recap()
}

/// What a run keeps across its plays: the hosts' connections, locks, states and ends.
struct Runner<'a> {
    pb: &'a Playbook,
    opts: &'a RunOptions,
    reporter: Arc<Reporter>,
    sources: Arc<VarSources>,
    safety: Arc<Safety>,
    conns: Arc<ConnMap>,
    opened: Arc<std::sync::Mutex<HashMap<String, (Option<String>, bool)>>>,
    fatal: Arc<AtomicBool>,
    locks: Arc<LockMap>,
    step_prompts: Option<Arc<StepPrompts>>,
    states: HashMap<String, HostState>,
    dead: HashMap<String, HostEnd>,
}

impl<'a> Runner<'a> {
    fn new(pb: &'a Playbook, inventory: Arc<Inventory>, opts: &'a RunOptions, reporter: Arc<Reporter>) -> Runner<'a> {
        let sources = VarSources::with_timestamp(inventory.clone(), Templates::new(), opts.extra_vars.clone(), pb.dir().display().to_string(), opts.check, opts.run_id.clone(), opts.verbosity, opts.timestamp.clone());
        sources.set_run_magic(run_magic(opts, &inventory, &reporter));
        reporter.add_secrets(secret_values(&sources, pb));
        // What a vault decrypted is a secret wherever it appears, as with no_log.
        reporter.add_secrets(crate::vault::decrypted_values());
        let safety = Arc::new(Safety {
            interrupted: opts.interrupted.clone(),
            confirmer: Confirmer::new(opts.policy.clone()),
            baseline: opts.baseline.clone(),
            run_id: opts.run_id.clone(),
            lock_holder: lock::holder_json(&opts.policy.operator, &opts.run_id, &opts.command_line),
            backup_copy: opts.backup_copy.clone(),
            plan: opts.plan.clone(),
        });
        Runner {
            pb,
            opts,
            reporter,
            sources,
            safety,
            conns: Default::default(),
            opened: Default::default(),
            fatal: Default::default(),
            locks: Default::default(),
            step_prompts: opts.step.then(|| Arc::new(StepPrompts::default())),
            states: HashMap::new(),
            dead: HashMap::new(),
        }
    }

    /// One play: its hosts (as `add_host` and `group_by` of earlier plays left the inventory),
    /// its prompts, then its batches. `Err(code)`: the run ends with it.
    async fn play(&mut self, play: &Play) -> Result<(), i32> {
        let (opts, reporter) = (self.opts, self.reporter.clone());
        let hosts = match select_hosts(&self.sources.inventory(), &play.hosts, opts.limit.as_deref()) {
            Ok(h) => order_hosts(h.into_iter().filter(|h| !self.dead.contains_key(h)).collect::<Vec<_>>(), play.order.as_deref()),
            Err(e) => {
                eprintln!("error: play '{}': {e}", play.name);
                return Err(exit::BAD_INPUT);
            }
        };
        if hosts.is_empty() {
            reporter.emit(Event::NoHosts { play: play.name.clone(), pattern: play.hosts.clone() });
            return Ok(());
        }
        reporter.emit(Event::PlayStart { play: play.name.clone(), hosts: hosts.clone(), check: opts.check });
        let mut play = play.clone();
        if !play.vars_prompt.is_empty() {
            match prompt_vars(&play, &self.sources, &opts.extra_vars, &reporter) {
                Ok(v) => play.vars.extend(v),
                Err(e) => {
                    eprintln!("error: play '{}': {e}", play.name);
                    return Err(exit::BAD_INPUT);
                }
            }
        }
        // A templated `strategy`: rendered now, with the play's vars and the extra vars, as
        // ansible-core renders a play's keywords.
        if let Some(s) = play.strategy.clone().filter(|s| crate::template::is_template(s)) {
            let mut vars = play.vars.clone();
            vars.extend(opts.extra_vars.iter().map(|(k, v)| (k.clone(), v.clone())));
            let ctx = self.sources.templates.context(vars);
            match self.sources.templates.render_str(&s, &ctx, &play.span) {
                Ok(r) if matches!(r.trim(), "linear" | "free" | "host_pinned") => play.strategy = Some(r.trim().to_string()),
                Ok(r) => {
                    eprintln!("error: play '{}': strategy {s:?} is {r:?}, which recover does not implement (linear, free or host_pinned)", play.name);
                    return Err(exit::BAD_INPUT);
                }
                Err(e) => {
                    eprintln!("error: play '{}': strategy: {e}", play.name);
                    return Err(exit::BAD_INPUT);
                }
            }
        }
        let env = self.env(&play, &hosts);
        for batch in batches(&hosts, play.serial.as_ref()) {
            if opts.interrupted.load(Ordering::SeqCst) {
                break;
            }
            if self.batch(&env, &batch).await {
                // max_fail_percentage: the other hosts of the play stop, and no later play runs.
                for h in hosts.iter().filter(|h| !batch.contains(h)) {
                    self.dead.entry(h.clone()).or_insert(HostEnd::Failed);
                }
                self.fatal.store(true, Ordering::SeqCst);
                break;
            }
        }
        Ok(())
    }

    /// What every host of the play shares.
    fn env(&self, play: &Play, hosts: &[String]) -> Arc<PlayEnv> {
        Arc::new(PlayEnv {
            sources: self.sources.clone(),
            play: Arc::new(play.clone()),
            play_hosts: vars::PlayHosts::of_play(hosts, &play.name, &play.role_names, &play.dependent_role_names, play.connection.as_deref()),
            reporter: self.reporter.clone(),
            check: self.opts.check,
            playbook_dir: self.pb.dir(),
            catalog: self.pb.catalog,
            project_root: self.opts.project_root.clone(),
            safety: self.safety.clone(),
            locks: self.locks.clone(),
            only_tags: self.opts.only_tags.clone(),
            skip_tags: self.opts.skip_tags.clone(),
            end_play: Default::default(),
            start_at: self.opts.start_at_task.as_deref().and_then(|p| glob::Pattern::new(p).ok()),
            conns: self.conns.clone(),
            opened: self.opened.clone(),
            once: Default::default(),
            throttles: Default::default(),
            step: self.step_prompts.clone(),
            fatal: self.fatal.clone(),
            gate: (!matches!(play.strategy.as_deref(), Some("free" | "host_pinned"))).then(|| Arc::new(linear::Gate::new(self.opts.forks))),
        })
    }

    /// One batch of the play's hosts, each on a task of its own; true when more of it failed
    /// than `max_fail_percentage` allows.
    async fn batch(&mut self, env: &Arc<PlayEnv>, batch: &[String]) -> bool {
        let sem = Arc::new(Semaphore::new(self.opts.forks.max(1)));
        if let Some(g) = &env.gate {
            g.begin(batch);
        }
        let gone = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut handles = Vec::new();
        for host in batch {
            self.reporter.add_host(host);
            let state = self.states.remove(host).unwrap_or_default();
            handles.push(tokio::spawn(host_task(env.clone(), host.clone(), state, sem.clone(), self.conns.clone(), gone.clone(), batch.len().max(1))));
        }
        let mut failed_in_batch = 0usize;
        for h in handles {
            match h.await {
                Ok((host, state, end)) => {
                    if end != HostEnd::Ok {
                        failed_in_batch += 1;
                        self.dead.insert(host.clone(), end);
                    }
                    self.states.insert(host, state);
                }
                Err(e) => eprintln!("internal error: a host task panicked: {e}"),
            }
        }
        let Some(max) = env.play.max_fail_percentage else { return false };
        let pct = failed_in_batch as f64 * 100.0 / batch.len().max(1) as f64;
        if pct > max {
            eprintln!("stopping play '{}': {pct:.0}% of the batch failed (max_fail_percentage {max})", env.play.name);
        }
        pct > max
    }

    /// Every host's lock released, every connection closed.
    async fn release_hosts(&self) {
        let conns = std::mem::take(&mut *self.conns.lock().await);
        let held = std::mem::take(&mut *self.locks.lock().await);
        for (host, c) in conns {
            if let Some((dir, user)) = held.get(&host) {
                if let Err(e) = lock::release(&c, dir, &self.opts.run_id, user.clone()).await {
                    eprintln!("warning: host {host}: could not release the lock {dir} ({e}); the next run from this machine takes it over, a run from elsewhere needs --break-lock");
                }
            }
            if let Ok(c) = Arc::try_unwrap(c) {
                c.close().await;
            }
        }
    }

    /// The recap, and the exit code: the most urgent first (a step broke, then a host is gone,
    /// then safety said no).
    fn recap(&self) -> i32 {
        let any = |end: HostEnd| self.dead.values().any(|e| *e == end);
        let code = if self.opts.interrupted.load(Ordering::SeqCst) {
            exit::INTERRUPTED
        } else if any(HostEnd::Failed) {
            exit::FAILED
        } else if any(HostEnd::Unreachable) {
            exit::UNREACHABLE
        } else if any(HostEnd::Refused) {
            exit::REFUSED
        } else {
            exit::OK
        };
        self.reporter.emit(Event::Recap { hosts: self.reporter.counts(), exit_code: code });
        code
    }
}

/// One host of a batch, on a task of its own: the linear gate takes a fork for each step; the
/// free strategy a fork for the host. Past `max_fail_percentage`, the batch's other hosts stop
/// after the step they are at (before this host leaves the gate), as ansible-core's.
async fn host_task(env: Arc<PlayEnv>, host: String, mut state: HostState, sem: Arc<Semaphore>, conns: Arc<ConnMap>, gone: Arc<std::sync::atomic::AtomicUsize>, batch_len: usize) -> (String, HostState, HostEnd) {
    let _leave = linear::Leave { gate: env.gate.clone(), host: host.clone() };
    let _permit = if env.gate.is_none() { sem.acquire_owned().await.ok() } else { None };
    let end = super::host::run_host(&env, &host, &conns, &mut state).await;
    if end != HostEnd::Ok {
        let n = gone.fetch_add(1, Ordering::SeqCst) + 1;
        if env.play.max_fail_percentage.is_some_and(|max| n as f64 * 100.0 / batch_len as f64 > max) {
            // As ansible-core: the run ends (no later batch, no later play).
            env.fatal.store(true, Ordering::SeqCst);
            env.end_play.store(true, Ordering::SeqCst);
        }
    }
    env.reporter.idle(&host);
    (host, state, end)
}

/// The magic variables of the run: tags, forks, limit, inventory sources, the configuration
/// file, diff mode, as ansible-core gives them.
fn run_magic(opts: &RunOptions, inventory: &Inventory, reporter: &Reporter) -> crate::template::Vars {
    use serde_json::json;
    let mut m = crate::template::Vars::new();
    m.insert("ansible_run_tags".into(), if opts.only_tags.is_empty() { json!(["all"]) } else { json!(opts.only_tags) });
    m.insert("ansible_skip_tags".into(), json!(opts.skip_tags));
    m.insert("ansible_forks".into(), json!(opts.forks));
    if let Some(l) = &opts.limit {
        m.insert("ansible_limit".into(), json!(l));
    }
    m.insert("ansible_inventory_sources".into(), json!(inventory.sources.iter().map(|p| p.display().to_string()).collect::<Vec<_>>()));
    m.insert("ansible_config_file".into(), json!(crate::ansible_cfg::current().file.as_ref().map(|p| p.display().to_string())));
    m.insert("ansible_diff_mode".into(), json!(reporter.diff()));
    m.insert("ansible_version".into(), crate::ansible_version());
    m
}
/// `vars_prompt`: each variable asked of the operator at the terminal (hidden unless `private:
/// false`, twice with `confirm`, hashed with `encrypt`), before any host of the play is
/// touched; a variable given with `-e` is not asked. With no terminal the `default` is taken,
/// and a prompt without one is an error.
fn prompt_vars(play: &crate::playbook::Play, sources: &VarSources, extra: &Vars, reporter: &Reporter) -> Result<Vars, String> {
    let mut out = Vars::new();
    let terminal = crate::safety::confirm::interactive();
    for p in &play.vars_prompt {
        if extra.contains_key(&p.name) {
            continue;
        }
        let default = p.default.as_ref().map(|d| d.as_str().map(str::to_string).unwrap_or_else(|| d.to_string()));
        let text = p.prompt.clone().unwrap_or_else(|| p.name.clone());
        let answer = if !terminal {
            default.clone().ok_or_else(|| format!("{}: vars_prompt '{}' needs an answer and there is no terminal: give it with -e {}=...", p.span, p.name, p.name))?
        } else {
            let shown = match &default {
                Some(d) => format!("{text} [{d}]: "),
                None => format!("{text}: "),
            };
            let mut value = Err("no answer".to_string());
            reporter.pause(&mut || {
                let ask = |label: &str| -> Result<String, String> {
                    if p.private {
                        return crate::safety::confirm::read_hidden(label).map_err(|e| e.to_string());
                    }
                    eprint!("{label}");
                    let _ = std::io::Write::flush(&mut std::io::stderr());
                    {
                        let mut line = String::new();
                        std::io::BufRead::read_line(&mut std::io::stdin().lock(), &mut line).map_err(|e| e.to_string())?;
                        Ok(line.trim_end_matches(['\r', '\n']).to_string())
                    }
                };
                value = (|| loop {
                    let first = ask(&shown)?;
                    if !p.confirm {
                        return Ok(first);
                    }
                    let second = ask(&format!("confirm {shown}"))?;
                    if first == second {
                        return Ok(first);
                    }
                    eprintln!("***** VALUES ENTERED DO NOT MATCH ****");
                })();
            });
            let v = value?;
            match (&default, v.is_empty()) {
                (Some(d), true) => d.clone(),
                _ => v,
            }
        };
        let value = match &p.encrypt {
            Some(scheme) => {
                let ctx = crate::template::to_value(&serde_json::json!({"v": answer, "s": scheme, "salt": p.salt}));
                let expr = if p.salt.is_some() { "{{ v | password_hash(s, salt) }}" } else { "{{ v | password_hash(s) }}" };
                sources.templates.render_str(expr, &ctx, &p.span).map_err(|e| e.to_string())?
            }
            None => answer,
        };
        reporter.add_secrets([value.clone()].into_iter().filter(|_| p.private));
        // An answer is data, never a template (Ansible marks it unsafe).
        out.insert(p.name.clone(), crate::template::unsafe_text(value));
    }
    Ok(out)
}
/// The values of secret-named variables (see `report::is_secret_name`), raw and
/// rendered per host, so that no output shows them.
fn secret_values(sources: &Arc<VarSources>, pb: &Playbook) -> Vec<String> {
    let mut out = Vec::new();
    let mut raw = |v: &serde_json::Value| {
        if let Some(s) = v.as_str() {
            out.push(s.to_string());
        } else if v.is_number() {
            out.push(v.to_string());
        }
    };
    let mut names: Vec<String> = Vec::new();
    for (k, v) in sources.extra.iter().chain(pb.plays.iter().flat_map(|p| p.vars.iter().chain(p.role_defaults.iter()))) {
        if crate::report::is_secret_name(k) {
            raw(v);
            names.push(k.clone());
        }
    }
    for host in sources.inventory().hosts.keys() {
        for (k, v) in sources.inventory().host_vars(host) {
            if crate::report::is_secret_name(&k) {
                raw(&v);
                names.push(k);
            }
        }
    }
    names.sort();
    names.dedup();
    for host in sources.inventory().hosts.keys() {
        let ctx = sources.inventory_context(host);
        for n in &names {
            if let Ok(v) = ctx.get_attr(n) {
                if !v.is_undefined() && v.kind() != minijinja::value::ValueKind::Invalid {
                    out.push(crate::template::pyrepr::py_str(&v));
                }
            }
        }
    }
    out.retain(|s| !crate::template::is_template(s));
    out
}
fn batches(hosts: &[String], serial: Option<&Serial>) -> Vec<Vec<String>> {
    // A batch size as ansible-core computes it: a percentage of all the play's hosts, at least 1.
    let size = |s: &Serial| -> usize {
        match s {
            Serial::Count(n) => *n,
            Serial::Percent(p) => (hosts.len() as f64 * p / 100.0).floor() as usize,
            Serial::List(_) => hosts.len(),
        }
        .max(1)
    };
    let sizes: Vec<usize> = match serial {
        None => vec![hosts.len().max(1)],
        Some(Serial::List(list)) => list.iter().map(size).collect(),
        Some(s) => vec![size(s)],
    };
    let mut out = Vec::new();
    let mut rest = hosts;
    let mut i = 0;
    while !rest.is_empty() {
        let n = sizes[i.min(sizes.len() - 1)].min(rest.len());
        out.push(rest[..n].to_vec());
        rest = &rest[n..];
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_batches_as_ansible_core_makes_them() {
        let hosts: Vec<String> = (1..=10).map(|i| format!("h{i}")).collect();
        let sizes = |s: Option<Serial>| batches(&hosts, s.as_ref()).iter().map(Vec::len).collect::<Vec<_>>();
        assert_eq!(sizes(None), vec![10]);
        assert_eq!(sizes(Some(Serial::Count(3))), vec![3, 3, 3, 1]);
        assert_eq!(sizes(Some(Serial::Percent(25.0))), vec![2, 2, 2, 2, 2]);
        assert_eq!(sizes(Some(Serial::List(vec![Serial::Count(1), Serial::Count(3), Serial::Percent(50.0)]))), vec![1, 3, 5, 1]);
        assert!(batches(&[], Some(&Serial::Count(2))).is_empty());
    }
}
