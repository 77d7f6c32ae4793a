//! `copy` (from `content` or a local `src` file) and `template` (a Jinja2
//! file rendered with the host's variables). Both write through
//! [`super::write`]: diff, temp file, `validate`, atomic rename.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value as Json;

use super::write::{plan_write, WriteSpec};
use super::{de, find_src, opt, req, typed, ArgSpec, Kind, Module, Plan, StepCtx, StepError};

pub struct Copy;
pub struct Template;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(alias = "path")]
    dest: String,
    src: Option<String>,
    content: Option<Json>,
    #[serde(default, deserialize_with = "de::mode")]
    mode: Option<u32>,
    owner: Option<String>,
    group: Option<String>,
    validate: Option<String>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    validate_in_place: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    backup: Option<bool>,
    /// `force: false`: only when the destination does not exist yet.
    #[serde(default, deserialize_with = "de::bool_loose")]
    force: Option<bool>,
    /// copy: `src` is a file on the host, not on the controller.
    #[serde(default, deserialize_with = "de::bool_loose")]
    remote_src: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    follow: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    local_follow: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    decrypt: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    unsafe_writes: Option<bool>,
    /// template: `\n` (the default), `\r\n` or `\r` for the written file's line ends.
    newline_sequence: Option<String>,
    output_encoding: Option<String>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    trim_blocks: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_loose")]
    lstrip_blocks: Option<bool>,
}

const COPY_SPEC: &[ArgSpec] = &[
    req("dest", Kind::Str), opt("src", Kind::Str), opt("content", Kind::Any), opt("mode", Kind::Any), opt("owner", Kind::Str),
    opt("group", Kind::Str), opt("validate", Kind::Str), opt("validate_in_place", Kind::Bool), opt("backup", Kind::Bool),
    opt("force", Kind::Bool), opt("remote_src", Kind::Bool), opt("follow", Kind::Bool), opt("local_follow", Kind::Bool),
    opt("decrypt", Kind::Bool), opt("unsafe_writes", Kind::Bool),
];
const TEMPLATE_SPEC: &[ArgSpec] = &[
    req("src", Kind::Str), req("dest", Kind::Str), opt("mode", Kind::Any), opt("owner", Kind::Str), opt("group", Kind::Str),
    opt("validate", Kind::Str), opt("validate_in_place", Kind::Bool), opt("backup", Kind::Bool), opt("force", Kind::Bool),
    opt("follow", Kind::Bool), opt("newline_sequence", Kind::Str), opt("output_encoding", Kind::Str), opt("trim_blocks", Kind::Bool),
    opt("lstrip_blocks", Kind::Bool), opt("unsafe_writes", Kind::Bool),
];

fn spec_of(ctx: &StepCtx<'_>, a: Args, content: Vec<u8>) -> WriteSpec {
    let backup = (a.backup.unwrap_or(false) && !ctx.check).then(|| super::write::backup_name(&a.dest));
    WriteSpec { dest: a.dest, content, mode: a.mode, owner: a.owner, group: a.group, validate: a.validate, validate_in_place: a.validate_in_place.unwrap_or(false), backup }
}

/// `force: false` and the destination exists: nothing to do (Ansible's rule for copy and template).
async fn kept_by_force(ctx: &StepCtx<'_>, a: &Args) -> Result<bool, StepError> {
    Ok(a.force == Some(false) && ctx.run(crate::transport::Cmd::argv(["test", "-e", &a.dest])).await?.rc == 0)
}

fn local_src(ctx: &StepCtx<'_>, src: &str) -> Result<std::path::PathBuf, StepError> {
    find_src(src, ctx.task, ctx.playbook_dir, ctx.project_root).ok_or_else(|| {
        StepError::Input(crate::error::SourceError::new(ctx.task.arg_span("src"), format!("source file '{src}' not found")).help("looked in the role's templates/ and files/, the playbook's folder and the project's templates/"))
    })
}

