//! The command line (clap derive): one file per subcommand, wiring only.

/// `println!` for commands: an error when stdout is gone (`recover check | head`), so the
/// command ends through its normal path (connections closed) and `main` exits quietly. Rust
/// ignores SIGPIPE, and a bare `println!` would panic; restoring SIGPIPE would also kill the
/// process on a write to a dead SSH session. (`play` prints through the Reporter instead.)
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($t)*).map_err(anyhow::Error::from)
    }};
}
/// `print!` for commands; see [`outln`].
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        write!(std::io::stdout().lock(), $($t)*).map_err(anyhow::Error::from)
    }};
}

mod backups;
mod check;
mod disconnect;
mod doc;
mod exec;
mod freeze;
mod history;
mod init;
mod inventory;
mod list;
mod plan;
mod play;
mod render;
mod saved;
mod serve;
mod vault;

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::error::{SourceError, Span};
use crate::inventory::Inventory;
use crate::template::Vars;

const AFTER_HELP: &str = "\
Examples:
  recover list                                   the playbooks, what they do, which steps are destructive
  recover play sample-site --dry-run --diff       what would change, with diffs; changes nothing
  recover play sample-site -l data                run it on the `data` group only
  recover exec k3s -- uptime                      a command on every K3s host, in parallel
  recover inventory --graph                       the fleet as a tree
  recover render roles/nginx/templates/188-all-sites.conf.j2 --host 188   a template as 188 gets it

The inventory is -i, else the `inventory:` of recover.yml in this folder or above, else $RECOVER_INVENTORY.";

/// Ansible-style remote execution and remediation for cold-start recovery.
#[derive(Parser, Debug)]
#[command(name = "recover", version, about, after_help = AFTER_HELP, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand takes.
#[derive(Args, Debug, Clone)]
pub struct Global {
    /// Inventory: a YAML, INI or TOML file, a folder of them, a constructed plugin file, or
    /// a host list (`web1,web2,`); repeatable, read in order
    #[arg(short = 'i', long, global = true, value_name = "PATH")]
    pub inventory: Vec<PathBuf>,
    /// Only hosts matching this pattern (e.g. `k3s:!121`, `data`, `188`)
    #[arg(short = 'l', long, global = true, value_name = "PATTERN")]
    pub limit: Option<String>,
    /// Only this one host (an inventory name such as 188)
    #[arg(long, global = true, value_name = "HOST")]
    pub host: Option<String>,
    /// Extra variables, highest precedence: `k=v`, `@vars.yml` or JSON; repeatable
    #[arg(short = 'e', long = "extra-vars", global = true, value_name = "VARS")]
    pub extra_vars: Vec<String>,
    /// How many hosts at once
    #[arg(short = 'f', long, global = true, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub forks: Option<u32>,
    /// Show what would change, change nothing (runs only read-only steps)
    #[arg(long, visible_alias = "check", global = true)]
    pub dry_run: bool,
    /// Show a unified diff for every file change
    #[arg(long, global = true)]
    pub diff: bool,
    /// Output format
    #[arg(long, global = true, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// More detail (-v, -vv, -vvv)
    #[arg(short = 'v', long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// No colors (also: NO_COLOR set)
    #[arg(long, global = true)]
    pub no_color: bool,
    /// A vault password file, or an executable that prints the password; repeatable
    #[arg(long, global = true, value_name = "FILE")]
    pub vault_password_file: Vec<String>,
    /// A vault id: LABEL@SOURCE (a file, an executable, or `prompt`); repeatable
    #[arg(long, global = true, value_name = "ID")]
    pub vault_id: Vec<String>,
    /// Ask for the vault password at the terminal
    #[arg(long, global = true)]
    pub ask_vault_pass: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq)]
