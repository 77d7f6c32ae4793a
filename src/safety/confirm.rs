//! Asking the operator. One prompt at a time (hosts run in parallel), with the
//! progress display paused. `BLOCK` steps need the host name typed; the others
//! take yes / no / all (yes to every remaining prompt of this run) / abort.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{Decision, Policy, Tier};

/// Decides destructive steps for one run.
pub struct Confirmer {
    pub policy: Policy,
    prompt: tokio::sync::Mutex<()>,
    yes_to_all: AtomicBool,
    aborted: AtomicBool,
}

/// Can we ask a person? (stdin and stderr are terminals)
pub fn interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

impl Confirmer {
    pub fn new(policy: Policy) -> Confirmer {
        Confirmer { policy, prompt: tokio::sync::Mutex::new(()), yes_to_all: AtomicBool::new(false), aborted: AtomicBool::new(false) }
    }

    /// Has the operator aborted the run?
    pub fn aborted(&self) -> bool {
        self.aborted.load(Ordering::SeqCst)
    }

    /// The decision for one destructive step; `pause` runs the prompt with the display paused.
    pub async fn decide(&self, host: &str, task: &str, tier: Tier, pause: &(dyn Fn(&mut dyn FnMut()) + Sync)) -> Decision {
        if self.aborted() {
            return Decision::Abort;
        }
        if let Some(d) = self.policy.decide_without_prompt(host, task, tier) {
            return d;
        }
        let _one_at_a_time = self.prompt.lock().await;
        if self.aborted() {
            return Decision::Abort;
        }
        if tier != Tier::Block && self.yes_to_all.load(Ordering::SeqCst) {
            return Decision::Run { how: "prompt: all".into() };
        }
        let mut decision = Decision::Refused { msg: format!("step '{task}' on {host} was declined at the prompt; nothing was changed") };
        tokio::task::block_in_place(|| {
            pause(&mut || {
                decision = ask(host, task, tier);
            })
        });
        match &decision {
            Decision::Abort => self.aborted.store(true, Ordering::SeqCst),
            Decision::Run { how } if how == "prompt: all" => self.yes_to_all.store(true, Ordering::SeqCst),
            _ => {}
        }
        decision
    }
}

fn ask(host: &str, task: &str, tier: Tier) -> Decision {
    let term = console::Term::stderr();
    let declined = || Decision::Refused { msg: format!("step '{task}' on {host} was declined at the prompt; nothing was changed") };
    if tier == Tier::Block {
        let answer = dialoguer::Input::<String>::new()
            .with_prompt(format!("BLOCK step '{task}' on {host}. Type the host name ({host}) to run it, anything else declines"))
            .allow_empty(true)
            .interact_text_on(&term);
        return match answer {
            Ok(a) if a.trim() == host => Decision::Run { how: format!("typed confirmation '{host}'") },
            Ok(a) => Decision::Refused { msg: format!("step '{task}' on {host}: typed {:?}, not {host:?}: declined; nothing was changed", a.trim()) },
            Err(_) => declined(),
        };
    }
    loop {
        let answer = dialoguer::Input::<String>::new()
            .with_prompt(format!("{tier} step '{task}' on {host}. Run it? [y]es / [n]o / [a]ll remaining / [q] abort the run"))
            .interact_text_on(&term);
        match answer.map(|a| a.trim().to_lowercase()) {
            Ok(a) if a == "y" || a == "yes" => return Decision::Run { how: "prompt: yes".into() },
            Ok(a) if a == "a" || a == "all" => return Decision::Run { how: "prompt: all".into() },
            Ok(a) if a == "n" || a == "no" => return declined(),
            Ok(a) if a == "q" || a == "abort" => return Decision::Abort,
            Ok(_) => continue,
            Err(_) => return declined(),
        }
    }
}
