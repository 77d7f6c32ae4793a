//! The safety engine over the real loopback fleet: verified pre-backups,
//! tiers, confirmation and approval, host locks, and the audit trail.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

/// A data folder on a lab host, with nested files, owned by the host's user.
fn data_dir(scratch: &Path, bytes_each: usize) -> PathBuf {
    let data = scratch.join("data");
    for (i, sub) in ["", "db", "db/base", "conf"].iter().enumerate() {
        let d = data.join(sub);
        std::fs::create_dir_all(&d).unwrap();
        for j in 0..5 {
            let content: Vec<u8> = (0..bytes_each).map(|k| ((k * 31 + i * 7 + j * 13) % 251) as u8).collect();
            std::fs::write(d.join(format!("f{j}.bin")), content).unwrap();
        }
    }
    std::fs::write(data.join("conf.txt"), "old\n").unwrap();
    std::fs::write(data.join("db/state"), "clean\n").unwrap();
    let owner = if scratch.starts_with(lab_root().join("188")) { "ollama" } else { "wooo" };
    assert!(Command::new("chown").args(["-R", &format!("{owner}:"), &scratch.display().to_string()]).status().unwrap().success());
    data
}

/// The playbook of these tests: a STANDARD_HITL overwrite, then a BLOCK step.
/// Named pg-wal so that `--approve pg-wal@HOST` applies to it.
fn playbook(dir: &Path, hosts: &str) -> PathBuf {
    write(
        dir,
        "pg-wal.yml",
        &format!(
            "- name: safety story\n  hosts: {hosts}\n  tasks:\n    - name: Edit the config\n      copy:\n        content: \"new\\n\"\n        dest: \"{{{{ data_dir }}}}/conf.txt\"\n    - name: Reset the database state\n      shell: printf reset > {{{{ data_dir }}}}/db/state\n      destructive:\n        reason: rewrites the database state\n        paths: [\"{{{{ data_dir }}}}/db\"]\n        tier: BLOCK\n"
        ),
    )
}

fn vars(scratch_name: &str) -> Vec<String> {
    vec![
        "-e".into(),
        format!("data_dir={{{{ host_root }}}}/{scratch_name}/data"),
        "-e".into(),
        format!("recover_backup_root={{{{ host_root }}}}/{scratch_name}/backups"),
    ]
}

fn scratch_name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn no_terminal_and_no_flags_refuses_with_exit_4_and_changes_nothing() {
    lab();
    let scratch = host_scratch("188", "noflags");
    let data = data_dir(&scratch, 100);
    let tmp = tempfile::tempdir().unwrap();
    let before = tree_hash(&data);
    let run = Recover::new().args(["play", playbook(tmp.path(), "data").to_str().unwrap()]).args(vars(&scratch_name(&scratch))).run();
    assert_eq!(run.code, 4, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("STANDARD_HITL: confirm it at a terminal, or pass --yes"), "{}", run.stdout);
    assert_eq!(before, tree_hash(&data));
    assert!(!scratch.join("backups").exists(), "a refused step needs no backup");
}

#[test]
fn yes_runs_hitl_steps_not_block_and_approve_runs_block_on_that_host_only() {
    lab();
    let s188 = host_scratch("188", "approve");
    let name = scratch_name(&s188);
    let s110 = lab_root().join("110").join(&name);
    std::fs::create_dir_all(&s110).unwrap();
    let (d188, d110) = (data_dir(&s188, 100), data_dir(&s110, 100));
    let tmp = tempfile::tempdir().unwrap();
    let pb = playbook(tmp.path(), "data:registry");

    let yes = Recover::new().args(["play", pb.to_str().unwrap(), "--yes", "--output", "json"]).args(vars(&name)).run();
    assert_eq!(yes.code, 4, "{}{}", yes.stdout, yes.stderr);
    for d in [&d188, &d110] {
        assert_eq!(std::fs::read_to_string(d.join("conf.txt")).unwrap(), "new\n", "--yes should run the STANDARD_HITL step");
        assert_eq!(std::fs::read_to_string(d.join("db/state")).unwrap(), "clean\n", "--yes must not run a BLOCK step");
    }

    let book = tmp.path().join("LOGBOOK.md");
    let approved = Recover::new()
        .args(["play", pb.to_str().unwrap(), "--yes", "--approve", "pg-wal@188", "--output", "json", "--logbook", book.to_str().unwrap()])
        .args(vars(&name));
    let run = approved.run();
    assert_eq!(run.code, 4, "110 is still refused: {}{}", run.stdout, run.stderr);
    assert_eq!(std::fs::read_to_string(d188.join("db/state")).unwrap(), "reset");
    assert_eq!(std::fs::read_to_string(d110.join("db/state")).unwrap(), "clean\n");
    assert_eq!(run.recap()["110"]["refused"], 1);

    // The audit record: the approvals, and every backup with a sha256 that matches the archive on the host.
    let log = approved.run_log();
    let approvals: Vec<&serde_json::Value> = log.iter().filter(|e| e["event"] == "approval").collect();
    assert!(approvals.iter().any(|a| a["host"] == "188" && a["tier"] == "BLOCK" && a["decision"] == "run" && a["how"] == "--approve pg-wal@188"), "{approvals:?}");
    assert!(approvals.iter().any(|a| a["host"] == "110" && a["tier"] == "BLOCK" && a["decision"] == "refused"));
    let backups: Vec<&serde_json::Value> = log.iter().filter(|e| e["event"] == "backup").collect();
    assert!(!backups.is_empty());
    for b in &backups {
        let archive = b["backup"]["archive"].as_str().unwrap();
        use sha2::Digest;
        let actual = format!("{:x}", sha2::Sha256::digest(std::fs::read(archive).unwrap()));
        assert_eq!(b["backup"]["sha256"], actual, "{archive}");
        let manifest: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(format!("{archive}.manifest.json")).unwrap()).unwrap();
        assert_eq!(manifest["sha256"], actual);
        assert!(std::fs::read_to_string(&book).unwrap().contains(&actual), "logbook lacks {actual}");
    }
    let db_backup = backups.iter().find(|b| b["host"] == "188" && b["backup"]["sources"][0].as_str().unwrap().ends_with("/data/db")).expect("a backup of 188's db");
    assert!(db_backup["backup"]["entries"].as_u64().unwrap() >= 12);
}

#[test]
fn a_backup_target_too_small_is_refused_before_anything_changes() {
    lab();
    let scratch = host_scratch("188", "tmpfs");
    let data = data_dir(&scratch, 200_000);
    let backups = scratch.join("backups");
    let _fs = Tmpfs::mount(&backups, "1m", "ollama");
    let before = tree_hash(&data);
    let tmp = tempfile::tempdir().unwrap();
    let run = Recover::new().args(["play", playbook(tmp.path(), "data").to_str().unwrap(), "--yes", "--approve", "pg-wal@188"]).args(vars(&scratch_name(&scratch))).run();
    assert_eq!(run.code, 4, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("not enough space for the backup"), "{}", run.stdout);
    assert_eq!(before, tree_hash(&data), "data changed although the backup was refused");
    assert_eq!(std::fs::read_dir(&backups).unwrap().count(), 0, "something was left in the backup target");
}

