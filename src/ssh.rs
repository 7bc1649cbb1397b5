//! ssh hosts: `[USER@]HOST[/LIMIT][:COMMAND]` entries run
//! `$DISTCC_SSH [-l USER] HOST COMMAND --inetd --enable-tcp-insecure` and
//! speak the distcc protocol over the child's standard input and output.
//!
//! The child is started directly, never through a local shell, with each
//! name as its own argument; the host list parser has already rejected user
//! and host names that start with '-' (ssh would read them as options) and
//! commands with characters that the remote shell would interpret.
//! `--enable-tcp-insecure` is passed as stock distcc 3.4 passes it: it turns
//! off distccd's compiler whitelist, which protects a TCP port from strangers
//! but protects nothing from a user who can already log in with ssh.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::exit;
use crate::remote::Failure;

/// Remote command when the entry names none.
pub const DEFAULT_COMMAND: &str = "distccd";

/// Bytes of the child's standard error kept for messages.
const MAX_STDERR_BYTES: usize = 16 * 1024;

/// How long the child may take to exit once its input is closed, before it
/// is sent SIGTERM, and again before SIGKILL. distccd --inetd exits as soon
/// as it has sent the reply, and ssh follows within milliseconds.
const EXIT_GRACE: Duration = Duration::from_secs(1);

/// Builds the child's argument vector: the words of `DISTCC_SSH`, then
/// `-l USER` when a user is given, the host, the remote command and the
/// options that make distccd serve one job on its standard input.
pub fn ssh_argv(ssh_command: &[String], user: Option<&str>, host: &str, command: Option<&str>) -> Vec<String> {
    let mut argv: Vec<String> = ssh_command.to_vec();
    if let Some(user) = user {
        argv.push("-l".into());
        argv.push(user.into());
    }
    argv.push(host.into());
    argv.push(command.unwrap_or(DEFAULT_COMMAND).into());
    argv.push("--inetd".into());
    argv.push("--enable-tcp-insecure".into());
    argv
}

/// A running ssh command and our end of the socket pair that is its
/// standard input and output.
pub struct SshConnection {
    socket: UnixStream,
    child: Option<Child>,
    stderr: Option<StderrCollector>,
    /// The program, as named in `DISTCC_SSH`, for messages.
    program: String,
}

impl SshConnection {
    /// Starts the ssh command. Reads and writes on the connection are bounded
    /// by the I/O timeout, which also covers ssh's own connection set-up.
    pub fn start(
        ssh_command: &[String],
        user: Option<&str>,
        host: &str,
        command: Option<&str>,
        config: &Config,
    ) -> Result<SshConnection, Failure> {
        let argv = ssh_argv(ssh_command, user, host, command);
        let program = argv[0].clone();
        let setup_failure = |e: io::Error| {
            Failure::client("connect", format!("cannot set up the pipes for the ssh command: {e}"), exit::IO_ERROR)
        };

        // One socket serves as both standard input and output, as in stock
        // distcc, so that socket timeouts bound every read and write.
        let (ours, theirs) = UnixStream::pair().map_err(setup_failure)?;
        let theirs_output = theirs.try_clone().map_err(setup_failure)?;
        ours.set_read_timeout(Some(config.io_timeout)).map_err(setup_failure)?;
        ours.set_write_timeout(Some(config.io_timeout)).map_err(setup_failure)?;

        let mut child = {
            let mut process = Command::new(&program);
            process
                .args(&argv[1..])
                .stdin(Stdio::from(OwnedFd::from(theirs)))
                .stdout(Stdio::from(OwnedFd::from(theirs_output)))
                .stderr(Stdio::piped());
            log::debug!("starting ssh command: {}", argv.join(" "));
            // `process` is dropped at the end of this block, which closes our
            // copies of the child's end so that its exit shows as end of file.
            crate::signals::spawn(&mut process).map_err(|e| {
                Failure::client(
                    "connect",
                    format!("cannot run ssh command '{program}' (DISTCC_SSH): {e}"),
                    exit::CONNECT_FAILED,
                )
            })?
        };
        log::debug!("ssh command for {host} runs as process {}", child.id());
        let stderr = child.stderr.take().map(StderrCollector::start);
        Ok(SshConnection { socket: ours, child: Some(child), stderr, program })
    }

    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.socket.set_read_timeout(timeout)
    }

    /// Closes the socket, reaps the child and returns a sentence with its
    /// exit status and standard error, for a failure message. The child is
    /// sent SIGTERM, then SIGKILL, when it does not exit within a grace
    /// period. Calling it again returns an empty report.
    pub fn finish(&mut self) -> String {
        let _ = self.socket.shutdown(Shutdown::Both);
        let Some(mut child) = self.child.take() else {
            return String::new();
        };
        let pid = child.id();
        let status = reap(&mut child);
        let stderr = self.stderr.take().map(|collector| collector.finish()).unwrap_or_default();

        let status_text = match &status {
            Ok(status) => describe_status(status),
            Err(e) => format!("could not be reaped: {e}"),
        };
        log::debug!("ssh command (process {pid}) {status_text}");
        let stderr = stderr.trim();
        if stderr.is_empty() {
            format!("ssh command '{}' {status_text} and wrote nothing to standard error", self.program)
        } else {
            log::debug!("standard error of the ssh command: {stderr}");
            format!("ssh command '{}' {status_text}, standard error: {}", self.program, stderr.replace('\n', " | "))
        }
    }
}

