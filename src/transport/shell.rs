//! A persistent `sh` on the far end of a pipe, running one command at a time.
//!
//! Each command is sent as one line followed by
//! `printf '\n%s %d\n' MARKER $?` on stdout and `printf '\n%s\n' MARKER` on
//! stderr, with a fresh random marker per command. Output is read up to the
//! marker, and the one newline we added before it is removed, so stdout and
//! stderr come back byte-exact and apart, with the exit status.

use std::pin::Pin;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{Output, TransportError};

type Reader = Pin<Box<dyn AsyncRead + Send>>;
type Writer = Pin<Box<dyn AsyncWrite + Send>>;

/// A random token that cannot appear in output by chance.
pub fn marker() -> String {
    format!("__RECOVER_{}__", uuid::Uuid::new_v4().simple())
}

/// One running shell and its three pipes.
pub struct Shell {
    stdin: Writer,
    stdout: Reader,
    stderr: Reader,
    out_buf: Vec<u8>,
    err_buf: Vec<u8>,
    /// Where the ssh that runs it logs (its own errors: a refused key, a changed host key).
    log: Option<std::path::PathBuf>,
    /// The process, kept (and killed on drop) or let go on its own (a persistent master).
    child: Option<tokio::process::Child>,
    _keep: Box<dyn Send>,
}

impl Shell {
    /// Starts `argv` (a shell, possibly under sudo) on this machine, in a process group of its
    /// own (an aborted command is ended with its shell's group, never with recover's).
    pub fn spawn_local(argv: &[String]) -> Result<Shell, TransportError> {
        let mut cmd = tokio::process::Command::new(&argv[0]);
        cmd.args(&argv[1..]).process_group(0);
        Shell::spawn_process(cmd, true, Box::new(()), None)
    }

    /// Starts `cmd` with three pipes as a shell: a local `sh`, or the `ssh` that is a host's
    /// master and its first shell (`log`: where that ssh writes its own errors). With `kill`,
    /// the process ends when the shell is dropped; without, it is let go (a persistent master
    /// that goes on once its session ends).
    pub fn spawn_process(mut cmd: tokio::process::Command, kill: bool, keep: Box<dyn Send>, log: Option<std::path::PathBuf>) -> Result<Shell, TransportError> {
        let program = cmd.as_std().get_program().to_string_lossy().into_owned();
        let mut child = cmd
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(kill)
            .spawn()
            .map_err(|e| TransportError::Connect(format!("cannot start {program}: {e}")))?;
        let stdin = child.stdin.take().ok_or_else(|| TransportError::Connect("no stdin".into()))?;
        let stdout = child.stdout.take().ok_or_else(|| TransportError::Connect("no stdout".into()))?;
        let stderr = child.stderr.take().ok_or_else(|| TransportError::Connect("no stderr".into()))?;
        let mut sh = Shell::new(Box::pin(stdin), Box::pin(stdout), Box::pin(stderr), keep);
        sh.child = Some(child);
        sh.log = log;
        Ok(sh)
    }

    /// Starts `argv` on the far end of an SSH session.
    pub async fn spawn_ssh(session: Arc<openssh::Session>, argv: &[String]) -> Result<Shell, TransportError> {
        let mut cmd = openssh::Session::to_command(session, argv[0].clone());
        cmd.args(&argv[1..]).stdin(openssh::Stdio::piped()).stdout(openssh::Stdio::piped()).stderr(openssh::Stdio::piped());
        let mut child = cmd.spawn().await.map_err(|e| TransportError::Lost(e.to_string()))?;
        let stdin = child.stdin().take().ok_or_else(|| TransportError::Lost("no stdin".into()))?;
        let stdout = child.stdout().take().ok_or_else(|| TransportError::Lost("no stdout".into()))?;
        let stderr = child.stderr().take().ok_or_else(|| TransportError::Lost("no stderr".into()))?;
        Ok(Shell::new(Box::pin(stdin), Box::pin(stdout), Box::pin(stderr), Box::new(child)))
    }

    /// What the connection's ssh logged (why it ended), when it logs to a file.
    pub fn ssh_log(&self) -> Option<String> {
        self.log.as_ref().and_then(|l| std::fs::read_to_string(l).ok()).filter(|t| !t.trim().is_empty())
    }

    fn new(stdin: Writer, stdout: Reader, stderr: Reader, keep: Box<dyn Send>) -> Shell {
        Shell { stdin, stdout, stderr, out_buf: Vec::new(), err_buf: Vec::new(), log: None, child: None, _keep: keep }
    }

