//! From YAML to [`Playbook`]: every key checked, every module's arguments
//! validated by the module itself, all before any host is contacted.

use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use super::{Cond, Play, Playbook, Serial, Task};
use crate::error::{SResult, SourceError};
use crate::template::Vars;
use crate::yaml::{self, Node, Value};

const PLAY_KEYS: &[&str] = &[
    "name", "description", "hosts", "vars", "roles", "tasks", "pre_tasks", "post_tasks", "handlers", "serial",
    "max_fail_percentage", "become", "become_user", "gather_facts", "timeout", "tags", "vars_files",
];
const TASK_KEYS: &[&str] = &[
    "name", "when", "register", "become", "become_user", "loop", "with_items", "loop_control", "changed_when",
    "failed_when", "ignore_errors", "notify", "listen", "tags", "read_only", "timeout", "vars", "no_log", "args",
    "check_mode", "destructive", "backup",
];

/// Loads a playbook file: a play or a list of plays.
pub fn load(path: &Path, project_root: &Path) -> SResult<Playbook> {
    let root = yaml::load_file(path)?;
    let play_nodes: Vec<&Node> = match &root.value {
        Value::Seq(items) => items.iter().collect(),
        Value::Map(_) => vec![&root],
        Value::Null => return Err(root.error("the playbook is empty")),
        _ => return Err(root.error(format!("a playbook is a play or a list of plays, found {}", root.kind()))),
    };
    let mut plays = Vec::new();
    for node in play_nodes {
        plays.push(load_play(node, path, project_root)?);
    }
    Ok(Playbook { path: path.to_path_buf(), plays })
}

