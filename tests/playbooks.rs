//! The SOP's recovery playbooks, each on a real broken state in the lab.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// Stops a PostgreSQL cluster on drop (postmaster.pid's first line is its PID).
struct StopPostgres(PathBuf);

impl Drop for StopPostgres {
    fn drop(&mut self) {
        if let Ok(text) = std::fs::read_to_string(self.0.join("postmaster.pid")) {
            if let Some(pid) = text.lines().next() {
                let _ = Command::new("kill").arg(pid.trim()).status();
            }
        }
    }
}

/// Content and mode of every file under `dir`, by path relative to it.
fn rel_hash(dir: &Path) -> Vec<(String, u32, String)> {
    tree_hash(dir).into_iter().map(|(p, m, h)| (p.strip_prefix(&dir.display().to_string()).unwrap_or(&p).to_string(), m, h)).collect()
}

#[test]
fn pg_wal_repairs_real_checkpoint_damage_with_a_verified_backup_and_loses_nothing() {
    lab();
    let scratch = host_scratch("188", "pgwal");
    let pg = scratch.join("pg");
    let port = (26000 + std::process::id() % 2000).to_string();
    let made = Command::new(repo().join("scripts/pg-damaged")).args([pg.to_str().unwrap(), &port]).output().unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let _stop = StopPostgres(pg.join("data"));
    let vars = [
        "-e".to_string(),
        format!("pg_root={}", pg.display()),
        "-e".into(),
        format!("pg_port={port}"),
        "-e".into(),
        format!("pg_backup_dir={}", scratch.join("backups").display()),
    ];
    let damaged = rel_hash(&pg.join("data"));

    // (a) dry-run: the diagnosis and the whole plan, and nothing changes.
    let dry = Recover::new().args(["play", "pg-wal", "--dry-run"]).args(&vars).run();
    assert_eq!(dry.code, 0, "{}{}", dry.stdout, dry.stderr);
    assert!(dry.stdout.contains("WAL checkpoint damage"), "{}", dry.stdout);
    assert!(dry.stdout.contains("DESTRUCTIVE [BLOCK]"), "{}", dry.stdout);
    assert!(dry.stdout.contains("pg_resetwal -f"), "{}", dry.stdout);
    assert_eq!(damaged, rel_hash(&pg.join("data")), "dry-run changed the cluster");
    assert!(!scratch.join("backups").exists());

    // (b) no terminal and no approval: the BLOCK step is refused, the cluster untouched.
    let refused = Recover::new().args(["play", "pg-wal"]).args(&vars).run();
    assert_eq!(refused.code, 4, "{}{}", refused.stdout, refused.stderr);
    assert!(refused.stdout.contains("--approve pg-wal@188"), "{}", refused.stdout);
    assert_eq!(damaged, rel_hash(&pg.join("data")));

    // (b) approved: verified backup, repair, data readable.
    let repair = Recover::new().args(["play", "pg-wal", "--approve", "pg-wal@188", "--output", "json"]).args(&vars);
    let run = repair.run();
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let log = repair.run_log();
    assert!(log.iter().any(|e| e["event"] == "approval" && e["tier"] == "BLOCK" && e["how"] == "--approve pg-wal@188"));
    let backup = log.iter().find(|e| e["event"] == "backup").expect("a verified backup")["backup"].clone();
    let archive = backup["archive"].as_str().unwrap();
    assert!(archive.contains("/backups/15-main-before-pg-resetwal-") && archive.ends_with(".tgz"), "{archive}");
    let rows = Command::new("sudo")
        .args(["-n", "-u", "postgres", "/usr/lib/postgresql/15/bin/psql", "-h", "127.0.0.188", "-p", &port, "-d", "k3s_datastore", "-tAc", "SELECT count(*) FROM kine"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&rows.stdout).trim(), "1000", "{}", String::from_utf8_lossy(&rows.stderr));

    // (c) a second run changes nothing.
    let again = Recover::new().args(["play", "pg-wal", "--output", "json"]).args(&vars).run();
    assert_eq!(again.code, 0, "{}{}", again.stdout, again.stderr);
    assert_eq!(again.recap()["188"]["changed"], 0, "{}", again.stdout);
    assert!(again.stdout.contains("nothing to do"), "{}", again.stdout);

    // (d) nothing lost: the backup holds the damaged cluster exactly as it was.
    let out = tempfile::tempdir().unwrap();
    assert!(Command::new("tar").args(["-xzpf", archive, "-C", out.path().to_str().unwrap()]).status().unwrap().success());
    let restored = out.path().join(pg.join("data").strip_prefix("/").unwrap());
    assert_eq!(damaged, rel_hash(&restored), "the backup does not hold the original cluster");
}
