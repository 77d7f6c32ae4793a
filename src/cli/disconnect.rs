//! `recover disconnect`: closes the SSH masters kept for the next run (`recover_ssh_persist`),
//! every one of this user's, or those of the hosts `-l`/`--host` select.

use std::sync::Arc;

use super::Global;
use crate::executor::{vars, VarSources};
use crate::template::Templates;

pub async fn run(g: &Global) -> anyhow::Result<i32> {
    let only = if g.limit.is_some() || g.host.is_some() {
        let inventory = Arc::new(super::load_inventory(g)?);
        let limit = super::limit(g, &inventory)?;
        let hosts = crate::executor::select_hosts(&inventory, "all", limit.as_deref()).map_err(anyhow::Error::msg)?;
        let sources = VarSources::new(inventory, Templates::new(), super::extra_vars(g)?, String::new(), false, String::new());
        let mut targets = Vec::new();
        for h in hosts {
            targets.push(vars::target(&sources.inventory_context(&h), &h).map_err(|e| anyhow::anyhow!("host {h}: {e}"))?);
        }
        Some(targets)
    } else {
        None
    };
    let n = crate::transport::ssh::disconnect(only.as_deref()).await.map_err(anyhow::Error::msg)?;
    println!("closed {n} kept SSH connection{} ({})", if n == 1 { "" } else { "s" }, crate::transport::ssh::persist_dir().display());
    Ok(0)
}
