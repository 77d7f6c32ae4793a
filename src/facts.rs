//! Facts: small read-only questions to a host, each a command plus a parser
//! with a unit test on captured output. Modules call these; no module parses
//! command output on its own.

use serde_json::{json, Value as Json};

use crate::transport::{quote, Cmd};

/// What `stat` says of a path.
#[derive(Clone, Debug, PartialEq)]
pub struct StatInfo {
    pub kind: FileKind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub owner: String,
    pub group: String,
    pub size: u64,
    pub mtime: i64,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FileKind {
    File,
    Dir,
    Link,
    Other,
}

/// The command behind [`parse_stat`] (GNU `stat`, does not follow links).
pub fn stat_cmd(path: &str) -> Cmd {
    Cmd::shell(format!("{STAT} -- {} 2>/dev/null || echo ABSENT", quote::quote(path)))
}

/// The `stat` call behind [`parse_stat`]: kind, mode, ids, names, size, mtime.
const STAT: &str = "stat -c '%F|%a|%u|%g|%U|%G|%s|%Y'";

/// What a path is and, for a readable regular file (or a link to one), its bytes: one round
/// trip where [`stat_cmd`] and a `cat` were two. Parsed by [`parse_stat_read`].
pub fn stat_read_cmd(path: &str) -> Cmd {
    let p = quote::quote(path);
    Cmd::shell(format!("{STAT} -- {p} 2>/dev/null || {{ echo ABSENT; exit 0; }}; [ -f {p} ] && exec cat -- {p}"))
        .label(format!("stat and read {path}"))
}

/// Parses [`stat_read_cmd`]'s output: the stat line, then the file's bytes when they were read.
pub fn parse_stat_read(out: &crate::transport::Output) -> (Option<StatInfo>, Option<Vec<u8>>) {
    let (first, rest) = match out.stdout.iter().position(|b| *b == b'\n') {
        Some(i) => (&out.stdout[..i], &out.stdout[i + 1..]),
        None => (&out.stdout[..], &[][..]),
    };
    let st = parse_stat(&String::from_utf8_lossy(first));
    let content = (st.is_some() && out.rc == 0).then(|| rest.to_vec());
    (st, content)
}

/// What kind of thing a path is, by the shell's own `test` (no program started): for
/// callers that need no mode or owner. Does not follow links, as [`stat_cmd`]. Parsed by
/// [`parse_kind`].
pub fn kind_cmd(path: &str) -> Cmd {
    let p = quote::quote(path);
    Cmd::shell(format!("if [ -L {p} ]; then echo link; elif [ -d {p} ]; then echo directory; elif [ -f {p} ]; then echo file; elif [ -e {p} ]; then echo other; else echo ABSENT; fi"))
        .label(format!("test what {path} is"))
}

/// Parses [`kind_cmd`]'s output; `None` when the path does not exist.
pub fn parse_kind(out: &str) -> Option<FileKind> {
    match out.trim() {
        "link" => Some(FileKind::Link),
        "directory" => Some(FileKind::Dir),
        "file" => Some(FileKind::File),
        "other" => Some(FileKind::Other),
        _ => None,
    }
}

/// Parses [`stat_cmd`]'s output; `None` when the path does not exist.
pub fn parse_stat(out: &str) -> Option<StatInfo> {
    let line = out.lines().next()?.trim();
    if line == "ABSENT" || line.is_empty() {
        return None;
    }
    let f: Vec<&str> = line.split('|').collect();
    if f.len() != 8 {
        return None;
    }
    let kind = match f[0] {
        "regular file" | "regular empty file" => FileKind::File,
        "directory" => FileKind::Dir,
        "symbolic link" => FileKind::Link,
        _ => FileKind::Other,
    };
    Some(StatInfo {
        kind,
        mode: u32::from_str_radix(f[1], 8).ok()?,
        uid: f[2].parse().ok()?,
        gid: f[3].parse().ok()?,
        owner: f[4].to_string(),
        group: f[5].to_string(),
        size: f[6].parse().ok()?,
        mtime: f[7].parse().ok()?,
    })
}

impl StatInfo {
    /// Ansible's `stat` result shape.
    pub fn to_json(&self, path: &str) -> Json {
        json!({
            "exists": true, "path": path,
            "isreg": self.kind == FileKind::File, "isdir": self.kind == FileKind::Dir, "islnk": self.kind == FileKind::Link,
            "mode": format!("{:04o}", self.mode), "uid": self.uid, "gid": self.gid,
            "pw_name": self.owner, "gr_name": self.group, "size": self.size, "mtime": self.mtime,
        })
    }
}


/// The three checkpoint files of a Kafka log dir that SOP 10.3 may move.
pub const KAFKA_CHECKPOINTS: [&str; 3] = ["log-start-offset-checkpoint", "recovery-point-offset-checkpoint", "replication-offset-checkpoint"];

/// Checks a Kafka offset checkpoint file: a version line (0), a count line, then
/// exactly that many `topic partition offset` lines. `Ok(entries)` or the first problem.
pub fn parse_kafka_checkpoint(text: &str) -> Result<usize, String> {
    let mut lines = text.lines();
    let version = lines.next().ok_or("empty file")?.trim();
    if version.parse::<i64>().map_err(|_| format!("version line {version:?} is not a number"))? != 0 {
        return Err(format!("unknown version {version}"));
    }
    let count_line = lines.next().ok_or("no entry count line")?.trim();
    let count: usize = count_line.parse().map_err(|_| format!("entry count {count_line:?} is not a number"))?;
    let entries: Vec<&str> = lines.filter(|l| !l.trim().is_empty()).collect();
    if entries.len() != count {
        return Err(format!("the count says {count} entries, the file has {}", entries.len()));
    }
    for (i, e) in entries.iter().enumerate() {
        let f: Vec<&str> = e.split(' ').collect();
        if f.len() != 3 || f[0].is_empty() || f[1].parse::<i32>().is_err() || f[2].parse::<i64>().is_err() {
            return Err(format!("Malformed line in checkpoint file: {e:?} (entry {})", i + 1));
        }
    }
    Ok(count)
}


/// The command behind [`parse_systemctl_show`].
pub fn systemctl_show_cmd(unit: &str, props: &[String]) -> Cmd {
    let mut argv = vec!["systemctl".to_string(), "show".to_string(), unit.to_string()];
    for p in props {
        argv.push("-p".into());
        argv.push(p.clone());
    }
    Cmd::argv(argv)
}

/// `systemctl show` output (`Key=Value` lines) as a map.
pub fn parse_systemctl_show(out: &str) -> serde_json::Map<String, Json> {
    out.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_string(), json!(v))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_gnu_stat() {
        let s = parse_stat("directory|755|1001|1001|wooo|wooo|4096|1764000000\n").unwrap();
        assert_eq!((s.kind, s.mode, s.owner.as_str(), s.size), (FileKind::Dir, 0o755, "wooo", 4096));
        let s = parse_stat("regular empty file|600|0|0|root|root|0|1\n").unwrap();
        assert_eq!((s.kind, s.mode), (FileKind::File, 0o600));
        assert_eq!(parse_stat("ABSENT\n"), None);
        assert_eq!(parse_stat("garbage"), None);
    }

