//! Saved plans: `play --dry-run --save-plan FILE`, `plan show FILE`, `approve FILE`,
//! `apply FILE`. The commander approves the exact plan; `apply` runs exactly it, or nothing.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Subcommand};

use super::{Global, Output};
use crate::executor::exit;
use super::saved::{absolute, connections, fingerprints, playbook_source, ApplyCtx};
use crate::plan::{self, Approval, PlanFile};
use crate::report::{Event, ReportOptions, Reporter};

#[derive(Args, Debug)]
pub struct PlanArgs {
    #[command(subcommand)]
    pub command: PlanCommand,
}

#[derive(Subcommand, Debug)]
pub enum PlanCommand {
    /// Print a saved plan as its dry-run showed it, with its fingerprint and approvals
    Show {
        /// The plan file (from `recover play ... --dry-run --save-plan FILE`)
        file: PathBuf,
    },
}

#[derive(Args, Debug)]
pub struct ApproveArgs {
    /// The plan file
    pub file: PathBuf,
    /// Who approves (default: $USER): letters, digits, '.', '_', '@', '-', case-folded. With
    /// `plan_two_person: true` in recover.yml, a plan with BLOCK steps needs two different
    /// people: two OS users (or two registered approver keys), whatever the names
    #[arg(long = "as", value_name = "NAME")]
    pub approver: Option<String>,
    /// How long the approval holds (30m, 1h, 2h, 90s); at most `approval_max_age` of
    /// recover.yml (default 24h)
    #[arg(long, value_name = "DURATION", default_value = "1h")]
    pub expires: String,
    /// Approve without asking (no terminal: required)
    #[arg(long)]
    pub yes: bool,
    /// Where approver keys are registered in recover.yml (`approvers:`): the private key that
    /// signs the approval (default ~/.ssh/id_ed25519)
    #[arg(long, value_name = "PATH")]
    pub key: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ApplyArgs {
    /// The approved plan file
    pub file: PathBuf,
    /// For cron and the AI auto-repair system: applies the plan only if a person approved it
    /// and every step that changes a host is AUTO tier; otherwise an approval request (exit 4)
    #[arg(long)]
    pub automation: bool,
    /// Take over a host lock left by a dead run (recorded in the run log)
    #[arg(long)]
    pub break_lock: bool,
    /// Who runs this, for the audit record (default: $USER)
    #[arg(long, value_name = "NAME")]
    pub operator: Option<String>,
    /// Also stream every backup to DIR/HOST/ on this machine and check it here
    #[arg(long, value_name = "DIR")]
    pub backup_copy: Option<PathBuf>,
    /// Append a markdown summary of the run to FILE
    #[arg(long, value_name = "FILE")]
    pub logbook: Option<PathBuf>,
    /// Ask for the become (sudo) password at the terminal (as `recover play -K`)
    #[arg(short = 'K', long = "ask-become-pass")]
    pub ask_become_pass: bool,
}

fn refuse(g: &Global, msg: &str) -> i32 {
    if g.output == Output::Json {
        crate::report::stdout_line(&serde_json::json!({"event": "plan_refused", "msg": msg}).to_string());
    }
    eprintln!("{} {msg}", console::style("refused:").red().bold());
    exit::REFUSED
}

fn approval_line(a: &Approval, now: i64) -> String {
    let state = if a.expires_unix <= now { "expired" } else { "valid" };
    format!("{} at {} (until {}, {state})", a.approver, a.time, a.expires())
}

pub fn show(g: &Global, a: &PlanArgs) -> anyhow::Result<i32> {
    let PlanCommand::Show { file } = &a.command;
    let pf = PlanFile::read(file).map_err(anyhow::Error::msg)?;
    let p = &pf.plan;
    if g.output == Output::Json {
        outln!("{}", serde_json::json!({"digest": pf.digest, "plan": p, "approvals": pf.approvals}))?;
        return Ok(0);
    }
    let now = chrono::Utc::now().timestamp();
    outln!("plan {} (sha256 {})", file.display(), pf.digest)?;
    use crate::report::clean_line as c;
    outln!("  made by {} at {} with recover {}", c(&p.author), c(&p.created), c(&p.recover_version))?;
    outln!("  playbook {}", c(&p.invocation.playbook))?;
    outln!("  inventory {}", c(&p.invocation.inventory.join(", ")))?;
    if !p.invocation.extra_vars.is_empty() {
        outln!("  extra vars {}", c(&p.invocation.extra_vars.join(" ")))?;
    }
    let reporter = Reporter::new(ReportOptions { json: false, color: super::color(g), diff: g.diff, verbosity: g.verbose });
    for e in &p.events {
        if let Ok(ev) = serde_json::from_value::<Event>(e.clone()) {
            if !matches!(ev, Event::PlanSaved { .. }) {
                reporter.emit(ev);
            }
        }
    }
    outln!("\nFINGERPRINT (what `recover apply` checks first)")?;
    for (host, h) in &p.hosts {
        let fp = &h.fingerprint;
        outln!("  {}: read {} as {}", c(host), c(&fp.read_at), c(fp.read_as.as_deref().unwrap_or("the login user")))?;
        for ps in &fp.paths {
            let detail = match ps.kind.as_str() {
                "absent" => "absent".to_string(),
                "directory" => format!("directory, {} entries, {}, tree sha256 {}", ps.entries.unwrap_or(0), plan::human_bytes(ps.bytes.unwrap_or(0)), plan::short(ps.sha256.as_deref().unwrap_or("-"))),
                k => format!("{k}, {}, mode {}, {}, sha256 {}", plan::human_bytes(ps.size.unwrap_or(0)), ps.mode.as_deref().unwrap_or("-"), ps.owner.as_deref().unwrap_or("-"), plan::short(ps.sha256.as_deref().unwrap_or("not hashed"))),
            };
            outln!("    {}: {}", c(&ps.path), c(&detail))?;
        }
        for s in &fp.services {
            outln!("    service {}: {}", c(&s.name), c(&s.state))?;
        }
        for s in h.steps.iter().filter(|s| s.kind == "read" && s.before_change && s.output_sha256.is_some()) {
            outln!("    diagnosis '{}': output sha256 {}", c(&s.task), plan::short(s.output_sha256.as_deref().unwrap_or_default()))?;
        }
    }
    outln!("\nAPPROVALS")?;
    if pf.approvals.is_empty() {
        outln!("  none yet: recover approve {}", file.display())?;
    }
    for ap in &pf.approvals {
        outln!("  {}", c(&approval_line(ap, now)))?;
    }
    let needed = if plan::two_person_rule() && p.highest_tier() == Some(crate::safety::Tier::Block) { 2 } else { 1 };
    outln!("  needed: {needed} approver(s){}", if needed == 2 { " (plan_two_person: its steps include BLOCK)" } else { "" })?;
    Ok(0)
}

pub fn approve(g: &Global, a: &ApproveArgs) -> anyhow::Result<i32> {
    use crate::plan::approval as approvers;
    let mut pf = PlanFile::read(&a.file).map_err(anyhow::Error::msg)?;
    let ttl = plan::parse_duration(&a.expires).map_err(|e| anyhow::anyhow!("--expires: {e}"))?;
    let max = approvers::max_expiry();
    if ttl > max {
        anyhow::bail!("--expires {}: longer than the longest approval allowed ({}s; `approval_max_age` in recover.yml)", a.expires, max);
    }
    let approver = plan::approver_name(&a.approver.clone().unwrap_or_else(crate::safety::default_operator)).map_err(|e| anyhow::anyhow!("--as: {e}"))?;
    let keys = approvers::registered_keys().map_err(anyhow::Error::msg)?;
    if !keys.is_empty() && !keys.iter().any(|(n, _)| *n == approver) {
        anyhow::bail!("{approver} is not an approver registered in recover.yml (`approvers:`): registered are {}", keys.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", "));
    }
    if pf.plan.recover_version != env!("CARGO_PKG_VERSION") {
        return Ok(refuse(g, &format!("{}: made by recover {}, this is {}: make the plan again with this recover", a.file.display(), pf.plan.recover_version, env!("CARGO_PKG_VERSION"))));
    }
    if let Some(first) = approvers::applied(&pf.digest) {
        return Ok(refuse(g, &format!("{}: this plan was applied already ({first}); a plan is applied once: make a new one", a.file.display())));
    }
    let p = &pf.plan;
    let tier = p.highest_tier().map(|t| t.to_string()).unwrap_or_else(|| "no destructive step".into());
    outln!("plan {} (sha256 {}), made by {} at {}", a.file.display(), plan::short(&pf.digest), crate::report::clean_line(&p.author), p.created)?;
    for (host, h) in &p.hosts {
        for s in h.changes() {
            outln!("  {}: {}{}", crate::report::clean_line(host), crate::report::clean_line(&s.task), s.tier.as_ref().map(|t| format!(" [{t}]")).unwrap_or_default())?;
            for c in &s.commands {
                outln!("      {}", crate::report::clean(c))?;
            }
        }
    }
    outln!("  {} step(s) change hosts; highest tier: {tier}; `recover plan show {}` shows all of it", p.change_count(), a.file.display())?;
    if !a.yes {
        if !crate::safety::confirm::interactive() {
            anyhow::bail!("approving needs a yes at a terminal, or --yes");
        }
        let ok = dialoguer::Confirm::new().with_prompt(format!("approve this plan as {approver} for {}?", a.expires)).default(false).interact().unwrap_or(false);
        if !ok {
            outln!("not approved")?;
            return Ok(exit::REFUSED);
        }
    }
    let now = chrono::Utc::now();
    let ap = if keys.is_empty() {
        Approval::new(&pf.digest, &approver, &approvers::os_identity(), now, ttl)
    } else {
        let key = a.key.clone().or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".ssh/id_ed25519"))).unwrap_or_else(|| PathBuf::from("id_ed25519"));
        let signed = approvers::sign(Approval::new(&pf.digest, &approver, &format!("key:{approver}"), now, ttl), &key).map_err(anyhow::Error::msg)?;
        approvers::verify(&signed, &keys).map_err(|e| anyhow::anyhow!("the signature by {} does not match {approver}'s registered key: {e}", key.display()))?;
        signed
    };
    // The approval is in the audit chain (this operator's run log, and the shared folder other
    // operators read) before it is in the plan: `apply` accepts only those.
    approvers::attach(&a.file, &mut pf, &ap).map_err(|e| anyhow::anyhow!("{e}; not approved"))?;
    let check = plan::check_approvals(&pf, chrono::Utc::now().timestamp(), plan::two_person_rule(), &plan::audited_approvals(), &|x| approvers::verify(x, &keys));
    outln!("approved by {approver} ({}) until {}; {} of {} approver(s) needed", ap.identity, ap.expires(), check.distinct().len(), check.needed)?;
    if check.enough() {
        outln!("next: recover apply {}", a.file.display())?;
    }
    Ok(exit::OK)
}