pub enum Output {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a playbook (NAME finds playbooks/NAME.yml)
    #[command(after_help = "Examples:\n  recover play sample-site --dry-run --diff\n  recover play sample-site --host 188\n  recover play playbooks/sample-site.yml -e nginx_listen=127.0.0.188:9000\n\nExit: 0 all ok, 2 a step failed, 3 a host unreachable, 4 refused by safety policy, 1 bad input.")]
    Play(play::PlayArgs),
    /// List the playbooks with their description, hosts and destructive steps
    #[command(after_help = "Example:\n  recover list")]
    List,
    /// Show the inventory like ansible-inventory
    #[command(after_help = "Examples:\n  recover inventory --graph\n  recover inventory -i inventory/awoooi.yml --list\n  recover inventory --host 188")]
    Inventory(inventory::InventoryArgs),
    /// Run an ad-hoc command on every matching host, in parallel
    #[command(after_help = "Examples:\n  recover exec k3s -- uptime\n  recover exec 'all:!121' -- 'df -h / | tail -1'\n  recover exec data --become -- id -un\n\nOne word after -- runs as a shell script; several words run as an argv, without a shell.\nExit: 0 all exited 0, 2 a command failed, 3 a host unreachable.")]
    Exec(exec::ExecArgs),
    /// The cold-start phase gates: PASS / WARN / BLOCKED per gate, the first thing to fix
    #[command(after_help = "Examples:\n  recover check\n  recover check --watch --interval 60 --max-attempts 30 --send-alert-test\n  recover check --monitor-read-only --textfile /tmp/cold_start_recovery.prom\n\nExit: 0 GREEN, 1 WARN (DEGRADED), 2 BLOCKED.")]
    Check(check::CheckArgs),
    /// The automation gate (SOP 12.2): every condition with its reason; recorded for --automation runs
    #[command(after_help = "Example:\n  recover gate\n\nExit: 0 green, 1 not green.")]
    Gate(check::BaselineArg),
    /// Live config against its template (and files that must be equal), as unified diffs; changes nothing
    #[command(after_help = "Example:\n  recover drift\n\nExit: 0 no drift, 1 drift found, 2 error.")]
    Drift(check::BaselineArg),
    /// Freeze automation (SOP section 2): --automation runs are refused until `recover thaw`
    #[command(after_help = "Example:\n  recover freeze --reason \"cold start in progress, observe only\"")]
    Freeze(freeze::FreezeArgs),
    /// Lift the automation freeze
    Thaw,
    /// The freeze, the automation gate, the last run, the backups recorded
    Status,
    /// Past runs and what they did (the audit trail)
    #[command(after_help = "Examples:\n  recover history\n  recover history RUN_ID       (a run id from `recover history`, or its first characters)\n  recover history RUN_ID --html run.html   (one page for the incident record)")]
    History(history::HistoryArgs),
    /// The verified backups runs took: list, verify, restore
    #[command(after_help = "Examples:\n  recover backups list --host 188\n  recover backups verify ID            (an id from `recover backups list`)\n  recover backups restore ID --dry-run\n  recover backups restore ID --approve restore@188   (no terminal, BLOCK tier)\n\nExit: 0 done, 4 refused (nothing changed), 2 failed.")]
    Backups(backups::BackupsArgs),
    /// Make a starting project: recover.yml, an inventory to fill in, the baseline, the built-in playbooks to edit
    #[command(after_help = "Examples:\n  recover init ~/fleet\n  cd ~/fleet && recover list")]
    Init(init::InitArgs),
    /// Shell completions, generated from these definitions
    #[command(after_help = "Examples:\n  recover completions bash > /etc/bash_completion.d/recover\n  source <(recover completions bash)")]
    Completions(init::CompletionsArgs),
    /// The man page (roff), generated from these definitions
    #[command(after_help = "Example:\n  recover man > recover.1 && man -l recover.1")]
    Man,
    /// The shell script `gather_facts` sends to a host (for the benchmark's floor)
    #[command(hide = true)]
    FactsScript,
    /// Ansible Vault: encrypt, decrypt, view, edit, encrypt_string, rekey (ansible-vault's formats 1.1 and 1.2)
    #[command(after_help = "Examples:\n  recover vault encrypt group_vars/all/secrets.yml --vault-password-file ~/.vault_pass\n  recover vault encrypt_string 's3cret' --name db_password --vault-id prod@prompt\n  recover play pg-wal --vault-password-file ~/.vault_pass")]
    Vault(vault::VaultArgs),
    /// Saved plans: `recover plan show FILE` prints one as its dry-run showed it
    #[command(after_help = "Commander approval:\n  recover play pg-wal --host 188 --dry-run --save-plan pg-wal.plan   make the plan (changes nothing)\n  recover plan show pg-wal.plan                                        review it\n  recover approve pg-wal.plan --as commander                           approve exactly it (1h)\n  recover apply pg-wal.plan                                            run exactly it, or nothing\n")]
    Plan(plan::PlanArgs),
    /// Approve a saved plan: who, when, until when (recorded in the plan and the audit trail)
    #[command(after_help = "Examples:\n  recover approve pg-wal.plan --as commander\n  recover approve pg-wal.plan --as second-engineer --expires 30m --yes\n\nWith `plan_two_person: true` in recover.yml a plan with BLOCK steps needs two different approvers.\nExit: 0 approved, 4 not approved, 1 bad input.")]
    Approve(plan::ApproveArgs),
    /// Run an approved plan exactly: refused (exit 4) where a host changed since it was made
    #[command(after_help = "Examples:\n  recover apply pg-wal.plan\n  recover apply pg-wal.plan --automation   (only AUTO-tier plans approved by a person)\n\nFirst, in one round trip per host, the paths and services the plan touches are read again; a host\nwhose state differs is refused with the difference named. A plan or inventory that changed, missing\nor expired approvals, or another recover version refuse the whole plan.\nExit: 0 all ok, 2 a step failed, 3 a host unreachable, 4 refused (stale, unapproved, altered), 1 bad input.")]
    Apply(plan::ApplyArgs),
    /// Close the SSH connections kept for the next run (recover_ssh_persist): all, or -l/--host
    #[command(after_help = "With `recover_ssh_persist: 60s` (a host or group variable, ssh_persist: in recover.yml, or\nRECOVER_SSH_PERSIST) a host's SSH master outlives the run, idle up to that long, so the next run\n(the real run after a dry-run, the next check --watch attempt) pays no handshake. Its socket lives\nin a 0700 folder of yours ($XDG_RUNTIME_DIR/recover-ssh, else ~/.cache/recover-ssh).\n\nExamples:\n  recover disconnect\n  recover disconnect -l k3s")]
    Disconnect,
    /// A module's documentation (as ansible-doc): its arguments, what it returns, what check mode does
    #[command(after_help = "Examples:\n  recover doc lineinfile\n  recover doc ansible.builtin.copy\n  recover doc --list\n  recover doc stat --output json")]
    Doc(doc::DocArgs),
    /// The cold-start board in a browser: the gates as a live dependency graph, runs, backups, plans
    #[command(after_help = "Examples:\n  recover serve                        http://127.0.0.1:8470/ (loopback only)\n  recover serve --interval 30 -i inventory/awoooi.yml\n  recover serve --listen 0.0.0.0:8470 --tls-cert board.pem --tls-key board.key\n\nThe server runs the gates itself every --interval seconds, however many browsers watch; pages\nupdate live. Nothing in the browser changes the fleet.\nExit: 1 bad input (a non-loopback --listen without TLS).")]
    Serve(serve::ServeArgs),
    /// Render a template to stdout (with a host's variables given --host)
    #[command(after_help = "Examples:\n  recover render roles/nginx/templates/188-all-sites.conf.j2 --host 188\n  recover render templates/site.conf.j2 --host 188 -e site_name=demo -e site_root=/srv/demo")]
    Render(render::RenderArgs),
}

