//! Every module recover runs, by name: what a task key names, what a load may name (the
//! catalog the playbook loader is handed), and why a step changes or removes data.

use async_trait::async_trait;
use documented::Documented;
use serde_json::Value as Json;

use super::*;
use crate::error::SResult;
use crate::playbook::Task;

static REGISTRY: &[&dyn Module] = &[
    &commands::async_status::AsyncStatus,
    &files::backup::Backup,
    &commands::command::COMMAND,
    &commands::command::SHELL,
    &files::file::File,
    &files::copy::Copy,
    &files::copy::Template,
    &files::blockinfile::BlockInFile,
    &files::lineinfile::LineInFile,
    &files::replace::Replace,
    &system::service::Service,
    &files::stat::Stat,
    &files::stat::Slurp,
    &commands::wait_for::WaitFor,
    &files::kafka::KafkaCheckpoints,
    &support::preserve::PreserveMove,
    &system::systemd::SystemdShow,
    &control::assert::Assert,
    &control::assert::Fail,
    &control::set_fact::SetFact,
    &control::debug::Debug,
    &control::meta::Meta,
    &control::meta::IncludeVars,
    &system::setup::Setup,
    &packages::apt::Apt,
    &packages::apt_repository::AptRepository,
    &system::service_facts::ServiceFacts,
    &packages::package_facts::PackageFacts,
    &files::unarchive::Unarchive,
    &commands::raw::Raw,
    &commands::script::Script,
    &files::find::Find,
    &system::getent::Getent,
    &files::tempfile::TempFile,
    &files::assemble::Assemble,
    &files::fetch::Fetch,
    &files::http::GetUrl,
    &files::http::Uri,
    &system::user::User,
    &system::user::Group,
    &system::systemd::SystemdService("systemd"),
    &system::systemd::SystemdService("systemd_service"),
    &packages::apt::Package,
    &system::cron::Cron,
    &control::add_host::AddHost,
    &control::group_by::GroupBy,
    &control::set_stats::SetStats,
    &commands::ping::Ping,
    &control::pause::Pause,
    &files::git::Git,
    &commands::wait_for_connection::WaitForConnection,
    &system::reboot::Reboot,
    &system::hostname::Hostname,
    &system::known_hosts::KnownHosts,
    &packages::pip::Pip,
    &packages::deb822_repository::Deb822Repository,
    &packages::apt_key::AptKey,
    &docker::container::ContainerFacts,
    &docker::container::RestartPolicy,
    &docker::container::ContainerRemove,
    &docker::docker_exec::DockerContainerExec,
    &packages::debconf::Debconf,
    &packages::dpkg_selections::DpkgSelections,
    &control::validate_argument_spec::ValidateArgumentSpec,
];

/// Why a task changes or removes data, when that is known from the task
/// itself (for `recover list` and the safety checks): overwriting a file,
/// deleting a path, stopping a service.
pub fn destructive(task: &Task) -> Option<String> {
    if let Some(d) = &task.declared {
        let tier = d.tier.map(|t| format!(", {t}")).unwrap_or_default();
        return Some(format!("{}{tier}", d.reason.clone().unwrap_or_else(|| format!("changes {}", d.paths.join(", ")))));
    }
    let arg = |k: &str| task.args.get(k).and_then(Json::as_str).map(str::to_string);
    match task.module.as_str() {
        "copy" | "template" | "blockinfile" | "lineinfile" | "replace" => Some(format!("overwrites {}", arg("dest").or_else(|| arg("path")).unwrap_or_default())),
        "file" if arg("state").as_deref() == Some("absent") => Some(format!("deletes {}", arg("path").or_else(|| arg("dest")).unwrap_or_default())),
        "service" if matches!(arg("state").as_deref(), Some("stopped") | Some("restarted")) => Some(format!("stops {}", arg("name").unwrap_or_default())),
        "command" | "shell" | "raw" | "script" if !task.read_only => Some("runs a command".into()),
        "docker_container_exec" if !task.read_only => Some(format!("runs a command in container {}", arg("container").unwrap_or_default())),
        "systemd" | "systemd_service" if matches!(arg("state").as_deref(), Some("stopped") | Some("restarted")) => Some(format!("stops {}", arg("name").unwrap_or_default())),
        "apt" | "package" if matches!(arg("state").as_deref(), Some("absent") | Some("removed")) => Some(format!("removes packages{}", if arg("purge").is_some() { " and their configuration" } else { "" })),
        "reboot" => Some("reboots the host".into()),
        "container_remove" => Some(format!("removes container {}", arg("name").unwrap_or_default())),
        "cron" => Some(format!("edits {}", arg("cron_file").map(|f| if f.starts_with('/') { f } else { format!("/etc/cron.d/{f}") }).unwrap_or_else(|| "a crontab".into()))),
        "user" | "group" if arg("state").as_deref() == Some("absent") => Some(format!("deletes {} {}", task.module, arg("name").unwrap_or_default())),
        _ => None,
    }
}