fn load_play(node: &Node, path: &Path, project_root: &Path) -> SResult<Play> {
    let entries = node.as_map().ok_or_else(|| node.error(format!("a play must be a mapping, found {}", node.kind())))?;
    for (k, _) in entries {
        let key = k.scalar_string().unwrap_or_default();
        if !PLAY_KEYS.contains(&key.as_str()) {
            return Err(unknown_key(k, &key, PLAY_KEYS, "play"));
        }
    }
    let hosts_node = node.get("hosts").ok_or_else(|| node.error("a play needs `hosts:` (a host pattern such as `all`, `data` or `k3s:!121`)"))?;
    let hosts = match &hosts_node.value {
        Value::Seq(items) => items
            .iter()
            .map(|i| match &i.value {
                Value::Str(_) | Value::Int(_) => Ok(i.scalar_string().unwrap_or_default()),
                _ => Err(i.error(format!("a host pattern must be text, found {}", i.kind()))),
            })
            .collect::<SResult<Vec<_>>>()?
            .join(":"),
        _ => hosts_node.scalar_string().ok_or_else(|| hosts_node.error("`hosts` must be a host pattern"))?,
    };
    let name = opt_string(node, "name")?.unwrap_or_else(|| hosts.clone());
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut play = Play {
        name,
        description: opt_string(node, "description")?,
        hosts,
        span: node.span.clone(),
        vars: mapping(node.get("vars"), "vars")?,
        role_defaults: Vars::new(),
        tasks: Vec::new(),
        handlers: Vec::new(),
        serial: None,
        max_fail_percentage: None,
        r#become: opt_bool(node, "become")?,
        become_user: opt_string(node, "become_user")?,
        timeout: opt_u64(node, "timeout")?,
    };
    // vars_files: above the play's vars in Ansible's precedence; an entry that is a list names
    // alternatives, the first that exists wins.
    if let Some(vf) = node.get("vars_files") {
        let entries: Vec<&Node> = match &vf.value {
            Value::Seq(items) => items.iter().collect(),
            Value::Null => Vec::new(),
            _ => vec![vf],
        };
        for e in entries {
            let names: Vec<&Node> = match &e.value {
                Value::Seq(alts) => alts.iter().collect(),
                _ => vec![e],
            };
            let mut found = None;
            for n in &names {
                let name = n.as_str().ok_or_else(|| n.error("a vars_files entry is a file name or a list of them"))?;
                if crate::template::is_template(name) {
                    return Err(n.error(format!("vars_files name {name:?} is a template: not supported by recover yet")).help("name the file literally"));
                }
                let p = dir.join(name);
                if p.is_file() {
                    found = Some(p);
                    break;
                }
            }
            let p = found.ok_or_else(|| e.error(format!("vars_files: no such file {}", names.iter().filter_map(|n| n.as_str()).map(|n| dir.join(n).display().to_string()).collect::<Vec<_>>().join(" or "))))?;
            let loaded = yaml::load_file(&p)?;
            play.vars.extend(mapping(Some(&loaded), "vars_files")?);
        }
    }
    if let Some(s) = node.get("serial") {
        play.serial = Some(match &s.value {
            Value::Int(n) if *n > 0 => Serial::Count(*n as usize),
            Value::Str(t) if t.ends_with('%') => Serial::Percent(
                t.trim_end_matches('%').trim().parse().map_err(|_| s.error("`serial` must be a number or a percentage like 30%"))?,
            ),
            _ => return Err(s.error("`serial` must be a positive number or a percentage like 30%")),
        });
    }
    if let Some(m) = node.get("max_fail_percentage") {
        play.max_fail_percentage = Some(match &m.value {
            Value::Int(n) => *n as f64,
            Value::Float(f) => *f,
            _ => return Err(m.error("`max_fail_percentage` must be a number")),
        });
    }
    let ctx = LoadCtx { role_dir: None };
    play.tasks.extend(task_list(node.get("pre_tasks"), dir, &ctx, 0)?);
    if let Some(roles) = node.get("roles") {
        let items = match &roles.value {
            Value::Seq(items) => items,
            _ => return Err(roles.error("`roles` must be a list of role names")),
        };
        for r in items {
            let (name, role_vars, role_when, role_tags) = match &r.value {
                Value::Str(s) => (s.clone(), Vars::new(), Vec::new(), Vec::new()),
                Value::Map(entries) => {
                    for (k, _) in entries {
                        let key = k.scalar_string().unwrap_or_default();
                        if !matches!(key.as_str(), "role" | "name" | "vars" | "when" | "tags") {
                            return Err(k.error(format!("`{key}` on a role entry is not supported by recover")).help("a role entry takes `role`, `vars`, `when` and `tags`"));
                        }
                    }
                    let name = r.get("role").or_else(|| r.get("name")).and_then(Node::scalar_string).ok_or_else(|| r.error("a role entry needs `role: NAME`"))?;
                    (name, mapping(r.get("vars"), "vars")?, conds(r.get("when"))?, strings(r.get("tags"))?)
                }
                _ => return Err(r.error("a role is a name or a mapping with `role:`")),
            };
            let role_dir = find_role(&name, dir, project_root).ok_or_else(|| {
                r.error(format!("role '{name}' not found")).help(format!("looked in {}/roles, {}/roles and the search path (project, ~/.config/recover, /etc/recover, built-in)", dir.display(), project_root.display()))
            })?;
            for (file, target) in [("defaults", &mut play.role_defaults)] {
                if let Some(p) = yaml_in(&role_dir.join(file)) {
                    target.extend(mapping(Some(&yaml::load_file(&p)?), file)?);
                }
            }
            let rctx = LoadCtx { role_dir: Some(role_dir.clone()) };
            if let Some(p) = yaml_in(&role_dir.join("tasks")) {
                let tasks_node = yaml::load_file(&p)?;
                let mut tasks = task_list(Some(&tasks_node), &role_dir.join("tasks"), &rctx, 0)?;
                for t in &mut tasks {
                    for (k, v) in &role_vars {
                        t.vars.entry(k.clone()).or_insert(v.clone());
                    }
                    t.when.splice(0..0, role_when.iter().cloned());
                    t.tags.extend(role_tags.iter().cloned());
                }
                play.tasks.extend(tasks);
            }
            if let Some(p) = yaml_in(&role_dir.join("handlers")) {
                let node = yaml::load_file(&p)?;
                play.handlers.extend(task_list(Some(&node), &role_dir.join("handlers"), &rctx, 0)?);
            }
        }
    }
    play.tasks.extend(task_list(node.get("tasks"), dir, &ctx, 0)?);
    play.tasks.extend(task_list(node.get("post_tasks"), dir, &ctx, 0)?);
    play.handlers.extend(task_list(node.get("handlers"), dir, &ctx, 0)?);
    // A play's tags are every one of its tasks' (not its handlers').
    let play_tags = strings(node.get("tags"))?;
    for t in &mut play.tasks {
        t.tags.extend(play_tags.iter().cloned());
    }
    for t in &play.tasks {
        for n in &t.notify {
            if !play.handlers.iter().any(|h| h.name.as_deref() == Some(n) || h.listen.contains(n)) {
                return Err(SourceError::new(t.span.clone(), format!("task notifies '{n}', but the play has no handler of that name")));
            }
        }
    }
    Ok(play)
}

