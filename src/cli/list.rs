//! `recover list`: every playbook with its description, hosts and the steps
//! that change or remove things.

use super::Global;
use crate::error::SourceError;

pub fn run(g: &Global) -> anyhow::Result<i32> {
    let root = super::project_root();
    let names = super::play::playbook_names(&root);
    if g.output == super::Output::Json {
        let mut bad = 0;
        for name in &names {
            let path = super::play::find_playbook(&root, name)?;
            let doc = match crate::playbook::load(&path, &root) {
                Ok(pb) => serde_json::json!({
                    "name": name, "path": path.display().to_string(), "description": pb.description(),
                    "plays": pb.plays.iter().map(|p| serde_json::json!({
                        "hosts": p.hosts,
                        "destructive_steps": p.tasks.iter().filter_map(|t| crate::modules::destructive(t).map(|why| serde_json::json!({"task": t.display_name(), "why": why}))).collect::<Vec<_>>(),
                    })).collect::<Vec<_>>(),
                }),
                Err(e) => {
                    bad += 1;
                    serde_json::json!({"name": name, "path": path.display().to_string(), "error": e.to_string()})
                }
            };
            outln!("{doc}")?;
        }
        return Ok(if bad > 0 { 1 } else { 0 });
    }
    if names.is_empty() {
        outln!("no playbooks in {}/playbooks", root.display())?;
        return Ok(0);
    }
    let mut bad = 0;
    for name in names {
        let path = root.join("playbooks").join(format!("{name}.yml"));
        let path = if path.is_file() { path } else { root.join("playbooks").join(format!("{name}.yaml")) };
        match crate::playbook::load(&path, &root) {
            Ok(pb) => {
                outln!("{}", console::style(&name).bold())?;
                outln!("  {}", pb.description())?;
                for play in &pb.plays {
                    outln!("  hosts: {}", play.hosts)?;
                    let steps: Vec<String> = play
                        .tasks
                        .iter()
                        .filter_map(|t| crate::modules::destructive(t).map(|why| format!("    ! {}  ({why})", t.display_name())))
                        .collect();
                    if steps.is_empty() {
                        outln!("  destructive steps: none")?;
                    } else {
                        outln!("  destructive steps:")?;
                        for s in steps {
                            outln!("{s}")?;
                        }
                    }
                }
                outln!()?;
            }
            Err(e) => {
                bad += 1;
                print_err(&name, &e)?;
            }
        }
    }
    Ok(if bad > 0 { 1 } else { 0 })
}

fn print_err(name: &str, e: &SourceError) -> anyhow::Result<()> {
    outln!("{}  (does not load)\n  {e}\n", console::style(name).bold().red())
}