/// Modules a playbook often names by their short name that are not ansible.builtin: the
/// collection each comes from, for the load-time error.
const COLLECTION_MODULES: &[(&str, &str)] = &[
    ("sysctl", "ansible.posix"), ("mount", "ansible.posix"), ("authorized_key", "ansible.posix"), ("selinux", "ansible.posix"), ("seboolean", "ansible.posix"),
    ("firewalld", "ansible.posix"), ("synchronize", "ansible.posix"), ("acl", "ansible.posix"), ("at", "ansible.posix"), ("patch", "ansible.posix"),
    ("timezone", "community.general"), ("ufw", "community.general"), ("modprobe", "community.general"), ("locale_gen", "community.general"),
    ("pam_limits", "community.general"), ("ini_file", "community.general"), ("alternatives", "community.general"), ("make", "community.general"),
    ("snap", "community.general"), ("flatpak", "community.general"), ("npm", "community.general"), ("lvg", "community.general"), ("lvol", "community.general"),
    ("filesystem", "community.general"), ("parted", "community.general"), ("xml", "community.general"), ("htpasswd", "community.general"),
    ("docker_container", "community.docker"), ("docker_image", "community.docker"), ("docker_network", "community.docker"), ("docker_volume", "community.docker"),
    ("docker_compose", "community.docker"), ("docker_compose_v2", "community.docker"), ("postgresql_db", "community.postgresql"),
    ("postgresql_user", "community.postgresql"), ("postgresql_query", "community.postgresql"), ("mysql_db", "community.mysql"), ("mysql_user", "community.mysql"),
    ("openssl_privatekey", "community.crypto"), ("openssl_csr", "community.crypto"), ("x509_certificate", "community.crypto"), ("k8s", "kubernetes.core"),
    ("helm", "kubernetes.core"), ("archive", "community.general"), ("nmcli", "community.general"), ("systemd_timer", "community.general"),
];

/// Why a module name is not one recover runs, when it is a known one: a collection's module
/// named by its short name (ansible-core alone cannot resolve it either). The ansible.builtin
/// modules recover does not implement load, and are refused where they run ([`NotBuilt`]).
pub fn not_built(name: &str) -> Option<String> {
    COLLECTION_MODULES.iter().find(|(m, _)| *m == name).map(|(m, c)| format!("module '{m}' is {c}.{m}, from the {c} collection; recover runs the ansible.builtin modules it has built in"))
}

/// The module name a task key names: `ansible.builtin.X` and `ansible.legacy.X` are `X`, and so
/// are the collection modules recover builds in under their full names.
pub fn short_name(key: &str) -> &str {
    if let Some(s) = key.strip_prefix("ansible.builtin.").or_else(|| key.strip_prefix("ansible.legacy.")) {
        return s;
    }
    match key {
        "community.docker.docker_container_exec" => "docker_container_exec",
        other => other,
    }
}

/// Modules recover adds for the SOP's repairs: no collection has them.
pub const OWN: &[&str] = &["backup", "preserve_move", "kafka_checkpoints", "systemd_show", "container_facts", "restart_policy", "container_remove"];

/// The name a module has in Ansible (`ansible.builtin.copy`), or `None` for recover's own.
pub fn fqcn(name: &str) -> Option<String> {
    match name {
        n if OWN.contains(&n) => None,
        n if n.contains('.') => Some(n.to_string()),
        "docker_container_exec" => Some("community.docker.docker_container_exec".into()),
        n => Some(format!("ansible.builtin.{n}")),
    }
}

/// The module of that name.
pub fn get(name: &str) -> Option<&'static dyn Module> {
    REGISTRY
        .iter()
        .copied()
        .find(|m| m.name() == name)
        .or_else(|| packages::apt::UNSUPPORTED.iter().find(|m| m.0 == name).map(|m| m as &dyn Module))
        .or_else(|| super::python::get(name).map(|m| m as &dyn Module))
        .or_else(|| NOT_BUILT.iter().find(|m| m.0 == name).map(|m| m as &dyn Module))
}