/// A tmpfs of `size` mounted over `dir`, owned by the lab host's user, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str, owner: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs", dir.to_str().unwrap()]).status().unwrap().success();
        assert!(ok, "mounting a tmpfs needs root (CI runs as root): this test needs a small real filesystem to fill");
        assert!(Command::new("chown").args([&format!("{owner}:"), dir.to_str().unwrap()]).status().unwrap().success());
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_backup_target_that_fills_during_the_write_stops_the_step_and_leaves_no_archive() {
    lab();
    let scratch = host_scratch("188", "filling");
    let data = data_dir(&scratch, 100);
    // 3 MiB that gzip cannot shrink, so the archive needs about that much room.
    let mut f = std::fs::File::open("/dev/urandom").unwrap();
    let mut noise = vec![0u8; 3 << 20];
    std::io::Read::read_exact(&mut f, &mut noise).unwrap();
    std::fs::write(data.join("db/noise.bin"), &noise).unwrap();
    assert!(Command::new("chown").args(["-R", "ollama:", data.to_str().unwrap()]).status().unwrap().success());
    let backups = scratch.join("backups");
    let _fs = Tmpfs::mount(&backups, "8m", "ollama");
    // The space check passes (8 MiB free for 3 MiB); then, as the archive is about to be
    // written, something else on the host takes 6 MiB of the target.
    let filler = backups.join("someone-elses.log");
    let hook = write(
        &scratch,
        "fill.sh",
        &format!(
            "#!/bin/sh
case \"$3\" in *'tar --numeric-owner'*) dd if=/dev/zero of='{}' bs=1M count=6 2>/dev/null;; esac
exit 0
",
            filler.display()
        ),
    );
    assert!(Command::new("chmod").args(["+x", hook.to_str().unwrap()]).status().unwrap().success());
    let before = tree_hash(&data);
    let tmp = tempfile::tempdir().unwrap();
    let pb = block_only(tmp.path());
    let r = Recover::new()
        .args(["play", pb.to_str().unwrap(), "--approve", "pg-wal@188", "--output", "json"])
        .args(vars(&scratch_name(&scratch)))
        .env("RECOVER_FAULT_HOOK", hook.to_str().unwrap());
    let run = r.run();
    assert!(filler.exists(), "the hook never filled the target: the write was not reached");
    assert_eq!(run.code, 4, "{}{}", run.stdout, run.stderr);
    let step = run.task_events().into_iter().find(|e| e["task"] == "Reset the database state").expect("the step is reported");
    assert_eq!(step["status"], "refused", "{step}");
    let msg = step["msg"].as_str().unwrap();
    assert!(msg.contains("writing the backup") && msg.contains("No space left") && msg.contains("the step did not run"), "{msg}");
    assert_eq!(before, tree_hash(&data), "the source changed");
    assert_eq!(std::fs::read_to_string(data.join("db/state")).unwrap(), "clean\n", "the destructive step ran");
    let left: Vec<String> = std::fs::read_dir(&backups).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n != "someone-elses.log").collect();
    assert!(left.is_empty(), "a partial or unverified archive was left in the target: {left:?}");
    assert!(!r.run_log().iter().any(|e| e["event"] == "backup"), "the log claims a backup");

    // Room again: the same command backs up, verifies and runs the step.
    std::fs::remove_file(&filler).unwrap();
    let again = Recover::new().args(["play", pb.to_str().unwrap(), "--approve", "pg-wal@188"]).args(vars(&scratch_name(&scratch))).run();
    assert_eq!(again.code, 0, "{}{}", again.stdout, again.stderr);
    assert_eq!(std::fs::read_to_string(data.join("db/state")).unwrap(), "reset");
}

#[test]
fn a_backup_corrupted_between_write_and_verify_stops_the_destructive_step() {
    lab();
    let scratch = host_scratch("188", "corrupt");
    let data = data_dir(&scratch, 5000);
    let before = tree_hash(&data);
    let tmp = tempfile::tempdir().unwrap();
    let run = Recover::new()
        .args(["play", playbook(tmp.path(), "data").to_str().unwrap(), "--yes", "--approve", "pg-wal@188"])
        .args(vars(&scratch_name(&scratch)))
        .env("RECOVER_FAULT", "corrupt-backup")
        .run();
    assert_eq!(run.code, 4, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("unreadable") || run.stdout.contains("sha256"), "{}", run.stdout);
    assert_eq!(before, tree_hash(&data));
    let invalid: Vec<_> = std::fs::read_dir(scratch.join("backups")).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().ends_with(".invalid")).collect();
    assert_eq!(invalid.len(), 1, "the bad archive is kept, marked invalid");
}

fn block_only(dir: &Path) -> PathBuf {
    write(
        dir,
        "pg-wal.yml",
        "- hosts: data\n  gather_facts: false\n  tasks:\n    - name: Reset the database state\n      shell: printf reset > {{ data_dir }}/db/state\n      destructive:\n        paths: [\"{{ data_dir }}/db\"]\n        tier: BLOCK\n",
    )
}

fn pty(r: &Recover) -> expectrl::Session {
    let mut s = expectrl::Session::spawn(r.command()).expect("spawn in a pty");
    s.set_expect_timeout(Some(Duration::from_secs(30)));
    s
}

fn exit_code(s: &mut expectrl::Session) -> i32 {
    let _ = s.expect(expectrl::Eof);
    match s.get_process().wait().unwrap() {
        expectrl::WaitStatus::Exited(_, code) => code,
        other => panic!("not exited: {other:?}"),
    }
}

#[test]
fn typed_confirmation_at_a_real_terminal_declines_a_wrong_name_and_accepts_the_host() {
    lab();
    let scratch = host_scratch("188", "pty");
    let data = data_dir(&scratch, 100);
    let tmp = tempfile::tempdir().unwrap();
    let pb = block_only(tmp.path());
    let before = tree_hash(&data);

    let wrong = Recover::new().args(["play", pb.to_str().unwrap()]).args(vars(&scratch_name(&scratch)));
    let mut s = pty(&wrong);
    s.expect("Type the host name (188)").unwrap();
    s.send_line("110").unwrap();
    assert_eq!(exit_code(&mut s), 4);
    assert_eq!(before, tree_hash(&data), "a wrong host name must decline");

    let right = Recover::new().args(["play", pb.to_str().unwrap()]).args(vars(&scratch_name(&scratch)));
    let mut s = pty(&right);
    s.expect("Type the host name (188)").unwrap();
    s.send_line("188").unwrap();
    assert_eq!(exit_code(&mut s), 0);
    assert_eq!(std::fs::read_to_string(data.join("db/state")).unwrap(), "reset");
    let log = right.run_log();
    assert!(log.iter().any(|e| e["event"] == "approval" && e["how"] == "typed confirmation '188'"), "{log:?}");
}

