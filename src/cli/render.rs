//! `recover render TEMPLATE`: a template rendered to stdout, byte for byte as
//! the `template` module would write it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;

use super::Global;
use crate::error::{SourceError, Span};
use crate::executor::VarSources;
use crate::template::{Templates, Vars};

#[derive(Args, Debug)]
pub struct RenderArgs {
    /// Template file (a path, or a name under templates/ or roles/*/templates/)
    pub template: PathBuf,
    /// The path the template is for (its `template_destpath`)
    #[arg(long, value_name = "PATH")]
    pub dest: Option<String>,
}

fn find(root: &Path, t: &Path) -> Option<PathBuf> {
    if t.is_file() {
        return Some(t.to_path_buf());
    }
    let mut dirs = vec![root.join("templates")];
    if let Ok(rd) = std::fs::read_dir(root.join("roles")) {
        dirs.extend(rd.filter_map(|e| e.ok()).map(|e| e.path().join("templates")));
    }
    dirs.into_iter().map(|d| d.join(t)).find(|p| p.is_file())
}

pub fn run(g: &Global, a: &RenderArgs) -> anyhow::Result<i32> {
    let root = super::project_root();
    // A path, else a name under templates/ or roles/*/templates/ along the search path.
    let path = std::iter::once(root.clone())
        .chain(crate::assets::sources().into_iter().map(|s| s.root))
        .find_map(|r| find(&r, &a.template))
        .ok_or_else(|| SourceError::new(Span::file(&a.template), "template not found (as a path, or under templates/ and roles/*/templates/ of the project and the search path)"))?;
    let text = std::fs::read_to_string(&path).map_err(|e| SourceError::new(Span::file(&path), format!("cannot read: {e}")))?;
    let extra = super::extra_vars(g)?;
    let templates = Templates::new();
    let ctx = match &g.host {
        Some(host) => {
            let inventory = Arc::new(super::load_inventory(g)?);
            if !inventory.hosts.contains_key(host) {
                anyhow::bail!("--host {host}: no such host in the inventory");
            }
            let sources = VarSources::new(inventory, templates.clone(), extra, root.join("playbooks").display().to_string(), true, String::new());
            sources.inventory_context(host)
        }
        None => templates.context(extra.into_iter().collect::<Vars>()),
    };
    // Includes look beside the template, then in its role (`roles/R/templates/x` -> `roles/R`)
    // and the project's templates/.
    let mut search = Vec::new();
    if let Some(role) = path.parent().filter(|p| p.ends_with("templates")).and_then(Path::parent) {
        search.extend([role.join("templates"), role.to_path_buf()]);
    }
    search.extend([root.join("templates"), root.clone()]);
    let src = a.template.display().to_string();
    let file = crate::template::TemplateFile { src: &src, path: &path, dest: a.dest.as_deref() };
    let out = templates.render_template(&text, &ctx, &file, &search)?;
    out!("{out}")?;
    Ok(0)
}
