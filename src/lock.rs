//! Slot locks that distcc-rs shares with stock distcc clients.
//!
//! A slot is a file `cpu_<HOST>_<N>` in `$DISTCC_DIR/lock`, held with a
//! POSIX record lock (`fcntl(F_SETLK)`, `F_WRLCK`, whole file), which is what
//! stock distcc 3.4 uses (`src/lock.c`). On Linux a `flock(2)` lock does not
//! conflict with a record lock, so no other kind of lock would keep both
//! clients from oversubscribing a host. The kernel drops record locks when
//! the process ends, so a crashed client never leaves a slot taken.
//!
//! Record locks belong to the process, not to the descriptor. So closing a
//! second descriptor of a locked file would release the lock, and a second
//! lock request on it would succeed and count one job twice.
//! [`SlotLock::try_lock`] therefore never opens a file that this process has
//! locked. Compilers run as child processes while this process keeps the
//! lock, so the lock's descriptor is never passed on (it is close-on-exec).
//!
//! A job that finds every slot taken blocks on one of them in the kernel
//! ([`SlotWait`]), so it takes the slot the moment its holder lets
//! go. Stock distcc 3.4 sleeps `DISTCC_PAUSE_TIME_MSEC` (one second) and
//! scans again, which leaves a freed slot idle for up to that second. The
//! wait uses an open file description lock (`F_OFD_SETLKW`, Linux 3.15),
//! which conflicts with record locks, stock distcc's included, but belongs
//! to its descriptor, so a helper thread can hold it for the process.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Lock files this process holds, so that it never opens one of them again.
static HELD: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Returns the name of the lock file of slot `slot` of a host whose
/// [`lock_name`](crate::hosts::HostSpec::lock_name) is `host_lock_name`.
pub fn slot_file_name(host_lock_name: &str, slot: u32) -> String {
    format!("cpu_{host_lock_name}_{slot}")
}

/// A held slot. Dropping it releases the lock.
#[derive(Debug)]
pub struct SlotLock {
    file: File,
    path: PathBuf,
    /// True for an open file description lock from a [`SlotWait`].
    description_lock: bool,
}

/// The progress of a [`SlotWait`], shared with its helper thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WaitState {
    Waiting,
    /// The helper got the lock and sent it.
    Delivered,
    /// The job stopped waiting; a lock the helper gets later is released.
    Abandoned,
}

impl SlotLock {
    /// Tries to lock `path` without waiting, creating the file when missing.
    /// Returns `Ok(None)` when another process has it locked, or when this
    /// process has.
    pub fn try_lock(path: &Path) -> io::Result<Option<SlotLock>> {
        let mut held = HELD.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if held.iter().any(|p| p == path) {
            return Ok(None);
        }
        // Mode 0666 before the umask, as stock distcc creates them, so that
        // users who share a lock directory can all open the files.
        let file = OpenOptions::new().write(true).create(true).truncate(false).mode(0o666).open(path)?;
        if !set_record_lock(&file, libc::F_WRLCK)? {
            return Ok(None);
        }
        held.push(path.to_path_buf());
        Ok(Some(SlotLock { file, path: path.to_path_buf(), description_lock: false }))
    }

}

/// A wait for one taken slot, kept across rounds of a job's search: one
/// helper thread blocks in `F_OFD_SETLKW`, which cannot be given a
/// timeout, until the slot is released. Dropping the wait abandons it, and
/// a lock the helper gets later is released at once. The helper keeps its
/// descriptor open until the process ends, because closing it could release
/// a record lock that this process took on the same file in the meantime.
#[derive(Debug)]
pub struct SlotWait {
    path: PathBuf,
    receiver: mpsc::Receiver<File>,
    state: Arc<Mutex<WaitState>>,
}

impl SlotWait {
    /// Starts waiting for the slot file at `path`. Returns `Ok(None)` when
    /// this process has that slot already.
    pub fn start(path: &Path) -> io::Result<Option<SlotWait>> {
        if HELD.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).iter().any(|p| p == path) {
            return Ok(None);
        }
        let file = OpenOptions::new().write(true).create(true).truncate(false).mode(0o666).open(path)?;
        let state = Arc::new(Mutex::new(WaitState::Waiting));
        let (sender, receiver) = mpsc::channel();
        let helper_state = Arc::clone(&state);
        std::thread::Builder::new().name("slot wait".into()).spawn(move || {
            let locked = lock_description(&file, libc::F_OFD_SETLKW, libc::F_WRLCK);
            let mut state = helper_state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            match locked {
                Ok(true) if *state == WaitState::Waiting => {
                    *state = WaitState::Delivered;
                    let _ = sender.send(file);
                }
                Ok(true) => {
                    let _ = lock_description(&file, libc::F_OFD_SETLK, libc::F_UNLCK);
                    std::mem::forget(file);
                }
                _ => std::mem::forget(file),
            }
        })?;
        Ok(Some(SlotWait { path: path.to_path_buf(), receiver, state }))
    }

    /// Waits up to `timeout` more for the slot. Returns `Ok(None)` when the
    /// time is up; the wait goes on and can be resumed.
    pub fn resume(&self, timeout: Duration) -> io::Result<Option<SlotLock>> {
        match self.receiver.recv_timeout(timeout) {
            Ok(file) => {
                HELD.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(self.path.clone());
                Ok(Some(SlotLock { file, path: self.path.clone(), description_lock: true }))
            }
            Err(mpsc::RecvTimeoutError::Timeout) => Ok(None),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                Err(io::Error::other(format!("the wait for {} ended without the lock", self.path.display())))
            }
        }
    }
}