#[test]
fn killing_the_run_between_backup_and_step_leaves_the_data_and_says_where_it_stopped() {
    lab();
    let scratch = host_scratch("188", "kill");
    let data = data_dir(&scratch, 100);
    let tmp = tempfile::tempdir().unwrap();
    let pb = block_only(tmp.path());
    let before = tree_hash(&data);
    let r = Recover::new().args(["play", pb.to_str().unwrap()]).args(vars(&scratch_name(&scratch))).env("RECOVER_LAB_LOCK_SUFFIX", &format!("-kill-{}", std::process::id()));
    let mut s = pty(&r);
    // At the prompt the verified backup exists and the step has not run: kill the run here.
    s.expect("Type the host name (188)").unwrap();
    s.get_process_mut().kill(expectrl::Signal::SIGKILL).unwrap();
    let _ = s.get_process().wait();
    assert_eq!(before, tree_hash(&data), "the data changed");
    let log = r.run_log();
    let kinds: Vec<&str> = log.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"backup") && kinds.contains(&"preview"), "{kinds:?}");
    assert!(!log.iter().any(|e| e["event"] == "task" && e["task"] == "Reset the database state"), "the log claims the step ran");
    assert_eq!(kinds.last(), Some(&"preview"), "the log ends where the run stopped: {kinds:?}");

    // Its lock is left behind. The run that held it was on this machine and is gone, so the next
    // run takes it over and says so; a holder on another control machine needs --break-lock.
    let suffix = format!("-kill-{}", std::process::id());
    let holder = lab_root().join(format!("188/run/lock/recover{suffix}/holder.json"));
    let left = std::fs::read_to_string(&holder).expect("the killed run's lock");
    std::fs::write(&holder, left.replace("\"control_host\":\"", "\"control_host\":\"elsewhere-")).unwrap();
    let again = Recover::new().args(["play", pb.to_str().unwrap(), "--approve", "pg-wal@188"]).args(vars(&scratch_name(&scratch))).env("RECOVER_LAB_LOCK_SUFFIX", &suffix).run();
    assert_eq!(again.code, 4, "{}", again.stdout);
    assert!(again.stdout.contains("locked by another run") && again.stdout.contains("on elsewhere-"), "{}", again.stdout);
    std::fs::write(&holder, &left).unwrap();
    let taken = Recover::new().args(["play", pb.to_str().unwrap(), "--approve", "pg-wal@188", "--output", "json"]).args(vars(&scratch_name(&scratch))).env("RECOVER_LAB_LOCK_SUFFIX", &suffix).run();
    assert_eq!(taken.code, 0, "{}{}", taken.stdout, taken.stderr);
    let broken = taken.events().into_iter().find(|e| e["event"] == "lock_broken").expect("the takeover is reported");
    assert!(broken["why"].as_str().unwrap().contains("no longer running"), "{broken}");
    // A foreign holder again: --break-lock takes it, and says so.
    let relock = std::fs::read_to_string(&holder).is_ok();
    assert!(!relock, "the run released its lock");
    let dir = holder.parent().unwrap();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(&holder, left.replace("\"control_host\":\"", "\"control_host\":\"elsewhere-")).unwrap();
    // This test may run as root; the lab host's user must own what it is asked to break.
    use std::os::unix::fs::MetadataExt;
    let owner = std::fs::metadata(dir.parent().unwrap()).unwrap();
    for p in [dir, holder.as_path()] {
        std::os::unix::fs::chown(p, Some(owner.uid()), Some(owner.gid())).unwrap();
    }
    let forced = Recover::new()
        .args(["play", pb.to_str().unwrap(), "--approve", "pg-wal@188", "--break-lock", "--output", "json"])
        .args(vars(&scratch_name(&scratch)))
        .env("RECOVER_LAB_LOCK_SUFFIX", &suffix)
        .run();
    assert_eq!(forced.code, 0, "{}{}", forced.stdout, forced.stderr);
    assert!(forced.events().iter().any(|e| e["event"] == "lock_broken" && e["why"] == "--break-lock"), "{}", forced.stdout);
}

