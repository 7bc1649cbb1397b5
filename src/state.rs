//! Monitor state: the per-process records that stock `distccmon-text` and
//! `distccmon-gnome` read from `$DISTCC_DIR/state`.
//!
//! Each client process keeps one file `binstate_<PID>`. It contains one
//! native `struct dcc_task_state` of stock distcc 3.4 (`src/state.h`):
//! `size_t` record size, `unsigned long` magic and client pid, `char file[128]`
//! (source basename), `char host[128]`, `int slot`, `int` phase, and a
//! pointer that readers ignore; 296 bytes on LP64 systems. Readers reject a
//! record with the wrong size or magic, skip those of dead processes and
//! delete those older than 60 seconds. The file is rewritten at every phase
//! change and removed when the job ends, local compiles included (they run
//! as child processes while this process waits).

use std::cell::{Cell, RefCell};
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::mem::{offset_of, size_of};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// `DCC_STATE_MAGIC` of stock distcc: "DIH" followed by a zero byte.
const STATE_MAGIC: libc::c_ulong = 0x4449_4800;

/// Prefix of the record files; readers look only at files named so.
const FILE_PREFIX: &str = "binstate_";

/// Layout of `struct dcc_task_state`. It is never constructed: the record
/// is assembled field by field at these offsets, so no padding bytes are
/// left uninitialised.
#[repr(C)]
#[allow(dead_code)]
struct TaskState {
    struct_size: libc::size_t,
    magic: libc::c_ulong,
    cpid: libc::c_ulong,
    file: [u8; 128],
    host: [u8; 128],
    slot: libc::c_int,
    curr_phase: libc::c_int,
    next: *mut libc::c_void,
}

/// Size of one record.
pub const RECORD_SIZE: usize = size_of::<TaskState>();

/// Job phases, numbered as `enum dcc_phase` of stock distcc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for a free slot.
    Blocked = 1,
    Connect = 2,
    Preprocess = 3,
    Send = 4,
    /// Compiling, on a server or locally.
    Compile = 5,
}

/// The record a phase is written to. Stock distcc keeps one record for
/// local work (preprocessing, local compiles) and one for the remote host,
/// so that a preprocessing note does not replace the remote host's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Local,
    Remote,
}

#[derive(Debug, Clone, Default)]
struct Record {
    host: String,
    slot: u32,
}

/// The state file of this process.
#[derive(Debug)]
pub struct Monitor {
    path: PathBuf,
    file: String,
    local: RefCell<Record>,
    remote: RefCell<Record>,
    written: Cell<bool>,
    failed: Cell<bool>,
}

impl Monitor {
    /// Prepares the record of this process in `state_dir` for the source
    /// file `source` (only its basename is recorded). Nothing is written yet.
    pub fn new(state_dir: &Path, source: &str) -> Monitor {
        let basename = Path::new(source).file_name().map(|name| name.to_string_lossy().into_owned());
        Monitor {
            path: state_dir.join(format!("{FILE_PREFIX}{}", std::process::id())),
            file: basename.unwrap_or_default(),
            local: RefCell::new(Record::default()),
            remote: RefCell::new(Record::default()),
            written: Cell::new(false),
            failed: Cell::new(false),
        }
    }

    /// Records the host and slot that `target` work now uses.
    pub fn set_host(&self, target: Target, host: &str, slot: u32) {
        let mut record = self.record(target).borrow_mut();
        record.host = host.to_string();
        record.slot = slot;
    }

    /// Writes the phase with the host and slot last set for `target`.
    /// Failures are logged once and otherwise ignored: the record only
    /// informs a monitor.
    pub fn note(&self, target: Target, phase: Phase) {
        if self.failed.get() {
            return;
        }
        if !self.written.get() {
            sweep_dead_records(self.path.parent().unwrap_or(Path::new(".")));
        }
        let record = self.record(target).borrow().clone();
        match self.write(&record, phase) {
            Ok(()) => self.written.set(true),
            Err(error) => {
                log::debug!("cannot write monitor state {}: {error}", self.path.display());
                self.failed.set(true);
            }
        }
    }

    fn record(&self, target: Target) -> &RefCell<Record> {
        match target {
            Target::Local => &self.local,
            Target::Remote => &self.remote,
        }
    }

    fn write(&self, record: &Record, phase: Phase) -> io::Result<()> {
        let bytes = encode(std::process::id(), &self.file, &record.host, record.slot, phase);
        let mut file = OpenOptions::new().write(true).create(true).truncate(true).mode(0o666).open(&self.path)?;
        // One write, so that a reader sees either an empty file (which
        // readers skip) or the whole record.
        file.write_all(&bytes)
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        if self.written.get()
            && let Err(error) = fs::remove_file(&self.path)
            && error.kind() != io::ErrorKind::NotFound
        {
            log::debug!("cannot remove monitor state {}: {error}", self.path.display());
        }
    }
}

