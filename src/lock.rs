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

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

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
        Ok(Some(SlotLock { file, path: path.to_path_buf() }))
    }
}

impl Drop for SlotLock {
    fn drop(&mut self) {
        if let Err(error) = set_record_lock(&self.file, libc::F_UNLCK) {
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
}
