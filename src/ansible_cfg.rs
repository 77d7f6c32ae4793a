//! `ansible.cfg`, found as ansible-core finds it (`ANSIBLE_CONFIG`, `./ansible.cfg`,
//! `~/.ansible.cfg`, `/etc/ansible/ansible.cfg`, the first that exists), and the matching
//! `ANSIBLE_*` environment variables, which win over the file. Only the settings that matter
//! to recover are read; any other setting in the file is named in a warning, never silently
//! dropped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The settings recover reads: (section, key, environment variable).
const SETTINGS: &[(&str, &str, &str)] = &[
    ("defaults", "inventory", "ANSIBLE_INVENTORY"),
    ("defaults", "remote_user", "ANSIBLE_REMOTE_USER"),
    ("defaults", "remote_port", "ANSIBLE_REMOTE_PORT"),
    ("defaults", "private_key_file", "ANSIBLE_PRIVATE_KEY_FILE"),
    ("defaults", "forks", "ANSIBLE_FORKS"),
    ("defaults", "roles_path", "ANSIBLE_ROLES_PATH"),
    ("defaults", "collections_path", "ANSIBLE_COLLECTIONS_PATH"),
    ("defaults", "collections_paths", "ANSIBLE_COLLECTIONS_PATHS"),
    ("defaults", "host_key_checking", "ANSIBLE_HOST_KEY_CHECKING"),
    ("defaults", "timeout", "ANSIBLE_TIMEOUT"),
    ("defaults", "vault_password_file", "ANSIBLE_VAULT_PASSWORD_FILE"),
    ("defaults", "gathering", "ANSIBLE_GATHERING"),
    ("privilege_escalation", "become", "ANSIBLE_BECOME"),
    ("privilege_escalation", "become_user", "ANSIBLE_BECOME_USER"),
    ("privilege_escalation", "become_method", "ANSIBLE_BECOME_METHOD"),
    ("privilege_escalation", "become_exe", "ANSIBLE_BECOME_EXE"),
    ("privilege_escalation", "become_flags", "ANSIBLE_BECOME_FLAGS"),
    ("privilege_escalation", "become_ask_pass", "ANSIBLE_BECOME_ASK_PASS"),
    ("ssh_connection", "ssh_args", "ANSIBLE_SSH_ARGS"),
    ("ssh_connection", "control_path_dir", "ANSIBLE_SSH_CONTROL_PATH_DIR"),
    ("ssh_connection", "control_path", "ANSIBLE_SSH_CONTROL_PATH"),
    ("ssh_connection", "pipelining", "ANSIBLE_PIPELINING"),
    ("connection", "pipelining", "ANSIBLE_PIPELINING"),
];

/// Settings accepted because recover already behaves so (its shell is always pipelined, its
/// control socket is its own) or because they only change how Ansible prints.
const HARMLESS: &[&str] = &[
    "pipelining", "control_path_dir", "control_path", "retry_files_enabled", "nocows", "stdout_callback", "callback_whitelist", "callbacks_enabled", "interpreter_python",
    "deprecation_warnings", "command_warnings", "localhost_warning", "display_skipped_hosts", "bin_ansible_callbacks", "force_color", "nocolor", "log_path", "local_tmp",
    "remote_tmp", "retry_files_save_path", "system_warnings", "ansible_managed", "scp_if_ssh", "transfer_method", "fact_caching", "fact_caching_connection",
    "fact_caching_timeout", "gather_timeout", "any_errors_fatal", "host_pattern_mismatch",
];

/// The configuration in force.
#[derive(Debug, Default)]
pub struct Config {
    /// The file read, if any.
    pub file: Option<PathBuf>,
    values: BTreeMap<(String, String), String>,
    /// Settings of the file recover does not read.
    pub ignored: Vec<String>,
}

static CLI: OnceLock<BTreeMap<String, String>> = OnceLock::new();

/// Command-line options that stand for settings (`-u`, `--private-key`, `-b`,
/// `--become-user`): they win over the environment and the file.
pub fn set_cli(values: BTreeMap<String, String>) {
    let _ = CLI.set(values);
}

impl Config {
    /// A setting: the command line's, its environment variable, else the file's value.
    pub fn get(&self, key: &str) -> Option<String> {
        if let Some(v) = CLI.get().and_then(|m| m.get(key)) {
            return Some(v.clone());
        }
        let (section, _, env) = SETTINGS.iter().find(|(_, k, _)| *k == key)?;
        if let Ok(v) = std::env::var(env) {
            return Some(v);
        }
        self.values.get(&(section.to_string(), key.to_string())).cloned().or_else(|| {
            SETTINGS.iter().filter(|(_, k, _)| *k == key).find_map(|(s, k, _)| self.values.get(&(s.to_string(), k.to_string())).cloned())
        })
    }
    /// A boolean setting as Ansible reads one (`True`, `yes`, `1`, `on`).
    pub fn flag(&self, key: &str) -> Option<bool> {
        self.get(key).map(|v| matches!(v.trim().to_lowercase().as_str(), "true" | "yes" | "1" | "on" | "y" | "t"))
    }
    /// A list of paths (`:` or `,` separated), relative to the file's folder, `~` expanded.
    pub fn paths(&self, key: &str) -> Vec<PathBuf> {
        let Some(v) = self.get(key) else { return Vec::new() };
        let base = self.file.as_ref().and_then(|f| f.parent()).map(Path::to_path_buf).unwrap_or_default();
        let sep = if key == "inventory" { ',' } else { ':' };
        v.split(sep).map(str::trim).filter(|p| !p.is_empty()).map(|p| expand(p, &base)).collect()
    }
}

