//! `find`: files under `paths` by name (`patterns`, `excludes`: globs, or Python regexps with
//! `use_regex`), type, age, size, content (`contains`), mode and depth, as ansible-core's find
//! walks them (os.walk order: each folder's files, then its folders; hidden names left out
//! unless `hidden`). Read-only: it runs in dry-run too. One `find -printf` per path.

use async_trait::async_trait;
use documented::Documented;
use serde::Deserialize;
use serde_json::{json, Value as Json};

use crate::modules::{de, opt, typed, ArgSpec, Kind, Module, Plan, StepCtx, StepError};
use crate::pyre;
use crate::transport::{quote, Cmd};

/// `find`: files and folders under paths, by name pattern, content, age, size, type and mode.
///
/// Returns: `files` (each with `path` and its stat fields), `matched`, `examined`, `skipped_paths`,
/// `msg`.
///
/// Check mode: runs as in a real run (read-only).
#[derive(Documented)]
pub struct Find;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(alias = "name", alias = "path", deserialize_with = "de::list_loose")]
    paths: Vec<String>,
    #[serde(default, alias = "pattern", deserialize_with = "de::list_loose")]
    patterns: Vec<String>,
    #[serde(default, alias = "exclude", deserialize_with = "de::list_loose")]
    excludes: Vec<String>,
    contains: Option<String>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    read_whole_file: Option<bool>,
    file_type: Option<String>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    recurse: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    hidden: Option<bool>,
    age: Option<Json>,
    age_stamp: Option<String>,
    size: Option<Json>,
    #[serde(default, deserialize_with = "de::u64_loose")]
    depth: Option<u64>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    follow: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    get_checksum: Option<bool>,
    #[serde(alias = "checksum", alias = "checksum_algo")]
    checksum_algorithm: Option<String>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    use_regex: Option<bool>,
    mode: Option<Json>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    exact_mode: Option<bool>,
    #[serde(default, deserialize_with = "de::u64_loose")]
    limit: Option<u64>,
    encoding: Option<String>,
}

const SPEC: &[ArgSpec] = &[
    opt("paths", Kind::List).aliases(&["name", "path"]).doc("The folders to search."),
    opt("patterns", Kind::List).aliases(&["pattern"]).doc("Shell globs (or regular expressions with `use_regex`) the base name must match."),
    opt("excludes", Kind::List).aliases(&["exclude"]).doc("Globs (or regular expressions) of base names to leave out."),
    opt("contains", Kind::Str).doc("A regular expression a file's content must match."),
    opt("read_whole_file", Kind::Bool).default("false").doc("Match `contains` against the whole file, not line by line."),
    opt("file_type", Kind::Str).default("file").doc("`file`, `directory`, `link` or `any`."),
    opt("recurse", Kind::Bool).default("false").doc("Search below the folders too."),
    opt("hidden", Kind::Bool).default("false").doc("Include names starting with a dot."),
    opt("age", Kind::Any).doc("Newer (negative) or older than this, like `2d`, `-1h`."),
    opt("age_stamp", Kind::Str).default("mtime").doc("Which time `age` compares: `mtime`, `atime` or `ctime`."),
    opt("size", Kind::Any).doc("Larger (or smaller, negative) than this, like `10m`."),
    opt("depth", Kind::Int).doc("How many levels below the folders to look."),
    opt("follow", Kind::Bool).default("false").doc("Follow links to folders."),
    opt("get_checksum", Kind::Bool).default("false").doc("Return each file's checksum."),
    opt("checksum_algorithm", Kind::Str).aliases(&["checksum", "checksum_algo"]).default("sha1").doc("The algorithm of the checksums."),
    opt("use_regex", Kind::Bool).default("false").doc("`patterns` and `excludes` are regular expressions."),
    opt("mode", Kind::Any).doc("Only entries with this mode (see `exact_mode`)."),
    opt("exact_mode", Kind::Bool).default("true").doc("`mode` must equal the entry's, not be contained in it."),
    opt("limit", Kind::Int).doc("Stop after this many matches."),
    opt("encoding", Kind::Str).doc("The encoding `contains` reads files in."),
];

/// One entry as `find -printf` gives it.
#[derive(Debug, Clone)]
struct Entry {
    path: String,
    name: String,
    parent: String,
    /// `f`, `d`, `l`, ...; `target` is what a link points at (`N` when broken).
    kind: char,
    target: char,
    mode: u32,
    size: u64,
    uid: u32,
    gid: u32,
    owner: String,
    group: String,
    inode: u64,
    dev: u64,
    nlink: u64,
    atime: f64,
    mtime: f64,
    ctime: f64,
}