#[test]
fn a_second_run_on_a_locked_host_is_refused_and_names_the_first() {
    lab();
    let tmp = tempfile::tempdir().unwrap();
    let suffix = format!("-shared-{}", std::process::id());
    let slow = write(tmp.path(), "slow.yml", "- hosts: data\n  gather_facts: false\n  tasks:\n    - command: sleep 3\n");
    let first = Recover::new().args(["play", slow.to_str().unwrap()]).env("RECOVER_LAB_LOCK_SUFFIX", &suffix);
    let mut child = first.command().stdin(std::process::Stdio::null()).stdout(std::process::Stdio::null()).spawn().unwrap();
    let holder = lab_root().join("188/run/lock").join(format!("recover{suffix}")).join("holder.json");
    let mut held = serde_json::Value::Null;
    for _ in 0..100 {
        if let Ok(v) = serde_json::from_str(&std::fs::read_to_string(&holder).unwrap_or_default()) {
            held = v;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(held.is_object(), "the first run never took the lock");
    let second = Recover::new().args(["play", slow.to_str().unwrap()]).env("RECOVER_LAB_LOCK_SUFFIX", &suffix).run();
    assert_eq!(second.code, 4, "{}{}", second.stdout, second.stderr);
    let run_id = held["run_id"].as_str().unwrap();
    assert!(second.stdout.contains(&format!("run {run_id}")), "the refusal must name the holder {run_id}: {}", second.stdout);
    assert!(child.wait().unwrap().success());
    assert!(!holder.exists(), "the first run released its lock");
}

#[test]
fn a_playbook_that_opts_a_destructive_step_out_of_its_backup_does_not_load() {
    let tmp = tempfile::tempdir().unwrap();
    let pb = write(tmp.path(), "bad.yml", "- hosts: all\n  gather_facts: false\n  tasks:\n    - shell: rm -rf /data\n      destructive: {paths: [/data]}\n      backup: false\n");
    let run = Recover::new().args(["play", pb.to_str().unwrap(), "-i", "inventory/awoooi.yml"]).run();
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains(":6:15: a destructive step cannot opt out of its verified pre-backup"), "{}", run.stderr);
}

#[test]
fn a_restore_round_trip_is_byte_identical_and_keeps_what_it_replaced() {
    lab();
    let scratch = host_scratch("188", "restore");
    let data = data_dir(&scratch, 3000);
    let original = tree_hash(&data);
    let tmp = tempfile::tempdir().unwrap();
    let pb = write(tmp.path(), "take.yml", "- hosts: data\n  gather_facts: false\n  tasks:\n    - backup:\n        path: \"{{ data_dir }}\"\n        service: demo\n        component: data\n");
    let take = Recover::new().args(["play", pb.to_str().unwrap(), "--output", "json"]).args(vars(&scratch_name(&scratch)));
    let run = take.run();
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let id = take.run_log().iter().find(|e| e["event"] == "backup").expect("a backup event")["backup"]["id"].as_str().unwrap().to_string();
    let state = take.state_dir().to_path_buf();
    let with_state = |r: Recover| r.env("RECOVER_STATE_DIR", state.to_str().unwrap());

    let list = with_state(Recover::new().args(["backups", "list", "--host", "188"])).run();
    assert!(list.stdout.contains(&id), "{}", list.stdout);
    let verify = with_state(Recover::new().args(["backups", "verify", &id[..8]])).run();
    assert_eq!(verify.code, 0, "{}{}", verify.stdout, verify.stderr);

    // Damage: change, add, remove, chmod.
    std::fs::write(data.join("conf.txt"), "damaged\n").unwrap();
    std::fs::write(data.join("db/new-junk"), "junk").unwrap();
    std::fs::remove_file(data.join("db/base/f1.bin")).unwrap();
    std::fs::set_permissions(data.join("db/f0.bin"), std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let damaged = tree_hash(&data);
    assert_ne!(original, damaged);

    let dry = with_state(Recover::new().args(["backups", "restore", &id, "--dry-run"])).run();
    assert_eq!(dry.code, 0, "{}{}", dry.stdout, dry.stderr);
    assert_eq!(damaged, tree_hash(&data), "a dry-run restore changed something");
    let refused = with_state(Recover::new().args(["backups", "restore", &id])).run();
    assert_eq!(refused.code, 4, "no terminal, no flag: {}{}", refused.stdout, refused.stderr);

    let restored = with_state(Recover::new().args(["backups", "restore", &id, "--yes"])).run();
    assert_eq!(restored.code, 0, "{}{}", restored.stdout, restored.stderr);
    assert_eq!(original, tree_hash(&data), "the restore is not byte-identical");
    // What it replaced was backed up and moved aside, not deleted.
    let aside: Vec<PathBuf> = std::fs::read_dir(&scratch).unwrap().flatten().map(|e| e.path()).filter(|p| p.to_string_lossy().contains("data.before-restore-")).collect();
    assert_eq!(aside.len(), 1);
    assert_eq!(std::fs::read_to_string(aside[0].join("conf.txt")).unwrap(), "damaged\n");
}

/// Records a crafted archive as if a run had backed it up (sha256 and entries consistent).
fn record_crafted(state: &Path, host: &str, archive: &Path, sources: &[String], entries: u64) -> String {
    use sha2::Digest;
    let sha = format!("{:x}", sha2::Sha256::digest(std::fs::read(archive).unwrap()));
    let record = serde_json::json!({"event": "backup", "host": host, "task": "crafted", "backup": {
        "id": &sha[..12], "host": host, "archive": archive, "manifest": format!("{}.manifest.json", archive.display()), "sources": sources,
        "sha256": sha, "entries": entries, "bytes": 1, "source_bytes": 1, "run_id": "crafted", "task": "crafted",
        "created_at": "2026-01-01T00:00:00Z", "tool_version": "0"}});
    std::fs::create_dir_all(state.join("runs")).unwrap();
    std::fs::write(state.join("runs/20260101T000000Z-crafted.jsonl"), format!("{record}\n")).unwrap();
    sha[..12].to_string()
}

#[test]
fn crafted_archives_with_dotdot_entries_or_escaping_links_are_refused() {
    lab();
    let scratch = host_scratch("188", "crafted");
    let data = data_dir(&scratch, 10);
    let rel = data.strip_prefix("/").unwrap().display().to_string();
    let outside = scratch.join("escaped");
    let state = tempfile::tempdir().unwrap();
    let before = tree_hash(&scratch);
    let cases = [
        ("dotdot", format!("import tarfile,io\nt=tarfile.open('{{a}}','w:gz')\ni=tarfile.TarInfo('{rel}/../escaped'); b=b'pwned'; i.size=len(b); t.addfile(i, io.BytesIO(b))\nt.close()")),
        ("symlink", format!("import tarfile\nt=tarfile.open('{{a}}','w:gz')\ni=tarfile.TarInfo('{rel}/evil'); i.type=tarfile.SYMTYPE; i.linkname='../../../../../../etc'; t.addfile(i)\nt.close()")),
        ("absolute", "import tarfile,io\nt=tarfile.open('{a}','w:gz')\ni=tarfile.TarInfo('/tmp/recover-crafted-abs'); b=b'x'; i.size=1; t.addfile(i, io.BytesIO(b))\nt.close()".to_string()),
    ];
    for (name, script) in cases {
        let archive = scratch.join(format!("{name}.tar.gz"));
        let py = script.replace("{a}", archive.to_str().unwrap());
        assert!(Command::new("python3").args(["-c", &py]).status().unwrap().success());
        let id = record_crafted(state.path(), "188", &archive, &[data.display().to_string()], 1);
        let run = Recover::new().env("RECOVER_STATE_DIR", state.path().to_str().unwrap()).args(["backups", "restore", &id, "--yes", "--approve", "restore@188"]).run();
        assert_eq!(run.code, 4, "{name}: {}{}", run.stdout, run.stderr);
        assert!(run.stdout.contains("refused:"), "{name}: {}", run.stdout);
        std::fs::remove_file(&archive).unwrap();
    }
    assert!(!outside.exists());
    assert!(!Path::new("/tmp/recover-crafted-abs").exists());
    assert_eq!(before.len(), tree_hash(&scratch).len(), "a crafted archive changed the tree");
}

/// A play of two steps: `long step` (sleep `secs`), then `next step` (writes OUT/next).
fn long_then_next(dir: &Path, secs: u32) -> PathBuf {
    write(dir, "two.yml", &format!("- hosts: data\n  gather_facts: false\n  tasks:\n    - name: long step\n      command: sleep {secs}\n    - name: next step\n      copy: {{content: x, dest: \"{{{{ out }}}}/next\"}}\n"))
}

/// Starts `r` (stdout and stderr piped) and returns once its first step is under way.
fn spawn_and_wait_for_lock(r: &Recover, suffix: &str) -> std::process::Child {
    let child = r.command().stdin(std::process::Stdio::null()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let holder = lab_root().join("188/run/lock").join(format!("recover{suffix}")).join("holder.json");
    for _ in 0..100 {
        if holder.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // The first step is now under way.
    std::thread::sleep(Duration::from_millis(500));
    child
}

#[test]
fn ctrl_c_lets_the_step_in_flight_finish_and_starts_no_new_one_and_twice_stops_at_once() {
    lab();
    let scratch = host_scratch("188", "sigint");
    let tmp = tempfile::tempdir().unwrap();
    let pb = long_then_next(tmp.path(), 3);
    for (presses, suffix) in [(1, format!("-int1-{}", std::process::id())), (2, format!("-int2-{}", std::process::id()))] {
        let r = Recover::new().args(["play", pb.to_str().unwrap(), "-e", &format!("out={}", scratch.display())]).env("RECOVER_LAB_LOCK_SUFFIX", &suffix);
        let mut child = spawn_and_wait_for_lock(&r, &suffix);
        for _ in 0..presses {
            assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
            std::thread::sleep(Duration::from_millis(200));
        }
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(130), "{presses} Ctrl-C");
        assert!(!scratch.join("next").exists(), "a new step started after Ctrl-C");
        let log = r.run_log();
        let interrupts: Vec<_> = log.iter().filter(|e| e["event"] == "interrupt").collect();
        assert!(interrupts.len() >= presses, "{log:?}");
        let long_done = log.iter().any(|e| e["event"] == "task" && e["task"] == "long step");
        if presses == 1 {
            assert!(long_done, "the step in flight should finish and be logged: {log:?}");
            assert!(log.iter().any(|e| e["event"] == "recap" && e["exit_code"] == 130));
        } else {
            // The step in flight is killed on its host: cut short, never reported as done.
            let long = log.iter().find(|e| e["event"] == "task" && e["task"] == "long step");
            assert!(long.is_none_or(|e| e["status"] == "failed" && e["duration_ms"].as_u64().unwrap() < 2500), "a second Ctrl-C stops at once: {log:?}");
            assert_eq!(interrupts[1]["abort"], true);
            assert!(log.iter().any(|e| e["event"] == "interrupt" && e["message"].as_str().unwrap().contains("killed")), "{log:?}");
        }
    }
}

#[test]
fn a_play_whose_stdout_is_closed_stops_like_one_ctrl_c_without_a_panic_and_releases_its_lock() {
    // `recover play ... | head`: the reader goes away while a step runs.
    lab();
    let scratch = host_scratch("188", "epipe");
    let tmp = tempfile::tempdir().unwrap();
    let pb = long_then_next(tmp.path(), 1);
    let suffix = format!("-epipe-{}", std::process::id());
    for json in [false, true] {
        let mut r = Recover::new().args(["play", pb.to_str().unwrap(), "-e", &format!("out={}", scratch.display())]).env("RECOVER_LAB_LOCK_SUFFIX", &suffix);
        if json {
            r = r.args(["--output", "json"]);
        }
        let mut child = spawn_and_wait_for_lock(&r, &suffix);
        // The long step is under way: the reader goes away.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert_eq!(out.status.code(), Some(130), "json {json}: {stderr}");
        assert!(!scratch.join("next").exists(), "a new step started with nobody watching");
        assert!(!lab_root().join(format!("188/run/lock/recover{suffix}")).exists(), "the lock was left behind");
        let log = r.run_log();
        assert!(log.iter().any(|e| e["event"] == "task" && e["task"] == "long step"), "the step in flight finishes and is logged: {log:?}");
        assert!(log.iter().any(|e| e["event"] == "interrupt" && e["message"].as_str().unwrap().contains("stdout was closed")), "{log:?}");
        assert!(log.iter().any(|e| e["event"] == "recap" && e["exit_code"] == 130), "{log:?}");
    }
}

/// A copy of the lab inventory with a baseline of its own: the repo's tiers, and an automation
/// gate whose one condition (SSH to 188) the lab meets.
fn gated_inventory(dir: &Path) -> PathBuf {
    let inv = lab_inventory_dir(dir);
    write(
        inv.parent().unwrap(),
        "baseline-lab.yml",
        &format!(
            "extends: {}\nphases:\n  - name: P0-NETWORK\n    probes:\n      - {{name: SSH 188, type: ssh, host: \"188\"}}\nautomation_gate:\n  - {{name: network up, phase: P0-NETWORK}}\n",
            repo().join("inventory/baseline.yml").display()
        ),
    );
    inv
}

#[test]
fn automation_runs_auto_steps_only_and_never_while_frozen_or_without_a_green_gate() {
    lab();
    let scratch = host_scratch("188", "auto");
    let data = data_dir(&scratch, 10);
    let tmp = tempfile::tempdir().unwrap();
    let inv = gated_inventory(tmp.path());
    let inv = inv.to_str().unwrap().to_string();
    // An AUTO step (the baseline classes node-exporter AUTO), a plain command (not read-only,
    // not declared destructive), a STANDARD_HITL overwrite, and a read-only diagnostic.
    let pb = write(
        tmp.path(),
        "exporter.yml",
        "- hosts: data\n  gather_facts: false\n  tasks:\n    - name: Look\n      command: cat {{ data_dir }}/conf.txt\n      read_only: true\n    - name: Restart the exporter\n      shell: printf restarted > {{ data_dir }}/exporter\n      destructive: {tier: AUTO, reason: restarts a stateless exporter, services: [node-exporter]}\n    - name: A plain command\n      command: touch {{ data_dir }}/plain\n    - name: Edit the config\n      copy: {content: \"auto\\n\", dest: \"{{ data_dir }}/conf.txt\"}\n",
    );
    let state = tempfile::tempdir().unwrap();
    let st = state.path().to_str().unwrap().to_string();
    let auto = || Recover::new().env("RECOVER_STATE_DIR", &st).args(["play", pb.to_str().unwrap(), "--automation", "-i", &inv]).args(vars(&scratch_name(&scratch)));
    let requests = |r: &Run| r.events().into_iter().filter(|e| e["event"] == "approval_request").collect::<Vec<_>>();

    // No gate evaluated yet: only the read-only step runs; the first other step is refused.
    let run = auto().run();
    assert_eq!(run.code, 4, "{}{}", run.stdout, run.stderr);
    assert!(!data.join("exporter").exists() && !data.join("plain").exists());
    assert!(run.task_events().iter().any(|e| e["task"] == "Look" && e["status"] == "ok"), "{}", run.stdout);
    assert_eq!(requests(&run).len(), 1, "{}", run.stdout);
    assert!(run.stdout.contains("has not been evaluated"), "{}", run.stdout);

    // A green gate recorded by `recover gate` for another baseline does not count.
    let other = write(tmp.path(), "trivial.yml", "phases:\n  - name: P0-NETWORK\n    probes:\n      - {name: SSH 188, type: ssh, host: \"188\"}\nautomation_gate:\n  - {name: up, phase: P0-NETWORK}\n");
    let g = Recover::new().env("RECOVER_STATE_DIR", &st).args(["gate", "-i", &inv, "--baseline", other.to_str().unwrap()]).run();
    assert_eq!(g.code, 0, "{}{}", g.stdout, g.stderr);
    let run = auto().run();
    assert_eq!(run.code, 4, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("another baseline"), "{}", run.stdout);
    assert!(!data.join("exporter").exists());

    // The real gate, green for this baseline and inventory; then a freeze: still nothing but read-only.
    let g = Recover::new().env("RECOVER_STATE_DIR", &st).args(["gate", "-i", &inv]).run();
    assert_eq!(g.code, 0, "{}{}", g.stdout, g.stderr);
    let freeze = Recover::new().env("RECOVER_STATE_DIR", &st).args(["freeze", "--reason", "cold start in progress"]).run();
    assert_eq!(freeze.code, 0, "{}", freeze.stderr);
    let status = Recover::new().env("RECOVER_STATE_DIR", &st).args(["status"]).run();
    assert!(status.stdout.contains("FROZEN") && status.stdout.contains("cold start in progress"), "{}", status.stdout);
    let run = auto().run();
    assert_eq!(run.code, 4);
    assert!(run.stdout.contains("frozen"), "{}", run.stdout);
    assert!(!data.join("exporter").exists() && !data.join("plain").exists());

    // Thawed, gate green: the AUTO step runs; the plain command (STANDARD_HITL by default) becomes
    // an approval request and stops the host before the overwrite.
    assert_eq!(Recover::new().env("RECOVER_STATE_DIR", &st).args(["thaw"]).run().code, 0);
    let run = auto().run();
    assert_eq!(run.code, 4, "{}{}", run.stdout, run.stderr);
    assert_eq!(std::fs::read_to_string(data.join("exporter")).unwrap(), "restarted");
    assert!(!data.join("plain").exists(), "a plain command ran under --automation");
    assert_eq!(std::fs::read_to_string(data.join("conf.txt")).unwrap(), "old\n");
    let req = requests(&run);
    assert_eq!(req.len(), 1, "{}", run.stdout);
    assert_eq!(req[0]["tier"], "STANDARD_HITL");
    assert_eq!(req[0]["task"], "A plain command");
    assert_eq!(req[0]["flag"], "--yes");
}

#[test]
fn a_task_cannot_lower_its_tier_below_the_baseline_and_a_destructive_command_names_its_paths() {
    lab();
    let scratch = host_scratch("188", "tierfloor");
    let data = data_dir(&scratch, 10);
    let tmp = tempfile::tempdir().unwrap();
    // No paths, no services: refused at load, nothing contacted.
    let bare = write(tmp.path(), "bare.yml", "- hosts: data\n  gather_facts: false\n  tasks:\n    - shell: rm -rf {{ data_dir }}\n      destructive: {tier: AUTO}\n");
    let run = Recover::new().args(["play", bare.to_str().unwrap()]).args(vars(&scratch_name(&scratch))).run();
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("bare.yml:5") && run.stderr.contains("names no paths"), "{}", run.stderr);
    // AUTO with paths the baseline does not class: the baseline's default (STANDARD_HITL) holds,
    // and the dry-run says what the real run will need.
    let low = write(tmp.path(), "low.yml", "- hosts: data\n  gather_facts: false\n  tasks:\n    - shell: rm -rf {{ data_dir }}/db\n      destructive: {tier: AUTO, paths: [\"{{ data_dir }}/db\"]}\n");
    let dry = Recover::new().args(["play", low.to_str().unwrap(), "--dry-run", "--output", "json"]).args(vars(&scratch_name(&scratch))).run();
    assert_eq!(dry.code, 0, "{}{}", dry.stdout, dry.stderr);
    assert!(dry.stdout.contains("DESTRUCTIVE [STANDARD_HITL]") && dry.stdout.contains("will be refused"), "{}", dry.stdout);
    let run = Recover::new().args(["play", low.to_str().unwrap()]).args(vars(&scratch_name(&scratch))).run();
    assert_eq!(run.code, 4, "{}{}", run.stdout, run.stderr);
    assert!(data.join("db/state").exists(), "an AUTO-declared delete ran unattended");
}


#[test]
fn backup_copy_streams_every_backup_home_and_checks_it_there() {
    lab();
    let scratch = host_scratch("188", "copyhome");
    data_dir(&scratch, 50_000);
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("copies");
    let pb = write(tmp.path(), "take.yml", "- hosts: data\n  gather_facts: false\n  tasks:\n    - backup:\n        path: \"{{ data_dir }}\"\n");
    let r = Recover::new().args(["play", pb.to_str().unwrap(), "--backup-copy", home.to_str().unwrap()]).args(vars(&scratch_name(&scratch)));
    let run = r.run();
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let b = r.run_log().into_iter().find(|e| e["event"] == "backup").unwrap()["backup"].clone();
    let name = b["archive"].as_str().unwrap().rsplit('/').next().unwrap().to_string();
    let local = home.join("188").join(&name);
    use sha2::Digest;
    assert_eq!(format!("{:x}", sha2::Sha256::digest(std::fs::read(&local).unwrap())), b["sha256"].as_str().unwrap());
    assert_eq!(std::fs::read(&local).unwrap(), std::fs::read(b["archive"].as_str().unwrap()).unwrap());
    assert!(home.join("188").join(format!("{name}.manifest.json")).exists());
}

/// Issue 16: the new places a step can sit (a block's rescue, a dynamic include with a
/// templated name, a delegated task, a run_once task) go through the same safety path: with no
/// terminal and no flag the destructive step is refused and nothing changes; with --yes it runs
/// after a verified backup of what it deletes.
#[test]
fn destructive_steps_in_rescue_includes_delegation_and_run_once_keep_their_backup_and_approval() {
    lab();
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "inc-drop.yml", "- name: Delete the conf folder (included)\n  file: {path: \"{{ data_dir }}/conf\", state: absent}\n");
    let cases = [
        ("rescue", "    - block:\n        - command: \"false\"\n      rescue:\n        - name: Delete the conf folder (rescue)\n          file: {path: \"{{ data_dir }}/conf\", state: absent}\n"),
        ("include", "    - include_tasks: \"inc-{{ 'drop' }}.yml\"\n"),
        ("delegate", "    - name: Delete the conf folder (delegated)\n      file: {path: \"{{ data_dir }}/conf\", state: absent}\n      delegate_to: \"110\"\n"),
        ("run_once", "    - name: Delete the conf folder (run_once)\n      file: {path: \"{{ data_dir }}/conf\", state: absent}\n      run_once: true\n"),
    ];
    for (name, tasks) in cases {
        // The delegated step runs on 110, as 110's user: its data and backups live there.
        let on = if name == "delegate" { "110" } else { "188" };
        let scratch = host_scratch(on, &format!("tree-{name}"));
        let data = data_dir(&scratch, 100);
        let before = tree_hash(&data);
        let vars = vec!["-e".to_string(), format!("data_dir={}", data.display()), "-e".to_string(), format!("recover_backup_root={}/backups", scratch.display())];
        let pb = write(tmp.path(), &format!("{name}.yml"), &format!("- hosts: data\n  gather_facts: false\n  tasks:\n{tasks}"));
        let refused = Recover::new().args(["play", pb.to_str().unwrap(), "--output", "json"]).args(&vars).run();
        assert_eq!(refused.code, 4, "{name}: no terminal and no flag must refuse: {}{}", refused.stdout, refused.stderr);
        assert_eq!(before, tree_hash(&data), "{name}: a refused step changed the data");
        let yes = Recover::new().args(["play", pb.to_str().unwrap(), "--yes", "--output", "json"]).args(&vars);
        let run = yes.run();
        assert_eq!(run.code, 0, "{name}: {}{}", run.stdout, run.stderr);
        assert!(!data.join("conf").exists(), "{name}: the step did not run with --yes");
        let log = yes.run_log();
        let backup = log.iter().find(|e| e["event"] == "backup").unwrap_or_else(|| panic!("{name}: no verified backup before the delete: {log:?}"));
        let sources = backup["backup"]["sources"].as_array().cloned().unwrap_or_default();
        assert!(sources.iter().any(|s| s.as_str() == Some(data.join("conf").to_str().unwrap())), "{name}: the backup covers the deleted folder: {backup}");
        assert!(std::path::Path::new(backup["backup"]["manifest"].as_str().unwrap()).is_file(), "{name}: the backup was verified (its manifest written)");
        assert!(log.iter().any(|e| e["event"] == "approval" && e["decision"] == "run"), "{name}: no approval recorded");
        assert_eq!(backup["backup"]["host"], on, "{name}: the backup is taken where the step runs");
    }
}

/// Issue 17: the file modules that edit a file in place (lineinfile, replace, blockinfile, and
/// copy with backup: true) are overwrites for the safety engine: with no terminal and no flag
/// the edit is refused and the file is unchanged; with --yes it runs after a verified backup
/// of that file. Their harmless forms (a file created with `create: true`) do not ask.
#[test]
fn file_edits_of_the_new_modules_get_a_verified_backup_and_approval_and_creating_does_not_ask() {
    lab();
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        ("lineinfile", "lineinfile: {path: \"{{ data_dir }}/conf.txt\", regexp: '^old', line: new}"),
        ("replace", "replace: {path: \"{{ data_dir }}/conf.txt\", regexp: 'old', replace: new}"),
        ("blockinfile", "blockinfile: {path: \"{{ data_dir }}/conf.txt\", block: new}"),
        ("copy-backup", "copy: {dest: \"{{ data_dir }}/conf.txt\", content: \"new\\n\", backup: true}"),
        ("cron", "cron: {name: new, job: /bin/true, user: ollama, cron_file: \"{{ data_dir }}/conf.txt\"}"),
    ];
    for (name, task) in cases {
        let scratch = host_scratch("188", &format!("edit-{name}"));
        let data = data_dir(&scratch, 10);
        let conf = data.join("conf.txt");
        let pb = write(tmp.path(), &format!("{name}.yml"), &format!("- hosts: data\n  gather_facts: false\n  tasks:\n    - name: Edit conf.txt ({name})\n      {task}\n"));
        let refused = Recover::new().args(["play", pb.to_str().unwrap(), "--output", "json"]).args(vars(&scratch_name(&scratch))).run();
        assert_eq!(refused.code, 4, "{name}: no terminal and no flag must refuse: {}{}", refused.stdout, refused.stderr);
        assert_eq!(std::fs::read_to_string(&conf).unwrap(), "old\n", "{name}: a refused edit changed the file");
        let yes = Recover::new().args(["play", pb.to_str().unwrap(), "--yes", "--output", "json"]).args(vars(&scratch_name(&scratch)));
        let run = yes.run();
        assert_eq!(run.code, 0, "{name}: {}{}", run.stdout, run.stderr);
        assert!(std::fs::read_to_string(&conf).unwrap().contains("new"), "{name}: the edit did not run with --yes");
        let log = yes.run_log();
        let backup = log.iter().find(|e| e["event"] == "backup").unwrap_or_else(|| panic!("{name}: no verified backup before the edit: {log:?}"));
        let sources = backup["backup"]["sources"].as_array().cloned().unwrap_or_default();
        assert!(sources.iter().any(|s| s.as_str() == Some(conf.to_str().unwrap())), "{name}: the backup covers the file: {backup}");
        assert!(Path::new(backup["backup"]["manifest"].as_str().unwrap()).is_file(), "{name}: the backup was verified");
        assert!(log.iter().any(|e| e["event"] == "approval" && e["decision"] == "run"), "{name}: no approval recorded");
    }
    // Creating a file that is not there overwrites nothing: it runs with no flag and no prompt.
    let scratch = host_scratch("188", "edit-create");
    let data = data_dir(&scratch, 10);
    let pb = write(
        tmp.path(),
        "create.yml",
        "- hosts: data\n  gather_facts: false\n  tasks:\n    - lineinfile: {path: \"{{ data_dir }}/new/one.conf\", line: a=1, create: true}\n    - blockinfile: {path: \"{{ data_dir }}/two.conf\", block: b=2, create: true}\n",
    );
    let r = Recover::new().args(["play", pb.to_str().unwrap(), "--output", "json"]).args(vars(&scratch_name(&scratch)));
    let run = r.run();
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(std::fs::read_to_string(data.join("new/one.conf")).unwrap(), "a=1\n");
    assert!(std::fs::read_to_string(data.join("two.conf")).unwrap().contains("b=2"));
    assert!(!r.run_log().iter().any(|e| e["event"] == "approval" || e["event"] == "backup"), "creating asked or backed up: {:?}", r.run_log());
}