/// Encodes one record in the native layout of `struct dcc_task_state`.
fn encode(pid: u32, file: &str, host: &str, slot: u32, phase: Phase) -> Vec<u8> {
    let mut bytes = vec![0u8; RECORD_SIZE];
    put(&mut bytes, offset_of!(TaskState, struct_size), &(RECORD_SIZE as libc::size_t).to_ne_bytes());
    put(&mut bytes, offset_of!(TaskState, magic), &STATE_MAGIC.to_ne_bytes());
    put(&mut bytes, offset_of!(TaskState, cpid), &(pid as libc::c_ulong).to_ne_bytes());
    put_text(&mut bytes, offset_of!(TaskState, file), 128, file);
    put_text(&mut bytes, offset_of!(TaskState, host), 128, host);
    let slot = libc::c_int::try_from(slot).unwrap_or(libc::c_int::MAX);
    put(&mut bytes, offset_of!(TaskState, slot), &slot.to_ne_bytes());
    put(&mut bytes, offset_of!(TaskState, curr_phase), &(phase as libc::c_int).to_ne_bytes());
    bytes
}

fn put(bytes: &mut [u8], offset: usize, value: &[u8]) {
    bytes[offset..offset + value.len()].copy_from_slice(value);
}

/// Copies `text` into a `char[capacity]` field, cut to leave the closing
/// zero byte, as `strlcpy` does.
fn put_text(bytes: &mut [u8], offset: usize, capacity: usize, text: &str) {
    let mut end = text.len().min(capacity - 1);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    put(bytes, offset, &text.as_bytes()[..end]);
}

/// Deletes records of processes that no longer exist: those of compilers
/// that replaced a distcc-rs process, and those of clients that were killed.
fn sweep_dead_records(state_dir: &Path) {
    let Ok(entries) = fs::read_dir(state_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(FILE_PREFIX)).and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        if pid > 0 && !process_exists(pid) {
            match fs::remove_file(entry.path()) {
                Ok(()) => log::debug!("removed monitor state of ended process {pid}"),
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(error) => log::debug!("cannot remove {}: {error}", entry.path().display()),
            }
        }
    }
}

fn process_exists(pid: i32) -> bool {
    // SAFETY: signal 0 only checks whether the process exists.
    let result = unsafe { libc::kill(pid, 0) };
    // EPERM: the process exists but belongs to another user.
    result == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(all(target_os = "linux", target_pointer_width = "64"))]
    #[test]
    fn record_layout_matches_lp64_stock() {
        assert_eq!(RECORD_SIZE, 296);
        let bytes = encode(4242, "lapi.c", "127.0.0.1:3632", 1, Phase::Compile);
        assert_eq!(bytes.len(), 296);
        assert_eq!(u64::from_ne_bytes(bytes[0..8].try_into().unwrap()), 296);
        assert_eq!(u64::from_ne_bytes(bytes[8..16].try_into().unwrap()), 0x4449_4800);
        assert_eq!(u64::from_ne_bytes(bytes[16..24].try_into().unwrap()), 4242);
        assert_eq!(&bytes[24..30], b"lapi.c");
        assert_eq!(bytes[30], 0);
        assert_eq!(&bytes[152..166], b"127.0.0.1:3632");
        assert_eq!(i32::from_ne_bytes(bytes[280..284].try_into().unwrap()), 1);
        assert_eq!(i32::from_ne_bytes(bytes[284..288].try_into().unwrap()), 5);
        assert_eq!(&bytes[288..296], &[0u8; 8]);
    }

    #[test]
    fn long_names_keep_closing_zero() {
        let long = "é".repeat(100);
        let bytes = encode(1, &long, &long, 0, Phase::Send);
        let file = &bytes[offset_of!(TaskState, file)..offset_of!(TaskState, file) + 128];
        assert_eq!(file[127], 0);
        assert!(std::str::from_utf8(&file[..file.iter().position(|b| *b == 0).unwrap()]).is_ok());
    }

    #[test]
    fn note_writes_and_drop_removes() {
        let dir = tempfile::tempdir().unwrap();
        let monitor = Monitor::new(dir.path(), "src/lvm.c");
        let path = dir.path().join(format!("binstate_{}", std::process::id()));
        monitor.set_host(Target::Remote, "127.0.0.1:3632", 1);
        monitor.note(Target::Remote, Phase::Connect);
        let bytes = fs::read(&path).unwrap();
        assert_eq!(bytes, encode(std::process::id(), "lvm.c", "127.0.0.1:3632", 1, Phase::Connect));

        monitor.set_host(Target::Local, "localhost", 0);
        monitor.note(Target::Local, Phase::Preprocess);
        monitor.note(Target::Remote, Phase::Send);
        let bytes = fs::read(&path).unwrap();
        assert_eq!(bytes, encode(std::process::id(), "lvm.c", "127.0.0.1:3632", 1, Phase::Send));
        drop(monitor);
        assert!(!path.exists());
    }

    #[test]
    fn sweep_removes_only_dead_processes() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead_pid = child.id();
        child.wait().unwrap();
        let dead = dir.path().join(format!("binstate_{dead_pid}"));
        let alive = dir.path().join(format!("binstate_{}", std::process::id()));
        let other = dir.path().join("notes");
        for path in [&dead, &alive, &other] {
            fs::write(path, b"").unwrap();
        }
        sweep_dead_records(dir.path());
        assert!(!dead.exists());
        assert!(alive.exists());
        assert!(other.exists());
    }
}