const FORMAT: &str = "%y\\t%Y\\t%m\\t%s\\t%U\\t%G\\t%u\\t%g\\t%i\\t%D\\t%n\\t%A@\\t%T@\\t%C@\\t%h\\t%f\\t%p\\0";

fn parse(out: &[u8]) -> Vec<Entry> {
    out.split(|b| *b == 0).filter(|r| !r.is_empty()).filter_map(|r| {
        let r = String::from_utf8_lossy(r);
        let f: Vec<&str> = r.splitn(17, '\t').collect();
        if f.len() < 17 {
            return None;
        }
        Some(Entry {
            kind: f[0].chars().next()?, target: f[1].chars().next()?, mode: u32::from_str_radix(f[2], 8).ok()?, size: f[3].parse().ok()?,
            uid: f[4].parse().unwrap_or(0), gid: f[5].parse().unwrap_or(0), owner: f[6].into(), group: f[7].into(), inode: f[8].parse().unwrap_or(0),
            dev: f[9].parse().unwrap_or(0), nlink: f[10].parse().unwrap_or(0), atime: f[11].parse().unwrap_or(0.0), mtime: f[12].parse().unwrap_or(0.0),
            ctime: f[13].parse().unwrap_or(0.0), parent: f[14].into(), name: f[15].into(), path: f[16].into(),
        })
    }).collect()
}

/// Python's fnmatch: `*`, `?`, `[seq]`, `[!seq]`, over the whole name.
pub fn fnmatch(name: &str, pat: &str) -> bool {
    let mut re = String::from("^");
    let chars: Vec<char> = pat.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            '[' => match chars[i + 1..].iter().position(|c| *c == ']').map(|j| j + i + 1) {
                Some(end) if end > i + 1 => {
                    let mut set: String = chars[i + 1..end].iter().collect();
                    if let Some(rest) = set.strip_prefix('!') {
                        set = format!("^{rest}");
                    }
                    re.push('[');
                    re.push_str(&set.replace('\\', "\\\\"));
                    re.push(']');
                    i = end;
                }
                _ => re.push_str("\\["),
            },
            c => re.push_str(&regex::escape(&c.to_string())),
        }
        i += 1;
    }
    re.push('$');
    regex::RegexBuilder::new(&re).dot_matches_new_line(true).build().is_ok_and(|r| r.is_match(name))
}

fn unit_value(v: &Json, units: &[(char, u64)], what: &str) -> Result<i64, StepError> {
    let s = match v {
        Json::String(s) => s.to_lowercase(),
        other => other.to_string(),
    };
    let (num, unit) = match s.chars().last() {
        Some(c) if c.is_ascii_alphabetic() => (&s[..s.len() - 1], Some(c)),
        _ => (s.as_str(), None),
    };
    let n: i64 = num.parse().map_err(|_| StepError::failed(format!("failed to process {what}")))?;
    let mult = match unit {
        None => 1,
        Some(u) => units.iter().find(|(c, _)| *c == u).map(|(_, m)| *m).ok_or_else(|| StepError::failed(format!("failed to process {what}")))?,
    };
    Ok(n * mult as i64)
}

