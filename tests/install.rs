//! Issue 14: `recover` installed outside its repo. From a folder with no project, the binary
//! has its built-in playbooks, roles and baselines; a local playbook of the same name wins;
//! `recover init` makes a project that runs; completions load in bash; the man page renders.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;


/// `recover ARGS` run in `dir` with a HOME and cache of its own (nothing of this repo around).
fn outside(dir: &Path, home: &Path, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_recover"))
        .args(args)
        .current_dir(dir)
        .env("HOME", home)
        .env_remove("XDG_CACHE_HOME")
        .env_remove("XDG_CONFIG_HOME")
        .env("RECOVER_STATE_DIR", home.join("state"))
        .env("RECOVER_SHARED_DIR", home.join("state"))
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    Run { code: out.status.code().unwrap_or(-1), stdout: String::from_utf8_lossy(&out.stdout).into_owned(), stderr: String::from_utf8_lossy(&out.stderr).into_owned() }
}

#[test]
fn an_installed_binary_has_its_playbooks_and_baseline_anywhere() {
    lab();
    let nowhere = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let lab_inv = repo().join("inventory/lab.yml");
    let list = outside(nowhere.path(), home.path(), &["list"]);
    assert_eq!(list.code, 0, "{}{}", list.stdout, list.stderr);
    for pb in ["pg-wal", "clickhouse-clone", "kafka-checkpoint", "momo-reindex", "nginx-vip-sync", "runner-guardrails", "sample-site"] {
        assert!(list.stdout.contains(&format!("{pb}  (built-in)")), "{pb}: {}", list.stdout);
    }
    // A cluster of this test's own with real WAL damage, so the lab's shared one is left alone.
    let scratch = host_scratch("188", "installed");
    let (pg, port, _stop) = damaged_pg(&scratch);
    let dry = outside(
        nowhere.path(),
        home.path(),
        &["play", "pg-wal", "--dry-run", "-i", lab_inv.to_str().unwrap(), "-e", &format!("pg_root={}", pg.display()), "-e", &format!("pg_port={port}"), "-e", &format!("pg_backup_dir={}/b", scratch.display())],
    );
    assert_eq!(dry.code, 0, "{}{}", dry.stdout, dry.stderr);
    assert!(dry.stdout.contains("WAL checkpoint damage") && dry.stdout.contains("DESTRUCTIVE [BLOCK]"), "{}", dry.stdout);
    // An inventory of one's own with no baseline beside it gets the built-in fleet baseline.
    let inv = write(nowhere.path(), "mine.yml", &std::fs::read_to_string(&lab_inv).unwrap());
    let check = outside(nowhere.path(), home.path(), &["check", "-i", inv.to_str().unwrap()]);
    assert!([0, 1, 2].contains(&check.code), "{}{}", check.stdout, check.stderr);
    assert!(check.stdout.contains("Result:"), "{}", check.stdout);
    assert!(home.path().join(".cache/recover").is_dir(), "the built-in set is unpacked into the user's cache");
}

#[test]
fn a_local_playbook_of_the_same_name_wins_and_list_says_where_it_comes_from() {
    let project = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    std::fs::write(project.path().join("recover.yml"), format!("inventory: {}\n", repo().join("inventory/lab.yml").display())).unwrap();
    write(project.path(), "playbooks/pg-wal.yml", "- name: my own pg-wal\n  description: a local override\n  hosts: data\n  tasks:\n    - debug: {msg: local}\n");
    let sub = project.path().join("deeper/still");
    std::fs::create_dir_all(&sub).unwrap();
    let list = outside(&sub, home.path(), &["list"]);
    assert_eq!(list.code, 0, "{}", list.stderr);
    assert!(list.stdout.contains("pg-wal  (project: ") && list.stdout.contains("a local override"), "{}", list.stdout);
    assert!(list.stdout.contains("kafka-checkpoint  (built-in)"), "{}", list.stdout);
    let json = outside(&sub, home.path(), &["list", "--output", "json"]);
    let pg = json.stdout.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()).find(|v| v["name"] == "pg-wal").unwrap();
    assert_eq!(pg["source"], "project");
}

