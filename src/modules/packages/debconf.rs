//! `debconf`: one answer in a package's debconf database (`postfix/main_mailer_type`), as
//! ansible-core's module sets it: read with `debconf-show` (a password with
//! `debconf-get-selections`), compared as it compares (booleans lower-cased, a multiselect
//! list sorted), written with `debconf-set-selections`. Changing an answer the database already
//! holds replaces it: the database files are backed up first and the tier's approval asked.
//! Registers `current` and `previous`; its diff is ansible-core's before/after of the answer.

use async_trait::async_trait;
use documented::Documented;
use serde_json::{json, Value as Json};

use crate::modules::{opt, req, ArgSpec, Kind, Module, Plan, StepCtx, StepError};
use crate::transport::{quote, Cmd};

/// `debconf`: an answer in the debconf database for a package's question.
///
/// Returns: `current`, `previous`, `msg`.
///
/// Check mode: reads the database and reports whether it would change; changes nothing.
#[derive(Documented)]
pub struct Debconf;

const VTYPES: &[&str] = &["boolean", "error", "multiselect", "note", "password", "seen", "select", "string", "text", "title"];

/// `debconf-show PKG`'s lines (`* question: value`) as a map.
fn selections(text: &str) -> serde_json::Map<String, Json> {
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().trim_start_matches('*').trim().to_string(), json!(v.trim())))
        .collect()
}

/// A value as Python's `to_text` writes it (`True`, `1`, a list as its repr).
fn text_of(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Bool(b) => if *b { "True".into() } else { "False".into() },
        other => crate::template::pyrepr::py_str(&crate::template::to_value(other)),
    }
}

/// ansible-core's diff of a dict: its JSON (sorted keys, four spaces), before against after.
fn dict_diff(before: &serde_json::Map<String, Json>, after: &serde_json::Map<String, Json>) -> String {
    let dump = |m: &serde_json::Map<String, Json>| {
        let sorted: std::collections::BTreeMap<&String, &Json> = m.iter().collect();
        let mut buf = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
        let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
        let _ = serde::Serialize::serialize(&sorted, &mut ser);
        String::from_utf8(buf).unwrap_or_default() + "\n"
    };
    similar::TextDiff::from_lines(&dump(before), &dump(after)).unified_diff().context_radius(3).header("before", "after").to_string()
}

