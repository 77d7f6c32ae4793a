//! The controller's Python: one long-lived process per run (`helper.py`, built into the
//! binary), started on the first module, filter, test or lookup recover does not build in. It
//! finds a module with the installed ansible-core's own plugin loader (collections, `library/`,
//! routing) and packs it as ansible-core does (AnsiBallZ, with every `module_utils` it
//! imports); it never sees a module's arguments: recover puts them into the packed code itself,
//! for each call. It runs the Python filter, test and lookup plugins of collections and of the
//! `filter_plugins/`, `test_plugins/` and `lookup_plugins/` folders beside a playbook or in a
//! role, on the values a template hands them.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value as Json};

const HELPER: &str = include_str!("helper.py");

/// What to install when no Python on this machine has ansible-core.
pub const INSTALL_HINT: &str = "install ansible-core for the controller (`pip install ansible-core`, or Debian's `ansible-core`), and the collection (`ansible-galaxy collection install NAMESPACE.COLLECTION`, or `pip install ansible`); set RECOVER_ANSIBLE_PYTHON to a Python that has them";

struct Helper {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    version: String,
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

static HELPER_PROC: Mutex<Option<Result<Helper, String>>> = Mutex::new(None);
static BUILT: Mutex<Option<HashMap<String, Result<Arc<Built>, String>>>> = Mutex::new(None);

/// A module packed by ansible-core, with the mark where a call's parameters go.
#[derive(Debug)]
pub struct Built {
    pub code: String,
    pub mark: String,
}

/// The Pythons that may have ansible-core, in order: `RECOVER_ANSIBLE_PYTHON`, the one
/// `ansible-playbook` on PATH runs with (its `#!` line), then `python3`.
fn candidates() -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(p) = std::env::var("RECOVER_ANSIBLE_PYTHON") {
        if !p.is_empty() {
            return vec![p];
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let ap = dir.join("ansible-playbook");
            if let Ok(text) = std::fs::read(&ap) {
                let first = text.split(|b| *b == b'\n').next().unwrap_or_default();
                if let Some(rest) = first.strip_prefix(b"#!") {
                    let words: Vec<String> = String::from_utf8_lossy(rest).split_whitespace().map(str::to_string).collect();
                    // `#!/usr/bin/env python3` names the program after env.
                    let py = if words.first().is_some_and(|w| w.ends_with("/env")) { words.get(1).cloned() } else { words.first().cloned() };
                    if let Some(py) = py {
                        out.push(py);
                    }
                }
                break;
            }
        }
    }
    out.push("python3".into());
    out.dedup();
    out
}

fn start() -> Result<Helper, String> {
    let mut why = Vec::new();
    for py in candidates() {
        let child = Command::new(&py).arg("-c").arg(HELPER).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => {
                why.push(format!("{py}: {e}"));
                continue;
            }
        };
        let stdin = child.stdin.take().expect("piped");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
        let mut line = String::new();
        let _ = stdout.read_line(&mut line);
        let hello: Json = serde_json::from_str(&line).unwrap_or(Json::Null);
        if hello["ready"] == json!(true) {
            let version = hello["version"].as_str().unwrap_or_default().to_string();
            return Ok(Helper { child, stdin, stdout, version });
        }
        why.push(format!("{py}: {}", hello["msg"].as_str().unwrap_or("did not start")));
        let _ = child.kill();
        let _ = child.wait();
    }
    Err(format!("no ansible-core on this machine ({})", why.join("; ")))
}

/// Asks the helper one question; `Err` when there is no ansible-core to ask.
pub fn ask(req: &Json) -> Result<Json, String> {
    let mut guard = HELPER_PROC.lock().unwrap_or_else(|e| e.into_inner());
    if guard.is_none() {
        *guard = Some(start());
    }
    let helper = match guard.as_mut().expect("set above") {
        Ok(h) => h,
        Err(e) => return Err(e.clone()),
    };
    let mut line = serde_json::to_string(req).unwrap_or_default();
    line.push('\n');
    let mut answer = String::new();
    let sent = helper.stdin.write_all(line.as_bytes()).and_then(|_| helper.stdin.flush()).and_then(|_| helper.stdout.read_line(&mut answer).map(|_| ()));
    match sent.ok().and_then(|_| serde_json::from_str::<Json>(&answer).ok()) {
        Some(a) => Ok(a),
        None => {
            *guard = Some(Err("the controller's ansible-core helper stopped".into()));
            Err("the controller's ansible-core helper stopped".into())
        }
    }
}

