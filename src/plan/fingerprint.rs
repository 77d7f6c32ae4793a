//! A host's fingerprint: the state of every path and service a plan's changing steps touch, read in one command, and how two differ.

use super::*;

/// A folder's entries are kept in the plan (to name the one that changed) up to this many.
const LISTING_CAP: usize = 20_000;

/// The state of one host's touched paths and services, in one round trip: the script to run
/// (as `read_as`), and how to read what it prints.
pub fn fingerprint_script(paths: &[String], services: &[ServiceProbe], read_as: Option<&str>, max_bytes: u64) -> String {
    let mut s = String::from(
        "fp() { i=$1; p=$2; \
         if [ ! -e \"$p\" ] && [ ! -L \"$p\" ]; then printf 'P\\t%s\\tabsent\\n' \"$i\"; return; fi; \
         if [ -L \"$p\" ] && [ ! -e \"$p\" ]; then printf 'P\\t%s\\tdangling symlink\\t-\\t-\\t-\\t-\\t-\\t-\\t-\\t%s\\n' \"$i\" \"$(readlink -- \"$p\")\"; return; fi; \
         q=$(realpath -e -- \"$p\") || q=$p; \
         m=$(stat -c '%F\t%s\t%a\t%U:%G\t%.9Y' -- \"$q\"); \
         if [ -d \"$q\" ]; then \
           t=$(mktemp) || return; \
           find \"$q\" -mindepth 1 -printf '%P\\t%y\\t%s\\t%m\\t%u:%g\\t%T@\\n' 2>/dev/null | LC_ALL=C sort > \"$t\"; \
           d=$(sha256sum < \"$t\" | cut -c1-64); n=$(wc -l < \"$t\"); b=$(awk -F'\\t' '{s+=$3} END {printf \"%d\", s}' \"$t\"); \
           printf 'P\\t%s\\t%s\\t%s\\t%s\\t%s\\t%s\\n' \"$i\" \"$m\" \"$d\" \"$n\" \"$b\" \"$q\"; \
           if [ \"$n\" -le ",
    );
    s.push_str(&LISTING_CAP.to_string());
    s.push_str(
        " ]; then awk -v i=\"$i\" '{print \"L\\t\" i \"\\t\" $0}' \"$t\"; fi; rm -f \"$t\"; \
         elif [ -f \"$q\" ] && [ \"$(stat -c %s -- \"$q\")\" -le ",
    );
    s.push_str(&max_bytes.to_string());
    s.push_str(
        " ]; then d=$(sha256sum -- \"$q\" | cut -c1-64); printf 'P\\t%s\\t%s\\t%s\\t-\\t-\\t%s\\n' \"$i\" \"$m\" \"${d:--}\" \"$q\"; \
         else printf 'P\\t%s\\t%s\\t-\\t-\\t-\\t%s\\n' \"$i\" \"$m\" \"$q\"; fi; }\n",
    );
    for (i, p) in paths.iter().enumerate() {
        s.push_str(&format!("fp {i} {}\n", quote::quote(p)));
    }
    for (i, probe) in services.iter().enumerate() {
        let line = match probe.become_user.as_deref().filter(|u| Some(*u) != read_as) {
            Some(u) => format!("sudo -n -H -u {} -- sh -c {}", quote::quote(u), quote::quote(&probe.command)),
            None => format!("sh -c {}", quote::quote(&probe.command)),
        };
        s.push_str(&format!("o=$( ({line}) 2>/dev/null </dev/null ); r=$?; printf 'S\\t{i}\\t%s\\t%s\\n' \"$r\" \"$(printf %s \"$o\" | base64 -w0)\"\n"));
    }
    s.push_str("exit 0\n");
    s
}

fn kind_word(stat: &str) -> String {
    match stat {
        "regular file" | "regular empty file" => "file".into(),
        "directory" => "directory".into(),
        "symbolic link" => "symlink".into(),
        other => other.to_string(),
    }
}

