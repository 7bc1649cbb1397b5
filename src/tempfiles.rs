//! Temporary files of one job.
//!
//! - The preprocessed source lives in a private directory under `$TMPDIR`
//!   (mode 0700, files mode 0600), removed when the job ends or on a signal.
//! - An object received from a server is written to a temporary file in
//!   the output's own directory (mode 0600) and renamed onto the output
//!   path only when it is complete, so a failure leaves nothing new there.

use std::fs::{File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tempfile::{NamedTempFile, TempDir};

use crate::signals::{self, Registration};

/// The private temporary directory of one job.
pub struct PrivateDir {
    // Field order matters: the directory is removed before the signal
    // registration is dropped.
    dir: TempDir,
    _registration: Registration,
}

/// Creates a private directory `distcc-rs-XXXXXX` in `tmpdir` (the value of
/// `$TMPDIR`). The error names `tmpdir` and describes the problem.
pub fn create_private_dir(tmpdir: &Path) -> Result<PrivateDir, String> {
    check_tmpdir(tmpdir)?;
    let dir = tempfile::Builder::new()
        .prefix("distcc-rs-")
        .permissions(Permissions::from_mode(0o700))
        .tempdir_in(tmpdir)
        .map_err(|e| format!("cannot create a temporary directory in TMPDIR '{}': {e}", tmpdir.display()))?;
    let registration = signals::remove_on_signal(dir.path().to_path_buf());
    Ok(PrivateDir { dir, _registration: registration })
}

fn check_tmpdir(tmpdir: &Path) -> Result<(), String> {
    let shown = tmpdir.display();
    let meta = std::fs::metadata(tmpdir).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => format!("TMPDIR '{shown}' does not exist; set TMPDIR to a writable directory"),
        _ => format!("TMPDIR '{shown}' is unusable: {e}"),
    })?;
    if !meta.is_dir() {
        return Err(format!("TMPDIR '{shown}' is not a directory; set TMPDIR to a writable directory"));
    }
    let path = std::ffi::CString::new(tmpdir.as_os_str().as_encoded_bytes())
        .map_err(|_| format!("TMPDIR '{shown}' contains a NUL byte"))?;
    // SAFETY: `path` is a valid NUL-terminated string.
    if unsafe { libc::access(path.as_ptr(), libc::W_OK | libc::X_OK) } != 0 {
        let error = io::Error::last_os_error();
        return Err(format!("TMPDIR '{shown}' is not writable: {error}; set TMPDIR to a writable directory"));
    }
    Ok(())
}

impl PrivateDir {
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Creates a new file `name` in the directory, readable and writable by
    /// the owner only.
    pub fn create_file(&self, name: &str) -> io::Result<(File, PathBuf)> {
        let path = self.dir.path().join(name);
        let file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path)?;
        Ok((file, path))
    }

    /// Keeps the directory and its files after the job (`DISTCC_SAVE_TEMPS=1`).
    pub fn keep(self) -> PathBuf {
        self.dir.keep()
    }
}

/// A temporary file beside an output path, removed unless it is installed.
pub struct OutputTemp {
    file: NamedTempFile,
    _registration: Registration,
}

/// Creates `.distcc-rs-XXXXXX.tmp` in the directory of `output`.
pub fn create_beside(output: &Path) -> io::Result<OutputTemp> {
    let directory = output_directory(output);
    let file = tempfile::Builder::new()
        .prefix(".distcc-rs-")
        .suffix(".tmp")
        .permissions(Permissions::from_mode(0o600))
        .tempfile_in(directory)?;
    let registration = signals::remove_on_signal(file.path().to_path_buf());
    Ok(OutputTemp { file, _registration: registration })
}

/// Returns the directory that `output` is in: its parent, or `.`.
pub fn output_directory(output: &Path) -> &Path {
    match output.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

impl std::fmt::Debug for OutputTemp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputTemp").field("path", &self.file.path()).finish()
    }
}

impl Write for OutputTemp {
    fn write(&mut self, buffer: &[u8]) -> io::Result<usize> {
        self.file.write(buffer)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl OutputTemp {
    pub fn as_file(&self) -> &File {
        self.file.as_file()
    }

    /// Gives the file `mode` and renames it onto `output`. A signal cannot
    /// come between the two: it is handled before or after both.
    pub fn install(self, output: &Path, mode: u32) -> io::Result<()> {
        signals::without_termination(|| {
            std::fs::set_permissions(self.file.path(), Permissions::from_mode(mode))?;
            self.file.persist(output).map_err(|e| e.error)?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn private_dir_and_files_are_owner_only() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = create_private_dir(tmp.path()).unwrap();
        assert_eq!(std::fs::metadata(dir.path()).unwrap().mode() & 0o777, 0o700);
        let (_, path) = dir.create_file("source.i").unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        assert!(dir.create_file("source.i").is_err(), "an existing file is never reused");
        let kept = dir.path().to_path_buf();
        drop(dir);
        assert!(!kept.exists());
    }

    #[test]
    fn unusable_tmpdir_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = tmp.path().join("missing");
        let message = create_private_dir(&missing).err().unwrap();
        assert!(message.contains(&format!("TMPDIR '{}' does not exist", missing.display())), "{message}");

        let file = tmp.path().join("file");
        std::fs::write(&file, b"").unwrap();
        let message = create_private_dir(&file).err().unwrap();
        assert!(message.contains("is not a directory"), "{message}");
    }

    #[test]
    fn output_temp_installs_with_mode() {
        let tmp = tempfile::tempdir().unwrap();
        let output = tmp.path().join("x.o");
        let mut temp = create_beside(&output).unwrap();
        assert_eq!(temp.file.path().parent(), Some(tmp.path()));
        assert_eq!(std::fs::metadata(temp.file.path()).unwrap().mode() & 0o777, 0o600);
        temp.write_all(b"object").unwrap();
        temp.install(&output, 0o644).unwrap();
        assert_eq!(std::fs::read(&output).unwrap(), b"object");
        assert_eq!(std::fs::metadata(&output).unwrap().mode() & 0o777, 0o644);
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1, "no temporary file is left");
    }

    #[test]
    fn output_temp_dropped_leaves_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let output = tmp.path().join("x.o");
        let temp = create_beside(&output).unwrap();
        drop(temp);
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    }
}