static BASE_DIRS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// A playbook's or role's folder: ansible-core loads plugins from its `library/`,
/// `module_utils/`, `filter_plugins/`, `test_plugins/`, `lookup_plugins/` and `action_plugins/`
/// (and collections from a playbook's `collections/`).
pub fn note_dir(dir: &std::path::Path) {
    let d = dir.display().to_string();
    let mut dirs = BASE_DIRS.lock().unwrap_or_else(|e| e.into_inner());
    if !dirs.contains(&d) {
        dirs.push(d);
    }
}

/// The plugin folders under every noted folder, as a request's fields.
pub fn plugin_dirs() -> Json {
    let dirs = BASE_DIRS.lock().unwrap_or_else(|e| e.into_inner()).clone();
    folders(&dirs, &["filter_plugins", "test_plugins", "lookup_plugins", "module_utils"])
}

/// For each kind of plugin folder (`library`, `filter_plugins`, ...), that folder under every
/// one of `bases`: a request's fields.
pub fn folders(bases: &[String], kinds: &[&str]) -> Json {
    Json::Object(kinds.iter().map(|k| (k.to_string(), json!(bases.iter().map(|b| format!("{}/{k}", b.trim_end_matches('/'))).collect::<Vec<_>>()))).collect())
}

/// Asks with `req` and the folder fields of `dirs` (see [`folders`]) together.
pub fn ask_in(mut req: Json, dirs: &Json) -> Result<Json, String> {
    if let (Some(r), Some(d)) = (req.as_object_mut(), dirs.as_object()) {
        r.extend(d.clone());
    }
    ask(&req)
}

static PLUGINS: Mutex<Option<HashMap<String, bool>>> = Mutex::new(None);

/// Whether the installed ansible-core has a filter or test (`kind`) of that name, from a
/// collection or a plugin folder beside the playbook or a role; `false` with no ansible-core.
pub fn has_plugin(kind: &str, name: &str) -> bool {
    let key = format!("{kind}\0{name}\0{}", plugin_dirs());
    if let Some(b) = PLUGINS.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert_with(HashMap::new).get(&key) {
        return *b;
    }
    let found = ask_in(json!({"op": "has", "kind": kind, "name": name}), &plugin_dirs()).is_ok_and(|a| a["found"] == json!(true));
    PLUGINS.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert_with(HashMap::new).insert(key, found);
    found
}

/// Calls a filter (`value | name(args)`), test (`value is name(args)`) or lookup
/// (`lookup(name, *args)`, `value` unused) plugin in the controller's ansible-core; its
/// result as JSON, or why it failed.
pub fn call_plugin(kind: &str, name: &str, value: &Json, args: &[Json], kwargs: &serde_json::Map<String, Json>) -> Result<Json, String> {
    let a = ask_in(json!({"op": "call", "kind": kind, "name": name, "value": value, "args": args, "kwargs": kwargs}), &plugin_dirs())?;
    match a["ok"].as_bool() {
        Some(true) => Ok(a["value"].clone()),
        _ => Err(a["msg"].as_str().unwrap_or("the plugin failed").to_string()),
    }
}

/// The installed ansible-core's version (what `_ansible_version` says to a module).
pub fn version() -> String {
    let guard = HELPER_PROC.lock().unwrap_or_else(|e| e.into_inner());
    match guard.as_ref() {
        Some(Ok(h)) => h.version.clone(),
        _ => String::new(),
    }
}

/// The module at `path` packed by ansible-core, once per run.
pub fn build(fqcn: &str, path: &str, dirs: &Json) -> Result<Arc<Built>, String> {
    if let Some(b) = BUILT.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert_with(HashMap::new).get(path) {
        return b.clone();
    }
    let a = ask_in(json!({"op": "build", "name": fqcn, "path": path}), dirs)?;
    let built = match (a["ok"].as_bool(), a["code"].as_str(), a["mark"].as_str()) {
        (Some(true), Some(code), Some(mark)) => Ok(Arc::new(Built { code: code.to_string(), mark: mark.to_string() })),
        _ => Err(format!("ansible-core could not pack {fqcn}: {}", a["msg"].as_str().unwrap_or("no reason given"))),
    };
    BUILT.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert_with(HashMap::new).insert(path.to_string(), built.clone());
    built
}
