//! `recover list`: every playbook with its description, hosts and the steps
//! that change or remove things.

use super::Global;
use crate::error::SourceError;

pub fn run(g: &Global) -> anyhow::Result<i32> {
    let found = crate::assets::playbooks();
    if g.output == super::Output::Json {
        let mut bad = 0;
        for (name, path, source) in &found {
            let root = &source.root;
            let doc = match crate::playbook::load(path, root, &crate::modules::BUILTINS) {
                Ok(pb) => serde_json::json!({
                    "name": name, "path": path.display().to_string(), "source": source.kind.as_str(), "description": pb.description(),
                    "plays": pb.plays.iter().map(|p| serde_json::json!({
                        "hosts": p.hosts,
                        "destructive_steps": p.all_tasks().into_iter().filter_map(|t| crate::modules::destructive(t).map(|why| serde_json::json!({"task": t.display_name(), "why": why}))).collect::<Vec<_>>(),
                    })).collect::<Vec<_>>(),
                }),
                Err(e) => {
                    bad += 1;
                    serde_json::json!({"name": name, "path": path.display().to_string(), "source": source.kind.as_str(), "error": e.to_string()})
                }
            };
            outln!("{doc}")?;
        }
        return Ok(if bad > 0 { 1 } else { 0 });
    }
    if found.is_empty() {
        outln!("no playbooks found (searched the project, ~/.config/recover, /etc/recover and the built-in set)")?;
        return Ok(0);
    }
    let mut bad = 0;
    for (name, path, source) in found {
        let root = source.root.clone();
        match crate::playbook::load(&path, &root, &crate::modules::BUILTINS) {
            Ok(pb) => {
                let from = match source.kind {
                    crate::assets::Kind::Builtin => "built-in".to_string(),
                    k => format!("{}: {}", k.as_str(), path.display()),
                };
                outln!("{}  ({from})", console::style(&name).bold())?;
                outln!("  {}", pb.description())?;
                for play in &pb.plays {
                    outln!("  hosts: {}", play.hosts)?;
                    let steps: Vec<String> = play
                        .all_tasks()
                        .into_iter()
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
