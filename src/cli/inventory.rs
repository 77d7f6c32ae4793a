//! `recover inventory --list | --graph [GROUP] | --host H`, as ansible-inventory prints them.

use clap::Args;

use super::Global;
use crate::template::pyjson;

#[derive(Args, Debug)]
#[group(required = false, multiple = false)]
pub struct InventoryArgs {
    /// All groups and hosts as JSON (`_meta.hostvars`, groups with `hosts` and `children`)
    #[arg(long)]
    pub list: bool,
    /// The groups and hosts as a tree, from GROUP (default `all`)
    #[arg(long, value_name = "GROUP", num_args = 0..=1, default_missing_value = "all")]
    pub graph: Option<String>,
}

pub fn run(g: &Global, a: &InventoryArgs) -> anyhow::Result<i32> {
    let inv = super::load_inventory(g)?;
    if let Some(host) = &g.host {
        if !inv.hosts.contains_key(host) {
            anyhow::bail!("--host {host}: no such host in the inventory");
        }
        if a.list || a.graph.is_none() {
            let vars = serde_json::Value::Object(inv.host_vars(host).into_iter().collect());
            outln!("{}", dumps(&vars))?;
            return Ok(0);
        }
    }
    if !a.list && a.graph.is_none() {
        anyhow::bail!("recover inventory needs --list, --graph [GROUP] or --host HOST");
    }
    if a.list {
        let hosts = match &g.limit {
            Some(l) => crate::inventory::pattern::select(&inv, l).map_err(anyhow::Error::msg)?,
            None => inv.hosts.keys().cloned().collect(),
        };
        outln!("{}", dumps(&inv.to_list_json(&hosts)))?;
    } else if let Some(group) = &a.graph {
        if !inv.groups.contains_key(group) {
            anyhow::bail!("--graph {group}: no such group (groups: {})", inv.groups.keys().cloned().collect::<Vec<_>>().join(", "));
        }
        out!("{}", inv.graph(group))?;
    }
    Ok(0)
}

/// ansible-inventory's JSON: indent 4, sorted keys, non-ASCII kept.
fn dumps(v: &serde_json::Value) -> String {
    pyjson::dumps_utf8(v, Some(4), true, true)
}
