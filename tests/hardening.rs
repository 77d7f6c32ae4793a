//! Issue 13: the safety promise on the paths an operator or a hostile input walks,
//! over the real loopback lab (real sshd, real files, signals sent by PID, the prompt
//! driven through a real pseudo-terminal). Each test failed on the main before it.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

fn name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// `-e` for a scratch folder on 188: data_dir and the backup root.
fn at(scratch: &Path, backup_sub: &str) -> Vec<String> {
    let n = name(scratch);
    vec!["-e".into(), format!("d={{{{ host_root }}}}/{n}"), "-e".into(), format!("recover_backup_root={{{{ host_root }}}}/{n}/{backup_sub}")]
}

fn play(dir: &Path, file: &str, tasks: &str) -> PathBuf {
    write(dir, file, &format!("- hosts: data\n  gather_facts: false\n  tasks:\n{tasks}"))
}

#[test]
fn a_backup_root_inside_the_folder_a_step_deletes_is_refused_before_anything_changes() {
    lab();
    let scratch = host_scratch("188", "victim");
    write(&scratch, "victim/data.txt", "precious\n");
    give_to_host(&scratch);
    let tmp = tempfile::tempdir().unwrap();
    let pb = play(tmp.path(), "rm.yml", "    - name: Remove the victim\n      file: {path: \"{{ d }}/victim\", state: absent}\n");
    for (sub, what) in [("victim/backups", "inside"), ("victim", "equal")] {
        let run = Recover::new().args(["play", pb.to_str().unwrap(), "--yes"]).args(at(&scratch, sub)).run();
        assert_eq!(run.code, 4, "{what}: {}{}", run.stdout, run.stderr);
        assert!(run.stdout.contains("would not survive the step"), "{what}: {}", run.stdout);
        assert_eq!(std::fs::read_to_string(scratch.join("victim/data.txt")).unwrap(), "precious\n", "{what}");
        assert!(!scratch.join("victim/backups").exists(), "{what}: an archive was written where the step deletes");
        // The dry-run says the same.
        let dry = Recover::new().args(["play", pb.to_str().unwrap(), "--dry-run"]).args(at(&scratch, sub)).run();
        assert_eq!(dry.code, 4, "{what}: {}", dry.stdout);
    }
    // Outside: it runs, and the backup survives.
    let run = Recover::new().args(["play", pb.to_str().unwrap(), "--yes"]).args(at(&scratch, "backups")).run();
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(!scratch.join("victim").exists());
    let manifests = std::fs::read_dir(scratch.join("backups")).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().ends_with(".manifest.json")).count();
    assert_eq!(manifests, 1, "the verified backup of the removed folder is kept");
}

#[test]
fn system_roots_are_never_delete_targets_and_an_empty_path_does_not_load() {
    lab();
    let scratch = host_scratch("188", "roots");
    let tmp = tempfile::tempdir().unwrap();
    for path in ["/", "/tmp/x/../../..", "/etc/", "/usr", "/home"] {
        let pb = play(tmp.path(), "root.yml", &format!("    - file: {{path: \"{path}\", state: absent}}\n"));
        for dry in [true, false] {
            let mut r = Recover::new().args(["play", pb.to_str().unwrap(), "--yes"]).args(at(&scratch, "backups"));
            if dry {
                r = r.args(["--dry-run"]);
            }
            let run = r.run();
            assert_eq!(run.code, 4, "{path} dry={dry}: {}{}", run.stdout, run.stderr);
            assert!(run.stdout.contains("system folder"), "{path}: {}", run.stdout);
        }
    }
    assert!(!scratch.join("backups").exists(), "a backup of a system root was started");
    let pb = play(tmp.path(), "empty.yml", "    - file: {path: \"\", state: absent}\n");
    let run = Recover::new().args(["play", pb.to_str().unwrap()]).run();
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("empty.yml:4"), "{}", run.stderr);
}

