//! `recover play NAME|PATH`: load everything, check it all, then run.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;

use super::{Global, Output};
use crate::error::{SourceError, Span};
use crate::executor::{self, exit, RunOptions};
use crate::report::{Event, ReportOptions, Reporter, RunLog};
use crate::template::Templates;

#[derive(Args, Debug, Default)]
pub struct PlayArgs {
    /// Playbook name (playbooks/NAME.yml) or path
    pub playbook: String,
    /// With no terminal: run STANDARD_HITL and CRITICAL_HITL steps (never BLOCK ones)
    #[arg(long)]
    pub yes: bool,
    /// Run PLAYBOOK's BLOCK steps on HOST (e.g. pg-wal@188); repeatable
    #[arg(long, value_name = "PLAYBOOK@HOST")]
    pub approve: Vec<String>,
    /// Take over a host lock left by a dead run (recorded in the run log)
    #[arg(long)]
    pub break_lock: bool,
    /// Who runs this, for the audit record (default: $USER)
    #[arg(long, value_name = "NAME")]
    pub operator: Option<String>,
    /// For cron and the AI auto-repair system. While a freeze is in force, or without a fresh green
    /// gate (`recover gate`, same baseline and inventory, within gate_max_age), only read_only steps
    /// run; with one, read_only and AUTO-tier steps. Every other step (shell, command, service,
    /// file, ...) becomes an approval request (exit 4). Implies --output json
    #[arg(long)]
    pub automation: bool,
    /// Also stream every backup to DIR/HOST/ on this machine and check it here (sha256, entries)
    #[arg(long, value_name = "DIR")]
    pub backup_copy: Option<PathBuf>,
    /// Append a markdown summary of the run to FILE (the SOP's docs/LOGBOOK.md)
    #[arg(long, value_name = "FILE")]
    pub logbook: Option<PathBuf>,
    /// Only tasks with one of these tags (comma-separated, repeatable; `all`, `tagged`,
    /// `untagged`, and a task tagged `always` runs unless skipped by name; `never` tasks only when
    /// asked for)
    #[arg(short = 't', long = "tags", value_name = "TAGS", value_delimiter = ',')]
    pub tags: Vec<String>,
    /// Not the tasks with one of these tags (comma-separated, repeatable)
    #[arg(long = "skip-tags", value_name = "TAGS", value_delimiter = ',')]
    pub skip_tags: Vec<String>,
    /// Load and check the playbook, inventory, variables, templates and baseline, contact no
    /// host, and stop (as ansible-playbook --syntax-check)
    #[arg(long)]
    pub syntax_check: bool,
    /// List each play's tasks (with their tags) and stop; no host is contacted
    #[arg(long)]
    pub list_tasks: bool,
    /// List each play's hosts and stop
    #[arg(long)]
    pub list_hosts: bool,
    /// List the tags of each play and stop
    #[arg(long)]
    pub list_tags: bool,
    /// Start at the first task with this name (a glob; the tasks before it are not run)
    #[arg(long, value_name = "NAME")]
    pub start_at_task: Option<String>,
    /// Connect as this user where the inventory and the play do not say (as ansible-playbook -u)
    #[arg(short = 'u', long = "user", value_name = "USER")]
    pub user: Option<String>,
    /// The SSH key to log in with, where the inventory does not say
    #[arg(long = "private-key", visible_alias = "key-file", value_name = "FILE")]
    pub private_key: Option<PathBuf>,
    /// Become root (sudo) for every task that does not say otherwise
    #[arg(short = 'b', long = "become")]
    pub r#become: bool,
    /// The user to become (with --become)
    #[arg(long = "become-user", value_name = "USER")]
    pub become_user: Option<String>,
    /// Ask for the become (sudo) password at the terminal, once, for every host whose
    /// variables do not give one (`ansible_become_password`); sudo gets it on its stdin
    #[arg(short = 'K', long = "ask-become-pass")]
    pub ask_become_pass: bool,
    /// Ask before each task, as ansible-playbook does: (y)es, (n)o (skip it on every host),
    /// (c)ontinue (run the rest without asking). Needs a terminal. Destructive steps are still
    /// confirmed on their own.
    #[arg(long)]
    pub step: bool,
    /// With --dry-run: save the plan to FILE (every host's steps, commands, diffs, backups,
    /// tiers, and a fingerprint of the state they were planned on) for `recover approve` and
    /// `recover apply`
    #[arg(long, value_name = "FILE")]
    pub save_plan: Option<PathBuf>,
    /// Set by `recover apply`: the approved plan this run is held to.
    #[arg(skip)]
    pub apply: Option<Arc<super::saved::ApplyCtx>>,
}