struct LoadCtx {
    role_dir: Option<PathBuf>,
}

/// A role beside the playbook, in the project, then along the search path (see `assets`).
fn find_role(name: &str, dir: &Path, root: &Path) -> Option<PathBuf> {
    let mut c = vec![dir.join("roles").join(name), root.join("roles").join(name)];
    c.extend(crate::assets::role_candidates(name, dir));
    c.into_iter().find(|p| p.is_dir())
}

fn yaml_in(dir: &Path) -> Option<PathBuf> {
    ["main.yml", "main.yaml"].iter().map(|f| dir.join(f)).find(|p| p.is_file())
}

fn task_list(node: Option<&Node>, dir: &Path, ctx: &LoadCtx, depth: usize) -> SResult<Vec<Task>> {
    let Some(node) = node else { return Ok(Vec::new()) };
    if depth > 20 {
        return Err(node.error("import_tasks nested more than 20 levels (a loop?)"));
    }
    let items = match &node.value {
        Value::Null => return Ok(Vec::new()),
        Value::Seq(items) => items,
        _ => return Err(node.error(format!("a task list must be a list of tasks, found {}", node.kind()))),
    };
    let mut out = Vec::new();
    for item in items {
        let include = ["import_tasks", "include_tasks"]
            .iter()
            .flat_map(|k| [k.to_string(), format!("ansible.builtin.{k}"), format!("ansible.legacy.{k}")])
            .find_map(|k| item.get(&k));
        if let Some(file) = include {
            // `include_tasks: file.yml` or `include_tasks: {file: file.yml}`.
            let file = file.get("file").unwrap_or(file);
            let rel = file.as_str().ok_or_else(|| file.error("import_tasks takes a file name"))?;
            // The include's own `when`, `tags` and `vars` apply to every task it brings in (its
            // `when` first); any other keyword on it is refused, never dropped.
            for (k, _) in item.as_map().unwrap_or_default() {
                let key = k.scalar_string().unwrap_or_default();
                let is_include = key.ends_with("import_tasks") || key.ends_with("include_tasks");
                if !is_include && !matches!(key.as_str(), "name" | "when" | "tags" | "vars") {
                    return Err(k.error(format!("`{key}` on an include is not supported by recover")).help("put it on the included tasks; an include takes `when`, `tags` and `vars`"));
                }
            }
            let when = conds(item.get("when"))?;
            let tags = strings(item.get("tags"))?;
            let dynamic = item.as_map().unwrap_or_default().iter().any(|(k, _)| k.scalar_string().is_some_and(|k| k.ends_with("include_tasks")));
            let vars = mapping(item.get("vars"), "vars")?;
            let p = dir.join(rel);
            let inner = yaml::load_file(&p).map_err(|e| if e.span.line == 0 { file.error(e.message) } else { e })?;
            for mut t in task_list(Some(&inner), p.parent().unwrap_or(dir), ctx, depth + 1)? {
                t.when.splice(0..0, when.iter().cloned());
                // An import's tags are its tasks' own; an include's select the include.
                if dynamic {
                    if !tags.is_empty() {
                        t.include_tags.push(tags.clone());
                    }
                } else {
                    t.tags.extend(tags.iter().cloned());
                }
                for (k, v) in &vars {
                    t.vars.entry(k.clone()).or_insert_with(|| v.clone());
                }
                out.push(t);
            }
            continue;
        }
        out.push(load_task(item, ctx)?);
    }
    Ok(out)
}

