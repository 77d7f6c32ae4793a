//! Faults around a repair: the data host's SSH cut at every remote command of `pg-wal` and
//! `clickhouse-clone` (and while the longest ones run); a host coming and going under
//! `check --watch`. (The backup disk filling mid-backup is in tests/safety.rs.)
//!
//! The cut is real: the host's own sshd (the listener and every sshd process under it) is
//! SIGKILLed by PID, as when the host drops off the network; what it was running carries on or
//! dies as it would. The moment is exact: `RECOVER_FAULT_HOOK` (src/transport/mod.rs) runs
//! `hook HOST N COMMAND` before the host's N-th remote command and waits for it.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// The hook: records every command (with how many task events the run log held by then) and,
/// when armed for command N, cuts the host's SSH before it or `mode` seconds after it was sent.
const HOOK: &str = r#"#!/bin/sh
D="$(dirname "$0")"
tasks=$(cat "$(cat "$D/state")"/runs/*.jsonl 2>/dev/null | grep -c '"event":"task"')
printf '%s\t%s\t%s\n' "$2" "$tasks" "$(printf '%s' "$3" | head -c 300 | tr '\n\t' '  ')" >> "$D/calls"
[ -f "$D/cut_at" ] && [ "$2" = "$(cat "$D/cut_at")" ] || exit 0
cut() {
  tree() { echo "$1"; for c in $(ps -o pid= --ppid "$1"); do tree "$c"; done; }
  for p in $(tree "$(cat "$D/sshd.pid")"); do
    case "$(readlink "/proc/$p/exe")" in
      */sshd|*/sshd-session) echo "$p" >> "$D/victims" ;;
      *) echo "$p $(readlink "/proc/$p/exe")" >> "$D/orphans" ;;
    esac
  done
  kill -9 $(cat "$D/victims")
  touch "$D/cut_done"
}
mode=$(cat "$D/mode")
if [ "$mode" = before ]; then cut; else ( sleep "$mode"; cut ) </dev/null >/dev/null 2>&1 & fi
"#;

/// One remote command of a run: its number, the task events logged before it, its text.
#[derive(Clone, Debug)]
struct Call {
    n: usize,
    tasks_before: usize,
    text: String,
}

/// A private sshd for 188 with the cutting hook beside it.
struct Rig {
    sshd: PrivateSshd,
    lock_suffix: String,
}

impl Rig {
    fn new(name: &str) -> Rig {
        let sshd = PrivateSshd::start("188");
        write(sshd.dir.path(), "hook", HOOK);
        assert!(Command::new("chmod").args(["+x", sshd.dir.path().join("hook").to_str().unwrap()]).status().unwrap().success());
        Rig { sshd, lock_suffix: format!("-cut-{name}-{}", std::process::id()) }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.sshd.dir.path().join(name)
    }

    /// A run through this rig's sshd and hook, with a lock of its own shared by its runs.
    fn recover(&self, args: Vec<String>) -> Recover {
        Recover::new()
            .env("RECOVER_FAULT_HOOK", self.path("hook").to_str().unwrap())
            .env("RECOVER_LAB_LOCK_SUFFIX", &self.lock_suffix)
            .args(args)
            .args(["-i", self.sshd.inventory.to_str().unwrap()])
    }

    /// Arms the hook for `run`: cut at command `at` (0: never), `mode` "before" or a delay in seconds.
    fn arm(&self, run: &Recover, at: usize, mode: &str) {
        for f in ["calls", "victims", "orphans", "cut_done"] {
            let _ = std::fs::remove_file(self.path(f));
        }
        std::fs::write(self.path("state"), run.state_dir().display().to_string()).unwrap();
        std::fs::write(self.path("cut_at"), at.to_string()).unwrap();
        std::fs::write(self.path("mode"), mode).unwrap();
    }