/// A play on lab host 188 for the terminal tests: `body` (its keys after `gather_facts`) is
/// given the path of the file it writes its answers to. Returns the scratch folder, that path,
/// the playbook's folder (kept while the test runs) and the playbook.
fn terminal_play(tag: &str, body: impl Fn(&str) -> String) -> (PathBuf, PathBuf, tempfile::TempDir, PathBuf) {
    lab();
    let scratch = host_scratch("188", tag);
    let out = scratch.join("answers");
    let tmp = tempfile::tempdir().unwrap();
    let pb = write(tmp.path(), "p.yml", &format!("- hosts: \"188\"\n  gather_facts: false\n{}", body(&out.display().to_string())));
    (scratch, out, tmp, pb)
}

/// `pause` (issue 17) at a real terminal: the prompt is shown with the task's name, what is
/// typed is registered as `user_input` (hidden with `echo: false`), and the run goes on.
#[test]
fn pause_asks_at_a_real_terminal_and_registers_the_answer() {
    let (scratch, out, _tmp, pb) = terminal_play("pause", |out| {
        format!("  tasks:\n    - name: ask a word\n      pause: prompt=\"Type a word\"\n      register: p\n    - name: ask a secret\n      pause:\n        prompt: Secret\n        echo: false\n      register: q\n    - name: keep them\n      copy: dest={out} content=\"{{{{ p.user_input }}}}|{{{{ q.user_input }}}}|{{{{ q.echo }}}}\"\n")
    });
    let mut s = pty(&Recover::new().args(["play", pb.to_str().unwrap(), "-i", "inventory/lab.yml"]));
    s.expect("[ask a word]").unwrap();
    s.expect("Type a word:").unwrap();
    s.send_line("hello there").unwrap();
    s.expect("Secret (output is hidden):").unwrap();
    s.send_line("s3cret").unwrap();
    assert_eq!(exit_code(&mut s), 0);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "hello there|s3cret|False");
    let _ = std::fs::remove_dir_all(&scratch);
}

