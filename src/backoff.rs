//! Backoff: a host that failed on its side is skipped by every client for
//! `DISTCC_BACKOFF_PERIOD` seconds.
//!
//! The record is the file `backoff_<HOST>_0` in `$DISTCC_DIR/lock`, judged
//! by its modification time, as stock distcc 3.4 keeps it (`src/backoff.c`,
//! `src/timefile.c`), so both clients honour each other's marks. Stock
//! distcc writes the byte `x` at offset 0 to move the modification time.
//! distcc-rs writes `x` followed by the failure's description, which stock
//! distcc ignores and distcc-rs logs when it skips the host.

use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::hosts::HostSpec;

/// Maximum length, in bytes, of the failure description in a backoff file.
const MAX_REASON_BYTES: usize = 512;

/// A host that is still in its backoff period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackedOff {
    /// Time since the failure was recorded.
    pub elapsed: Duration,
    /// Time until the host is tried again.
    pub remaining: Duration,
    /// The recorded failure, or an empty string when the file contains
    /// none (as when stock distcc wrote it).
    pub reason: String,
}

/// Backoff records in one lock directory.
#[derive(Debug, Clone)]
pub struct Backoff {
    lock_dir: PathBuf,
    period: Duration,
}

impl Backoff {
    /// `period` zero disables backoff: nothing is recorded or checked.
    pub fn new(lock_dir: &Path, period: Duration) -> Backoff {
        Backoff { lock_dir: lock_dir.to_path_buf(), period }
    }

    pub fn is_enabled(&self) -> bool {
        !self.period.is_zero()
    }

    pub fn period(&self) -> Duration {
        self.period
    }

    /// Returns the backoff file of `host`: the slot-0 lock file name with
    /// `backoff` in place of `cpu`.
    pub fn file(&self, host: &HostSpec) -> PathBuf {
        self.lock_dir.join(format!("backoff_{}_0", host.lock_name()))
    }

    /// Returns the backoff state of `host`, or `None` when it may be used.
    pub fn check(&self, host: &HostSpec) -> io::Result<Option<BackedOff>> {
        if !self.is_enabled() {
            return Ok(None);
        }
        let path = self.file(host);
        let modified = match fs::metadata(&path) {
            Ok(meta) => meta.modified()?,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(error),
        };
        let Ok(elapsed) = SystemTime::now().duration_since(modified) else {
            // A time in the future would keep the host out until the clock
            // catches up, possibly for years; such a record is ignored.
            log::debug!("ignoring {}: its modification time is in the future", path.display());
            return Ok(None);
        };
        if elapsed >= self.period {
            return Ok(None);
        }
        Ok(Some(BackedOff { elapsed, remaining: self.period - elapsed, reason: read_reason(&path) }))
    }

    /// Records that `host` failed now for `reason`.
    pub fn mark(&self, host: &HostSpec, reason: &str) -> io::Result<()> {
        if !self.is_enabled() {
            return Ok(());
        }
        let path = self.file(host);
        let mut content = Vec::with_capacity(reason.len() + 2);
        content.push(b'x');
        content.extend_from_slice(truncate_utf8(reason, MAX_REASON_BYTES).as_bytes());
        content.push(b'\n');
        let file = OpenOptions::new().write(true).create(true).truncate(false).mode(0o666).open(&path)?;
        file.write_all_at(&content, 0)?;
        file.set_len(content.len() as u64)?;
        // The write already moves the modification time; setting it makes
        // the record independent of how the file system handles rewrites of
        // identical bytes.
        file.set_modified(SystemTime::now())?;
        Ok(())
    }

    /// Removes the record of `host` after it worked. Stock distcc does the
    /// same, so one success ends the backoff for every client.
    pub fn clear(&self, host: &HostSpec) -> io::Result<()> {
        if !self.is_enabled() {
            return Ok(());
        }
        match fs::remove_file(self.file(host)) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
            _ => Ok(()),
        }
    }
}