    fn calls(&self) -> Vec<Call> {
        std::fs::read_to_string(self.path("calls"))
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let mut f = l.splitn(3, '\t');
                Call { n: f.next().unwrap().parse().unwrap(), tasks_before: f.next().unwrap().parse().unwrap(), text: f.next().unwrap_or("").to_string() }
            })
            .collect()
    }

    /// Waits for the cut (a delayed one lands after the command was sent), then for what the
    /// cut session left running on the host to end (a daemon it started is left alone).
    fn after_cut(&self) {
        for _ in 0..200 {
            if self.path("cut_done").exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        assert!(self.path("cut_done").exists(), "the cut did not happen");
        let orphans = std::fs::read_to_string(self.path("orphans")).unwrap_or_default();
        let waited: Vec<&str> = orphans.lines().filter(|l| !l.contains("postgres") && !l.contains("python") && !l.contains("sleep")).filter_map(|l| l.split_whitespace().next()).collect();
        for _ in 0..400 {
            if waited.iter().all(|p| !Path::new(&format!("/proc/{p}")).exists()) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
    }
}

impl Rig {
    /// Runs `run` with the host cut at command `at` (`mode`), and checks its exit and run log
    /// against a full run's steps. Returns the run log, and whether the run left its host lock
    /// behind: a cut run does, and so does one that ended before a delayed cut landed, if the
    /// cut landed as it released the lock (it says so).
    fn cut(&self, what: &str, run: &Recover, at: usize, mode: &str, calls: &[Call], root: &Path, full: &[(String, String)]) -> (Vec<serde_json::Value>, bool) {
        self.arm(run, at, mode);
        let cut = run.run();
        self.after_cut();
        let log = run.run_log();
        // Cut as the lock is released (or, for a delayed cut, after the run ended): every step ran.
        let ended_first = mode != "before" && cut.code == 0;
        if at == calls.len() || ended_first {
            assert_eq!(tasks(&log, root), full, "{what}");
        } else {
            assert_eq!(cut.code, 3, "{what}: {}{}", cut.stdout, cut.stderr);
            assert_log_stops_at_the_cut(what, &log, root, full, calls[at - 1].tasks_before, mode == "before");
        }
        // A run that ended before a delayed cut left its lock only if the cut beat the release;
        // a release cut after its rm ran says "could not release" yet left nothing: ask the host.
        let lock_dir = lab_root().join("188/run/lock").join(format!("recover{}", self.lock_suffix));
        let lock_left = lock_dir.exists();
        if ended_first && lock_dir.exists() {
            assert!(cut.stderr.contains("could not release the lock"), "{what}: a lock was left and not reported: {}", cut.stderr);
        }
        if at == calls.len() && mode == "before" {
            // Cut just before the release: every step ran, and the lock left behind is reported.
            assert!(cut.stderr.contains("could not release the lock"), "{what}: {}", cut.stderr);
        }
        (log, lock_left)
    }

    /// The host comes back and `run` (the same command again) exits 0. The cut run held the
    /// host lock from command 1 on: if it left it behind, this run takes it over, and says why.
    fn rerun(&self, what: &str, run: &Recover, at: usize, lock_left: bool) {
        self.sshd.restart();
        self.arm(run, 0, "before");
        let again = run.run();
        assert_eq!(again.code, 0, "{what}: the re-run failed: {}{}", again.stdout, again.stderr);
        let took_over = again.events().iter().any(|e| e["event"] == "lock_broken" && e["why"].as_str().unwrap().contains("no longer running"));
        assert_eq!(took_over, at > 1 && lock_left, "{what}: lock takeover");
    }
}

/// Prints what each cut left, and checks there were enough of them.
fn report(summary: &[String]) {
    assert!(summary.len() >= 20, "{summary:#?}");
    eprintln!("{}", summary.join("\n"));
}

/// Task events of a run log: (task, status), the case's folder and timestamps in names made neutral.
fn tasks(log: &[serde_json::Value], root: &Path) -> Vec<(String, String)> {
    let ts = regex::Regex::new(r"\d{8}-\d{6}").unwrap();
    log.iter()
        .filter(|e| e["event"] == "task")
        .map(|e| {
            let name = e["task"].as_str().unwrap().replace(&root.display().to_string(), "ROOT");
            (ts.replace_all(&name, "TS").into_owned(), e["status"].as_str().unwrap().to_string())
        })
        .collect()
}

/// The run log of a cut run says exactly what ran: the full run's steps up to the one whose
/// command was cut, then that step, unreachable, naming the command and that its outcome on
/// the host is unknown; nothing after it. `at_least` is the cut step's index in the full run.
fn assert_log_stops_at_the_cut(what: &str, log: &[serde_json::Value], root: &Path, full: &[(String, String)], at_least: usize, exact: bool) {
    let got = tasks(log, root);
    let last = got.last().unwrap_or_else(|| panic!("{what}: no task in the run log"));
    assert_eq!(last.1, "unreachable", "{what}: the log does not end at the cut: {got:?}");
    let k = got.len() - 1;
    assert_eq!(got[..k], full[..k], "{what}: the steps before the cut differ from a full run's");
    // Cut while taking the host lock, the step reads "connect (NEXT STEP)".
    assert!(last.0 == full[k].0 || last.0 == format!("connect ({})", full[k].0), "{what}: the cut step {:?} is not the full run's next step {:?}", last.0, full[k].0);
    if exact {
        assert_eq!(k, at_least, "{what}: cut in step {} ({}), expected step {at_least} ({})", k, last.0, full[at_least].0);
    } else {
        assert!(k >= at_least, "{what}: cut in step {k}, before the command was sent (step {at_least})");
    }
    let ev = log.iter().rev().find(|e| e["event"] == "task").unwrap();
    let msg = ev["msg"].as_str().unwrap_or_default();
    assert!(msg.contains("connection lost") || msg.contains("cannot connect"), "{what}: {msg}");
    // A command in flight is named, with its outcome unknown (a cut before a host's shell
    // started has none to name).
    if msg.contains("while running `") {
        assert!(msg.contains("may or may not have completed"), "{what}: {msg}");
    }
}

/// The cut points: before every remote command of a full run (before command N is after the
/// step that sent N-1), and while each of the `during` commands runs.
fn cut_points(calls: &[Call], during: &[(&str, &str)]) -> Vec<(usize, String)> {
    let mut points: Vec<(usize, String)> = calls.iter().map(|c| (c.n, "before".to_string())).collect();
    for (needle, delay) in during {
        let c = calls.iter().find(|c| c.text.contains(needle)).unwrap_or_else(|| panic!("no command {needle:?} in {calls:?}"));
        points.push((c.n, delay.to_string()));
    }
    points
}

fn pg_bin() -> String {
    let mut bins: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql").unwrap().flatten().map(|e| e.path().join("bin")).collect();
    bins.sort();
    bins.last().unwrap().display().to_string()
}

fn psql_rows(port: &str) -> String {
    let out = Command::new("sudo")
        .args(["-n", "-u", "postgres", &format!("{}/psql", pg_bin()), "-h", "127.0.0.188", "-p", port, "-d", "k3s_datastore", "-tAc", "SELECT count(*) FROM kine"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string() + &String::from_utf8_lossy(&out.stderr)
}

fn pg_stop(data: &Path) {
    if data.join("postmaster.pid").exists() {
        let _ = Command::new("sudo").args(["-n", "-u", "postgres", &format!("{}/pg_ctl", pg_bin()), "-D", data.to_str().unwrap(), "-m", "immediate", "-w", "stop"]).output();
    }
}

/// Content and mode of every file under `dir`, relative to it.
fn rel_hash(dir: &Path) -> Vec<(String, u32, String)> {
    tree_hash(dir).into_iter().map(|(p, m, h)| (p.strip_prefix(&dir.display().to_string()).unwrap_or(&p).to_string(), m, h)).collect()
}

struct PgCase {
    root: PathBuf,
}

impl Drop for PgCase {
    fn drop(&mut self) {
        pg_stop(&self.root.join("data"));
    }
}

#[test]
fn pg_wal_cut_at_every_command_keeps_the_data_and_a_rerun_finishes_the_repair() {
    lab();
    let rig = Rig::new("pg");
    let scratch = host_scratch("188", "pgcut");
    let port = free_port("127.0.0.188").to_string();
    // One damaged cluster, copied fresh for every cut.
    let template = scratch.join("template");
    let made = Command::new(repo().join("scripts/pg-damaged")).args([template.to_str().unwrap(), &port]).output().unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let damaged = rel_hash(&template.join("data"));
    let fresh = |name: &str| -> PgCase {
        let root = scratch.join(name);
        assert!(Command::new("cp").args(["-a", template.to_str().unwrap(), root.to_str().unwrap()]).status().unwrap().success());
        PgCase { root }
    };
    let vars = |case: &PgCase| {
        vec![
            "play".to_string(),
            "pg-wal".into(),
            "--approve".into(),
            "pg-wal@188".into(),
            "--output".into(),
            "json".into(),
            "-e".into(),
            format!("pg_root={}", case.root.display()),
            "-e".into(),
            format!("pg_port={port}"),
            "-e".into(),
            format!("pg_backup_dir={}/backups", case.root.display()),
        ]
    };

    // A full repair, uncut: the commands it sends, and its steps.
    let case = fresh("full");
    let full_run = rig.recover(vars(&case));
    rig.arm(&full_run, 0, "before");
    let r = full_run.run();
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let calls = rig.calls();
    let full = tasks(&full_run.run_log(), &case.root);
    drop(case);
    assert!(calls.len() >= 15, "{calls:?}");

    let points = cut_points(&calls, &[("tar --numeric-owner", "0.05"), ("pg_resetwal -f", "0.005"), ("-w -t 60 start", "0.05"), ("VACUUM ANALYZE", "0.01")]);
    let mut summary = Vec::new();
    for (i, (at, mode)) in points.iter().enumerate() {
        let what = format!("cut {mode} command {at} ({})", calls[at - 1].text.chars().take(80).collect::<String>());
        let case = fresh(&format!("cut{i}"));
        let data = case.root.join("data");
        let (log, lock_left) = rig.cut(&what, &rig.recover(vars(&case)), *at, mode, &calls, &case.root, &full);

        // Intact, or recoverable from the verified backup this run recorded.
        let backups: Vec<String> = log.iter().filter(|e| e["event"] == "backup").map(|e| e["backup"]["archive"].as_str().unwrap().to_string()).collect();
        let reset_sent = calls.iter().find(|c| c.text.contains("pg_resetwal -f")).map(|c| c.n).unwrap();
        let state = if rel_hash(&data) == damaged {
            "intact"
        } else {
            // A delayed cut can land a few commands after the one it was armed at (a loaded
            // machine): then the run log must show the reset step started before the cut.
            let reset_started = log.iter().any(|e| e["event"] == "task_start" && e["task"] == "pg_resetwal -f");
            assert!(*at >= reset_sent || (mode != "before" && reset_started), "{what}: the data changed before pg_resetwal was sent");
            assert_eq!(backups.len(), 1, "{what}: the data changed without a verified backup in the log");
            let out = tempfile::tempdir().unwrap();
            assert!(Command::new("tar").args(["-xzpf", &backups[0], "-C", out.path().to_str().unwrap()]).status().unwrap().success());
            assert_eq!(rel_hash(&out.path().join(data.strip_prefix("/").unwrap())), damaged, "{what}: the backup does not hold the damaged cluster");
            "changed, backup verified"
        };
        let partial: Vec<_> = std::fs::read_dir(case.root.join("backups")).map(|d| d.flatten().map(|e| e.path()).filter(|p| p.to_string_lossy().ends_with(".partial")).collect()).unwrap_or_default();
        assert!(partial.is_empty(), "{what}: a partial archive was left: {partial:?}");

        // The host comes back; the same command again finishes the repair.
        rig.rerun(&what, &rig.recover(vars(&case)), *at, lock_left);
        assert_eq!(psql_rows(&port), "1000", "{what}");
        assert!(!case.root.join("backups/.pg-wal-repair-unfinished").exists(), "{what}: the repair is still marked unfinished");
        summary.push(format!("{what}: {state}, re-run exit 0"));
    }
    report(&summary);
}

#[test]
fn clickhouse_clone_cut_at_every_command_keeps_the_original_and_a_rerun_finishes_the_clone() {
    // ClickHouse's container and its volume are real: a loop-mounted ext4 image with two part
    // files damaged for real (see tests/playbooks.rs); its process is scripts/lab-service, as
    // ClickHouse cannot be installed here.
    lab();
    let rig = Rig::new("ch");
    let port = free_port("127.0.0.188").to_string();
    let mut made: Vec<String> = Vec::new();
    // One damaged ClickHouse (and its query service) per case: the volume's folder is the root.
    let mut fresh = |case: &str| -> (String, PathBuf) {
        let name = own_name(&format!("chcut-{case}"));
        lab_docker(&["clickhouse", &name, "127.0.0.188", &port, "ollama"]);
        docker(&["run", "-d", "--name", &format!("{name}-q"), "--network", "host", "--restart", "unless-stopped", "recover-lab/busybox", "lab-service", "consumer", "q"]);
        made.extend([name.clone(), format!("{name}-q")]);
        let root = lab_root().join(format!("docker/data/volumes/{name}"));
        (name, root)
    };
    let vars = |name: &str| {
        vec![
            "play".to_string(),
            "clickhouse-clone".into(),
            "--yes".into(),
            "--approve".into(),
            "clickhouse-clone@188".into(),
            "--output".into(),
            "json".into(),
            "-e".into(),
            format!("clickhouse_container={name}"),
            "-e".into(),
            format!("clickhouse_query_container={name}-q"),
            "-e".into(),
            format!("clickhouse_port={port}"),
        ]
    };
    let stop = |name: &str| drop(Containers(vec![name.to_string(), format!("{name}-q")]));

    let (name, root) = fresh("full");
    let full_run = rig.recover(vars(&name));
    rig.arm(&full_run, 0, "before");
    let r = full_run.run();
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let calls = rig.calls();
    let full = tasks(&full_run.run_log(), &root);
    stop(&name);
    assert!(calls.len() >= 15, "{calls:?}");

    let points = cut_points(&calls, &[("test ! -e", "0.02"), ("mv -- ", "0.005"), ("docker start", "0.02")]);
    let mut summary = Vec::new();
    for (i, (at, mode)) in points.iter().enumerate() {
        let what = format!("cut {mode} command {at} ({})", calls[at - 1].text.chars().take(80).collect::<String>());
        let (name, root) = fresh(&i.to_string());
        let data = root.join("_data");
        let (damaged, _) = clickhouse_damage(&name);
        let original = damaged_tree(&data);
        let (_, lock_left) = rig.cut(&what, &rig.recover(vars(&name)), *at, mode, &calls, &root, &full);

        // The original is complete: still at _data, or preserved under its .corrupt- name.
        let volume: Vec<PathBuf> = std::fs::read_dir(&root).unwrap().flatten().map(|e| e.path()).collect();
        let preserved: Vec<&PathBuf> = volume.iter().filter(|p| p.is_dir() && p.file_name().unwrap().to_string_lossy().starts_with("_data.corrupt-") && !p.to_string_lossy().ends_with(".clone")).collect();
        assert!(preserved.len() <= 1, "{what}: {volume:?}");
        let state = match preserved.first() {
            Some(p) => {
                assert_eq!(damaged_tree(p), original, "{what}: the preserved original is not complete");
                "original preserved"
            }
            None => {
                assert_eq!(damaged_tree(&data), original, "{what}: the original changed in place");
                "intact"
            }
        };

        // The host comes back; the same command again finishes the clone, and puts the
        // restart policy back that the cut run had set to no.
        rig.rerun(&what, &rig.recover(vars(&name)), *at, lock_left);
        let volume: Vec<PathBuf> = std::fs::read_dir(&root).unwrap().flatten().map(|e| e.path()).collect();
        let preserved: Vec<&PathBuf> = volume.iter().filter(|p| p.is_dir() && p.file_name().unwrap().to_string_lossy().starts_with("_data.corrupt-")).collect();
        assert_eq!(preserved.len(), 1, "{what}: one preserved original, no leftover clone: {volume:?}");
        assert_eq!(damaged_tree(preserved[0]), original, "{what}");
        let clone: Vec<_> = damaged_tree(&data).into_iter().filter(|e| !e.0.starts_with("flags")).collect();
        let expected: Vec<_> = original.iter().filter(|e| !damaged.contains(&e.0) && !e.0.starts_with("flags")).cloned().collect();
        assert_eq!(clone, expected, "{what}: the clone is not every readable file");
        assert!(data.join("flags/force_restore_data").exists(), "{what}");
        for c in [name.clone(), format!("{name}-q")] {
            assert_eq!(inspect(&c, "{{.State.Status}} {{.State.Restarting}}"), "running false", "{what}: {c} is not running");
        }
        assert_eq!(inspect(&name, "{{.HostConfig.RestartPolicy.Name}}"), "unless-stopped", "{what}: the restart policy was not put back");
        stop(&name);
        summary.push(format!("{what}: {state}, re-run exit 0"));
    }
    drop(Containers(made));
    report(&summary);
}

/// `check --watch` over a host that is down when the watch starts, comes up, then drops again
/// with a session open and comes back: every pass reconnects as needed and the watch ends GREEN.
#[test]
fn check_watch_follows_a_host_that_comes_back_and_one_that_drops_and_returns() {
    lab();
    let sshd = PrivateSshd::start("188");
    sshd.cut();
    let flag = host_scratch("188", "watch-host").join("ready");
    let tmp = tempfile::tempdir().unwrap();
    let baseline = write(
        tmp.path(),
        "baseline.yml",
        &format!(
            "phases:\n  - name: P0-NETWORK\n    probes:\n      - {{name: SSH 188, type: ssh, host: \"188\"}}\n  - name: P0-188-DATA\n    depends_on: [P0-NETWORK]\n    probes:\n      - {{name: data ready, type: command, host: \"188\", command: \"test -e {}\"}}\n",
            flag.display()
        ),
    );
    let w = Recover::new().args(["check", "--baseline", baseline.to_str().unwrap(), "-i", sshd.inventory.to_str().unwrap(), "--watch", "--interval", "1", "--max-attempts", "40", "--output", "json"]);
    let mut child = w.command().stdout(std::process::Stdio::piped()).stdin(std::process::Stdio::null()).spawn().unwrap();
    struct Reap(u32);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = Command::new("kill").arg(self.0.to_string()).status();
        }
    }
    let _reap = Reap(child.id());
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
    let mut next = || -> serde_json::Value { serde_json::from_str(&lines.next().expect("the watch ended early").unwrap()).unwrap() };
    let probe = |v: &serde_json::Value, gate: &str| -> (bool, String) {
        let g = v["report"]["gates"].as_array().unwrap().iter().find(|g| g["name"] == gate).unwrap().clone();
        let p = &g["probes"][0];
        (p["ok"].as_bool().unwrap_or(false), p["evidence"].as_str().unwrap_or("").to_string())
    };

    // Down at the start: unreachable, BLOCKED.
    let first = next();
    let (ok, why) = probe(&first, "P0-NETWORK");
    assert!(!ok && why.contains("unreachable"), "{first}");
    // It comes up: the next pass connects (the data is not ready yet, so still BLOCKED).
    sshd.restart();
    let mut up = next();
    while !probe(&up, "P0-NETWORK").0 {
        up = next();
    }
    assert!(!probe(&up, "P0-188-DATA").0, "{up}");
    // It drops with the watch's session open, the data becomes ready, and it comes back.
    sshd.cut();
    std::fs::write(&flag, "").unwrap();
    sshd.restart();
    let mut last = next();
    let mut passes = 0;
    // The pass after the cut finds the watch's session gone and says so (in whichever probe
    // used it first; a probe after that may already have a new connection); then it reconnects.
    let lost = ["P0-NETWORK", "P0-188-DATA"].iter().any(|g| {
        let (ok, why) = probe(&last, g);
        !ok && why.contains("connection lost")
    });
    assert!(lost, "{last}");
    while last["report"]["result"] != "GREEN" && passes < 10 {
        last = next();
        passes += 1;
    }
    assert_eq!(last["report"]["result"], "GREEN", "the watch never saw the host come back: {last}");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}
