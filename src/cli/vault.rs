//! `recover vault encrypt|decrypt|view|edit|encrypt_string|rekey`, as ansible-vault does them,
//! and the run-wide vault passwords (`--vault-password-file`, `--vault-id`, `--ask-vault-pass`).

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::Global;
use crate::vault;

#[derive(Args, Debug)]
pub struct VaultArgs {
    #[command(subcommand)]
    pub command: VaultCommand,
    /// The vault id to encrypt with (a label of --vault-id); default: the first password given
    #[arg(long, value_name = "LABEL", global = true)]
    pub encrypt_vault_id: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum VaultCommand {
    /// Encrypt files in place
    Encrypt {
        files: Vec<PathBuf>,
        /// Write here instead of in place (`-` for stdout); ansible-vault's --output
        #[arg(long = "out", value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Decrypt files in place
    Decrypt {
        files: Vec<PathBuf>,
        /// Write here instead of in place (`-` for stdout); ansible-vault's --output
        #[arg(long = "out", value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Print a vaulted file's plaintext
    View { files: Vec<PathBuf> },
    /// Decrypt into $EDITOR, encrypt again when it exits
    Edit { file: PathBuf },
    /// A `!vault |` value for a YAML file
    #[command(name = "encrypt_string", alias = "encrypt-string")]
    EncryptString {
        /// The value (read from stdin when absent)
        value: Option<String>,
        /// The variable name to print it under
        #[arg(short = 'n', long)]
        name: Option<String>,
    },
    /// Encrypt files again with a new password
    Rekey {
        files: Vec<PathBuf>,
        /// The new password's file (or executable)
        #[arg(long, value_name = "FILE")]
        new_vault_password_file: Option<String>,
        /// The new password's vault id (LABEL@SOURCE)
        #[arg(long, value_name = "ID")]
        new_vault_id: Option<String>,
    },
}

/// The passwords named on the command line, registered for the run. `Err` names the bad source.
pub fn setup(g: &Global) -> Result<(), String> {
    let mut secrets = Vec::new();
    for f in &g.vault_password_file {
        secrets.push(vault::Secret { label: "default".into(), password: vault::password_from(f)? });
    }
    for id in &g.vault_id {
        let (label, source) = parse_id(id);
        secrets.push(vault::Secret { label, password: vault::password_from(&source)? });
    }
    if g.ask_vault_pass {
        secrets.push(vault::Secret { label: "default".into(), password: vault::prompt("Vault password: ")? });
    }
    vault::set_secrets(secrets);
    Ok(())
}

/// `label@source` or `source` (label `default`).
fn parse_id(id: &str) -> (String, String) {
    match id.split_once('@') {
        Some((l, s)) => (l.to_string(), s.to_string()),
        None => ("default".into(), id.to_string()),
    }
}

fn encrypt_secret(a: &VaultArgs) -> anyhow::Result<vault::Secret> {
    let secrets = vault::secrets();
    let s = match &a.encrypt_vault_id {
        Some(l) => secrets.into_iter().find(|s| &s.label == l).ok_or_else(|| anyhow::anyhow!("--encrypt-vault-id {l}: no --vault-id with that label"))?,
        None => secrets.into_iter().next().ok_or_else(|| anyhow::anyhow!("no vault password: pass --vault-password-file FILE, --vault-id LABEL@SOURCE or --ask-vault-pass"))?,
    };
    Ok(s)
}

fn label(s: &vault::Secret) -> Option<&str> {
    (s.label != "default").then_some(s.label.as_str())
}

fn write(path: &std::path::Path, output: &Option<PathBuf>, data: &[u8]) -> anyhow::Result<()> {
    match output {
        Some(o) if o.as_os_str() == "-" => {
            use std::io::Write;
            std::io::stdout().write_all(data)?;
        }
        Some(o) => std::fs::write(o, data)?,
        None => {
            // Keep the file's mode; write beside it, then rename over it.
            let tmp = path.with_extension("recover-vault.tmp");
            std::fs::write(&tmp, data)?;
            if let Ok(m) = std::fs::metadata(path) {
                let _ = std::fs::set_permissions(&tmp, m.permissions());
            }
            std::fs::rename(&tmp, path)?;
        }
    }
    Ok(())
}

pub fn run(_g: &Global, a: &VaultArgs) -> anyhow::Result<i32> {
    match &a.command {
        VaultCommand::Encrypt { files, out: output } => {
            let s = encrypt_secret(a)?;
            for f in files {
                let plain = std::fs::read(f).map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?;
                if vault::is_vaulted(&plain) {
                    anyhow::bail!("{}: input is already encrypted", f.display());
                }
                write(f, output, vault::encrypt(&plain, &s.password, label(&s)).as_bytes())?;
                if output.is_none() {
                    eprintln!("Encryption successful: {}", f.display());
                }
            }
            Ok(0)
        }
        VaultCommand::Decrypt { files, out: output } => {
            for f in files {
                let plain = decrypt_file(f)?;
                write(f, output, &plain)?;
                if output.is_none() {
                    eprintln!("Decryption successful: {}", f.display());
                }
            }
            Ok(0)
        }
        VaultCommand::View { files } => {
            for f in files {
                use std::io::Write;
                std::io::stdout().write_all(&decrypt_file(f)?)?;
            }
            Ok(0)
        }
        VaultCommand::Edit { file } => {
            let plain = if file.exists() { decrypt_file(file)? } else { Vec::new() };
            let s = encrypt_secret(a)?;
            // The plaintext lives in memory-backed storage where there is one, and is removed on
            // every way out: a return, an error, a panic (the guard), a signal (its handler).
            let guard = Plaintext::new(&plain)?;
            let tmp = guard.path.clone();
            let editor = std::env::var("EDITOR").unwrap_or_else(|_| "vi".into());
            let st = match edit_watched(&editor, &tmp)? {
                Ok(st) => st,
                Err(sig) => {
                    drop(guard);
                    eprintln!("recover vault edit: stopped by signal {sig}; the plaintext was removed and {} was left as it was", file.display());
                    std::process::exit(128 + sig);
                }
            };
            let edited = std::fs::read(&tmp)?;
            drop(guard);
            if !st.success() {
                anyhow::bail!("the editor exited {}; {} was left as it was", st.code().unwrap_or(-1), file.display());
            }
            if edited != plain {
                write(file, &None, vault::encrypt(&edited, &s.password, label(&s)).as_bytes())?;
            }
            Ok(0)
        }
        VaultCommand::EncryptString { value, name } => {
            let s = encrypt_secret(a)?;
            let value = match value {
                Some(v) => v.clone(),
                None => {
                    let mut v = String::new();
                    std::io::Read::read_to_string(&mut std::io::stdin(), &mut v)?;
                    v
                }
            };
            let text = vault::encrypt(value.as_bytes(), &s.password, label(&s));
            let indented: String = text.lines().map(|l| format!("          {l}\n")).collect();
            match name {
                Some(n) => outln!("{n}: !vault |\n{}", indented.trim_end())?,
                None => outln!("!vault |\n{}", indented.trim_end())?,
            }
            eprintln!("Encryption successful");
            Ok(0)
        }
        VaultCommand::Rekey { files, new_vault_password_file, new_vault_id } => {
            let (label, pw) = match (new_vault_password_file, new_vault_id) {
                (Some(f), None) => (None, vault::password_from(f).map_err(anyhow::Error::msg)?),
                (None, Some(id)) => {
                    let (l, src) = parse_id(id);
                    ((l != "default").then_some(l), vault::password_from(&src).map_err(anyhow::Error::msg)?)
                }
                (None, None) => (None, vault::prompt("New vault password: ").map_err(anyhow::Error::msg)?),
                (Some(_), Some(_)) => anyhow::bail!("give --new-vault-password-file or --new-vault-id, not both"),
            };
            for f in files {
                let plain = decrypt_file(f)?;
                write(f, &None, vault::encrypt(&plain, &pw, label.as_deref()).as_bytes())?;
                eprintln!("Rekey successful: {}", f.display());
            }
            Ok(0)
        }
    }
}

fn decrypt_file(f: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    let bytes = std::fs::read(f).map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?;
    if !vault::is_vaulted(&bytes) {
        anyhow::bail!("{}: input is not vault encrypted data", f.display());
    }
    vault::decrypt(&String::from_utf8_lossy(&bytes)).map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))
}

/// The plaintext for the editor: a 0600 file in a 0700 folder of its own, under `/dev/shm`
/// (memory, never a disk) where the machine has it, else the temp folder. Removed (with
/// whatever the editor left beside it, a swap file) when dropped: on a return, an error, a
/// panic, and after a signal ([`edit_watched`]).
struct Plaintext {
    path: PathBuf,
    dir: PathBuf,
}

impl Plaintext {
    fn new(plain: &[u8]) -> anyhow::Result<Plaintext> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let shm = std::path::Path::new("/dev/shm");
        let writable = |p: &std::path::Path| std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).is_ok_and(|c| unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) } == 0);
        let base = if shm.is_dir() && writable(shm) { shm.to_path_buf() } else { std::env::temp_dir() };
        let dir = base.join(format!("recover-vault-{}-{}", std::process::id(), uuid::Uuid::new_v4().simple()));
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        let path = dir.join("plaintext");
        let guard = Plaintext { path: path.clone(), dir };
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path)?;
        std::io::Write::write_all(&mut f, plain)?;
        Ok(guard)
    }
}

