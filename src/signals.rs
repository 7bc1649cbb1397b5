//! Termination by SIGINT, SIGTERM and SIGHUP.
//!
//! distcc-rs blocks the three signals in every thread and takes them with
//! `sigwait` in a thread of its own, which can then run ordinary code. On
//! a signal that thread
//! 1. forwards the signal to every descendant process: the preprocessor,
//!    the local compiler, an ssh client, and whatever those started;
//! 2. sends SIGKILL to the descendants still running after [`GRACE`];
//! 3. removes the registered temporary files and partial outputs;
//! 4. dies by the same signal, so that make or a shell gets the status
//!    it would get from a plain compiler.
//!
//! The process is a child subreaper (`PR_SET_CHILD_SUBREAPER`), so a
//! process whose parent dies first, such as the `sleep` of a compiler
//! script or gcc's `cc1`, is re-parented to distcc-rs instead of init and
//! is still found in step 1.
//!
//! Starting a child process, renaming a finished object onto its output
//! path and exiting take the same lock as the termination, which keeps it
//! until the process is gone. So after a signal none of them can happen:
//! no local compile starts, and no output appears.
//!
//! Signals that were ignored when distcc-rs started (`nohup`, background
//! jobs of a non-interactive shell) stay ignored, and children inherit
//! that.

use std::collections::{HashMap, HashSet};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};

use crate::exit;

/// The signals that end a job.
const HANDLED: [Signal; 3] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP];

/// Time the descendants get to exit after the forwarded signal, for
/// example for gcc to delete its own temporary files, before SIGKILL.
const GRACE: Duration = Duration::from_millis(400);

/// Time to wait for the descendants to disappear after SIGKILL.
const KILL_WAIT: Duration = Duration::from_millis(400);

/// Interval between two scans of the process table while waiting.
const POLL: Duration = Duration::from_millis(10);

/// Set when a signal has been taken; read without the lock.
static TERMINATING: AtomicBool = AtomicBool::new(false);

/// The files to remove on a signal. The termination holds this lock until
/// the process is gone.
static REGISTRY: Mutex<Registry> = Mutex::new(Registry { next_id: 0, entries: Vec::new() });

struct Registry {
    next_id: u64,
    entries: Vec<(u64, Entry)>,
}

enum Entry {
    /// A temporary file or directory of this process, removed whole.
    Temporary(PathBuf),
    /// An output path that a running compiler may be writing. It is removed
    /// if it changed since the entry was made.
    Output { path: PathBuf, before: Option<FileIdentity> },
}

/// Identity of a file, which changes when the file is rewritten or replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileIdentity {
    device: u64,
    inode: u64,
    size: u64,
    modified_ns: i128,
}

impl FileIdentity {
    fn of(path: &Path) -> Option<FileIdentity> {
        let meta = std::fs::symlink_metadata(path).ok()?;
        if !meta.file_type().is_file() {
            return None;
        }
        Some(FileIdentity {
            device: meta.dev(),
            inode: meta.ino(),
            size: meta.size(),
            modified_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
        })
    }
}

fn lock() -> MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Installs the signal handling. Call it before any other thread or child
/// process is started, so that all of them inherit the blocked signals.
pub fn install() {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER only sets a flag of this process.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        log::debug!(
            "cannot become a child subreaper ({}); processes orphaned by a child may survive a signal",
            io::Error::last_os_error()
        );
    }
    let mut set = SigSet::empty();
    for signal in HANDLED {
        if is_ignored(signal) {
            log::debug!("{} is ignored, as inherited from the parent process", signal.as_str());
        } else {
            set.add(signal);
        }
    }
    if set == SigSet::empty() {
        return;
    }
    if let Err(error) = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None) {
        log::warn!("cannot block termination signals ({error}); a signal may leave temporary files behind");
        return;
    }
    let spawned = std::thread::Builder::new().name("signals".into()).spawn(move || {
        loop {
            if let Ok(signal) = set.wait() {
                terminate(signal);
            }
        }
    });
    if let Err(error) = spawned {
        log::warn!("cannot start the signal thread ({error}); a signal may leave temporary files behind");
        let _ = pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&set), None);
    }
}

fn is_ignored(signal: Signal) -> bool {
    // SAFETY: a null new action only reads the current disposition into `old`.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(signal as libc::c_int, std::ptr::null(), &mut old) == 0 && old.sa_sigaction == libc::SIG_IGN
    }
}

