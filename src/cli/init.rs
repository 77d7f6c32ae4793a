//! `recover init [DIR]`: a starting project; `recover completions SHELL` and `recover man`:
//! shell completions and the man page, generated from the clap definitions.

use std::path::PathBuf;

use clap::{Args, CommandFactory};

use super::{Cli, Global};

#[derive(Args, Debug)]
pub struct InitArgs {
    /// The folder to make the project in (created if missing)
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Write over a project that is already there
    #[arg(long)]
    pub force: bool,
}

/// The inventory `init` writes: the SOP's groups, to fill in with the fleet's hosts.
const INVENTORY: &str = "\
# The fleet, as an Ansible YAML inventory. Fill in each host's address and login user;
# the groups are the SOP's (data 188, registry 110, K3s 120/121). Paths and services that
# differ from the SOP's defaults are host variables (see the built-in inventory/lab.yml).
all:
  children:
    data:
      hosts: {}
      # \"188\": {ansible_host: 192.0.2.188, ansible_user: ollama}
    registry:
      hosts: {}
      # \"110\": {ansible_host: 192.0.2.110, ansible_user: wooo}
    k3s:
      hosts: {}
      # \"120\": {ansible_host: 192.0.2.120, ansible_user: wooo}
      # \"121\": {ansible_host: 192.0.2.121, ansible_user: wooo}
";

const CONFIG: &str = "\
# A recover project: `recover` run in this folder (or below it) uses it.
inventory: inventory/hosts.yml
# Where the automation freeze and the recorded gate live, seen by every operator and cron
# job of the fleet (a shared mount when operators run from several machines):
# shared_state: /var/lib/recover
# How old a green automation gate may be and still count (seconds, or 15m, 1h):
# gate_max_age: 15m
";

pub fn init(_g: &Global, a: &InitArgs) -> anyhow::Result<i32> {
    let dir = &a.dir;
    if dir.join("recover.yml").exists() && !a.force {
        anyhow::bail!("{} already holds a recover project (recover.yml); pass --force to write over it", dir.display());
    }
    std::fs::create_dir_all(dir.join("inventory"))?;
    std::fs::write(dir.join("recover.yml"), CONFIG)?;
    std::fs::write(dir.join("inventory/hosts.yml"), INVENTORY)?;
    std::fs::write(dir.join("inventory/baseline.yml"), crate::assets::builtin_baseline())?;
    crate::assets::unpack_builtin(dir, false)?;
    outln!("a recover project in {}:", dir.display())?;
    outln!("  recover.yml               settings (inventory, shared_state, gate_max_age)")?;
    outln!("  inventory/hosts.yml       the fleet: fill in the hosts")?;
    outln!("  inventory/baseline.yml    tiers, phases and gates (SOP sections 1.2, 10, 12)")?;
    outln!("  playbooks/ roles/ templates/   the built-in playbooks, copied out for editing (these now win over the built-in ones)")?;
    outln!("next: edit inventory/hosts.yml, then `recover inventory --graph` and `recover check`")?;
    Ok(0)
}

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, elvish or powershell
    pub shell: clap_complete::Shell,
}

pub fn completions(a: &CompletionsArgs) -> anyhow::Result<i32> {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(a.shell, &mut cmd, "recover", &mut out);
    out!("{}", String::from_utf8_lossy(&out))?;
    Ok(0)
}

pub fn man() -> anyhow::Result<i32> {
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut out)?;
    out!("{}", String::from_utf8_lossy(&out))?;
    Ok(0)
}
