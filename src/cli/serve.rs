//! `recover serve`: the cold-start board in a browser (see `crate::serve`).

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::Global;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address and port to listen on (loopback unless --tls-cert and --tls-key are given)
    #[arg(long, default_value = "127.0.0.1:8470", value_name = "ADDR:PORT")]
    pub listen: String,
    /// TLS certificate (PEM), needed to listen on any address but loopback
    #[arg(long, value_name = "PATH", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM)
    #[arg(long, value_name = "PATH", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// The baseline (default: baseline-<inventory>.yml or baseline.yml beside the inventory)
    #[arg(long, value_name = "PATH")]
    pub baseline: Option<PathBuf>,
    /// Seconds between gate passes (however many browsers watch)
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub interval: u64,
    /// Gate passes to run (a GREEN pass ends them too), then keep showing the last; default: until stopped
    #[arg(long)]
    pub max_attempts: Option<u32>,
    /// How many probes at once
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub parallel: u32,
    #[command(subcommand)]
    pub command: Option<ServeCommand>,
}

#[derive(Subcommand, Debug)]
pub enum ServeCommand {
    /// Register a board approver: a person who may sign in and approve saved plans in the browser
    /// (the secret is shown once; the shared folder keeps only its salted hash)
    #[command(after_help = "Example:\n  recover serve add-approver commander")]
    AddApprover {
        /// The approver's name (letters, digits, '.', '_', '@', '-')
        name: String,
    },
}

pub async fn run(g: &Global, a: &ServeArgs) -> anyhow::Result<i32> {
    if let Some(ServeCommand::AddApprover { name }) = &a.command {
        let secret = crate::plan::board_approvers::add(name).map_err(anyhow::Error::msg)?;
        let name = crate::plan::approver_name(name).map_err(anyhow::Error::msg)?;
        outln!("board approver {name} registered; its secret (shown this once, give it to {name} alone):\n{secret}")?;
        return Ok(0);
    }
    let tls = a.tls_cert.clone().zip(a.tls_key.clone());
    // Refused before anything is read: a non-loopback address without TLS.
    let addr = crate::serve::check_listen(&a.listen, tls.is_some())?;
    let (baseline, sources) = super::check::setup(g, &a.baseline)?;
    if baseline.phases.is_empty() {
        anyhow::bail!("{}: the baseline has no phases", baseline.path.display());
    }
    let config = crate::serve::Config { addr, tls, interval: a.interval, max_attempts: a.max_attempts, parallel: a.parallel as usize };
    crate::serve::run(config, baseline, sources).await
}
