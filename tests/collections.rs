//! Issue 34: modules from the operator's installed collections (the `ansible` package from
//! PyPI, installed by scripts/oracles) run under the same safety engine as native ones. Their
//! results against ansible-core's are compared in tests/modules/collection-modules.yml.

mod common;

use common::*;
use std::path::Path;

/// recover as the operator runs it, with the `ansible` package's collections installed.
fn recover() -> Recover {
    let r = Recover::new();
    match std::env::var("RECOVER_ORACLES_DIR") {
        Ok(o) => r.env("ANSIBLE_COLLECTIONS_PATH", &format!("{o}/collections")),
        Err(_) => r,
    }
}

fn vars(scratch: &Path) -> Vec<String> {
    vec!["-e".into(), format!("root={}", scratch.display()), "-e".into(), format!("recover_backup_root={}/backups", scratch.display())]
}

#[test]
fn a_changing_collection_step_on_an_existing_file_is_refused_without_a_terminal_and_runs_after_a_verified_backup_with_yes() {
    lab();
    let scratch = host_scratch("188", "coll-backup");
    std::fs::write(scratch.join("app.ini"), "[server]\nport = 80\n").unwrap();
    give_to_host(&scratch);
    let tmp = tempfile::tempdir().unwrap();
    let pb = write(tmp.path(), "ini.yml", "- hosts: data\n  gather_facts: false\n  tasks:\n    - community.general.ini_file: {path: \"{{ root }}/app.ini\", section: server, option: port, value: \"9090\"}\n");
    // The dry-run previews it with the module's own diff, and says what the real run needs.
    let dry = recover().args(["play", pb.to_str().unwrap(), "--dry-run", "--diff"]).args(vars(&scratch)).run();
    assert_eq!(dry.code, 0, "{}{}", dry.stdout, dry.stderr);
    assert!(dry.stdout.contains("-port = 80") && dry.stdout.contains("+port = 9090"), "{}", dry.stdout);
    assert!(dry.stdout.contains("STANDARD_HITL"), "{}", dry.stdout);
    // No terminal, no flag: refused, nothing changed, no backup needed.
    let run = recover().args(["play", pb.to_str().unwrap()]).args(vars(&scratch)).run();
    assert_eq!(run.code, 4, "{}{}", run.stdout, run.stderr);
    assert_eq!(std::fs::read_to_string(scratch.join("app.ini")).unwrap(), "[server]\nport = 80\n");
    assert!(!scratch.join("backups").exists(), "a refused step needs no backup");
    // --yes: a verified backup of the file first, then the module's change.
    let yes = recover().args(["play", pb.to_str().unwrap(), "--yes"]).args(vars(&scratch));
    let run = yes.run();
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(std::fs::read_to_string(scratch.join("app.ini")).unwrap().contains("port = 9090"));
    let log = yes.run_log();
    let backup = log.iter().find(|e| e["event"] == "backup").unwrap_or_else(|| panic!("no backup event: {log:?}"))["backup"].clone();
    assert!(backup["sources"].to_string().contains("app.ini"), "{backup}");
    let archive = backup["archive"].as_str().unwrap();
    use sha2::Digest;
    assert_eq!(format!("{:x}", sha2::Sha256::digest(std::fs::read(archive).unwrap())), backup["sha256"].as_str().unwrap());
}

#[test]
fn a_baseline_tier_can_name_a_collection_and_a_block_module_needs_its_approval() {
    lab();
    let scratch = host_scratch("188", "coll-tier");
    let tmp = tempfile::tempdir().unwrap();
    let inv = lab_inventory_dir(tmp.path());
    write(inv.parent().unwrap(), "baseline-lab.yml", &format!("extends: {}\ntiers:\n  BLOCK:\n    modules: [\"community.general.*\"]\n", repo().join("inventory/baseline.yml").display()));
    // A new file: nothing to back up, and no native rule would ask; the baseline's module rule does.
    let pb = write(tmp.path(), "newini.yml", "- hosts: data\n  gather_facts: false\n  tasks:\n    - community.general.ini_file: {path: \"{{ root }}/new.ini\", section: s, option: k, value: v}\n");
    let inv = inv.to_str().unwrap().to_string();
    let yes = recover().args(["play", pb.to_str().unwrap(), "-i", &inv, "--yes"]).args(vars(&scratch)).run();
    assert_eq!(yes.code, 4, "BLOCK is not run by --yes: {}{}", yes.stdout, yes.stderr);
    assert!(yes.stdout.contains("BLOCK"), "{}", yes.stdout);
    assert!(!scratch.join("new.ini").exists());
    let approved = recover().args(["play", pb.to_str().unwrap(), "-i", &inv, "--yes", "--approve", "newini@188"]).args(vars(&scratch)).run();
    assert_eq!(approved.code, 0, "{}{}", approved.stdout, approved.stderr);
    assert!(std::fs::read_to_string(scratch.join("new.ini")).unwrap().contains("k = v"));
}