/// The tasks and includes of `items` selected by the tags, with their tags, as listed.
fn listing(items: &[crate::playbook::Item], only: &[String], skip: &[String], out: &mut Vec<(String, Vec<String>)>) {
    use crate::playbook::Item;
    for i in items {
        match i {
            Item::Task(t) if t.selected(only, skip) => {
                let name = match t.role_name() {
                    Some(r) => format!("{r} : {}", t.display_name()),
                    None => t.display_name(),
                };
                out.push((name, t.tags.clone()));
            }
            Item::Task(_) => {}
            Item::Block(b) => {
                listing(&b.block, only, skip, out);
                listing(&b.rescue, only, skip, out);
                listing(&b.always, only, skip, out);
            }
            Item::Include(inc) => {
                if crate::playbook::tags_select(&inc.tags, only, skip) {
                    let name = inc.name.clone().unwrap_or_else(|| match &inc.kind {
                        crate::playbook::IncludeKind::Tasks { .. } => "include_tasks".into(),
                        crate::playbook::IncludeKind::Role { .. } => "include_role".into(),
                    });
                    let name = match inc.role_dir.as_ref().and_then(|d| d.file_name()) {
                        Some(r) => format!("{} : {name}", r.to_string_lossy()),
                        None => name,
                    };
                    out.push((name, inc.tags.clone()));
                }
            }
        }
    }
}

/// Whether a task list has an include resolved only at run time.
fn has_dynamic(items: &[crate::playbook::Item]) -> bool {
    items.iter().any(|i| match i {
        crate::playbook::Item::Include(inc) => inc.preloaded.as_ref().map(|p| has_dynamic(p)).unwrap_or(true),
        crate::playbook::Item::Block(b) => has_dynamic(&b.block) || has_dynamic(&b.rescue) || has_dynamic(&b.always),
        crate::playbook::Item::Task(_) => false,
    })
}

/// A path as it is (its root is the project, else its folder's parent); a `NAME` along the
/// search path (`assets`: project, user, system, built-in), with the root it came from.
pub fn find_playbook(root: &Path, name: &str) -> Result<(PathBuf, PathBuf), SourceError> {
    let direct = PathBuf::from(name);
    if direct.is_file() {
        return Ok((direct, root.to_path_buf()));
    }
    if !name.contains('/') {
        if let Some((p, source)) = crate::assets::find_playbook(name) {
            return Ok((p, source.root));
        }
    }
    let known = playbook_names(root);
    let mut e = SourceError::new(Span::default(), format!("no playbook '{name}' (looked for playbooks/{name}.yml in the project, ~/.config/recover, /etc/recover and the built-in set)"));
    if !known.is_empty() {
        let refs: Vec<&str> = known.iter().map(String::as_str).collect();
        e = match crate::playbook::closest_name(name, &refs) {
            Some(c) => e.help(format!("did you mean '{c}'? run `recover list` to see them all")),
            None => e.help(format!("playbooks: {}", known.join(", "))),
        };
    }
    Err(e)
}