/// Parses the arguments and runs; returns the exit code.

/// Refuses a global flag the subcommand would not honour (`freeze --dry-run` must not freeze).
fn flags_apply(cli: &Cli) -> Result<(), String> {
    let g = &cli.global;
    let (name, dry_run, json, diff) = match &cli.command {
        Command::Play(_) => ("play", true, true, true),
        Command::Exec(_) => ("exec", true, true, false),
        Command::Check(_) => ("check", true, true, false),
        Command::Gate(_) => ("gate", true, false, false),
        Command::Drift(_) => ("drift", true, true, true),
        Command::Backups(a) => ("backups", matches!(a.command, backups::BackupsCommand::Restore { .. }), !matches!(a.command, backups::BackupsCommand::Restore { .. }), false),
        Command::History(_) => ("history", false, true, false),
        Command::Status => ("status", false, true, false),
        Command::Inventory(a) => ("inventory", false, a.graph.is_none(), false),
        Command::List => ("list", false, true, false),
        Command::Freeze(_) => ("freeze", false, false, false),
        Command::Thaw => ("thaw", false, false, false),
        Command::Render(_) => ("render", false, false, false),
        Command::Doc(_) => ("doc", false, true, false),
        Command::Disconnect => ("disconnect", false, false, false),
        Command::Init(_) => ("init", false, false, false),
        Command::Completions(_) => ("completions", false, false, false),
        Command::Man => ("man", false, false, false),
        Command::FactsScript => ("facts-script", false, false, false),
        Command::Vault(_) => ("vault", false, false, false),
        Command::Plan(_) => ("plan", false, true, true),
        Command::Approve(_) => ("approve", false, false, false),
        Command::Serve(_) => ("serve", false, false, false),
        Command::Apply(_) => ("apply", false, true, true),
    };
    if g.dry_run && !dry_run {
        return Err(format!("--dry-run does not apply to `recover {name}` (it would act, not plan); leave it out"));
    }
    if g.output == Output::Json && !json {
        return Err(format!("--output json does not apply to `recover {name}`{}", if name == "inventory" { " --graph (use --list for JSON)" } else { "" }));
    }
    if g.diff && !diff {
        return Err(format!("--diff does not apply to `recover {name}`"));
    }
    Ok(())
}

