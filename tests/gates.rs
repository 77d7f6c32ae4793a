//! The cold-start gates over the loopback fleet, with a real PostgreSQL and a
//! webhook receiver each test starts itself.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use common::*;

/// A PostgreSQL of the test's own (healthy), stopped on drop.
struct Pg {
    root: PathBuf,
    port: String,
}

impl Pg {
    fn start(scratch: &Path, port: u32) -> Pg {
        let root = scratch.join("pg");
        let out = Command::new(repo().join("scripts/pg-momo")).args([root.to_str().unwrap(), &port.to_string()]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        Pg { root, port: port.to_string() }
    }
    fn ctl(&self, action: &str) {
        let mut args = vec!["-n".to_string(), "-u".into(), "postgres".into(), "/usr/lib/postgresql/15/bin/pg_ctl".into(), "-D".into(), self.root.join("data").display().to_string(), "-l".into(), self.root.join("log/postgresql.log").display().to_string(), "-w".into()];
        if action == "start" {
            args.extend(["-o".to_string(), format!("-p {} -k {}/run -c listen_addresses=127.0.0.188", self.port, self.root.display())]);
        } else {
            args.extend(["-m".to_string(), "fast".into()]);
        }
        args.push(action.into());
        assert!(Command::new("sudo").args(&args).output().unwrap().status.success(), "pg_ctl {action}");
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        if let Ok(t) = std::fs::read_to_string(self.root.join("data/postmaster.pid")) {
            let _ = Command::new("kill").arg(t.lines().next().unwrap_or("").trim()).status();
        }
    }
}

/// A webhook receiver: GET /healthz answers 200, every POST body is appended to a file.
struct Receiver {
    child: Child,
    port: u32,
    log: PathBuf,
}

impl Receiver {
    fn start(dir: &Path, port: u32) -> Receiver {
        let log = dir.join("posts.log");
        let code = format!(
            "import http.server\nclass H(http.server.BaseHTTPRequestHandler):\n    def do_GET(self):\n        self.send_response(200); self.end_headers(); self.wfile.write(b'ok')\n    def do_POST(self):\n        n = int(self.headers.get('Content-Length', 0)); body = self.rfile.read(n)\n        open({:?}, 'ab').write(self.path.encode() + b' ' + body + b'\\n')\n        self.send_response(200); self.end_headers(); self.wfile.write(b'{{\"ok\": true}}')\n    def log_message(self, *a): pass\nhttp.server.HTTPServer(('127.0.0.1', {port}), H).serve_forever()\n",
            log.display().to_string()
        );
        let child = Command::new("python3").args(["-c", &code]).spawn().unwrap();
        for _ in 0..50 {
            if std::net::TcpStream::connect(("127.0.0.1", port as u16)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Receiver { child, port, log }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn baseline(dir: &Path, pg: &Pg, hook: u32) -> PathBuf {
    write(
        dir,
        "baseline.yml",
        &format!(
            r#"phases:
  - name: P0-NETWORK
    probes:
      - {{name: SSH 188, type: ssh, host: "188"}}
      - {{name: SSH 110, type: ssh, host: "110"}}
      - {{name: "188 port 2222", type: tcp, address: "127.0.0.188:2222"}}
  - name: P0-188-DATA
    depends_on: [P0-NETWORK]
    probes:
      - name: PostgreSQL accepts connections
        type: command
        host: "188"
        command: /usr/lib/postgresql/15/bin/pg_isready -h 127.0.0.188 -p {port}
        suggest: recover play pg-wal --host 188 --dry-run
        suggest_if: sudo -n -u postgres grep -q 'could not locate a valid checkpoint record' {log}
  - name: P1-K3S
    depends_on: [P0-188-DATA]
    probes:
      - {{name: SSH 120, type: ssh, host: "120"}}
  - name: P2-WORKLOAD-ALERTCHAIN
    depends_on: [P1-K3S]
    probes:
      - {{name: webhook receiver, type: http, url: "http://127.0.0.1:{hook}/healthz", status: [200, 401]}}
alert_test:
  phase: P2-WORKLOAD-ALERTCHAIN
  url: "http://127.0.0.1:{hook}/api/v1/webhooks/alertmanager"
automation_gate:
  - {{name: data layer, phase: P0-188-DATA}}
  - {{name: alert chain, phase: P2-WORKLOAD-ALERTCHAIN}}
"#,
            port = pg.port,
            log = pg.root.join("log/postgresql.log").display()
        ),
    )
}

fn check(b: &Path, extra: &[&str]) -> Run {
    Recover::new().args(["check", "--baseline", b.to_str().unwrap()]).args(extra).run()
}

#[test]
fn green_with_the_alert_test_warn_without_it_and_blocked_with_a_suggestion_when_postgres_is_down() {
    lab();
    let scratch = host_scratch("188", "gates");
    let tmp = tempfile::tempdir().unwrap();
    let pg = Pg::start(&scratch, free_port("127.0.0.188"));
    let hook = Receiver::start(tmp.path(), free_port("127.0.0.1"));
    let b = baseline(tmp.path(), &pg, hook.port);

    // 1. Everything up: GREEN with --send-alert-test (the receiver got the SOP's payload), WARN without.
    let green = check(&b, &["--send-alert-test"]);
    assert_eq!(green.code, 0, "{}{}", green.stdout, green.stderr);
    assert!(green.stdout.contains("PASS=4 WARN=0 BLOCKED=0 Result: GREEN"), "{}", green.stdout);
    let posts = std::fs::read_to_string(&hook.log).unwrap();
    assert!(posts.starts_with("/api/v1/webhooks/alertmanager ") && posts.contains("\"alertname\":\"ColdStartE2ETest\"") && posts.contains("\"version\":\"4\""), "{posts}");
    let warn = check(&b, &[]);
    assert_eq!(warn.code, 1, "{}{}", warn.stdout, warn.stderr);
    assert!(warn.stdout.contains("PASS=3 WARN=1 BLOCKED=0 Result: DEGRADED"), "{}", warn.stdout);
    assert!(warn.stdout.contains("--send-alert-test"), "{}", warn.stdout);
    assert_eq!(std::fs::read_to_string(&hook.log).unwrap(), posts, "a check without --send-alert-test posted");

    // The automation gate: green now, recorded for --automation.
    let state = tempfile::tempdir().unwrap();
    let gate = Recover::new().env("RECOVER_STATE_DIR", state.path().to_str().unwrap()).args(["gate", "--baseline", b.to_str().unwrap()]).run();
    assert_eq!(gate.code, 1, "the alert chain warns without a test alert: {}", gate.stdout);
    assert!(gate.stdout.contains("UNMET") && gate.stdout.contains("alert chain"), "{}", gate.stdout);

    // 2. PostgreSQL down with the checkpoint PANIC in its log: BLOCKED, the first gate named, the pg-wal suggestion.
    pg.ctl("stop");
    std::fs::OpenOptions::new().append(true).open(pg.root.join("log/postgresql.log")).and_then(|mut f| std::io::Write::write_all(&mut f, b"PANIC:  could not locate a valid checkpoint record\n")).unwrap();
    let blocked = check(&b, &["--send-alert-test"]);
    assert_eq!(blocked.code, 2, "{}{}", blocked.stdout, blocked.stderr);
    assert!(blocked.stdout.contains("fix first: P0-188-DATA: recover play pg-wal --host 188 --dry-run"), "{}", blocked.stdout);
    assert!(blocked.stdout.contains("blocked by P0-188-DATA"), "{}", blocked.stdout);
    assert!(blocked.stdout.contains("blocked by P1-K3S"), "{}", blocked.stdout);
    assert!(blocked.stdout.contains("Result: BLOCKED"), "{}", blocked.stdout);
    let json = Recover::new().args(["check", "--baseline", b.to_str().unwrap(), "--output", "json"]).run();
    let v: serde_json::Value = serde_json::from_str(json.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(v["report"]["first_blocked"], "P0-188-DATA");
}

#[test]
fn watch_turns_green_when_the_service_comes_back_and_the_textfile_keeps_the_last_green() {
    lab();
    let scratch = host_scratch("188", "watch");
    let tmp = tempfile::tempdir().unwrap();
    let pg = Pg::start(&scratch, free_port("127.0.0.188"));
    let hook = Receiver::start(tmp.path(), free_port("127.0.0.1"));
    let b = baseline(tmp.path(), &pg, hook.port);
    let prom = tmp.path().join("cold_start_recovery.prom");

    // GREEN once: the textfile records it.
    let g = check(&b, &["--send-alert-test", "--textfile", prom.to_str().unwrap()]);
    assert_eq!(g.code, 0, "{}", g.stdout);
    let text = std::fs::read_to_string(&prom).unwrap();
    let green_at: i64 = text.lines().find_map(|l| l.strip_prefix("awoooi_cold_start_last_green_timestamp ")).unwrap().parse().unwrap();
    assert!(green_at > 0);
    if Path::new("/usr/bin/promtool").exists() {
        let out = Command::new("promtool").args(["check", "metrics"]).stdin(std::fs::File::open(&prom).unwrap()).output().unwrap();
        assert!(out.status.success(), "promtool: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    }

    // Blocked: the last green survives.
    pg.ctl("stop");
    std::thread::sleep(Duration::from_millis(1100));
    let blocked = check(&b, &["--monitor-read-only", "--textfile", prom.to_str().unwrap()]);
    assert_eq!(blocked.code, 2, "{}", blocked.stdout);
    let text = std::fs::read_to_string(&prom).unwrap();
    assert!(text.contains(&format!("awoooi_cold_start_last_green_timestamp {green_at}\n")), "{text}");
    assert!(text.contains("awoooi_cold_start_last_result{result=\"blocked\"} 1\n") && text.contains("awoooi_cold_start_blocked_gates 3\n"), "{text}");
    if Path::new("/usr/bin/promtool").exists() {
        let out = Command::new("promtool").args(["check", "metrics"]).stdin(std::fs::File::open(&prom).unwrap()).output().unwrap();
        assert!(out.status.success(), "promtool: {}", String::from_utf8_lossy(&out.stderr));
    }

    // Watch: PostgreSQL comes back during the watch, and the watch ends GREEN.
    let w = Recover::new().args(["check", "--baseline", b.to_str().unwrap(), "--send-alert-test", "--watch", "--interval", "1", "--max-attempts", "60"]);
    let child = w.command().stdout(std::process::Stdio::piped()).stdin(std::process::Stdio::null()).spawn().unwrap();
    std::thread::sleep(Duration::from_secs(2));
    pg.ctl("start");
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("attempt 1/60") && stdout.contains("(was BLOCKED)") && stdout.trim_end().lines().last().unwrap().contains("Result: GREEN"), "{stdout}");
}

#[test]
fn cold_start_monitor_installs_an_idempotent_cron_block_and_rules_promtool_accepts() {
    lab();
    let scratch = host_scratch("110", "monitor");
    let s = scratch.display().to_string();
    let vars = [
        format!("monitor_dir={s}/scripts"),
        format!("monitor_textfile={s}/textfiles/cold_start_recovery.prom"),
        format!("monitor_log={s}/reboot-recovery/cold-start-last.log"),
        format!("monitor_crontab_file={s}/crontab"),
        format!("monitor_rules_file={s}/monitoring/rules/cold_start_recovery.yml"),
    ];
    let args: Vec<String> = vars.iter().flat_map(|v| ["-e".to_string(), v.clone()]).collect();
    let first = Recover::new().args(["play", "cold-start-monitor", "--output", "json"]).args(&args).run();
    assert_eq!(first.code, 0, "{}{}", first.stdout, first.stderr);
    let second = Recover::new().args(["play", "cold-start-monitor", "--output", "json"]).args(&args).run();
    assert_eq!(second.recap()["110"]["changed"], 0, "{}", second.stdout);

    let crontab = std::fs::read_to_string(scratch.join("crontab")).unwrap();
    let line = crontab.lines().find(|l| l.starts_with("*/10 * * * * ")).expect("the cron line");
    assert!(crontab.starts_with("# BEGIN recover cold-start monitor\n") && line.contains("--monitor-read-only --textfile"), "{crontab}");
    if Path::new("/usr/bin/promtool").exists() {
        let out = Command::new("promtool").args(["check", "rules", &format!("{s}/monitoring/rules/cold_start_recovery.yml")]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    }
    // The cron line itself, run as the host's user: it writes the textfile.
    let cmd = line.trim_start_matches("*/10 * * * * ");
    let ran = Recover::new().args(["exec", "110", "--", cmd]).run();
    let prom = scratch.join("textfiles/cold_start_recovery.prom");
    let text = std::fs::read_to_string(&prom).unwrap_or_else(|_| panic!("no textfile: {}{}", ran.stdout, ran.stderr));
    assert!(text.contains("awoooi_cold_start_monitor_up 1\n"), "{text}");
    if Path::new("/usr/bin/promtool").exists() {
        let out = Command::new("promtool").args(["check", "metrics"]).stdin(std::fs::File::open(&prom).unwrap()).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn the_shipped_baselines_lint_clean_against_their_inventories_without_contacting_a_host() {
    for inv in ["inventory/awoooi.yml", "inventory/lab.yml"] {
        let run = Recover::new().args(["check", "--lint", "-i", inv]).run();
        assert_eq!(run.code, 0, "{inv}: {}{}", run.stdout, run.stderr);
        assert!(run.stdout.trim_end().ends_with(": ok"), "{}", run.stdout);
    }
    let sop = Recover::new().args(["check", "--lint", "-i", "inventory/awoooi.yml"]).run();
    assert!(sop.stdout.contains("7 phases"), "{}", sop.stdout);
}
