//! The state directory: `$DISTCC_DIR`, else `$HOME/.distcc`, with the
//! subdirectories `lock` (slot locks, backoff records) and `state` (monitor
//! records) that stock distcc uses too.

use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::config::Config;

/// A usable state directory with its `lock` and `state` subdirectories.
#[derive(Debug, Clone)]
pub struct StateDir {
    pub root: PathBuf,
    pub lock: PathBuf,
    pub state: PathBuf,
}

/// Finds and creates the state directory.
///
/// A `DISTCC_DIR` that cannot be used is an error: the user named it, so
/// another directory would split the slots between clients that use it and
/// clients that do not. When the directory comes from `HOME`, or `HOME` is
/// unset, a private directory in `TMPDIR` is used instead, with a warning
/// when it is created (so once, not for every job).
pub fn open(config: &Config) -> Result<StateDir, String> {
    match &config.distcc_dir {
        Some(dir) if config.distcc_dir_set => {
            prepare(dir).map_err(|reason| format!("cannot use DISTCC_DIR '{}': {reason}", dir.display()))
        }
        Some(dir) => prepare(dir).or_else(|reason| {
            let why = format!("cannot use '{}' ({reason})", dir.display());
            open_private_fallback(&config.tmpdir, &why)
        }),
        None => open_private_fallback(&config.tmpdir, "HOME and DISTCC_DIR are unset"),
    }
}

/// Creates `root` with its parents and the two subdirectories.
fn prepare(root: &Path) -> Result<StateDir, String> {
    if let Ok(meta) = fs::metadata(root)
        && !meta.is_dir()
    {
        return Err("it exists and is not a directory".to_string());
    }
    // Mode 0777 before the umask, as stock distcc creates these directories.
    let builder = {
        let mut builder = DirBuilder::new();
        builder.recursive(true).mode(0o777);
        builder
    };
    let create = |path: &Path| builder.create(path).map_err(|e| describe(path, root, &e));
    create(root)?;
    let dir = StateDir { root: root.to_path_buf(), lock: root.join("lock"), state: root.join("state") };
    create(&dir.lock)?;
    create(&dir.state)?;
    for path in [&dir.lock, &dir.state] {
        if let Err(error) = check_writable(path) {
            return Err(describe(path, root, &error));
        }
    }
    Ok(dir)
}

fn describe(path: &Path, root: &Path, error: &io::Error) -> String {
    if path == root {
        format!("cannot create it: {error}")
    } else {
        format!("cannot create or use '{}': {error}", path.display())
    }
}

/// Checks with `access(2)` that files can be created in `dir`.
fn check_writable(dir: &Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let mut bytes = dir.as_os_str().as_bytes().to_vec();
    bytes.push(0);
    // SAFETY: `bytes` is a NUL-terminated path that outlives the call.
    let result = unsafe { libc::access(bytes.as_ptr().cast(), libc::W_OK | libc::X_OK) };
    if result == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// Uses `TMPDIR/distcc-rs-UID`, a directory only this user can write, so
/// that the jobs of one build still share slots and backoff records.
fn open_private_fallback(tmpdir: &Path, why: &str) -> Result<StateDir, String> {
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    let root = tmpdir.join(format!("distcc-rs-{uid}"));
    let fail = |reason: String| format!("{why}, and the fallback state directory '{}' {reason}", root.display());

    let created = match DirBuilder::new().mode(0o700).create(&root) {
        Ok(()) => true,
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => false,
        Err(error) => return Err(fail(format!("cannot be created: {error}"))),
    };
    // The name is predictable, so another user could have created it first;
    // a directory that is not ours, or that others can write, is refused.
    let meta = fs::symlink_metadata(&root).map_err(|e| fail(format!("cannot be read: {e}")))?;
    if !meta.is_dir() {
        return Err(fail("is not a directory".into()));
    }
    if meta.uid() != uid {
        return Err(fail(format!("belongs to user id {}, not to {uid}", meta.uid())));
    }
    if meta.permissions().mode() & 0o022 != 0 {
        return Err(fail(format!("is writable by other users (mode {:o})", meta.permissions().mode() & 0o777)));
    }
    let dir = prepare(&root).map_err(fail)?;
    if created {
        log::warn!("{why}; using the private state directory {}", root.display());
    } else {
        log::debug!("{why}; using the private state directory {}", root.display());
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    fn config(vars: &[(&str, &Path)]) -> Config {
        let vars: Vec<(String, OsString)> =
            vars.iter().map(|(k, v)| (k.to_string(), v.as_os_str().to_owned())).collect();
        Config::from_lookup(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    #[test]
    fn distcc_dir_created_with_parents() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b/c");
        let state = open(&config(&[("DISTCC_DIR", &dir)])).unwrap();
        assert_eq!(state.root, dir);
        assert!(state.lock.is_dir());
        assert!(state.state.is_dir());
    }

    #[test]
    fn distcc_dir_regular_file_is_error() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("f");
        fs::write(&file, "").unwrap();
        let error = open(&config(&[("DISTCC_DIR", &file), ("TMPDIR", tmp.path())])).unwrap_err();
        assert!(error.contains(&format!("DISTCC_DIR '{}'", file.display())), "{error}");
        assert!(error.contains("not a directory"), "{error}");
        assert!(!error.contains('\n'));
    }

    #[test]
    fn distcc_dir_under_file_is_error() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("f");
        fs::write(&file, "").unwrap();
        let error = open(&config(&[("DISTCC_DIR", &file.join("sub"))])).unwrap_err();
        assert!(error.contains("cannot create it"), "{error}");
    }

    #[test]
    fn home_default_is_dot_distcc() {
        let tmp = tempfile::tempdir().unwrap();
        let state = open(&config(&[("HOME", tmp.path())])).unwrap();
        assert_eq!(state.root, tmp.path().join(".distcc"));
        assert!(state.lock.is_dir());
    }

    #[test]
    fn no_home_uses_private_tmpdir() {
        let tmp = tempfile::tempdir().unwrap();
        let state = open(&config(&[("TMPDIR", tmp.path())])).unwrap();
        assert!(state.root.starts_with(tmp.path()));
        let mode = fs::metadata(&state.root).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        assert!(state.state.is_dir());
        // A second job reuses it.
        let again = open(&config(&[("TMPDIR", tmp.path())])).unwrap();
        assert_eq!(again.root, state.root);
    }

    #[test]
    fn unusable_home_uses_private_tmpdir() {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path().join("home");
        fs::create_dir(&home).unwrap();
        fs::write(home.join(".distcc"), "").unwrap();
        let state = open(&config(&[("HOME", &home), ("TMPDIR", tmp.path())])).unwrap();
        assert!(state.root.starts_with(tmp.path()));
        assert_ne!(state.root, home.join(".distcc"));
    }

    #[test]
    fn shared_fallback_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let uid = unsafe { libc::geteuid() };
        let root = tmp.path().join(format!("distcc-rs-{uid}"));
        fs::create_dir(&root).unwrap();
        fs::set_permissions(&root, fs::Permissions::from_mode(0o777)).unwrap();
        let error = open(&config(&[("TMPDIR", tmp.path())])).unwrap_err();
        assert!(error.contains("writable by other users"), "{error}");
    }
}
