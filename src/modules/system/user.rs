//! `user` and `group`: accounts created, changed or removed with the shadow tools (`useradd`,
//! `usermod`, `userdel`, `groupadd`, `groupmod`, `groupdel`), with ansible-core's rules for
//! what is a change: supplementary groups compared as sets (`append` only adds), the password
//! hash compared as written (`update_password: on_create` leaves it), `password_lock`, and an
//! SSH key made only when its file is missing.
//!
//! For the safety engine: removing a user is destructive, and with `remove: true` its home is
//! what the verified backup must cover; so are moving a home (`move_home`) and changing a uid
//! (the files in the home are re-owned). Removing a group is destructive. Creating is not.

use async_trait::async_trait;
use documented::Documented;
use serde::Deserialize;
use serde_json::{json, Value as Json};

use crate::modules::{de, opt, req, typed, ArgSpec, Kind, Module, Outcome, Plan, StepCtx, StepError};
use crate::transport::{quote, Cmd};

/// `user`: a local user account: present with its uid, groups, shell, home and password hash, or
/// absent (with its home when `remove`).
///
/// Returns: `name`, `uid`, `group`, `groups`, `home`, `shell`, `state`, `system`, `create_home`;
/// `ssh_public_key`, `ssh_key_file` with `generate_ssh_key`.
///
/// Check mode: reads the account and reports what would change; changes nothing.
#[derive(Documented)]
pub struct User;
/// `group`: a local group, present with its gid or absent.
///
/// Returns: `name`, `gid`, `state`, `system`.
///
/// Check mode: reads the group and reports what would change; changes nothing.
#[derive(Documented)]
pub struct Group;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserArgs {
    #[serde(alias = "user")]
    name: String,
    state: Option<String>,
    uid: Option<Json>,
    group: Option<Json>,
    #[serde(default)]
    groups: Option<Json>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    append: Option<bool>,
    shell: Option<String>,
    home: Option<String>,
    #[serde(default, alias = "createhome", deserialize_with = "de::bool_loose")]
    create_home: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    move_home: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    system: Option<bool>,
    password: Option<String>,
    update_password: Option<String>,
    comment: Option<String>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    remove: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    force: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    non_unique: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    password_lock: Option<bool>,
    skeleton: Option<String>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    generate_ssh_key: Option<bool>,
    ssh_key_bits: Option<Json>,
    ssh_key_type: Option<String>,
    ssh_key_file: Option<String>,
    ssh_key_comment: Option<String>,
    ssh_key_passphrase: Option<String>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    local: Option<bool>,
    expires: Option<Json>,
    umask: Option<String>,
}

const USER_SPEC: &[ArgSpec] = &[
    req("name", Kind::Str).aliases(&["user"]).doc("The user."),
    opt("state", Kind::Str).default("present").doc("`present` or `absent`."),
    opt("uid", Kind::Int).doc("The user id."),
    opt("group", Kind::Str).doc("The primary group."),
    opt("groups", Kind::List).doc("Supplementary groups (see `append`)."),
    opt("append", Kind::Bool).default("false").doc("Add to `groups` instead of setting them."),
    opt("shell", Kind::Str).doc("The login shell."),
    opt("home", Kind::Str).doc("The home folder."),
    opt("create_home", Kind::Bool).aliases(&["createhome"]).default("true").doc("Create the home folder."),
    opt("move_home", Kind::Bool).default("false").doc("Move the home folder's content to a new `home`."),
    opt("system", Kind::Bool).default("false").doc("A system account."),
    opt("password", Kind::Str).doc("The password hash (crypt format)."),
    opt("update_password", Kind::Str).default("always").doc("`always`, or `on_create` only."),
    opt("comment", Kind::Str).doc("The GECOS field."),
    opt("remove", Kind::Bool).default("false").doc("With `state: absent`, remove the home folder and mail spool."),
    opt("force", Kind::Bool).default("false").doc("With `state: absent`, remove even a logged-in user."),
    opt("non_unique", Kind::Bool).default("false").doc("Allow a `uid` another user has."),
    opt("password_lock", Kind::Bool).doc("Lock (or unlock) the password."),
    opt("skeleton", Kind::Str).doc("The folder a new home is filled from."),
    opt("generate_ssh_key", Kind::Bool).default("false").doc("Make an SSH key pair for the user."),
    opt("ssh_key_bits", Kind::Int).doc("Bits of a generated key."),
    opt("ssh_key_type", Kind::Str).default("rsa").doc("The type of a generated key."),
    opt("ssh_key_file", Kind::Str).default(".ssh/id_rsa").doc("Where the key is written."),
    opt("ssh_key_comment", Kind::Str).default("ansible-generated on HOSTNAME").doc("The key's comment."),
    opt("ssh_key_passphrase", Kind::Str).doc("The key's passphrase."),
    opt("local", Kind::Bool).default("false").doc("Use the local account tools (`luseradd`)."),
    opt("expires", Kind::Any).doc("When the account expires (seconds since the epoch; negative: never)."),
    opt("umask", Kind::Str).doc("The umask of a new home folder."),
];