/// `git` with `force: true` over local modifications (issue 17) discards them: refused with no
/// terminal and no flag (the modification kept), with --yes run after a verified backup of the
/// checkout. A clone and a plain update ask nothing.
#[test]
fn git_force_over_local_changes_is_backed_up_and_approved_and_a_clone_does_not_ask() {
    lab();
    let scratch = host_scratch("188", "git-force");
    let s = scratch.display();
    let setup = format!(
        "set -e; export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@x GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@x; git init -q --bare -b main {s}/o.git; git init -q -b main {s}/w; cd {s}/w; echo one > f; git add f; git commit -q -m one; git push -q {s}/o.git main; chown -R ollama: {s}"
    );
    assert!(Command::new("sh").args(["-c", &setup]).status().unwrap().success());
    let tmp = tempfile::tempdir().unwrap();
    let clone = write(tmp.path(), "clone.yml", &format!("- hosts: \"188\"\n  gather_facts: false\n  tasks:\n    - git: repo={s}/o.git dest={s}/co\n"));
    let r = Recover::new().args(["play", clone.to_str().unwrap(), "-i", "inventory/lab.yml", "--output", "json"]);
    let run = r.run();
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(!r.run_log().iter().any(|e| e["event"] == "approval" || e["event"] == "backup"), "a clone asked or backed up");
    std::fs::write(scratch.join("co/f"), "mine\n").unwrap();
    let force = write(tmp.path(), "force.yml", &format!("- hosts: \"188\"\n  gather_facts: false\n  tasks:\n    - git: repo={s}/o.git dest={s}/co force=true\n"));
    let refused = Recover::new().args(["play", force.to_str().unwrap(), "-i", "inventory/lab.yml", "--output", "json"]).run();
    assert_eq!(refused.code, 4, "{}{}", refused.stdout, refused.stderr);
    assert_eq!(std::fs::read_to_string(scratch.join("co/f")).unwrap(), "mine\n", "a refused step discarded the change");
    let yes = Recover::new().args(["play", force.to_str().unwrap(), "-i", "inventory/lab.yml", "--output", "json", "--yes"]);
    let run = yes.run();
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(std::fs::read_to_string(scratch.join("co/f")).unwrap(), "one\n");
    let log = yes.run_log();
    let backup = log.iter().find(|e| e["event"] == "backup").unwrap_or_else(|| panic!("no backup: {log:?}"));
    assert!(backup["backup"]["sources"].as_array().unwrap().iter().any(|x| x.as_str() == Some(&format!("{s}/co"))), "{backup}");
    assert!(log.iter().any(|e| e["event"] == "approval" && e["decision"] == "run"));
    let _ = std::fs::remove_dir_all(&scratch);
}

