//! `recover serve`: the cold-start board in a browser (see `crate::serve`).

use std::path::PathBuf;

use clap::Args;

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
}

pub async fn run(g: &Global, a: &ServeArgs) -> anyhow::Result<i32> {
    let tls = a.tls_cert.clone().zip(a.tls_key.clone());
    // Refused before anything is read: a non-loopback address without TLS.
    crate::serve::check_listen(&a.listen, tls.is_some())?;
    let (baseline, sources) = super::check::setup(g, &a.baseline)?;
    if baseline.phases.is_empty() {
        anyhow::bail!("{}: the baseline has no phases", baseline.path.display());
    }
    let config = crate::serve::Config { listen: a.listen.clone(), tls, interval: a.interval, max_attempts: a.max_attempts, parallel: a.parallel as usize };
    crate::serve::run(config, baseline, sources).await
}
