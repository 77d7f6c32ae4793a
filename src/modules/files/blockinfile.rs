//! `blockinfile`: keep a marked block in a file (cron tables, config
//! fragments) present with exactly this content, or absent.

use async_trait::async_trait;
use documented::Documented;
use serde::Deserialize;
use serde_json::Value as Json;

use crate::modules::support::write::{plan_write_over, WriteSpec};
use crate::modules::{OWNER_ARG, GROUP_ARG, VALIDATE_ARG, BACKUP_ARG, UNSAFE_WRITES_ARG, de, opt, req, typed, ArgSpec, Kind, Module, Plan, StepCtx, StepError};

/// `blockinfile`: a block of lines between two marker lines, inserted, replaced or removed.
///
/// Returns: `changed`, `msg` (`Block inserted`, `Block removed`, ...); `backup_file` with `backup:
/// true`.
///
/// Check mode: reads the file and shows the diff; writes nothing.
#[derive(Documented)]
pub struct BlockInFile;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(alias = "dest", alias = "destfile", alias = "name")]
    path: String,
    #[serde(default, alias = "content")]
    block: String,
    marker: Option<String>,
    marker_begin: Option<String>,
    marker_end: Option<String>,
    state: Option<String>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    create: Option<bool>,
    insertafter: Option<String>,
    insertbefore: Option<String>,
    #[serde(default, deserialize_with = "de::mode")]
    mode: Option<u32>,
    owner: Option<String>,
    group: Option<String>,
    validate: Option<String>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    backup: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    append_newline: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    prepend_newline: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    unsafe_writes: Option<bool>,
}

/// Where and how the block goes (ansible-core's `blockinfile` rules).
pub struct BlockSpec<'a> {
    pub begin: &'a str,
    pub end: &'a str,
    pub block: &'a str,
    pub present: bool,
    pub after: Option<&'a str>,
    pub before: Option<&'a str>,
    pub prepend_newline: bool,
    pub append_newline: bool,
}

/// The file's new bytes: the block between its markers replaced, added, or removed. An empty
/// block removes it, as in ansible-core.
pub fn apply_block(current: &[u8], b: &BlockSpec<'_>) -> Result<Vec<u8>, String> {
    let nl = b"\n".to_vec();
    let mut lines = crate::modules::files::lineinfile::split_lines(current);
    let (after, before) = match (b.after, b.before) {
        (None, None) => (Some("EOF"), None),
        other => other,
    };
    let insertre = match (after, before) {
        (Some(a), _) if a != "EOF" => Some(crate::pyre::compile(a).map_err(|e| format!("insertafter: {e}"))?),
        (_, Some(p)) if p != "BOF" => Some(crate::pyre::compile(p).map_err(|e| format!("insertbefore: {e}"))?),
        _ => None,
    };
    let marker0 = format!("{}\n", b.begin).into_bytes();
    let marker1 = format!("{}\n", b.end).into_bytes();
    let mut blocklines: Vec<Vec<u8>> = Vec::new();
    if b.present && !b.block.is_empty() {
        let mut block = b.block.as_bytes().to_vec();
        if !block.ends_with(b"\n") {
            block.push(b'\n');
        }
        blocklines.push(marker0.clone());
        blocklines.extend(crate::modules::files::lineinfile::split_lines(&block));
        blocklines.push(marker1.clone());
    }
    let (mut n0, mut n1) = (None, None);
    for (i, l) in lines.iter().enumerate() {
        if *l == marker0 {
            n0 = Some(i);
        }
        if *l == marker1 {
            n1 = Some(i);
        }
    }
    let mut at = match (n0, n1) {
        (Some(a), Some(z)) if a < z => {
            lines.drain(a..=z);
            a
        }
        (Some(a), Some(z)) => {
            lines.drain(z..=a);
            z
        }
        _ => match &insertre {
            // With the multiline flag, ansible-core searches the whole file: the block goes after
            // the line the match ends on (before the line it starts on).
            Some(re) if crate::pyre::has_multiline_flag(after.filter(|a| *a != "EOF").or(before).unwrap_or_default()) => match re.find(current) {
                Some(m) if after.is_some() => current[..m.end()].iter().filter(|c| **c == b'\n').count() + 1,
                Some(m) => current[..m.start()].iter().filter(|c| **c == b'\n').count(),
                None => lines.len(),
            },
            Some(re) => match lines.iter().rposition(|l| re.is_match(l.strip_suffix(b"\n").unwrap_or(l))) {
                Some(i) if after.is_some() => i + 1,
                Some(i) => i,
                None => lines.len(),
            },
            None if before.is_some() => 0,
            None => lines.len(),
        },
    };
    if at > 0 && !lines[at - 1].ends_with(b"\n") {
        lines[at - 1].push(b'\n');
    }
    if b.prepend_newline && b.present && at != 0 && lines[at - 1] != nl {
        lines.insert(at, nl.clone());
        at += 1;
    }
    let n = blocklines.len();
    lines.splice(at..at, blocklines);
    if b.append_newline && b.present {
        let after_block = at + n;
        if after_block < lines.len() && lines[after_block] != nl {
            lines.insert(after_block, nl);
        }
    }
    Ok(lines.concat())
}