#[test]
fn a_module_without_check_mode_is_skipped_in_a_dry_run_and_asks_before_it_runs() {
    lab();
    let scratch = host_scratch("188", "coll-nocheck");
    let tmp = tempfile::tempdir().unwrap();
    let pb = tmp.path().join("nc.yml");
    // The playbook beside the test modules' library/ (a module of our own with no check mode).
    let lib = repo().join("tests/modules/library");
    std::os::unix::fs::symlink(&lib, tmp.path().join("library")).unwrap();
    std::fs::write(&pb, "- hosts: data\n  gather_facts: false\n  tasks:\n    - recover_test_nocheck: {line: one, path: \"{{ root }}/nc.txt\"}\n").unwrap();
    let dry = recover().args(["play", pb.to_str().unwrap(), "--dry-run", "--output", "json"]).args(vars(&scratch)).run();
    assert_eq!(dry.code, 0, "{}{}", dry.stdout, dry.stderr);
    assert!(dry.stdout.contains("no check mode") && dry.stdout.contains("\"status\":\"skipped\""), "{}", dry.stdout);
    assert!(!scratch.join("nc.txt").exists(), "a dry-run ran a module with no check mode");
    let run = recover().args(["play", pb.to_str().unwrap()]).args(vars(&scratch)).run();
    assert_eq!(run.code, 4, "{}{}", run.stdout, run.stderr);
    assert!(!scratch.join("nc.txt").exists());
    let yes = recover().args(["play", pb.to_str().unwrap(), "--yes"]).args(vars(&scratch)).run();
    assert_eq!(yes.code, 0, "{}{}", yes.stdout, yes.stderr);
    assert_eq!(std::fs::read_to_string(scratch.join("nc.txt")).unwrap(), "one\n");
}

#[test]
fn a_no_log_argument_of_a_collection_module_reaches_no_output_and_no_log() {
    lab();
    let scratch = host_scratch("188", "coll-nolog");
    let tmp = tempfile::tempdir().unwrap();
    let secret = "s3cr3t-coll-value-7731";
    let pb = write(tmp.path(), "nolog.yml", &format!("- hosts: data\n  gather_facts: false\n  tasks:\n    - community.general.ini_file: {{path: \"{{{{ root }}}}/sec.ini\", section: s, option: password, value: \"{{{{ pw }}}}\"}}\n      no_log: true\n      register: r\n  vars:\n    pw: {secret}\n"));
    for mode in [&["--dry-run", "--diff"][..], &["--yes", "--diff"][..], &["--yes", "--diff", "-vvv"][..]] {
        let r = recover().args(["play", pb.to_str().unwrap(), "--output", "json"]).args(mode).args(vars(&scratch));
        let run = r.run();
        assert_eq!(run.code, 0, "{mode:?}: {}{}", run.stdout, run.stderr);
        assert!(!run.stdout.contains(secret) && !run.stderr.contains(secret), "{mode:?}: the secret was printed:\n{}{}", run.stdout, run.stderr);
        let log: Vec<String> = r.run_log().iter().map(|e| e.to_string()).collect();
        // A dry-run keeps no run log; a real run does.
        assert!(mode.contains(&"--dry-run") || !log.is_empty(), "{mode:?}: no run log");
        assert!(!log.iter().any(|e| e.contains(secret)), "{mode:?}: the secret is in the run log: {:?}", log.iter().find(|e| e.contains(secret)));
    }
    assert!(std::fs::read_to_string(scratch.join("sec.ini")).unwrap().contains(secret), "the module did not run");
}
