//! `replace`: every match of a Python `regexp` (multi-line mode) replaced, in the whole file
//! or in the section between `after` and `before`, as ansible-core's `replace` does. Written
//! through [`crate::modules::write`]; changing a file is an overwrite for the safety engine.

use async_trait::async_trait;
use documented::Documented;
use serde::Deserialize;
use serde_json::{json, Value as Json};

use crate::error::SResult;
use crate::modules::support::write::{backup_name, plan_write_over, WriteSpec};
use crate::modules::{OWNER_ARG, GROUP_ARG, VALIDATE_ARG, BACKUP_ARG, UNSAFE_WRITES_ARG, de, opt, req, typed, ArgSpec, Kind, Module, Plan, StepCtx, StepError};
use crate::playbook::Task;
use crate::pyre;

/// `replace`: every match of a Python regular expression in a file replaced (between `after` and
/// `before` when given).
///
/// Returns: `changed`, `msg` (`N replacements made`); `backup_file` with `backup: true`.
///
/// Check mode: reads the file and shows the diff; writes nothing.
#[derive(Documented)]
pub struct Replace;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(alias = "dest", alias = "destfile", alias = "name")]
    path: String,
    regexp: String,
    #[serde(default)]
    replace: Option<Json>,
    after: Option<String>,
    before: Option<String>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    backup: Option<bool>,
    validate: Option<String>,
    encoding: Option<String>,
    #[serde(default, deserialize_with = "de::mode")]
    mode: Option<u32>,
    owner: Option<String>,
    group: Option<String>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    unsafe_writes: Option<bool>,
}

const SPEC: &[ArgSpec] = &[
    req("path", Kind::Str).aliases(&["dest", "destfile", "name"]).doc("The file to edit."),
    req("regexp", Kind::Str).doc("A Python regular expression; every match is replaced."),
    opt("replace", Kind::Any).default("").doc("The replacement (`\\1`, `\\g<name>` refer to groups)."),
    opt("after", Kind::Str).doc("Only replace after the first match of this."),
    opt("before", Kind::Str).doc("Only replace before the first match of this."),
    BACKUP_ARG,
    VALIDATE_ARG,
    opt("encoding", Kind::Str).default("utf-8").doc("The file's encoding."),
    opt("mode", Kind::Any).doc("The file's mode."),
    OWNER_ARG,
    GROUP_ARG,
    UNSAFE_WRITES_ARG,
];

/// The new text and the number of replacements, or `None` when `after`/`before` match nothing.
pub fn replace_in(text: &[u8], regexp: &str, rep: &str, after: Option<&str>, before: Option<&str>) -> Result<Option<(Vec<u8>, usize)>, String> {
    let section_pat = match (after.filter(|s| !s.is_empty()), before.filter(|s| !s.is_empty())) {
        (Some(a), Some(b)) => Some(format!("{a}(?P<subsection>.*?){b}")),
        (Some(a), None) => Some(format!("{a}(?P<subsection>.*)")),
        (None, Some(b)) => Some(format!("(?P<subsection>.*){b}")),
        (None, None) => None,
    };
    let (start, end) = match &section_pat {
        Some(p) => {
            let re = pyre::compile_flags(p, "s")?;
            let Some(m) = re.captures(text).and_then(|c| c.name("subsection")) else { return Ok(None) };
            (m.start(), m.end())
        }
        None => (0, text.len()),
    };
    let section = &text[start..end];
    let re = pyre::compile_flags(regexp, "m")?;
    let n = re.count(section);
    let rep = crate::pyre::py_replacement(rep);
    let new_section = re.replace_all(section, rep.as_bytes());
    Ok(Some(([&text[..start], &new_section[..], &text[end..]].concat(), n)))
}