/// An ansible.builtin module recover does not implement. It loads (as in ansible-core, a task a
/// `when` skips does not matter), and a step that reaches a host with it is refused by name.
///
/// Returns: nothing: the step fails.
///
/// Check mode: refused as in a real run.
#[derive(Documented)]
pub struct NotBuilt(pub &'static str);

#[async_trait]
impl Module for NotBuilt {
    fn name(&self) -> &'static str {
        self.0
    }
    fn doc(&self) -> &'static str {
        Self::DOCS
    }
    fn spec(&self) -> &'static [ArgSpec] {
        &[]
    }
    fn free_keys(&self) -> bool {
        true
    }
    fn free_form(&self) -> bool {
        true
    }
    async fn plan(&self, _ctx: &StepCtx<'_>, _args: &Json) -> Result<Plan, StepError> {
        Err(StepError::failed(format!("module '{}' is an ansible.builtin module that recover does not implement", self.0)))
    }
}

/// Whether `name` is an ansible.builtin module recover has no native version of.
pub fn unbuilt(name: &str) -> bool {
    NOT_BUILT.iter().any(|m| m.0 == name)
}

static NOT_BUILT: [NotBuilt; 6] = [NotBuilt("iptables"), NotBuilt("expect"), NotBuilt("subversion"), NotBuilt("sysvinit"), NotBuilt("mount_facts"), NotBuilt("gather_facts")];

/// Every module recover knows: those it runs, then those it refuses by name where they run.
pub fn every() -> Vec<&'static dyn Module> {
    REGISTRY.iter().copied().chain(packages::apt::UNSUPPORTED.iter().map(|m| m as &dyn Module)).chain(NOT_BUILT.iter().map(|m| m as &dyn Module)).collect()
}

/// Every module name, for help and suggestions (those recover runs).
pub fn names() -> Vec<&'static str> {
    REGISTRY.iter().map(|m| m.name()).chain(packages::apt::UNSUPPORTED.iter().map(|m| m.0)).collect()
}

/// The modules recover builds in, as the playbook loader asks about them.
#[derive(Debug)]
pub struct Builtins;

/// The catalog a load is handed.
pub static BUILTINS: Builtins = Builtins;

impl crate::playbook::Catalog for Builtins {
    fn resolve(&self, key: &str, scope: &crate::playbook::Scope<'_>) -> Result<String, Option<String>> {
        let short = short_name(key);
        // Native modules first: the hot path, and recover's own.
        if REGISTRY.iter().any(|m| m.name() == short) || packages::apt::UNSUPPORTED.iter().any(|m| m.0 == short) {
            return Ok(short.to_string());
        }
        // Everything else as ansible-core finds it: a collection, a `library/` folder, an
        // ansible.builtin module recover has no native version of.
        match super::python::resolve(key, scope, &|m| get(m).is_some()) {
            Ok(fqcn) => Ok(fqcn),
            Err(Some(why)) => Err(Some(why)),
            Err(None) if NOT_BUILT.iter().any(|m| m.0 == short) => Ok(short.to_string()),
            Err(None) => Err(not_built(short).map(|w| format!("{w}, and no ansible-core with that collection is installed to run it: {}", crate::pyansible::INSTALL_HINT))),
        }
    }
    fn names(&self) -> Vec<String> {
        names().into_iter().map(str::to_string).collect()
    }
    fn knows(&self, module: &str) -> bool {
        get(module).is_some()
    }
    fn validate(&self, task: &Task) -> SResult<()> {
        validate(task)
    }
    fn destructive(&self, task: &Task) -> Option<String> {
        destructive(task)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_documents_itself_and_each_argument() {
        for m in every() {
            let doc = m.doc();
            let paras: Vec<&str> = doc.split("\n\n").map(str::trim).collect();
            assert!(paras.first().is_some_and(|p| !p.is_empty() && !p.starts_with("Returns:")), "{}: no summary", m.name());
            assert!(paras.iter().any(|p| p.starts_with("Returns:")), "{}: its doc comment says nothing of what it returns", m.name());
            assert!(paras.iter().any(|p| p.starts_with("Check mode:")), "{}: its doc comment says nothing of check mode", m.name());
            let mut names = std::collections::HashSet::new();
            for a in m.spec() {
                assert!(!a.doc.is_empty(), "{}: argument '{}' has no description", m.name(), a.name);
                for n in std::iter::once(a.name).chain(a.aliases.iter().copied()) {
                    assert!(names.insert(n), "{}: '{n}' names two arguments", m.name());
                }
            }
        }
    }
}
