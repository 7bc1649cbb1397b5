//! `--install-masquerade DIR`: creates a symbolic link to distcc-rs in DIR
//! for each compiler found on `PATH`. With DIR first on `PATH`, a build that
//! runs `gcc` runs distcc-rs, which finds the real `gcc` further down `PATH`
//! (see the invocation module) and distributes the job.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};

use crate::exit;

/// Compiler names that get a link, without version suffix or target prefix.
const COMPILER_NAMES: &[&str] = &["gcc", "g++", "cc", "c++", "clang", "clang++"];

/// Returns true when `name` is a compiler to masquerade: one of
/// [`COMPILER_NAMES`], optionally with a version suffix (`gcc-12`,
/// `clang++-16`, `gcc-12.2`) and optionally with a target prefix of at least
/// two components (`x86_64-linux-gnu-gcc-12`, `arm-none-eabi-g++`).
///
/// A one-component prefix is not taken as a target, because it would also
/// match wrappers such as Debian's `c89-gcc` and `c99-gcc`, which servers
/// rarely have. Such a link can be made by hand.
pub fn is_compiler_name(name: &str) -> bool {
    let without_version = strip_version(name);
    COMPILER_NAMES.iter().any(|compiler| {
        if without_version == *compiler {
            return true;
        }
        match without_version.strip_suffix(compiler).and_then(|rest| rest.strip_suffix('-')) {
            Some(target) => is_target_triple(target),
            None => false,
        }
    })
}

/// Removes a trailing `-N` or `-N.N...` version.
fn strip_version(name: &str) -> &str {
    match name.rsplit_once('-') {
        Some((base, version))
            if !version.is_empty()
                && version.split('.').all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit())) =>
        {
            base
        }
        _ => name,
    }
}

fn is_target_triple(target: &str) -> bool {
    let parts: Vec<&str> = target.split('-').collect();
    parts.len() >= 2
        && parts
            .iter()
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.'))
}

/// Outcome of linking one compiler name.
#[derive(Debug, PartialEq, Eq)]
enum LinkOutcome {
    Created,
    AlreadyPresent,
    /// Something else has that name in DIR; it is left untouched.
    Blocked(String),
}

/// Creates the links and prints one line per compiler on standard output.
/// Returns 0 when every compiler found has a link, [`exit::IO_ERROR`] when
/// DIR cannot be used or some name is taken by another file, and
/// [`exit::COMPILER_MISSING`] when no compiler is on `PATH`.
pub fn install(dir: &Path, path_var: Option<&OsStr>) -> i32 {
    let own_exe = match std::env::current_exe().and_then(|p| p.canonicalize()) {
        Ok(path) => path,
        Err(error) => {
            log::error!("cannot find the distcc-rs binary to link to: {error}");
            return exit::IO_ERROR;
        }
    };
    if let Err(error) = std::fs::create_dir_all(dir) {
        log::error!("cannot create masquerade directory '{}': {error}", dir.display());
        return exit::IO_ERROR;
    }
    let dir = match dir.canonicalize() {
        Ok(dir) => dir,
        Err(error) => {
            log::error!("cannot use masquerade directory '{}': {error}", dir.display());
            return exit::IO_ERROR;
        }
    };

    let compilers = find_compilers(path_var, &dir, &own_exe);
    if compilers.is_empty() {
        log::error!(
            "no compiler found on PATH (looked for {} with version suffixes and target prefixes)",
            COMPILER_NAMES.join(", ")
        );
        return exit::COMPILER_MISSING;
    }

    let mut code = 0;
    for (name, real) in &compilers {
        let link = dir.join(name);
        match create_link(&link, &own_exe) {
            Ok(LinkOutcome::Created) => println!("created {} -> {} (real compiler: {})", link.display(), own_exe.display(), real.display()),
            Ok(LinkOutcome::AlreadyPresent) => println!("kept {} (already a link to distcc-rs)", link.display()),
            Ok(LinkOutcome::Blocked(what)) => {
                log::error!("not replacing {}: it is {what}; remove it or choose another directory", link.display());
                code = exit::IO_ERROR;
            }
            Err(error) => {
                log::error!("cannot create link {}: {error}", link.display());
                code = exit::IO_ERROR;
            }
        }
    }
    println!("To use the links, put {} first on PATH:", dir.display());
    println!("  export PATH=\"{}:$PATH\"", dir.display());
    code
}

