//! `recover inventory --list | --graph [GROUP] | --host H`, as ansible-inventory prints them,
//! with `--yaml` (YAML instead of JSON) and `--vars` (variables in the graph).

use clap::Args;

use super::Global;
use crate::template::pyjson;

#[derive(Args, Debug)]
pub struct InventoryArgs {
    /// All groups and hosts as JSON (`_meta.hostvars`, groups with `hosts` and `children`)
    #[arg(long, conflicts_with = "graph")]
    pub list: bool,
    /// The groups and hosts as a tree, from GROUP (default `all`)
    #[arg(long, value_name = "GROUP", num_args = 0..=1, default_missing_value = "all")]
    pub graph: Option<String>,
    /// With --list or --host: YAML instead of JSON (ansible-inventory --yaml)
    #[arg(long, short = 'y')]
    pub yaml: bool,
    /// With --graph: show each host's and group's variables in the tree
    #[arg(long = "vars")]
    pub show_vars: bool,
}

pub fn run(g: &Global, a: &InventoryArgs) -> anyhow::Result<i32> {
    if a.yaml && a.graph.is_some() {
        anyhow::bail!("--yaml applies to --list and --host, not --graph");
    }
    if a.show_vars && a.graph.is_none() {
        anyhow::bail!("--vars applies to --graph");
    }
    let inv = super::load_inventory(g)?;
    if let Some(host) = &g.host {
        if !inv.hosts.contains_key(host) {
            anyhow::bail!("--host {host}: no such host in the inventory");
        }
        if a.list || a.graph.is_none() {
            // ansible-inventory --host writes data marks as plain strings (unlike --list).
            let vars = serde_json::Value::Object(inv.host_vars(host).into_iter().collect());
            let vars = crate::template::strip_unsafe(&vars).into_owned();
            if a.yaml {
                out!("{}", yaml(&vars))?;
            } else {
                outln!("{}", dumps(&vars))?;
            }
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
        if a.yaml {
            out!("{}", yaml(&inv.to_yaml_tree(&hosts)))?;
        } else {
            outln!("{}", dumps(&inv.to_list_json(&hosts)))?;
        }
    } else if let Some(group) = &a.graph {
        if !inv.groups.contains_key(group) {
            anyhow::bail!("--graph {group}: no such group (groups: {})", inv.groups.keys().cloned().collect::<Vec<_>>().join(", "));
        }
        out!("{}", inv.graph(group, a.show_vars))?;
    }
    Ok(0)
}

/// ansible-inventory's JSON: indent 4, sorted keys, non-ASCII kept.
fn dumps(v: &serde_json::Value) -> String {
    pyjson::dumps_utf8(v, Some(4), true, true)
}

/// ansible-inventory's YAML: PyYAML block style, indent 2, sorted keys; data marks dropped.
fn yaml(v: &serde_json::Value) -> String {
    let v = crate::template::strip_unsafe(v);
    crate::template::yamlout::dump(&v, 2, true)
}