#[async_trait]
impl Module for Find {
    fn name(&self) -> &'static str {
        "find"
    }
    fn doc(&self) -> &'static str {
        Self::DOCS
    }
    fn spec(&self) -> &'static [ArgSpec] {
        SPEC
    }
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        let a: Args = typed("find", args)?;
        if a.paths.is_empty() {
            return Err(StepError::failed("missing required arguments: paths"));
        }
        if a.encoding.as_deref().is_some_and(|e| !e.to_lowercase().starts_with("utf")) {
            return Err(StepError::failed("find: encodings other than utf-8 are not supported by recover"));
        }
        let use_regex = a.use_regex.unwrap_or(false);
        let patterns = if a.patterns.is_empty() { vec![if use_regex { ".*".to_string() } else { "*".to_string() }] } else { a.patterns.clone() };
        let compile = |p: &String| pyre::compile(p).map_err(|e| StepError::failed(format!("find: {e}")));
        let (pre, exre): (Vec<_>, Vec<_>) = if use_regex {
            (patterns.iter().map(compile).collect::<Result<_, _>>()?, a.excludes.iter().map(compile).collect::<Result<_, _>>()?)
        } else {
            (Vec::new(), Vec::new())
        };
        // Python's re.match: anchored at the start only.
        let rmatch = |r: &pyre::Regex, name: &str| r.find(name.as_bytes()).is_some_and(|m| m.start() == 0) || r.captures_iter(name.as_bytes()).iter().any(|c| c.get(0).is_some_and(|m| m.start() == 0));
        let name_ok = |name: &str| -> bool {
            let hit = |i: usize| if use_regex { rmatch(&pre[i], name) } else { fnmatch(name, &patterns[i]) };
            let excluded = || if use_regex { exre.iter().any(|r| rmatch(r, name)) } else { a.excludes.iter().any(|e| fnmatch(name, e)) };
            (0..patterns.len()).any(hit) && (a.excludes.is_empty() || !excluded())
        };
        let age = a.age.as_ref().map(|v| unit_value(v, &[('s', 1), ('m', 60), ('h', 3600), ('d', 86400), ('w', 604800)], "age")).transpose()?;
        let size = a.size.as_ref().map(|v| unit_value(v, &[('b', 1), ('k', 1024), ('m', 1 << 20), ('g', 1 << 30), ('t', 1 << 40)], "size")).transpose()?;
        let stamp = a.age_stamp.clone().unwrap_or_else(|| "mtime".into());
        let want_mode = match &a.mode {
            None | Some(Json::Null) => None,
            Some(Json::String(s)) => Some(u32::from_str_radix(s.trim_start_matches("0o"), 8).map_err(|_| StepError::failed(format!("find: mode must be octal, got {s:?}")))?),
            Some(other) => return Err(StepError::failed(format!("argument 'mode' is not a string and conversion is not allowed, value is of type {}", if other.is_number() { "int" } else { "other" }))),
        };
        let content = a.contains.as_deref().map(|c| pyre::compile(c).map_err(|e| StepError::failed(format!("find: contains: {e}")))).transpose()?;
        let file_type = a.file_type.clone().unwrap_or_else(|| "file".into());
        if !matches!(file_type.as_str(), "file" | "directory" | "link" | "any") {
            return Err(StepError::failed(format!("find: value of file_type must be one of: any, directory, file, link, got: {file_type}")));
        }
        if a.limit == Some(0) {
            return Err(StepError::failed("limit cannot be 0 (use None for unlimited)"));
        }
        let now = ctx.run(Cmd::argv(["date", "+%s"])).await?.stdout_str().trim().parse::<f64>().unwrap_or(0.0);
        let recurse = a.recurse.unwrap_or(false);
        let mut files: Vec<Json> = Vec::new();
        let mut examined = 0u64;
        let mut skipped = serde_json::Map::new();
        let mut msg = "All paths examined".to_string();
        'paths: for path in &a.paths {
            let p = quote::quote(path);
            let depth = if recurse { a.depth.map(|d| format!(" -maxdepth {d}")).unwrap_or_default() } else { " -maxdepth 1".into() };
            let follow = if a.follow.unwrap_or(false) { "-L " } else { "" };
            let out = ctx.run(Cmd::shell(format!("if [ ! -d {p} ]; then echo NOTDIR >&2; exit 3; fi; find {follow}{p} -mindepth 1{depth} -printf '{FORMAT}' 2>/dev/null; true"))).await?;
            if out.rc == 3 {
                skipped.insert(path.clone(), json!(format!("'{path}' is not a directory")));
                msg = "Not all paths examined, check warnings for details".into();
                continue;
            }
            let entries = parse(&out.stdout);
            // os.walk order: per folder, its files then its folders; folders entered in that order.
            let mut by_parent: std::collections::HashMap<String, Vec<Entry>> = std::collections::HashMap::new();
            for e in entries {
                by_parent.entry(e.parent.clone()).or_default().push(e);
            }
            let root = path.trim_end_matches('/').to_string();
            let root = if root.is_empty() { "/".to_string() } else { root };
            let mut stack = vec![root.clone()];
            let mut order: Vec<Entry> = Vec::new();
            let mut first = true;
            while let Some(dir) = stack.pop() {
                let list = by_parent.remove(&dir).unwrap_or_default();
                let is_dir = |e: &Entry| e.kind == 'd' || (e.kind == 'l' && e.target == 'd');
                let (dirs, plain): (Vec<Entry>, Vec<Entry>) = list.into_iter().partition(|e| is_dir(e));
                examined += (dirs.len() + plain.len()) as u64;
                let subdirs: Vec<String> = dirs.iter().filter(|d| d.kind == 'd' || a.follow.unwrap_or(false)).map(|d| d.path.clone()).collect();
                order.extend(plain);
                order.extend(dirs);
                if recurse || first {
                    for d in subdirs.into_iter().rev() {
                        stack.push(d);
                    }
                }
                if !recurse {
                    break;
                }
                first = false;
            }
            for e in order {
                if e.name.starts_with('.') && !a.hidden.unwrap_or(false) {
                    continue;
                }
                let kind_ok = match file_type.as_str() {
                    "any" => true,
                    "directory" => e.kind == 'd',
                    "file" => e.kind == 'f',
                    _ => e.kind == 'l',
                };
                if !kind_ok || !name_ok(&e.name) {
                    continue;
                }
                let t = match stamp.as_str() { "atime" => e.atime, "ctime" => e.ctime, _ => e.mtime };
                if let Some(age) = age {
                    let d = now - t;
                    if !((age >= 0 && d >= age.unsigned_abs() as f64) || (age < 0 && d <= age.unsigned_abs() as f64)) {
                        continue;
                    }
                }
                if let (Some(size), true) = (size, e.kind == 'f') {
                    if !((size >= 0 && e.size >= size.unsigned_abs()) || (size < 0 && e.size <= size.unsigned_abs())) {
                        continue;
                    }
                }
                if let Some(m) = want_mode {
                    let bits = e.mode & 0o7777;
                    if !(if a.exact_mode.unwrap_or(true) { bits == m } else { bits & m == m }) {
                        continue;
                    }
                }
                let mut checksum = None;
                if e.kind == 'f' && (content.is_some() || a.get_checksum.unwrap_or(false)) {
                    let bytes = ctx.read(&e.path).await?.unwrap_or_default();
                    if let (Some(re), "file") = (&content, file_type.as_str()) {
                        let hit = if a.read_whole_file.unwrap_or(false) { re.is_match(&bytes) } else { bytes.split(|b| *b == b'\n').any(|l| re.is_match(l)) };
                        if !hit {
                            continue;
                        }
                    }
                    if a.get_checksum.unwrap_or(false) {
                        checksum = Some(crate::modules::files::stat::digest(a.checksum_algorithm.as_deref().unwrap_or("sha1"), &bytes).map_err(StepError::failed)?);
                    }
                }
                let m = e.mode & 0o7777;
                let bit = |b: u32| m & b != 0;
                let mut r = json!({
                    "path": e.path, "mode": format!("{m:04o}"), "isdir": e.kind == 'd', "ischr": e.kind == 'c', "isblk": e.kind == 'b',
                    "isreg": e.kind == 'f', "isfifo": e.kind == 'p', "islnk": e.kind == 'l', "issock": e.kind == 's', "uid": e.uid, "gid": e.gid,
                    "size": e.size, "inode": e.inode, "dev": e.dev, "nlink": e.nlink, "atime": e.atime, "mtime": e.mtime, "ctime": e.ctime,
                    "gr_name": e.group, "pw_name": e.owner, "wusr": bit(0o200), "rusr": bit(0o400), "xusr": bit(0o100), "wgrp": bit(0o020),
                    "rgrp": bit(0o040), "xgrp": bit(0o010), "woth": bit(0o002), "roth": bit(0o004), "xoth": bit(0o001), "isuid": bit(0o4000), "isgid": bit(0o2000),
                });
                if let Some(c) = checksum {
                    r["checksum"] = json!(c);
                }
                files.push(r);
                if a.limit.is_some_and(|l| files.len() as u64 == l) {
                    msg = "Limit of matches reached".into();
                    break 'paths;
                }
            }
        }
        let matched = files.len();
        Ok(Plan::done(json!({"files": files, "matched": matched, "examined": examined, "msg": msg, "skipped_paths": skipped, "changed": false})))
    }
}

#[cfg(test)]
mod tests {
    use super::fnmatch;

    #[test]
    fn fnmatch_is_pythons() {
        assert!(fnmatch("a.log", "*.log"));
        assert!(!fnmatch("a.log.1", "*.log"));
        assert!(fnmatch("f1", "f[0-9]"));
        assert!(fnmatch("fx", "f[!0-9]"));
        assert!(fnmatch("a+b", "a+b"));
    }
}
