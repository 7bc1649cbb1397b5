//! Checks of gcc's `-fdirectives-only` output before it is sent.
//!
//! In that mode the local preprocessor handles includes, conditionals and
//! macro definitions, and the server expands the macros. Two kinds of source
//! then compile differently on the server, and are compiled locally instead:
//!
//! - sources using predefined macros whose value depends on where they are
//!   expanded (the clock, the source file's time stamp, the include depth,
//!   the main file name);
//! - sources with a `#pragma message` or `#pragma redefine_extname`
//!   directive: gcc 12 leaves these out of directives-only output, without a
//!   line marker, so the note, the renaming and the line numbers after them
//!   would be lost. The output keeps no trace of them, so the files named by
//!   its line markers are searched instead.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use memchr::{memchr, memchr_iter, memmem, memrchr};

/// Predefined macros whose value depends on where they are expanded: the
/// clock (`SOURCE_DATE_EPOCH` is not sent), the source file's time stamp,
/// the include depth and the main file name.
const MACROS_EXPANDED_DIFFERENTLY: &[&[u8]] =
    &[b"__DATE__", b"__TIME__", b"__TIMESTAMP__", b"__INCLUDE_LEVEL__", b"__BASE_FILE__"];

/// Pragmas that gcc 12 drops from directives-only output (those it
/// registers for macro expansion when it only preprocesses).
const DROPPED_PRAGMAS: &[&[u8]] = &[b"message", b"redefine_extname"];

/// Returns why the preprocessed `text` must not be compiled on the server,
/// or `None` when it can be. `read` returns the content of a file named in
/// a line marker, or `None` when it cannot be read (it is then skipped: the
/// preprocessor has just read it, so this only happens if it vanished).
///
/// The searches use memchr's SIMD routines. The byte-by-byte loops they
/// replaced cost the client 8 million instructions for one `-O2 -c` of Lua's
/// lapi.c, and the searches cost 1.2 million (callgrind, release build).
pub fn check(text: &[u8], read: impl Fn(&Path) -> Option<Vec<u8>>) -> Option<String> {
    if let Some(name) = find_identifier(text, MACROS_EXPANDED_DIFFERENTLY) {
        return Some(format!("the source uses {name}, which the server would expand to another value"));
    }
    let mut seen: Vec<&[u8]> = Vec::new();
    for name in marker_file_names(text) {
        if seen.contains(&name) {
            continue;
        }
        seen.push(name);
        let path = Path::new(OsStr::from_bytes(name));
        let Some(content) = read(path) else {
            continue;
        };
        if let Some(pragma) = find_pragma(&content, DROPPED_PRAGMAS) {
            return Some(format!(
                "{} contains #pragma {pragma}, which gcc leaves out of directives-only output",
                path.display()
            ));
        }
    }
    None
}

fn is_identifier_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