#[test]
fn init_writes_a_project_that_runs() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let target = dir.path().join("fleet");
    let init = outside(dir.path(), home.path(), &["init", target.to_str().unwrap()]);
    assert_eq!(init.code, 0, "{}{}", init.stdout, init.stderr);
    for f in ["recover.yml", "inventory/hosts.yml", "inventory/baseline.yml", "playbooks/pg-wal.yml", "roles/pg_wal/tasks/main.yml", "templates/site.conf.j2"] {
        assert!(target.join(f).is_file(), "{f}");
    }
    let list = outside(&target, home.path(), &["list"]);
    assert_eq!(list.code, 0, "{}{}", list.stdout, list.stderr);
    assert!(list.stdout.contains("pg-wal  (project: "), "{}", list.stdout);
    let graph = outside(&target, home.path(), &["inventory", "--graph"]);
    assert_eq!(graph.code, 0, "{}{}", graph.stdout, graph.stderr);
    assert!(graph.stdout.contains("@data") && graph.stdout.contains("@k3s"), "{}", graph.stdout);
    // A second init does not overwrite it.
    let again = outside(dir.path(), home.path(), &["init", target.to_str().unwrap()]);
    assert_eq!(again.code, 1, "{}", again.stderr);
}

#[test]
fn completions_load_in_bash_and_the_man_page_renders() {
    let bash = Command::new("bash")
        .args(["-c", &format!("source <('{}' completions bash) && complete -p recover", env!("CARGO_BIN_EXE_recover"))])
        .output()
        .unwrap();
    assert!(bash.status.success(), "{}", String::from_utf8_lossy(&bash.stderr));
    assert!(String::from_utf8_lossy(&bash.stdout).contains("recover"), "{}", String::from_utf8_lossy(&bash.stdout));
    let tmp = tempfile::tempdir().unwrap();
    let page = tmp.path().join("recover.1");
    let man = Command::new(env!("CARGO_BIN_EXE_recover")).arg("man").output().unwrap();
    assert!(man.status.success());
    std::fs::write(&page, &man.stdout).unwrap();
    let shown = Command::new("man").args(["-l", page.to_str().unwrap()]).env("MANPAGER", "cat").env("MANWIDTH", "100").output().unwrap();
    assert!(shown.status.success(), "{}", String::from_utf8_lossy(&shown.stderr));
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(text.contains("recover") && text.contains("play") && text.contains("--dry-run"), "{text}");
}

#[test]
fn the_readme_scripts_escalate_through_sudo_only_when_not_root() {
    lab(); // the lab's users have passwordless sudo
    let tmp = tempfile::tempdir().unwrap();
    let script = write(tmp.path(), "probe", &format!("#!/usr/bin/env bash\nset -e\n. {}\necho \"uid=$(id -u)\"\n", repo().join("scripts/as-root").display()));
    Command::new("chmod").args(["755", tmp.path().to_str().unwrap(), script.to_str().unwrap()]).status().unwrap();
    let as_root = Command::new(&script).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&as_root.stdout).trim(), "uid=0");
    assert!(as_root.stderr.is_empty(), "root needs no sudo: {}", String::from_utf8_lossy(&as_root.stderr));
    let as_user = Command::new("runuser").args(["-u", "wooo", "--", script.to_str().unwrap()]).output().unwrap();
    assert!(as_user.status.success(), "{}", String::from_utf8_lossy(&as_user.stderr));
    assert_eq!(String::from_utf8_lossy(&as_user.stdout).trim(), "uid=0");
    assert!(String::from_utf8_lossy(&as_user.stderr).contains("not root: running it again through sudo"));
}

#[test]
fn syntax_check_loads_and_checks_everything_and_contacts_no_host() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    // A host nothing listens for: a connection attempt would fail the run.
    std::fs::write(dir.path().join("hosts.ini"), "web ansible_host=127.0.0.1 ansible_port=1\n").unwrap();
    std::fs::create_dir_all(dir.path().join("templates")).unwrap();
    std::fs::write(dir.path().join("templates/ok.j2"), "port {{ port }}\n").unwrap();
    std::fs::write(dir.path().join("templates/bad.j2"), "port {{ port }}\n{% if port %}never closed\n").unwrap();
    let play = |src: &str| format!("- hosts: all\n  gather_facts: false\n  vars: {{port: 80}}\n  tasks:\n    - template: {{src: {src}, dest: /tmp/x.conf}}\n");
    std::fs::write(dir.path().join("good.yml"), play("ok.j2")).unwrap();
    std::fs::write(dir.path().join("bad.yml"), play("bad.j2")).unwrap();
    let good = outside(dir.path(), home.path(), &["play", "good.yml", "-i", "hosts.ini", "--syntax-check"]);
    assert_eq!(good.code, 0, "{}{}", good.stdout, good.stderr);
    assert!(good.stdout.contains("playbook: good.yml"), "{}", good.stdout);
    let bad = outside(dir.path(), home.path(), &["play", "bad.yml", "-i", "hosts.ini", "--syntax-check"]);
    assert_eq!(bad.code, 1, "{}{}", bad.stdout, bad.stderr);
    assert!(bad.stderr.contains("bad.j2:2:1") && bad.stderr.contains("syntax error"), "{}", bad.stderr);
}