impl Drop for SshConnection {
    fn drop(&mut self) {
        self.finish();
    }
}

impl Read for SshConnection {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        self.socket.read(buffer)
    }
}

impl Write for SshConnection {
    fn write(&mut self, buffer: &[u8]) -> io::Result<usize> {
        self.socket.write(buffer)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.socket.flush()
    }
}

/// Waits for the child, sending SIGTERM and then SIGKILL when it outlives
/// its grace period.
fn reap(child: &mut Child) -> io::Result<ExitStatus> {
    if let Some(status) = wait_until(child, Instant::now() + EXIT_GRACE)? {
        return Ok(status);
    }
    log::debug!("ssh command (process {}) still runs after the connection closed; sending SIGTERM", child.id());
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    if let Some(status) = wait_until(child, Instant::now() + EXIT_GRACE)? {
        return Ok(status);
    }
    log::debug!("ssh command (process {}) ignored SIGTERM; sending SIGKILL", child.id());
    child.kill()?;
    child.wait()
}

fn wait_until(child: &mut Child, deadline: Instant) -> io::Result<Option<ExitStatus>> {
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        thread::sleep(Duration::from_millis(10));
    }
}

fn describe_status(status: &ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("was killed by {}", exit::signal_name(signal)),
        _ => format!("ended with {status}"),
    }
}

/// Reads the child's standard error on a thread, so that a chatty child
/// never blocks on a full pipe, and keeps the first bytes for messages.
struct StderrCollector {
    text: Arc<Mutex<Vec<u8>>>,
    done: mpsc::Receiver<()>,
}

impl StderrCollector {
    fn start(mut pipe: ChildStderr) -> StderrCollector {
        let text = Arc::new(Mutex::new(Vec::new()));
        let (sender, done) = mpsc::channel();
        let shared = Arc::clone(&text);
        thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            loop {
                match pipe.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(count) => {
                        let mut kept = shared.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                        let room = MAX_STDERR_BYTES.saturating_sub(kept.len());
                        kept.extend_from_slice(&chunk[..count.min(room)]);
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                }
            }
            let _ = sender.send(());
        });
        StderrCollector { text, done }
    }

    /// Returns what the child wrote. It waits briefly for the end of the
    /// pipe, which a process that ssh left behind may hold open.
    fn finish(self) -> String {
        let _ = self.done.recv_timeout(Duration::from_millis(500));
        let kept = self.text.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        String::from_utf8_lossy(&kept).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(list: &[&str]) -> Vec<String> {
        list.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn argv_with_user_and_default_command() {
        let argv = ssh_argv(&words(&["ssh"]), Some("alice"), "build.example", None);
        assert_eq!(argv, ["ssh", "-l", "alice", "build.example", "distccd", "--inetd", "--enable-tcp-insecure"]);
    }

    #[test]
    fn argv_keeps_ssh_words_and_command() {
        let argv = ssh_argv(&words(&["ssh", "-o", "BatchMode=yes"]), None, "b1", Some("/usr/sbin/distccd"));
        assert_eq!(argv, ["ssh", "-o", "BatchMode=yes", "b1", "/usr/sbin/distccd", "--inetd", "--enable-tcp-insecure"]);
    }
}