/// Reads the failure description after the leading `x`, if any.
fn read_reason(path: &Path) -> String {
    let Ok(bytes) = fs::read(path) else {
        return String::new();
    };
    let text = String::from_utf8_lossy(bytes.strip_prefix(b"x").unwrap_or(&bytes[..]));
    text.trim().chars().take(MAX_REASON_BYTES).collect()
}

fn truncate_utf8(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hosts::parse_host_list;

    fn host(text: &str) -> HostSpec {
        parse_host_list(text, "test").unwrap().hosts.remove(0)
    }

    #[test]
    fn file_names_match_stock() {
        let backoff = Backoff::new(Path::new("/d/lock"), Duration::from_secs(60));
        assert_eq!(backoff.file(&host("127.0.0.1:3632")), PathBuf::from("/d/lock/backoff_tcp_127.0.0.1_3632_0"));
        assert_eq!(backoff.file(&host("box/3")), PathBuf::from("/d/lock/backoff_tcp_box_3632_0"));
        assert_eq!(backoff.file(&host("alice@box")), PathBuf::from("/d/lock/backoff_ssh_box_0"));
    }

    #[test]
    fn mark_check_clear_cycle() {
        let dir = tempfile::tempdir().unwrap();
        let backoff = Backoff::new(dir.path(), Duration::from_secs(60));
        let dead = host("127.0.0.1:9");
        assert_eq!(backoff.check(&dead).unwrap(), None);

        backoff.mark(&dead, "connect to 127.0.0.1:9 failed: connection refused").unwrap();
        let state = backoff.check(&dead).unwrap().expect("backed off");
        assert!(state.remaining > Duration::from_secs(58), "{state:?}");
        assert_eq!(state.reason, "connect to 127.0.0.1:9 failed: connection refused");
        assert_eq!(fs::read(backoff.file(&dead)).unwrap()[0], b'x');

        backoff.clear(&dead).unwrap();
        assert_eq!(backoff.check(&dead).unwrap(), None);
        backoff.clear(&dead).unwrap();
    }

    #[test]
    fn shorter_reason_replaces_longer() {
        let dir = tempfile::tempdir().unwrap();
        let backoff = Backoff::new(dir.path(), Duration::from_secs(60));
        let dead = host("127.0.0.1:9");
        backoff.mark(&dead, "a long first reason").unwrap();
        backoff.mark(&dead, "short").unwrap();
        assert_eq!(backoff.check(&dead).unwrap().unwrap().reason, "short");
    }

    #[test]
    fn stock_record_counts_by_age() {
        let dir = tempfile::tempdir().unwrap();
        let backoff = Backoff::new(dir.path(), Duration::from_secs(60));
        let dead = host("127.0.0.1:9");
        let path = backoff.file(&dead);
        fs::write(&path, b"x").unwrap();
        let state = backoff.check(&dead).unwrap().expect("fresh stock record");
        assert_eq!(state.reason, "");

        let old = SystemTime::now() - Duration::from_secs(61);
        fs::File::options().write(true).open(&path).unwrap().set_modified(old).unwrap();
        assert_eq!(backoff.check(&dead).unwrap(), None);
    }

    #[test]
    fn future_record_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let backoff = Backoff::new(dir.path(), Duration::from_secs(60));
        let dead = host("127.0.0.1:9");
        let path = backoff.file(&dead);
        fs::write(&path, b"x").unwrap();
        let future = SystemTime::now() + Duration::from_secs(3600);
        fs::File::options().write(true).open(&path).unwrap().set_modified(future).unwrap();
        assert_eq!(backoff.check(&dead).unwrap(), None);
    }

    #[test]
    fn zero_period_records_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let backoff = Backoff::new(dir.path(), Duration::ZERO);
        let dead = host("127.0.0.1:9");
        backoff.mark(&dead, "refused").unwrap();
        assert!(!backoff.file(&dead).exists());
        fs::write(backoff.file(&dead), b"x").unwrap();
        assert_eq!(backoff.check(&dead).unwrap(), None);
    }
}