#[async_trait]
impl Module for Debconf {
    fn name(&self) -> &'static str {
        "debconf"
    }
    fn doc(&self) -> &'static str {
        Self::DOCS
    }
    fn spec(&self) -> &'static [ArgSpec] {
        const S: &[ArgSpec] = &[
            req("name", Kind::Str).aliases(&["pkg"]).doc("The package the question belongs to."),
            opt("question", Kind::Str).aliases(&["selection", "setting"]).doc("The debconf question."),
            opt("vtype", Kind::Str).doc("The question's type (`string`, `boolean`, `select`, `password`, ...)."),
            opt("value", Kind::Any).aliases(&["answer"]).doc("The answer."),
            opt("unseen", Kind::Bool).default("false").doc("Do not mark the question as seen."),
        ];
        S
    }
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        let get = |names: &[&str]| names.iter().find_map(|n| args.get(*n)).filter(|v| !v.is_null()).cloned();
        let pkg = get(&["name", "pkg"]).map(|v| text_of(&v)).ok_or_else(|| StepError::failed("debconf: missing required arguments: name"))?;
        let question = get(&["question", "selection", "setting"]).map(|v| text_of(&v));
        let vtype = get(&["vtype"]).map(|v| text_of(&v));
        let value = get(&["value", "answer"]);
        let unseen = args.get("unseen").and_then(crate::modules::de::bool_value).unwrap_or(false);
        if let Some(t) = vtype.as_deref().filter(|t| !VTYPES.contains(t)) {
            return Err(StepError::failed(format!("debconf: value of vtype must be one of: {}, got: {t}", VTYPES.join(", "))));
        }
        let given = [question.is_some(), vtype.is_some(), value.is_some()];
        if given.iter().any(|g| *g) && !given.iter().all(|g| *g) {
            return Err(StepError::failed("debconf: parameters are required together: question, vtype, value"));
        }
        let out = ctx.run(Cmd::shell(format!("debconf-show {}", quote::quote(&pkg)))).await?;
        if out.rc != 0 {
            return Err(StepError::failed(format!("debconf: {}", out.stderr_str().trim())));
        }
        let prev = selections(&out.stdout_str());
        let (Some(question), Some(vtype), Some(value)) = (question, vtype, value) else {
            return Ok(Plan::done(json!({ "current": prev, "msg": "" })));
        };
        // Compared as ansible-core compares them.
        // `shown`: the answer as ansible-core reports it (a list as given, sorted when the
        // question existed; in a real run, joined).
        let mut shown: Option<Json> = None;
        let (want, want_cmp, have_cmp): (String, Json, Option<Json>) = match (vtype.as_str(), &value) {
            ("multiselect", Json::Array(items)) => {
                let given: Vec<String> = items.iter().map(text_of).collect();
                let mut v = given.clone();
                v.sort();
                let have = prev.get(&question).and_then(Json::as_str).map(|e| {
                    let mut h: Vec<String> = e.split(',').map(|i| i.trim().to_string()).collect();
                    h.sort();
                    json!(h)
                });
                let list = if have.is_some() { v.clone() } else { given.clone() };
                if ctx.check {
                    shown = Some(json!(list));
                }
                (list.join(", "), json!(v), have)
            }
            ("boolean", v) => {
                let t = text_of(v).to_lowercase();
                (t.clone(), json!(t), prev.get(&question).and_then(Json::as_str).map(|e| json!(e.to_lowercase())))
            }
            ("password", v) => {
                let t = text_of(v);
                let have = if prev.contains_key(&question) {
                    let sel = ctx.run(Cmd::shell("debconf-get-selections 2>/dev/null")).await?;
                    let text = sel.stdout_str();
                    let found = text.lines().filter(|l| l.starts_with(&pkg)).find_map(|l| {
                        let f: Vec<&str> = l.split('\t').collect();
                        (f.len() > 3 && f[1] == question && f[2] == vtype).then(|| f[3].to_string())
                    });
                    Some(json!(found.unwrap_or_default()))
                } else {
                    None
                };
                (t.clone(), json!(t), have)
            }
            (_, v) => (text_of(v), v.clone(), prev.get(&question).cloned()),
        };
        let changed = have_cmp.as_ref() != Some(&want_cmp);
        if !changed {
            return Ok(Plan::done(json!({ "current": prev, "msg": "" })));
        }
        let mut plan = Plan::ok();
        plan.changes.push(format!("set {pkg} {question} ({vtype})"));
        let line = format!("{pkg} {question} {vtype} {want}\n");
        let mut cmd = vec!["debconf-set-selections".to_string()];
        if unseen {
            cmd.push("-u".into());
        }
        plan.commands.push(Cmd::argv(cmd).stdin(line.into_bytes()).label(format!("debconf-set-selections: {pkg} {question} {vtype}")));
        let before: serde_json::Map<String, Json> = [(question.clone(), prev.get(&question).cloned().unwrap_or(json!("")))].into_iter().collect();
        let current: serde_json::Map<String, Json> = [(question.clone(), shown.clone().unwrap_or_else(|| json!(want.clone())))].into_iter().collect();
        plan.result.insert("current".into(), Json::Object(current.clone()));
        plan.result.insert("previous".into(), Json::Object(before.clone()));
        plan.result.insert("msg".into(), json!(""));
        if vtype != "password" {
            plan.diff = Some(crate::modules::FileDiff { path: "debconf".into(), before: None, after: None, mode: None, prepared: Some(dict_diff(&before, &current)) });
        }
        // Replacing an answer the database holds: its files are backed up first.
        if prev.contains_key(&question) {
            plan.destructive = Some(crate::safety::Destructive {
                reason: format!("replaces the debconf answer {pkg} {question}"),
                paths: vec!["/var/cache/debconf/config.dat".into(), "/var/cache/debconf/passwords.dat".into()],
                ..Default::default()
            });
        }
        Ok(plan)
    }
}
