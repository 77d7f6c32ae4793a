//! `backup`: a verified archive of paths on the host (see
//! [`crate::safety::backup`]), named as the SOP names its artifacts. A later
//! destructive step whose paths it covers needs no backup of its own.
//!
//! ```yaml
//! - backup:
//!     path: "{{ pg_data_dir }}"
//!     dest: "{{ pg_backup_dir }}"
//!     name: "14-main-before-pg-resetwal-{{ recover_timestamp }}.tgz"
//! ```

use async_trait::async_trait;
use documented::Documented;
use serde::Deserialize;
use serde_json::{json, Value as Json};

use crate::modules::{de, opt, typed, ArgSpec, Kind, Module, Outcome, Plan, StepCtx, StepError};
use crate::safety::backup::{self, BackupSpec};

/// `backup`: a verified archive of paths on the host, named as the SOP names its artifacts; a later
/// destructive step whose paths it covers needs no backup of its own.
///
/// Returns: `archive` (the archive's path on the host), `paths`, `dest`, `name`; the backup is also
/// recorded in the run log and `recover backups`.
///
/// Check mode: plans the archive (its name and paths) and takes none.
#[derive(Documented)]
pub struct Backup;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(default, alias = "paths", deserialize_with = "de::list_loose")]
    path: Vec<String>,
    dest: Option<String>,
    name: Option<String>,
    service: Option<String>,
    component: Option<String>,
}

#[async_trait]
impl Module for Backup {
    fn name(&self) -> &'static str {
        "backup"
    }
    fn doc(&self) -> &'static str {
        Self::DOCS
    }
    fn spec(&self) -> &'static [ArgSpec] {
        const S: &[ArgSpec] = &[
            opt("path", Kind::List).aliases(&["paths"]).doc("The paths to archive."),
            opt("dest", Kind::Str).doc("The folder on the host the archive is written to."),
            opt("name", Kind::Str).doc("The archive's file name (SOP naming; made unique if taken)."),
            opt("service", Kind::Str).doc("The service whose data it is (named in the archive and the record)."),
            opt("component", Kind::Str).doc("The component the archive belongs to (named in the record)."),
        ];
        S
    }
    fn validate(&self, task: &crate::playbook::Task) -> crate::error::SResult<()> {
        if task.args.get("path").is_none() && task.args.get("paths").is_none() {
            return Err(crate::error::SourceError::new(task.module_span.clone(), "backup needs `path` (a path or a list of paths)"));
        }
        Ok(())
    }
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        let a: Args = typed("backup", args)?;
        let dest = match a.dest {
            Some(d) => d,
            None => ctx
                .vars
                .get_attr("recover_backup_root")
                .ok()
                .filter(|v| !v.is_undefined())
                .map(|v| crate::template::pyrepr::py_str(&v))
                .unwrap_or_else(|| "/var/backups/recover".into()),
        };
        let stem = match (&a.service, &a.component) {
            (Some(s), Some(c)) => format!("{s}-{c}"),
            (Some(s), None) => s.clone(),
            _ => a.path.first().map(|p| p.trim_end_matches('/').rsplit('/').next().unwrap_or("backup").to_string()).unwrap_or_else(|| "backup".into()),
        };
        let run_id = ctx.vars.get_attr("recover_run_id").ok().filter(|v| !v.is_undefined()).map(|v| crate::template::pyrepr::py_str(&v)).unwrap_or_default();
        let name = a.name.unwrap_or_else(|| backup::archive_name(&stem, &run_id));
        let mut plan = Plan::ok();
        plan.changes.push(format!("back up {} to {dest}/{name} (verified)", a.path.join(", ")));
        plan.result.insert("spec".into(), json!({ "paths": a.path, "dest": dest, "name": name }));
        Ok(plan)
    }
    async fn apply(&self, ctx: &StepCtx<'_>, plan: Plan) -> Result<Outcome, StepError> {
        let spec = plan.result.get("spec").cloned().unwrap_or_default();
        let paths: Vec<String> = spec["paths"].as_array().map(|a| a.iter().filter_map(|p| p.as_str().map(str::to_string)).collect()).unwrap_or_default();
        let run_id = ctx.vars.get_attr("recover_run_id").ok().map(|v| crate::template::pyrepr::py_str(&v)).unwrap_or_default();
        let spec = BackupSpec {
            paths,
            dest_dir: spec["dest"].as_str().unwrap_or_default().to_string(),
            name: spec["name"].as_str().unwrap_or_default().to_string(),
            task: ctx.task.display_name(),
            run_id,
        };
        let record = backup::take(&ctx.remote(), &spec).await.map_err(|e| {
            if e.lost {
                StepError::Unreachable(format!("host {}: {e}", ctx.host))
            } else {
                StepError::Failed { msg: format!("host {}: {e}", ctx.host), result: json!({"backup_failed": true}) }
            }
        })?;
        let mut result = serde_json::Map::new();
        result.insert("backup".into(), serde_json::to_value(&record).unwrap_or_default());
        result.insert("archive".into(), json!(record.archive));
        result.insert("sha256".into(), json!(record.sha256));
        Ok(Outcome { changed: true, result })
    }
}
