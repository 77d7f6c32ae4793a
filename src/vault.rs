//! Ansible Vault, byte-compatible with `ansible-vault`: formats 1.1 and 1.2 (with a vault
//! id), AES256: PBKDF2-HMAC-SHA256 (10,000 rounds, 32-byte salt) gives the AES-256 key, the
//! HMAC-SHA256 key and the CTR counter's start; the plaintext is PKCS#7-padded, encrypted in
//! CTR mode and authenticated with the HMAC before anything is decrypted.
//!
//! The passwords of a run are registered once (`--vault-password-file`, `--vault-id`,
//! `--ask-vault-pass`); the YAML loader and the file readers ask [`decrypt`] for what they
//! meet. Every decrypted value is remembered so that output masks it, as `no_log` does.

use std::sync::Mutex;

use aes::cipher::{KeyIvInit, StreamCipher};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header every vaulted text starts with.
pub const HEADER: &str = "$ANSIBLE_VAULT";

/// One password, with the vault id it was given for (`default` when none).
#[derive(Clone, Debug)]
pub struct Secret {
    pub label: String,
    pub password: Vec<u8>,
}

static SECRETS: Mutex<Vec<Secret>> = Mutex::new(Vec::new());
static DECRYPTED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// The passwords this run decrypts with.
pub fn set_secrets(secrets: Vec<Secret>) {
    if let Ok(mut s) = SECRETS.lock() {
        *s = secrets;
    }
}

pub fn secrets() -> Vec<Secret> {
    SECRETS.lock().map(|s| s.clone()).unwrap_or_default()
}

/// Every value decrypted so far (for masking).
pub fn decrypted_values() -> Vec<String> {
    DECRYPTED.lock().map(|d| d.clone()).unwrap_or_default()
}

/// Does `text` look vaulted?
pub fn is_vaulted(text: &[u8]) -> bool {
    text.starts_with(HEADER.as_bytes())
}

type HmacSha256 = Hmac<Sha256>;
type Aes256Ctr = ctr::Ctr128BE<aes::Aes256>;

fn derive(password: &[u8], salt: &[u8]) -> ([u8; 32], [u8; 32], [u8; 16]) {
    let mut out = [0u8; 80];
    pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, 10_000, &mut out);
    let (mut k1, mut k2, mut iv) = ([0u8; 32], [0u8; 32], [0u8; 16]);
    k1.copy_from_slice(&out[..32]);
    k2.copy_from_slice(&out[32..64]);
    iv.copy_from_slice(&out[64..]);
    (k1, k2, iv)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Result<Vec<u8>, String> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    if s.len() % 2 != 0 {
        return Err("odd-length hex".into());
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|_| "not hex".to_string())).collect()
}

/// Encrypts `plaintext` as ansible-vault does; `label` gives format 1.2.
pub fn encrypt(plaintext: &[u8], password: &[u8], label: Option<&str>) -> String {
    let mut salt = [0u8; 32];
    salt[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    salt[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    encrypt_with_salt(plaintext, password, label, &salt)
}

/// As [`encrypt`] with a given salt (the `vault` filter's `salt=`): the same text every time.
pub fn encrypt_with_salt(plaintext: &[u8], password: &[u8], label: Option<&str>, salt: &[u8]) -> String {
    let (k1, k2, iv) = derive(password, salt);
    let pad = 16 - plaintext.len() % 16;
    let mut data = plaintext.to_vec();
    data.extend(std::iter::repeat_n(pad as u8, pad));
    let mut cipher = Aes256Ctr::new(&k1.into(), &iv.into());
    cipher.apply_keystream(&mut data);
    let mut mac = <HmacSha256 as Mac>::new_from_slice(&k2).expect("any key length");
    mac.update(&data);
    let tag = mac.finalize().into_bytes();
    let inner = format!("{}\n{}\n{}", hex(salt), hex(&tag), hex(&data));
    let body = hex(inner.as_bytes());
    let header = match label {
        Some(l) => format!("{HEADER};1.2;AES256;{l}"),
        None => format!("{HEADER};1.1;AES256"),
    };
    let lines: Vec<&str> = body.as_bytes().chunks(80).map(|c| std::str::from_utf8(c).unwrap_or_default()).collect();
    format!("{header}\n{}\n", lines.join("\n"))
}

/// Why a vaulted text could not be read.
#[derive(Debug)]
pub enum VaultError {
    /// No password was given for it.
    NoSecret,
    /// None of the passwords opens it (the HMAC does not match).
    WrongPassword,
    /// It is not a vault text ansible-vault would read.
    Malformed(String),
}

impl std::fmt::Display for VaultError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VaultError::NoSecret => write!(f, "it is vault-encrypted and no vault password was given (--vault-password-file FILE, --vault-id LABEL@SOURCE or --ask-vault-pass)"),
            VaultError::WrongPassword => write!(f, "decryption failed: no vault password given opens it (wrong password?)"),
            VaultError::Malformed(m) => write!(f, "not a valid vault text: {m}"),
        }
    }
}

