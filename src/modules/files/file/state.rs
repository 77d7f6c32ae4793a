//! What a path is on the host (kind, mode, owner, times, link target), read with one `stat`
//! per round trip, and how two states differ (the `--diff` of `file`).

use std::collections::BTreeMap;

use serde_json::{json, Value as Json};

use crate::modules::{StepCtx, StepError};
use crate::transport::{quote, Cmd};

/// One path as `stat` sees it (not following a link).
#[derive(Clone, Debug, Default)]
pub(super) struct Node {
    /// stat's `%F`: "directory", "symbolic link", "regular file", ...
    pub(super) kind: String,
    pub(super) mode: u32,
    pub(super) uid: u32,
    pub(super) gid: u32,
    pub(super) nlink: u64,
    pub(super) ino: u64,
    /// Seconds and the text of the fraction, as `%.9Y`.
    pub(super) mtime: String,
    pub(super) atime: String,
}

impl Node {
    pub(super) fn is_dir(&self) -> bool {
        self.kind == "directory"
    }
    pub(super) fn is_link(&self) -> bool {
        self.kind == "symbolic link"
    }
}

/// A path, and when it is a link, where it points and what is there.
#[derive(Clone, Debug, Default)]
pub(super) struct Info {
    pub(super) node: Option<Node>,
    pub(super) link: Option<String>,
    pub(super) real: Option<String>,
    pub(super) target: Option<Node>,
}

impl Info {
    /// ansible-core's `get_state`.
    pub(super) fn state(&self) -> &'static str {
        match &self.node {
            None => "absent",
            Some(n) if n.is_link() => "link",
            Some(n) if n.is_dir() => "directory",
            Some(n) if n.nlink > 1 => "hard",
            Some(_) => "file",
        }
    }
    /// `os.path.exists`: the path, through a link.
    pub(super) fn exists(&self) -> bool {
        match &self.node {
            Some(n) if n.is_link() => self.target.is_some(),
            Some(_) => true,
            None => false,
        }
    }
    /// `os.path.isdir`: through a link.
    pub(super) fn is_dir(&self) -> bool {
        match &self.node {
            Some(n) if n.is_link() => self.target.as_ref().is_some_and(Node::is_dir),
            Some(n) => n.is_dir(),
            None => false,
        }
    }
}

pub(super) const STAT_FMT: &str = "%F|%a|%u|%g|%h|%i|%.9Y|%.9X";

pub(super) fn parse_node(line: &str) -> Option<Node> {
    let f: Vec<&str> = line.split('|').collect();
    if f.len() != 8 {
        return None;
    }
    Some(Node {
        kind: f[0].to_string(),
        mode: u32::from_str_radix(f[1], 8).ok()?,
        uid: f[2].parse().ok()?,
        gid: f[3].parse().ok()?,
        nlink: f[4].parse().ok()?,
        ino: f[5].parse().ok()?,
        mtime: f[6].to_string(),
        atime: f[7].to_string(),
    })
}

/// The shell that prints [`Info`] of the path in `$var`, as `S`/`L`/`R`/`T` lines after `tag`.
pub(super) fn info_script(var: &str, tag: &str) -> String {
    format!(
        "if [ -e \"${var}\" ] || [ -L \"${var}\" ]; then printf '{tag}S\\t'; stat -c '{STAT_FMT}' -- \"${var}\"; else printf '{tag}S\\tABSENT\\n'; fi; \
         if [ -L \"${var}\" ]; then printf '{tag}L\\t'; readlink -- \"${var}\"; printf '{tag}R\\t'; realpath -m -- \"${var}\"; \
         printf '{tag}T\\t'; stat -L -c '{STAT_FMT}' -- \"${var}\" 2>/dev/null || echo ABSENT; fi"
    )
}

pub(super) fn parse_info(text: &str, tag: &str) -> Info {
    let mut info = Info::default();
    for line in text.lines() {
        let Some((t, rest)) = line.split_once('\t') else { continue };
        let Some(k) = t.strip_prefix(tag) else { continue };
        match k {
            "S" => info.node = parse_node(rest),
            "L" => info.link = Some(rest.to_string()),
            "R" => info.real = Some(rest.to_string()),
            "T" => info.target = parse_node(rest),
            _ => {}
        }
    }
    info
}

/// A time of the `%.9Y` form as Python's float `st_mtime` (for the diff).
pub(super) fn py_time(t: &str) -> Json {
    let (s, frac) = t.split_once('.').unwrap_or((t, "0"));
    let secs: f64 = s.parse().unwrap_or(0.0);
    let ns: f64 = format!("{frac:0<9}")[..9].parse().unwrap_or(0.0);
    json!(secs + ns * 1e-9)
}

/// A timestamp argument: `preserve` (None), `now`, or a time in `format` (local time).
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Stamp {
    Preserve,
    Now,
    At(i64),
}