fn text(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A passwd entry: name, password field, uid, gid, gecos, home, shell.
#[derive(Debug, Clone, Default)]
struct Pw {
    uid: u32,
    gid: u32,
    gecos: String,
    home: String,
    shell: String,
}

fn parse_pw(line: &str) -> Option<Pw> {
    let f: Vec<&str> = line.trim_end().split(':').collect();
    (f.len() >= 7).then(|| Pw { uid: f[2].parse().unwrap_or(0), gid: f[3].parse().unwrap_or(0), gecos: f[4].into(), home: f[5].into(), shell: f[6].into() })
}

/// One round trip: the passwd and shadow entries, the groups listing the user as a member,
/// and each named group (`name:gid`, or nothing when it does not exist).
async fn lookup(ctx: &StepCtx<'_>, name: &str, groups: &[String]) -> Result<(Option<Pw>, Option<String>, Vec<String>, std::collections::HashMap<String, Option<(String, u32)>>), StepError> {
    let n = quote::quote(name);
    let mut script = format!("getent passwd {n}; echo @@; getent shadow {n} 2>/dev/null | cut -d: -f2; echo @@; getent group | awk -F: -v u={n} '{{c=split($4,m,\",\"); for(i=1;i<=c;i++) if(m[i]==u) print $1}}'; echo @@; ");
    for g in groups {
        script.push_str(&format!("echo \"={}=$(getent group {} | cut -d: -f1,3)\"; ", g.replace(['"', '$', '`', '\\'], ""), quote::quote(g)));
    }
    let out = ctx.run(Cmd::shell(script)).await?;
    let text = out.stdout_str();
    let parts: Vec<&str> = text.split("@@\n").collect();
    let pw = parts.first().and_then(|p| p.lines().next()).and_then(parse_pw);
    let shadow = parts.get(1).and_then(|p| p.lines().next()).map(str::to_string).filter(|s| !s.is_empty());
    let member: Vec<String> = parts.get(2).map(|p| p.lines().map(str::to_string).collect()).unwrap_or_default();
    let mut known = std::collections::HashMap::new();
    for l in parts.get(3).map(|p| p.lines().collect::<Vec<_>>()).unwrap_or_default() {
        if let Some((g, info)) = l.strip_prefix('=').and_then(|l| l.split_once('=')) {
            let parsed = info.split_once(':').map(|(n, gid)| (n.to_string(), gid.parse().unwrap_or(0)));
            known.insert(g.to_string(), parsed);
        }
    }
    Ok((pw, shadow, member, known))
}

fn groups_list(v: &Option<Json>) -> Option<Vec<String>> {
    match v {
        None | Some(Json::Null) => None,
        Some(Json::Array(a)) => Some(a.iter().map(text).flat_map(|s| s.split(',').map(|x| x.trim().to_string()).collect::<Vec<_>>()).filter(|s| !s.is_empty()).collect()),
        Some(other) => Some(text(other).split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()),
    }
}

#[async_trait]
impl Module for User {
    fn name(&self) -> &'static str {
        "user"
    }
    fn doc(&self) -> &'static str {
        Self::DOCS
    }
    fn spec(&self) -> &'static [ArgSpec] {
        USER_SPEC
    }
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        let a: UserArgs = typed("user", args)?;
        for (k, set) in [("local", a.local == Some(true)), ("expires", a.expires.is_some()), ("umask", a.umask.is_some())] {
            if set {
                return Err(StepError::failed(format!("user: {k} is not supported by recover")));
            }
        }
        let state = a.state.as_deref().unwrap_or("present");
        let want_groups = groups_list(&a.groups);
        let mut names: Vec<String> = want_groups.clone().unwrap_or_default();
        if let Some(g) = &a.group {
            names.push(text(g));
        }
        names.push(a.name.clone());
        let (pw, shadow, member, known) = lookup(ctx, &a.name, &names).await?;
        let mut plan = Plan::ok();
        plan.result.insert("name".into(), json!(a.name));
        plan.result.insert("state".into(), json!(state));
        let n = a.name.clone();
        match (state, &pw) {
            ("absent", None) => return Ok(plan),
            ("absent", Some(p)) => {
                let mut cmd = vec!["userdel".to_string()];
                if a.force.unwrap_or(false) {
                    cmd.push("-f".into());
                }
                if a.remove.unwrap_or(false) {
                    cmd.push("-r".into());
                }
                cmd.push(n.clone());
                plan.changes.push(format!("delete user {n}{}", if a.remove.unwrap_or(false) { format!(" and its home {}", p.home) } else { String::new() }));
                plan.commands.push(Cmd::argv(cmd));
                let paths = if a.remove.unwrap_or(false) { vec![p.home.clone()] } else { Vec::new() };
                plan.destructive = Some(crate::safety::Destructive { reason: format!("deletes user {n}{}", if paths.is_empty() { String::new() } else { format!(" and its home {}", p.home) }), paths, ..Default::default() });
                plan.result.insert("remove".into(), json!(a.remove.unwrap_or(false)));
                plan.result.insert("force".into(), json!(a.force.unwrap_or(false)));
                return Ok(plan);
            }
            ("present", _) => {}
            (other, _) => return Err(StepError::failed(format!("user: value of state must be one of: absent, present, got: {other}"))),
        }
        let missing_group = |g: &str| known.get(g).is_some_and(Option::is_none) && !g.chars().all(|c| c.is_ascii_digit());
        // As ansible-core: a user to create in check mode is a change, its groups not looked at.
        for g in want_groups.iter().flatten().chain(a.group.iter().map(text).collect::<Vec<_>>().iter()) {
            if missing_group(g) && !(ctx.check && pw.is_none()) {
                return Err(StepError::failed(format!("Group {g} does not exist")));
            }
        }
        let group_name = |g: &str| known.get(g).cloned().flatten().map(|x| x.0).unwrap_or_else(|| g.to_string());
        let update_always = a.update_password.as_deref().unwrap_or("always") == "always";
        let create_home = a.create_home.unwrap_or(true);
        let mut cmd: Vec<String>;
        match &pw {
            None => {
                cmd = vec!["useradd".into()];
                if let Some(u) = &a.uid {
                    cmd.extend(["-u".into(), text(u)]);
                    if a.non_unique.unwrap_or(false) {
                        cmd.push("-o".into());
                    }
                }
                if let Some(g) = &a.group {
                    cmd.extend(["-g".into(), text(g)]);
                } else if known.get(&a.name).cloned().flatten().is_some() {
                    cmd.push("-N".into());
                }
                if let Some(gs) = want_groups.as_ref().filter(|g| !g.is_empty()) {
                    cmd.extend(["-G".into(), gs.iter().map(|g| group_name(g)).collect::<Vec<_>>().join(",")]);
                }
                if let Some(c) = &a.comment {
                    cmd.extend(["-c".into(), c.clone()]);
                }
                if let Some(h) = &a.home {
                    if create_home {
                        if let Some(parent) = h.rsplit_once('/').map(|(p, _)| p).filter(|p| !p.is_empty()) {
                            plan.commands.push(Cmd::argv(["mkdir", "-p", parent]));
                        }
                    }
                    cmd.extend(["-d".into(), h.clone()]);
                }
                if let Some(s) = &a.shell {
                    cmd.extend(["-s".into(), s.clone()]);
                }
                if let Some(p) = &a.password {
                    cmd.extend(["-p".into(), if a.password_lock == Some(true) { format!("!{p}") } else { p.clone() }]);
                }
                if create_home {
                    cmd.push("-m".into());
                    if let Some(k) = &a.skeleton {
                        cmd.extend(["-k".into(), k.clone()]);
                    }
                } else {
                    cmd.push("-M".into());
                }
                if a.system.unwrap_or(false) {
                    cmd.push("-r".into());
                }
                cmd.push(n.clone());
                plan.changes.push(format!("create user {n}"));
                plan.commands.push(Cmd::argv(cmd));
            }
            Some(p) => {
                cmd = vec!["usermod".into()];
                let mut what = Vec::new();
                let mut destructive = Vec::new();
                let mut paths = Vec::new();
                if let Some(u) = a.uid.as_ref().map(text).filter(|u| u.parse::<u32>().ok() != Some(p.uid)) {
                    cmd.extend(["-u".into(), u.clone()]);
                    if a.non_unique.unwrap_or(false) {
                        cmd.push("-o".into());
                    }
                    what.push(format!("uid {} -> {u}", p.uid));
                    destructive.push(format!("changes the uid of {n} (the files in {} are re-owned)", p.home));
                }
                if let Some(g) = a.group.as_ref().map(text) {
                    let gid = known.get(&g).cloned().flatten().map(|x| x.1).or_else(|| g.parse().ok());
                    if let Some(gid) = gid.filter(|gid| *gid != p.gid) {
                        cmd.extend(["-g".into(), gid.to_string()]);
                        what.push(format!("primary group -> {g}"));
                    }
                }
                if let Some(want) = &want_groups {
                    let want: std::collections::BTreeSet<String> = want.iter().map(|g| group_name(g)).collect();
                    let have: std::collections::BTreeSet<String> = member.iter().cloned().collect();
                    let need = if want.is_empty() { !have.is_empty() && !a.append.unwrap_or(false) } else if a.append.unwrap_or(false) { !want.is_subset(&have) } else { want != have };
                    if need {
                        if a.append.unwrap_or(false) {
                            cmd.push("-a".into());
                        }
                        cmd.extend(["-G".into(), want.iter().cloned().collect::<Vec<_>>().join(",")]);
                        what.push(format!("groups -> {}", want.iter().cloned().collect::<Vec<_>>().join(",")));
                    }
                }
                if let Some(c) = a.comment.as_ref().filter(|c| **c != p.gecos) {
                    cmd.extend(["-c".into(), c.clone()]);
                    what.push("comment".into());
                }
                if let Some(h) = a.home.as_ref().filter(|h| **h != p.home) {
                    cmd.extend(["-d".into(), h.clone()]);
                    if a.move_home.unwrap_or(false) {
                        cmd.push("-m".into());
                        destructive.push(format!("moves the home of {n} from {} to {h}", p.home));
                        paths.push(p.home.clone());
                    }
                    what.push(format!("home -> {h}"));
                }
                if let Some(s) = a.shell.as_ref().filter(|s| **s != p.shell) {
                    cmd.extend(["-s".into(), s.clone()]);
                    what.push(format!("shell -> {s}"));
                }
                let hash = shadow.clone().unwrap_or_default();
                match a.password_lock {
                    Some(true) if !hash.starts_with('!') => {
                        cmd.push("-L".into());
                        what.push("lock the password".into());
                    }
                    Some(false) if hash.starts_with('!') => {
                        cmd.push("-U".into());
                        what.push("unlock the password".into());
                    }
                    _ => {}
                }
                if let Some(pwd) = a.password.as_ref().filter(|pwd| update_always && hash.trim_start_matches('!') != pwd.trim_start_matches('!')) {
                    cmd.extend(["-p".into(), pwd.clone()]);
                    what.push("password".into());
                }
                if cmd.len() > 1 {
                    cmd.push(n.clone());
                    plan.changes.push(format!("change user {n}: {}", what.join(", ")));
                    plan.commands.push(Cmd::argv(cmd));
                    if !destructive.is_empty() {
                        plan.destructive = Some(crate::safety::Destructive { reason: destructive.join("; "), paths, ..Default::default() });
                    }
                }
            }
        }
        // A user whose home is missing gets one (from the skeleton), as ansible-core does.
        if let (Some(p), true) = (&pw, create_home) {
            let home = a.home.clone().unwrap_or_else(|| p.home.clone());
            if !ctx.run(Cmd::argv(["test", "-e", &home])).await?.ok() {
                let (h, skel) = (quote::quote(&home), quote::quote(a.skeleton.as_deref().unwrap_or("/etc/skel")));
                plan.changes.push(format!("create the home {home}"));
                plan.commands.push(Cmd::shell(format!(
                    "set -e; h={h}; if [ ! -e \"$h\" ]; then mkdir -p \"$(dirname \"$h\")\"; if [ -d {skel} ]; then cp -a {skel} \"$h\"; else mkdir \"$h\"; fi; \
                     m=$(awk '$1==\"HOME_MODE\"{{print $2}}' /etc/login.defs 2>/dev/null); u=$(awk '$1==\"UMASK\"{{print $2}}' /etc/login.defs 2>/dev/null); \
                     [ -n \"$m\" ] || m=$(printf '%o' $((0777 & ~0${{u:-022}}))); chmod \"$m\" \"$h\"; chown -R {}:{} \"$h\"; fi",
                    p.uid, p.gid
                )));
            }
        }
        // An SSH key, made only when its file is missing.
        if a.generate_ssh_key.unwrap_or(false) {
            let home = a.home.clone().or_else(|| pw.as_ref().map(|p| p.home.clone())).unwrap_or_else(|| format!("/home/{n}"));
            let kind = a.ssh_key_type.clone().unwrap_or_else(|| "rsa".into());
            let file = a.ssh_key_file.clone().unwrap_or_else(|| format!(".ssh/id_{kind}"));
            let file = if file.starts_with('/') { file } else { format!("{home}/{file}") };
            let exists = ctx.run(Cmd::argv(["test", "-e", &file])).await?.ok();
            plan.result.insert("ssh_key_file".into(), json!(file));
            if !exists {
                let dir = file.rsplit_once('/').map(|(d, _)| d.to_string()).unwrap_or_default();
                let mut kg = format!("ssh-keygen -q -t {} -f {} -N {}", quote::quote(&kind), quote::quote(&file), quote::quote(a.ssh_key_passphrase.as_deref().unwrap_or("")));
                if let Some(b) = a.ssh_key_bits.as_ref().map(text).filter(|b| b != "0") {
                    kg.push_str(&format!(" -b {}", quote::quote(&b)));
                }
                kg.push_str(&format!(" -C {}", quote::quote(a.ssh_key_comment.as_deref().unwrap_or(&format!("ansible-generated on {}", ctx.host)))));
                let q = quote::quote(&n);
                let d = quote::quote(&dir);
                plan.changes.push(format!("generate an SSH key {file}"));
                plan.commands.push(Cmd::shell(format!("set -e; if [ ! -d {d} ]; then mkdir -p {d}; chmod 0700 {d}; chown {q}: {d}; fi; {kg}; chown {q}: {} {}.pub", quote::quote(&file), quote::quote(&file))));
            }
        }
        plan.result.insert("create_home".into(), json!(create_home));
        plan.result.insert("system".into(), json!(a.system.unwrap_or(false)));
        Ok(plan)
    }
    async fn apply(&self, ctx: &StepCtx<'_>, plan: Plan) -> Result<Outcome, StepError> {
        let name = plan.result.get("name").and_then(Json::as_str).unwrap_or_default().to_string();
        let key = plan.result.get("ssh_key_file").and_then(Json::as_str).map(str::to_string);
        let mut out = crate::modules::run_plan_commands(ctx, plan).await?;
        let (pw, _, member, _) = lookup(ctx, &name, &[]).await?;
        if let Some(p) = pw {
            out.result.insert("uid".into(), json!(p.uid));
            out.result.insert("group".into(), json!(p.gid));
            out.result.insert("home".into(), json!(p.home));
            out.result.insert("shell".into(), json!(p.shell));
            out.result.insert("comment".into(), json!(p.gecos));
            out.result.insert("groups".into(), json!(member.join(",")));
        }
        if let Some(k) = key {
            if let Some(pubkey) = ctx.read(&format!("{k}.pub")).await? {
                out.result.insert("ssh_public_key".into(), json!(String::from_utf8_lossy(&pubkey).trim()));
            }
        }
        out.result.remove("stdout");
        Ok(out)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupArgs {
    name: String,
    state: Option<String>,
    gid: Option<Json>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    system: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    non_unique: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    force: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    local: Option<bool>,
}

#[async_trait]
impl Module for Group {
    fn name(&self) -> &'static str {
        "group"
    }
    fn doc(&self) -> &'static str {
        Self::DOCS
    }
    fn spec(&self) -> &'static [ArgSpec] {
        const S: &[ArgSpec] = &[
            req("name", Kind::Str).doc("The group."),
            opt("state", Kind::Str).default("present").doc("`present` or `absent`."),
            opt("gid", Kind::Int).doc("The group id."),
            opt("system", Kind::Bool).default("false").doc("A system group."),
            opt("non_unique", Kind::Bool).default("false").doc("Allow a `gid` another group has."),
            opt("force", Kind::Bool).default("false").doc("With `state: absent`, remove it even when it is a user's primary group."),
            opt("local", Kind::Bool).default("false").doc("Use the local account tools (`lgroupadd`)."),
        ];
        S
    }
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        let a: GroupArgs = typed("group", args)?;
        if a.local == Some(true) {
            return Err(StepError::failed("group: local is not supported by recover"));
        }
        let out = ctx.run(Cmd::shell(format!("getent group {} | cut -d: -f3", quote::quote(&a.name)))).await?;
        let have: Option<u32> = out.stdout_str().trim().parse().ok();
        let mut plan = Plan::ok();
        plan.result.insert("name".into(), json!(a.name));
        let state = a.state.as_deref().unwrap_or("present");
        plan.result.insert("state".into(), json!(state));
        let gid = a.gid.as_ref().map(text);
        match (state, have) {
            ("absent", None) => {}
            ("absent", Some(_)) => {
                let mut cmd = vec!["groupdel".to_string()];
                if a.force.unwrap_or(false) {
                    cmd.push("-f".into());
                }
                cmd.push(a.name.clone());
                plan.changes.push(format!("delete group {}", a.name));
                plan.commands.push(Cmd::argv(cmd));
                plan.destructive = Some(crate::safety::Destructive { reason: format!("deletes group {}", a.name), ..Default::default() });
            }
            ("present", None) => {
                let mut cmd = vec!["groupadd".to_string()];
                if let Some(g) = &gid {
                    cmd.extend(["-g".into(), g.clone()]);
                    if a.non_unique.unwrap_or(false) {
                        cmd.push("-o".into());
                    }
                }
                if a.system.unwrap_or(false) {
                    cmd.push("-r".into());
                }
                cmd.push(a.name.clone());
                plan.changes.push(format!("create group {}", a.name));
                plan.commands.push(Cmd::argv(cmd));
            }
            ("present", Some(cur)) => {
                if let Some(g) = gid.filter(|g| g.parse::<u32>().ok() != Some(cur)) {
                    let mut cmd = vec!["groupmod".to_string(), "-g".into(), g.clone()];
                    if a.non_unique.unwrap_or(false) {
                        cmd.push("-o".into());
                    }
                    cmd.push(a.name.clone());
                    plan.changes.push(format!("change group {}: gid {cur} -> {g}", a.name));
                    plan.commands.push(Cmd::argv(cmd));
                }
            }
            (other, _) => return Err(StepError::failed(format!("group: value of state must be one of: absent, present, got: {other}"))),
        }
        plan.result.insert("system".into(), json!(a.system.unwrap_or(false)));
        Ok(plan)
    }
}
