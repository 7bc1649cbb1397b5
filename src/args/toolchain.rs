//! Facts about the compiler and the machine that the analysis needs.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::Family;

/// Returns the compiler family and whether the driver compiles `.c` files
/// as C++. `name` is the compiler as the user named it and `resolved` the
/// program found for it; Debian's `cc` and `c++` are links to gcc or clang,
/// so the resolved file's name is checked too. clang picks C++ mode from the
/// name it is run as (`clang++` links to `clang`), gcc from its own program.
pub fn detect(name: &OsStr, resolved: &Path) -> (Family, bool) {
    let invoked = Path::new(name).file_name().map(OsStr::as_bytes).unwrap_or_default().to_vec();
    let canonical = resolved
        .canonicalize()
        .ok()
        .and_then(|path| path.file_name().map(|n| n.as_bytes().to_vec()))
        .unwrap_or_default();
    let contains = |haystack: &[u8], needle: &[u8]| haystack.windows(needle.len()).any(|w| w == needle);
    let family = if contains(&invoked, b"clang") || contains(&canonical, b"clang") {
        Family::Clang
    } else {
        Family::Gcc
    };
    let cplusplus = contains(&invoked, b"++") || contains(&canonical, b"++");
    (family, cplusplus)
}

/// Returns the working directory as LLVM's `current_path` reports it: `$PWD` when
/// it is absolute and names the same directory as `.` (so a path through a
/// symbolic link is kept), else `getcwd`. gcc's `getpwd` follows the same
/// rule, and gcc applies it itself while preprocessing.
pub fn working_directory() -> OsString {
    let dot = std::fs::metadata(".");
    if let (Some(pwd), Ok(dot)) = (std::env::var_os("PWD"), dot) {
        let same = Path::new(&pwd).is_absolute()
            && std::fs::metadata(&pwd).is_ok_and(|m| m.dev() == dot.dev() && m.ino() == dot.ino());
        if same {
            return pwd;
        }
    }
    std::env::current_dir().map(OsString::from).unwrap_or_else(|_| OsString::from("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn family_from_names() {
        let none = Path::new("/nonexistent/compiler");
        assert_eq!(detect(OsStr::new("gcc"), none), (Family::Gcc, false));
        assert_eq!(detect(OsStr::new("g++-12"), none), (Family::Gcc, true));
        assert_eq!(detect(OsStr::new("/usr/bin/clang++"), none), (Family::Clang, true));
        assert_eq!(detect(OsStr::new("clang-14"), none), (Family::Clang, false));
    }

    #[test]
    fn family_from_link_target() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("clang");
        std::fs::write(&target, "").unwrap();
        let link = dir.path().join("cc");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert_eq!(detect(OsStr::new("cc"), &link), (Family::Clang, false));
    }

    #[test]
    fn working_directory_is_absolute() {
        assert!(Path::new(&working_directory()).is_absolute());
    }
}
