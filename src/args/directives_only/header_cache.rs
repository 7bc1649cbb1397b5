//! The files known to contain none of the predefined macros and pragmas
//! that keep a job local, kept in the state directory so that unchanged
//! headers are not read again for every job.
//!
//! A file is identified by device, inode, size, and modification and
//! status-change times in nanoseconds. Any write changes the status-change
//! time, which no unprivileged program can set back. A file changed less
//! than [`RACY_SECONDS`] before it was checked is not recorded, because a
//! file system with coarse time stamps could give a second change in the
//! same tick the same times.
//!
//! NOTE: the recent-change test compares the file's times with this
//! machine's clock. On a network file system whose clock runs behind by
//! more than [`RACY_SECONDS`], two changes of the same size within one time
//! stamp tick could leave a stale record.
//!
//! The cache file starts with [`HEADER`], which names the macros and
//! pragmas, so a release that searches for others starts afresh. Records of five
//! little-endian u64 follow, sorted, so a lookup is a binary search of the
//! bytes as read. Clients that save at the same time each rename their own
//! complete file into place, so one may lose the other's new records, which
//! only costs a second read of those files later.

use std::fs::Metadata;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The first bytes of the cache file.
pub(super) const HEADER: &[u8] = b"distcc-rs: files without __DATE__ __TIME__ __TIMESTAMP__ __INCLUDE_LEVEL__ __BASE_FILE__ \
    #pragma message redefine_extname push_macro pop_macro poison, format 2\n";

const RECORD_BYTES: usize = 40;

/// A file modified this recently is not recorded.
const RACY_SECONDS: u64 = 2;

/// Records beyond which the cache starts afresh (8 MB): a cache that large
/// mostly contains files that have since changed.
const MAX_RECORDS: usize = 200_000;

/// Device, inode, size, modification and status-change time (ns).
pub type Identity = [u64; 5];

pub struct HeaderCache {
    path: PathBuf,
    /// The records read at start, without the header.
    known: Vec<u8>,
    added: Vec<Identity>,
}

impl HeaderCache {
    /// Reads the cache at `path`. A missing, unreadable or malformed file
    /// gives an empty cache, which is rewritten on [`HeaderCache::save`].
    pub fn load(path: PathBuf) -> HeaderCache {
        // A bounded read: the path might name a device or a huge file.
        let limit = (HEADER.len() + MAX_RECORDS * RECORD_BYTES) as u64 + 1;
        let mut known = Vec::new();
        if let Ok(file) = std::fs::File::open(&path) {
            let _ = std::io::Read::read_to_end(&mut std::io::Read::take(file, limit), &mut known);
        }
        if known.starts_with(HEADER) && (known.len() - HEADER.len()).is_multiple_of(RECORD_BYTES) {
            known.drain(..HEADER.len());
        } else {
            known.clear();
        }
        HeaderCache { path, known, added: Vec::new() }
    }

    /// Returns the identity of an open file, or `None` when it changed too
    /// recently to be recorded.
    pub fn identity(metadata: &Metadata, now: SystemTime) -> Option<Identity> {
        let nanoseconds = |seconds: i64, nanos: i64| -> Option<u64> {
            u64::try_from(seconds).ok()?.checked_mul(1_000_000_000)?.checked_add(u64::try_from(nanos).ok()?)
        };
        let modified = nanoseconds(metadata.mtime(), metadata.mtime_nsec())?;
        let changed = nanoseconds(metadata.ctime(), metadata.ctime_nsec())?;
        let settled = now.checked_sub(Duration::from_secs(RACY_SECONDS))?.duration_since(UNIX_EPOCH).ok()?;
        let settled = u64::try_from(settled.as_nanos()).ok()?;
        if modified.max(changed) > settled {
            return None;
        }
        Some([metadata.dev(), metadata.ino(), metadata.size(), modified, changed])
    }

    pub fn contains(&self, identity: &Identity) -> bool {
        let count = self.known.len() / RECORD_BYTES;
        let record = |index: usize| -> Identity {
            let bytes = &self.known[index * RECORD_BYTES..(index + 1) * RECORD_BYTES];
            std::array::from_fn(|field| u64::from_le_bytes(bytes[field * 8..field * 8 + 8].try_into().unwrap()))
        };
        let (mut low, mut high) = (0, count);
        while low < high {
            let middle = (low + high) / 2;
            match record(middle).cmp(identity) {
                std::cmp::Ordering::Less => low = middle + 1,
                std::cmp::Ordering::Greater => high = middle,
                std::cmp::Ordering::Equal => return true,
            }
        }
        self.added.contains(identity)
    }

