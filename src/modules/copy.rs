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
}

const COPY_SPEC: &[ArgSpec] = &[
    req("dest", Kind::Str), opt("src", Kind::Str), opt("content", Kind::Any), opt("mode", Kind::Any), opt("owner", Kind::Str),
    opt("group", Kind::Str), opt("validate", Kind::Str), opt("validate_in_place", Kind::Bool),
];
const TEMPLATE_SPEC: &[ArgSpec] = &[
    req("src", Kind::Str), req("dest", Kind::Str), opt("mode", Kind::Any), opt("owner", Kind::Str), opt("group", Kind::Str),
    opt("validate", Kind::Str), opt("validate_in_place", Kind::Bool),
];

fn spec_of(a: Args, content: Vec<u8>) -> WriteSpec {
    WriteSpec { dest: a.dest, content, mode: a.mode, owner: a.owner, group: a.group, validate: a.validate, validate_in_place: a.validate_in_place.unwrap_or(false) }
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
        let content = match (&a.content, &a.src) {
            (Some(Json::String(s)), _) => s.clone().into_bytes(),
            (Some(other), _) => crate::template::pyjson::dumps(other, None, false, false).into_bytes(),
            (None, Some(src)) => {
                let p = local_src(ctx, src)?;
                crate::vault::read_file(&p).map_err(|e| StepError::failed(format!("copy: {e}")))?
            }
            (None, None) => return Err(StepError::failed("copy needs `content` or `src`")),
        };
        let mut plan = plan_write(ctx, spec_of(a, content)).await?;
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
        plan_write(ctx, spec_of(a, rendered.into_bytes())).await
    }
}
