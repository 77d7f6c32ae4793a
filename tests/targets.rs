//! Issue 33: ansible-core's own integration targets, the most exact statement there is of what
//! Ansible does. They come from ansible-core's source distribution on PyPI at test time
//! (scripts/oracles downloads and unpacks it; nothing of them is copied into this repository),
//! and each selected target (tests/targets/selected.txt) runs as `ansible-test integration`
//! runs one: a playbook that applies the target as a role to one host, with the variables
//! ansible-test sets (`output_dir`; `remote_tmp_dir` comes from the target's own
//! setup_remote_tmp_dir dependency). The host is the lab's 188, over SSH as its unprivileged
//! user: a target that needs root or changes the system is excluded, with its reason, in
//! tests/targets/excluded.txt. Each runs once under ansible-playbook (the baseline) and once
//! under recover; over the targets that pass under ansible-core the suite prints
//! `N passed, M failed`, and fails when a target fails under recover that selected.txt does not
//! list as a known failure with its reason, when a known failure passes (take it off the list),
//! or when recover refuses at load a target ansible-core runs to the end without that being
//! the listed reason.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The targets folder of the unpacked sdist.
fn targets_dir() -> PathBuf {
    let o = std::env::var("RECOVER_ORACLES_DIR").unwrap_or_else(|_| repo().join(".oracles").display().to_string());
    let dir = std::fs::read_dir(&o)
        .unwrap_or_else(|e| panic!("{o}: {e} (scripts/oracles installs the oracles)"))
        .flatten()
        .map(|e| e.path().join("test/integration/targets"))
        .find(|p| p.is_dir())
        .unwrap_or_else(|| panic!("no ansible-core sdist with test/integration/targets under {o} (scripts/oracles unpacks it)"));
    dir
}

/// selected.txt: `name` (must pass), or `name  known: why` (fails under recover, for that reason).
fn selection() -> Vec<(String, Option<String>)> {
    let text = std::fs::read_to_string(repo().join("tests/targets/selected.txt")).unwrap();
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| match l.split_once("known:") {
            Some((n, why)) => (n.trim().to_string(), Some(why.trim().to_string())),
            None => (l.to_string(), None),
        })
        .collect()
}

struct Outcome {
    code: i32,
    text: String,
}

/// One target under one tool, in a folder of its own on the host 188 (the lab's machine).
fn run_target(targets: &Path, name: &str, tool: &str) -> Outcome {
    let dir = lab_root().join("188").join(format!("it-{tool}-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("out")).unwrap();
    std::os::unix::fs::symlink(targets, dir.join("roles")).unwrap();
    let aliases = std::fs::read_to_string(targets.join(name).join("aliases")).unwrap_or_default();
    let facts = if aliases.lines().any(|l| l.trim() == "gather_facts/no") { "false" } else { "true" };
    std::fs::write(dir.join("play.yml"), format!("- hosts: testhost\n  gather_facts: {facts}\n  roles:\n    - {name}\n")).unwrap();
    let lab = lab_root();
    std::fs::write(
        dir.join("inventory"),
        format!(
            "testhost ansible_host=127.0.0.188 ansible_port=2222 ansible_user=ollama ansible_ssh_private_key_file={l}/ssh/id_ed25519 ansible_ssh_common_args='-o UserKnownHostsFile={l}/ssh/known_hosts' ansible_python_interpreter=/usr/bin/python3 recover_lock_dir={d}/lock recover_backup_root={d}/backups\n",
            l = lab.display(),
            d = dir.display()
        ),
    )
    .unwrap();
    give_to_host(&dir);
    let output_dir = format!("output_dir={}", dir.join("out").display());
    let mut cmd = match tool {
        "ansible" => {
            let mut c = Command::new("ansible-playbook");
            c.args(["-i", "inventory", "play.yml", "-e", &output_dir]);
            c
        }
        _ => {
            let mut c = Recover::new().command();
            c.args(["play", "play.yml", "-i", "inventory", "-e", &output_dir, "--yes"]);
            c
        }
    };
    let out = cmd.current_dir(&dir).env("ANSIBLE_HOST_KEY_CHECKING", "False").env("ANSIBLE_NOCOLOR", "1").env("NO_COLOR", "1").output().expect("run a target");
    let _ = std::fs::remove_dir_all(&dir);
    Outcome { code: out.status.code().unwrap_or(-1), text: format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)) }
}

/// recover's load error (exit 1 before any host was contacted), its first lines.
fn load_error(o: &Outcome) -> Option<String> {
    (o.code == 1 && o.text.trim_start().starts_with("error:")).then(|| o.text.lines().take(3).collect::<Vec<_>>().join(" / "))
}

fn failed_tasks(o: &Outcome) -> String {
    o.text.lines().filter(|l| l.contains("FAILED")).take(3).map(str::trim).collect::<Vec<_>>().join(" | ")
}

#[test]
fn ansible_core_integration_targets_pass_under_recover() {
    lab();
    let targets = targets_dir();
    let selected = selection();
    // RECOVER_TARGETS=lineinfile runs only the targets whose name contains it (while working on one).
    let only = std::env::var("RECOVER_TARGETS").ok();
    let chosen: Vec<&(String, Option<String>)> = selected.iter().filter(|(n, _)| only.as_deref().is_none_or(|o| n.contains(o))).collect();
    for (n, _) in &chosen {
        assert!(targets.join(n).join("tasks").is_dir(), "{n}: not a target of this sdist (tests/targets/selected.txt)");
        assert!(!targets.join(n).join("runme.sh").exists(), "{n}: ansible-test runs its runme.sh, not the role: list it in excluded.txt");
    }
    // Three targets at a time: each is mostly waiting on its host.
    let results: Vec<(String, Option<String>, Outcome, Outcome)> = std::thread::scope(|sc| {
        let chunks: Vec<Vec<&(String, Option<String>)>> = (0..3).map(|i| chosen.iter().skip(i).step_by(3).copied().collect()).collect();
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                let targets = &targets;
                sc.spawn(move || chunk.into_iter().map(|(n, known)| (n.clone(), known.clone(), run_target(targets, n, "ansible"), run_target(targets, n, "recover"))).collect::<Vec<_>>())
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("a target thread panicked")).collect()
    });
    let (mut passed, mut failed, mut baseline_fails) = (0, 0, Vec::new());
    let mut problems = Vec::new();
    for (name, known, a, r) in &results {
        if a.code != 0 {
            baseline_fails.push(name.clone());
            println!("{name}: fails under ansible-core itself (exit {}); not counted", a.code);
            continue;
        }
        if r.code == 0 {
            passed += 1;
            println!("{name}: passed");
            if known.is_some() {
                problems.push(format!("{name} passes under recover now: take it off tests/targets/selected.txt's known failures"));
            }
            continue;
        }
        failed += 1;
        let why = load_error(r).map(|e| format!("load error: {e}")).unwrap_or_else(|| format!("exit {}: {}", r.code, failed_tasks(r)));
        println!("{name}: FAILED ({why}){}", known.as_ref().map(|k| format!(" [known: {k}]")).unwrap_or_default());
        match known {
            None => problems.push(format!("{name} fails under recover and ansible-core runs it to the end: {why}")),
            Some(k) if load_error(r).is_some() && !k.contains("load") => problems.push(format!("{name}: recover refuses it at load ({why}), which its known reason does not say")),
            Some(_) => {}
        }
    }
    println!("{passed} passed, {failed} failed (of {} targets that pass under ansible-core; {} fail under ansible-core here)", passed + failed, baseline_fails.len());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