/// `pip` (issue 17): installing into a virtualenv asks nothing; removing a package from it is
/// refused with no terminal and no flag (the package kept), and with --yes runs after a
/// verified backup of the virtualenv.
#[test]
fn pip_removal_backs_up_the_virtualenv_and_asks_and_an_install_does_not() {
    lab();
    let scratch = host_scratch("188", "pip");
    let s = scratch.display();
    let mk = repo().join("tests/modules/files/mkwheel.py");
    assert!(Command::new("sh").args(["-c", &format!("mkdir -p {s}/wheels && /usr/bin/python3 {} {s}/wheels rtpkg 1.0 && chown -R ollama: {s}", mk.display())]).status().unwrap().success());
    let tmp = tempfile::tempdir().unwrap();
    let play = |name: &str, task: &str| write(tmp.path(), name, &format!("- hosts: \"188\"\n  gather_facts: false\n  environment: {{PIP_NO_INDEX: \"1\", PIP_FIND_LINKS: \"{s}/wheels\"}}\n  tasks:\n    - pip: {task}\n"));
    let install = play("install.yml", &format!("name=rtpkg virtualenv={s}/venv virtualenv_command=\"/usr/bin/python3 -m venv\""));
    let r = Recover::new().args(["play", install.to_str().unwrap(), "-i", "inventory/lab.yml", "--output", "json"]);
    let run = r.run();
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(!r.run_log().iter().any(|e| e["event"] == "approval" || e["event"] == "backup"), "an install asked or backed up");
    let listed = || String::from_utf8_lossy(&Command::new(scratch.join("venv/bin/pip")).args(["list", "--format=freeze"]).output().unwrap().stdout).into_owned();
    assert!(listed().contains("rtpkg==1.0"));
    let remove = play("remove.yml", &format!("name=rtpkg state=absent virtualenv={s}/venv"));
    let refused = Recover::new().args(["play", remove.to_str().unwrap(), "-i", "inventory/lab.yml", "--output", "json"]).run();
    assert_eq!(refused.code, 4, "{}{}", refused.stdout, refused.stderr);
    assert!(listed().contains("rtpkg==1.0"), "a refused removal removed it");
    let yes = Recover::new().args(["play", remove.to_str().unwrap(), "-i", "inventory/lab.yml", "--output", "json", "--yes"]);
    let run = yes.run();
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(!listed().contains("rtpkg"));
    let log = yes.run_log();
    let backup = log.iter().find(|e| e["event"] == "backup").unwrap_or_else(|| panic!("no backup: {log:?}"));
    assert!(backup["backup"]["sources"].as_array().unwrap().iter().any(|x| x.as_str() == Some(&format!("{s}/venv"))), "{backup}");
    let _ = std::fs::remove_dir_all(&scratch);
}