impl Drop for SlotWait {
    fn drop(&mut self) {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if *state == WaitState::Delivered {
            drop(state);
            // Sent but never taken: releasing it frees the slot.
            if let Ok(file) = self.receiver.try_recv() {
                let _ = lock_description(&file, libc::F_OFD_SETLK, libc::F_UNLCK);
            }
            return;
        }
        *state = WaitState::Abandoned;
    }
}

impl Drop for SlotLock {
    fn drop(&mut self) {
        let unlocked = if self.description_lock {
            lock_description(&self.file, libc::F_OFD_SETLK, libc::F_UNLCK).map(|_| true)
        } else {
            set_record_lock(&self.file, libc::F_UNLCK)
        };
        if let Err(error) = unlocked {
            log::debug!("unlocking {} failed: {error}; closing the file releases it", self.path.display());
        }
        let mut held = HELD.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        held.retain(|p| p != &self.path);
        log::debug!("released slot {}", self.path.display());
    }
}

/// Sets (`F_WRLCK`) or clears (`F_UNLCK`) a record lock on the whole file
/// without waiting. Returns false when another process holds a conflicting lock.
fn set_record_lock(file: &File, lock_type: libc::c_int) -> io::Result<bool> {
    // SAFETY: `flock` is plain data; zero is a valid value for every field.
    let mut request: libc::flock = unsafe { std::mem::zeroed() };
    request.l_type = lock_type as libc::c_short;
    request.l_whence = libc::SEEK_SET as libc::c_short;
    request.l_start = 0;
    request.l_len = 0; // 0 means the whole file, however long it grows.
    // SAFETY: the descriptor is open for as long as `file` lives, and
    // `request` is a valid `flock` that outlives the call.
    let result = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLK, &request) };
    if result == 0 {
        return Ok(true);
    }
    let error = io::Error::last_os_error();
    match error.raw_os_error() {
        // EACCES is what some systems return instead of EAGAIN for a held lock.
        Some(libc::EAGAIN) | Some(libc::EACCES) => Ok(false),
        _ => Err(error),
    }
}

