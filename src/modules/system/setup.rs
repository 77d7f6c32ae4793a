//! `setup`: the host's facts, in one round trip (see `gather`). Also what `gather_facts` runs.

use async_trait::async_trait;
use documented::Documented;
use serde_json::{json, Value as Json};

use crate::error::{SResult, SourceError};
use crate::modules::{opt, ArgSpec, Kind, Module, Plan, StepCtx, StepError};
use crate::playbook::Task;
use crate::transport::Cmd;

/// `setup`: the host's facts, as ansible-core's Linux collectors gather them, in one round trip
/// (also what `gather_facts` runs).
///
/// Returns: `ansible_facts` (`distribution`, `default_ipv4`, `mounts`, `memtotal_mb`,
/// `processor_vcpus`, `date_time`, ...).
///
/// Check mode: gathers as in a real run (read-only).
#[derive(Documented)]
pub struct Setup;

const SPEC: &[ArgSpec] = &[
    opt("gather_subset", Kind::Any).default("[all]").doc("Which facts (`all`, `min`, `hardware`, `network`, `!facter`, ...)."),
    opt("filter", Kind::Any).doc("Only facts whose names match these globs."),
    opt("gather_timeout", Kind::Int).default("10").doc("Seconds each fact collector may take."),
    opt("fact_path", Kind::Str).default("/etc/ansible/facts.d").doc("The folder of local facts (`*.fact`)."),
];

/// The subsets ansible-core knows; recover gathers the same facts for each of them.
const SUBSETS: &[&str] = &[
    "all", "min", "hardware", "network", "virtual", "ohai", "facter", "apparmor", "caps", "cmdline", "date_time", "distribution", "dns", "env", "fips", "local", "lsb",
    "pkg_mgr", "platform", "python", "selinux", "service_mgr", "ssh_pub_keys", "user", "devices", "interfaces", "mounts",
    "chroot", "loadavg", "systemd", "fibre_channel_wwn", "iscsi", "nvme",
    // A collector's fact names select it too (ansible-core's `_fact_ids`).
    "architecture", "kernel", "kernel_version", "machine", "machine_id", "python_version", "system", "distribution_major_version",
    "distribution_release", "distribution_version", "os_family", "is_chroot", "system_capabilities", "system_capabilities_enforced",
    "ssh_host_key_dsa_public", "ssh_host_key_ecdsa_public", "ssh_host_key_ed25519_public", "ssh_host_key_rsa_public", "ssh_host_pub_keys",
    "effective_group_ids", "effective_user_id", "real_user_id", "user_dir", "user_gecos", "user_gid", "user_id", "user_shell", "user_uid",
    "virtualization_role", "virtualization_tech_guest", "virtualization_tech_host", "virtualization_type", "processor", "processor_cores",
    "processor_count", "all_ipv4_addresses", "all_ipv6_addresses", "default_ipv4", "default_ipv6",
];

fn list(v: Option<&Json>) -> Vec<String> {
    match v {
        Some(Json::Array(a)) => a.iter().filter_map(Json::as_str).map(str::to_string).collect(),
        Some(Json::String(s)) => s.split(',').map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect(),
        _ => Vec::new(),
    }
}

#[async_trait]
impl Module for Setup {
    fn name(&self) -> &'static str {
        "setup"
    }
    fn doc(&self) -> &'static str {
        Self::DOCS
    }
    fn spec(&self) -> &'static [ArgSpec] {
        SPEC
    }
    fn validate(&self, task: &Task) -> SResult<()> {
        for s in list(task.args.get("gather_subset")) {
            let bare = s.trim_start_matches('!');
            if !crate::template::is_template(&s) && !SUBSETS.contains(&bare) {
                return Err(SourceError::new(task.arg_span("gather_subset"), format!("setup: unknown gather_subset '{s}'")).help(format!("subsets: {}", SUBSETS.join(", "))));
            }
        }
        Ok(())
    }
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        let python = ctx.vars.get_attr("ansible_python_interpreter").ok().filter(|v| !v.is_undefined() && !v.is_none()).map(|v| crate::template::pyrepr::py_str(&v));
        let python = python.filter(|p| p != "auto" && p != "auto_silent" && p != "auto_legacy");
        let fact_path = args.get("fact_path").and_then(Json::as_str).filter(|p| !p.is_empty());
        // gather_timeout: recover gathers in one script, which it bounds as a whole.
        let timeout = args.get("gather_timeout").and_then(|t| t.as_u64().or_else(|| t.as_str().and_then(|s| s.parse().ok())));
        let out = ctx.run(Cmd::shell(crate::gather::script(python.as_deref(), fact_path)).label("gather facts").timeout(timeout)).await?;
        let subset = list(args.get("gather_subset"));
        let facts = crate::gather::parse(&out.stdout_str(), &subset);
        let facts = crate::gather::filtered(facts, &list(args.get("filter")));
        // As ansible-core's setup result: every fact named `ansible_<name>` (but two).
        let facts: serde_json::Map<String, Json> = facts.into_iter().map(|(k, v)| if matches!(k.as_str(), "gather_subset" | "module_setup") { (k, v) } else { (format!("ansible_{k}"), v) }).collect();
        Ok(Plan::done(json!({ "ansible_facts": facts })))
    }
}
