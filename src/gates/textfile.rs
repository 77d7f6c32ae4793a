//! The cold-start monitor's Prometheus textfile (SOP 13.3), written atomically
//! (temp file + rename) for node-exporter's textfile collector.

use std::path::Path;

use super::Report;

/// The metrics text; `last_green` is carried over from the previous file when not green now.
pub fn render(r: Option<&Report>, now: i64, last_green: i64) -> String {
    let result = match r {
        Some(r) if r.result == "GREEN" => "green",
        Some(r) if r.result == "DEGRADED" => "degraded",
        Some(_) => "blocked",
        None => "check_failed",
    };
    let (p, w, b) = r.map(|r| (r.pass, r.warn, r.blocked)).unwrap_or((0, 0, 0));
    let green_at = if result == "green" { now } else { last_green };
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, lines: Vec<String>| {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n"));
        for l in lines {
            out.push_str(&l);
            out.push('\n');
        }
    };
    gauge("awoooi_cold_start_monitor_up", "1 when the cold-start check ran.", vec![format!("awoooi_cold_start_monitor_up {}", i32::from(r.is_some()))]);
    gauge("awoooi_cold_start_pass_gates", "Gates that passed.", vec![format!("awoooi_cold_start_pass_gates {p}")]);
    gauge("awoooi_cold_start_warn_gates", "Gates that warned.", vec![format!("awoooi_cold_start_warn_gates {w}")]);
    gauge("awoooi_cold_start_blocked_gates", "Gates that are blocked.", vec![format!("awoooi_cold_start_blocked_gates {b}")]);
    gauge("awoooi_cold_start_last_run_timestamp", "Unix time of the last check.", vec![format!("awoooi_cold_start_last_run_timestamp {now}")]);
    gauge("awoooi_cold_start_last_green_timestamp", "Unix time the check was last GREEN (0: never).", vec![format!("awoooi_cold_start_last_green_timestamp {green_at}")]);
    gauge(
        "awoooi_cold_start_last_result",
        "The last result: 1 for the current one.",
        ["green", "degraded", "blocked", "check_failed"].iter().map(|x| format!("awoooi_cold_start_last_result{{result=\"{x}\"}} {}", i32::from(*x == result))).collect(),
    );
    out
}

/// `awoooi_cold_start_last_green_timestamp` of an earlier file (0 when none).
pub fn previous_green(path: &Path) -> i64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| t.lines().find_map(|l| l.strip_prefix("awoooi_cold_start_last_green_timestamp ").and_then(|v| v.trim().parse().ok())))
        .unwrap_or(0)
}

/// Writes the file atomically.
pub fn write(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("prom.tmp.{}", std::process::id()));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn green_timestamp_survives_a_blocked_run() {
        let text = render(None, 200, 100);
        assert!(text.contains("awoooi_cold_start_last_green_timestamp 100\n"));
        assert!(text.contains("awoooi_cold_start_last_result{result=\"check_failed\"} 1\n"));
        assert!(text.contains("awoooi_cold_start_monitor_up 0\n"));
    }
}