/// Reads the script's output into a fingerprint; `container[i]` says whether service i is a
/// container (its status is `docker inspect`'s JSON).
pub fn parse_fingerprint(out: &Output, paths: &[String], services: &[ServiceProbe], read_as: Option<String>, max_bytes: u64) -> Result<Fingerprint, String> {
    use base64::Engine as _;
    if out.rc != 0 {
        return Err(format!("the fingerprint script exited {}: {}", out.rc, out.stderr_str().trim()));
    }
    let mut fp = Fingerprint { read_as, hash_max_bytes: max_bytes, read_at: chrono::Utc::now().to_rfc3339(), ..Default::default() };
    let mut by_index: BTreeMap<usize, PathState> = BTreeMap::new();
    let text = out.stdout_str();
    for line in text.lines() {
        let f: Vec<&str> = line.splitn(3, '\t').collect();
        if f.len() < 3 {
            continue;
        }
        let Ok(i) = f[1].parse::<usize>() else { continue };
        match f[0] {
            "P" if i < paths.len() => {
                let r: Vec<&str> = f[2].split('\t').collect();
                let opt = |k: usize| r.get(k).filter(|v| **v != "-" && !v.is_empty()).map(|v| v.to_string());
                let st = if r[0] == "absent" {
                    PathState { path: paths[i].clone(), kind: "absent".into(), ..Default::default() }
                } else {
                    PathState {
                        path: paths[i].clone(),
                        kind: kind_word(r[0]),
                        size: opt(1).and_then(|v| v.parse().ok()),
                        mode: opt(2),
                        owner: opt(3),
                        mtime: opt(4),
                        sha256: opt(5),
                        entries: opt(6).and_then(|v| v.parse().ok()),
                        bytes: opt(7).and_then(|v| v.parse().ok()),
                        listing: None,
                        resolved: opt(8).filter(|r| *r != paths[i]),
                    }
                };
                by_index.insert(i, st);
            }
            "L" => {
                if let Some(st) = by_index.get_mut(&i) {
                    st.listing.get_or_insert_with(Vec::new).push(f[2].to_string());
                }
            }
            "S" if i < services.len() => {
                let r: Vec<&str> = f[2].splitn(2, '\t').collect();
                let rc: i32 = r[0].parse().unwrap_or(-1);
                let stdout = base64::engine::general_purpose::STANDARD.decode(r.get(1).unwrap_or(&"").trim()).unwrap_or_default();
                let state = if services[i].container {
                    match crate::docker::containers_from(&Output { rc, stdout, stderr: Vec::new() }) {
                        Ok(cs) => format!("{:?}", crate::docker::state_of(&cs)).to_lowercase(),
                        Err(e) => format!("unknown ({e})"),
                    }
                } else if rc == 0 {
                    "running".into()
                } else {
                    "stopped".into()
                };
                fp.services.push(ServiceState { name: services[i].name.clone(), state });
            }
            _ => {}
        }
    }
    for (i, p) in paths.iter().enumerate() {
        match by_index.remove(&i) {
            Some(st) => fp.paths.push(st),
            None => return Err(format!("the fingerprint of {p} was not read (the script's output ended early)")),
        }
    }
    if fp.services.len() != services.len() {
        return Err("the state of every service was not read (the script's output ended early)".into());
    }
    Ok(fp)
}

/// What differs between the plan's fingerprint and the host's now, in words (empty: nothing).
pub fn differences(was: &Fingerprint, now: &Fingerprint) -> Vec<String> {
    let mut out = Vec::new();
    for a in &was.paths {
        let Some(b) = now.paths.iter().find(|b| b.path == a.path) else {
            out.push(format!("{} was not read", a.path));
            continue;
        };
        if a.kind != b.kind {
            out.push(format!("{} was {} and is now {}", a.path, article(&a.kind), article(&b.kind)));
            continue;
        }
        if a.resolved != b.resolved {
            let to = |r: &Option<String>| r.clone().unwrap_or_else(|| "itself".into());
            out.push(format!("{} resolved to {} and now resolves to {}", a.path, to(&a.resolved), to(&b.resolved)));
            continue;
        }
        if a.kind == "directory" {
            if a.sha256 != b.sha256 {
                let what = match (&a.listing, &b.listing) {
                    (Some(x), Some(y)) => listing_change(x, y),
                    _ => None,
                };
                let sizes = format!(
                    "{} entries, {} -> {} entries, {}",
                    a.entries.unwrap_or(0),
                    human_bytes(a.bytes.unwrap_or(0)),
                    b.entries.unwrap_or(0),
                    human_bytes(b.bytes.unwrap_or(0))
                );
                out.push(match what {
                    Some(w) => format!("{}: {w} ({sizes})", a.path),
                    None => format!("{}: its contents changed ({sizes})", a.path),
                });
            }
            for (k, x, y) in [("mode", &a.mode, &b.mode), ("owner", &a.owner, &b.owner)] {
                if x != y {
                    out.push(format!("{} changed {k} {} -> {}", a.path, x.as_deref().unwrap_or("-"), y.as_deref().unwrap_or("-")));
                }
            }
            continue;
        }
        if a.size != b.size {
            out.push(format!("{} changed size {} -> {}", a.path, human_bytes(a.size.unwrap_or(0)), human_bytes(b.size.unwrap_or(0))));
        } else if a.sha256 != b.sha256 {
            out.push(format!("{} changed content (sha256 {} -> {})", a.path, short(a.sha256.as_deref().unwrap_or("-")), short(b.sha256.as_deref().unwrap_or("-"))));
        }
        for (k, x, y) in [("mode", &a.mode, &b.mode), ("owner", &a.owner, &b.owner), ("mtime", &a.mtime, &b.mtime)] {
            if x != y {
                let (x, y) = (x.as_deref().unwrap_or("-"), y.as_deref().unwrap_or("-"));
                let (x, y) = if k == "mtime" { (when(x), when(y)) } else { (x.to_string(), y.to_string()) };
                out.push(format!("{} changed {k} {x} -> {y}", a.path));
            }
        }
    }
    for a in &was.services {
        let b = now.services.iter().find(|b| b.name == a.name).map(|b| b.state.as_str()).unwrap_or("not read");
        if a.state != b {
            out.push(format!("service {} was {} and is now {b}", a.name, a.state));
        }
    }
    out
}

