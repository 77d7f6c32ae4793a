//! `blockinfile`: keep a marked block in a file (cron tables, config
//! fragments) present with exactly this content, or absent.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value as Json;

use super::write::{plan_write_over, WriteSpec};
use super::{de, opt, req, typed, ArgSpec, Kind, Module, Plan, StepCtx, StepError};

pub struct BlockInFile;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(alias = "dest", alias = "name")]
    path: String,
    #[serde(default)]
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
}

/// The file's new text: the block between its markers replaced, added, or removed.
pub fn apply_block(current: &str, begin: &str, end: &str, block: &str, present: bool, after: Option<&str>, before: Option<&str>) -> Result<String, String> {
    let mut lines: Vec<String> = current.lines().map(str::to_string).collect();
    let b = lines.iter().position(|l| l == begin);
    let e = lines.iter().position(|l| l == end);
    let mut block_lines = Vec::new();
    if present {
        block_lines.push(begin.to_string());
        block_lines.extend(block.lines().map(str::to_string));
        block_lines.push(end.to_string());
    }
    match (b, e) {
        (Some(b), Some(e)) if b <= e => {
            lines.splice(b..=e, block_lines);
        }
        (Some(_), Some(_)) => return Err(format!("end marker before begin marker ({end:?} / {begin:?})")),
        _ if !present => {}
        _ => {
            let at = match (after, before) {
                (_, Some("BOF")) => 0,
                (_, Some(re)) => {
                    let r = regex::Regex::new(re).map_err(|e| format!("insertbefore: {e}"))?;
                    lines.iter().position(|l| r.is_match(l)).unwrap_or(lines.len())
                }
                (Some(re), None) if re != "EOF" => {
                    let r = regex::Regex::new(re).map_err(|e| format!("insertafter: {e}"))?;
                    lines.iter().rposition(|l| r.is_match(l)).map_or(lines.len(), |i| i + 1)
                }
                _ => lines.len(),
            };
            lines.splice(at..at, block_lines);
        }
    }
    let mut out = lines.join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    Ok(out)
}

#[async_trait]
impl Module for BlockInFile {
    fn name(&self) -> &'static str {
        "blockinfile"
    }
    fn spec(&self) -> &'static [ArgSpec] {
        const S: &[ArgSpec] = &[
            req("path", Kind::Str), opt("block", Kind::Str), opt("marker", Kind::Str), opt("marker_begin", Kind::Str),
            opt("marker_end", Kind::Str), opt("state", Kind::Str), opt("create", Kind::Bool), opt("insertafter", Kind::Str),
            opt("insertbefore", Kind::Str), opt("mode", Kind::Any), opt("owner", Kind::Str), opt("group", Kind::Str), opt("validate", Kind::Str),
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
        let current = match bytes.clone() {
            Some(bytes) => String::from_utf8(bytes).map_err(|_| StepError::failed(format!("blockinfile: {} is not text", a.path)))?,
            None if !present => return Ok(Plan::ok()),
            None if a.create.unwrap_or(false) => String::new(),
            None => return Err(StepError::failed(format!("host {}: {} does not exist (set create: true to create it)", ctx.host, a.path))),
        };
        let new = apply_block(&current, &begin, &end, &a.block, present, a.insertafter.as_deref(), a.insertbefore.as_deref()).map_err(StepError::failed)?;
        let spec = WriteSpec { dest: a.path, content: new.into_bytes(), mode: a.mode, owner: a.owner, group: a.group, validate: a.validate, validate_in_place: false };
        plan_write_over(ctx, spec, (st, bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::apply_block;

    #[test]
    fn block_is_added_replaced_and_removed() {
        let (b, e) = ("# BEGIN X", "# END X");
        let added = apply_block("a\n", b, e, "one\ntwo", true, None, None).unwrap();
        assert_eq!(added, "a\n# BEGIN X\none\ntwo\n# END X\n");
        let replaced = apply_block(&added, b, e, "three", true, None, None).unwrap();
        assert_eq!(replaced, "a\n# BEGIN X\nthree\n# END X\n");
        assert_eq!(apply_block(&replaced, b, e, "three", true, None, None).unwrap(), replaced);
        assert_eq!(apply_block(&replaced, b, e, "", false, None, None).unwrap(), "a\n");
    }
}