/// Returns each compiler name found on `PATH` with the first real program
/// of that name, skipping DIR itself and every program that is distcc-rs
/// or a stock distcc (links in other masquerade directories).
fn find_compilers(path_var: Option<&OsStr>, dir: &Path, own_exe: &Path) -> BTreeMap<String, PathBuf> {
    let mut found = BTreeMap::new();
    let Some(path_var) = path_var else {
        return found;
    };
    for entry in std::env::split_paths(path_var) {
        if entry.as_os_str().is_empty() || entry.canonicalize().is_ok_and(|canonical| canonical == dir) {
            continue;
        }
        let Ok(listing) = std::fs::read_dir(&entry) else {
            continue;
        };
        for item in listing.flatten() {
            let Some(name) = item.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if found.contains_key(&name) || !is_compiler_name(&name) {
                continue;
            }
            let path = item.path();
            if is_executable(&path) && !is_distcc(&path, own_exe) {
                found.insert(name, path);
            }
        }
    }
    found
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

fn is_distcc(path: &Path, own_exe: &Path) -> bool {
    let Ok(target) = path.canonicalize() else {
        return false;
    };
    target == own_exe || target.file_name().is_some_and(|name| name == "distcc" || name == "distcc-rs")
}

/// Creates `link` pointing at `target`, unless it exists. An existing link
/// that already resolves to `target` is kept; anything else is left alone.
fn create_link(link: &Path, target: &Path) -> io::Result<LinkOutcome> {
    match std::fs::symlink_metadata(link) {
        Ok(meta) => {
            if link.canonicalize().is_ok_and(|resolved| resolved == target) {
                return Ok(LinkOutcome::AlreadyPresent);
            }
            let what = if meta.file_type().is_symlink() {
                match std::fs::read_link(link) {
                    Ok(points_to) => format!("a link to {}", points_to.display()),
                    Err(_) => "a symbolic link".to_string(),
                }
            } else if meta.is_dir() {
                "a directory".to_string()
            } else {
                "a file".to_string()
            };
            Ok(LinkOutcome::Blocked(what))
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            std::os::unix::fs::symlink(target, link)?;
            Ok(LinkOutcome::Created)
        }
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiler_names_accepted() {
        for name in [
            "gcc",
            "g++",
            "cc",
            "c++",
            "clang",
            "clang++",
            "gcc-12",
            "g++-12",
            "clang-16",
            "clang++-16",
            "gcc-4.9",
            "x86_64-linux-gnu-gcc",
            "x86_64-linux-gnu-gcc-12",
            "x86_64-linux-gnu-g++-12",
            "arm-none-eabi-gcc",
            "aarch64-linux-gnu-c++",
            "x86_64-pc-linux-gnu-clang++",
        ] {
            assert!(is_compiler_name(name), "{name}");
        }
    }

    #[test]
    fn other_tools_rejected() {
        for name in [
            "gcc-ar",
            "gcc-nm-12",
            "x86_64-linux-gnu-gcc-ar-12",
            "clang-tidy",
            "clang-format-16",
            "c++filt",
            "ccache",
            "distcc",
            "c89-gcc",
            "c99-gcc",
            "mpicc",
            "gcc-",
            "-gcc",
            "gcc-12.",
            "x86_64--gcc",
            "cpp",
        ] {
            assert!(!is_compiler_name(name), "{name}");
        }
    }

    #[test]
    fn existing_file_is_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("distcc-rs");
        std::fs::write(&target, "binary").unwrap();
        let target = target.canonicalize().unwrap();

        let link = dir.path().join("gcc");
        assert_eq!(create_link(&link, &target).unwrap(), LinkOutcome::Created);
        assert_eq!(create_link(&link, &target).unwrap(), LinkOutcome::AlreadyPresent);

        let file = dir.path().join("g++");
        std::fs::write(&file, "a real compiler").unwrap();
        assert_eq!(create_link(&file, &target).unwrap(), LinkOutcome::Blocked("a file".into()));
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "a real compiler");
    }
}
