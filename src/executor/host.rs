//! One host through one play: connected (and locked), its facts gathered (once per run), the
//! play's templated `vars_files` found, its tasks run, then its handlers.

use super::connect::{connect, ConnectError};
use super::state::HostState;
use super::step::{self, StepEnd};
use super::{flow, ConnMap, HostEnd, PlayEnv};
use crate::report::Status;
use crate::transport::Connection;

/// Runs the play on `host`; how the host ended.
pub(super) async fn run_host(env: &PlayEnv, host: &str, conns: &ConnMap, state: &mut HostState) -> HostEnd {
    state.place.clear();
    let first = env.play.all_tasks().first().map(|t| t.display_name()).unwrap_or_else(|| "connect".into());
    let first = if conns.lock().await.contains_key(host) { first } else { format!("connect ({first})") };
    env.reporter.busy(host, "connecting");
    let fork = match &env.gate {
        Some(g) => g.fork().await,
        None => None,
    };
    let connected = connect(env, host, conns).await;
    drop(fork);
    let conn = match connected {
        Ok(c) => c,
        Err(e) => {
            let (status, msg, end) = match e {
                ConnectError::Unreachable(m) => (Status::Unreachable, m, HostEnd::Unreachable),
                ConnectError::Locked(m) => (Status::Refused, m, HostEnd::Refused),
            };
            flow::report(env, host, first, status, Some(msg), None, None);
            return end;
        }
    };
    if let Some(end) = gather(env, host, &conn, conns, state).await {
        return end;
    }
    // Templated vars_files, found with the host's facts (a play's own: an earlier play's go).
    state.vars_files.clear();
    state.handlers.clear();
    if !env.play.vars_files.is_empty() {
        if let Err(e) = step::load_vars_files(env, host, state) {
            flow::report(env, host, "vars_files".into(), Status::Failed, Some(e.to_string()), None, None);
            return HostEnd::Failed;
        }
    }
    let flow = flow::run_items(env, host, &conn, &env.play.tasks, state).await;
    // Handlers run after the tasks (and after a failure with force_handlers).
    let flow = match flow {
        // As Ansible: a host ended by `meta: end_host`/`end_play` runs no handlers.
        flow::Flow::Continue => flow::run_handlers(env, host, &conn, state).await,
        flow::Flow::Failed if env.play.force_handlers => {
            flow::run_handlers(env, host, &conn, state).await;
            flow::Flow::Failed
        }
        f => f,
    };
    match flow {
        flow::Flow::Continue | flow::Flow::EndHost | flow::Flow::EndPlay => HostEnd::Ok,
        flow::Flow::Failed => HostEnd::Failed,
        flow::Flow::Refused => HostEnd::Refused,
        flow::Flow::Interrupted => HostEnd::Interrupted,
        flow::Flow::Unreachable => {
            // A delegated host that could not be reached leaves this host's own connection (and
            // its lock) in place, to be released at the end of the run.
            if !state.delegate_unreachable {
                conns.lock().await.remove(host);
            }
            HostEnd::Unreachable
        }
    }
}

/// gather_facts (on unless the play says no, as in Ansible): once per host per run, the later
/// plays reuse the facts. `Some(end)`: the host stops there.
async fn gather(env: &PlayEnv, host: &str, conn: &Connection, conns: &ConnMap, state: &mut HostState) -> Option<HostEnd> {
    if !env.play.gather_facts.unwrap_or(gathering_default()) {
        return None;
    }
    if state.gathered {
        flow::report(env, host, "Gathering Facts".into(), Status::Ok, None, Some("facts gathered earlier in this run".into()), None);
        return None;
    }
    let mut args = serde_json::json!({ "gather_subset": env.play.gather_subset });
    if let Some(t) = env.play.gather_timeout {
        args["gather_timeout"] = t.into();
    }
    if let Some(p) = &env.play.fact_path {
        args["fact_path"] = p.clone().into();
    }
    let task = crate::playbook::Task::synthetic("Gathering Facts", "setup", args, env.play.span.clone());
    match step::run_task(env, host, conn, &task, state).await {
        StepEnd::Continue => None,
        StepEnd::Failed => Some(HostEnd::Failed),
        StepEnd::Refused => Some(HostEnd::Refused),
        StepEnd::Unreachable => {
            conns.lock().await.remove(host);
            Some(HostEnd::Unreachable)
        }
    }
}

/// Whether a play without `gather_facts:` gathers: `gathering` in ansible.cfg or
/// `ANSIBLE_GATHERING` (`implicit`, the default, gathers; `explicit` does not; `smart` gathers
/// once, as recover always does).
fn gathering_default() -> bool {
    crate::ansible_cfg::current().get("gathering").as_deref().map(str::trim) != Some("explicit")
}