#[async_trait]
impl Module for BlockInFile {
    fn name(&self) -> &'static str {
        "blockinfile"
    }
    fn doc(&self) -> &'static str {
        Self::DOCS
    }
    fn spec(&self) -> &'static [ArgSpec] {
        const S: &[ArgSpec] = &[
            req("path", Kind::Str).aliases(&["dest", "destfile", "name"]).doc("The file to edit."),
            opt("block", Kind::Str).aliases(&["content"]).default("").doc("The text between the markers (empty removes the block)."),
            opt("marker", Kind::Str).default("# {mark} ANSIBLE MANAGED BLOCK").doc("The marker line template; `{mark}` becomes `marker_begin` or `marker_end`."),
            opt("marker_begin", Kind::Str).default("BEGIN").doc("What `{mark}` is in the first marker."),
            opt("marker_end", Kind::Str).default("END").doc("What `{mark}` is in the last marker."),
            opt("state", Kind::Str).default("present").doc("`present` or `absent` (the block and its markers removed)."),
            opt("create", Kind::Bool).default("false").doc("Create the file when it does not exist."),
            opt("insertafter", Kind::Str).default("EOF").doc("Put a new block after the last line matching this regular expression, or `EOF`."),
            opt("insertbefore", Kind::Str).doc("Put a new block before the last line matching this regular expression, or `BOF`."),
            opt("mode", Kind::Any).doc("The file's mode (octal like `0644`, or symbolic)."),
            OWNER_ARG,
            GROUP_ARG,
            VALIDATE_ARG,
            BACKUP_ARG,
            opt("append_newline", Kind::Bool).default("false").doc("Add an empty line before a block appended after existing text."),
            opt("prepend_newline", Kind::Bool).default("false").doc("Add an empty line before a block inserted into existing text."),
            UNSAFE_WRITES_ARG,
        ];
        S
    }
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        let a: Args = typed("blockinfile", args)?;
        let marker = a.marker.clone().unwrap_or_else(|| "# {mark} ANSIBLE MANAGED BLOCK".into());
        let begin = marker.replace("{mark}", a.marker_begin.as_deref().unwrap_or("BEGIN"));
        let end = marker.replace("{mark}", a.marker_end.as_deref().unwrap_or("END"));
        let present = a.state.as_deref().unwrap_or("present") != "absent";
        let (st, bytes) = ctx.stat_read(&a.path).await?;
        crate::modules::support::write::refuse_dir(&st, &a.path)?;
        let current = match bytes.clone() {
            Some(bytes) => bytes,
            None if !present => return Ok(Plan::ok()),
            None if a.create.unwrap_or(false) => Vec::new(),
            None if st.is_some() => return Err(StepError::failed(format!("blockinfile: {} exists but cannot be read as the task's user", a.path))),
            None => return Err(StepError::Failed { msg: format!("Path {} does not exist !", a.path), result: serde_json::json!({"rc": 257}) }),
        };
        let _ = a.unsafe_writes;
        let b = BlockSpec {
            begin: &begin, end: &end, block: &a.block, present, after: a.insertafter.as_deref(), before: a.insertbefore.as_deref(),
            prepend_newline: a.prepend_newline.unwrap_or(false), append_newline: a.append_newline.unwrap_or(false),
        };
        let new = apply_block(&current, &b).map_err(StepError::failed)?;
        let msg = match (&bytes, new == current) {
            (_, true) if bytes.is_some() => "",
            (None, _) => "File created",
            _ if !present || a.block.is_empty() => "Block removed",
            _ => "Block inserted",
        };
        if bytes.is_none() && new.is_empty() {
            return Ok(Plan::ok());
        }
        let backup = (a.backup.unwrap_or(false) && !ctx.check).then(|| crate::modules::support::write::backup_name(&a.path));
        let mode = a.mode;
        let spec = WriteSpec { dest: a.path.clone(), content: new, mode: a.mode, owner: a.owner, group: a.group, validate: a.validate, validate_in_place: false, backup };
        let mut plan = plan_write_over(ctx, spec, (st.clone(), bytes.clone()))?;
        crate::modules::support::write::add_mode_diff(ctx, &mut plan, &a.path, &st, mode);
        if bytes.is_none() {
            crate::modules::support::write::make_parent_first(&mut plan, &a.path);
        }
        plan.result.insert("msg".into(), serde_json::json!(msg));
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::{apply_block, BlockSpec};

    #[test]
    fn block_is_added_replaced_and_removed() {
        let spec = |block: &'static str, present: bool| BlockSpec { begin: "# BEGIN X", end: "# END X", block, present, after: None, before: None, prepend_newline: false, append_newline: false };
        let added = apply_block(b"a\n", &spec("one\ntwo", true)).unwrap();
        assert_eq!(added, b"a\n# BEGIN X\none\ntwo\n# END X\n");
        let replaced = apply_block(&added, &spec("three", true)).unwrap();
        assert_eq!(replaced, b"a\n# BEGIN X\nthree\n# END X\n");
        assert_eq!(apply_block(&replaced, &spec("three", true)).unwrap(), replaced);
        assert_eq!(apply_block(&replaced, &spec("", false)).unwrap(), b"a\n");
        assert_eq!(apply_block(&replaced, &spec("", true)).unwrap(), b"a\n", "an empty block removes it");
        let before = BlockSpec { before: Some("^b"), ..spec("x", true) };
        assert_eq!(apply_block(b"b\nb\n", &before).unwrap(), b"b\n# BEGIN X\nx\n# END X\nb\n", "before the last match");
    }
}