#[async_trait]
impl Module for Replace {
    fn name(&self) -> &'static str {
        "replace"
    }
    fn doc(&self) -> &'static str {
        Self::DOCS
    }
    fn spec(&self) -> &'static [ArgSpec] {
        SPEC
    }
    fn validate(&self, task: &Task) -> SResult<()> {
        if let Some(p) = task.args.get("regexp").and_then(Json::as_str).filter(|p| !crate::template::is_template(p)) {
            // A warning, as lineinfile's: the step fails if it runs.
            if let Err(e) = pyre::compile(p) {
                eprintln!("[WARNING]: {}: replace: regexp: {e}; the step fails if it runs", task.arg_span("regexp"));
            }
        }
        crate::modules::support::write::check_validate("replace", task)?;
        Ok(())
    }
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        let a: Args = typed("replace", args)?;
        let _ = a.unsafe_writes;
        if let Some(e) = a.encoding.as_deref().filter(|e| !matches!(e.to_lowercase().replace('_', "-").as_str(), "utf-8" | "utf8" | "ascii")) {
            return Err(StepError::failed(format!("replace: encoding {e:?} is not supported by recover (utf-8 only)")));
        }
        // Python parses the replacement before it reads or searches: a bad escape fails first.
        let rep_text = match &a.replace {
            None | Some(Json::Null) => String::new(),
            Some(Json::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        };
        if let Err(e) = crate::pyre::check_replacement(&rep_text) {
            let msg = format!("Unable to process replace due to error: {e}");
            return Err(StepError::Failed { msg: msg.clone(), result: json!({ "msg": msg }) });
        }
        let (st, bytes) = ctx.stat_read(&a.path).await?;
        crate::modules::support::write::refuse_dir(&st, &a.path)?;
        let Some(text) = bytes.clone() else {
            if st.is_some() {
                return Err(StepError::failed(format!("replace: {} exists but cannot be read as the task's user", a.path)));
            }
            return Err(StepError::Failed { msg: format!("Path {} does not exist !", a.path), result: json!({"rc": 257}) });
        };
        let rep = match &a.replace {
            None | Some(Json::Null) => String::new(),
            Some(Json::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        };
        let Some((new, n)) = replace_in(&text, &a.regexp, &rep, a.after.as_deref(), a.before.as_deref()).map_err(|e| StepError::failed(format!("replace: {e}")))? else {
            let mut plan = Plan::ok();
            plan.result.insert("msg".into(), json!(format!("Pattern for before/after params did not match the given file: {}", section_desc(&a))));
            return Ok(plan);
        };
        let content_changed = n > 0 && new != text;
        let content = if content_changed { new } else { text.clone() };
        let backup = (a.backup.unwrap_or(false) && content_changed && !ctx.check).then(|| backup_name(&a.path));
        let spec = WriteSpec { dest: a.path.clone(), content, mode: a.mode, owner: a.owner, group: a.group, validate: a.validate, validate_in_place: false, backup };
        let mut plan = plan_write_over(ctx, spec, (st, bytes))?;
        let msg = match (content_changed, plan.changed()) {
            (true, _) => format!("{n} replacements made"),
            (false, true) => "ownership, perms or SE linux context changed".into(),
            (false, false) => String::new(),
        };
        plan.result.insert("msg".into(), json!(msg));
        plan.result.insert("rc".into(), json!(0));
        Ok(plan)
    }
}

fn section_desc(a: &Args) -> String {
    match (&a.after, &a.before) {
        (Some(x), Some(y)) => format!("{x}(?P<subsection>.*?){y}"),
        (Some(x), None) => format!("{x}(?P<subsection>.*)"),
        (None, Some(y)) => format!("(?P<subsection>.*){y}"),
        (None, None) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::replace_in;

    #[test]
    fn replaces_in_the_whole_file_or_a_section() {
        let (t, n) = replace_in(b"a=1\nb=1\n", r"=1$", "=2", None, None).unwrap().unwrap();
        assert_eq!((t.as_slice(), n), (b"a=2\nb=2\n".as_slice(), 2));
        let (t, _) = replace_in(b"x\n[s]\nk=1\n[t]\nk=1\n", r"^k=1", "k=9", Some(r"\[s\]"), Some(r"\[t\]")).unwrap().unwrap();
        assert_eq!(t, b"x\n[s]\nk=9\n[t]\nk=1\n");
        assert!(replace_in(b"x\n", "x", "y", Some("nope"), None).unwrap().is_none());
        let (t, _) = replace_in(b"host: a.b\n", r"^host: (\S+)$", r"host: \1.c", None, None).unwrap().unwrap();
        assert_eq!(t, b"host: a.b.c\n");
    }
}