/// The header's vault id, if it has one.
pub fn label_of(text: &str) -> Option<String> {
    let header = text.lines().next()?;
    let parts: Vec<&str> = header.trim().split(';').collect();
    (parts.len() >= 4).then(|| parts[3].to_string())
}

/// Decrypts with one password.
pub fn decrypt_with(text: &str, password: &[u8]) -> Result<Vec<u8>, VaultError> {
    let mut lines = text.trim().lines();
    let header = lines.next().ok_or_else(|| VaultError::Malformed("empty".into()))?;
    let parts: Vec<&str> = header.trim().split(';').collect();
    if parts.len() < 3 || parts[0] != HEADER {
        return Err(VaultError::Malformed("no $ANSIBLE_VAULT header".into()));
    }
    if !matches!(parts[1], "1.1" | "1.2") {
        return Err(VaultError::Malformed(format!("format {} (recover reads 1.1 and 1.2)", parts[1])));
    }
    if parts[2] != "AES256" {
        return Err(VaultError::Malformed(format!("cipher {} (only AES256 exists)", parts[2])));
    }
    let body: String = lines.collect::<Vec<_>>().join("");
    let inner = unhex(&body).map_err(VaultError::Malformed)?;
    let inner = String::from_utf8(inner).map_err(|_| VaultError::Malformed("inner text is not hex".into()))?;
    let mut it = inner.split('\n');
    let (salt, tag, data) = match (it.next(), it.next(), it.next()) {
        (Some(a), Some(b), Some(c)) => (unhex(a).map_err(VaultError::Malformed)?, unhex(b).map_err(VaultError::Malformed)?, unhex(c).map_err(VaultError::Malformed)?),
        _ => return Err(VaultError::Malformed("expected salt, hmac and ciphertext".into())),
    };
    let (k1, k2, iv) = derive(password, &salt);
    let mut mac = <HmacSha256 as Mac>::new_from_slice(&k2).expect("any key length");
    mac.update(&data);
    mac.verify_slice(&tag).map_err(|_| VaultError::WrongPassword)?;
    let mut plain = data;
    let mut cipher = Aes256Ctr::new(&k1.into(), &iv.into());
    cipher.apply_keystream(&mut plain);
    let pad = *plain.last().ok_or_else(|| VaultError::Malformed("empty ciphertext".into()))? as usize;
    if pad == 0 || pad > 16 || pad > plain.len() || !plain[plain.len() - pad..].iter().all(|b| *b as usize == pad) {
        return Err(VaultError::Malformed("bad padding".into()));
    }
    plain.truncate(plain.len() - pad);
    Ok(plain)
}

