//! `lineinfile`: one line of a file present (replacing the line a `regexp` or `search_string`
//! finds, or added after/before a matching line, at the end or the beginning), or every
//! matching line absent. The rules are ansible-core's, case by case (the module suite
//! compares them with ansible-playbook). Written through [`crate::modules::write`]: diff, temp file,
//! `validate`, rename; changing a file that exists is an overwrite for the safety engine.

use async_trait::async_trait;
use documented::Documented;
use serde::Deserialize;
use serde_json::{json, Value as Json};

use crate::error::{SResult, SourceError};
use crate::modules::support::write::{backup_name, plan_write_over, WriteSpec};
use crate::modules::{OWNER_ARG, GROUP_ARG, VALIDATE_ARG, BACKUP_ARG, UNSAFE_WRITES_ARG, de, opt, req, typed, ArgSpec, Kind, Module, Plan, StepCtx, StepError};
use crate::playbook::Task;
use crate::pyre;

/// `lineinfile`: one line of a file, present (added, or replacing the last line matching `regexp`
/// or `search_string`) or absent (every matching line removed).
///
/// Returns: `changed`, `msg` (`line added`, `line replaced`, `N line(s) removed`, ...), `backup`
/// (the kept copy) with `backup: true`.
///
/// Check mode: reads the file and shows the diff; writes nothing.
#[derive(Documented)]
pub struct LineInFile;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(alias = "dest", alias = "destfile", alias = "name")]
    path: String,
    state: Option<String>,
    #[serde(alias = "regex")]
    regexp: Option<String>,
    search_string: Option<String>,
    #[serde(alias = "value")]
    line: Option<Json>,
    insertafter: Option<String>,
    insertbefore: Option<String>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    backrefs: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    create: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    backup: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    firstmatch: Option<bool>,
    validate: Option<String>,
    #[serde(default, deserialize_with = "de::mode")]
    mode: Option<u32>,
    owner: Option<String>,
    group: Option<String>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    unsafe_writes: Option<bool>,
}

const SPEC: &[ArgSpec] = &[
    req("path", Kind::Str).aliases(&["dest", "destfile", "name"]).doc("The file to edit."),
    opt("state", Kind::Str).default("present").doc("`present` (the line is there) or `absent` (every matching line removed)."),
    opt("regexp", Kind::Str).aliases(&["regex"]).doc("A Python regular expression: the last matching line is replaced (or removed)."),
    opt("search_string", Kind::Str).doc("A literal string: the last line containing it is replaced (or removed)."),
    opt("line", Kind::Any).aliases(&["value"]).doc("The line to put in the file."),
    opt("insertafter", Kind::Str).default("EOF").doc("Add a new line after the last line matching this, or `EOF`."),
    opt("insertbefore", Kind::Str).doc("Add a new line before the last line matching this, or `BOF`."),
    opt("backrefs", Kind::Bool).default("false").doc("Expand `regexp` groups in `line`; change nothing when nothing matches."),
    opt("create", Kind::Bool).default("false").doc("Create the file when it does not exist."),
    BACKUP_ARG,
    opt("firstmatch", Kind::Bool).default("false").doc("`insertafter`/`insertbefore` use the first matching line."),
    VALIDATE_ARG,
    opt("mode", Kind::Any).doc("The file's mode (octal like `0644`, or symbolic)."),
    OWNER_ARG,
    GROUP_ARG,
    UNSAFE_WRITES_ARG,
];

/// The file split as Python's `readlines()` does: each line keeps its `\n`.
pub fn split_lines(bytes: &[u8]) -> Vec<Vec<u8>> {
    bytes.split_inclusive(|b| *b == b'\n').map(<[u8]>::to_vec).collect()
}

fn strip_eol(l: &[u8]) -> &[u8] {
    let mut end = l.len();
    while end > 0 && matches!(l[end - 1], b'\n' | b'\r') {
        end -= 1;
    }
    &l[..end]
}

/// Python's `$` matches before a final `\n`: the `regex` crate's only at the very end, so a
/// line is searched without its `\n`.
fn searchable(l: &[u8]) -> &[u8] {
    l.strip_suffix(b"\n").unwrap_or(l)
}