/// An epoch time as stat or find print it (`1796236463.080978153`), as a UTC date to the
/// nanosecond; anything else as it is.
fn when(epoch: &str) -> String {
    let (secs, frac) = epoch.split_once('.').unwrap_or((epoch, "0"));
    let nanos: u32 = format!("{:0<9}", &frac[..frac.len().min(9)]).parse().unwrap_or(0);
    match secs.parse::<i64>().ok().and_then(|s| chrono::DateTime::from_timestamp(s, nanos)) {
        Some(t) => t.format("%Y-%m-%d %H:%M:%S%.9f UTC").to_string(),
        None => epoch.to_string(),
    }
}

fn article(kind: &str) -> String {
    match kind {
        "absent" => "absent".into(),
        k => format!("a {k}"),
    }
}

/// The first entry of a folder that differs: added, removed or changed.
fn listing_change(was: &[String], now: &[String]) -> Option<String> {
    let split = |l: &String| -> (String, String) {
        let mut it = l.splitn(2, '\t');
        (it.next().unwrap_or_default().to_string(), it.next().unwrap_or_default().to_string())
    };
    let a: BTreeMap<String, String> = was.iter().map(split).collect();
    let b: BTreeMap<String, String> = now.iter().map(split).collect();
    for (k, v) in &a {
        match b.get(k) {
            None => return Some(format!("{k} was removed")),
            Some(w) if w != v => {
                let f = |s: &str| s.split('\t').map(str::to_string).collect::<Vec<_>>();
                let (x, y) = (f(v), f(w));
                let names = ["type", "size", "mode", "owner", "mtime"];
                let changed: Vec<String> = names
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| x.get(*i) != y.get(*i))
                    .map(|(i, n)| match *n {
                        "size" => format!("size {} -> {}", human_bytes(x.get(i).and_then(|s| s.parse().ok()).unwrap_or(0)), human_bytes(y.get(i).and_then(|s| s.parse().ok()).unwrap_or(0))),
                        "mtime" => format!("mtime {} -> {}", when(x.get(i).map(String::as_str).unwrap_or("-")), when(y.get(i).map(String::as_str).unwrap_or("-"))),
                        n => format!("{n} {} -> {}", x.get(i).map(String::as_str).unwrap_or("-"), y.get(i).map(String::as_str).unwrap_or("-")),
                    })
                    .collect();
                return Some(format!("{k} changed {}", changed.join(", ")));
            }
            _ => {}
        }
    }
    b.keys().find(|k| !a.contains_key(*k)).map(|k| format!("{k} was added"))
}

/// What to fingerprint on one host: every path and service its changing steps touch, read as
/// root when a step becomes another user (the data folders are theirs).
pub fn targets(steps: &[StepEntry]) -> (Vec<String>, Vec<ServiceProbe>, Option<String>) {
    let mut paths: Vec<String> = steps.iter().flat_map(|s| s.paths.iter().cloned()).collect();
    paths.sort();
    paths.dedup();
    let mut probes: Vec<ServiceProbe> = Vec::new();
    for p in steps.iter().flat_map(|s| s.probes.iter()) {
        if !probes.iter().any(|q| q.name == p.name) {
            probes.push(p.clone());
        }
    }
    let read_as = steps.iter().any(|s| s.become_user.is_some()).then(|| "root".to_string());
    (paths, probes, read_as)
}

/// Reads a host's fingerprint over its connection, in one command.
pub async fn read_fingerprint(conn: &crate::transport::Connection, steps: &[StepEntry], max_bytes: u64) -> Result<Fingerprint, String> {
    let (paths, probes, read_as) = targets(steps);
    if paths.iter().any(|p| p.contains('\n') || p.contains('\t')) {
        return Err("a touched path holds a newline or a tab; recover cannot fingerprint it".into());
    }
    let script = fingerprint_script(&paths, &probes, read_as.as_deref(), max_bytes);
    let cmd = crate::transport::Cmd::shell(script).become_user(read_as.clone()).label("read the plan's fingerprint");
    let out = conn.exec(&cmd).await.map_err(|e| e.to_string())?;
    parse_fingerprint(&out, &paths, &probes, read_as, max_bytes)
}