/// `vars_prompt` (issue 16) at a real terminal: a hidden answer asked twice (`confirm`), a
/// visible one with a default taken on Enter; the answers are data (a `{{` stays text); with
/// `-e` a variable is not asked; with no terminal the default is taken, and a prompt with no
/// default stops the run before any host is touched.
#[test]
fn vars_prompt_asks_at_a_terminal_and_takes_defaults_and_extra_vars_without_one() {
    let (scratch, out, _tmp, pb) = terminal_play("prompt", |out| {
        format!("  vars_prompt:\n    - name: secret\n      prompt: Secret word\n      confirm: true\n    - name: color\n      prompt: Color\n      private: false\n      default: blue\n  tasks:\n    - copy: dest={out} content=\"{{{{ secret }}}}|{{{{ color }}}}\"\n")
    });
    let mut s = pty(&Recover::new().args(["play", pb.to_str().unwrap(), "-i", "inventory/lab.yml"]));
    s.expect("Secret word: ").unwrap();
    s.send_line("one{{ x }}").unwrap();
    s.expect("confirm Secret word: ").unwrap();
    s.send_line("two").unwrap();
    s.expect("DO NOT MATCH").unwrap();
    s.expect("Secret word: ").unwrap();
    s.send_line("one{{ x }}").unwrap();
    s.expect("confirm Secret word: ").unwrap();
    s.send_line("one{{ x }}").unwrap();
    s.expect("Color [blue]: ").unwrap();
    s.send_line("").unwrap();
    assert_eq!(exit_code(&mut s), 0);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "one{{ x }}|blue");
    std::fs::remove_file(&out).unwrap();
    // No terminal: -e answers one, the default the other.
    let run = Recover::new().args(["play", pb.to_str().unwrap(), "-i", "inventory/lab.yml", "-e", "secret=given"]).run();
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "given|blue");
    std::fs::remove_file(&out).unwrap();
    let run = Recover::new().args(["play", pb.to_str().unwrap(), "-i", "inventory/lab.yml"]).run();
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("vars_prompt 'secret' needs an answer") && run.stderr.contains("-e secret="), "{}", run.stderr);
    assert!(!out.exists(), "a host was touched");
    let _ = std::fs::remove_dir_all(&scratch);
}

/// `--step` (issue 16) at a real terminal: each task is asked once for all hosts; `n` skips it,
/// `y` runs it, `c` runs it and the rest without asking. Without a terminal it is refused.
#[test]
fn step_asks_before_each_task_at_a_terminal() {
    lab();
    let scratch = host_scratch("188", "step");
    let tmp = tempfile::tempdir().unwrap();
    let s = scratch.display();
    let tasks: String = ["one", "two", "three", "four"].iter().map(|n| format!("    - name: make {n}\n      file: path={s}/{n} state=touch\n")).collect();
    let pb = write(tmp.path(), "p.yml", &format!("- hosts: \"188\"\n  gather_facts: false\n  tasks:\n{tasks}"));
    let r = Recover::new().args(["play", pb.to_str().unwrap(), "-i", "inventory/lab.yml", "--step"]);
    let mut p = pty(&r);
    p.expect("Perform task: TASK: make one (N)o/(y)es/(c)ontinue: ").unwrap();
    p.send_line("n").unwrap();
    p.expect("Perform task: TASK: make two").unwrap();
    p.send_line("y").unwrap();
    p.expect("Perform task: TASK: make three").unwrap();
    p.send_line("c").unwrap();
    assert_eq!(exit_code(&mut p), 0);
    let made: Vec<bool> = ["one", "two", "three", "four"].iter().map(|n| scratch.join(n).exists()).collect();
    assert_eq!(made, [false, true, true, true]);
    let run = Recover::new().args(["play", pb.to_str().unwrap(), "-i", "inventory/lab.yml", "--step"]).run();
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("--step asks before each task and needs a terminal"), "{}", run.stderr);
    let _ = std::fs::remove_dir_all(&scratch);
}