/// What `state: present` makes of the lines, and ansible-core's message.
pub struct Present<'a> {
    pub regexp: Option<&'a crate::pyre::Regex>,
    pub search_string: Option<&'a str>,
    pub line: &'a str,
    pub insertafter: Option<&'a str>,
    pub insertbefore: Option<&'a str>,
    pub ins: Option<&'a crate::pyre::Regex>,
    pub backrefs: bool,
    pub firstmatch: bool,
}

pub fn present(lines: &mut Vec<Vec<u8>>, p: &Present<'_>) -> &'static str {
    let b_line = p.line.as_bytes();
    let nl = b"\n".as_slice();
    let mut index: [i64; 2] = [-1, -1];
    let mut matched: Option<Vec<u8>> = None; // the expanded line, when backrefs apply
    let mut found = false;
    if let Some(re) = p.regexp {
        for (i, l) in lines.iter().enumerate() {
            if let Some(c) = re.captures(searchable(l)) {
                index[0] = i as i64;
                found = true;
                matched = Some(pyre::expand(&c, p.line));
                if p.firstmatch {
                    break;
                }
            }
        }
    }
    if let Some(s) = p.search_string {
        for (i, l) in lines.iter().enumerate() {
            if memchr::memmem::find(l, s.as_bytes()).is_some() {
                index[0] = i as i64;
                found = true;
                if p.firstmatch {
                    break;
                }
            }
        }
    }
    if !found {
        for (i, l) in lines.iter().enumerate() {
            if b_line == strip_eol(l) {
                index[0] = i as i64;
            } else if p.ins.is_some_and(|r| r.is_match(searchable(l))) {
                if p.insertafter.is_some() {
                    index[1] = i as i64 + 1;
                    if p.firstmatch {
                        break;
                    }
                }
                if p.insertbefore.is_some() {
                    index[1] = i as i64;
                    if p.firstmatch {
                        break;
                    }
                }
            }
        }
    }
    let with_nl = |b: &[u8]| [b, nl].concat();
    let at = |i: i64| i as usize;
    if index[0] != -1 {
        let mut new_line = match (&matched, p.backrefs) {
            (Some(m), true) => m.clone(),
            _ => b_line.to_vec(),
        };
        if !new_line.ends_with(nl) {
            new_line.extend_from_slice(nl);
        }
        if lines[at(index[0])] != new_line {
            lines[at(index[0])] = new_line;
            return "line replaced";
        }
        return "";
    }
    if p.backrefs {
        // Nothing: the line cannot be made without the regexp's groups.
        return "";
    }
    if p.insertbefore == Some("BOF") || p.insertafter == Some("BOF") {
        lines.insert(0, with_nl(b_line));
        return "line added";
    }
    if p.insertafter == Some("EOF") || index[1] == -1 {
        if lines.last().is_some_and(|l| !l.ends_with(b"\n") && !l.ends_with(b"\r")) {
            lines.push(nl.to_vec());
        }
        lines.push(with_nl(b_line));
        return "line added";
    }
    if p.insertafter.is_some() && index[1] != -1 {
        if lines.len() == at(index[1]) {
            if strip_eol(&lines[at(index[1]) - 1]) != b_line {
                lines.push(with_nl(b_line));
                return "line added";
            }
        } else if b_line != strip_eol(&lines[at(index[1])]) {
            lines.insert(at(index[1]), with_nl(b_line));
            return "line added";
        }
        return "";
    }
    lines.insert(at(index[1]), with_nl(b_line));
    "line added"
}

/// `state: absent`: every line that matches removed; how many were.
pub fn absent(lines: &mut Vec<Vec<u8>>, regexp: Option<&crate::pyre::Regex>, search_string: Option<&str>, line: Option<&str>) -> usize {
    let before = lines.len();
    lines.retain(|l| {
        let hit = match (regexp, search_string) {
            (Some(r), _) => r.is_match(searchable(l)),
            (None, Some(s)) => memchr::memmem::find(l, s.as_bytes()).is_some(),
            (None, None) => line.is_some_and(|x| x.as_bytes() == strip_eol(l)),
        };
        !hit
    });
    before - lines.len()
}

fn line_text(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Null => String::new(),
        Json::Bool(b) => if *b { "True".into() } else { "False".into() },
        other => other.to_string(),
    }
}