fn load_task(node: &Node, ctx: &LoadCtx) -> SResult<Task> {
    let entries = node.as_map().ok_or_else(|| node.error(format!("a task must be a mapping, found {}", node.kind())))?;
    let mut module: Option<(&Node, &Node, String)> = None;
    for (k, v) in entries {
        let key = k.scalar_string().unwrap_or_default();
        // `backup: {path: ...}` is the module; `backup: false` the keyword.
        let backup_module = key == "backup" && matches!(v.value, Value::Map(_));
        if TASK_KEYS.contains(&key.as_str()) && !backup_module {
            continue;
        }
        let short = key.strip_prefix("ansible.builtin.").or_else(|| key.strip_prefix("ansible.legacy.")).unwrap_or(&key).to_string();
        if crate::modules::get(&short).is_none() {
            let mut names: Vec<&str> = crate::modules::names();
            names.extend(TASK_KEYS);
            let modules = crate::modules::names().join(", ");
            let help = match closest(&key, &names) {
                Some(c) => format!("did you mean '{c}'? modules: {modules}"),
                None => format!("not a task keyword and not a module; modules: {modules}"),
            };
            return Err(k.error(format!("unknown task key or module '{key}'")).help(help));
        }
        if let Some((prev, _, _)) = module {
            return Err(k.error(format!("a task runs one module, but this one names two: '{}' and '{key}'", prev.scalar_string().unwrap_or_default())));
        }
        module = Some((k, v, short));
    }
    let (mkey, mval, mname) = module.ok_or_else(|| node.error("this task names no module").help(format!("add one of: {}", crate::modules::names().join(", "))))?;
    let mut args = serde_json::Map::new();
    let mut arg_spans = Vec::new();
    match &mval.value {
        Value::Null => {}
        Value::Map(m) => {
            for (k, v) in m {
                let key = k.scalar_string().unwrap_or_default();
                arg_spans.push((key.clone(), k.span.clone()));
                args.insert(key, v.to_json());
            }
        }
        Value::Str(s) => free_form(&mname, s, &mut args),
        _ => {
            let v = mval.to_json();
            args.insert("_raw_params".into(), v);
        }
    }
    if let Some(extra) = node.get("args") {
        for (k, v) in extra.as_map().ok_or_else(|| extra.error("`args` must be a mapping"))? {
            let key = k.scalar_string().unwrap_or_default();
            arg_spans.push((key.clone(), k.span.clone()));
            args.insert(key, v.to_json());
        }
    }
    if !arg_spans.iter().any(|(n, _)| n == "_raw_params") {
        arg_spans.push(("_raw_params".into(), mval.span.clone()));
    }
    let (loop_items, loop_var) = {
        let l = node.get("loop").or_else(|| node.get("with_items"));
        if let Some(n) = node.get("loop") {
            let ok = match &n.value {
                Value::Seq(_) | Value::Null => true,
                _ => n.as_str().is_some_and(crate::template::is_template),
            };
            if !ok {
                return Err(n.error(format!("`loop` takes a list (or a template that gives one), found {}", n.kind())));
            }
        }
        let var = match node.get("loop_control") {
            Some(lc) => lc.get("loop_var").and_then(Node::scalar_string).unwrap_or_else(|| "item".into()),
            None => "item".into(),
        };
        (l.map(|n| (n.to_json(), n.span.clone())), var)
    };
    let task = Task {
        name: opt_string(node, "name")?,
        span: node.span.clone(),
        module: mname,
        module_span: mkey.span.clone(),
        args: Json::Object(args),
        arg_spans,
        when: conds(node.get("when"))?,
        register: opt_string(node, "register")?,
        r#become: opt_bool(node, "become")?,
        become_user: opt_string(node, "become_user")?,
        loop_items,
        loop_var,
        changed_when: conds(node.get("changed_when"))?,
        failed_when: conds(node.get("failed_when"))?,
        ignore_errors: opt_bool(node, "ignore_errors")?.unwrap_or(false),
        notify: strings(node.get("notify"))?,
        listen: strings(node.get("listen"))?,
        tags: strings(node.get("tags"))?,
        include_tags: Vec::new(),
        read_only: opt_bool(node, "read_only")?.unwrap_or(false),
        timeout: opt_u64(node, "timeout")?,
        vars: mapping(node.get("vars"), "vars")?,
        no_log: opt_bool(node, "no_log")?.unwrap_or(false),
        role_dir: ctx.role_dir.clone(),
        declared: declared(node.get("destructive"))?,
    };
    if let Some(b) = node.get("backup").filter(|b| !matches!(b.value, Value::Map(_))) {
        let opt_out = matches!(b.value, Value::Bool(false)) || b.as_str().is_some_and(|s| matches!(s, "no" | "false"));
        if opt_out && (task.declared.is_some() || crate::modules::destructive(&task).is_some_and(|_| task.module != "command" && task.module != "shell")) {
            return Err(b.error("a destructive step cannot opt out of its verified pre-backup").help(
                "remove `backup: false`; if the step preserves the data itself (a rename), say so with `destructive: {preserves: ...}`",
            ));
        }
        if !opt_out && !matches!(b.value, Value::Bool(true)) {
            return Err(b.error("`backup` takes only true (the default) or false"));
        }
    }
    if let (Some(d), true) = (&task.declared, matches!(task.module.as_str(), "command" | "shell")) {
        if d.paths.is_empty() && d.services.is_empty() && d.preserves.is_none() {
            let at = node.get("destructive").unwrap_or(node);
            return Err(at.error("a destructive command names no paths: recover cannot back up what it does not know").help(
                "add `paths: [...]` (what it changes; a verified backup is taken first), `services: [...]` (what it stops), or `preserves: ...` (how it keeps the original)",
            ));
        }
    }
    if let Some(reg) = &task.register {
        if !is_identifier(reg) {
            return Err(node.get("register").map(|n| n.error(format!("`register: {reg}` is not a valid variable name"))).unwrap_or_else(|| node.error("bad register")));
        }
    }
    crate::modules::validate(&task)?;
    Ok(task)
}