fn expand(p: &str, base: &Path) -> PathBuf {
    let p = match (p.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(p),
    };
    if p.is_absolute() {
        p
    } else {
        base.join(p)
    }
}

/// Where ansible-core looks, in order.
fn candidates() -> Vec<PathBuf> {
    let mut c = Vec::new();
    if let Some(p) = std::env::var_os("ANSIBLE_CONFIG") {
        let p = PathBuf::from(p);
        c.push(if p.is_dir() { p.join("ansible.cfg") } else { p });
    }
    // ansible-core ignores ./ansible.cfg in a world-writable folder.
    if let Ok(cwd) = std::env::current_dir() {
        use std::os::unix::fs::PermissionsExt;
        let writable = std::fs::metadata(&cwd).map(|m| m.permissions().mode() & 0o002 != 0).unwrap_or(false);
        if !writable {
            c.push(cwd.join("ansible.cfg"));
        }
    }
    if let Some(home) = std::env::var_os("HOME") {
        c.push(PathBuf::from(home).join(".ansible.cfg"));
    }
    c.push(PathBuf::from("/etc/ansible/ansible.cfg"));
    c
}

/// Parses an INI file as Python's configparser does for ansible.cfg (comments `#`/`;` at
/// the start of a line, `key = value` or `key: value`, continuation lines indented).
pub fn parse(text: &str, path: &Path) -> Result<Config, String> {
    let mut cfg = Config { file: Some(path.to_path_buf()), ..Default::default() };
    let mut section: Option<String> = None;
    let mut last: Option<(String, String)> = None;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') || t.starts_with(';') {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(k) = &last {
                if let Some(v) = cfg.values.get_mut(k) {
                    v.push('\n');
                    v.push_str(t);
                }
                continue;
            }
        }
        if t.starts_with('[') {
            let name = t.trim_start_matches('[').split(']').next().unwrap_or("").trim().to_string();
            section = Some(name);
            last = None;
            continue;
        }
        let Some(sec) = &section else {
            return Err(format!("{}:{}:1: a setting before any [section] header", path.display(), i + 1));
        };
        let cut = t.find(['=', ':']).ok_or_else(|| format!("{}:{}:1: not `key = value`: {t}", path.display(), i + 1))?;
        let (k, v) = (t[..cut].trim().to_lowercase(), t[cut + 1..].trim().to_string());
        let known = SETTINGS.iter().any(|(s, key, _)| s == sec && *key == k) || HARMLESS.contains(&k.as_str());
        if !known {
            cfg.ignored.push(format!("[{sec}] {k} (line {})", i + 1));
        }
        last = Some((sec.clone(), k.clone()));
        cfg.values.insert((sec.clone(), k), v);
    }
    Ok(cfg)
}

static CONFIG: OnceLock<Config> = OnceLock::new();

/// Loads the configuration once (an unreadable or malformed file is an error, with its line).
pub fn load() -> Result<&'static Config, String> {
    if let Some(c) = CONFIG.get() {
        return Ok(c);
    }
    let mut cfg = Config::default();
    for p in candidates() {
        if p.is_file() {
            let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            crate::inputs::note(&p);
            cfg = parse(&text, &p)?;
            break;
        }
    }
    if let Some(m) = cfg.get("become_method") {
        if let Err(e) = crate::transport::BecomeMethod::parse(&m) {
            return Err(format!("{}: {e}", cfg.file.as_ref().map(|f| f.display().to_string()).unwrap_or_else(|| "ANSIBLE_BECOME_METHOD".into())));
        }
    }
    if !cfg.ignored.is_empty() {
        eprintln!(
            "warning: {}: recover does not read these settings (they have no effect here): {}",
            cfg.file.as_ref().map(|f| f.display().to_string()).unwrap_or_default(),
            cfg.ignored.join(", ")
        );
    }
    let _ = CONFIG.set(cfg);
    Ok(CONFIG.get().expect("set above"))
}

/// The configuration if it was loaded (library code and tests that never loaded one see none).
pub fn current() -> &'static Config {
    static EMPTY: OnceLock<Config> = OnceLock::new();
    CONFIG.get().unwrap_or_else(|| EMPTY.get_or_init(Config::default))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_sections_and_names_what_it_ignores() {
        let c = parse("# c\n[defaults]\ninventory = hosts.ini, more.yml\nforks=7\nstdout_callback = yaml\nstrategy = free\n[privilege_escalation]\nbecome = True\n", Path::new("/p/ansible.cfg")).unwrap();
        assert_eq!(c.get("forks").as_deref(), Some("7"));
        assert_eq!(c.flag("become"), Some(true));
        assert_eq!(c.paths("inventory"), vec![PathBuf::from("/p/hosts.ini"), PathBuf::from("/p/more.yml")]);
        assert_eq!(c.ignored, vec!["[defaults] strategy (line 6)".to_string()]);
        assert!(parse("forks = 1\n", Path::new("x.cfg")).unwrap_err().contains("x.cfg:1:1"));
    }
}