/// Every playbook name along the search path.
pub fn playbook_names(_root: &Path) -> Vec<String> {
    crate::assets::playbooks().into_iter().map(|(n, _, _)| n).collect()
}

pub async fn run(g: &Global, a: &PlayArgs) -> anyhow::Result<i32> {
    let (path, root) = find_playbook(&super::project_root(), &a.playbook)?;
    let mut inventory = super::load_inventory(g)?;
    // group_vars/ and host_vars/ beside the playbook, over the inventory's own.
    if let Some(dir) = path.parent() {
        inventory.load_vars_dirs(if dir.as_os_str().is_empty() { Path::new(".") } else { dir })?;
    }
    let inventory = Arc::new(inventory);
    let extra = super::extra_vars(g)?;
    let limit = super::limit(g, &inventory)?;
    // -K (or ansible.cfg's become_ask_pass): asked once, before any host is contacted; sent to
    // sudo on its stdin, never on a command line, and masked in every output.
    let mut become_secret = None;
    if a.ask_become_pass || crate::ansible_cfg::current().flag("become_ask_pass") == Some(true) {
        let pw = crate::safety::confirm::read_hidden("BECOME password: ").map_err(|e| SourceError::new(Span::default(), format!("--ask-become-pass (-K) reads the password at a terminal, and there is none: {e} (give it as ansible_become_password, from a vaulted file)")))?;
        crate::transport::set_default_become_password(pw.clone());
        become_secret = Some(pw);
    }
    if let Some(f) = &a.save_plan {
        if !g.dry_run {
            return Err(SourceError::new(Span::default(), format!("--save-plan {} makes a plan from a dry-run: add --dry-run", f.display())).into());
        }
        if a.automation || a.step || a.start_at_task.is_some() {
            return Err(SourceError::new(Span::default(), "--save-plan does not go with --automation, --step or --start-at-task: a plan covers the whole playbook").into());
        }
        // The plan keeps the -e words to run them again: a secret typed there would sit in it.
        let literal = Global { extra_vars: g.extra_vars.iter().filter(|e| !e.starts_with('@')).cloned().collect(), ..g.clone() };
        if let Some(k) = super::extra_vars(&literal)?.keys().find(|k| crate::report::is_secret_name(k)) {
            return Err(SourceError::new(Span::default(), format!("--save-plan: -e {k}=... looks like a secret, and the plan file keeps -e as given; put it in a vars file (-e @FILE, vaulted) instead")).into());
        }
    }
    if a.step && !crate::safety::confirm::interactive() {
        return Err(SourceError::new(Span::default(), "--step asks before each task and needs a terminal (stdin and stderr)").into());
    }
    let mut cli_settings = std::collections::BTreeMap::new();
    if let Some(u) = &a.user {
        cli_settings.insert("remote_user".to_string(), u.clone());
    }
    if let Some(k) = &a.private_key {
        cli_settings.insert("private_key_file".to_string(), k.display().to_string());
    }
    if a.r#become {
        cli_settings.insert("become".to_string(), "true".to_string());
    }
    if let Some(u) = &a.become_user {
        cli_settings.insert("become_user".to_string(), u.clone());
    }
    crate::ansible_cfg::set_cli(cli_settings);
    let pb = crate::playbook::load(&path, &root, &crate::modules::BUILTINS)?;
    // `recover apply`: every file the load read is what the plan was made from (imports,
    // roles, vars, inventory folders, ansible.cfg ...).
    if let Some(c) = &a.apply {
        let diffs = crate::inputs::differences(&c.pf.plan.inputs);
        if !diffs.is_empty() {
            let msg = format!("stale plan: {} since the plan was made at {}; nothing was run", diffs.join("; "), c.pf.plan.created);
            if g.output == Output::Json {
                crate::report::stdout_line(&serde_json::json!({"event": "plan_refused", "msg": msg}).to_string());
            }
            eprintln!("{} {msg}", console::style("refused:").red().bold());
            return Ok(exit::REFUSED);
        }
    }
    // `recover apply` with hosts that no longer fit the plan: where the play couples its hosts
    // (any_errors_fatal, or max_fail_percentage that the refused hosts already pass), a refused
    // host stops the others too, before any of them changes anything.
    if let Some(c) = a.apply.as_ref().filter(|c| !c.stale.is_empty() && !c.fresh.is_empty()) {
        let total = (c.fresh.len() + c.stale.len()) as f64;
        let failed_pct = c.stale.len() as f64 * 100.0 / total;
        let coupled = pb.plays.iter().find_map(|p| {
            if p.any_errors_fatal_anywhere() {
                Some(format!("the play '{}' has any_errors_fatal", p.name))
            } else {
                p.max_fail_percentage.filter(|m| failed_pct > *m).map(|m| format!("the play '{}' has max_fail_percentage {m}, and {failed_pct:.0}% of its hosts are refused", p.name))
            }
        });
        if let Some(why) = coupled {
            let stale: Vec<String> = c.stale.iter().map(|(h, d)| format!("{h} ({})", d.join("; "))).collect();
            let msg = format!("stale plan on {}; {why}, so no host runs its part of the plan (the others: {}); nothing was run", stale.join(", "), c.fresh.join(", "));
            if g.output == Output::Json {
                crate::report::stdout_line(&serde_json::json!({"event": "plan_refused", "msg": msg}).to_string());
            }
            eprintln!("{} {msg}", console::style("refused:").red().bold());
            return Ok(exit::REFUSED);
        }
    }
    let (only, skip): (Vec<String>, Vec<String>) = (a.tags.iter().map(|t| t.trim().to_string()).collect(), a.skip_tags.iter().map(|t| t.trim().to_string()).collect());
    // Every check that can fail on input happens here, before any host is contacted.
    let templates = Templates::new();
    let mut selected_any = false;
    // What earlier plays' tasks set (set_fact, register) stays the host's in later plays.
    let mut carried: HashSet<String> = HashSet::new();
    for play in &pb.plays {
        let hosts = executor::select_hosts(&inventory, &play.hosts, limit.as_deref())
            .map_err(|e| SourceError::new(play.span.clone(), format!("play '{}': {e}", play.name)))?;
        selected_any |= !hosts.is_empty();
        let mut known: HashSet<String> = extra.keys().cloned().collect();
        known.extend(carried.iter().cloned());
        for h in &hosts {
            known.extend(inventory.host_vars(h).into_keys());
        }
        if hosts.is_empty() {
            for h in inventory.hosts.keys() {
                known.extend(inventory.host_vars(h).into_keys());
            }
        }
        // A task that certainly runs is known only when every task is selected and a host runs the play.
        let every_task = only.is_empty() && skip.is_empty() && a.start_at_task.is_none() && !hosts.is_empty();
        carried.extend(crate::playbook::check_play(play, pb.catalog, &known, &templates, &root, &pb.dir(), every_task)?);
    }
    if let (Some(l), false) = (&limit, selected_any) {
        let targets: Vec<String> = pb.plays.iter().map(|p| format!("'{}' targets {}", p.name, p.hosts)).collect();
        let shown = match (&g.host, &g.limit) {
            (Some(h), Some(lim)) => format!("--host {h} -l {lim}"),
            (Some(h), None) => format!("--host {h}"),
            _ => format!("-l {l}"),
        };
        return Err(SourceError::new(Span::default(), format!("{shown} selects no host of any play ({}); nothing was run", targets.join("; ")))
            .help("run `recover inventory --graph` to see the groups and hosts")
            .into());
    }
    for approval in &a.approve {
        if !approval.contains('@') {
            return Err(SourceError::new(Span::default(), format!("--approve {approval}: expected PLAYBOOK@HOST, like pg-wal@188")).into());
        }
    }
    let baseline = match inventory.sources.first().and_then(|inv| crate::baseline::locate(&root, inv)) {
        Some(p) => Some(crate::baseline::Baseline::load(&p)?),
        None => None,
    };
    if a.syntax_check {
        outln!("\nplaybook: {}", path.display())?;
        return Ok(0);
    }
    if let Some(name) = &a.start_at_task {
        let pat = glob::Pattern::new(name).map_err(|e| SourceError::new(Span::default(), format!("--start-at-task {name:?}: {e}")))?;
        let dynamic = pb.plays.iter().any(|p| has_dynamic(&p.tasks));
        if !dynamic && !pb.plays.iter().any(|p| p.all_tasks().iter().any(|t| pat.matches(&t.display_name()))) {
            return Err(SourceError::new(Span::default(), format!("--start-at-task: no task named {name:?} in {}", path.display())).help("`--list-tasks` lists them").into());
        }
    }
    if a.list_tasks || a.list_hosts || a.list_tags {
        outln!("\nplaybook: {}", path.display())?;
        for (i, play) in pb.plays.iter().enumerate() {
            let hosts = executor::select_hosts(&inventory, &play.hosts, limit.as_deref()).unwrap_or_default();
            outln!("\n  play #{} ({}): {}\tTAGS: []", i + 1, play.hosts, play.name)?;
            if a.list_hosts {
                outln!("    pattern: ['{}']\n    hosts ({}):", play.hosts, hosts.len())?;
                for h in &hosts {
                    outln!("      {h}")?;
                }
            }
            // As ansible-playbook lists them: tasks and includes (not what an include brings in).
            let mut listed = Vec::new();
            listing(&play.tasks, &only, &skip, &mut listed);
            if a.list_tags {
                let mut tags: Vec<String> = listed.iter().flat_map(|(_, t)| t.iter().cloned()).collect();
                tags.sort();
                tags.dedup();
                outln!("      TASK TAGS: [{}]", tags.join(", "))?;
            }
            if a.list_tasks {
                outln!("    tasks:")?;
                for (name, mut tags) in listed {
                    tags.sort();
                    tags.dedup();
                    outln!("      {name}\tTAGS: [{}]", tags.join(", "))?;
                }
            }
        }
        return Ok(0);
    }
    let playbook_name = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
    let operator = a.operator.clone().unwrap_or_else(crate::safety::default_operator);
    let policy = crate::safety::Policy {
        yes: a.yes,
        approvals: a.approve.clone(),
        playbook: playbook_name,
        interactive: crate::safety::confirm::interactive(),
        automation: a.automation,
        automation_blocked: if a.automation {
            let key = crate::safety::freeze::GateKey {
                baseline_sha256: baseline.as_ref().map(|b| b.digest()).unwrap_or_default(),
                inventory_sha256: crate::safety::freeze::files_digest(&inventory.sources),
            };
            crate::safety::freeze::automation_blocked(Some(&key))
        } else {
            None
        },
        break_lock: a.break_lock,
        operator: operator.clone(),
        plan_approval: a.apply.as_ref().map(|c| c.approval.clone()),
    };
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
    let reporter = Arc::new(Reporter::new(ReportOptions { json: g.output == Output::Json || a.automation, color: super::color(g), diff: g.diff, verbosity: g.verbose }));
    if a.save_plan.is_some() {
        reporter.capture();
    }
    if !g.dry_run {
        // Invariant 5: a real run that cannot keep its audit trail does not start.
        match RunLog::create(&run_id) {
            Ok(log) => reporter.set_log(log),
            Err(e) => {
                eprintln!("error: cannot write the run log under {}: {e}; nothing was run (set RECOVER_STATE_DIR to a folder of your own)", crate::report::state_dir().display());
                return Ok(exit::BAD_INPUT);
            }
        }
    }
    if let Some(book) = &a.logbook {
        if let Err(e) = std::fs::OpenOptions::new().create(true).append(true).open(book) {
            eprintln!("error: cannot append to the logbook {}: {e}; nothing was run", book.display());
            return Ok(exit::BAD_INPUT);
        }
    }
    reporter.add_secrets(become_secret);
    // Secret-named extra vars are masked everywhere, the logged command line included.
    reporter.add_secrets(extra.iter().filter(|(k, _)| crate::report::is_secret_name(k)).filter_map(|(_, v)| match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }));
    reporter.emit(Event::RunStart {
        run_id: run_id.clone(),
        playbook: path.display().to_string(),
        check: g.dry_run,
        operator: operator.clone(),
        command: std::env::args().collect(),
    });
    if let Some(c) = &a.apply {
        for (host, differences) in &c.stale {
            reporter.emit(Event::PlanStale { host: host.clone(), differences: differences.clone() });
        }
    }
    let command_line = std::env::args().collect::<Vec<_>>().join(" ");
    let interrupted = Arc::new(std::sync::atomic::AtomicBool::new(false));
    reporter.stop_on_closed_stdout(interrupted.clone());
    {
        // Ctrl-C, SIGTERM or SIGHUP (the operator's SSH session dropped) once: the steps in flight
        // finish, no new step starts, a prompt declines. Twice: stop now. All are logged.
        use tokio::signal::unix::{signal, SignalKind};
        let (flag, reporter, notify) = (interrupted.clone(), reporter.clone(), crate::safety::confirm::interrupt_notify());
        let mut streams = Vec::new();
        for (kind, name) in [(SignalKind::interrupt(), "Ctrl-C"), (SignalKind::terminate(), "SIGTERM"), (SignalKind::hangup(), "SIGHUP")] {
            match signal(kind) {
                Ok(s) => streams.push((s, name)),
                Err(e) => eprintln!("warning: cannot handle {name}: {e}"),
            }
        }
        tokio::spawn(async move {
            let mut count = 0;
            loop {
                let futs = streams.iter_mut().map(|(s, name)| Box::pin(async move { s.recv().await.map(|_| *name) }));
                let (got, _, _) = futures_select_all(futs).await;
                let Some(name) = got else { return };
                count += 1;
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
                crate::safety::confirm::signal_received();
                notify.notify_waiters();
                if count == 1 {
                    reporter.emit(Event::Interrupt { abort: false, message: format!("{name}: finishing the steps in flight; no new step starts (again to stop at once)") });
                } else {
                    ABORTING.store(true, std::sync::atomic::Ordering::SeqCst);
                    reporter.emit(Event::Interrupt { abort: true, message: format!("second {name}: stopping now; killing the steps in flight on their hosts") });
                    // Kill each action under way on its host; what cannot be confirmed is said, and its
                    // host lock is kept (the next run refuses it while the process lives).
                    for k in crate::transport::kill_inflight(std::time::Duration::from_secs(5)).await {
                        let message = if k.killed {
                            format!("host {}: killed `{}` there", k.host, k.label)
                        } else {
                            format!("host {} may still be running: {} (its lock is kept until it ends)", k.host, k.label)
                        };
                        eprintln!("{message}");
                        reporter.emit(Event::Interrupt { abort: true, message });
                    }
                    crate::safety::confirm::restore_terminal();
                    std::process::exit(exit::INTERRUPTED);
                }
            }
        });
    }
    let opts = RunOptions {
        interrupted,
        check: g.dry_run,
        forks: g.forks() as usize,
        extra_vars: extra,
        limit,
        project_root: root.clone(),
        run_id: run_id.clone(),
        policy,
        baseline,
        command_line: command_line.clone(),
        backup_copy: a.backup_copy.clone(),
        only_tags: only,
        skip_tags: skip,
        start_at_task: a.start_at_task.clone(),
        verbosity: g.verbose,
        step: a.step,
        plan: match (&a.save_plan, &a.apply) {
            (Some(_), _) => Some(Arc::new(crate::plan::Mode::Record(Default::default()))),
            (None, Some(c)) => Some(Arc::new(crate::plan::Mode::Apply(c.pf.clone()))),
            _ => None,
        },
        timestamp: match (&a.apply, &a.save_plan) {
            (Some(c), _) => Some(c.pf.plan.timestamp.clone()),
            (None, Some(_)) => Some(chrono::Local::now().format("%Y%m%d-%H%M%S").to_string()),
            _ => None,
        },
    };
    let mut code = match &a.apply {
        // Every host of the plan is stale: nothing runs.
        Some(c) if c.fresh.is_empty() => {
            let hosts = c.stale.iter().map(|(h, _)| (h.clone(), crate::report::Counts { refused: 1, ..Default::default() })).collect();
            reporter.emit(Event::Recap { hosts, exit_code: exit::REFUSED });
            exit::REFUSED
        }
        // A plan is applied once: recorded (exclusively) before its first step runs.
        Some(c) => match crate::plan::approval::mark_applied(&c.pf.digest, &run_id, &operator, &c.file.display().to_string()) {
            Err(msg) => {
                reporter.emit(Event::Interrupt { abort: true, message: format!("refused: {msg}; nothing was run") });
                eprintln!("{} {msg}; nothing was run", console::style("refused:").red().bold());
                exit::REFUSED
            }
            Ok(()) => {
                reporter.emit(Event::PlanApply { file: c.file.display().to_string(), plan_digest: c.pf.digest.clone(), approvals: c.approvers.clone() });
                executor::run(&pb, inventory.clone(), &opts, reporter.clone()).await
            }
        },
        None => executor::run(&pb, inventory.clone(), &opts, reporter.clone()).await,
    };
    if let Some(c) = &a.apply {
        if !c.stale.is_empty() && code == exit::OK {
            code = exit::REFUSED;
        }
    }
    if let (Some(file), Some(mode)) = (&a.save_plan, &opts.plan) {
        code = super::saved::save(super::saved::SaveInput { g, tags: &a.tags, skip_tags: &a.skip_tags, file, mode, path: &path, root: &root, inventory: &inventory, baseline: opts.baseline.as_ref(), run_id: &run_id, operator: &operator, timestamp: opts.timestamp.clone().unwrap_or_default() }, code, &reporter).await;
    }
    if ABORTING.load(std::sync::atomic::Ordering::SeqCst) {
        // The signal handler is killing what ran on the hosts and reports it, then exits 130.
        tokio::time::sleep(std::time::Duration::from_secs(15)).await;
    }
    if let Some(book) = &a.logbook {
        let entry = crate::report::logbook_entry(&reporter, &run_id, &operator, &command_line, &path.display().to_string(), g.dry_run, code);
        let res = std::fs::OpenOptions::new().create(true).append(true).open(book).and_then(|mut f| std::io::Write::write_all(&mut f, entry.as_bytes()));
        if let Err(e) = res {
            eprintln!("warning: cannot append to the logbook {}: {e}", book.display());
        }
    }
    if let (Some(p), Output::Text) = (reporter.log_path(), g.output) {
        crate::report::stdout_line(&format!("  run log: {}", p.display()));
    }
    Ok(code)
}

/// Set by a second stop signal while its handler kills the remote commands.
static ABORTING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The first of several futures to finish (a tiny `select_all`).
async fn futures_select_all<F: std::future::Future + Unpin>(futs: impl IntoIterator<Item = F>) -> (F::Output, usize, ()) {
    let mut futs: Vec<F> = futs.into_iter().collect();
    std::future::poll_fn(move |cx| {
        for (i, f) in futs.iter_mut().enumerate() {
            if let std::task::Poll::Ready(v) = std::pin::Pin::new(f).poll(cx) {
                return std::task::Poll::Ready((v, i, ()));
            }
        }
        std::task::Poll::Pending
    })
    .await
}