    pub fn insert(&mut self, identity: Identity) {
        self.added.push(identity);
    }

    /// Writes the cache back if files were added. Failures are logged and
    /// otherwise ignored: the cache only saves work.
    pub fn save(self) {
        if self.added.is_empty() {
            return;
        }
        if let Err(error) = self.write() {
            log::debug!("cannot save the header check cache {}: {error}", self.path.display());
        }
    }

    fn write(&self) -> std::io::Result<()> {
        let mut records: Vec<Identity> = Vec::with_capacity(self.known.len() / RECORD_BYTES + self.added.len());
        if self.known.len() / RECORD_BYTES + self.added.len() <= MAX_RECORDS {
            records.extend(self.known.chunks_exact(RECORD_BYTES).map(|bytes| {
                std::array::from_fn(|field| u64::from_le_bytes(bytes[field * 8..field * 8 + 8].try_into().unwrap()))
            }));
        }
        records.extend_from_slice(&self.added);
        records.sort_unstable();
        records.dedup();

        let mut bytes = Vec::with_capacity(HEADER.len() + records.len() * RECORD_BYTES);
        bytes.extend_from_slice(HEADER);
        for record in &records {
            for field in record {
                bytes.extend_from_slice(&field.to_le_bytes());
            }
        }
        let dir = self.path.parent().unwrap_or(std::path::Path::new("."));
        let mut file = tempfile::NamedTempFile::new_in(dir)?;
        file.write_all(&bytes)?;
        file.persist(&self.path).map_err(|error| error.error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;

    fn old_file(dir: &std::path::Path, name: &str) -> File {
        let path = dir.join(name);
        std::fs::write(&path, name).unwrap();
        File::open(&path).unwrap()
    }

    #[test]
    fn records_survive_a_save() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache");
        let later = SystemTime::now() + Duration::from_secs(60);
        let a = HeaderCache::identity(&old_file(dir.path(), "a.h").metadata().unwrap(), later).unwrap();
        let b = HeaderCache::identity(&old_file(dir.path(), "b.h").metadata().unwrap(), later).unwrap();

        let mut cache = HeaderCache::load(path.clone());
        assert!(!cache.contains(&a));
        cache.insert(b);
        cache.insert(a);
        assert!(cache.contains(&a));
        cache.save();

        let mut cache = HeaderCache::load(path.clone());
        assert!(cache.contains(&a));
        assert!(cache.contains(&b));
        let c = [a[0], a[1] + 1_000_000, 1, 2, 3];
        assert!(!cache.contains(&c));
        cache.insert(c);
        cache.save();
        let cache = HeaderCache::load(path.clone());
        for identity in [a, b, c] {
            assert!(cache.contains(&identity), "{identity:?}");
        }
        let size = std::fs::metadata(&path).unwrap().len() as usize;
        assert_eq!(size, HEADER.len() + 3 * RECORD_BYTES);
    }

    #[test]
    fn recent_files_are_not_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let metadata = old_file(dir.path(), "new.h").metadata().unwrap();
        assert_eq!(HeaderCache::identity(&metadata, SystemTime::now()), None);
        assert!(HeaderCache::identity(&metadata, SystemTime::now() + Duration::from_secs(RACY_SECONDS + 1)).is_some());
    }

    #[test]
    fn malformed_cache_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache");
        let identity = [1, 2, 3, 4, 5];
        for content in [b"garbage".to_vec(), [HEADER, &[0u8; RECORD_BYTES - 1]].concat()] {
            std::fs::write(&path, &content).unwrap();
            let mut cache = HeaderCache::load(path.clone());
            assert!(!cache.contains(&identity));
            cache.insert(identity);
            cache.save();
            assert!(HeaderCache::load(path.clone()).contains(&identity));
        }
    }

    #[test]
    fn changed_file_has_another_identity() {
        let dir = tempfile::tempdir().unwrap();
        let later = SystemTime::now() + Duration::from_secs(60);
        let before = HeaderCache::identity(&old_file(dir.path(), "x.h").metadata().unwrap(), later).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(dir.path().join("x.h"), "x.h").unwrap();
        let after = HeaderCache::identity(&File::open(dir.path().join("x.h")).unwrap().metadata().unwrap(), later).unwrap();
        assert_ne!(before, after);
    }
}