/// Python's `time.strptime` then `time.mktime`, for the formats `%Y%m%d%H%M.%S` and the like.
pub(super) fn stamp(value: &str, format: &str) -> Result<Stamp, StepError> {
    match value {
        "preserve" => return Ok(Stamp::Preserve),
        "now" => return Ok(Stamp::Now),
        _ => {}
    }
    use chrono::TimeZone;
    let naive = chrono::NaiveDateTime::parse_from_str(value, format)
        .or_else(|_| chrono::NaiveDate::parse_from_str(value, format).map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default()))
        .map_err(|e| StepError::failed(format!("Error while obtaining timestamp for time {value} using format {format}: time data {value:?} does not match format {format:?} ({e})")))?;
    let local = chrono::Local.from_local_datetime(&naive).earliest().ok_or_else(|| StepError::failed(format!("Error while obtaining timestamp for time {value}: it does not exist in the local time zone")))?;
    Ok(Stamp::At(local.timestamp()))
}

/// The before/after maps of ansible-core's file diff.
#[derive(Default)]
pub(super) struct Diff {
    pub(super) before: BTreeMap<String, Json>,
    pub(super) after: BTreeMap<String, Json>,
}

impl Diff {
    pub(super) fn initial(path: &str, state: &str, prev: &str) -> Diff {
        let mut d = Diff::default();
        d.before.insert("path".into(), json!(path));
        d.after.insert("path".into(), json!(path));
        if prev != state {
            d.before.insert("state".into(), json!(prev));
            d.after.insert("state".into(), json!(state));
        }
        d
    }
    pub(super) fn set(&mut self, k: &str, b: Json, a: Json) {
        self.before.insert(k.into(), b);
        self.after.insert(k.into(), a);
    }
    pub(super) fn into_file_diff(self, path: &str) -> Option<crate::modules::FileDiff> {
        if self.before == self.after {
            return None;
        }
        let text = |m: &BTreeMap<String, Json>| crate::template::pyjson::dumps(&json!(m), Some(4), true, true).into_bytes();
        Some(crate::modules::FileDiff { path: path.to_string(), before: Some(text(&self.before)), after: Some(text(&self.after)), mode: None, prepared: None })
    }
}

/// What os.walk lists under a folder: its folders and its files, each folder's entries
/// (folders, then files) before those of the folders inside it.
pub(super) async fn walk_list(ctx: &StepCtx<'_>, path: &str) -> Result<Json, StepError> {
    let out = ctx.run(Cmd::shell(format!("find {} -mindepth 1 -printf '%y\\t%h\\t%p\\0' 2>/dev/null; true", quote::quote(path)))).await?;
    let mut by_parent: std::collections::HashMap<String, Vec<(bool, String)>> = std::collections::HashMap::new();
    for rec in out.stdout.split(|b| *b == 0).filter(|r| !r.is_empty()) {
        let rec = String::from_utf8_lossy(rec).into_owned();
        let f: Vec<&str> = rec.splitn(3, '\t').collect();
        if f.len() == 3 {
            by_parent.entry(f[1].to_string()).or_default().push((f[0] == "d", f[2].to_string()));
        }
    }
    let (mut dirs, mut files) = (Vec::new(), Vec::new());
    let mut stack = vec![path.trim_end_matches('/').to_string()];
    while let Some(d) = stack.pop() {
        let list = by_parent.remove(&d).unwrap_or_default();
        let sub: Vec<String> = list.iter().filter(|(is_dir, _)| *is_dir).map(|(_, p)| p.clone()).collect();
        dirs.extend(sub.iter().cloned());
        files.extend(list.iter().filter(|(is_dir, _)| !*is_dir).map(|(_, p)| p.clone()));
        stack.extend(sub.into_iter().rev());
    }
    Ok(json!({"directories": dirs, "files": files}))
}

/// With `follow`, a link stands for what it points to: that path, its state and its stat.
pub(super) fn followed(path: &str, prev: &'static str, info: &Info, follow: bool) -> (String, &'static str, Option<Node>) {
    if !(follow && prev == "link") {
        return (path.to_string(), prev, info.node.clone());
    }
    let node = info.target.clone();
    let st = match &node {
        None => "absent",
        Some(n) if n.is_dir() => "directory",
        Some(n) if n.nlink > 1 => "hard",
        Some(_) => "file",
    };
    (info.real.clone().unwrap_or_else(|| path.to_string()), st, node)
}

/// Where the attributes go: the path, or with `follow` what a link points to.
pub(super) fn attr_target(path: &str, info: &Info, follow: bool) -> (String, Option<Node>) {
    if follow && info.node.as_ref().is_some_and(Node::is_link) {
        return (info.real.clone().unwrap_or_else(|| path.to_string()), info.target.clone());
    }
    (path.to_string(), info.node.clone())
}

pub(super) fn parent_of(path: &str) -> String {
    match path.trim_end_matches('/').rsplit_once('/') {
        Some(("", _)) => "/".into(),
        Some((d, _)) => d.to_string(),
        None => String::new(),
    }
}

pub(super) async fn exists_remote(ctx: &StepCtx<'_>, path: &str) -> Result<bool, StepError> {
    Ok(ctx.run(Cmd::argv(["test", "-e", path])).await?.rc == 0)
}

pub(super) async fn stat_node(ctx: &StepCtx<'_>, path: &str) -> Result<Option<Node>, StepError> {
    let out = ctx.run(Cmd::shell(format!("stat -L -c '{STAT_FMT}' -- {} 2>/dev/null", quote::quote(path)))).await?;
    Ok(parse_node(out.stdout_str().trim()))
}
