//! A command as recover sends it: its line or script, who it runs as (become, and how), its
//! environment, input and label, and how it is tracked.

use base64::Engine as _;

use super::quote;
use super::shell::{self};

/// How a host's connection becomes another user: `sudo` (default) or `su`, the program
/// (`become_exe`), extra flags (`become_flags`) and the password (`ansible_become_password`,
/// `-K`), which is written to the become program's stdin, never put on a command line.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Become {
    pub method: BecomeMethod,
    pub exe: Option<String>,
    pub flags: Option<String>,
    pub password: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum BecomeMethod {
    #[default]
    Sudo,
    Su,
}

impl BecomeMethod {
    pub fn parse(s: &str) -> Result<BecomeMethod, String> {
        match s.trim() {
            "sudo" => Ok(BecomeMethod::Sudo),
            "su" => Ok(BecomeMethod::Su),
            other => Err(format!("become_method {other:?} is not supported by recover (sudo or su)")),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            BecomeMethod::Sudo => "sudo",
            BecomeMethod::Su => "su",
        }
    }
}

/// How to run something as a user on one host: the words before the command (sudo), or the
/// words around it (su), and the password line to write first.
#[derive(Clone, Debug)]
pub(super) struct Escalation {
    pub(super) method: BecomeMethod,
    /// sudo: `sudo FLAGS -n|-k -S -p '' -H -u USER --`; su: `su FLAGS -s /bin/sh`.
    pub(super) words: Vec<String>,
    pub(super) user: String,
    pub(super) password: Option<String>,
}

impl Escalation {
    /// The argv that runs `inner` (an argv) as the user.
    pub(super) fn argv(&self, inner: &[String]) -> Vec<String> {
        let mut v = self.words.clone();
        match self.method {
            BecomeMethod::Sudo => v.extend(inner.iter().cloned()),
            BecomeMethod::Su => {
                v.extend(["-c".to_string(), quote::join(inner), self.user.clone()]);
            }
        }
        v
    }
    /// The shell text that runs the shell text `inner` as the user.
    pub(super) fn line(&self, inner: &str) -> String {
        match self.method {
            BecomeMethod::Sudo => format!("{} {inner}", quote::join(&self.words)),
            BecomeMethod::Su => format!("{} -c {} {}", quote::join(&self.words), quote::quote(inner), quote::quote(&self.user)),
        }
    }
}

/// `-K`: the become password for every host whose variables do not give one.
pub(super) static DEFAULT_BECOME_PASSWORD: std::sync::OnceLock<String> = std::sync::OnceLock::new();

pub fn set_default_become_password(p: String) {
    let _ = DEFAULT_BECOME_PASSWORD.set(p);
}

pub fn default_become_password() -> Option<String> {
    DEFAULT_BECOME_PASSWORD.get().cloned()
}

/// What to run: an argv (each word passed as is) or a shell script.
#[derive(Clone, Debug, PartialEq)]
pub enum Script {
    Argv(Vec<String>),
    Shell(String),
}

/// A command for a host, with the user to run it as and optional stdin.
#[derive(Clone, Debug)]
pub struct Cmd {
    pub script: Script,
    /// Run as this user (`sudo -n -u USER`); `None` is the login user.
    pub become_user: Option<String>,
    pub stdin: Option<Vec<u8>>,
    /// Kill the command after this many seconds (exit status 124).
    pub timeout: Option<u64>,
    /// How to show the command when its script is an implementation detail.
    pub label: Option<String>,
    /// Run in a shell process of its own (`sh -c`), as Ansible's `shell` module does: for
    /// scripts a person wrote, which may use `$$` or signal their own shell. recover's own
    /// scripts run in a subshell of the persistent shell (see [`Cmd::wrapped`]).
    pub own_shell: bool,
    /// An action (a step's change, a backup): run in a process group of its own whose id is
    /// recorded on the host beside the lock, so an aborted run can kill it there and a later
    /// run knows it may still be running (see [`Connection::set_track`]).
    pub tracked: bool,
}