/// Decrypts with this run's passwords (the one of the text's vault id first, then the rest).
pub fn decrypt(text: &str) -> Result<Vec<u8>, VaultError> {
    let secrets = secrets();
    if secrets.is_empty() {
        return Err(VaultError::NoSecret);
    }
    let label = label_of(text);
    let mut ordered: Vec<&Secret> = secrets.iter().filter(|s| Some(&s.label) == label.as_ref()).collect();
    ordered.extend(secrets.iter().filter(|s| Some(&s.label) != label.as_ref()));
    let mut last = VaultError::WrongPassword;
    for s in ordered {
        match decrypt_with(text, &s.password) {
            Ok(p) => {
                if let (Ok(text), Ok(mut d)) = (std::str::from_utf8(&p), DECRYPTED.lock()) {
                    for part in std::iter::once(text.trim()).chain(text.lines().map(str::trim)) {
                        if part.chars().count() >= 4 && !d.iter().any(|x| x == part) {
                            d.push(part.to_string());
                        }
                    }
                    // A secret from the moment it is decrypted, wherever it goes next.
                    crate::secrets::add(std::iter::once(text.trim()).chain(text.lines().map(str::trim)).map(str::to_string));
                }
                return Ok(p);
            }
            Err(VaultError::WrongPassword) => continue,
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// A file's bytes, decrypted when vaulted; the error names the file.
pub fn read_file(path: &std::path::Path) -> Result<Vec<u8>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    crate::inputs::note(path);
    if !is_vaulted(&bytes) {
        return Ok(bytes);
    }
    let text = String::from_utf8(bytes).map_err(|_| format!("{}: not a valid vault file", path.display()))?;
    decrypt(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// A password from a source, as ansible-vault takes it: a file (its first line), or an
/// executable file (what it prints); `prompt` asks at the terminal.
pub fn password_from(source: &str) -> Result<Vec<u8>, String> {
    if source == "prompt" {
        return prompt("Vault password: ");
    }
    let path = std::path::Path::new(source);
    let meta = std::fs::metadata(path).map_err(|e| format!("vault password file {source}: {e}"))?;
    use std::os::unix::fs::PermissionsExt;
    let text = if meta.permissions().mode() & 0o111 != 0 {
        let out = std::process::Command::new(path).output().map_err(|e| format!("vault password script {source}: {e}"))?;
        if !out.status.success() {
            return Err(format!("vault password script {source} exited {}: {}", out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).trim()));
        }
        out.stdout
    } else {
        std::fs::read(path).map_err(|e| format!("vault password file {source}: {e}"))?
    };
    let text = String::from_utf8_lossy(&text);
    let pw = text.trim_end_matches(['\n', '\r']).lines().next().unwrap_or("").trim().to_string();
    if pw.is_empty() {
        return Err(format!("vault password file {source} is empty"));
    }
    Ok(pw.into_bytes())
}

/// Reads a password at the terminal without echo (`stty -echo` around one line).
pub fn prompt(msg: &str) -> Result<Vec<u8>, String> {
    use std::io::{IsTerminal, Write};
    if !std::io::stdin().is_terminal() {
        return Err("--ask-vault-pass needs a terminal (use --vault-password-file FILE with no terminal)".into());
    }
    eprint!("{msg}");
    let _ = std::io::stderr().flush();
    let _ = std::process::Command::new("stty").arg("-echo").stdin(std::process::Stdio::inherit()).status();
    let mut line = String::new();
    let r = std::io::stdin().read_line(&mut line);
    let _ = std::process::Command::new("stty").arg("echo").stdin(std::process::Stdio::inherit()).status();
    eprintln!();
    r.map_err(|e| e.to_string())?;
    Ok(line.trim_end_matches(['\n', '\r']).as_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_wrong_password() {
        let v = encrypt(b"secret: hunter2\n", b"pw", None);
        assert!(v.starts_with("$ANSIBLE_VAULT;1.1;AES256\n"));
        assert_eq!(decrypt_with(&v, b"pw").unwrap(), b"secret: hunter2\n");
        assert!(matches!(decrypt_with(&v, b"nope"), Err(VaultError::WrongPassword)));
        let l = encrypt(b"x", b"pw", Some("prod"));
        assert_eq!(label_of(&l).as_deref(), Some("prod"));
        assert_eq!(decrypt_with(&l, b"pw").unwrap(), b"x");
    }
}