/// The exit status of a command whose stdout was closed under it, as a shell reports SIGPIPE.
const STDOUT_CLOSED: i32 = 141;

pub fn main() -> i32 {
    // Bad input exits 1 everywhere (2 means "a step failed" for play, BLOCKED for check).
    let mut cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    if let Err(msg) = flags_apply(&cli) {
        eprintln!("{} {msg}", console::style("error:").red().bold());
        return 1;
    }
    // ansible.cfg (and ANSIBLE_* variables) as ansible-core finds them.
    let cfg = match crate::ansible_cfg::load() {
        Ok(c) => c,
        Err(msg) => {
            eprintln!("{} ansible.cfg: {msg}", console::style("error:").red().bold());
            return 1;
        }
    };
    if cli.global.vault_password_file.is_empty() && !cli.global.ask_vault_pass {
        cli.global.vault_password_file.extend(cfg.paths("vault_password_file").into_iter().map(|p| p.display().to_string()));
    }
    if cli.global.forks.is_none() {
        match cfg.get("forks").map(|f| f.trim().parse::<u32>()) {
            Some(Ok(n)) if (1..=1000).contains(&n) => cli.global.forks = Some(n),
            Some(_) => {
                eprintln!("{} ansible.cfg: forks must be a number from 1 to 1000", console::style("error:").red().bold());
                return 1;
            }
            None => {}
        }
    }
    // The vault passwords, before anything is loaded.
    if let Err(msg) = vault::setup(&cli.global) {
        eprintln!("{} {msg}", console::style("error:").red().bold());
        return 1;
    }
    // Commands that contact no host run without the async runtime (its worker threads cost
    // more than a whole `recover render`).
    let sync = match &cli.command {
        Command::List => Some(list::run(&cli.global)),
        Command::Inventory(a) => Some(inventory::run(&cli.global, a)),
        Command::Render(a) => Some(render::run(&cli.global, a)),
        Command::Doc(a) => Some(doc::run(&cli.global, a)),
        Command::History(a) => Some(history::run(&cli.global, a)),
        Command::Status => Some(freeze::status_cmd(&cli.global)),
        Command::Init(a) => Some(init::init(&cli.global, a)),
        Command::Completions(a) => Some(init::completions(a)),
        Command::Man => Some(init::man()),
        Command::FactsScript => {
            print!("{}", crate::gather::script(None, None));
            Some(Ok(0))
        }
        Command::Vault(a) => Some(vault::run(&cli.global, a)),
        Command::Plan(a) => Some(plan::show(&cli.global, a)),
        Command::Approve(a) => Some(plan::approve(&cli.global, a)),
        _ => None,
    };
    let result = match sync {
        Some(r) => r,
        None => {
            let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("error: cannot start the runtime: {e}");
                    return 1;
                }
            };
            rt.block_on(async {
                match &cli.command {
                    Command::Play(a) => play::run(&cli.global, a).await,
                    Command::Disconnect => disconnect::run(&cli.global).await,
                    Command::Exec(a) => exec::run(&cli.global, a).await,
                    Command::Check(a) => check::check(&cli.global, a).await,
                    Command::Gate(a) => check::gate(&cli.global, a).await,
                    Command::Drift(a) => check::drift(&cli.global, a).await,
                    Command::Backups(a) => backups::run(&cli.global, a).await,
                    Command::Apply(a) => plan::apply(&cli.global, a).await,
                    Command::Freeze(a) => freeze::freeze_cmd(&cli.global, a).await,
                    Command::Thaw => freeze::thaw_cmd(&cli.global).await,
                    Command::Serve(a) => serve::run(&cli.global, a).await,
                    _ => unreachable!("synchronous commands ran above"),
                }
            })
        }
    };
    match result {
        Ok(code) => code,
        Err(e) if e.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) => STDOUT_CLOSED,
        Err(e) => {
            eprintln!("{} {e}", console::style("error:").red().bold());
            1
        }
    }
}

/// The folder holding `recover.yml` (searched upward from here), else here.
pub fn project_root() -> PathBuf {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let mut dir: &Path = &cwd;
    loop {
        if dir.join("recover.yml").is_file() {
            return dir.to_path_buf();
        }
        match dir.parent() {
            Some(p) => dir = p,
            None => return cwd,
        }
    }
}