pub async fn apply(g: &Global, a: &ApplyArgs) -> anyhow::Result<i32> {
    if !g.inventory.is_empty() || !g.extra_vars.is_empty() || g.limit.is_some() || g.host.is_some() {
        anyhow::bail!("recover apply runs the plan as it was made: -i, -e, -l and --host are the plan's (see `recover plan show {}`)", a.file.display());
    }
    let pf = match PlanFile::read(&a.file) {
        Ok(pf) => pf,
        Err(e) => return Ok(refuse(g, &format!("{e}; nothing was run"))),
    };
    let p = &pf.plan;
    let plan_path = absolute(&a.file);
    let file = a.file.display().to_string();
    // Where the dry-run ran: the same project, recover.yml and relative paths.
    if !p.invocation.cwd.is_empty() {
        if let Err(e) = std::env::set_current_dir(&p.invocation.cwd) {
            return Ok(refuse(g, &format!("{file}: cannot enter {}, where the plan was made: {e}; nothing was run", p.invocation.cwd)));
        }
    }
    if p.recover_version != env!("CARGO_PKG_VERSION") {
        return Ok(refuse(g, &format!("{file}: made by recover {}, this is {}; make the plan again; nothing was run", p.recover_version, env!("CARGO_PKG_VERSION"))));
    }
    let inv = &p.invocation;
    let g2 = Global {
        inventory: inv.inventory.iter().map(PathBuf::from).collect(),
        extra_vars: inv.extra_vars.clone(),
        limit: None,
        host: None,
        forks: inv.forks.or(g.forks),
        dry_run: false,
        vault_password_file: if g.vault_password_file.is_empty() { inv.vault_password_file.clone() } else { g.vault_password_file.clone() },
        vault_id: if g.vault_id.is_empty() { inv.vault_id.clone() } else { g.vault_id.clone() },
        ..g.clone()
    };
    let inventory = Arc::new(super::load_inventory(&g2)?);
    let now_inv = plan::source_of(&inventory.sources);
    if now_inv.sha256 != p.inventory.sha256 {
        return Ok(refuse(g, &format!("stale plan: the inventory ({}) changed since the plan was made at {}; nothing was run", p.inventory.paths.join(", "), p.created)));
    }
    let path = PathBuf::from(&inv.playbook);
    let (_, root) = super::play::find_playbook(&super::project_root(), &inv.playbook)?;
    if playbook_source(&path, &root, &inv.extra_vars).sha256 != p.playbook.sha256 {
        return Ok(refuse(g, &format!("stale plan: the playbook {} or its roles, vars or templates changed since the plan was made at {}; nothing was run", inv.playbook, p.created)));
    }
    let baseline_now = inventory.sources.first().and_then(|i| crate::baseline::locate(&root, i)).and_then(|b| crate::baseline::Baseline::load(&b).ok()).map(|b| plan::source_of(&b.files).sha256);
    if baseline_now != p.baseline.as_ref().map(|b| b.sha256.clone()) {
        return Ok(refuse(g, &format!("stale plan: the baseline (the tiers) changed since the plan was made at {}; nothing was run", p.created)));
    }
    // A plan is applied once (invariant 15).
    if let Some(first) = crate::plan::approval::applied(&pf.digest) {
        return Ok(refuse(g, &format!("{file}: this plan was applied already ({first}); a plan is applied once: make a new one; nothing was run")));
    }
    let keys = match crate::plan::approval::registered_keys() {
        Ok(k) => k,
        Err(e) => return Ok(refuse(g, &format!("{e}; nothing was run"))),
    };
    let now = chrono::Utc::now().timestamp();
    let check = plan::check_approvals(&pf, now, plan::two_person_rule(), &plan::audited_approvals(), &|x| crate::plan::approval::verify(x, &keys));
    if !check.enough() {
        let have = check.distinct();
        let mut msg = format!(
            "{file}: needs {} approver(s){}, has {}{}",
            check.needed,
            if check.needed == 2 { " (plan_two_person in recover.yml, and the plan has BLOCK steps; a person counts once, by name and by OS user or key)" } else { "" },
            have.len(),
            if have.is_empty() { String::new() } else { format!(" ({})", have.join(", ")) }
        );
        if !check.problems.is_empty() {
            msg.push_str(&format!("; {}", check.problems.join("; ")));
        }
        msg.push_str(&format!("; run `recover approve {file}`; nothing was run"));
        return Ok(refuse(g, &msg));
    }
    let approvers = check.distinct();
    if a.automation {
        let not_auto: Vec<(String, &plan::StepEntry)> = p.hosts.iter().flat_map(|(h, hp)| hp.changes().filter(|s| s.tier.as_deref() != Some("AUTO")).map(move |s| (h.clone(), s))).collect();
        if !not_auto.is_empty() {
            let reporter = Reporter::new(ReportOptions { json: true, color: false, diff: false, verbosity: g.verbose });
            for (host, s) in &not_auto {
                reporter.emit(Event::ApprovalRequest {
                    host: host.clone(),
                    task: s.task.clone(),
                    tier: s.tier.clone().unwrap_or_else(|| "not AUTO".into()),
                    playbook: inv.playbook.clone(),
                    reason: s.reason.clone().unwrap_or_else(|| "changes the host".into()),
                    flag: format!("recover apply {file} (by a person)"),
                });
            }
            return Ok(refuse(g, &format!("--automation applies a plan only when every step that changes a host is AUTO tier; {} step(s) are not (first: '{}' on {}); an approval request was recorded", not_auto.len(), not_auto[0].1.task, not_auto[0].0)));
        }
    }
    // Each host is reached as the plan recorded it (an edited host_vars could point it elsewhere).
    let extra_now = super::extra_vars(&g2)?;
    match connections(&inventory, extra_now, p.hosts.keys()) {
        Ok(now) => {
            for (h, was) in &p.connections {
                if now.get(h) != Some(was) {
                    return Ok(refuse(g, &format!("stale plan: host {h} would be reached as {}, the plan was made reaching it as {was}; nothing was run", now.get(h).map(|v| v.to_string()).unwrap_or_else(|| "nothing (it is gone)".into()))));
                }
            }
        }
        Err(e) => return Ok(refuse(g, &format!("{e}; nothing was run"))),
    }
    // Each host's state as the plan saw it, in one round trip per host.
    let steps: BTreeMap<String, Vec<plan::StepEntry>> = p.hosts.iter().map(|(h, hp)| (h.clone(), hp.steps.clone())).collect();
    let max = p.hosts.values().map(|h| h.fingerprint.hash_max_bytes).max().unwrap_or(plan::DEFAULT_HASH_MAX_BYTES);
    let extra = super::extra_vars(&g2)?;
    let mut fresh = Vec::new();
    let mut stale = Vec::new();
    for (host, now_fp) in fingerprints(&inventory, extra, &steps, max).await {
        let was = &p.hosts[&host].fingerprint;
        let diffs = match now_fp {
            Ok(fp) => plan::differences(was, &fp).into_iter().map(|d| format!("{d} since the plan was made at {}", p.created)).collect(),
            Err(e) => vec![format!("cannot read its state: {e}")],
        };
        if diffs.is_empty() {
            fresh.push(host);
        } else {
            stale.push((host, diffs));
        }
    }
    let ctx = ApplyCtx {
        approval: format!("plan {} approved by {}", plan::short(&pf.digest), approvers.join(", ")),
        approvers,
        file: plan_path,
        fresh: fresh.clone(),
        stale,
        pf: Arc::new(pf.clone()),
    };
    let g3 = Global { limit: Some(if fresh.is_empty() { p.hosts.keys().cloned().collect::<Vec<_>>().join(",") } else { fresh.join(",") }), ..g2 };
    let pa = super::play::PlayArgs {
        playbook: inv.playbook.clone(),
        break_lock: a.break_lock,
        operator: a.operator.clone(),
        automation: a.automation,
        backup_copy: a.backup_copy.clone(),
        logbook: a.logbook.clone(),
        tags: inv.tags.clone(),
        skip_tags: inv.skip_tags.clone(),
        ask_become_pass: a.ask_become_pass,
        apply: Some(Arc::new(ctx)),
        ..Default::default()
    };
    super::play::run(&g3, &pa).await
}