/// Finds the first whole identifier of `names` in `text`. A mention in a
/// comment or string counts too; that only costs a local compile. Every name
/// starts with `__`, so only the places of `__` are examined.
fn find_identifier(text: &[u8], names: &[&'static [u8]]) -> Option<&'static str> {
    debug_assert!(names.iter().all(|name| name.starts_with(b"__")));
    // Occurrences are not overlapping, which skips no match: a match must
    // follow a byte that is not part of an identifier, so not a `_`.
    for start in memmem::find_iter(text, b"__") {
        if start > 0 && is_identifier_byte(text[start - 1]) {
            continue;
        }
        // Most `__` start other identifiers (__attribute__, __restrict, ...):
        // one byte rules them out before the names are compared.
        let Some(&third) = text.get(start + 2) else {
            continue;
        };
        if !names.iter().any(|name| name[2] == third) {
            continue;
        }
        for name in names {
            let end = start + name.len();
            if text[start..].starts_with(name) && text.get(end).is_none_or(|&b| !is_identifier_byte(b)) {
                return Some(std::str::from_utf8(name).expect("macro names are ASCII"));
            }
        }
    }
    None
}

/// Returns the file names of the line markers (`# 12 "name" flags`) in
/// preprocessed text, unescaped, without gcc's pseudo-files (`<built-in>`,
/// `<command-line>`) and the working-directory marker (`"/dir//"`).
fn marker_file_names(text: &[u8]) -> Vec<&[u8]> {
    let mut names = Vec::new();
    // Line markers start a line with "# ". memchr finds each `#`; a memmem
    // search for "\n# " cost more, because it filters on newlines and spaces.
    let line_starts = memchr_iter(b'#', text)
        .filter(|&hash| (hash == 0 || text[hash - 1] == b'\n') && text.get(hash + 1) == Some(&b' '));
    for line_start in line_starts {
        let line_end = memchr(b'\n', &text[line_start..]).map_or(text.len(), |length| line_start + length);
        let rest = &text[line_start + 2..line_end];
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 {
            continue;
        }
        let Some(quoted) = rest[digits..].strip_prefix(b" \"") else {
            continue;
        };
        let Some(end) = closing_quote(quoted) else {
            continue;
        };
        let name = &quoted[..end];
        if name.starts_with(b"<") || name.ends_with(b"//") || name.contains(&b'\\') {
            // Names with escapes are rare; skipping one only skips its search.
            continue;
        }
        names.push(name);
    }
    names
}

fn closing_quote(text: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// Finds a `#pragma NAME` directive for one of `names` in a source file.
/// Directives in inactive conditional blocks count too; that only costs a
/// local compile. Only the lines that contain "pragma" are examined.
fn find_pragma(content: &[u8], names: &[&'static [u8]]) -> Option<&'static str> {
    let mut searched_to = 0;
    for position in memmem::find_iter(content, b"pragma") {
        if position < searched_to {
            continue;
        }
        let line_start = memrchr(b'\n', &content[..position]).map_or(0, |newline| newline + 1);
        let line_end = memchr(b'\n', &content[position..]).map_or(content.len(), |length| position + length);
        if let Some(name) = pragma_in_line(&content[line_start..line_end], names) {
            return Some(name);
        }
        searched_to = line_end;
    }
    None
}

/// Returns the name of `names` that the line's `#pragma` directive gives.
fn pragma_in_line(line: &[u8], names: &[&'static [u8]]) -> Option<&'static str> {
    let skip_blanks = |text: &[u8], mut i: usize| {
        while i < text.len() && (text[i] == b' ' || text[i] == b'\t') {
            i += 1;
        }
        i
    };
    let i = skip_blanks(line, 0);
    if line.get(i) != Some(&b'#') {
        return None;
    }
    let i = skip_blanks(line, i + 1);
    let after = line[i..].strip_prefix(b"pragma")?;
    let j = skip_blanks(after, 0);
    if j == 0 {
        return None;
    }
    let word = &after[j..];
    names
        .iter()
        .find(|name| word.starts_with(name) && word.get(name.len()).is_none_or(|&b| !is_identifier_byte(b)))
        .map(|name| std::str::from_utf8(name).expect("pragma names are ASCII"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_files(_: &Path) -> Option<Vec<u8>> {
        None
    }

    #[test]
    fn finds_whole_identifiers() {
        assert!(check(b"const char *d = __DATE__;", no_files).unwrap().contains("__DATE__"));
        assert!(check(b"__TIME__", no_files).unwrap().contains("__TIME__"));
        assert!(check(b"x(__INCLUDE_LEVEL__)", no_files).unwrap().contains("__INCLUDE_LEVEL__"));
        assert_eq!(check(b"int __DATE__X; int my__DATE__;", no_files), None);
        assert_eq!(check(b"__FILE__ __LINE__ __COUNTER__", no_files), None);
        assert_eq!(check(b"", no_files), None);
    }

    #[test]
    fn marker_names_skip_pseudo_files() {
        let text = b"# 0 \"a.c\"\n# 1 \"/work//\"\n# 0 \"<built-in>\"\n# 1 \"/usr/include/stdio.h\" 1 3 4\nint x;\n# 5 \"a.c\" 2\n";
        assert_eq!(marker_file_names(text), [&b"a.c"[..], b"/usr/include/stdio.h", b"a.c"]);
    }

    /// Searches line by line, as `find_pragma` did before it used memmem.
    fn pragma_by_lines(content: &[u8], names: &[&'static [u8]]) -> Option<&'static str> {
        content.split(|&b| b == b'\n').find_map(|line| pragma_in_line(line, names))
    }

    #[test]
    fn pragma_search_matches_line_scan() {
        let samples: &[&[u8]] = &[
            b"",
            b"pragma",
            b"#pragma message",
            b"#pragma message(\"x\")\n",
            b"int pragma; #pragma message\n",
            b"// pragma\n\t# \tpragma   redefine_extname a b\r\n",
            b"#pragma messages\n#pragma message\n",
            b"#pragmamessage\n# pragma\n#pragma\tmessage\n",
            b"x pragma pragma\n  #  pragma once pragma message\n#pragma message",
            b"\n\n#pragma GCC system_header\n#pragma redefine_extname\n",
        ];
        for sample in samples {
            assert_eq!(find_pragma(sample, DROPPED_PRAGMAS), pragma_by_lines(sample, DROPPED_PRAGMAS), "{sample:?}");
        }
    }

    #[test]
    fn identifiers_after_underscores_are_not_whole() {
        assert_eq!(check(b"int ___DATE__; int _x__TIME__;", no_files), None);
        assert!(check(b"(__DATE__)", no_files).unwrap().contains("__DATE__"));
        assert!(check(b"a___ __TIMESTAMP__", no_files).unwrap().contains("__TIMESTAMP__"));
    }

    #[test]
    fn marker_names_on_the_first_and_last_lines() {
        assert_eq!(marker_file_names(b"# 1 \"first.h\""), [&b"first.h"[..]]);
        assert_eq!(marker_file_names(b"int x;\n# 7 \"last.h\" 2"), [&b"last.h"[..]]);
        assert!(marker_file_names(b"#1 \"no.h\"\n# x \"no.h\"\n").is_empty());
    }

    #[test]
    fn pragmas_in_named_files_are_found() {
        let text = b"# 0 \"main.c\"\n# 1 \"inc.h\" 1\nint x;\n";
        let read = |path: &Path| match path.to_str() {
            Some("inc.h") => Some(b"int x;\n  #  pragma   message (\"hi\")\n".to_vec()),
            Some("main.c") => Some(b"#include \"inc.h\"\n#pragma once\n".to_vec()),
            _ => None,
        };
        let reason = check(text, read).unwrap();
        assert!(reason.contains("inc.h contains #pragma message"), "{reason}");

        let clean = |_: &Path| Some(b"#pragma once\n#pragma pack(1)\n#pragma messages\n".to_vec());
        assert_eq!(check(text, clean), None);
        let renaming = |_: &Path| Some(b"#pragma redefine_extname old new\n".to_vec());
        assert!(check(text, renaming).unwrap().contains("redefine_extname"));
    }
}