    /// The one-round-trip stat and read, through a real shell on real files.
    #[tokio::test]
    async fn stat_read_through_a_real_shell() {
        use crate::transport::{Connection, Target};
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n).display().to_string();
        std::fs::write(p("f"), b"\nline one\n\0binary\xff").unwrap();
        std::fs::write(p("empty"), b"").unwrap();
        std::fs::create_dir(p("d")).unwrap();
        std::os::unix::fs::symlink(p("f"), p("link")).unwrap();
        let conn = Connection::open(&Target { name: "local".into(), local: true, ..Default::default() }).await.unwrap();
        let get = |n: String| {
            let conn = &conn;
            async move { parse_stat_read(&conn.exec(&stat_read_cmd(&n)).await.unwrap()) }
        };
        let (st, bytes) = get(p("f")).await;
        assert_eq!((st.map(|s| s.kind), bytes.as_deref()), (Some(FileKind::File), Some(&b"\nline one\n\0binary\xff"[..])));
        let (st, bytes) = get(p("empty")).await;
        assert_eq!((st.map(|s| s.size), bytes), (Some(0), Some(Vec::new())));
        let (st, bytes) = get(p("d")).await;
        assert_eq!((st.map(|s| s.kind), bytes), (Some(FileKind::Dir), None));
        let (st, bytes) = get(p("link")).await;
        assert_eq!((st.map(|s| s.kind), bytes.map(|b| b.len())), (Some(FileKind::Link), Some(18)));
        assert_eq!(get(p("absent")).await, (None, None));
        // The kind probe agrees with stat on each of them.
        for n in ["f", "empty", "d", "link", "absent", "it's; $(touch x)"] {
            let kind = parse_kind(&conn.exec(&kind_cmd(&p(n))).await.unwrap().stdout_str());
            assert_eq!(kind, get(p(n)).await.0.map(|s| s.kind), "{n}");
        }
        assert_eq!(get(p("it's; $(touch x)")).await, (None, None));
        assert!(!dir.path().join("x").exists() && !std::path::Path::new("x").exists());
        conn.close().await;
    }
}

#[cfg(test)]
mod kafka_tests {
    use super::parse_kafka_checkpoint;

    #[test]
    fn kafka_checkpoint_format() {
        assert_eq!(parse_kafka_checkpoint("0\n2\ntopic-a 0 1234\ntopic-b 3 0\n"), Ok(2));
        assert_eq!(parse_kafka_checkpoint("0\n0\n"), Ok(0));
        assert!(parse_kafka_checkpoint("").is_err());
        assert!(parse_kafka_checkpoint("0\n2\ntopic-a 0 1\n").unwrap_err().contains("count says 2"));
        assert!(parse_kafka_checkpoint("0\n1\ntopic-a 0 \u{0}\u{0}\n").unwrap_err().contains("Malformed line"));
        assert!(parse_kafka_checkpoint("\u{0}\u{0}\u{0}").unwrap_err().contains("version"));
        assert!(parse_kafka_checkpoint("1\n0\n").unwrap_err().contains("unknown version"));
    }
}

#[cfg(test)]
mod systemd_tests {
    use super::parse_systemctl_show;

    #[test]
    fn systemctl_show_output() {
        let m = parse_systemctl_show("CPUQuotaPerSecUSec=2s\nMemoryMax=2147483648\nWatchdogUSec=0\nEnvironment=A=1 B=2\n");
        assert_eq!(m["CPUQuotaPerSecUSec"], "2s");
        assert_eq!(m["MemoryMax"], "2147483648");
        assert_eq!(m["WatchdogUSec"], "0");
        assert_eq!(m["Environment"], "A=1 B=2");
    }
}