/// Applies an open file description lock of `lock_type` to the whole file
/// with `command` (`F_OFD_SETLK` or `F_OFD_SETLKW`). Returns `Ok(false)`
/// when another lock conflicts and `command` does not wait.
fn lock_description(file: &File, command: libc::c_int, lock_type: libc::c_int) -> io::Result<bool> {
    // SAFETY: an all-zero `flock` is valid; l_pid must be 0 for these commands.
    let mut request: libc::flock = unsafe { std::mem::zeroed() };
    request.l_type = lock_type as libc::c_short;
    request.l_whence = libc::SEEK_SET as libc::c_short;
    loop {
        // SAFETY: the descriptor is open and `request` outlives the call.
        if unsafe { libc::fcntl(file.as_raw_fd(), command, &request) } == 0 {
            return Ok(true);
        }
        let error = io::Error::last_os_error();
        match error.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EAGAIN) | Some(libc::EACCES) => return Ok(false),
            _ => return Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn slot_file_names_match_stock() {
        assert_eq!(slot_file_name("localhost", 0), "cpu_localhost_0");
        assert_eq!(slot_file_name("tcp_127.0.0.1_3632", 3), "cpu_tcp_127.0.0.1_3632_3");
        assert_eq!(slot_file_name("ssh_build", 1), "cpu_ssh_build_1");
    }

    #[test]
    fn second_lock_in_same_process_is_busy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cpu_localhost_0");
        let first = SlotLock::try_lock(&path).unwrap();
        assert!(first.is_some());
        assert!(SlotLock::try_lock(&path).unwrap().is_none());
        drop(first);
        assert!(SlotLock::try_lock(&path).unwrap().is_some());
    }

    /// The lock conflicts with a record lock requested by another process. `flock`
    /// from util-linux (`-n`: fail instead of waiting) would not conflict,
    /// so the check uses a record lock through a short Python program.
    #[test]
    fn lock_conflicts_with_other_process_record_lock() {
        let Ok(python) = which::which("python3") else {
            eprintln!("SKIPPED lock_conflicts_with_other_process_record_lock: python3 not found");
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cpu_tcp_h_1_0");
        let probe = "import fcntl,sys\nf=open(sys.argv[1],'w')\ntry:\n fcntl.lockf(f,fcntl.LOCK_EX|fcntl.LOCK_NB)\n print('free')\nexcept OSError:\n print('busy')\n";
        let run_probe = || {
            let output = Command::new(&python).arg("-c").arg(probe).arg(&path).output().unwrap();
            String::from_utf8(output.stdout).unwrap().trim().to_string()
        };
        let lock = SlotLock::try_lock(&path).unwrap().expect("free slot");
        assert_eq!(run_probe(), "busy");
        drop(lock);
        assert_eq!(run_probe(), "free");
    }

    /// Holds a record lock on `path` in a child process (as stock distcc
    /// does) for `seconds`, and returns once the lock is taken.
    fn hold_in_child(path: &Path, seconds: f64) -> Option<std::process::Child> {
        let python = which::which("python3").ok()?;
        let script = "import fcntl,sys,time\nf=open(sys.argv[1],'w')\nfcntl.lockf(f,fcntl.LOCK_EX)\nprint('held',flush=True)\ntime.sleep(float(sys.argv[2]))\n";
        let mut child = Command::new(python)
            .args(["-c", script])
            .arg(path)
            .arg(seconds.to_string())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
        assert_eq!(line.trim(), "held");
        Some(child)
    }

    #[test]
    fn wait_takes_slot_when_released() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cpu_tcp_h_1_0");
        let Some(mut holder) = hold_in_child(&path, 0.3) else {
            eprintln!("SKIPPED wait_takes_slot_when_released: python3 not found");
            return;
        };
        let wait = SlotWait::start(&path).unwrap().expect("the slot is not ours");
        assert!(wait.resume(Duration::from_millis(50)).unwrap().is_none());
        let started = std::time::Instant::now();
        let lock = wait.resume(Duration::from_secs(10)).unwrap().expect("slot after the holder ends");
        // The holder sleeps 0.3 s in all; a poll every pause would wait 10 s.
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
        holder.wait().unwrap();
        assert!(SlotLock::try_lock(&path).unwrap().is_none(), "held by this process");
        assert!(SlotWait::start(&path).unwrap().is_none(), "held by this process");

        // The waited-for lock keeps record locks of other processes out.
        let probe = "import fcntl,sys\nf=open(sys.argv[1],'w')\ntry:\n fcntl.lockf(f,fcntl.LOCK_EX|fcntl.LOCK_NB)\n print('free')\nexcept OSError:\n print('busy')\n";
        let run_probe = || {
            let output = Command::new("python3").arg("-c").arg(probe).arg(&path).output().unwrap();
            String::from_utf8(output.stdout).unwrap().trim().to_string()
        };
        assert_eq!(run_probe(), "busy");
        drop(lock);
        assert_eq!(run_probe(), "free");
    }

    fn thread_count() -> usize {
        std::fs::read_dir("/proc/self/task").unwrap().count()
    }

    #[test]
    fn resumed_wait_uses_one_thread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cpu_tcp_h_3_0");
        let Some(mut holder) = hold_in_child(&path, 2.0) else {
            eprintln!("SKIPPED resumed_wait_uses_one_thread: python3 not found");
            return;
        };
        let before = thread_count();
        let wait = SlotWait::start(&path).unwrap().expect("the slot is not ours");
        for _ in 0..50 {
            assert!(wait.resume(Duration::from_millis(1)).unwrap().is_none());
        }
        // Other tests run threads too, so allow for a few of theirs.
        assert!(thread_count() <= before + 4, "{} threads after 50 rounds, {before} before", thread_count());
        drop(wait);
        holder.kill().unwrap();
        holder.wait().unwrap();
    }

    #[test]
    fn abandoned_wait_releases_late_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cpu_tcp_h_2_0");
        let Some(mut holder) = hold_in_child(&path, 0.2) else {
            eprintln!("SKIPPED abandoned_wait_releases_late_lock: python3 not found");
            return;
        };
        let wait = SlotWait::start(&path).unwrap().expect("the slot is not ours");
        assert!(wait.resume(Duration::from_millis(10)).unwrap().is_none());
        drop(wait);
        holder.wait().unwrap();
        // The helper thread gets the lock when the holder ends and lets it go.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(lock) = SlotLock::try_lock(&path).unwrap() {
                drop(lock);
                break;
            }
            assert!(std::time::Instant::now() < deadline, "the abandoned wait kept the slot");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