/// The inventory to use: -i, else recover.yml's `inventory:`, else $RECOVER_INVENTORY.
impl Global {
    /// `--forks`, else ansible.cfg's `forks`, else 20.
    pub fn forks(&self) -> u32 {
        self.forks.unwrap_or(20)
    }
}

pub fn load_inventory(g: &Global) -> Result<Inventory, SourceError> {
    let root = project_root();
    let paths = if !g.inventory.is_empty() {
        g.inventory.clone()
    } else if let Some(p) = project_inventory(&root)? {
        vec![p]
    } else if let Some(p) = std::env::var_os("RECOVER_INVENTORY") {
        vec![PathBuf::from(p)]
    } else if !crate::ansible_cfg::current().paths("inventory").is_empty() {
        crate::ansible_cfg::current().paths("inventory")
    } else {
        return Err(SourceError::new(Span::default(), "no inventory: pass -i PATH, set `inventory:` in recover.yml or ansible.cfg, or set RECOVER_INVENTORY"));
    };
    Inventory::load_all(&paths)
}

fn project_inventory(root: &Path) -> Result<Option<PathBuf>, SourceError> {
    let cfg = root.join("recover.yml");
    if !cfg.is_file() {
        return Ok(None);
    }
    let node = crate::yaml::load_file(&cfg)?;
    match node.get("inventory") {
        None => Ok(None),
        Some(v) => {
            let p = v.as_str().ok_or_else(|| v.error("`inventory` must be a path"))?;
            Ok(Some(root.join(p)))
        }
    }
}

/// `-e` values merged in order: `k=v ...`, `@file.yml`, or a JSON/YAML mapping.
pub fn extra_vars(g: &Global) -> Result<Vars, SourceError> {
    let mut vars = Vars::new();
    for raw in &g.extra_vars {
        let origin = Span::default();
        if let Some(file) = raw.strip_prefix('@') {
            let node = crate::yaml::load_file(Path::new(file))?;
            match node.to_json() {
                serde_json::Value::Object(m) => vars.extend(m),
                serde_json::Value::Null => {}
                _ => return Err(node.error("an extra-vars file must hold a mapping")),
            }
        } else if raw.trim_start().starts_with('{') {
            let node = crate::yaml::parse_str(raw, Path::new("<-e>"))?;
            match node.to_json() {
                serde_json::Value::Object(m) => vars.extend(m),
                _ => return Err(node.error("-e {...} must be a mapping")),
            }
        } else {
            let words = split_kv(raw).map_err(|e| SourceError::new(origin.clone(), format!("-e {raw:?}: {e}")))?;
            for w in words {
                let (k, v) = w.split_once('=').ok_or_else(|| SourceError::new(origin.clone(), format!("-e {w:?}: expected key=value, @file.yml or a JSON mapping")))?;
                if !crate::playbook::is_identifier(k) {
                    return Err(SourceError::new(origin.clone(), format!("-e: '{k}' is not a valid variable name")));
                }
                vars.insert(k.to_string(), serde_json::Value::String(v.to_string()));
            }
        }
    }
    Ok(vars)
}

pub use crate::playbook::split_kv;

/// The effective host limit: `--host` (checked to exist) and `--limit` together.
pub fn limit(g: &Global, inv: &Inventory) -> Result<Option<String>, SourceError> {
    if let Some(h) = &g.host {
        if !inv.hosts.contains_key(h) {
            let names: Vec<&str> = inv.hosts.keys().map(String::as_str).collect();
            return Err(SourceError::new(Span::default(), format!("--host {h}: no such host in the inventory (hosts: {})", names.join(", "))));
        }
        return Ok(Some(match &g.limit {
            Some(l) => format!("{h}:&{l}"),
            None => h.clone(),
        }));
    }
    Ok(g.limit.clone())
}


/// Colors on unless --no-color or NO_COLOR.
pub fn color(g: &Global) -> bool {
    !g.no_color && std::env::var_os("NO_COLOR").is_none()
}

#[cfg(test)]
mod tests {
    use super::split_kv;

    #[test]
    fn kv_words_keep_templates_and_quotes_whole() {
        assert_eq!(split_kv("a=1 b='x y' c={{ host_root }}/d").unwrap(), ["a=1", "b=x y", "c={{ host_root }}/d"]);
        assert_eq!(split_kv("k={{ v | default('p q') }}").unwrap(), ["k={{ v | default('p q') }}"]);
        assert!(split_kv("a='x").is_err());
    }
}