impl Cmd {
    pub fn argv<S: Into<String>>(words: impl IntoIterator<Item = S>) -> Cmd {
        Cmd { script: Script::Argv(words.into_iter().map(Into::into).collect()), become_user: None, stdin: None, timeout: None, label: None, own_shell: false, tracked: false }
    }
    pub fn shell(script: impl Into<String>) -> Cmd {
        Cmd { script: Script::Shell(script.into()), become_user: None, stdin: None, timeout: None, label: None, own_shell: false, tracked: false }
    }
    pub fn become_user(mut self, user: Option<String>) -> Cmd {
        self.become_user = user;
        self
    }
    pub fn stdin(mut self, data: Vec<u8>) -> Cmd {
        self.stdin = Some(data);
        self
    }
    pub fn label(mut self, label: impl Into<String>) -> Cmd {
        self.label = Some(label.into());
        self
    }
    pub fn timeout(mut self, secs: Option<u64>) -> Cmd {
        self.timeout = secs;
        self
    }
    /// A script a person wrote (`shell:`, `recover exec`): its own `sh -c`, so `$$` is its own.
    pub fn own_shell(mut self) -> Cmd {
        self.own_shell = true;
        self
    }
    /// An action to track (see [`Cmd::tracked`]).
    pub fn tracked(mut self) -> Cmd {
        self.tracked = true;
        self
    }
    /// The script as one shell line (argv words quoted).
    pub fn line(&self) -> String {
        match &self.script {
            Script::Argv(words) => quote::join(words),
            Script::Shell(s) => s.clone(),
        }
    }
    /// How the command reads in a plan or a log.
    pub fn display(&self) -> String {
        let text = self.label.clone().unwrap_or_else(|| self.line());
        match &self.become_user {
            Some(u) => format!("[as {u}] {text}"),
            None => text,
        }
    }
    /// The full line the remote shell runs, with timeout and stdin.
    ///
    /// The script goes in as one quoted word, so a syntax error in it cannot reach the
    /// persistent shell's own parser. It runs as `( eval WORD )`: a subshell keeps `exit`,
    /// `cd`, `set -e`, traps and variables from leaking into the next command, and costs
    /// a fork, where `sh -c WORD` cost a fork and an exec of a new shell (measured in
    /// BENCHMARKS.md: that exec was the largest cost of a command on a busy host).
    /// `timeout` needs a program to run, so a command with one still gets `sh -c`, and so does
    /// a script a person wrote ([`Cmd::own_shell`]): in a subshell `$$` would be the persistent
    /// shell's, shared by every command, and `kill $$` would end the connection's shell.
    /// The line for a tracked command, run by the lock user's shell: the shell's process group
    /// (`$__pg`, noted by its first command: see [`super::SHELL_INIT`]; sshd gives each session
    /// a group of its own) is written to `runfile` with the command's label while it runs, and
    /// cleared (`true`, a builtin: no exec, and a failed redirection cannot end the shell) when
    /// it ends. An abort ends that group: the command and the shell waiting for it, which a
    /// run that is ending no longer needs; a run killed outright leaves the shell waiting for
    /// the command, so the record stays live (and the lock held) until the command ends. The
    /// command runs in a subshell (a fork, no exec), or in a shell of its own where it needs
    /// one (`timeout`, a person's script); `esc` runs it as another user.
    ///
    /// The script never appears on a command line (where `ps` on the host would show it, and
    /// with it a file's content or a secret): it is read from a here-document on fd 3
    /// (`. /dev/fd/3`), or, through sudo (which closes every fd above 2), as the first line of
    /// its stdin (base64), read by the shell's own `read` before the command's data.
    pub(super) fn wrapped_tracked(&self, runfile: &str, esc: Option<&Escalation>) -> String {
        let rf = quote::quote(runfile);
        let mut shown = self.display().replace(['\n', '\r'], " ");
        if shown.chars().count() > 200 {
            shown = shown.chars().take(200).collect::<String>() + "...";
        }
        let tail = format!("__p=$!; printf '%s %s\\n' \"${{__pg:-$__p}}\" {} > {rf} 2>/dev/null; wait \"$__p\"; __r=$?; true > {rf} 2>/dev/null; (exit $__r)", quote::quote(&shown));
        let timeout = |inner: &str| match self.timeout {
            Some(t) => format!("timeout -k 5 {t} {inner}"),
            None => inner.to_string(),
        };
        match esc {
            None => {
                let prog = match self.timeout {
                    Some(_) => timeout("sh -c '. /dev/fd/3'"),
                    None if self.own_shell => "sh -c '. /dev/fd/3'".to_string(),
                    None => "( . /dev/fd/3 )".to_string(),
                };
                let tag = shell::marker();
                let script = format!("{}\n{tag}", self.line());
                match &self.stdin {
                    Some(data) => {
                        let dtag = shell::marker();
                        format!("base64 -d <<'{dtag}' | {prog} 3<<'{tag}' & {tail}\n{}\n{dtag}\n{script}", b64_lines(data))
                    }
                    None => format!("{prog} 3<<'{tag}' </dev/null & {tail}\n{script}"),
                }
            }
            Some(e) => {
                use base64::Engine as _;
                let inner = timeout("sh -c 'IFS= read -r __s && eval \"$(printf %s \"$__s\" | base64 -d)\"'");
                let prog = e.line(&inner);
                // The become password first (sudo reads it), then the script's line, then the data.
                let pw = e.password.as_deref().map(|p| format!("printf '%s\\n' {}; ", quote::quote(p))).unwrap_or_default();
                let first = format!("printf '%s\\n' {}; ", base64::engine::general_purpose::STANDARD.encode(self.line()));
                match &self.stdin {
                    Some(data) => {
                        let tag = shell::marker();
                        format!("{{ {pw}{first}base64 -d; }} <<'{tag}' | {prog} & {tail}\n{}\n{tag}", b64_lines(data))
                    }
                    None => format!("{{ {pw}{first}}} | {prog} & {tail}"),
                }
            }
        }
    }

    pub(super) fn wrapped(&self) -> String {
        // A program of its own (`timeout`, or a person's script that needs its own `$$`) reads
        // the script from fd 3, never from its command line.
        let (line, script) = match self.timeout {
            Some(t) => (format!("timeout -k 5 {t} sh -c '. /dev/fd/3'"), true),
            None if self.own_shell => ("sh -c '. /dev/fd/3'".to_string(), true),
            None => (format!("( eval {} )", quote::quote(&self.line())), false),
        };
        let tag = shell::marker();
        let fd3 = if script { format!(" 3<<'{tag}'") } else { String::new() };
        let body = if script { format!("\n{}\n{tag}", self.line()) } else { String::new() };
        match &self.stdin {
            Some(data) => {
                let dtag = shell::marker();
                format!("base64 -d <<'{dtag}' | {line}{fd3}\n{}\n{dtag}{body}", b64_lines(data))
            }
            None => format!("{line}{fd3} </dev/null{body}"),
        }
    }
}

pub(super) fn b64_lines(data: &[u8]) -> String {
    let enc = base64::engine::general_purpose::STANDARD.encode(data);
    enc.as_bytes().chunks(76).map(|c| std::str::from_utf8(c).unwrap_or_default()).collect::<Vec<_>>().join("\n")
}