fn declared(node: Option<&Node>) -> SResult<Option<super::Declared>> {
    let Some(node) = node else { return Ok(None) };
    match &node.value {
        Value::Bool(false) | Value::Null => Ok(None),
        Value::Bool(true) => Ok(Some(super::Declared::default())),
        Value::Map(entries) => {
            let mut d = super::Declared::default();
            for (k, v) in entries {
                match k.as_str().unwrap_or("") {
                    "reason" => d.reason = v.scalar_string(),
                    "paths" => d.paths = strings(Some(v))?,
                    "services" => d.services = strings(Some(v))?,
                    "preserves" => d.preserves = v.scalar_string(),
                    "tier" => {
                        let t = v.scalar_string().unwrap_or_default();
                        d.tier = Some(crate::safety::Tier::parse(&t).ok_or_else(|| v.error(format!("unknown tier '{t}'")).help("tiers: AUTO, STANDARD_HITL, CRITICAL_HITL, BLOCK"))?);
                    }
                    other => return Err(k.error(format!("unknown key '{other}' in `destructive`")).help("use reason, paths, services, tier, preserves")),
                }
            }
            Ok(Some(d))
        }
        _ => Err(node.error("`destructive` takes true or a mapping with reason, paths, services, tier, preserves")),
    }
}

