//! `recover doc MODULE`: a module's documentation as `ansible-doc` prints it, read from the
//! module itself (its doc comment and its argument specs), so it cannot drift from the code.

use clap::Args;
use serde_json::json;

use super::{Global, Output};
use crate::modules::{ArgSpec, Kind, Module};

#[derive(Args, Debug)]
pub struct DocArgs {
    /// The module (`lineinfile`, or `ansible.builtin.lineinfile`)
    #[arg(required_unless_present = "list")]
    pub module: Option<String>,
    /// Every module recover runs, with its summary
    #[arg(long, conflicts_with = "module")]
    pub list: bool,
}

/// A module's doc comment in its parts: the summary, what it returns, what check mode does
/// (each paragraph's lines joined).
struct Parts {
    summary: String,
    returns: Option<String>,
    check: Option<String>,
}

fn parts(doc: &str) -> Parts {
    let paras: Vec<String> = doc.split("\n\n").map(|p| p.split_whitespace().collect::<Vec<_>>().join(" ")).filter(|p| !p.is_empty()).collect();
    let find = |word: &str| paras.iter().find_map(|p| p.strip_prefix(word)).map(|p| p.trim().to_string());
    let summary = paras.iter().take_while(|p| !p.starts_with("Returns:") && !p.starts_with("Check mode:")).cloned().collect::<Vec<_>>().join("\n\n");
    Parts { summary, returns: find("Returns:"), check: find("Check mode:") }
}

fn kind_word(k: Kind) -> &'static str {
    match k {
        Kind::Any => "any",
        Kind::Str => "str",
        Kind::Bool => "bool",
        Kind::Int => "int",
        Kind::List => "list",
        Kind::Map => "dict",
    }
}

/// Text wrapped at `width`, each line after `indent`.
fn wrap(text: &str, indent: usize, width: usize) -> String {
    let mut out = String::new();
    for para in text.split("\n\n") {
        if !out.is_empty() {
            out.push('\n');
        }
        let mut line = String::new();
        for word in para.split_whitespace() {
            if !line.is_empty() && indent + line.len() + 1 + word.len() > width {
                out.push_str(&format!("{:indent$}{line}\n", ""));
                line.clear();
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        if !line.is_empty() {
            out.push_str(&format!("{:indent$}{line}\n", ""));
        }
    }
    out
}

/// The summary's first sentence, without the module's name before it, cut to a line.
fn summary_line(m: &dyn Module) -> String {
    let s = parts(m.doc()).summary.replace("\n\n", " ");
    // The summary names the module first (`lineinfile`: ...): the list names it already.
    let s = match s.split_once(": ") {
        Some((head, rest)) if head.starts_with('`') => rest.to_string(),
        _ => s,
    };
    let first = s.split_once(". ").map(|(a, _)| a.to_string()).unwrap_or(s);
    let first = first.trim_end_matches('.');
    if first.chars().count() <= 90 {
        return first.to_string();
    }
    let mut cut: String = first.chars().take(89).collect();
    if let Some(i) = cut.rfind(' ') {
        cut.truncate(i);
    }
    format!("{}...", cut.trim_end_matches([',', ';', ':']))
}

fn arg_json(a: &ArgSpec) -> serde_json::Value {
    json!({"name": a.name, "type": kind_word(a.kind), "required": a.required, "aliases": a.aliases, "default": a.default, "description": a.doc})
}

/// Writes `text` to stdout; a reader that stopped early (`| head`) is not an error.
fn emit(text: &str) -> std::io::Result<()> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// The text `recover doc NAME` prints.
pub fn text(m: &dyn Module) -> String {
    let p = parts(m.doc());
    let origin = match crate::modules::fqcn(m.name()) {
        Some(f) => format!("{f} as recover runs it"),
        None => "recover's own module".into(),
    };
    let mut out = format!("> {}    ({origin})\n\n", m.name().to_uppercase());
    out.push_str(&wrap(&p.summary, 2, 100));
    if m.free_form() {
        out.push_str("\n  Takes a free-form line after the module name (`_raw_params`).\n");
    }
    let spec = m.spec();
    if m.free_keys() {
        out.push_str("\nARGUMENTS: any names (the module checks them itself).\n");
    } else if !spec.is_empty() {
        out.push_str("\nARGUMENTS (= is required):\n");
        for a in spec {
            let mut head = format!("\n{} {}  ({})", if a.required { "=" } else { "-" }, a.name, kind_word(a.kind));
            if let Some(d) = a.default {
                head.push_str(&format!("  default: {}", if d.is_empty() { "\"\"" } else { d }));
            }
            if !a.aliases.is_empty() {
                head.push_str(&format!("  aliases: {}", a.aliases.join(", ")));
            }
            out.push_str(&head);
            out.push('\n');
            out.push_str(&wrap(a.doc, 8, 100));
        }
    }
    if let Some(r) = &p.returns {
        out.push_str("\nRETURNS (to `register`):\n");
        out.push_str(&wrap(r, 2, 100));
    }
    if let Some(c) = &p.check {
        out.push_str("\nCHECK MODE (`--check`, `--dry-run`):\n");
        out.push_str(&wrap(c, 2, 100));
    }
    out
}

pub fn run(g: &Global, a: &DocArgs) -> anyhow::Result<i32> {
    if a.list {
        let mut all = crate::modules::every();
        all.sort_by_key(|m| m.name());
        if g.output == Output::Json {
            let v: serde_json::Map<String, serde_json::Value> = all.iter().map(|m| (m.name().to_string(), json!(summary_line(*m)))).collect();
            emit(&format!("{}\n", serde_json::to_string_pretty(&v)?))?;
        } else {
            let w = all.iter().map(|m| m.name().len()).max().unwrap_or(0);
            emit(&all.iter().map(|m| format!("{:w$}  {}\n", m.name(), summary_line(*m))).collect::<String>())?;
        }
        return Ok(0);
    }
    let name = a.module.as_deref().unwrap_or_default();
    let short = crate::modules::short_name(name);
    let Some(m) = crate::modules::get(short).filter(|_| !crate::modules::unbuilt(short)) else {
        // A module recover does not build in, as the installed ansible-core finds it.
        if let Some(text) = crate::modules::python::describe(name) {
            emit(&text)?;
            return Ok(0);
        }
        let why = crate::modules::not_built(short).unwrap_or_else(|| format!("no module named '{}'", crate::report::clean_line(name)));
        let names = crate::modules::names();
        let hint = match crate::playbook::closest_name(short, &names) {
            Some(c) => format!(" (did you mean '{c}'?)"),
            None => String::new(),
        };
        anyhow::bail!("{why}{hint}; `recover doc --list` lists the modules recover runs");
    };
    if g.output == Output::Json {
        let p = parts(m.doc());
        let v = json!({
            "module": m.name(), "summary": p.summary, "returns": p.returns, "check_mode": p.check,
            "free_form": m.free_form(), "any_arguments": m.free_keys(), "arguments": m.spec().iter().map(arg_json).collect::<Vec<_>>(),
        });
        emit(&format!("{}\n", serde_json::to_string_pretty(&v)?))?;
    } else {
        emit(&text(m))?;
    }
    Ok(0)
}