#[test]
fn an_interrupt_during_the_pre_backup_cancels_the_destructive_step_behind_it() {
    lab();
    // Incompressible data: the backup takes long enough to be interrupted in.
    let big: Vec<u8> = (0..60_000_000u64).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    let tmp = tempfile::tempdir().unwrap();
    let pb = play(tmp.path(), "rm.yml", "    - name: Remove the data\n      file: {path: \"{{ d }}/data\", state: absent}\n");
    for presses in [1, 2] {
        let scratch = host_scratch("188", &format!("intbak{presses}"));
        std::fs::create_dir_all(scratch.join("data")).unwrap();
        std::fs::write(scratch.join("data/big.bin"), &big).unwrap();
        give_to_host(&scratch);
        let r = Recover::new().args(["play", pb.to_str().unwrap(), "--yes"]).args(at(&scratch, "backups"));
        let child = r.command().stdin(std::process::Stdio::null()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
        // Wait until the archive is being written, then Ctrl-C.
        let mut seen = false;
        for _ in 0..400 {
            if std::fs::read_dir(scratch.join("backups")).map(|d| d.count() > 0).unwrap_or(false) {
                seen = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        assert!(seen, "the backup never started");
        for _ in 0..presses {
            assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
            std::thread::sleep(Duration::from_millis(100));
        }
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(130), "{presses}: {stdout}");
        assert_eq!(std::fs::read(scratch.join("data/big.bin")).unwrap().len(), big.len(), "{presses}: the delete ran after Ctrl-C");
        let log = r.run_log();
        assert!(log.iter().any(|e| e["event"] == "task_start" && e["task"] == "Remove the data"), "{log:?}");
        if presses == 1 {
            // The backup finishes and is kept; the step behind it does not run.
            let t = log.iter().find(|e| e["event"] == "task" && e["task"] == "Remove the data").expect("the step is in the log");
            assert!(t["msg"].as_str().unwrap().contains("did not run"), "{t}");
            assert!(log.iter().any(|e| e["event"] == "backup"), "{log:?}");
        } else {
            // The backup is killed on the host: no partial archive, nothing under a final name without its manifest.
            std::thread::sleep(Duration::from_millis(500));
            let names: Vec<String> = std::fs::read_dir(scratch.join("backups")).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
            for n in &names {
                assert!(!n.ends_with(".partial"), "a partial archive was left: {names:?}");
                if n.ends_with(".tar.gz") {
                    assert!(names.contains(&format!("{n}.manifest.json")), "an archive without its manifest: {names:?}");
                }
            }
        }
    }
}

#[test]
fn no_log_hides_both_sides_and_secret_extra_vars_and_run_logs_are_private() {
    lab();
    let scratch = host_scratch("188", "nolog");
    write(&scratch, "secret.conf", "password=OLDSECRET-1234\n");
    give_to_host(&scratch);
    let tmp = tempfile::tempdir().unwrap();
    let pb = play(tmp.path(), "s.yml", "    - name: Write the secret\n      copy: {content: \"password={{ new_password }}\\n\", dest: \"{{ d }}/secret.conf\"}\n      no_log: true\n");
    let r = Recover::new().args(["play", pb.to_str().unwrap(), "--yes", "--diff", "-e", "new_password=NEWSECRET-5678", "-e", "db_password=hunter2-9999"]).args(at(&scratch, "backups"));
    let run = r.run();
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(std::fs::read_to_string(scratch.join("secret.conf")).unwrap(), "password=NEWSECRET-5678\n");
    let runs = r.state_dir().join("runs");
    let logs: Vec<PathBuf> = std::fs::read_dir(&runs).unwrap().flatten().map(|e| e.path()).collect();
    let log = std::fs::read_to_string(&logs[0]).unwrap();
    for s in ["OLDSECRET-1234", "NEWSECRET-5678", "hunter2-9999"] {
        assert!(!run.stdout.contains(s), "{s} on stdout: {}", run.stdout);
        assert!(!log.contains(s), "{s} in the run log: {log}");
    }
    assert_eq!(std::fs::metadata(&logs[0]).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(&runs).unwrap().permissions().mode() & 0o777, 0o700);
}

#[test]
fn duplicate_keys_are_errors_in_playbooks_and_extra_vars_and_warnings_in_inventories() {
    lab();
    let tmp = tempfile::tempdir().unwrap();
    let pb = write(tmp.path(), "dup.yml", "- hosts: data\n  hosts: all\n  tasks:\n    - debug: {msg: hi}\n");
    let run = Recover::new().args(["play", pb.to_str().unwrap()]).run();
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("dup.yml:2:3") && run.stderr.contains("duplicate key 'hosts'"), "{}", run.stderr);
    let ok = write(tmp.path(), "ok.yml", "- hosts: data\n  gather_facts: false\n  tasks:\n    - debug: {msg: hi}\n");
    let run = Recover::new().args(["play", ok.to_str().unwrap(), "--dry-run", "-e", r#"{"a": 1, "a": 2}"#]).run();
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("duplicate key 'a'"), "{}", run.stderr);
    let inv = write(tmp.path(), "inv.yml", "all:\n  hosts:\n    h1:\n      ansible_host: 127.0.0.1\n      ansible_host: 127.0.0.2\n");
    let run = Recover::new().args(["inventory", "-i", inv.to_str().unwrap(), "--list"]).run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("inv.yml:5") && run.stderr.contains("duplicate key 'ansible_host'"), "{}", run.stderr);
    assert!(run.stdout.contains("127.0.0.2"), "the last one wins, as in Ansible: {}", run.stdout);
}

#[test]
fn one_templated_value_is_one_command_argument_whatever_it_holds() {
    lab();
    let tmp = tempfile::tempdir().unwrap();
    let pb = play(tmp.path(), "c.yml", "    - command: printf '[%s]\\n' {{ sp }} \"{{ q }}\"\n      register: out\n    - debug: {msg: \"{{ out.stdout }}\"}\n");
    let run = Recover::new().args(["play", pb.to_str().unwrap(), "--output", "json", "-e", r#"{"sp": "one two --three", "q": "it's \"quoted\""}"#]).run();
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let dbg = run.task_events().into_iter().find(|e| e["output"].is_string()).unwrap();
    assert_eq!(dbg["output"], "[one two --three]\n[it's \"quoted\"]", "{}", run.stdout);
    // A NUL byte cannot reach a shell: an error, not a silent drop.
    let sh = play(tmp.path(), "n.yml", "    - shell: printf '%s' {{ v }}\n");
    let run = Recover::new().args(["play", sh.to_str().unwrap(), "--yes", "-e", r#"{"v": "a\u0000b"}"#]).run();
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("NUL"), "{}", run.stdout);
}

#[test]
fn a_run_that_cannot_keep_its_audit_trail_does_not_start() {
    lab();
    let scratch = host_scratch("188", "noaudit");
    let tmp = tempfile::tempdir().unwrap();
    let pb = play(tmp.path(), "t.yml", "    - copy: {content: x, dest: \"{{ d }}/touched\"}\n");
    let run = Recover::new().env("RECOVER_STATE_DIR", "/proc/nope").args(["play", pb.to_str().unwrap(), "--yes"]).args(at(&scratch, "b")).run();
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("cannot write the run log"), "{}", run.stderr);
    // A state folder others can write is refused too.
    let open = tempfile::tempdir().unwrap();
    std::fs::set_permissions(open.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let run = Recover::new().env("RECOVER_STATE_DIR", open.path().to_str().unwrap()).args(["play", pb.to_str().unwrap(), "--yes"]).args(at(&scratch, "b")).run();
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("can be written by others"), "{}", run.stderr);
    // An unwritable logbook is found before the run, not after it.
    let run = Recover::new().args(["play", pb.to_str().unwrap(), "--yes", "--logbook", "/proc/nope/LOGBOOK.md"]).args(at(&scratch, "b")).run();
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(!scratch.join("touched").exists(), "a host was changed");
}

#[test]
fn the_freeze_is_seen_by_every_operator_whatever_their_home() {
    let project = tempfile::tempdir().unwrap();
    std::fs::write(project.path().join("recover.yml"), format!("inventory: {}\nshared_state: shared\n", repo().join("inventory/lab.yml").display())).unwrap();
    let homes = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let as_home = |h: &Path, args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_recover")).args(args).current_dir(project.path()).env_remove("RECOVER_STATE_DIR").env_remove("RECOVER_SHARED_DIR").env_remove("XDG_STATE_HOME").env("HOME", h).env("NO_COLOR", "1").output().unwrap();
        (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (code, _) = as_home(homes[0].path(), &["freeze", "--reason", "operator A is on it"]);
    assert_eq!(code, 0);
    let (_, status) = as_home(homes[1].path(), &["status"]);
    assert!(status.contains("FROZEN") && status.contains("operator A is on it"), "{status}");
    assert!(project.path().join("shared/freeze.json").exists());
    // freeze/thaw --dry-run would act: refused, and nothing changes.
    let (code, _) = as_home(homes[1].path(), &["thaw", "--dry-run"]);
    assert_eq!(code, 1);
    assert!(project.path().join("shared/freeze.json").exists(), "thaw --dry-run thawed");
    let (code, _) = as_home(homes[1].path(), &["thaw"]);
    assert_eq!(code, 0);
    let (_, status) = as_home(homes[0].path(), &["status"]);
    assert!(status.contains("freeze:     none"), "{status}");
}

#[test]
fn eof_declines_a_prompt_and_a_signal_at_a_prompt_stops_at_once_leaving_the_terminal_sane() {
    lab();
    let scratch = host_scratch("188", "prompt");
    write(&scratch, "f", "old\n");
    give_to_host(&scratch);
    let tmp = tempfile::tempdir().unwrap();
    let pb = play(tmp.path(), "p.yml", "    - copy: {content: new, dest: \"{{ d }}/f\"}\n");
    for how in ["eof", "INT", "TERM"] {
        let suffix = format!("-prompt-{how}-{}", std::process::id());
        let r = Recover::new().args(["play", pb.to_str().unwrap()]).args(at(&scratch, "b")).env("RECOVER_LAB_LOCK_SUFFIX", &suffix);
        let mut s = expectrl::Session::spawn(r.command()).unwrap();
        s.set_expect_timeout(Some(Duration::from_secs(20)));
        let at_start = nix_termios(&s);
        s.expect("Run it?").unwrap();
        let pid = s.get_process().pid().to_string();
        match how {
            "eof" => s.send(expectrl::ControlCode::EndOfTransmission).unwrap(),
            sig => {
                assert!(Command::new("kill").args([&format!("-{sig}"), &pid]).status().unwrap().success());
            }
        }
        let _ = s.expect(expectrl::Eof);
        let code = match s.get_process().wait().unwrap() {
            expectrl::WaitStatus::Exited(_, c) => c,
            other => panic!("{how}: not exited: {other:?}"),
        };
        assert_eq!(code, if how == "eof" { 4 } else { 130 }, "{how}");
        assert_eq!(std::fs::read_to_string(scratch.join("f")).unwrap(), "old\n", "{how}");
        assert!(!lab_root().join(format!("188/run/lock/recover{suffix}")).exists(), "{how}: the lock was left behind");
        let attrs = nix_termios(&s);
        assert_eq!(attrs, at_start, "{how}: the terminal was left changed");
        assert!(attrs.split_whitespace().any(|w| w == "icanon"), "{how}: {attrs}");
    }
}

/// The pty's settings as `stty -a` prints them.
fn nix_termios(s: &expectrl::Session) -> String {
    use std::os::fd::AsRawFd;
    let fd = s.get_stream().as_raw_fd();
    let out = Command::new("stty").arg("-a").stdin(unsafe { <std::process::Stdio as std::os::fd::FromRawFd>::from_raw_fd(libc_dup(fd)) }).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn libc_dup(fd: i32) -> i32 {
    extern "C" {
        fn dup(fd: i32) -> i32;
    }
    unsafe { dup(fd) }
}

#[test]
fn sighup_stops_like_ctrl_c_and_the_log_shows_what_was_in_flight() {
    lab();
    let scratch = host_scratch("188", "hup");
    let tmp = tempfile::tempdir().unwrap();
    let pb = play(tmp.path(), "h.yml", "    - name: long step\n      command: sleep 2\n    - name: next step\n      copy: {content: x, dest: \"{{ d }}/next\"}\n");
    let r = Recover::new().args(["play", pb.to_str().unwrap(), "--yes"]).args(at(&scratch, "b"));
    let mut child = r.command().stdin(std::process::Stdio::null()).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
    for _ in 0..200 {
        if r.run_log().iter().any(|e| e["event"] == "task_start" && e["task"] == "long step") {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    assert!(Command::new("kill").args(["-HUP", &child.id().to_string()]).status().unwrap().success());
    assert_eq!(child.wait().unwrap().code(), Some(130));
    assert!(!scratch.join("next").exists(), "a new step started after SIGHUP");
    let log = r.run_log();
    assert!(log.iter().any(|e| e["event"] == "task" && e["task"] == "long step"), "{log:?}");
    assert!(log.iter().any(|e| e["event"] == "interrupt" && e["message"].as_str().unwrap().starts_with("SIGHUP")), "{log:?}");
}

#[test]
fn an_ini_range_bomb_is_refused_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let inv = write(tmp.path(), "bomb.ini", "[web]\nweb[0:9][0:9][0:9][0:9][0:9][0:9][0:9][0:9]\n");
    let started = std::time::Instant::now();
    let run = Recover::new().args(["inventory", "-i", inv.to_str().unwrap(), "--list"]).run();
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("bomb.ini:2") && run.stderr.contains("100000000 hosts"), "{}", run.stderr);
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn a_limit_that_selects_no_host_of_any_play_is_bad_input() {
    lab();
    let tmp = tempfile::tempdir().unwrap();
    let pb = play(tmp.path(), "d.yml", "    - debug: {msg: hi}\n");
    for args in [vec!["-l", "nosuchhost"], vec!["--host", "110"], vec!["--host", "188", "-l", "registry"]] {
        let run = Recover::new().args(["play", pb.to_str().unwrap()]).args(&args).run();
        assert_eq!(run.code, 1, "{args:?}: {}{}", run.stdout, run.stderr);
        assert!(run.stderr.contains("selects no host") && run.stderr.contains("targets data"), "{args:?}: {}", run.stderr);
    }
}

#[test]
fn literal_mistakes_are_load_errors_before_any_host_is_contacted() {
    lab();
    let scratch = host_scratch("188", "literal");
    let tmp = tempfile::tempdir().unwrap();
    let first = "    - copy: {content: x, dest: \"{{ d }}/first\"}\n";
    let cases = [
        ("mode: [1,2]", "    - file: {path: \"{{ d }}\", state: directory, mode: [1, 2]}\n", "mode"),
        ("symbolic mode", "    - file: {path: \"{{ d }}\", state: directory, mode: \"u=rwz\"}\n", "mode"),
        ("loop: 5", "    - debug: {msg: x}\n      loop: 5\n", "loop"),
        ("missing src", "    - template: {src: no-such.j2, dest: \"{{ d }}/x\"}\n", "not found"),
        ("used before registered", "    - debug: {msg: \"{{ later.stdout }}\"}\n    - command: echo hi\n      register: later\n", "before the task that registers it"),
    ];
    for (what, task, expect) in cases {
        let pb = play(tmp.path(), "lit.yml", &format!("{first}{task}"));
        let run = Recover::new().args(["play", pb.to_str().unwrap(), "--yes"]).args(at(&scratch, "b")).run();
        assert_eq!(run.code, 1, "{what}: {}{}", run.stdout, run.stderr);
        assert!(run.stderr.contains(expect) && run.stderr.contains("lit.yml:"), "{what}: {}", run.stderr);
        assert!(!scratch.join("first").exists(), "{what}: a host was changed before the error");
    }
    // A string with a pipe inside quotes is not a filter.
    let pb = play(tmp.path(), "fine.yml", "    - debug: {msg: \"{{ 'a|b' | regex_replace('x|y', 'z') }}\"}\n");
    let run = Recover::new().args(["play", pb.to_str().unwrap(), "--dry-run"]).run();
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
}

/// A filter, test or lookup recover does not have (a typo, or a collection's) is named with
/// file:line:col when the playbook loads, before any host. Where the task that uses it
/// certainly runs (no `when`, loop, `ignore_errors` or rescue around it), that is a load error
/// and nothing is contacted: ansible-core would fail there after changing the hosts before it.
/// Elsewhere it is a warning, and, as in ansible-core, only a task that evaluates it fails (a
/// role's branch skipped by its `when` runs).
#[test]
fn unknown_filters_and_lookups_are_named_at_load_and_fail_the_task_that_evaluates_them() {
    lab();
    let scratch = host_scratch("188", "plugins");
    let tmp = tempfile::tempdir().unwrap();
    // Certain: a load error, nothing runs.
    let tasks = "    - debug: {msg: \"{{ d | community.general.not_a_real_filter('a') }}\"}\n      when: false\n    - copy: {content: x, dest: \"{{ d }}/first\"}\n    - debug: {msg: \"{{ d | no_such_filter }}\"}\n    - copy: {content: x, dest: \"{{ d }}/never\"}\n";
    let pb = play(tmp.path(), "plugins.yml", tasks);
    let run = Recover::new().args(["play", pb.to_str().unwrap(), "--yes"]).args(at(&scratch, "b")).run();
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("plugins.yml:7:") && run.stderr.contains("unknown filter 'no_such_filter'") && run.stderr.contains("certainly runs"), "{}", run.stderr);
    assert!(run.stderr.contains("plugins.yml:4:") && run.stderr.contains("comes from a collection"), "the skipped one is a warning: {}", run.stderr);
    assert!(!scratch.join("first").exists(), "a host was changed before a certain failure");
    let syn = Recover::new().args(["play", pb.to_str().unwrap(), "--syntax-check"]).args(at(&scratch, "b")).run();
    assert_eq!(syn.code, 1, "{}{}", syn.stdout, syn.stderr);

    // Not certain (ignore_errors): a warning at load; the task fails where it evaluates it.
    let tasks = "    - copy: {content: x, dest: \"{{ d }}/first\"}\n    - debug: {msg: \"{{ d | no_such_filter }}\"}\n      ignore_errors: true\n    - copy: {content: x, dest: \"{{ d }}/after\"}\n";
    let pb = play(tmp.path(), "soft.yml", tasks);
    let run = Recover::new().args(["play", pb.to_str().unwrap(), "--yes"]).args(at(&scratch, "b")).run();
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("soft.yml:5:") && run.stderr.contains("unknown filter 'no_such_filter'"), "{}", run.stderr);
    assert!(run.stdout.contains("filter no_such_filter is unknown"), "{}", run.stdout);
    assert!(scratch.join("first").exists() && scratch.join("after").exists(), "the play went on past the ignored failure");
    // --syntax-check names it too, and passes, as ansible-playbook's.
    let syn = Recover::new().args(["play", pb.to_str().unwrap(), "--syntax-check"]).args(at(&scratch, "b")).run();
    assert_eq!(syn.code, 0, "{}{}", syn.stdout, syn.stderr);
    assert!(syn.stderr.contains("unknown filter 'no_such_filter'"), "{}", syn.stderr);
}

#[test]
fn usage_errors_and_flags_that_do_not_apply_exit_1() {
    for args in [vec!["play", "sample-site", "-e", "{bad json"], vec!["play", "sample-site", "--forks", "0"], vec!["no-such-subcommand"], vec!["freeze", "--reason", "x", "--dry-run"], vec!["inventory", "--graph", "--output", "json"]] {
        let run = Recover::new().args(&args).run();
        assert_eq!(run.code, 1, "{args:?}: {}{}", run.stdout, run.stderr);
    }
    let state = tempfile::tempdir().unwrap();
    let run = Recover::new().env("RECOVER_STATE_DIR", state.path().to_str().unwrap()).args(["freeze", "--reason", "x", "--dry-run"]).run();
    assert_eq!(run.code, 1);
    assert!(!state.path().join("freeze.json").exists(), "freeze --dry-run froze");
    assert_eq!(Recover::new().args(["--help"]).run().code, 0);
}

#[test]
fn output_json_is_json_on_every_subcommand_that_takes_it() {
    lab();
    for args in [vec!["list"], vec!["status"], vec!["history"], vec!["inventory", "--list"], vec!["backups", "list"]] {
        let run = Recover::new().args(&args).args(["--output", "json"]).run();
        assert_eq!(run.code, 0, "{args:?}: {}{}", run.stdout, run.stderr);
        for line in run.stdout.lines().filter(|l| !l.trim().is_empty()) {
            assert!(serde_json::from_str::<serde_json::Value>(line).is_ok() || serde_json::from_str::<serde_json::Value>(&run.stdout).is_ok(), "{args:?}: not JSON: {line}");
        }
    }
}

#[test]
fn a_link_onto_a_real_directory_fails_as_in_ansible_and_a_bad_lock_dir_is_named() {
    lab();
    let scratch = host_scratch("188", "link");
    std::fs::create_dir_all(scratch.join("adir")).unwrap();
    give_to_host(&scratch);
    let tmp = tempfile::tempdir().unwrap();
    let pb = play(tmp.path(), "l.yml", "    - file: {src: /tmp, path: \"{{ d }}/adir\", state: link}\n");
    let run = Recover::new().args(["play", pb.to_str().unwrap(), "--yes"]).args(at(&scratch, "b")).run();
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(!scratch.join("adir/tmp").exists(), "a link was made inside the directory");
    let pb = play(tmp.path(), "k.yml", "    - debug: {msg: hi}\n");
    let run = Recover::new().args(["play", pb.to_str().unwrap(), "-e", "recover_lock_dir=/proc/nope/lock"]).run();
    assert_eq!(run.code, 4, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("cannot create the lock folder /proc/nope/lock") && !run.stdout.contains("unknown holder"), "{}", run.stdout);
}

#[test]
fn a_dry_run_does_not_fail_a_check_of_files_the_plan_would_write() {
    lab();
    let scratch = host_scratch("188", "drycheck");
    let tmp = tempfile::tempdir().unwrap();
    let pb = play(tmp.path(), "c.yml", "    - copy: {content: \"x\\n\", dest: \"{{ d }}/new.conf\"}\n    - name: Check it\n      command: cat {{ d }}/new.conf\n      read_only: true\n");
    let run = Recover::new().args(["play", pb.to_str().unwrap(), "--dry-run", "--output", "json"]).args(at(&scratch, "b")).run();
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let check = run.task_events().into_iter().find(|e| e["task"] == "Check it").unwrap();
    assert_eq!(check["status"], "skipped");
    assert!(check["note"].as_str().unwrap().contains("not checkable in a dry-run"), "{check}");
    // With nothing planned before it, a failing check is a real failure.
    let pb = play(tmp.path(), "d.yml", "    - name: Check it\n      command: cat {{ d }}/absent.conf\n      read_only: true\n");
    let run = Recover::new().args(["play", pb.to_str().unwrap(), "--dry-run"]).args(at(&scratch, "b")).run();
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
}

#[test]
fn history_warns_about_corrupt_lines_and_the_run_log_caps_huge_diffs() {
    lab();
    let scratch = host_scratch("188", "bigdiff");
    let big: String = (0..40_000).map(|i| format!("old line {i}\n")).collect();
    write(&scratch, "big.txt", &big);
    give_to_host(&scratch);
    let tmp = tempfile::tempdir().unwrap();
    let pb = play(tmp.path(), "b.yml", "    - copy: {content: \"new\\n\", dest: \"{{ d }}/big.txt\"}\n");
    let r = Recover::new().args(["play", pb.to_str().unwrap(), "--yes"]).args(at(&scratch, "b"));
    let run = r.run();
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let logs: Vec<PathBuf> = std::fs::read_dir(r.state_dir().join("runs")).unwrap().flatten().map(|e| e.path()).collect();
    let text = std::fs::read_to_string(&logs[0]).unwrap();
    assert!(text.len() < 600_000, "the run log holds {} bytes", text.len());
    assert!(text.contains("diff cut at") && text.contains("before sha256"), "no cut marker");
    let id = r.run_log()[0]["run_id"].as_str().unwrap().to_string();
    std::fs::OpenOptions::new().append(true).open(&logs[0]).and_then(|mut f| std::io::Write::write_all(&mut f, b"{broken\nnot json\n")).unwrap();
    let h = Recover::new().env("RECOVER_STATE_DIR", r.state_dir().to_str().unwrap()).args(["history", &id]).run();
    assert_eq!(h.code, 0, "{}", h.stderr);
    assert!(h.stderr.contains("2 line(s) are not valid events"), "{}", h.stderr);
}

/// Starts `r` and returns once `task` has reached the host (its `task_start` is logged).
fn spawn_until_started(r: &Recover, task: &str) -> std::process::Child {
    let child = r.command().stdin(std::process::Stdio::null()).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    for _ in 0..400 {
        if r.run_log().iter().any(|e| e["event"] == "task_start" && e["task"] == task) {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    std::thread::sleep(Duration::from_millis(400));
    child
}

#[test]
fn a_second_ctrl_c_kills_the_remote_command_and_sigkill_keeps_the_lock_while_it_runs() {
    lab();
    let scratch = host_scratch("188", "kill2");
    let tmp = tempfile::tempdir().unwrap();
    let pb = play(tmp.path(), "k.yml", "    - name: slow write\n      shell: sleep 4; echo one >> {{ d }}/f\n");
    let suffix = format!("-kill2-{}", std::process::id());
    let lock = lab_root().join(format!("188/run/lock/recover{suffix}"));

    // Two Ctrl-C: the remote command is killed there, and said so.
    let r = Recover::new().args(["play", pb.to_str().unwrap(), "--yes"]).args(at(&scratch, "b")).env("RECOVER_LAB_LOCK_SUFFIX", &suffix);
    let child = spawn_until_started(&r, "slow write");
    for _ in 0..2 {
        assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("host 188: killed"), "{stderr}");
    std::thread::sleep(Duration::from_secs(5));
    assert!(!scratch.join("f").exists(), "the remote command went on after the second Ctrl-C");

    // SIGKILL: nothing can be killed from here; the next run refuses the host while the remote
    // command lives, naming it, and takes the lock over once it has ended.
    let r = Recover::new().args(["play", pb.to_str().unwrap(), "--yes"]).args(at(&scratch, "b")).env("RECOVER_LAB_LOCK_SUFFIX", &suffix);
    let mut child = spawn_until_started(&r, "slow write");
    child.kill().unwrap();
    child.wait().unwrap();
    let next = Recover::new().args(["play", pb.to_str().unwrap(), "--yes"]).args(at(&scratch, "b")).env("RECOVER_LAB_LOCK_SUFFIX", &suffix).run();
    assert_eq!(next.code, 4, "{}{}", next.stdout, next.stderr);
    assert!(next.stdout.contains("may still be running") && next.stdout.contains("sleep 4"), "{}", next.stdout);
    assert!(lock.exists(), "the lock was given up while the remote command ran");
    for _ in 0..100 {
        if scratch.join("f").exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(std::fs::read_to_string(scratch.join("f")).unwrap(), "one\n", "the killed run's remote command finished on its own");
    std::thread::sleep(Duration::from_millis(300));
    let after = Recover::new().args(["play", pb.to_str().unwrap(), "--yes"]).args(at(&scratch, "b")).env("RECOVER_LAB_LOCK_SUFFIX", &suffix).run();
    assert_eq!(after.code, 0, "{}{}", after.stdout, after.stderr);
    assert!(!lock.exists());
}

/// The run logs are a hash chain: `history --verify` holds over untouched logs, and names the
/// first line that does not fit after one line is edited, one removed, or a whole run deleted.
#[test]
fn history_verify_names_the_first_line_an_edit_broke() {
    let state = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pb = write(dir.path(), "pb.yml", "- hosts: localhost\n  connection: local\n  gather_facts: false\n  tasks:\n    - debug: {msg: one}\n    - debug: {msg: two}\n");
    let s = state.path().to_str().unwrap();
    for _ in 0..3 {
        let r = Recover::new().env("RECOVER_STATE_DIR", s).args(["play", pb.to_str().unwrap(), "-i", "localhost,"]).run();
        assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
        std::thread::sleep(std::time::Duration::from_millis(1100)); // one log per second of name
    }
    let verify = || Recover::new().env("RECOVER_STATE_DIR", s).args(["history", "--verify"]).run();
    let ok = verify();
    assert_eq!(ok.code, 0, "{}{}", ok.stdout, ok.stderr);
    assert!(ok.stdout.contains("3 run log(s)") && ok.stdout.contains("the chain holds"), "{}", ok.stdout);
    let mut logs: Vec<PathBuf> = std::fs::read_dir(state.path().join("runs")).unwrap().flatten().map(|e| e.path()).collect();
    logs.sort();
    // Each run's first line names the run before it.
    let first = |p: &PathBuf| -> serde_json::Value { serde_json::from_str(std::fs::read_to_string(p).unwrap().lines().next().unwrap()).unwrap() };
    assert!(first(&logs[0])["prev"].is_null());
    assert_eq!(first(&logs[1])["prev_log"], logs[0].file_name().unwrap().to_str().unwrap());

    // One edited line (a task's status) in the middle run: that line's successor is named.
    let text = std::fs::read_to_string(&logs[1]).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let n = lines.iter().position(|l| l.contains("\"event\":\"task\"")).unwrap();
    let mut edited: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    edited[n] = edited[n].replace("\"status\":\"ok\"", "\"status\":\"changed\"");
    assert_ne!(edited[n], lines[n]);
    std::fs::write(&logs[1], edited.join("\n") + "\n").unwrap();
    let bad = verify();
    assert_eq!(bad.code, 1, "{}", bad.stdout);
    assert!(bad.stdout.contains(&format!("{}:{}: the chain breaks here", logs[1].display(), n + 2)), "{}", bad.stdout);
    std::fs::write(&logs[1], &text).unwrap();
    assert_eq!(verify().code, 0);

    // One line removed.
    let mut fewer: Vec<&str> = lines.clone();
    fewer.remove(n);
    std::fs::write(&logs[1], fewer.join("\n") + "\n").unwrap();
    let bad = verify();
    assert!(bad.code == 1 && bad.stdout.contains(&format!("{}:{}:", logs[1].display(), n + 1)), "{}", bad.stdout);
    std::fs::write(&logs[1], &text).unwrap();

    // A whole run deleted: the next run's first line chains to a log that is gone.
    std::fs::remove_file(&logs[1]).unwrap();
    let bad = verify();
    assert!(bad.code == 1 && bad.stdout.contains(&format!("{}:1: the chain breaks here: it chains to the run log", logs[2].display())) && bad.stdout.contains("which is gone"), "{}", bad.stdout);
}

#[test]
fn recover_doc_prints_a_module_from_its_own_spec() {
    let run = Recover::new().args(["doc", "lineinfile"]).run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    for needle in ["> LINEINFILE", "= path  (str)  aliases: dest, destfile, name", "- state  (str)  default: present", "- regexp  (str)  aliases: regex", "RETURNS (to `register`)", "CHECK MODE"] {
        assert!(run.stdout.contains(needle), "missing {needle:?} in:\n{}", run.stdout);
    }
    // The same module by its full name; every argument the load accepts is documented.
    let full = Recover::new().args(["doc", "ansible.builtin.lineinfile", "--output", "json"]).run();
    let v: serde_json::Value = serde_json::from_str(&full.stdout).unwrap();
    let args: Vec<&str> = v["arguments"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    for a in ["path", "state", "regexp", "search_string", "line", "insertafter", "insertbefore", "backrefs", "create", "firstmatch", "validate", "mode", "owner", "group"] {
        assert!(args.contains(&a), "{a} not documented: {args:?}");
    }
    assert!(v["arguments"].as_array().unwrap().iter().all(|a| !a["description"].as_str().unwrap_or_default().is_empty()));
    // A misspelt name is named with a suggestion; a collection's module says where it is from.
    let bad = Recover::new().args(["doc", "linefile"]).run();
    assert_eq!(bad.code, 1);
    assert!(bad.stderr.contains("did you mean 'lineinfile'"), "{}", bad.stderr);
    let coll = Recover::new().args(["doc", "sysctl"]).env("RECOVER_ANSIBLE_PYTHON", "/nonexistent/python3").run();
    assert_eq!(coll.code, 1);
    assert!(coll.stderr.contains("ansible.posix"), "{}", coll.stderr);
    // With the collections installed, ansible-core finds it and doc says where from.
    if let Ok(o) = std::env::var("RECOVER_ORACLES_DIR") {
        let found = Recover::new().args(["doc", "sysctl"]).env("ANSIBLE_COLLECTIONS_PATH", &format!("{o}/collections")).run();
        assert_eq!(found.code, 0, "{}{}", found.stdout, found.stderr);
        assert!(found.stdout.starts_with("ansible.posix.sysctl - ") && found.stdout.contains("ansible_collections/ansible/posix/plugins/modules/sysctl.py") && found.stdout.contains("sysctl_file"), "{}", found.stdout);
    }
    let list = Recover::new().args(["doc", "--list"]).run();
    assert_eq!(list.code, 0);
    assert!(list.stdout.lines().any(|l| l.starts_with("lineinfile ")) && list.stdout.lines().count() >= 57, "{}", list.stdout);
}
