//! Saved plans over the real lab: the commander approves the exact plan, and `recover apply`
//! runs exactly it or nothing (a real damaged PostgreSQL on 188, over its sshd).

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

/// A `recover` sharing one state folder (the audit trail approvals are checked against).
fn rec(state: &Path) -> Recover {
    Recover::new().env("RECOVER_STATE_DIR", state.to_str().unwrap())
}

fn rows(port: &str) -> String {
    let out = Command::new("sudo")
        .args(["-n", "-u", "postgres", "/usr/lib/postgresql/15/bin/psql", "-h", "127.0.0.188", "-p", port, "-d", "k3s_datastore", "-tAc", "SELECT count(*) FROM kine"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A damaged PostgreSQL cluster of the test's own on 188, and the -e words pointing pg-wal at it.
fn damaged(name: &str) -> (std::path::PathBuf, std::path::PathBuf, String, StopPostgres, Vec<String>) {
    let scratch = host_scratch("188", name);
    let (pg, port, stop) = damaged_pg(&scratch);
    let vars = vec![
        "-e".to_string(),
        format!("pg_root={}", pg.display()),
        "-e".into(),
        format!("pg_port={port}"),
        "-e".into(),
        format!("pg_backup_dir={}", scratch.join("backups").display()),
    ];
    (scratch, pg, port, stop, vars)
}

fn copy(from: &Path, to: &Path) -> String {
    std::fs::copy(from, to).unwrap();
    to.display().to_string()
}

#[test]
fn a_saved_plan_approved_and_applied_repairs_the_damaged_postgres_and_a_stale_or_unapproved_one_changes_nothing() {
    lab();
    let (scratch, pg, port, _stop, vars) = damaged("plans");
    let data = pg.join("data");
    let state = tempfile::tempdir().unwrap();
    let plans = tempfile::tempdir().unwrap();
    let plan = plans.path().join("pg-wal.plan");
    let damaged = tree_hash(&data);

    // The plan: a dry-run that changes nothing and writes down what it decided, on what.
    let made = rec(state.path()).args(["play", "pg-wal", "--host", "188", "--dry-run", "--save-plan", plan.to_str().unwrap()]).args(&vars).run();
    assert_eq!(made.code, 0, "{}{}", made.stdout, made.stderr);
    assert!(made.stdout.contains("plan saved:"), "{}", made.stdout);
    assert_eq!(damaged, tree_hash(&data), "the dry-run changed the cluster");
    let pristine = plans.path().join("pristine.plan");
    copy(&plan, &pristine);

    // plan show: the dry-run as it was, with the fingerprint.
    let shown = rec(state.path()).args(["plan", "show", plan.to_str().unwrap()]).run();
    assert_eq!(shown.code, 0, "{}{}", shown.stdout, shown.stderr);
    for want in ["WAL checkpoint damage", "DESTRUCTIVE [BLOCK]", "pg_resetwal -f", "FINGERPRINT", &format!("{}: directory", data.display()), "service postgresql: stopped", "none yet"] {
        assert!(shown.stdout.contains(want), "plan show lacks {want:?}:\n{}", shown.stdout);
    }

    // Unapproved: refused, nothing changed.
    let unapproved = rec(state.path()).args(["apply", plan.to_str().unwrap()]).run();
    assert_eq!(unapproved.code, 4, "{}{}", unapproved.stdout, unapproved.stderr);
    assert!(unapproved.stderr.contains("needs 1 approver(s), has 0"), "{}", unapproved.stderr);

    // A flipped byte anywhere in the plan: refused.
    let bytes = std::fs::read(&plan).unwrap();
    for at in [bytes.len() / 3, bytes.len() / 2, bytes.len() - 10] {
        let mut b = bytes.clone();
        b[at] ^= 0x04;
        let edited = plans.path().join(format!("flipped-{at}.plan"));
        std::fs::write(&edited, &b).unwrap();
        let r = rec(state.path()).args(["apply", edited.to_str().unwrap()]).run();
        assert_eq!(r.code, 4, "byte {at}: {}{}", r.stdout, r.stderr);
        assert!(r.stderr.contains("altered") || r.stderr.contains("not a recover plan"), "byte {at}: {}", r.stderr);
    }

    // An approval that expired: refused.
    let short = copy(&pristine, &plans.path().join("short.plan"));
    let ok = rec(state.path()).args(["approve", &short, "--as", "commander", "--expires", "1s", "--yes"]).run();
    assert_eq!(ok.code, 0, "{}{}", ok.stdout, ok.stderr);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let expired = rec(state.path()).args(["apply", &short]).run();
    assert_eq!(expired.code, 4, "{}{}", expired.stdout, expired.stderr);
    assert!(expired.stderr.contains("expired"), "{}", expired.stderr);

    // An approval written into the file by hand (not by `recover approve`, so not in the audit
    // trail): refused, even with its digest right.
    let forged = plans.path().join("forged.plan");
    let other_state = tempfile::tempdir().unwrap();
    copy(&pristine, &forged);
    assert_eq!(rec(other_state.path()).args(["approve", forged.to_str().unwrap(), "--as", "mallory", "--yes"]).run().code, 0);
    let r = rec(state.path()).args(["apply", forged.to_str().unwrap()]).run();
    assert_eq!(r.code, 4, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("not in the audit trail"), "{}", r.stderr);

    // The two-person rule: one approver (twice) is not enough for a BLOCK step.
    assert_eq!(rec(state.path()).args(["approve", plan.to_str().unwrap(), "--as", "commander", "--yes"]).run().code, 0);
    assert_eq!(rec(state.path()).args(["approve", plan.to_str().unwrap(), "--as", "commander", "--yes"]).run().code, 0);
    let single = rec(state.path()).env("RECOVER_PLAN_TWO_PERSON", "1").args(["apply", plan.to_str().unwrap()]).run();
    assert_eq!(single.code, 4, "{}{}", single.stdout, single.stderr);
    assert!(single.stderr.contains("needs 2 approver(s)") && single.stderr.contains("has 1 (commander)"), "{}", single.stderr);
    // --automation applies only plans whose changing steps are all AUTO: this one becomes an
    // approval request.
    let auto = rec(state.path()).args(["apply", plan.to_str().unwrap(), "--automation", "--output", "json"]).run();
    assert_eq!(auto.code, 4, "{}{}", auto.stdout, auto.stderr);
    assert!(auto.events().iter().any(|e| e["event"] == "approval_request" && e["tier"] == "BLOCK" && e["task"] == "pg_resetwal -f"), "{}", auto.stdout);
    assert_eq!(damaged, tree_hash(&data), "a refused apply changed the cluster");

    // The host changed after the plan: a file touched in the data directory. Refused with the
    // difference named, and nothing changed.
    let approved = plans.path().join("approved.plan");
    copy(&plan, &approved);
    let touched = data.join("PG_VERSION");
    let before = std::fs::metadata(&touched).unwrap().modified().unwrap();
    assert!(Command::new("touch").args(["-d", "2001-01-01", touched.to_str().unwrap()]).status().unwrap().success());
    let changed = tree_hash(&data);
    let stale = rec(state.path()).args(["apply", approved.to_str().unwrap(), "--output", "json"]).run();
    assert_eq!(stale.code, 4, "{}{}", stale.stdout, stale.stderr);
    let ev = stale.events().into_iter().find(|e| e["event"] == "plan_stale").expect("a plan_stale event");
    let why = ev["differences"].to_string();
    assert!(why.contains("PG_VERSION changed mtime"), "{why}");
    assert_eq!(changed, tree_hash(&data), "a stale apply changed the cluster");
    assert!(!scratch.join("backups").exists(), "a stale apply took a backup");
    // Put the mtime back (the fingerprint holds it to the nanosecond).
    let f = std::fs::File::options().write(true).open(&touched).unwrap();
    f.set_modified(before).unwrap();
    drop(f);

    // The host changed another way: the service started (then stopped again by the test's
    // own pg_ctl, which leaves the data directory changed too).
    // Applied as approved: verified backup, repair, data readable.
    let applied = rec(state.path()).args(["apply", approved.to_str().unwrap(), "--output", "json"]).run();
    assert_eq!(applied.code, 0, "{}{}", applied.stdout, applied.stderr);
    let ev = applied.events();
    assert!(ev.iter().any(|e| e["event"] == "plan_apply"), "{}", applied.stdout);
    let approval = ev.iter().find(|e| e["event"] == "approval" && e["tier"] == "BLOCK").expect("the BLOCK step's approval");
    assert!(approval["how"].as_str().unwrap().contains("approved by commander"), "{approval}");
    assert!(ev.iter().any(|e| e["event"] == "backup"), "no verified backup");
    assert_eq!(rows(&port), "1000");

    // The same plan again: a plan is applied once; the second apply names the first.
    let again = rec(state.path()).args(["apply", approved.to_str().unwrap()]).run();
    assert_eq!(again.code, 4, "{}{}", again.stdout, again.stderr);
    assert!(again.stderr.contains("applied already") && again.stderr.contains("run "), "{}", again.stderr);

    // The audit trail holds the approvals and the applied plan, and checks; one edited line fails it.
    let verify = rec(state.path()).args(["history", "--verify"]).run();
    assert_eq!(verify.code, 0, "{}{}", verify.stdout, verify.stderr);
    let mut logs: Vec<_> = std::fs::read_dir(state.path().join("runs")).unwrap().flatten().map(|e| e.path()).collect();
    logs.sort();
    let all: String = logs.iter().map(|l| std::fs::read_to_string(l).unwrap()).collect();
    assert!(all.contains("\"event\":\"plan_approval\"") && all.contains("\"event\":\"plan_apply\""));
    let first = &logs[0];
    let text = std::fs::read_to_string(first).unwrap();
    std::fs::write(first, text.replacen("commander", "commandeR", 1)).unwrap();
    let broken = rec(state.path()).args(["history", "--verify"]).run();
    assert_eq!(broken.code, 1, "{}{}", broken.stdout, broken.stderr);
    // The approval's log has one line: the next line in the chain names it as changed.
    let said = format!("{}{}", broken.stdout, broken.stderr);
    let name = first.file_name().unwrap().to_string_lossy().into_owned();
    assert!(said.contains(&format!("line 1 of {name}, which has changed")), "{said}");
}

#[test]
fn a_plan_is_refused_after_the_service_it_was_planned_on_started() {
    lab();
    let (scratch, pg, port, _stop, vars) = damaged("plans-svc");
    let state = tempfile::tempdir().unwrap();
    let plans = tempfile::tempdir().unwrap();
    let plan = plans.path().join("p.plan");
    let made = rec(state.path()).args(["play", "pg-wal", "--host", "188", "--dry-run", "--save-plan", plan.to_str().unwrap()]).args(&vars).run();
    assert_eq!(made.code, 0, "{}{}", made.stdout, made.stderr);
    assert_eq!(rec(state.path()).args(["approve", plan.to_str().unwrap(), "--as", "commander", "--yes"]).run().code, 0);
    // Another operator "repairs" it by hand first: the server now runs (on a fresh WAL).
    let pgbin = "/usr/lib/postgresql/15/bin";
    let data = pg.join("data");
    let sh = format!(
        "{pgbin}/pg_resetwal -f {d} >/dev/null && {pgbin}/pg_ctl -D {d} -l {l} -o '-p {port} -k {r} -c listen_addresses=127.0.0.188' -w -t 60 start >/dev/null",
        d = data.display(),
        l = pg.join("log/postgresql.log").display(),
        r = pg.join("run").display()
    );
    let out = Command::new("sudo").args(["-n", "-u", "postgres", "sh", "-c", &sh]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let now = tree_hash(&data);
    let r = rec(state.path()).args(["apply", plan.to_str().unwrap(), "--output", "json"]).run();
    assert_eq!(r.code, 4, "{}{}", r.stdout, r.stderr);
    let ev = r.events().into_iter().find(|e| e["event"] == "plan_stale").expect("a plan_stale event");
    assert!(ev["differences"].to_string().contains("service postgresql was stopped and is now running"), "{ev}");
    assert!(!scratch.join("backups").exists(), "a stale apply took a backup");
    assert_eq!(now.len(), tree_hash(&data).len());
}

#[test]
fn a_diagnosis_that_reads_differently_at_apply_stops_the_host_before_its_first_change() {
    lab();
    let (scratch, pg, _port, _stop, vars) = damaged("plans-diag");
    let state = tempfile::tempdir().unwrap();
    let plans = tempfile::tempdir().unwrap();
    let plan = plans.path().join("p.plan");
    let made = rec(state.path()).args(["play", "pg-wal", "--host", "188", "--dry-run", "--save-plan", plan.to_str().unwrap()]).args(&vars).run();
    assert_eq!(made.code, 0, "{}{}", made.stdout, made.stderr);
    assert_eq!(rec(state.path()).args(["approve", plan.to_str().unwrap(), "--as", "commander", "--yes"]).run().code, 0);
    // The server's log (not a path the plan changes) gains a line in its last start attempt:
    // the diagnosis that decided the repair now reads differently.
    let log = pg.join("log/postgresql.log");
    let out = Command::new("sudo").args(["-n", "-u", "postgres", "sh", "-c", &format!("echo 'LOG:  a line written after the plan' >> {}", log.display())]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let data = pg.join("data");
    let before = tree_hash(&data);
    let r = rec(state.path()).args(["apply", plan.to_str().unwrap(), "--output", "json"]).run();
    assert_eq!(r.code, 4, "{}{}", r.stdout, r.stderr);
    let refused = r.task_events().into_iter().find(|e| e["status"] == "refused").expect("a refused step");
    let msg = refused["msg"].as_str().unwrap();
    assert!(msg.contains("Read the log's last start attempt' reads differently"), "{msg}");
    assert!(!scratch.join("backups").exists(), "the stale host took a backup");
    assert_eq!(before, tree_hash(&data));
}