#[async_trait]
impl Module for LineInFile {
    fn name(&self) -> &'static str {
        "lineinfile"
    }
    fn doc(&self) -> &'static str {
        Self::DOCS
    }
    fn spec(&self) -> &'static [ArgSpec] {
        SPEC
    }
    fn validate(&self, task: &Task) -> SResult<()> {
        let has = |k: &str| crate::modules::certainly_given(task, k);
        for (a, b) in [("insertbefore", "insertafter"), ("regexp", "search_string"), ("regex", "search_string"), ("backrefs", "search_string")] {
            if has(a) && has(b) {
                return Err(SourceError::new(task.arg_span(b), format!("lineinfile: '{a}' and '{b}' are mutually exclusive")));
            }
        }
        crate::modules::support::write::check_validate("lineinfile", task)?;
        for k in ["regexp", "regex", "insertafter", "insertbefore"] {
            if let Some(p) = task.args.get(k).and_then(Json::as_str).filter(|p| !crate::template::is_template(p) && !matches!(*p, "EOF" | "BOF")) {
                // A warning: ansible-core's Python may run what recover cannot (a backreference),
                // and a task a `when` skips never compiles it; the step fails if it runs.
                if let Err(e) = pyre::compile(p) {
                    eprintln!("[WARNING]: {}: lineinfile: {k}: {e}; the step fails if it runs", task.arg_span(k));
                }
            }
        }
        Ok(())
    }
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        crate::modules::exclusive("lineinfile", args, &[("insertbefore", "insertafter"), ("regexp", "search_string"), ("regex", "search_string"), ("backrefs", "search_string")])?;
        let a: Args = typed("lineinfile", args)?;
        let _ = a.unsafe_writes;
        let state = a.state.as_deref().unwrap_or("present");
        if !matches!(state, "present" | "absent") {
            return Err(StepError::failed(format!("lineinfile: value of state must be one of: absent, present, got: {state}")));
        }
        let compile = |k: &str, p: &Option<String>| -> Result<Option<crate::pyre::Regex>, StepError> {
            p.as_deref().map(|p| pyre::compile(p).map_err(|e| StepError::failed(format!("lineinfile: {k}: {e}")))).transpose()
        };
        let regexp = compile("regexp", &a.regexp)?;
        // ansible-core's warnings for a pattern that matches every line.
        let mut warnings: Vec<&str> = Vec::new();
        if a.regexp.as_deref() == Some("") {
            warnings.push("The regular expression is an empty string, which will match every line in the file. This may have unintended consequences, such as replacing the last line in the file rather than appending. If this is desired, use '^' to match every line in the file and avoid this warning.");
        }
        if a.search_string.as_deref() == Some("") {
            warnings.push("The search string is an empty string, which will match every line in the file. This may have unintended consequences, such as replacing the last line in the file rather than appending.");
        }
        let (st, bytes) = ctx.stat_read(&a.path).await?;
        crate::modules::support::write::refuse_dir(&st, &a.path)?;
        let line = a.line.as_ref().map(line_text);
        let mut lines = match &bytes {
            Some(b) => split_lines(b),
            None if state == "absent" => {
                let mut plan = Plan::ok();
                plan.result.insert("msg".into(), json!("file not present"));
                return Ok(plan);
            }
            None if a.create.unwrap_or(false) => Vec::new(),
            None if st.is_some() => return Err(StepError::failed(format!("lineinfile: {} exists but cannot be read as the task's user", a.path))),
            None => return Err(StepError::Failed { msg: format!("Destination {} does not exist !", a.path), result: json!({"rc": 257}) }),
        };
        let mut result = serde_json::Map::new();
        let msg = if state == "present" {
            if a.backrefs.unwrap_or(false) && regexp.is_none() {
                return Err(StepError::failed("regexp is required with backrefs=true"));
            }
            let Some(line) = line.as_deref() else { return Err(StepError::failed("line is required with state=present")) };
            let (after, before) = match (a.insertafter.as_deref(), a.insertbefore.as_deref()) {
                (None, None) => (Some("EOF"), None),
                other => other,
            };
            let ins_pat = match (after, before) {
                (Some(p), _) if !matches!(p, "BOF" | "EOF") => Some(p.to_string()),
                (_, Some(p)) if p != "BOF" => Some(p.to_string()),
                _ => None,
            };
            let ins = compile("insertafter/insertbefore", &ins_pat)?;
            let p = Present { regexp: regexp.as_ref(), search_string: a.search_string.as_deref(), line, insertafter: after, insertbefore: before, ins: ins.as_ref(), backrefs: a.backrefs.unwrap_or(false), firstmatch: a.firstmatch.unwrap_or(false) };
            present(&mut lines, &p).to_string()
        } else {
            if a.regexp.is_none() && a.search_string.is_none() && line.is_none() {
                return Err(StepError::failed("one of line, search_string, or regexp is required with state=absent"));
            }
            let n = absent(&mut lines, regexp.as_ref(), a.search_string.as_deref(), line.as_deref());
            result.insert("found".into(), json!(n));
            if n > 0 { format!("{n} line(s) removed") } else { String::new() }
        };
        let content: Vec<u8> = lines.concat();
        let content_changed = bytes.as_deref() != Some(content.as_slice()) && !(bytes.is_none() && msg.is_empty());
        if bytes.is_none() && !content_changed {
            return Ok(Plan::ok());
        }
        // A check run takes no backup, and says none (as ansible-core).
        let backup = (a.backup.unwrap_or(false) && !ctx.check).then(|| backup_name(&a.path));
        let spec = WriteSpec { dest: a.path.clone(), content, mode: a.mode, owner: a.owner, group: a.group, validate: a.validate, validate_in_place: false, backup };
        let mode = a.mode;
        let mut plan = plan_write_over(ctx, spec, (st.clone(), bytes.clone()))?;
        crate::modules::support::write::add_mode_diff(ctx, &mut plan, &a.path, &st, mode);
        if bytes.is_none() {
            crate::modules::support::write::make_parent_first(&mut plan, &a.path);
        }
        let attrs = plan.changed() && !content_changed;
        let msg = match (msg.is_empty() || !content_changed, attrs) {
            (false, _) => msg,
            (true, true) => "ownership, perms or SE linux context changed".to_string(),
            (true, false) => String::new(),
        };
        plan.result.insert("msg".into(), json!(msg));
        plan.result.insert("backup".into(), plan.result.get("backup_file").cloned().unwrap_or(json!("")));
        plan.result.remove("backup_file");
        plan.result.extend(result);
        if !warnings.is_empty() {
            plan.result.insert("warnings".into(), json!(warnings));
            plan.note = Some(format!("[WARNING]: {}", warnings.join("; ")));
        }
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str, p: Present<'_>) -> (String, &'static str) {
        let mut lines = split_lines(text.as_bytes());
        let msg = present(&mut lines, &p);
        (String::from_utf8(lines.concat()).unwrap(), msg)
    }
    fn base(line: &str) -> Present<'_> {
        Present { regexp: None, search_string: None, line, insertafter: Some("EOF"), insertbefore: None, ins: None, backrefs: false, firstmatch: false }
    }

    #[test]
    fn ansible_rules_for_present() {
        let re = pyre::compile("^port").unwrap();
        assert_eq!(run("a\nport 1\nb\n", Present { regexp: Some(&re), ..base("port 2") }), ("a\nport 2\nb\n".into(), "line replaced"));
        assert_eq!(run("a\nb", base("c")), ("a\nb\nc\n".into(), "line added"));
        assert_eq!(run("a\nc\n", base("c")), ("a\nc\n".into(), ""));
        let ins = pyre::compile("^a").unwrap();
        assert_eq!(run("a\nb\n", Present { insertafter: Some("^a"), ins: Some(&ins), ..base("x") }).0, "a\nx\nb\n");
        assert_eq!(run("a\nb\n", Present { insertafter: None, insertbefore: Some("^a"), ins: Some(&ins), ..base("x") }).0, "x\na\nb\n");
        let bre = pyre::compile(r"^(\w+)=old$").unwrap();
        assert_eq!(run("k=old\n", Present { regexp: Some(&bre), backrefs: true, ..base(r"\1=new") }).0, "k=new\n");
        assert_eq!(run("z\n", Present { regexp: Some(&bre), backrefs: true, ..base(r"\1=new") }), ("z\n".into(), ""));
    }
}