    /// Runs one shell line and returns its output and exit status.
    pub async fn run(&mut self, line: &str) -> Result<Output, TransportError> {
        let m = marker();
        let script = format!("{line}\n__r=$?; printf '\\n%s %d\\n' {m} \"$__r\"; printf '\\n%s\\n' {m} >&2\n");
        self.stdin.write_all(script.as_bytes()).await.map_err(|e| TransportError::Lost(format!("write to shell: {e}")))?;
        self.stdin.flush().await.map_err(|e| TransportError::Lost(format!("write to shell: {e}")))?;
        let out_end = format!("\n{m} ");
        let err_end = format!("\n{m}\n");
        let (out, err) = tokio::join!(
            read_until(&mut self.stdout, &mut self.out_buf, out_end.as_bytes(), true),
            read_until(&mut self.stderr, &mut self.err_buf, err_end.as_bytes(), false)
        );
        let err = match err {
            Ok((e, _)) => e,
            Err(partial) => return Err(TransportError::Lost(format!("shell exited: {}", self.ssh_log().unwrap_or_else(|| tail(&partial))))),
        };
        let (stdout, rc) = match out {
            Ok(pair) => pair,
            Err(_) => return Err(TransportError::Lost(format!("shell exited: {}", self.ssh_log().unwrap_or_else(|| tail(&err))))),
        };
        let rc = String::from_utf8_lossy(&rc).trim().parse::<i32>().unwrap_or(-1);
        Ok(Output { rc, stdout, stderr: err })
    }

    /// Writes bytes to the shell's stdin as they are (the become password sudo reads first).
    pub async fn write_raw(&mut self, bytes: &[u8]) -> Result<(), TransportError> {
        self.stdin.write_all(bytes).await.map_err(|e| TransportError::Lost(format!("write to shell: {e}")))?;
        self.stdin.flush().await.map_err(|e| TransportError::Lost(format!("write to shell: {e}")))
    }

    /// Ends the shell (closing stdin ends `sh`), and waits a moment for its process (an ssh
    /// master ends once its session has; a persistent one goes on in the background).
    pub async fn close(mut self) {
        let _ = self.stdin.shutdown().await;
        // A child's stdin closes when it is dropped (its shutdown only flushes).
        drop(std::mem::replace(&mut self.stdin, Box::pin(tokio::io::sink())));
        if let Some(mut child) = self.child.take() {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), child.wait()).await;
        }
    }
}

fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let t = text.trim();
    if t.is_empty() {
        "no output".into()
    } else {
        t.chars().rev().take(400).collect::<Vec<_>>().into_iter().rev().collect()
    }
}

/// Reads until `end` is in the buffer and returns the bytes before it. With
/// `status`, also the text after `end` up to the next newline (the exit status).
/// On end of stream, `Err` with whatever was read.
async fn read_until(r: &mut Reader, buf: &mut Vec<u8>, end: &[u8], status: bool) -> Result<(Vec<u8>, Vec<u8>), Vec<u8>> {
    let mut from = 0usize;
    loop {
        if let Some(pos) = find(&buf[from..], end).map(|p| p + from) {
            let after = pos + end.len();
            if !status {
                let body = buf[..pos].to_vec();
                buf.drain(..after);
                return Ok((body, Vec::new()));
            }
            if let Some(nl) = buf[after..].iter().position(|b| *b == b'\n') {
                let rc = buf[after..after + nl].to_vec();
                let body = buf[..pos].to_vec();
                buf.drain(..after + nl + 1);
                return Ok((body, rc));
            }
        } else {
            from = buf.len().saturating_sub(end.len());
        }
        // Straight into the buffer's spare room: no zeroed chunk per command.
        buf.reserve(64 * 1024);
        match r.read_buf(buf).await {
            Ok(0) | Err(_) => return Err(std::mem::take(buf)),
            Ok(_) => {}
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    memchr::memmem::find(hay, needle)
}

/// Runs `argv` once on this machine, for the per-command fallback.
pub async fn run_local_once(argv: &[String]) -> Result<Output, TransportError> {
    let out = tokio::process::Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| TransportError::Connect(format!("cannot start {}: {e}", argv[0])))?;
    Ok(Output { rc: out.status.code().unwrap_or(-1), stdout: out.stdout, stderr: out.stderr })
}

#[cfg(test)]
mod tests {
    use super::super::{Cmd, Connection, Target};

    #[tokio::test]
    async fn framing_is_exact_over_a_real_shell() {
        let conn = Connection::open(&Target { name: "local".into(), local: true, ..Default::default() }).await.unwrap();
        let out = conn.exec(&Cmd::shell("printf 'a\\nb'; printf err >&2; exit 3")).await.unwrap();
        assert_eq!((out.stdout.as_slice(), out.stderr.as_slice(), out.rc), (&b"a\nb"[..], &b"err"[..], 3));
        // The shell survives `exit` and keeps state-free commands apart.
        let out = conn.exec(&Cmd::shell("echo")).await.unwrap();
        assert_eq!(out.stdout, b"\n");
        // Binary stdin round trip, and hostile argv words stay data.
        let data: Vec<u8> = (0..=255u8).cycle().take(200_000).collect();
        let out = conn.exec(&Cmd::argv(["cat"]).stdin(data.clone())).await.unwrap();
        assert_eq!(out.stdout, data);
        let out = conn.exec(&Cmd::argv(["printf", "%s", "; rm -rf / $(id) `id` '\""])).await.unwrap();
        assert_eq!(out.stdout_str(), "; rm -rf / $(id) `id` '\"");
        conn.close().await;
    }
}