impl Drop for Plaintext {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs the editor on `file`, watching for SIGHUP, SIGTERM and SIGQUIT (the operator's session
/// closed): on one, the editor is stopped and `Ok(Err(signal))` says which, so the caller
/// removes the plaintext before it exits. SIGINT goes to the editor alone, as `system()` does.
fn edit_watched(editor: &str, file: &std::path::Path) -> anyhow::Result<Result<std::process::ExitStatus, i32>> {
    use std::os::unix::process::CommandExt;
    use std::sync::atomic::{AtomicI32, Ordering};
    static GOT: AtomicI32 = AtomicI32::new(0);
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGHUP, libc::SIGTERM, libc::SIGQUIT, libc::SIGINT] {
            libc::sigaddset(&mut set, s);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
    let mut cmd = std::process::Command::new("sh");
    cmd.args(["-c", &format!("exec {editor} \"$1\""), "sh", file.to_str().unwrap_or_default()]);
    // The editor gets the signals as a program started from a shell does.
    unsafe {
        cmd.pre_exec(|| {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    let pid = child.id() as libc::pid_t;
    std::thread::spawn(move || loop {
        let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
        let mut sig: libc::c_int = 0;
        unsafe {
            libc::sigemptyset(&mut set);
            for s in [libc::SIGHUP, libc::SIGTERM, libc::SIGQUIT, libc::SIGINT] {
                libc::sigaddset(&mut set, s);
            }
            if libc::sigwait(&set, &mut sig) != 0 {
                return;
            }
        }
        if sig == libc::SIGINT {
            continue;
        }
        GOT.store(sig, Ordering::SeqCst);
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        std::thread::sleep(std::time::Duration::from_secs(2));
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
        return;
    });
    let mut child = child;
    let st = child.wait()?;
    match GOT.load(Ordering::SeqCst) {
        0 => Ok(Ok(st)),
        sig => Ok(Err(sig)),
    }
}
