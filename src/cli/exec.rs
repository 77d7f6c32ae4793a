//! `recover exec PATTERN -- CMD...`: an ad-hoc command on every matching host, in parallel.

use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use tokio::sync::Semaphore;

use super::{Global, Output};
use crate::executor::{exit, vars, VarSources};
use crate::template::Templates;
use crate::transport::{Cmd, Connection};

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// Host pattern (`all`, a group, a host, `k3s:!121`)
    pub pattern: String,
    /// Run as root (or --become-user) through `sudo -n`
    #[arg(short = 'b', long = "become")]
    pub escalate: bool,
    /// The user to become
    #[arg(long, value_name = "USER")]
    pub become_user: Option<String>,
    /// Kill the command after this many seconds
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<u64>,
    /// The command: one word is a shell script, several are an argv
    #[arg(last = true, required = true, value_name = "CMD")]
    pub cmd: Vec<String>,
}

pub async fn run(g: &Global, a: &ExecArgs) -> anyhow::Result<i32> {
    let inventory = Arc::new(super::load_inventory(g)?);
    let limit = super::limit(g, &inventory)?;
    let hosts = crate::executor::select_hosts(&inventory, &a.pattern, limit.as_deref()).map_err(anyhow::Error::msg)?;
    if hosts.is_empty() {
        anyhow::bail!("no hosts match '{}'", a.pattern);
    }
    let mut cmd = if a.cmd.len() == 1 { Cmd::shell(a.cmd[0].clone()).own_shell() } else { Cmd::argv(a.cmd.clone()) };
    if a.escalate || a.become_user.is_some() {
        cmd.become_user = Some(a.become_user.clone().unwrap_or_else(|| "root".into()));
    }
    cmd.timeout = a.timeout;
    if g.dry_run {
        for h in &hosts {
            outln!("{h}: would run: {}", cmd.display())?;
        }
        return Ok(0);
    }
    let sources = VarSources::new(inventory, Templates::new(), super::extra_vars(g)?, String::new(), false, String::new());
    let sem = Arc::new(Semaphore::new(g.forks() as usize));
    let mut handles = Vec::new();
    for host in hosts {
        let (sources, sem, cmd) = (sources.clone(), sem.clone(), cmd.clone());
        handles.push(tokio::spawn(async move {
            let _p = sem.acquire_owned().await;
            let started = Instant::now();
            let ctx = sources.inventory_context(&host);
            let result = async {
                let target = vars::target(&ctx, &host)?;
                let conn = Connection::open(&target).await.map_err(|e| format!("{e}"))?;
                let out = conn.exec(&cmd).await.map_err(|e| format!("{e}"));
                conn.close().await;
                out
            }
            .await;
            (host, result, started.elapsed())
        }));
    }
    let mut code = exit::OK;
    for h in handles {
        let Ok((host, result, took)) = h.await else { continue };
        match result {
            Ok(out) => {
                if out.rc != 0 && code == exit::OK {
                    code = exit::FAILED;
                }
                if g.output == Output::Json {
                    outln!("{}", serde_json::json!({"host": host, "rc": out.rc, "stdout": out.stdout_str(), "stderr": out.stderr_str(), "seconds": took.as_secs_f64()}))?;
                } else {
                    let head = format!("{host} | rc={} | {:.2}s", out.rc, took.as_secs_f64());
                    let styled = if out.rc == 0 { console::style(head).green() } else { console::style(head).red() };
                    outln!("{styled}")?;
                    out!("{}", out.stdout_str())?;
                    if !out.stderr.is_empty() {
                        eprint!("{}", out.stderr_str());
                    }
                }
            }
            Err(msg) => {
                code = exit::UNREACHABLE;
                if g.output == Output::Json {
                    outln!("{}", serde_json::json!({"host": host, "unreachable": true, "msg": msg}))?;
                } else {
                    outln!("{}", console::style(format!("{host} | UNREACHABLE | {msg}")).red())?;
                }
            }
        }
    }
    Ok(code)
}