/// Returns true once a termination signal has been taken.
pub fn terminating() -> bool {
    TERMINATING.load(Ordering::SeqCst)
}

/// Removes a registered path from the list when dropped.
#[must_use = "the path is unregistered when this is dropped"]
pub struct Registration(u64);

impl Drop for Registration {
    fn drop(&mut self) {
        lock().entries.retain(|(id, _)| *id != self.0);
    }
}

fn register(entry: Entry) -> Registration {
    let mut registry = lock();
    registry.next_id += 1;
    let id = registry.next_id;
    registry.entries.push((id, entry));
    Registration(id)
}

/// Registers a temporary file or directory to remove on a signal.
pub fn remove_on_signal(path: PathBuf) -> Registration {
    register(Entry::Temporary(path))
}

/// Registers an output path that a child is about to write: on a signal
/// it is removed if it changed since this call, because the interrupted
/// child may have left it incomplete. Only regular files are removed.
pub fn guard_output(path: PathBuf) -> Registration {
    let before = FileIdentity::of(&path);
    register(Entry::Output { path, before })
}

/// Starts a child process, unless a signal has been taken: then it blocks
/// until the process dies. The child starts with no blocked signals, and
/// gets SIGTERM if this process is killed by a signal that cannot be
/// caught (SIGKILL).
pub fn spawn(command: &mut Command) -> io::Result<Child> {
    let _registry = lock();
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the closure runs in the child between fork and exec and calls
    // only sigemptyset, pthread_sigmask, prctl and getppid, which are
    // async-signal-safe.
    unsafe {
        command.pre_exec(move || {
            // A child inherits the signal mask, and std (Rust 1.95) does not
            // clear it, so without this the compiler would ignore the very
            // signals that the signal thread forwards to it.
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            let rc = libc::pthread_sigmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
            if rc != 0 {
                return Err(io::Error::from_raw_os_error(rc));
            }
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                return Err(io::Error::other("distcc-rs exited before its child process started"));
            }
            Ok(())
        });
    }
    command.spawn()
}

/// Waits for a child started by [`spawn`]. After a signal, the child was
/// stopped by the signal thread and this blocks until the process dies, so
/// the caller never acts on the interrupted child's status.
pub fn wait(child: &mut Child) -> io::Result<ExitStatus> {
    let status = child.wait();
    if terminating() {
        park();
    }
    status
}

/// Runs `action` while no termination can start. Renaming a finished object
/// onto its output path runs here, so a signal either comes first and the
/// output stays as it was, or comes after the rename.
pub fn without_termination<T>(action: impl FnOnce() -> T) -> T {
    let _registry = lock();
    action()
}

/// Exits with `code`, or dies by the signal if one has been taken.
pub fn exit(code: i32) -> ! {
    let _registry = lock();
    std::process::exit(code)
}

/// Blocks until the signal thread has ended the process.
fn park() -> ! {
    let _registry = lock();
    // The signal thread never releases the lock, so this is reached only if
    // it failed to end the process.
    std::process::exit(exit::DISTCC_FAILED)
}

fn terminate(signal: Signal) -> ! {
    TERMINATING.store(true, Ordering::SeqCst);
    let registry = lock();
    log::debug!("received {}: stopping child processes and removing temporary files", signal.as_str());
    stop_descendants(signal);
    remove_files(&registry);
    die(signal)
}

/// Forwards `signal` to every descendant, then kills those still running.
fn stop_descendants(signal: Signal) {
    let me = std::process::id() as i32;
    let started = Instant::now();
    let mut signalled = HashSet::new();
    loop {
        let alive = descendants(me);
        if alive.is_empty() {
            return;
        }
        let elapsed = started.elapsed();
        if elapsed >= GRACE + KILL_WAIT {
            log::warn!("{} child processes still run after SIGKILL: {alive:?}", alive.len());
            return;
        }
        for pid in alive {
            if elapsed >= GRACE {
                // SAFETY: kill only sends a signal.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            } else if signalled.insert(pid) {
                log::debug!("sending {} to child process {pid}", signal.as_str());
                // SAFETY: kill only sends a signal.
                unsafe { libc::kill(pid, signal as libc::c_int) };
            }
        }
        std::thread::sleep(POLL);
    }
}

