//! Differential conformance with ansible-core itself (issue 15): every template case in
//! `tests/conformance/templates/` is rendered by Ansible's `template` module (one
//! `ansible-playbook` run, `-c local`) and by `recover render`, with the variables of
//! `tests/conformance/vars.yml`, and compared byte for byte; every inventory in
//! `tests/conformance/inventories/` is listed by `ansible-inventory --list` and `--graph` and by
//! `recover inventory`, byte for byte. A case Ansible refuses passes only if recover refuses it
//! too. A difference kept on purpose is listed in `known-differences.txt` (`name: reason`), and
//! the suite checks each listed one still differs. ansible-core comes from PyPI (`.ci/run`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/conformance")
}

fn have(program: &str) -> bool {
    Command::new(program).arg("--version").output().is_ok_and(|o| o.status.success())
}

fn require_ansible() {
    assert!(
        have("ansible-playbook") && have("ansible-inventory"),
        "ansible-core is the oracle of this suite: `python3 -m pip install ansible-core` (.ci/run installs it)"
    );
}

/// The Python that has ansible-core (the one `python3` on PATH runs), for the local connection.
fn python() -> String {
    let out = Command::new("python3").args(["-c", "import sys; print(sys.executable)"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn ansible_env(cmd: &mut Command) -> &mut Command {
    cmd.env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_PYTHON_INTERPRETER", python())
        .env("ANSIBLE_LOCALHOST_WARNING", "False")
        .env("ANSIBLE_INVENTORY_UNPARSED_WARNING", "False")
        .env("ANSIBLE_DEPRECATION_WARNINGS", "False")
        .env("RECOVER_CONFORMANCE_ENV", "envval")
        .env("RECOVER_CONFORMANCE_DIR", dir())
}

fn recover(args: &[&str]) -> (bool, Vec<u8>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_recover")).args(args).env("RECOVER_CONFORMANCE_ENV", "envval").env("RECOVER_CONFORMANCE_DIR", dir()).env("NO_COLOR", "1").current_dir(dir()).output().unwrap();
    (out.status.success(), out.stdout, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// `name: reason` lines (comments with #).
fn known() -> BTreeMap<String, String> {
    std::fs::read_to_string(dir().join("known-differences.txt"))
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once(':').map(|(a, b)| (a.trim().to_string(), b.trim().to_string())))
        .collect()
}

fn cases(sub: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir().join(sub)).unwrap().flatten().map(|e| e.path()).collect();
    v.sort();
    v
}

/// Compares, prints `N passed, M failed`, and fails on any difference not listed as known,
/// or any known one that no longer differs.
fn judge(what: &str, results: Vec<(String, Option<String>)>) {
    let known = known();
    let mut failed = Vec::new();
    let mut passed = 0;
    for (name, diff) in &results {
        match (diff, known.get(name)) {
            (None, None) => passed += 1,
            (Some(_), Some(_)) => passed += 1,
            (None, Some(reason)) => failed.push(format!("{name}: listed as a known difference ({reason}) but now identical: remove it from known-differences.txt")),
            (Some(d), None) => failed.push(format!("{name}: {d}")),
        }
    }
    eprintln!("{what}: {passed} passed, {} failed", failed.len());
    println!("{passed} passed, {} failed", failed.len());
    assert!(failed.is_empty(), "{what} differs from ansible-core:\n{}", failed.join("\n\n"));
}

#[test]
fn templates_render_byte_identical_to_ansible_core() {
    require_ansible();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let templates = cases("templates");
    assert!(templates.len() >= 150, "{} template cases", templates.len());
    let list: Vec<String> = templates.iter().map(|p| p.display().to_string()).collect();
    let play = tmp.path().join("play.yml");
    std::fs::write(
        &play,
        format!(
            "- hosts: localhost\n  gather_facts: false\n  vars_files: [{}]\n  tasks:\n    - template: {{src: \"{{{{ item }}}}\", dest: \"{}/{{{{ item | basename }}}}.out\"}}\n      loop: {}\n      ignore_errors: true\n",
            dir().join("vars.yml").display(),
            out.display(),
            serde_json::to_string(&list).unwrap()
        ),
    )
    .unwrap();
    let ran = ansible_env(Command::new("ansible-playbook").args(["-i", "localhost,", "-c", "local", play.to_str().unwrap()])).output().unwrap();
    assert!(ran.status.success(), "ansible-playbook failed:\n{}", String::from_utf8_lossy(&ran.stdout));
    let vars = dir().join("vars.yml");
    let results = templates
        .iter()
        .map(|t| {
            let name = t.file_name().unwrap().to_string_lossy().into_owned();
            let (ok, got, err) = recover(&["render", t.to_str().unwrap(), "-e", &format!("@{}", vars.display())]);
            let want = std::fs::read(out.join(format!("{name}.out"))).ok();
            let diff = match (want, ok) {
                (None, false) => None,
                (None, true) => Some(format!("ansible-core refuses it, recover rendered {:?}", String::from_utf8_lossy(&got))),
                (Some(_), false) => Some(format!("recover refused it: {}", err.trim())),
                (Some(w), true) if w == got => None,
                (Some(w), true) => Some(format!("ansible-core: {:?}\nrecover:      {:?}", String::from_utf8_lossy(&w), String::from_utf8_lossy(&got))),
            };
            (name, diff)
        })
        .collect();
    judge("templates", results);
}

#[test]
fn inventories_list_and_graph_byte_identical_to_ansible_inventory() {
    require_ansible();
    let invs = cases("inventories");
    let mut results = Vec::new();
    for inv in &invs {
        let name = inv.file_name().unwrap().to_string_lossy().into_owned();
        for mode in ["--list", "--graph"] {
            let a = ansible_env(Command::new("ansible-inventory").args(["-i", inv.to_str().unwrap(), mode])).output().unwrap();
            let (ok, got, err) = recover(&["inventory", "-i", inv.to_str().unwrap(), mode]);
            let diff = match (a.status.success(), ok) {
                (false, false) => None,
                (true, false) => Some(format!("recover refused it: {}", err.trim())),
                (false, true) => Some("ansible-inventory refuses it, recover did not".to_string()),
                (true, true) if a.stdout == got => None,
                (true, true) => Some(format!("ansible-inventory:\n{}\nrecover:\n{}", String::from_utf8_lossy(&a.stdout), String::from_utf8_lossy(&got))),
            };
            results.push((format!("{name} {mode}"), diff));
        }
    }
    assert!(invs.len() >= 18, "{} inventories", invs.len());
    judge("inventories", results);
}

