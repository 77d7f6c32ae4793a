//! Arguments ansible-core's modules take that recover does not implement. A playbook that
//! names one still loads (a role's branch for another platform, skipped by its `when`, must
//! not stop the play); a step that reaches the host with one is refused by name, unless the
//! value changes nothing (ansible-core's default), or it is SELinux's on a host without
//! SELinux, where ansible-core ignores it too.

use serde_json::Value as Json;

use crate::modules::{StepCtx, StepError};
use crate::transport::Cmd;

/// What recover does with an argument it does not implement.
#[derive(Clone, Copy)]
enum Policy {
    /// Refused when given a value other than this default (`None`: any value is refused).
    RefuseUnless(Option<&'static str>),
    /// SELinux context: ignored when the host has no SELinux, refused where it has.
    Selinux,
    /// Changes nothing recover does (a retry count, a module's own dependency install).
    Ignore,
}

use Policy::*;

const SELINUX: [(&str, Policy); 4] = [("selevel", Selinux), ("serole", Selinux), ("setype", Selinux), ("seuser", Selinux)];
const ATTRS: [(&str, Policy); 2] = [("attributes", RefuseUnless(None)), ("attr", RefuseUnless(None))];

/// The arguments of each module, by ansible-core's name, with what recover does with them.
fn table(module: &str) -> Vec<(&'static str, Policy)> {
    let files = || SELINUX.iter().chain(ATTRS.iter()).copied().collect::<Vec<_>>();
    match module {
        "file" | "blockinfile" | "lineinfile" | "replace" | "assemble" => files(),
        "copy" => [files(), vec![("checksum", RefuseUnless(None))]].concat(),
        "template" => [
            files(),
            vec![
                ("block_start_string", RefuseUnless(Some("{%"))),
                ("block_end_string", RefuseUnless(Some("%}"))),
                ("variable_start_string", RefuseUnless(Some("{{"))),
                ("variable_end_string", RefuseUnless(Some("}}"))),
                ("comment_start_string", RefuseUnless(Some("{#"))),
                ("comment_end_string", RefuseUnless(Some("#}"))),
            ],
        ]
        .concat(),
        "unarchive" => [files(), vec![("unsafe_writes", RefuseUnless(Some("false")))]].concat(),
        "get_url" => SELINUX.to_vec(),
        "uri" => [
            files(),
            vec![
                ("ciphers", RefuseUnless(None)),
                ("force", RefuseUnless(Some("false"))),
                ("unix_socket", RefuseUnless(None)),
                ("unredirected_headers", RefuseUnless(Some("[]"))),
                ("unsafe_writes", RefuseUnless(Some("false"))),
                ("use_gssapi", RefuseUnless(Some("false"))),
            ],
        ]
        .concat(),
        "wait_for" => vec![("connect_timeout", Ignore), ("exclude_hosts", RefuseUnless(None)), ("active_connection_states", RefuseUnless(None))],
        "apt" => vec![("auto_install_module_deps", Ignore), ("update_cache_retries", Ignore), ("update_cache_retry_max_delay", Ignore)],
        "user" => [
            "authorization", "hidden", "login_class", "password_expire_account_disable", "password_expire_max", "password_expire_min",
            "password_expire_warn", "profile", "role", "uid_max", "uid_min",
        ]
        .iter()
        .map(|n| (*n, RefuseUnless(None)))
        .chain([("seuser", Selinux)])
        .collect(),
        "group" => vec![("gid_max", RefuseUnless(None)), ("gid_min", RefuseUnless(None))],
        _ => Vec::new(),
    }
}

/// Whether `module` takes `arg` in ansible-core though recover does not implement it (it loads).
pub fn known(module: &str, arg: &str) -> bool {
    table(module).iter().any(|(n, _)| *n == arg)
}

/// Whether a value is the default `d` (`None`: no value is), loosely as Ansible compares
/// (`false`, `"no"`, `[]`).
fn is_default(v: &Json, d: Option<&str>) -> bool {
    if v.is_null() || v.as_str() == Some(crate::template::OMIT) {
        return true;
    }
    let Some(d) = d else { return false };
    match (v, serde_json::from_str::<Json>(d)) {
        (Json::String(s), _) if s == d => true,
        (v, Ok(Json::Bool(b))) => crate::modules::de::bool_value(v) == Some(b),
        (v, Ok(parsed)) => *v == parsed,
        _ => false,
    }
}

/// Takes these arguments out of a step's rendered arguments: those that change nothing here
/// go; one that would change something recover cannot do refuses the step, by name.
pub async fn prepare(ctx: &StepCtx<'_>, module: &str, args: &mut Json) -> Result<(), StepError> {
    let Json::Object(m) = args else { return Ok(()) };
    let t = table(module);
    let given: Vec<(&'static str, Policy)> = t.into_iter().filter(|(n, _)| m.contains_key(*n)).collect();
    let mut selinux: Option<bool> = None;
    for (name, policy) in given {
        let v = m.get(name).cloned().unwrap_or(Json::Null);
        match policy {
            Ignore => {}
            RefuseUnless(d) if is_default(&v, d) => {}
            RefuseUnless(_) => {
                return Err(StepError::failed(format!("{module}: argument '{name}' ({v}) is not supported by recover")));
            }
            Selinux if is_default(&v, None) || v.as_str() == Some("_default") => {}
            Selinux => {
                let on = match selinux {
                    Some(on) => on,
                    None => {
                        let out = ctx.run(Cmd::shell("test -e /sys/fs/selinux/enforce").label("is SELinux on")).await?;
                        *selinux.insert(out.ok())
                    }
                };
                // As ansible-core: without SELinux a context changes nothing.
                if on {
                    return Err(StepError::failed(format!("{module}: argument '{name}' ({v}): SELinux contexts are not supported by recover on a host with SELinux")));
                }
            }
        }
        m.remove(name);
    }
    Ok(())
}
