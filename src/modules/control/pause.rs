//! `pause`: wait `seconds` or `minutes`, or until the operator answers a `prompt` on the
//! terminal (`echo: false` hides what is typed), as ansible-core's action: once for the play
//! (the executor runs it as `run_once`), the answer registered as `user_input`, the progress
//! display paused while it asks. Without a terminal a prompt is not waited for (a warning),
//! a timed pause still waits.

use std::io::{BufRead, IsTerminal, Write};

use async_trait::async_trait;
use documented::Documented;
use serde_json::{json, Value as Json};

use crate::error::{SResult, SourceError};
use crate::modules::{opt, ArgSpec, Kind, Module, Plan, StepCtx, StepError};
use crate::playbook::Task;

/// `pause`: waits for a time, or until the operator presses Enter (or types an answer) at `prompt`.
///
/// Returns: `start`, `stop`, `delta`, `user_input`, `echo`.
///
/// Check mode: pauses as in a real run.
#[derive(Documented)]
pub struct Pause;

/// ansible-core's `int` of a value (`"2"`, `2`, `2.7` are 2).
fn int_of(k: &str, v: &Json) -> Result<Option<i64>, StepError> {
    match v {
        Json::Null => Ok(None),
        Json::Number(n) => Ok(Some(n.as_i64().unwrap_or_else(|| n.as_f64().unwrap_or(0.0) as i64))),
        Json::String(s) => s.trim().parse::<i64>().map(Some).or_else(|_| s.trim().parse::<f64>().map(|f| Some(f as i64))).map_err(|_| StepError::failed(format!("argument '{k}' is of type str and we were unable to convert to int: {s:?}"))),
        other => Err(StepError::failed(format!("argument '{k}' must be an integer, got {other}"))),
    }
}

#[async_trait]
impl Module for Pause {
    fn name(&self) -> &'static str {
        "pause"
    }
    fn doc(&self) -> &'static str {
        Self::DOCS
    }
    fn spec(&self) -> &'static [ArgSpec] {
        const S: &[ArgSpec] = &[
            opt("seconds", Kind::Any).doc("Seconds to pause."),
            opt("minutes", Kind::Any).doc("Minutes to pause."),
            opt("prompt", Kind::Str).doc("Text shown while waiting for the operator to press Enter (or type an answer)."),
            opt("echo", Kind::Bool).default("true").doc("Show what the operator types."),
        ];
        S
    }
    fn validate(&self, task: &Task) -> SResult<()> {
        if crate::modules::certainly_given(task, "seconds") && crate::modules::certainly_given(task, "minutes") {
            return Err(SourceError::new(task.arg_span("minutes"), "pause: parameters are mutually exclusive: minutes|seconds"));
        }
        Ok(())
    }
    async fn plan(&self, ctx: &StepCtx<'_>, args: &Json) -> Result<Plan, StepError> {
        crate::modules::exclusive("pause", args, &[("minutes", "seconds")])?;
        let echo = match args.get("echo") {
            None | Some(Json::Null) => true,
            Some(v) => crate::modules::de::bool_value(v).ok_or_else(|| StepError::failed(format!("pause: echo must be true or false, got {v}")))?,
        };
        let (seconds, unit) = match (args.get("minutes").map(|v| int_of("minutes", v)).transpose()?.flatten(), args.get("seconds").map(|v| int_of("seconds", v)).transpose()?.flatten()) {
            (Some(m), _) => (Some(m * 60), "minutes"),
            (None, Some(s)) => (Some(s), "seconds"),
            (None, None) => (None, "minutes"),
        };
        let hidden = if echo { "" } else { " (output is hidden)" };
        let text = args.get("prompt").and_then(Json::as_str).filter(|p| !p.is_empty());
        let prompt = format!("[{}]\n{}{hidden}:", ctx.task.display_name().trim(), text.unwrap_or("Press enter to continue, Ctrl+C to interrupt"));
        let start = std::time::Instant::now();
        let started = chrono::Local::now().format("%Y-%m-%d %H:%M:%S%.6f").to_string();
        let mut warnings = Vec::new();
        let mut user_input = String::new();
        let terminal = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
        match seconds {
            Some(s) => {
                let s = s.max(1);
                eprintln!("Pausing for {s} seconds{hidden}");
                if text.is_some() {
                    eprintln!("{prompt}");
                }
                tokio::time::sleep(std::time::Duration::from_secs(s as u64)).await;
            }
            None if terminal => {
                let mut answer = String::new();
                let mut failed = None;
                tokio::task::block_in_place(|| {
                    ctx.run.pause(&mut || {
                        let read = if echo {
                            eprint!("{prompt}");
                            let _ = std::io::stderr().flush();
                            std::io::stdin().lock().read_line(&mut answer).map(|_| ())
                        } else {
                            crate::safety::confirm::read_hidden(&prompt).map(|p| answer = p)
                        };
                        if let Err(e) = read {
                            failed = Some(e.to_string());
                        }
                        if !echo {
                            eprintln!();
                        }
                    })
                });
                if let Some(e) = failed {
                    return Err(StepError::failed(format!("pause: could not read the answer: {e}")));
                }
                user_input = answer.trim_end_matches(['\r', '\n']).to_string();
            }
            None => warnings.push("Not waiting for response to prompt as stdin is not interactive".to_string()),
        }
        let duration = start.elapsed().as_secs_f64();
        let shown = if unit == "minutes" { (duration / 60.0 * 100.0).round() / 100.0 } else { (duration * 100.0).round() / 100.0 };
        let mut result = json!({
            "changed": false, "rc": 0, "stderr": "", "stdout": format!("Paused for {} {unit}", if shown.fract() == 0.0 { format!("{shown:.1}") } else { shown.to_string() }),
            "start": started, "stop": chrono::Local::now().format("%Y-%m-%d %H:%M:%S%.6f").to_string(), "delta": duration as i64,
            "echo": echo, "user_input": user_input,
        });
        if !warnings.is_empty() {
            result["warnings"] = json!(warnings);
        }
        let mut plan = Plan::done(result);
        if !warnings.is_empty() {
            plan.note = Some(format!("[WARNING]: {}", warnings.join("; ")));
        }
        Ok(plan)
    }
}