/// `command: echo hi` keeps the string whole; `file: path=/x state=directory` is k=v.
fn free_form(module: &str, s: &str, args: &mut serde_json::Map<String, Json>) {
    if matches!(module, "command" | "shell") {
        args.insert("_raw_params".into(), Json::String(s.to_string()));
        return;
    }
    match shell_words::split(s) {
        Ok(words) if !words.is_empty() && words.iter().all(|w| w.contains('=')) => {
            for w in words {
                if let Some((k, v)) = w.split_once('=') {
                    args.insert(k.to_string(), Json::String(v.to_string()));
                }
            }
        }
        _ => {
            args.insert("_raw_params".into(), Json::String(s.to_string()));
        }
    }
}

pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_') && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn unknown_key(k: &Node, key: &str, known: &[&str], what: &str) -> SourceError {
    let e = k.error(format!("unknown {what} key or module '{key}'"));
    match closest(key, known) {
        Some(c) => e.help(format!("did you mean '{c}'?")),
        None => e,
    }
}

/// The known name closest to `word` by edit distance, if close enough to be a typo.
pub(crate) fn closest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    known.iter().map(|k| (edit_distance(word, k), *k)).filter(|(d, k)| *d <= 2.max(k.len() / 4)).min().map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push((prev[j] + usize::from(ca != cb)).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

fn opt_string(node: &Node, key: &str) -> SResult<Option<String>> {
    match node.get(key) {
        None => Ok(None),
        Some(v) => match &v.value {
            Value::Null => Ok(None),
            Value::Seq(_) | Value::Map(_) => Err(v.error(format!("`{key}` must be text, found {}", v.kind()))),
            _ => Ok(v.scalar_string()),
        },
    }
}

fn opt_bool(node: &Node, key: &str) -> SResult<Option<bool>> {
    match node.get(key) {
        None => Ok(None),
        Some(v) => match &v.value {
            Value::Bool(b) => Ok(Some(*b)),
            Value::Str(s) if matches!(s.to_lowercase().as_str(), "true" | "yes" | "false" | "no") => Ok(Some(matches!(s.to_lowercase().as_str(), "true" | "yes"))),
            _ => Err(v.error(format!("`{key}` must be true or false, found {}", v.kind()))),
        },
    }
}

fn opt_u64(node: &Node, key: &str) -> SResult<Option<u64>> {
    match node.get(key) {
        None => Ok(None),
        Some(v) => match &v.value {
            Value::Int(n) if *n >= 0 => Ok(Some(*n as u64)),
            _ => Err(v.error(format!("`{key}` must be a whole number of seconds, found {}", v.kind()))),
        },
    }
}

fn mapping(node: Option<&Node>, what: &str) -> SResult<Vars> {
    match node {
        None => Ok(Vars::new()),
        Some(n) => match n.to_json() {
            Json::Object(m) => Ok(m.into_iter().collect()),
            Json::Null => Ok(Vars::new()),
            _ => Err(n.error(format!("`{what}` must be a mapping of names to values, found {}", n.kind()))),
        },
    }
}

fn strings(node: Option<&Node>) -> SResult<Vec<String>> {
    match node {
        None => Ok(Vec::new()),
        Some(n) => match &n.value {
            Value::Null => Ok(Vec::new()),
            Value::Seq(items) => items.iter().map(|i| i.scalar_string().ok_or_else(|| i.error("expected text"))).collect(),
            _ => Ok(vec![n.scalar_string().ok_or_else(|| n.error("expected text or a list of text"))?]),
        },
    }
}

fn conds(node: Option<&Node>) -> SResult<Vec<Cond>> {
    let Some(node) = node else { return Ok(Vec::new()) };
    let one = |n: &Node| -> SResult<Cond> {
        match &n.value {
            Value::Bool(b) => Ok(Cond { expr: if *b { "true".into() } else { "false".into() }, span: n.span.clone() }),
            _ => Ok(Cond { expr: n.scalar_string().ok_or_else(|| n.error("a condition must be an expression"))?, span: n.span.clone() }),
        }
    };
    match &node.value {
        Value::Seq(items) => items.iter().map(one).collect(),
        _ => Ok(vec![one(node)?]),
    }
}
