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
    /// "all" answered at a prompt: the highest tier it covers (steps of that tier or lower
    /// run without asking again; a higher tier still asks).
    yes_to_all: std::sync::Mutex<Option<Tier>>,
    aborted: AtomicBool,
    /// Hosts whose own freeze record (read with the lock) forbids --automation.
    host_freezes: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

/// Can we ask a person? (stdin and stderr are terminals)
pub fn interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Woken by SIGINT, SIGTERM and SIGHUP: a prompt that is waiting gives up at once.
static SIGNALLED: AtomicBool = AtomicBool::new(false);

/// The notifier the signal handler wakes; see [`signal_received`].
pub fn interrupt_notify() -> std::sync::Arc<tokio::sync::Notify> {
    static N: std::sync::OnceLock<std::sync::Arc<tokio::sync::Notify>> = std::sync::OnceLock::new();
    N.get_or_init(Default::default).clone()
}

/// Records that a stop signal arrived (the prompt checks it while it waits).
pub fn signal_received() {
    SIGNALLED.store(true, Ordering::SeqCst);
}

/// Puts the terminal back as the run found it: the prompt never leaves canonical mode,
/// so only the cursor (hidden by the progress display) needs showing.
pub fn restore_terminal() {
    let _ = console::Term::stderr().show_cursor();
}

impl Confirmer {
    pub fn new(policy: Policy) -> Confirmer {
        Confirmer { policy, prompt: tokio::sync::Mutex::new(()), yes_to_all: Default::default(), aborted: AtomicBool::new(false), host_freezes: Default::default() }
    }

    /// A host said it is frozen: --automation may not act there.
    pub fn freeze_host(&self, host: &str, why: String) {
        if let Ok(mut m) = self.host_freezes.lock() {
            m.insert(host.to_string(), why);
        }
    }

    /// Why --automation may not act on `host` (its own freeze), if so.
    pub fn host_frozen(&self, host: &str) -> Option<String> {
        self.host_freezes.lock().ok().and_then(|m| m.get(host).cloned())
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
        if self.policy.automation {
            if let Some(why) = self.host_frozen(host) {
                return Decision::Refused { msg: format!("step '{task}' on {host} is {tier}: --automation may not act: {why}; an approval request was recorded") };
            }
        }
        if let Some(d) = self.policy.decide_without_prompt(host, task, tier) {
            return d;
        }
        let _one_at_a_time = self.prompt.lock().await;
        if self.aborted() {
            return Decision::Abort;
        }
        // "all" covers the steps of the tier it was given at, and lower ones; never BLOCK.
        let all = self.yes_to_all.lock().ok().and_then(|t| *t);
        if let Some(at) = all.filter(|at| tier != Tier::Block && tier <= *at) {
            return Decision::Run { how: format!("prompt: all (given at a {at} step)") };
        }
        if SIGNALLED.load(Ordering::SeqCst) {
            self.aborted.store(true, Ordering::SeqCst);
            return Decision::Abort;
        }
        let mut decision = Decision::Refused { msg: format!("step '{task}' on {host} was declined at the prompt; nothing was changed") };
        tokio::task::block_in_place(|| {
            pause(&mut || {
                decision = ask(host, task, tier);
            })
        });
        match &decision {
            Decision::Abort => self.aborted.store(true, Ordering::SeqCst),
            Decision::Run { how } if how == "prompt: all" => {
                if let Ok(mut t) = self.yes_to_all.lock() {
                    *t = Some(t.map_or(tier, |was| was.max(tier)));
                }
            }
            _ => {}
        }
        decision
    }
}

/// One line from stdin, read on a thread of its own so that a stop signal ends the wait at
/// once. `None`: end of input (Ctrl-D) or a signal.
fn read_answer(prompt: &str) -> Option<String> {
    use std::io::Write;
    let mut err = std::io::stderr();
    let _ = write!(err, "{prompt}: ");
    let _ = err.flush();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let got = std::io::stdin().read_line(&mut line);
        let _ = tx.send(match got {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(line),
        });
    });
    loop {
        match rx.recv_timeout(std::time::Duration::from_millis(50)) {
            Ok(answer) => {
                if answer.is_none() {
                    let _ = writeln!(err);
                }
                return answer;
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) if SIGNALLED.load(Ordering::SeqCst) => {
                let _ = writeln!(err);
                return None;
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(_) => return None,
        }
    }
}

fn ask(host: &str, task: &str, tier: Tier) -> Decision {
    let declined = || Decision::Refused { msg: format!("step '{task}' on {host} was declined at the prompt; nothing was changed") };
    if tier == Tier::Block {
        let answer = read_answer(&format!("BLOCK step '{task}' on {host}. Type the host name ({host}) to run it, anything else declines"));
        return match answer {
            _ if SIGNALLED.load(Ordering::SeqCst) => Decision::Abort,
            Some(a) if a.trim() == host => Decision::Run { how: format!("typed confirmation '{host}'") },
            Some(a) => Decision::Refused { msg: format!("step '{task}' on {host}: typed {:?}, not {host:?}: declined; nothing was changed", a.trim()) },
            None => Decision::Refused { msg: format!("step '{task}' on {host}: end of input at the prompt: declined; nothing was changed") },
        };
    }
    loop {
        let answer = read_answer(&format!("{tier} step '{task}' on {host}. Run it? [y]es / [n]o / [a]ll remaining of this tier or lower / [q] abort the run"));
        if SIGNALLED.load(Ordering::SeqCst) {
            return Decision::Abort;
        }
        match answer.map(|a| a.trim().to_lowercase()) {
            Some(a) if a == "y" || a == "yes" => return Decision::Run { how: "prompt: yes".into() },
            Some(a) if a == "a" || a == "all" => return Decision::Run { how: "prompt: all".into() },
            Some(a) if a == "n" || a == "no" => return declined(),
            Some(a) if a == "q" || a == "abort" => return Decision::Abort,
            Some(_) => continue,
            None => return Decision::Refused { msg: format!("step '{task}' on {host}: end of input at the prompt: declined; nothing was changed") },
        }
    }
}

/// Reads a line from the terminal without echo. Echo goes off before `label` is shown, so an
/// answer typed the moment the prompt appears is kept: console's `read_secure_line` turns echo
/// off after the prompt with TCSAFLUSH, which drops whatever was typed in between.
pub fn read_hidden(label: &str) -> std::io::Result<String> {
    use std::io::{BufRead, Write};
    use std::os::unix::io::AsRawFd;
    let tty = std::fs::OpenOptions::new().read(true).write(true).open("/dev/tty")?;
    let fd = tty.as_raw_fd();
    let mut t = std::mem::MaybeUninit::<libc::termios>::uninit();
    // SAFETY: tcgetattr fills the struct for a valid fd, checked by its return value.
    if unsafe { libc::tcgetattr(fd, t.as_mut_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: initialised by the successful tcgetattr above.
    let original = unsafe { t.assume_init() };
    let mut quiet = original;
    quiet.c_lflag &= !libc::ECHO;
    // SAFETY: fd is open and `quiet` a valid termios.
    if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &quiet) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    eprint!("{label}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    let read = std::io::BufReader::new(&tty).read_line(&mut line);
    // SAFETY: as above, with the terminal's own settings.
    unsafe { libc::tcsetattr(fd, libc::TCSANOW, &original) };
    eprintln!();
    read?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}
