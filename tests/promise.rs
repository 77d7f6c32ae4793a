//! The safety promise, round two: each case a way the promise broke on the newer features
//! (backups, symlinks, saved plans and approvals, the freeze, secrets, the run log, template
//! bombs, prompts), reproduced over the real loopback lab (real sshd, real files, signals by
//! PID, prompts through a real pseudo-terminal, a second OS user), and held.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

/// A `recover` sharing one state folder (the run logs, approvals and backups it reads).
fn rec(state: &Path) -> Recover {
    Recover::new().env("RECOVER_STATE_DIR", state.to_str().unwrap())
}

fn name_of(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// `-e d=<scratch>` and the scratch folder's own backup root, as the lab host sees them.
fn vars_at(scratch: &Path) -> Vec<String> {
    vec!["-e".into(), format!("d={}", scratch.display()), "-e".into(), format!("recover_backup_root={}/backups", scratch.display())]
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir).map(|rd| rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect()).unwrap_or_default();
    v.sort();
    v
}

fn sha256_of(p: &Path) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(std::fs::read(p).unwrap()))
}

/// Entries of a .tar.gz, as `tar -tzf` lists them.
fn tar_list(archive: &str) -> Vec<String> {
    let out = Command::new("tar").args(["-tzf", archive]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}

// 1. Backups overwrite each other.
#[test]
fn backups_taken_in_one_second_never_overwrite_each_other_nor_do_restores_kept_copies() {
    lab();
    let scratch = host_scratch("188", "unique");
    for d in ["a", "b", "c", "d"] {
        write(&scratch, &format!("{d}/data/file"), &format!("content of {d}\n"));
    }
    give_to_host(&scratch);
    let tmp = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let pb = write(tmp.path(), "rm.yml", "- hosts: data\n  gather_facts: false\n  tasks:\n    - file: {path: \"{{ d }}/{{ item }}/data\", state: absent}\n      loop: [a, b, c, d]\n");
    let run = rec(state.path()).args(["play", pb.to_str().unwrap(), "--yes", "--output", "json"]).args(vars_at(&scratch)).run();
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let backups: Vec<serde_json::Value> = run.events().into_iter().filter(|e| e["event"] == "backup").collect();
    assert_eq!(backups.len(), 4, "{}", run.stdout);
    let mut archives: Vec<String> = backups.iter().map(|b| b["backup"]["archive"].as_str().unwrap().to_string()).collect();
    archives.sort();
    archives.dedup();
    assert_eq!(archives.len(), 4, "four backups, four archives: {archives:?}");
    for b in &backups {
        let a = PathBuf::from(b["backup"]["archive"].as_str().unwrap());
        assert_eq!(sha256_of(&a), b["backup"]["sha256"].as_str().unwrap(), "{}", a.display());
        assert!(Path::new(&format!("{}.manifest.json", a.display())).exists());
        let which = b["backup"]["sources"][0].as_str().unwrap().to_string();
        assert!(tar_list(a.to_str().unwrap()).iter().any(|e| e.ends_with("data/file") && which.ends_with("/data")), "{a:?}");
    }
    // Restored three times in a row (the last two in the same second): each restore's kept
    // copy and its safety backup are its own.
    let id = backups[0]["backup"]["id"].as_str().unwrap().to_string();
    let source = PathBuf::from(backups[0]["backup"]["sources"][0].as_str().unwrap());
    let letter = name_of(source.parent().unwrap());
    let mut safety = Vec::new();
    for _ in 0..3 {
        let r = rec(state.path()).args(["backups", "restore", &id, "--yes"]).run();
        assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
        safety.extend(r.stdout.lines().filter_map(|l| l.trim().strip_prefix("backed up the current state: ")).map(|l| l.split(" (sha256").next().unwrap().to_string()));
    }
    let kept: Vec<String> = files_in(source.parent().unwrap()).into_iter().filter(|n| n.starts_with("data.before-restore")).collect();
    assert_eq!(kept.len(), 2, "two restores over an existing path keep two copies: {kept:?}");
    for k in &kept {
        assert_eq!(std::fs::read_to_string(source.parent().unwrap().join(k).join("file")).unwrap(), format!("content of {letter}\n"));
    }
    safety.sort();
    safety.dedup();
    assert_eq!(safety.len(), 2, "two safety backups of their own: {safety:?}");
    for a in &safety {
        assert!(Path::new(a).exists(), "{a}");
    }
}

// 2. A symlink is backed up as a link while the data behind it is deleted; a backup root
//    that is a symlink into the folder being deleted.
#[test]
fn what_a_step_reaches_through_a_symlink_is_what_gets_backed_up() {
    lab();
    let scratch = host_scratch("188", "symlink");
    for f in ["one", "two", "three"] {
        write(&scratch, &format!("elsewhere/dir/{f}"), &format!("{f}\n"));
    }
    std::os::unix::fs::symlink(scratch.join("elsewhere/dir"), scratch.join("data")).unwrap();
    give_to_host(&scratch);
    let tmp = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let pb = write(
        tmp.path(),
        "wipe.yml",
        "- hosts: data\n  gather_facts: false\n  tasks:\n    - shell: rm -rf {{ d }}/data/*\n      destructive: {reason: wipe the data, paths: [\"{{ d }}/data\"], tier: STANDARD_HITL}\n",
    );
    let run = rec(state.path()).args(["play", pb.to_str().unwrap(), "--yes", "--output", "json"]).args(vars_at(&scratch)).run();
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(files_in(&scratch.join("elsewhere/dir")).is_empty(), "the step ran");
    let b = run.events().into_iter().find(|e| e["event"] == "backup").expect("a backup");
    assert_eq!(b["backup"]["sources"][0], scratch.join("elsewhere/dir").display().to_string(), "backed up as what the link points to");
    let listed = tar_list(b["backup"]["archive"].as_str().unwrap());
    for f in ["one", "two", "three"] {
        assert!(listed.iter().any(|e| e.ends_with(&format!("elsewhere/dir/{f}"))), "{f} is in the backup: {listed:?}");
    }
    // The backup brings the data back.
    let r = rec(state.path()).args(["backups", "restore", b["backup"]["id"].as_str().unwrap(), "--yes"]).run();
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(std::fs::read_to_string(scratch.join("elsewhere/dir/two")).unwrap(), "two\n");

    // A backup root that is a symlink into the folder the step deletes: refused, nothing changed.
    write(&scratch, "victim/inner/keep", "keep\n");
    std::os::unix::fs::symlink(scratch.join("victim/inner"), scratch.join("broot")).unwrap();
    give_to_host(&scratch);
    let pb = write(tmp.path(), "victim.yml", "- hosts: data\n  gather_facts: false\n  tasks:\n    - file: {path: \"{{ d }}/victim\", state: absent}\n");
    let run = rec(state.path())
        .args(["play", pb.to_str().unwrap(), "--yes", "-e", &format!("d={}", scratch.display()), "-e", &format!("recover_backup_root={}/broot", scratch.display())])
        .run();
    assert_eq!(run.code, 4, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("lies inside") && run.stdout.contains("as the host resolves it"), "{}", run.stdout);
    assert_eq!(std::fs::read_to_string(scratch.join("victim/inner/keep")).unwrap(), "keep\n");
    assert_eq!(files_in(&scratch.join("victim/inner")), vec!["keep"], "no archive was written into the folder");
}

// 3. The stale-plan check is blind behind a symlink.
#[test]
fn a_plan_notices_a_file_added_behind_a_linked_folder() {
    lab();
    let scratch = host_scratch("188", "planlink");
    write(&scratch, "elsewhere/dir/one", "one\n");
    std::os::unix::fs::symlink(scratch.join("elsewhere/dir"), scratch.join("data")).unwrap();
    give_to_host(&scratch);
    let tmp = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let pb = write(
        tmp.path(),
        "wipe.yml",
        "- hosts: data\n  gather_facts: false\n  tasks:\n    - shell: rm -rf {{ d }}/data/*\n      destructive: {reason: wipe, paths: [\"{{ d }}/data\"], tier: STANDARD_HITL}\n",
    );
    let plan = tmp.path().join("p.plan");
    let made = rec(state.path()).args(["play", pb.to_str().unwrap(), "--dry-run", "--save-plan", plan.to_str().unwrap()]).args(vars_at(&scratch)).run();
    assert_eq!(made.code, 0, "{}{}", made.stdout, made.stderr);
    assert_eq!(rec(state.path()).args(["approve", plan.to_str().unwrap(), "--yes"]).run().code, 0);
    // After the approval, a new file behind the link.
    write(&scratch, "elsewhere/dir/added-later", "precious\n");
    give_to_host(&scratch);
    let r = rec(state.path()).args(["apply", plan.to_str().unwrap(), "--output", "json"]).run();
    assert_eq!(r.code, 4, "{}{}", r.stdout, r.stderr);
    let why = r.events().into_iter().find(|e| e["event"] == "plan_stale").map(|e| e["differences"].to_string()).unwrap_or_default();
    assert!(why.contains("added-later was added"), "{why}\n{}{}", r.stdout, r.stderr);
    assert_eq!(std::fs::read_to_string(scratch.join("elsewhere/dir/added-later")).unwrap(), "precious\n");
}

// 4. any_errors_fatal and max_fail_percentage are ignored by apply.
#[test]
fn apply_stops_every_host_when_one_is_stale_and_the_play_couples_them() {
    lab();
    let s188 = host_scratch("188", "coupled");
    let name = name_of(&s188);
    let s110 = lab_root().join("110").join(&name);
    std::fs::create_dir_all(&s110).unwrap();
    for s in [&s188, &s110] {
        write(s, "conf", "old\n");
        give_to_host(s);
    }
    let tmp = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let play = |fatal: &str| {
        format!(
            "- hosts: data:registry\n  gather_facts: false\n  {fatal}\n  tasks:\n    - copy: {{content: \"new\\n\", dest: \"{{{{ host_root }}}}/{name}/conf\"}}\n"
        )
    };
    let vars = ["-e".to_string(), format!("recover_backup_root={{{{ host_root }}}}/{name}/backups")];
    for (file, fatal) in [("fatal.yml", "any_errors_fatal: true"), ("pct.yml", "max_fail_percentage: 0")] {
        let pb = write(tmp.path(), file, &play(fatal));
        let plan = tmp.path().join(format!("{file}.plan"));
        let made = rec(state.path()).args(["play", pb.to_str().unwrap(), "--dry-run", "--save-plan", plan.to_str().unwrap()]).args(&vars).run();
        assert_eq!(made.code, 0, "{}{}", made.stdout, made.stderr);
        assert_eq!(rec(state.path()).args(["approve", plan.to_str().unwrap(), "--yes"]).run().code, 0);
        // 110 changes after the plan: it is stale; 188 is not.
        write(&s110, "conf", "edited by hand\n");
        give_to_host(&s110);
        let r = rec(state.path()).args(["apply", plan.to_str().unwrap()]).run();
        assert_eq!(r.code, 4, "{file}: {}{}", r.stdout, r.stderr);
        assert!(r.stderr.contains("no host runs its part"), "{file}: {}", r.stderr);
        assert_eq!(std::fs::read_to_string(s188.join("conf")).unwrap(), "old\n", "{file}: 188 ran its half of a coupled change");
        write(&s110, "conf", "old\n");
        give_to_host(&s110);
    }
}

// 5. The plan's digests miss inputs: an import in a subfolder, host_vars, the connection.
#[test]
fn a_plan_is_stale_when_any_file_the_load_read_or_a_hosts_connection_changed() {
    lab();
    let scratch = host_scratch("188", "inputs");
    write(&scratch, "conf", "old\n");
    give_to_host(&scratch);
    let tmp = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let inv = lab_inventory_dir(tmp.path());
    let inv_text = std::fs::read_to_string(&inv).unwrap().replace("    ansible_port: 2222\n", "    ansible_port: \"{{ lookup('env', 'PLAN_TEST_PORT') | default(2222, true) }}\"\n");
    std::fs::write(&inv, inv_text).unwrap();
    let host_vars = write(&inv.parent().unwrap().join("host_vars"), "188.yml", "conf_text: \"new\\n\"\n");
    write(tmp.path(), "site.yml", "- import_playbook: sub/inner.yml\n");
    let inner = write(tmp.path(), "sub/inner.yml", "# v1\n- hosts: data\n  gather_facts: false\n  tasks:\n    - copy: {content: \"{{ conf_text }}\", dest: \"{{ d }}/conf\"}\n");
    let plan = tmp.path().join("p.plan");
    let base = |r: Recover| r.args(["-i", inv.to_str().unwrap()]);
    let made = base(rec(state.path())).args(["play", tmp.path().join("site.yml").to_str().unwrap(), "--dry-run", "--save-plan", plan.to_str().unwrap()]).args(vars_at(&scratch)).run();
    assert_eq!(made.code, 0, "{}{}", made.stdout, made.stderr);
    let pristine = tmp.path().join("pristine.plan");
    std::fs::copy(&plan, &pristine).unwrap();
    let approved = |n: &str| {
        let p = tmp.path().join(n);
        std::fs::copy(&pristine, &p).unwrap();
        assert_eq!(rec(state.path()).args(["approve", p.to_str().unwrap(), "--yes"]).run().code, 0);
        p
    };
    let edits: Vec<(&str, PathBuf, String)> = vec![
        ("the imported playbook in a subfolder", inner.clone(), std::fs::read_to_string(&inner).unwrap().replace("# v1", "# v2")),
        ("host_vars", host_vars.clone(), "conf_text: \"other\\n\"\n".to_string()),
    ];
    for (what, file, edited) in edits {
        let p = approved(&format!("{}.plan", name_of(&file)));
        let was = std::fs::read_to_string(&file).unwrap();
        std::fs::write(&file, edited).unwrap();
        let r = rec(state.path()).args(["apply", p.to_str().unwrap()]).run();
        assert_eq!(r.code, 4, "{what}: {}{}", r.stdout, r.stderr);
        assert!(r.stderr.contains("stale plan") && r.stderr.contains(&name_of(&file)), "{what}: {}", r.stderr);
        assert_eq!(std::fs::read_to_string(scratch.join("conf")).unwrap(), "old\n", "{what}: it ran");
        std::fs::write(&file, was).unwrap();
    }
    // A file added beside the inventory's host_vars (a new group's vars) is an input too.
    let p = approved("added.plan");
    write(&inv.parent().unwrap().join("host_vars/188"), "more.yml", "extra: 1\n");
    let r = rec(state.path()).args(["apply", p.to_str().unwrap()]).run();
    assert_eq!(r.code, 4, "{}{}", r.stdout, r.stderr);
    std::fs::remove_dir_all(inv.parent().unwrap().join("host_vars/188")).unwrap();
    // The same files, another way to reach the host: refused by its connection.
    let p = approved("conn.plan");
    let r = rec(state.path()).env("PLAN_TEST_PORT", "2223").args(["apply", p.to_str().unwrap()]).run();
    assert_eq!(r.code, 4, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("host 188 would be reached as") && r.stderr.contains("2223"), "{}", r.stderr);
    // Unchanged: it applies, once.
    let p = approved("ok.plan");
    let r = rec(state.path()).args(["apply", p.to_str().unwrap()]).run();
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(std::fs::read_to_string(scratch.join("conf")).unwrap(), "new\n");
}

// 6 and 7. An approval replayed; one person satisfying the two-person rule.
#[test]
fn a_plan_applies_once_and_two_approvals_need_two_people() {
    lab();
    let scratch = host_scratch("188", "twoperson");
    write(&scratch, "db/state", "clean\n");
    give_to_host(&scratch);
    let tmp = tempfile::tempdir().unwrap();
    // A shared folder every operator can use (a group's, not world-writable), and a plan
    // folder the second OS user can write.
    let shared = tempfile::tempdir().unwrap();
    assert!(Command::new("chown").args(["root:wooo", shared.path().to_str().unwrap()]).status().unwrap().success());
    assert!(Command::new("chmod").args(["2775", shared.path().to_str().unwrap()]).status().unwrap().success());
    let plans = tempfile::tempdir().unwrap();
    assert!(Command::new("chown").args(["root:wooo", plans.path().to_str().unwrap()]).status().unwrap().success());
    assert!(Command::new("chmod").args(["0775", plans.path().to_str().unwrap()]).status().unwrap().success());
    let state = tempfile::tempdir().unwrap();
    let pb = write(
        tmp.path(),
        "block.yml",
        "- hosts: data\n  gather_facts: false\n  tasks:\n    - shell: printf reset > {{ d }}/db/state\n      destructive: {paths: [\"{{ d }}/db\"], tier: BLOCK}\n",
    );
    let me = |r: Recover| r.env("RECOVER_SHARED_DIR", shared.path().to_str().unwrap()).env("RECOVER_PLAN_TWO_PERSON", "1");
    let plan = plans.path().join("p.plan");
    let made = me(rec(state.path())).args(["play", pb.to_str().unwrap(), "--dry-run", "--save-plan", plan.to_str().unwrap()]).args(vars_at(&scratch)).run();
    assert_eq!(made.code, 0, "{}{}", made.stdout, made.stderr);

    // A name with terminal control codes is refused; --expires past the maximum is refused.
    let bad = me(rec(state.path())).args(["approve", plan.to_str().unwrap(), "--as", "mallory\r\x1b[2Kcommander", "--yes"]).run();
    assert_eq!(bad.code, 1, "{}{}", bad.stdout, bad.stderr);
    assert!(bad.stderr.contains("not an approver name") && !bad.stderr.contains('\x1b'), "{}", bad.stderr);
    let long = me(rec(state.path())).args(["approve", plan.to_str().unwrap(), "--as", "alice", "--expires", "48h", "--yes"]).run();
    assert_eq!(long.code, 1, "{}{}", long.stdout, long.stderr);
    assert!(long.stderr.contains("longest approval"), "{}", long.stderr);

    // alice, then Alice, then bob: all the same OS user (root): one person.
    for who in ["alice", "Alice", "bob"] {
        let r = me(rec(state.path())).args(["approve", plan.to_str().unwrap(), "--as", who, "--yes"]).run();
        assert_eq!(r.code, 0, "{who}: {}{}", r.stdout, r.stderr);
    }
    let one = me(rec(state.path())).args(["apply", plan.to_str().unwrap()]).run();
    assert_eq!(one.code, 4, "{}{}", one.stdout, one.stderr);
    assert!(one.stderr.contains("needs 2 approver(s)") && one.stderr.contains("has 1"), "{}", one.stderr);
    assert_eq!(std::fs::read_to_string(scratch.join("db/state")).unwrap(), "clean\n");

    // A second OS user (the lab's wooo), with a state folder of its own: two people.
    assert!(Command::new("chmod").args(["0666", plan.to_str().unwrap()]).status().unwrap().success());
    let wooo_state = tempfile::tempdir().unwrap();
    assert!(Command::new("chown").args(["wooo:", wooo_state.path().to_str().unwrap()]).status().unwrap().success());
    let out = Command::new("runuser")
        .args(["-u", "wooo", "--", "env"])
        .arg(format!("RECOVER_STATE_DIR={}", wooo_state.path().display()))
        .arg(format!("RECOVER_SHARED_DIR={}", shared.path().display()))
        .args(["NO_COLOR=1", env!("CARGO_BIN_EXE_recover"), "approve", plan.to_str().unwrap(), "--as", "carol", "--yes"])
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let two = me(rec(state.path())).args(["apply", plan.to_str().unwrap()]).run();
    assert_eq!(two.code, 0, "{}{}", two.stdout, two.stderr);
    assert_eq!(std::fs::read_to_string(scratch.join("db/state")).unwrap(), "reset");

    // The same approved plan again: refused, naming the first apply.
    write(&scratch, "db/state", "clean\n");
    give_to_host(&scratch);
    for state_dir in [state.path(), tempfile::tempdir().unwrap().path()] {
        let again = me(rec(state_dir)).args(["apply", plan.to_str().unwrap()]).run();
        assert_eq!(again.code, 4, "{}{}", again.stdout, again.stderr);
        assert!(again.stderr.contains("applied already") && again.stderr.contains("run "), "{}", again.stderr);
    }
    assert_eq!(std::fs::read_to_string(scratch.join("db/state")).unwrap(), "clean\n");
}

// 7. With approver keys registered in recover.yml, an approval is a signature by the
//    approver's own key.
#[test]
fn registered_approver_keys_sign_approvals_and_a_wrong_key_does_not_count() {
    lab();
    let scratch = host_scratch("188", "keys");
    write(&scratch, "conf", "old\n");
    give_to_host(&scratch);
    let project = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let mut pubs = Vec::new();
    for who in ["alice", "bob", "mallory"] {
        let k = keys.path().join(who);
        assert!(Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-C", who, "-f", k.to_str().unwrap()]).status().unwrap().success());
        pubs.push(std::fs::read_to_string(format!("{}.pub", k.display())).unwrap().trim().to_string());
    }
    std::fs::copy(repo().join("inventory/lab.yml"), project.path().join("lab.yml")).unwrap();
    write(project.path(), "recover.yml", &format!("inventory: lab.yml\nplan_two_person: true\napprovers:\n  alice: \"{}\"\n  bob: \"{}\"\n", pubs[0], pubs[1]));
    let pb = write(project.path(), "edit.yml", "- hosts: data\n  gather_facts: false\n  tasks:\n    - copy: {content: \"new\\n\", dest: \"{{ d }}/conf\"}\n      destructive: {tier: BLOCK}\n");
    let state = tempfile::tempdir().unwrap();
    let inp = |r: Recover| -> Recover {
        let mut c = r;
        c = c.env("RECOVER_SHARED_DIR", state.path().to_str().unwrap());
        c
    };
    let in_project = |args: &[&str]| -> Run {
        let r = inp(rec(state.path())).args(args);
        let mut cmd = r.command();
        cmd.current_dir(project.path()).stdin(std::process::Stdio::null());
        let out = cmd.output().unwrap();
        Run { code: out.status.code().unwrap_or(-1), stdout: String::from_utf8_lossy(&out.stdout).into_owned(), stderr: String::from_utf8_lossy(&out.stderr).into_owned() }
    };
    let plan = project.path().join("p.plan");
    let mut dry = vec!["play", pb.to_str().unwrap(), "--dry-run", "--save-plan", plan.to_str().unwrap()];
    let v = vars_at(&scratch);
    dry.extend(v.iter().map(String::as_str));
    let made = in_project(&dry);
    assert_eq!(made.code, 0, "{}{}", made.stdout, made.stderr);
    let key = |who: &str| keys.path().join(who).display().to_string();
    // mallory is not registered; bob's name with mallory's key does not verify.
    let r = in_project(&["approve", plan.to_str().unwrap(), "--as", "mallory", "--key", &key("mallory"), "--yes"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let r = in_project(&["approve", plan.to_str().unwrap(), "--as", "bob", "--key", &key("mallory"), "--yes"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("does not match bob's registered key"), "{}", r.stderr);
    // alice signs: one of two.
    let r = in_project(&["approve", plan.to_str().unwrap(), "--as", "alice", "--key", &key("alice"), "--yes"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("key:alice") && r.stdout.contains("1 of 2"), "{}", r.stdout);
    let r = in_project(&["apply", plan.to_str().unwrap()]);
    assert_eq!(r.code, 4, "{}{}", r.stdout, r.stderr);
    // bob signs with his own key: two people, applied.
    let r = in_project(&["approve", plan.to_str().unwrap(), "--as", "bob", "--key", &key("bob"), "--yes"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let r = in_project(&["apply", plan.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(std::fs::read_to_string(scratch.join("conf")).unwrap(), "new\n");
}

// 8. Names and host text spoof the terminal.
#[test]
fn text_from_a_host_a_file_or_a_user_reaches_the_terminal_escaped() {
    lab();
    let scratch = host_scratch("188", "escape");
    // The old content of a file the step overwrites: cursor-up and erase-screen codes.
    write(&scratch, "conf", "line one\n\x1b[8A\x1b[Jfake: nothing to see\n");
    give_to_host(&scratch);
    let tmp = tempfile::tempdir().unwrap();
    let pb = write(
        tmp.path(),
        "spoof.yml",
        "- hosts: data\n  gather_facts: false\n  tasks:\n    - command: printf 'evil\\r\\033[2Kok'\n      register: out\n      read_only: true\n    - name: \"step {{ out.stdout }}\"\n      copy: {content: \"new\\n\", dest: \"{{ d }}/conf\"}\n",
    );
    let run = Recover::new().args(["play", pb.to_str().unwrap(), "--yes", "--diff"]).args(vars_at(&scratch)).run();
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(!run.stdout.contains('\x1b') && !run.stdout.contains('\r'), "a control character reached the terminal:\n{:?}", run.stdout);
    assert!(run.stdout.contains("\\x1b[8A\\x1b[J"), "the diff shows the codes escaped:\n{}", run.stdout);
    assert!(run.stdout.contains("step evil\\r\\x1b[2Kok"), "the task name shows the output escaped:\n{}", run.stdout);
    // history and the logbook, too.
    let book = tmp.path().join("LOGBOOK.md");
    let r = Recover::new().args(["play", pb.to_str().unwrap(), "--yes", "--logbook", book.to_str().unwrap()]).args(vars_at(&scratch)).run();
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(!std::fs::read_to_string(&book).unwrap().contains('\x1b'));
}

// 9. The freeze fails open.
/// A copy of the lab inventory with a baseline whose automation gate is one SSH probe (green
/// on the lab), so `recover gate` can record it green.
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
fn the_freeze_fails_closed_and_reaches_every_automation_run_from_the_hosts() {
    lab();
    let scratch = host_scratch("188", "freeze");
    let tmp = tempfile::tempdir().unwrap();
    let inv = gated_inventory(tmp.path());
    let inv = inv.to_str().unwrap().to_string();
    // An AUTO step (the baseline classes node-exporter AUTO).
    let pb = write(
        tmp.path(),
        "auto.yml",
        "- hosts: data\n  gather_facts: false\n  tasks:\n    - name: Restart the exporter\n      shell: printf restarted > {{ d }}/exporter\n      destructive: {tier: AUTO, reason: restarts a stateless exporter, services: [node-exporter]}\n",
    );
    let suffix = format!("-freeze-{}", std::process::id());
    let with = |shared: &Path| Recover::new().env("RECOVER_SHARED_DIR", shared.to_str().unwrap()).env("RECOVER_LAB_LOCK_SUFFIX", &suffix).env("RECOVER_STATE_DIR", tmp.path().to_str().unwrap());
    let gate = |shared: &Path| {
        let g = with(shared).args(["gate", "-i", &inv]).run();
        assert_eq!(g.code, 0, "{}{}", g.stdout, g.stderr);
    };
    let auto = |shared: &Path| with(shared).args(["play", pb.to_str().unwrap(), "--automation", "-i", &inv]).args(vars_at(&scratch)).run();
    let ran = || scratch.join("exporter").exists();
    // Not frozen, gate green: the AUTO step runs (so what refuses below is the freeze).
    let shared = tempfile::tempdir().unwrap();
    gate(shared.path());
    let r = auto(shared.path());
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(ran());
    std::fs::remove_file(scratch.join("exporter")).unwrap();
    // An empty or partial freeze record is a freeze.
    for text in ["", "{\"reason\": \"half"] {
        std::fs::write(shared.path().join("freeze.json"), text).unwrap();
        let r = auto(shared.path());
        assert_eq!(r.code, 4, "{text:?}: {}{}", r.stdout, r.stderr);
        assert!(r.stdout.contains("cannot be parsed"), "{}{}", r.stdout, r.stderr);
        assert!(!ran());
        let st = with(shared.path()).args(["status"]).run();
        assert!(st.stdout.contains("FROZEN"), "{}", st.stdout);
    }
    // A world-writable shared folder: any local user could lift a freeze; refused.
    let open = tempfile::tempdir().unwrap();
    gate(open.path());
    assert!(Command::new("chmod").args(["0777", open.path().to_str().unwrap()]).status().unwrap().success());
    let r = auto(open.path());
    assert_eq!(r.code, 4, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("world-writable"), "{}{}", r.stdout, r.stderr);
    assert!(!ran());
    // Written under umask 077, the record is still readable by another operator.
    let shared = tempfile::tempdir().unwrap();
    assert!(Command::new("chmod").args(["0755", shared.path().to_str().unwrap()]).status().unwrap().success());
    let mut f = with(shared.path()).args(["freeze", "--reason", "drill", "-i", &inv, "-l", "188"]).command();
    unsafe {
        use std::os::unix::process::CommandExt;
        f.pre_exec(|| {
            libc_umask(0o077);
            Ok(())
        });
    }
    let out = f.output().unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let cat = Command::new("runuser").args(["-u", "wooo", "--", "cat"]).arg(shared.path().join("freeze.json")).output().unwrap();
    assert!(cat.status.success() && String::from_utf8_lossy(&cat.stdout).contains("drill"), "another operator cannot read the freeze");
    // The freeze is on the host too: an --automation run from another machine (a shared folder
    // of its own, gate green, no freeze in it) reads it with the lock, and is refused.
    let host_file = lab_root().join("188").join(format!("var/lib/recover{suffix}/freeze.json"));
    assert!(std::fs::read_to_string(&host_file).unwrap().contains("drill"));
    let elsewhere = tempfile::tempdir().unwrap();
    gate(elsewhere.path());
    let r = auto(elsewhere.path());
    assert_eq!(r.code, 4, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("frozen on this host") && r.stdout.contains("drill"), "{}", r.stdout);
    assert!(!ran());
    // thaw lifts it on the host as well.
    let t = with(shared.path()).args(["thaw", "-i", &inv, "-l", "188"]).run();
    assert_eq!(t.code, 0, "{}{}", t.stdout, t.stderr);
    assert!(!host_file.exists());
    let r = auto(elsewhere.path());
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(ran());
}

fn libc_umask(mask: u32) {
    extern "C" {
        fn umask(mask: u32) -> u32;
    }
    unsafe {
        umask(mask);
    }
}

// 10. Secrets leave through side doors.
#[test]
fn secrets_stay_out_of_ps_dry_runs_plans_logs_and_inventory_output() {
    lab();
    let scratch = host_scratch("188", "secrets");
    let tmp = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let pw = tmp.path().join("vault-pass");
    std::fs::write(&pw, "vault-test-pw\n").unwrap();
    let enc = Command::new(env!("CARGO_BIN_EXE_recover")).args(["vault", "encrypt-string", "--vault-password-file", pw.to_str().unwrap(), "V4ult-Pl41ntext-42", "--name", "vaulted"]).output().unwrap();
    assert!(enc.status.success(), "{}", String::from_utf8_lossy(&enc.stderr));
    let vaulted = String::from_utf8_lossy(&enc.stdout).into_owned();
    write(tmp.path(), "vars.yml", &vaulted);
    let pb = write(
        tmp.path(),
        "s.yml",
        &format!(
            "- hosts: data\n  gather_facts: false\n  vars_files: [vars.yml]\n  vars:\n    db_password: Db-Pa55word-77\n    derived: \"{{{{ ('app:' ~ vaulted) | b64encode }}}}\"\n  tasks:\n    - copy: {{content: \"pw={{{{ vaulted }}}}\\n\", dest: \"{{{{ d }}}}/secret.conf\"}}\n    - shell: \"sleep 3; echo {{{{ db_password }}}} > {{{{ d }}}}/slow\"\n    - command: echo {{{{ vaulted }}}}\n      no_log: true\n    - command: \"echo {{{{ derived }}}}\"\n    - debug: {{msg: \"{{{{ derived }}}}\"}}\n"
        ),
    );
    let v = vars_at(&scratch);
    // While the slow step runs, no process on the host shows a secret in its command line.
    let mut child = rec(state.path()).args(["play", pb.to_str().unwrap(), "--yes", "--vault-password-file", pw.to_str().unwrap(), "-v"]).args(&v).command();
    child.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let child = child.spawn().unwrap();
    let mut seen = Vec::new();
    for _ in 0..40 {
        std::thread::sleep(Duration::from_millis(100));
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            if let Ok(c) = std::fs::read(e.path().join("cmdline")) {
                let c = String::from_utf8_lossy(&c).replace('\0', " ");
                if c.contains("Db-Pa55word-77") || c.contains("V4ult-Pl41ntext-42") {
                    seen.push(c);
                }
            }
        }
    }
    let out = child.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{said}");
    assert!(seen.is_empty(), "a secret was on a command line: {seen:?}");
    let derived = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode("app:V4ult-Pl41ntext-42")
    };
    let leaks = |text: &str| ["Db-Pa55word-77", "V4ult-Pl41ntext-42", derived.as_str()].into_iter().filter(|s| text.contains(*s)).map(str::to_string).collect::<Vec<_>>();
    assert!(leaks(&said).is_empty(), "output: {:?}\n{said}", leaks(&said));
    let logs: String = std::fs::read_dir(state.path().join("runs")).unwrap().flatten().map(|e| std::fs::read_to_string(e.path()).unwrap()).collect();
    assert!(leaks(&logs).is_empty(), "run log: {:?}", leaks(&logs));
    assert_eq!(std::fs::read_to_string(scratch.join("secret.conf")).unwrap(), "pw=V4ult-Pl41ntext-42\n", "the host still gets the value");
    // A dry-run (text and JSON) and a saved plan.
    std::fs::remove_file(scratch.join("secret.conf")).unwrap();
    for fmt in ["text", "json"] {
        let plan = tmp.path().join(format!("{fmt}.plan"));
        let r = rec(state.path()).args(["play", pb.to_str().unwrap(), "--dry-run", "--diff", "--output", fmt, "--save-plan", plan.to_str().unwrap(), "--vault-password-file", pw.to_str().unwrap()]).args(&v).run();
        assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
        assert!(leaks(&format!("{}{}", r.stdout, r.stderr)).is_empty(), "{fmt} dry-run: {}", r.stdout);
        let text = std::fs::read_to_string(&plan).unwrap();
        assert!(leaks(&text).is_empty(), "saved plan holds {:?}", leaks(&text));
    }
    // A secret -e is refused for a plan (it could not be derived again at apply).
    let r = rec(state.path()).args(["play", pb.to_str().unwrap(), "--dry-run", "--save-plan", tmp.path().join("e.plan").to_str().unwrap(), "--vault-password-file", pw.to_str().unwrap(), "-e", "api_token=T0ken-99"]).args(&v).run();
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    // ansible_become_pass (the documented alias) is masked.
    let r = Recover::new().args(["play", pb.to_str().unwrap(), "--dry-run", "--vault-password-file", pw.to_str().unwrap(), "-e", "ansible_become_pass=B3come-Pass-55", "-v"]).args(&v).run();
    assert!(!format!("{}{}", r.stdout, r.stderr).contains("B3come-Pass-55"));
    // inventory --list keeps an inline !vault value encrypted, as ansible-inventory does.
    let inv = write(tmp.path(), "inv.yml", &format!("all:\n  hosts:\n    h1:\n{}", vaulted.lines().map(|l| format!("      {l}\n")).collect::<String>()));
    let r = Recover::new().args(["inventory", "-i", inv.to_str().unwrap(), "--list", "--vault-password-file", pw.to_str().unwrap()]).run();
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("__ansible_vault") && !r.stdout.contains("V4ult-Pl41ntext-42"), "{}", r.stdout);
}

// 11. SIGHUP during vault edit leaves the plaintext.
#[test]
fn sighup_during_vault_edit_leaves_no_plaintext() {
    let tmp = tempfile::tempdir().unwrap();
    let pw = write(tmp.path(), "pass", "edit-pw\n");
    let file = tmp.path().join("secret.yml");
    std::fs::write(&file, "top: s3cret-plain\n").unwrap();
    let c = Command::new(env!("CARGO_BIN_EXE_recover")).args(["vault", "encrypt", "--vault-password-file", pw.to_str().unwrap(), file.to_str().unwrap()]).output().unwrap();
    assert!(c.status.success(), "{}", String::from_utf8_lossy(&c.stderr));
    assert!(!std::fs::read_to_string(&file).unwrap().contains("s3cret-plain"));
    // An editor that says where the plaintext is, then waits.
    let marker = tmp.path().join("editing");
    let editor = write(tmp.path(), "editor.sh", &format!("#!/bin/sh\necho \"$1\" > {}\nexec sleep 30\n", marker.display()));
    assert!(Command::new("chmod").args(["+x", editor.to_str().unwrap()]).status().unwrap().success());
    let mut child = Command::new(env!("CARGO_BIN_EXE_recover"))
        .args(["vault", "edit", "--vault-password-file", pw.to_str().unwrap(), file.to_str().unwrap()])
        .env("EDITOR", editor.to_str().unwrap())
        .spawn()
        .unwrap();
    let mut plaintext = String::new();
    for _ in 0..100 {
        if let Ok(p) = std::fs::read_to_string(&marker) {
            plaintext = p.trim().to_string();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!plaintext.is_empty() && Path::new(&plaintext).exists(), "the editor never started");
    assert!(plaintext.starts_with("/dev/shm/"), "the plaintext is in memory-backed storage: {plaintext}");
    assert!(std::fs::read_to_string(&plaintext).unwrap().contains("s3cret-plain"));
    assert!(Command::new("kill").args(["-HUP", &child.id().to_string()]).status().unwrap().success());
    let st = child.wait().unwrap();
    assert_eq!(st.code(), Some(129), "{st:?}");
    assert!(!Path::new(&plaintext).exists(), "the plaintext was left at {plaintext}");
    assert!(!Path::new(&plaintext).parent().unwrap().exists());
}

// 12. An edited or truncated run log passes history --verify.
#[test]
fn a_run_log_stripped_of_its_chain_or_cut_short_fails_verify() {
    let state = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pb = write(dir.path(), "pb.yml", "- hosts: localhost\n  connection: local\n  gather_facts: false\n  tasks:\n    - debug: {msg: one}\n    - debug: {msg: two}\n    - debug: {msg: three}\n");
    let run = || {
        let r = rec(state.path()).args(["play", pb.to_str().unwrap(), "-i", "localhost,"]).run();
        assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    };
    let verify = || rec(state.path()).args(["history", "--verify"]).run();
    for _ in 0..3 {
        run();
    }
    assert_eq!(verify().code, 0);
    let logs = || {
        let mut l: Vec<PathBuf> = std::fs::read_dir(state.path().join("runs")).unwrap().flatten().map(|e| e.path()).collect();
        l.sort();
        l
    };
    // A line dropped and its `prev` fields stripped (so it reads as written before chaining).
    let middle = logs()[1].clone();
    let text = std::fs::read_to_string(&middle).unwrap();
    let stripped: Vec<String> = text
        .lines()
        .skip(1)
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            for k in ["prev", "prev_log", "prev_line"] {
                v.as_object_mut().unwrap().remove(k);
            }
            v.to_string()
        })
        .collect();
    std::fs::write(&middle, stripped.join("\n") + "\n").unwrap();
    let bad = verify();
    assert_eq!(bad.code, 1, "{}", bad.stdout);
    assert!(!bad.stdout.contains("the chain holds"), "{}", bad.stdout);
    std::fs::write(&middle, &text).unwrap();
    assert_eq!(verify().code, 0);
    // The newest log cut to two lines, then another run: the chain breaks, it is not laundered.
    let newest = logs()[2].clone();
    let text = std::fs::read_to_string(&newest).unwrap();
    let cut: Vec<&str> = text.lines().take(2).collect();
    std::fs::write(&newest, cut.join("\n") + "\n").unwrap();
    let bad = verify();
    assert_eq!(bad.code, 1, "before the next run: {}", bad.stdout);
    assert!(bad.stdout.contains("cut short"), "{}", bad.stdout);
    run();
    let bad = verify();
    assert_eq!(bad.code, 1, "after the next run: {}", bad.stdout);
    assert!(bad.stdout.contains(&name_of(&newest)), "{}", bad.stdout);
    // The newest log removed: broken too.
    std::fs::write(&newest, &text).unwrap();
    let last = logs().last().unwrap().clone();
    std::fs::remove_file(&last).unwrap();
    assert_eq!(verify().code, 1);
}

// 13. Template filters bypass the engine's limits.
#[test]
fn collection_building_filters_and_lookups_are_bounded_with_an_error_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    for (name, expr) in [("perm", "range(12) | permutations | list | length"), ("product", "range(2000) | product(range(2000)) | list | length"), ("seq", "lookup('sequence', 'end=300000000') | length")] {
        let pb = write(dir.path(), &format!("{name}.yml"), &format!("- hosts: localhost\n  connection: local\n  gather_facts: false\n  tasks:\n    - debug: {{msg: \"{{{{ {expr} }}}}\"}}\n"));
        let started = std::time::Instant::now();
        let r = Recover::new().args(["play", pb.to_str().unwrap(), "-i", "localhost,"]).run();
        assert!(started.elapsed() < Duration::from_secs(20), "{name} took {:?}", started.elapsed());
        assert_eq!(r.code, 2, "{name}: {}{}", r.stdout, r.stderr);
        assert!(r.stdout.contains(&format!("{name}.yml:5:")) && r.stdout.contains("more than recover's limit"), "{name}: {}", r.stdout);
    }
}

// 14. A refused BLOCK step still takes its full backup first.
#[test]
fn a_backup_for_a_block_step_this_run_cannot_approve_is_not_taken() {
    lab();
    let scratch = host_scratch("188", "noapprove");
    write(&scratch, "data/db/state", "clean\n");
    give_to_host(&scratch);
    let tmp = tempfile::tempdir().unwrap();
    let pb = write(
        tmp.path(),
        "pg-wal.yml",
        "- hosts: data\n  gather_facts: false\n  tasks:\n    - backup: {path: \"{{ d }}/data\", dest: \"{{ d }}/backups\"}\n    - shell: printf reset > {{ d }}/data/db/state\n      destructive: {paths: [\"{{ d }}/data\"], tier: BLOCK}\n",
    );
    let run = Recover::new().args(["play", pb.to_str().unwrap(), "--yes"]).args(vars_at(&scratch)).run();
    assert_eq!(run.code, 4, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("cannot approve") && run.stdout.contains("nothing was backed up"), "{}", run.stdout);
    assert!(files_in(&scratch.join("backups")).is_empty(), "a backup was taken for a step that could not run");
    // With the approval, the backup and the step run.
    let run = Recover::new().args(["play", pb.to_str().unwrap(), "--yes", "--approve", "pg-wal@188"]).args(vars_at(&scratch)).run();
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(files_in(&scratch.join("backups")).iter().any(|f| f.ends_with(".tar.gz")));
}

// 16. "all" at a STANDARD_HITL prompt also ran later CRITICAL_HITL and BLOCK steps.
#[test]
fn all_at_a_prompt_covers_steps_of_its_tier_or_lower_only() {
    lab();
    let scratch = host_scratch("188", "all");
    for f in ["s1", "s2", "c1"] {
        write(&scratch, f, "old\n");
    }
    give_to_host(&scratch);
    let tmp = tempfile::tempdir().unwrap();
    let edit = |f: &str, tier: &str| format!("    - copy: {{content: \"new\\n\", dest: \"{{{{ d }}}}/{f}\"}}\n      destructive: {{tier: {tier}}}\n");
    let pb = write(tmp.path(), "tiers.yml", &format!("- hosts: data\n  gather_facts: false\n  tasks:\n{}{}{}", edit("s1", "STANDARD_HITL"), edit("s2", "STANDARD_HITL"), edit("c1", "CRITICAL_HITL")));
    let r = Recover::new().args(["play", pb.to_str().unwrap()]).args(vars_at(&scratch));
    let mut s = expectrl::Session::spawn(r.command()).expect("spawn in a pty");
    s.set_expect_timeout(Some(Duration::from_secs(30)));
    s.expect("STANDARD_HITL step").unwrap();
    s.send_line("a").unwrap();
    // The second STANDARD_HITL step runs without asking; the CRITICAL_HITL one asks.
    s.expect("CRITICAL_HITL step").unwrap();
    s.send_line("n").unwrap();
    let _ = s.expect(expectrl::Eof);
    let code = match s.get_process().wait().unwrap() {
        expectrl::WaitStatus::Exited(_, c) => c,
        other => panic!("{other:?}"),
    };
    assert_eq!(code, 4);
    assert_eq!(std::fs::read_to_string(scratch.join("s1")).unwrap(), "new\n");
    assert_eq!(std::fs::read_to_string(scratch.join("s2")).unwrap(), "new\n");
    assert_eq!(std::fs::read_to_string(scratch.join("c1")).unwrap(), "old\n", "'all' at a STANDARD_HITL prompt ran a CRITICAL_HITL step");
}