/// Returns the live descendants of process `root` (zombies excluded),
/// found through the parent links in `/proc/PID/stat`.
fn descendants(root: i32) -> Vec<i32> {
    let mut children: HashMap<i32, Vec<(i32, bool)>> = HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if let Some((state, parent)) = parse_stat(&stat) {
            children.entry(parent).or_default().push((pid, state == 'Z'));
        }
    }
    let mut found = Vec::new();
    let mut queue = vec![root];
    while let Some(parent) = queue.pop() {
        for &(pid, zombie) in children.get(&parent).map(Vec::as_slice).unwrap_or_default() {
            queue.push(pid);
            if !zombie {
                found.push(pid);
            }
        }
    }
    found
}

/// Returns the state and parent process id from the text of
/// `/proc/PID/stat`: "PID (COMMAND) STATE PPID ...". The command may
/// contain spaces and parentheses, so the fields are read after the last ')'.
fn parse_stat(stat: &str) -> Option<(char, i32)> {
    let after_command = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_command.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let parent = fields.next()?.parse().ok()?;
    Some((state, parent))
}

fn remove_files(registry: &Registry) {
    for (_, entry) in registry.entries.iter().rev() {
        match entry {
            Entry::Temporary(path) => {
                let result = if path.is_dir() { std::fs::remove_dir_all(path) } else { std::fs::remove_file(path) };
                match result {
                    Ok(()) => log::debug!("removed {}", path.display()),
                    Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                    Err(error) => log::warn!("cannot remove temporary file {}: {error}", path.display()),
                }
            }
            Entry::Output { path, before } => {
                let now = FileIdentity::of(path);
                if now.is_some() && now != *before {
                    match std::fs::remove_file(path) {
                        Ok(()) => log::debug!("removed {}, which the interrupted compiler may have left incomplete", path.display()),
                        Err(error) => log::warn!("cannot remove incomplete output {}: {error}", path.display()),
                    }
                }
            }
        }
    }
}

/// Ends the process by `signal` with its default action.
fn die(signal: Signal) -> ! {
    let number = signal as libc::c_int;
    // SAFETY: restoring the default disposition and raising the signal in
    // this thread, where it is then unblocked, is the documented way to die
    // by a signal.
    unsafe {
        libc::signal(number, libc::SIG_DFL);
    }
    let mut set = SigSet::empty();
    set.add(signal);
    let _ = pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&set), None);
    // SAFETY: see above.
    unsafe {
        libc::raise(number);
    }
    std::process::exit(128 + number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_line_with_odd_command_name() {
        assert_eq!(parse_stat("4242 (cc1) S 4200 4242 4242 0 -1"), Some(('S', 4200)));
        assert_eq!(parse_stat("17 (a) b) (c) Z 1 17 17"), Some(('Z', 1)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn descendants_include_grandchildren() {
        let mut child = Command::new("sh").args(["-c", "sleep 5 & sleep 5 & wait"]).spawn().unwrap();
        let me = std::process::id() as i32;
        let deadline = Instant::now() + Duration::from_secs(5);
        let children_of_shell = |found: &[i32]| -> Vec<i32> {
            found.iter().copied().filter(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/stat")).ok().and_then(|s| parse_stat(&s)).map(|(_, p)| p)
                    == Some(child.id() as i32)
            }).collect()
        };
        // Other tests of this binary may run children at the same time, so
        // the loop waits for the shell's own two sleeps, not for any three
        // descendants, and only the shell and its sleeps are checked.
        let mut found = Vec::new();
        while Instant::now() < deadline {
            found = descendants(me);
            if children_of_shell(&found).len() >= 2 {
                break;
            }
            std::thread::sleep(POLL);
        }
        assert!(found.contains(&(child.id() as i32)), "{found:?}");
        let grandchildren = children_of_shell(&found);
        assert_eq!(grandchildren.len(), 2, "{found:?}");
        for pid in grandchildren {
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        child.wait().unwrap();
    }

    #[test]
    fn file_identity_changes_on_rewrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.o");
        assert_eq!(FileIdentity::of(&path), None);
        std::fs::write(&path, b"one").unwrap();
        let first = FileIdentity::of(&path);
        assert!(first.is_some());
        std::fs::write(&path, b"three").unwrap();
        assert_ne!(FileIdentity::of(&path), first);
        assert_eq!(FileIdentity::of(Path::new("/dev/null")), None);
    }
}
