//! Privilege escalation as Ansible does it: a become password (`ansible_become_password`,
//! `-K`) sent to sudo over the session, `become_method: su`, `become_exe`, `become_flags`,
//! over real sshd and real sudo/su. The lab's `kpass` user needs a password for sudo.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;

const PASSWORD: &str = "lab-become-pass";

/// A lock folder kpass may write (the lab hosts' own belong to their usual users).
fn lock_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::set_permissions(d.path(), std::os::unix::fs::PermissionsExt::from_mode(0o1777)).unwrap();
    d
}

fn as_kpass(locks: &Path) -> Vec<String> {
    vec!["--host".into(), "120".into(), "-e".into(), "ansible_user=kpass".into(), "-e".into(), format!("recover_lock_dir={}", locks.join("lock").display())]
}

fn said(r: &Run) -> String {
    format!("{}{}", r.stdout, r.stderr)
}

#[test]
fn sudo_with_a_become_password_runs_commands_tracked_actions_and_backups_as_root_and_never_shows_it() {
    lab();
    let tmp = tempfile::tempdir().unwrap();
    let locks = lock_dir();
    // A root-only folder holding a file: reading and overwriting it needs root.
    let secret = tmp.path().join("root-only");
    std::fs::create_dir(&secret).unwrap();
    std::fs::write(secret.join("conf"), "old\n").unwrap();
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    std::fs::set_permissions(tmp.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let pb = write(
        tmp.path(),
        "pw.yml",
        &format!(
            "- hosts: all\n  gather_facts: false\n  become: true\n  tasks:\n    - command: id -un\n      register: who\n      changed_when: false\n    - debug: var=who.stdout\n    - shell: id -un > {d}/by-shell\n    - copy:\n        dest: {d}/conf\n        content: \"new\\n\"\n    - command: cat {d}/conf\n      register: conf\n      changed_when: false\n    - debug: var=conf.stdout\n",
            d = secret.display()
        ),
    );
    let run = Recover::new().args(["play", pb.to_str().unwrap(), "--yes", "--output", "json"]).args(as_kpass(locks.path())).args(["-e", &format!("ansible_become_password={PASSWORD}")]);
    let r = run.run();
    assert_eq!(r.code, 0, "{}", said(&r));
    let printed: Vec<String> = r.task_events().iter().filter_map(|e| e["output"].as_object().map(|o| serde_json::Value::Object(o.clone()).to_string())).collect();
    assert!(printed.iter().any(|p| p.contains("\"who.stdout\":\"root\"")), "{printed:?}");
    assert!(printed.iter().any(|p| p.contains("\"conf.stdout\":\"new\"")), "{printed:?}");
    assert_eq!(std::fs::read_to_string(secret.join("by-shell")).unwrap(), "root\n");
    assert!(r.events().iter().any(|e| e["event"] == "backup"), "the overwrite had no verified backup: {}", r.stdout);
    let log: String = run.run_log().iter().map(|e| e.to_string()).collect();
    assert!(!said(&r).contains(PASSWORD) && !log.contains(PASSWORD), "the password was shown");

    // A wrong password: a clear error, the password not shown, nothing run as root.
    let wrong = Recover::new().args(["play", pb.to_str().unwrap(), "--yes"]).args(as_kpass(locks.path())).args(["-e", "ansible_become_password=not-it-at-all"]).run();
    assert_ne!(wrong.code, 0);
    assert!(said(&wrong).contains("sudo did not accept the become password"), "{}", said(&wrong));
    assert!(!said(&wrong).contains("not-it-at-all"), "{}", said(&wrong));
    // None at all: sudo -n, which says a password is required.
    let none = Recover::new().args(["play", pb.to_str().unwrap(), "--yes"]).args(as_kpass(locks.path())).run();
    assert_ne!(none.code, 0);
    assert!(said(&none).contains("-K, ansible_become_password"), "{}", said(&none));
}

#[test]
fn ask_become_pass_reads_the_password_at_a_real_terminal() {
    lab();
    let tmp = tempfile::tempdir().unwrap();
    let locks = lock_dir();
    let pb = write(tmp.path(), "k.yml", "- hosts: all\n  gather_facts: false\n  become: true\n  tasks:\n    - command: id -u\n      register: who\n      changed_when: false\n    - assert:\n        that: who.stdout == '0'\n");
    let r = Recover::new().args(["play", pb.to_str().unwrap(), "-K"]).args(as_kpass(locks.path()));
    let mut s = expectrl::Session::spawn(r.command()).expect("spawn in a pty");
    s.set_expect_timeout(Some(Duration::from_secs(60)));
    s.expect("BECOME password: ").unwrap();
    s.send_line(PASSWORD).unwrap();
    let out = s.expect(expectrl::Eof).unwrap();
    let text = String::from_utf8_lossy(out.before()).into_owned();
    assert!(!text.contains(PASSWORD), "the password was echoed: {text}");
    match s.get_process().wait().unwrap() {
        expectrl::WaitStatus::Exited(_, code) => assert_eq!(code, 0, "{text}"),
        other => panic!("not exited: {other:?}"),
    }
    // No terminal: -K says so before any host is contacted.
    let no_tty = Recover::new().args(["play", pb.to_str().unwrap(), "-K"]).args(as_kpass(locks.path())).run();
    assert_eq!(no_tty.code, 1, "{}", said(&no_tty));
    assert!(no_tty.stderr.contains("needs") || no_tty.stderr.contains("terminal"), "{}", no_tty.stderr);
}

#[test]
fn su_becomes_a_user_where_it_needs_no_password_and_is_refused_clearly_where_it_would() {
    lab();
    let tmp = tempfile::tempdir().unwrap();
    let locks = lock_dir();
    // This machine as root (the test runs as root): su to nobody needs no password.
    let pb = write(
        tmp.path(),
        "su.yml",
        "- hosts: localhost\n  connection: local\n  gather_facts: false\n  become: true\n  become_method: su\n  become_user: nobody\n  tasks:\n    - command: id -un\n      register: who\n      changed_when: false\n    - assert:\n        that: who.stdout == 'nobody'\n",
    );
    let r = Recover::new().args(["play", pb.to_str().unwrap(), "-i", "localhost,", "-e", &format!("recover_lock_dir={}", locks.path().join("lock").display())]).run();
    assert_eq!(r.code, 0, "{}", said(&r));
    // As a lab user over SSH, su to root would ask for root's password: refused, saying why.
    let lab_pb = write(tmp.path(), "su2.yml", "- hosts: all\n  gather_facts: false\n  become: true\n  become_method: su\n  tasks:\n    - command: id -un\n");
    let r = Recover::new().args(["play", lab_pb.to_str().unwrap(), "--host", "120"]).run();
    assert_ne!(r.code, 0);
    assert!(said(&r).contains("recover does not type a password into su"), "{}", said(&r));
    // A method recover does not have is refused at load, by name.
    let doas = write(tmp.path(), "doas.yml", "- hosts: all\n  gather_facts: false\n  become: true\n  become_method: doas\n  tasks:\n    - command: id -un\n");
    let r = Recover::new().args(["play", doas.to_str().unwrap(), "--host", "120"]).run();
    assert_eq!(r.code, 1, "{}", said(&r));
    assert!(r.stderr.contains("become_method \"doas\" is not supported by recover (sudo or su)") && r.stderr.contains("doas.yml:4"), "{}", r.stderr);
}

#[test]
fn become_exe_and_become_flags_are_used_and_a_task_may_not_switch_the_method_of_its_host() {
    lab();
    let tmp = tempfile::tempdir().unwrap();
    // become_exe names the program; become_flags go to it (-E keeps the lab's variable).
    let pb = write(
        tmp.path(),
        "exe.yml",
        "- hosts: all\n  gather_facts: false\n  become: true\n  become_exe: /usr/bin/sudo\n  become_flags: -E -H\n  environment:\n    RECOVER_PROBE: kept\n  tasks:\n    - shell: 'echo $(id -un) $HOME'\n      register: r\n      changed_when: false\n    - assert:\n        that: r.stdout == 'root /root'\n",
    );
    let r = Recover::new().args(["play", pb.to_str().unwrap(), "--host", "120"]).run();
    assert_eq!(r.code, 0, "{}", said(&r));
    // A become_exe that does not exist fails clearly, not silently with sudo.
    let bad = write(tmp.path(), "bad.yml", "- hosts: all\n  gather_facts: false\n  become: true\n  become_exe: /nonexistent/sudo\n  tasks:\n    - command: id -un\n");
    let r = Recover::new().args(["play", bad.to_str().unwrap(), "--host", "120"]).run();
    assert_ne!(r.code, 0);
    let why = said(&r);
    assert!(why.contains("/nonexistent/sudo: No such file") || why.contains("/nonexistent/sudo: not found"), "{why}");
    // A task that asks for another method than its host's connection: refused by name.
    let mixed = write(tmp.path(), "mixed.yml", "- hosts: all\n  gather_facts: false\n  become: true\n  tasks:\n    - command: id -un\n      become_method: su\n");
    let r = Recover::new().args(["play", mixed.to_str().unwrap(), "--host", "120"]).run();
    assert_ne!(r.code, 0);
    assert!(said(&r).contains("this task's become_method 'su' differs from the one the host's connection uses ('sudo')"), "{}", said(&r));
}
