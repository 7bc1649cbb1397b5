//! How distcc-rs was called, and which real compiler it stands for.
//!
//! Three forms, as with stock distcc:
//! - explicit: `distcc-rs gcc -c x.c`, the first argument names the compiler;
//! - implicit: `distcc-rs -c x.c` or `distcc-rs x.c`, the compiler is `cc`;
//! - masquerade: a link named `gcc` (anything but `distcc-rs` or `distcc`)
//!   that points at this binary; the link's name is the compiler's name.
//!
//! The real compiler is looked up on `PATH`, skipping every entry that
//! resolves to this binary or to a stock `distcc`, so that masquerade
//! directories listed anywhere on `PATH` (even twice) never lead back here.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::args;

/// Which of the three calling forms was used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Explicit,
    Implicit,
    Masquerade,
}

/// A compiler command line to run or distribute.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub mode: Mode,
    /// The compiler as the user named it: `gcc`, `/usr/bin/gcc`, `cc`.
    pub compiler_name: OsString,
    /// The arguments after the compiler name.
    pub args: Vec<OsString>,
}

/// Names under which this binary acts as a wrapper rather than as a compiler.
const WRAPPER_NAMES: &[&str] = &["distcc-rs", "distcc"];

/// Classifies the command line. `argv[0]` decides masquerade mode.
pub fn classify(argv: &[OsString]) -> Result<Invocation> {
    let program = argv.first().map(|a| basename(a)).unwrap_or_default();
    if !WRAPPER_NAMES.iter().any(|name| program == OsStr::new(name)) {
        return Ok(Invocation {
            mode: Mode::Masquerade,
            compiler_name: program,
            args: argv[1..].to_vec(),
        });
    }
    let Some(first) = argv.get(1) else {
        bail!("missing compiler command; usage: distcc-rs COMPILER [ARGS...] (see distcc-rs --help)");
    };
    let first_bytes = first.as_bytes();
    // A response file (`@FILE`) contains compiler arguments, never the compiler.
    let implied = first_bytes.starts_with(b"-")
        || first_bytes.starts_with(b"@")
        || args::is_source_name(first)
        || first_bytes.ends_with(b".o");
    if implied {
        Ok(Invocation {
            mode: Mode::Implicit,
            compiler_name: OsString::from("cc"),
            args: argv[1..].to_vec(),
        })
    } else {
        Ok(Invocation {
            mode: Mode::Explicit,
            compiler_name: first.clone(),
            args: argv[2..].to_vec(),
        })
    }
}

/// Returns the final component of a path, or the whole text.
pub fn basename(path: &OsStr) -> OsString {
    Path::new(path).file_name().map(OsString::from).unwrap_or_else(|| path.to_owned())
}

/// Finds the real compiler for `name`.
///
/// A name with a `/` is used as written. Otherwise `PATH` is searched, and
/// every candidate that resolves to this very binary, or to a program named
/// `distcc` (a stock masquerade link), is skipped.
pub fn resolve_compiler(name: &OsStr, path_var: Option<&OsStr>) -> Result<PathBuf> {
    let own_exe = std::env::current_exe().ok().and_then(|p| p.canonicalize().ok());
    if name.as_bytes().contains(&b'/') {
        let path = PathBuf::from(name);
        if is_wrapper(&path, own_exe.as_deref()) {
            bail!(
                "compiler '{}' is distcc-rs itself; name the real compiler instead",
                path.display()
            );
        }
        return Ok(path);
    }
    let search = path_var.map(OsString::from).unwrap_or_default();
    // The directory only matters for relative PATH entries; a deleted
    // working directory must not stop a compile of absolute paths.
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let candidates = which::which_in_all(name, Some(&search), &cwd)
        .with_context(|| format!("cannot search PATH for compiler '{}'", name.to_string_lossy()))?;
    let mut skipped = Vec::new();
    for candidate in candidates {
        if is_wrapper(&candidate, own_exe.as_deref()) {
            skipped.push(candidate.display().to_string());
            continue;
        }
        return Ok(candidate);
    }
    if skipped.is_empty() {
        bail!("compiler '{}' not found on PATH", name.to_string_lossy());
    }
    bail!(
        "compiler '{}' not found on PATH (skipped {}, which run distcc itself)",
        name.to_string_lossy(),
        skipped.join(", ")
    )
}

fn is_wrapper(candidate: &Path, own_exe: Option<&Path>) -> bool {
    let Ok(target) = candidate.canonicalize() else {
        return false;
    };
    if own_exe.is_some_and(|own| own == target) {
        return true;
    }
    target.file_name().is_some_and(|name| name == "distcc" || name == "distcc-rs")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<OsString> {
        words.iter().map(OsString::from).collect()
    }

    #[test]
    fn explicit_compiler() {
        let inv = classify(&argv(&["/usr/bin/distcc-rs", "gcc", "-c", "x.c"])).unwrap();
        assert_eq!(inv.mode, Mode::Explicit);
        assert_eq!(inv.compiler_name, "gcc");
        assert_eq!(inv.args, argv(&["-c", "x.c"]));
    }

    #[test]
    fn implicit_compiler_for_option_or_source() {
        for first in ["-c", "x.c", "y.cpp", "z.o", "@args.rsp"] {
            let inv = classify(&argv(&["distcc-rs", first])).unwrap();
            assert_eq!(inv.mode, Mode::Implicit, "{first}");
            assert_eq!(inv.compiler_name, "cc");
            assert_eq!(inv.args, argv(&[first]));
        }
    }

    #[test]
    fn installed_as_distcc_is_wrapper() {
        let inv = classify(&argv(&["distcc", "g++", "-c", "x.cc"])).unwrap();
        assert_eq!(inv.mode, Mode::Explicit);
        assert_eq!(inv.compiler_name, "g++");
    }

    #[test]
    fn masquerade_uses_link_name() {
        let inv = classify(&argv(&["/opt/masq/gcc-12", "-c", "x.c"])).unwrap();
        assert_eq!(inv.mode, Mode::Masquerade);
        assert_eq!(inv.compiler_name, "gcc-12");
        assert_eq!(inv.args, argv(&["-c", "x.c"]));
    }

    #[test]
    fn missing_compiler_is_error() {
        let err = classify(&argv(&["distcc-rs"])).unwrap_err();
        assert!(err.to_string().contains("missing compiler"));
    }

    #[test]
    fn resolve_skips_links_to_wrappers() {
        let dir = tempfile::tempdir().unwrap();
        let masq = dir.path().join("masq");
        let real = dir.path().join("real");
        std::fs::create_dir_all(&masq).unwrap();
        std::fs::create_dir_all(&real).unwrap();
        let fake_distcc = dir.path().join("distcc");
        std::fs::write(&fake_distcc, "#!/bin/sh\n").unwrap();
        std::fs::write(real.join("mycc"), "#!/bin/sh\n").unwrap();
        for file in [&fake_distcc, &real.join("mycc")] {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::os::unix::fs::symlink(&fake_distcc, masq.join("mycc")).unwrap();
        let path = std::env::join_paths([&masq, &masq, &real]).unwrap();
        let found = resolve_compiler(OsStr::new("mycc"), Some(&path)).unwrap();
        assert_eq!(found, real.join("mycc"));

        let only_masq = std::env::join_paths([&masq]).unwrap();
        let err = resolve_compiler(OsStr::new("mycc"), Some(&only_masq)).unwrap_err();
        assert!(err.to_string().contains("not found on PATH"), "{err}");
        assert!(err.to_string().contains("skipped"), "{err}");
    }
}