#[async_trait]
impl Module for Copy {
    fn name(&self) -> &'static str {
        "copy"
    }
    fn spec(&self) -> &'static [ArgSpec] {
        COPY_SPEC
    }
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        let mut a: Args = typed("copy", args)?;
        // As Ansible: a file copied to `dir/` (or to a folder that exists) goes into it, and a
        // `dir/` that does not exist yet is made.
        let mut mkdir = None;
        if let (None, Some(src)) = (&a.content, &a.src) {
            let base = std::path::Path::new(src).file_name().map(|b| b.to_string_lossy().into_owned()).unwrap_or_default();
            let dir = a.dest.trim_end_matches('/').to_string();
            let is_dir = ctx.run(crate::transport::Cmd::argv(["test", "-d", &dir])).await?.rc == 0;
            if a.dest.ends_with('/') || is_dir {
                if !is_dir {
                    mkdir = Some(dir.clone());
                }
                a.dest = format!("{dir}/{base}");
            }
        }
        let _ = (a.follow, a.local_follow, a.decrypt, a.unsafe_writes);
        if kept_by_force(ctx, &a).await? {
            return Ok(Plan::ok());
        }
        let content = match (&a.content, &a.src) {
            (Some(Json::String(s)), _) => s.clone().into_bytes(),
            (None, Some(src)) if a.remote_src.unwrap_or(false) => match ctx.stat_read(src).await? {
                (Some(st), Some(bytes)) if st.kind == crate::facts::FileKind::File => bytes,
                (Some(st), _) if st.kind == crate::facts::FileKind::Dir => {
                    return Err(StepError::failed(format!("copy: remote_src {src} is a directory; recover copies single files with remote_src")));
                }
                (Some(_), _) => return Err(StepError::failed(format!("copy: remote_src {src} cannot be read as the task's user"))),
                (None, _) => return Err(StepError::failed(format!("Source {src} not found"))),
            },
            (Some(other), _) => crate::template::pyjson::dumps(other, None, false, false).into_bytes(),
            (None, Some(src)) => {
                let p = local_src(ctx, src)?;
                crate::vault::read_file(&p).map_err(|e| StepError::failed(format!("copy: {e}")))?
            }
            (None, None) => return Err(StepError::failed("copy needs `content` or `src`")),
        };
        let remote = a.remote_src.unwrap_or(false);
        let mut plan = plan_write(ctx, spec_of(ctx, a, content)).await?;
        if remote {
            // ansible-core shows no diff for a copy made on the host.
            plan.diff = None;
        }
        if let Some(d) = mkdir {
            plan.changes.insert(0, format!("create folder {d}"));
            plan.commands.insert(0, crate::transport::Cmd::argv(["mkdir", "-p", "--", &d]));
        }
        Ok(plan)
    }
}

#[async_trait]
impl Module for Template {
    fn name(&self) -> &'static str {
        "template"
    }
    fn spec(&self) -> &'static [ArgSpec] {
        TEMPLATE_SPEC
    }
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        let a: Args = typed("template", args)?;
        if let Some(e) = a.output_encoding.as_deref().filter(|e| !matches!(e.to_lowercase().replace('_', "-").as_str(), "utf-8" | "utf8")) {
            return Err(StepError::failed(format!("template: output_encoding {e:?} is not supported by recover (utf-8 only)")));
        }
        if a.trim_blocks == Some(false) || a.lstrip_blocks == Some(true) {
            return Err(StepError::failed("template: trim_blocks: false and lstrip_blocks: true are not supported by recover (it renders with Ansible's defaults)"));
        }
        if kept_by_force(ctx, &a).await? {
            return Ok(Plan::ok());
        }
        let src = a.src.clone().unwrap_or_default();
        let path = local_src(ctx, &src)?;
        let text = crate::vault::read_file(&path).map_err(|e| StepError::failed(format!("template: {e}")))?;
        let text = String::from_utf8(text).map_err(|_| StepError::failed(format!("template: {} is not UTF-8 text", path.display())))?;
        let mut search = Vec::new();
        if let Some(r) = &ctx.task.role_dir {
            search.extend([r.join("templates"), r.clone()]);
        }
        search.extend([ctx.playbook_dir.join("templates"), ctx.playbook_dir.to_path_buf()]);
        let file = crate::template::TemplateFile { src: &src, path: &path, dest: Some(&a.dest) };
        let rendered = ctx.templates.render_template(&text, ctx.vars, &file, &search)?;
        let rendered = match a.newline_sequence.as_deref() {
            None | Some("\n") => rendered,
            Some(seq @ ("\r\n" | "\r")) => rendered.replace('\n', seq),
            Some(other) => return Err(StepError::failed(format!("template: newline_sequence must be one of \\n, \\r, \\r\\n, got {other:?}"))),
        };
        plan_write(ctx, spec_of(ctx, a, rendered.into_bytes())).await
    }
}
