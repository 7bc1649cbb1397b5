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
//!   would be lost. The output keeps no trace of them, so the files it
//!   came from are searched instead.
//!
//! The files are the main file, those included before it (from the line
//! markers at the start of the output) and the headers that gcc lists with
//! `-H`. Searching them rather than the 350 KB of output that one Lua source
//! gives cut the client's work from 1.2 million instructions per job to
//! about 0.2 million, and [`header_cache`] spares reading unchanged headers
//! again (callgrind, release build, `gcc -O2 -c lapi.c`). Without a list,
//! when the user passes `-H`, the whole output is searched.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::ops::ControlFlow;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use memchr::{memchr, memchr3, memmem, memrchr};

mod candidates;
mod header_cache;

use header_cache::HeaderCache;

/// Predefined macros whose value depends on where they are expanded: the
/// clock (`SOURCE_DATE_EPOCH` is not sent), the source file's time stamp,
/// the include depth and the main file name.
const MACROS_EXPANDED_DIFFERENTLY: &[&[u8]] =
    &[b"__DATE__", b"__TIME__", b"__TIMESTAMP__", b"__INCLUDE_LEVEL__", b"__BASE_FILE__"];

/// Pragmas that gcc 12 drops from directives-only output although the
/// compiler proper needs them. It registers `message` and `redefine_extname`
/// for macro expansion when it only preprocesses. The server must also see
/// `push_macro`/`pop_macro` and `GCC poison` to expand macros and reject
/// poisoned names as gcc would here.
const DROPPED_PRAGMAS: &[&[u8]] = &[b"message", b"redefine_extname", b"push_macro", b"pop_macro", b"poison"];

/// Bytes read at a time. Files are read in pieces that end at a line end,
/// so the client's memory does not grow with the preprocessed text.
const CHUNK_BYTES: usize = 32 * 1024;

/// Returns why the preprocessed file at `path` must not be compiled on the
/// server, or `None` when it can be.
///
/// `listed_headers` are the headers the preprocessor listed with `-H`
/// ([`parse_header_list`]). With them, only the start of the output is
/// searched: gcc's predefined macros, the command line's and the files
/// included before the main file. The main file and the listed headers are
/// then searched as files, and `cache`, the file that records those known
/// to be clean, spares reading them again. Without a list, the whole output
/// is searched for macros and line markers.
///
/// A file that cannot be read again, such as a FIFO or a file removed since
/// the preprocessor read it, keeps the job local.
pub fn check_file(path: &Path, listed_headers: Option<&[Vec<u8>]>, cache: Option<PathBuf>) -> io::Result<Option<String>> {
    let mut reader = LineChunks::new();
    let mut output = OutputScan { stop_at_main_file: listed_headers.is_some(), ..OutputScan::default() };
    reader.for_each(File::open(path)?, |chunk| output.scan(chunk))?;
    if let Some(name) = output.macro_found {
        return Ok(Some(macro_reason(name)));
    }

    let mut files: Vec<&[u8]> = output.entered_files.iter().map(Vec::as_slice).collect();
    files.extend(listed_headers.unwrap_or_default().iter().map(Vec::as_slice));
    // -H lists a header without include guards each time it is read.
    files.sort_unstable();
    files.dedup();

    let mut cache = cache.map(HeaderCache::load);
    let now = SystemTime::now();
    let mut found = None;
    for name in files {
        let path = Path::new(OsStr::from_bytes(name));
        // Without O_NONBLOCK, opening a FIFO that the preprocessor has
        // already drained would wait for a writer forever.
        let opened = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path);
        let (file, metadata) = match opened.and_then(|file| file.metadata().map(|metadata| (file, metadata))) {
            Ok((file, metadata)) if metadata.is_file() => (file, metadata),
            Ok(_) => {
                found = Some(format!("{} is not a regular file, so it cannot be read again to check it", path.display()));
                break;
            }
            Err(error) => {
                found = Some(unreadable_reason(path, &error));
                break;
            }
        };
        // The identity comes from the open file, so it is the file read.
        let identity = cache.as_ref().and_then(|_| HeaderCache::identity(&metadata, now));
        if let (Some(cache), Some(identity)) = (&cache, &identity)
            && cache.contains(identity)
        {
            continue;
        }
        match reader.for_each(file, find_in_source) {
            Ok(Some(reason)) => {
                found = Some(reason.describe(path));
                break;
            }
            Ok(None) => {
                if let (Some(cache), Some(identity)) = (&mut cache, identity) {
                    cache.insert(identity);
                }
            }
            Err(error) => {
                found = Some(unreadable_reason(path, &error));
                break;
            }
        }
    }
    if let Some(cache) = cache {
        cache.save();
    }
    Ok(found)
}

/// Returns the reason for a macro found in the preprocessed text itself.
fn macro_reason(name: &str) -> String {
    format!("the source uses {name}, which the server would expand to another value")
}

fn unreadable_reason(path: &Path, error: &io::Error) -> String {
    format!("cannot read {} to check it: {error}", path.display())
}

/// Returns the headers that gcc's `-H` option listed on standard error, or
/// `None` when `stderr` contains anything else, such as a diagnostic.
///
/// Each header is a line of dots (the include depth), a space and its name.
/// gcc may end with a heading such as "Multiple include guards may be
/// useful for:" (translated in other locales) and one file name per line;
/// those files are listed above or were included before the main file, so
/// only their being files is checked.
pub fn parse_header_list(stderr: &[u8]) -> Option<Vec<Vec<u8>>> {
    let text = stderr.strip_suffix(b"\n").unwrap_or(stderr);
    if text.is_empty() {
        return Some(Vec::new());
    }
    let mut headers = Vec::new();
    let mut lines = text.split(|&b| b == b'\n');
    let mut heading = false;
    for line in lines.by_ref() {
        let dots = line.iter().take_while(|&&b| b == b'.').count();
        if dots == 0 {
            heading = line.ends_with(b":");
            if !heading {
                return None;
            }
            break;
        }
        match line[dots..].strip_prefix(b" ") {
            Some(name) if !name.is_empty() => headers.push(name.to_vec()),
            _ => return None,
        }
    }
    if heading {
        let mut names = 0;
        for name in lines {
            let is_file = std::fs::metadata(Path::new(OsStr::from_bytes(name))).is_ok_and(|meta| meta.is_file());
            if !is_file {
                return None;
            }
            names += 1;
        }
        if names == 0 {
            return None;
        }
    }
    Some(headers)
}

/// The reason a file keeps a job from a directives-only compile on the server.
enum Finding {
    Macro(&'static str),
    Pragma(&'static str),
}

impl Finding {
    fn describe(&self, path: &Path) -> String {
        match self {
            Finding::Macro(name) => {
                format!("{} uses {name}, which the server would expand to another value", path.display())
            }
            Finding::Pragma(name) => {
                format!("{} contains #pragma {name}, which gcc leaves out of directives-only output", path.display())
            }
        }
    }
}

/// Searches a piece of a source file for the macros and pragmas. A mention
/// in a comment or an inactive conditional block counts too; that only
/// costs a local compile.
///
/// NOTE: a name assembled by token pasting, such as `CAT(__BASE_, FILE__)`,
/// is not found: the text never spells it, and only the expansion on the
/// server would.
fn find_in_source(text: &[u8]) -> ControlFlow<Finding> {
    // A backslash-newline may split a macro name; the preprocessor joins it.
    let spliced = splice_lines(text);
    let text: &[u8] = &spliced;
    let mut found = None;
    let _ = candidates::for_each(text, |position| {
        if text[position] != b'_' {
            return ControlFlow::Continue(());
        }
        match identifier_at(text, position, MACROS_EXPANDED_DIFFERENTLY) {
            Some(name) => {
                found = Some(Finding::Macro(name));
                ControlFlow::Break(())
            }
            None => ControlFlow::Continue(()),
        }
    });
    if let Some(finding) = found {
        return ControlFlow::Break(finding);
    }
    match find_pragma(text, DROPPED_PRAGMAS) {
        Some(pragma) => ControlFlow::Break(Finding::Pragma(pragma)),
        None => ControlFlow::Continue(()),
    }
}

/// Returns what [`check_file`] returns for the preprocessed `text` without
/// a header list, with `read` giving the content of a file.
#[cfg(test)]
fn check(text: &[u8], read: impl Fn(&Path) -> Option<Vec<u8>>) -> Option<String> {
    let mut output = OutputScan::default();
    let _ = output.scan(text);
    if let Some(name) = output.macro_found {
        return Some(macro_reason(name));
    }
    output.entered_files.iter().find_map(|name| {
        let path = Path::new(OsStr::from_bytes(name));
        find_in_source(&read(path)?).break_value().map(|finding| finding.describe(path))
    })
}

/// Reads a file in pieces that each end at a line end (the last one at the
/// end of the file), into one buffer that is reused from file to file.
struct LineChunks {
    buffer: Vec<u8>,
}

impl LineChunks {
    fn new() -> LineChunks {
        LineChunks { buffer: Vec::with_capacity(CHUNK_BYTES) }
    }

    /// Calls `visit` with each piece of `file` until it breaks, and returns
    /// the value it broke with.
    fn for_each<T>(&mut self, mut file: File, mut visit: impl FnMut(&[u8]) -> ControlFlow<T>) -> io::Result<Option<T>> {
        self.buffer.clear();
        loop {
            if self.buffer.len() == self.buffer.capacity() {
                // A line longer than the buffer: make room for more of it.
                self.buffer.reserve(self.buffer.len());
            }
            // read_to_end fills the spare capacity without zeroing it first.
            let read_from = self.buffer.len();
            let room = self.buffer.capacity() - read_from;
            (&mut file).take(room as u64).read_to_end(&mut self.buffer)?;
            if self.buffer.len() == read_from {
                return Ok(match read_from {
                    0 => None,
                    _ => visit(&self.buffer).break_value(),
                });
            }
            // A piece ends at a newline that ends a logical line, so that
            // no line joined by a backslash-newline is split.
            let mut cut = memrchr(b'\n', &self.buffer);
            while let Some(newline) = cut.filter(|&newline| ends_with_backslash(&self.buffer[..newline])) {
                cut = memrchr(b'\n', &self.buffer[..newline]);
            }
            if let Some(newline) = cut {
                let end = newline + 1;
                if let ControlFlow::Break(value) = visit(&self.buffer[..end]) {
                    return Ok(Some(value));
                }
                self.buffer.drain(..end);
            }
        }
    }
}

/// The findings of one pass over directives-only output: the first
/// predefined macro of [`MACROS_EXPANDED_DIFFERENTLY`], and the files it
/// includes.
#[derive(Default)]
struct OutputScan {
    /// Stop where the main file starts, after the predefined macros, the
    /// command line's and the files included before it.
    stop_at_main_file: bool,
    macro_found: Option<&'static str>,
    /// The main file and every file the preprocessor entered (line markers
    /// with flag 1), each once, unescaped.
    entered_files: Vec<Vec<u8>>,
    /// The main file's name as the first line marker writes it.
    main_file: Option<Vec<u8>>,
    reached_main_file: bool,
    /// The file name of the last line marker, as written.
    last_marker_name: Vec<u8>,
    /// Whether a `<command-line>` marker was seen, and the include depth
    /// since the last one.
    seen_command_line: bool,
    depth: usize,
}

impl OutputScan {
    /// Scans `text`, which starts at a line start and ends at a line end.
    /// Breaks at the first macro found, or where the main file starts when
    /// asked to stop there.
    fn scan(&mut self, text: &[u8]) -> ControlFlow<()> {
        candidates::for_each(text, |position| {
            if text[position] == b'#' {
                self.note_marker(&text[position..]);
                return match self.reached_main_file && self.stop_at_main_file {
                    true => ControlFlow::Break(()),
                    false => ControlFlow::Continue(()),
                };
            }
            match identifier_at(text, position, MACROS_EXPANDED_DIFFERENTLY) {
                Some(name) => {
                    self.macro_found = Some(name);
                    ControlFlow::Break(())
                }
                None => ControlFlow::Continue(()),
            }
        })
    }

    /// Records the file of a line marker (`# 12 "name" flags`) at the start
    /// of `line` if it is the first marker, which names the main file, or
    /// one with flag 1, entering a file. Other markers return to a file or
    /// renumber lines (`#line`): the text under them comes from files that
    /// were entered. gcc's pseudo-files (`<built-in>`, `<command-line>`) and
    /// the working-directory marker (`"/dir//"`) are left out.
    fn note_marker(&mut self, line: &[u8]) {
        let Some(rest) = line.strip_prefix(b"# ") else {
            return;
        };
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 {
            return;
        }
        let Some(quoted) = rest[digits..].strip_prefix(b" \"") else {
            return;
        };
        // Runs of markers name the same file, such as one "<built-in>"
        // marker per predefined macro: comparing with the last name saves
        // searching for the closing quote.
        let end = if quoted.starts_with(&self.last_marker_name) && quoted.get(self.last_marker_name.len()) == Some(&b'"') {
            self.last_marker_name.len()
        } else {
            let Some(end) = closing_quote(quoted) else {
                return;
            };
            self.last_marker_name.clear();
            self.last_marker_name.extend_from_slice(&quoted[..end]);
            end
        };
        let flags = &quoted[end + 1..];
        let has_flag = |flag: u8| flags.get(1) == Some(&flag) && flags.get(2).is_none_or(|&b| matches!(b, b' ' | b'\n' | b'\r'));
        let entering = flags.first() == Some(&b' ') && has_flag(b'1');
        let returning = flags.first() == Some(&b' ') && has_flag(b'2');
        let raw = &quoted[..end];
        // The main file starts where a marker names it at the include depth
        // of the command line, not inside a file given to -include that
        // uses #line to name it.
        if entering {
            self.depth += 1;
        } else if returning {
            self.depth = self.depth.saturating_sub(1);
        }
        if raw == b"<command-line>" {
            self.seen_command_line = true;
            self.depth = 0;
        }
        let first = match &self.main_file {
            None => {
                self.main_file = Some(raw.to_vec());
                true
            }
            Some(main_file) => {
                self.reached_main_file |= self.seen_command_line && self.depth == 0 && main_file == raw;
                false
            }
        };
        if !(first || entering) {
            return;
        }
        if raw.starts_with(b"<") || raw.ends_with(b"//") {
            return;
        }
        let known = |name: &[u8]| self.entered_files.iter().any(|entered| entered == name);
        if raw.contains(&b'\\') {
            let name = unescape(raw);
            if !known(&name) {
                self.entered_files.push(name);
            }
        } else if !known(raw) {
            self.entered_files.push(raw.to_vec());
        }
    }
}

fn is_identifier_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

/// Returns the name of `names` that occurs as a whole identifier at
/// `start` in `text`. A mention in a comment or string counts too; that
/// only costs a local compile. Every name starts with `__`.
fn identifier_at(text: &[u8], start: usize, names: &[&'static [u8]]) -> Option<&'static str> {
    debug_assert!(names.iter().all(|name| name.starts_with(b"__")));
    if start > 0 && is_identifier_byte(text[start - 1]) {
        return None;
    }
    // Most `__` start other identifiers (__attribute__, __restrict, ...):
    // one byte rules them out before the names are compared.
    let third = *text.get(start + 2)?;
    if !names.iter().any(|name| name[2] == third) {
        return None;
    }
    names
        .iter()
        .find(|name| {
            let end = start + name.len();
            text[start..].starts_with(name) && text.get(end).is_none_or(|&b| !is_identifier_byte(b))
        })
        .map(|name| std::str::from_utf8(name).expect("macro names are ASCII"))
}

/// Returns the position of the quote that closes a marker's file name, which
/// must end on the same line. A `\\` escapes the byte after it.
fn closing_quote(text: &[u8]) -> Option<usize> {
    let mut i = 0;
    loop {
        i += memchr3(b'"', b'\\', b'\n', &text[i..])?;
        match text[i] {
            b'"' => return Some(i),
            b'\n' => return None,
            _ => i += 2,
        }
        if i >= text.len() {
            return None;
        }
    }
}

/// Undoes the escapes gcc writes in a marker's file name: `\\`, `\"`, the
/// C escapes of control characters such as `\n`, and three octal digits.
fn unescape(raw: &[u8]) -> Vec<u8> {
    let mut name = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let octal = raw.get(i + 1..i + 4).filter(|digits| digits.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (raw[i], octal) {
            (b'\\', Some(digits)) => {
                name.push(digits.iter().fold(0u8, |value, digit| value.wrapping_mul(8) + (digit - b'0')));
                i += 4;
            }
            (b'\\', None) if i + 1 < raw.len() => {
                name.push(match raw[i + 1] {
                    b'n' => b'\n',
                    b't' => b'\t',
                    b'r' => b'\r',
                    b'f' => 0x0c,
                    b'v' => 0x0b,
                    b'a' => 0x07,
                    b'b' => 0x08,
                    other => other,
                });
                i += 2;
            }
            (byte, _) => {
                name.push(byte);
                i += 1;
            }
        }
    }
    name
}

/// Finds a pragma named in `names` in source text whose backslash-newlines
/// are already removed ([`splice_lines`]). The search is deliberately loose,
/// so that no spelling gcc accepts slips through. A line counts when it
/// contains the word `pragma` and, after it, one of `names` as a whole word,
/// whatever comments, blanks or other words stand between them and whether
/// or not the line is a directive. A directive in an inactive conditional
/// block counts too. A false match only costs a local compile.
fn find_pragma(content: &[u8], names: &[&'static [u8]]) -> Option<&'static str> {
    let mut searched_to = 0;
    for position in memmem::find_iter(content, b"pragma") {
        if position < searched_to {
            continue;
        }
        let line_start = memrchr(b'\n', &content[..position]).map_or(0, |newline| newline + 1);
        let line_end = memchr(b'\n', &content[position..]).map_or(content.len(), |length| position + length);
        searched_to = line_end;
        if let Some(name) = name_after_pragma(&content[line_start..line_end], names) {
            return Some(name);
        }
    }
    None
}

/// True when `text` ends with a backslash, before an optional carriage return.
fn ends_with_backslash(text: &[u8]) -> bool {
    text.strip_suffix(b"\r").unwrap_or(text).ends_with(b"\\")
}

/// Removes the backslash-newlines of `text`, as the preprocessor does
/// before it reads tokens.
fn splice_lines(text: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if memmem::find(text, b"\\\n").is_none() && memmem::find(text, b"\\\r\n").is_none() {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut spliced = Vec::with_capacity(text.len());
    let mut rest = text;
    while let Some(newline) = memchr(b'\n', rest) {
        let line = &rest[..newline];
        if ends_with_backslash(line) {
            let kept = line.strip_suffix(b"\r").unwrap_or(line);
            spliced.extend_from_slice(&kept[..kept.len() - 1]);
        } else {
            spliced.extend_from_slice(&rest[..=newline]);
        }
        rest = &rest[newline + 1..];
    }
    spliced.extend_from_slice(rest);
    std::borrow::Cow::Owned(spliced)
}

/// Returns the first of `names` that follows the word `pragma` in `line`,
/// both as whole words.
fn name_after_pragma(line: &[u8], names: &[&'static [u8]]) -> Option<&'static str> {
    let whole_word_at = |text: &[u8], at: usize, word: &[u8]| {
        text[at..].starts_with(word)
            && (at == 0 || !is_identifier_byte(text[at - 1]))
            && text.get(at + word.len()).is_none_or(|&b| !is_identifier_byte(b))
    };
    let pragma = memmem::find_iter(line, b"pragma").find(|&at| whole_word_at(line, at, b"pragma"))?;
    let after = pragma + b"pragma".len();
    for at in after..line.len() {
        if let Some(name) = names.iter().find(|name| whole_word_at(line, at, name)) {
            return Some(std::str::from_utf8(name).expect("pragma names are ASCII"));
        }
    }
    None
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

    fn entered_files(text: &[u8]) -> Vec<Vec<u8>> {
        let mut output = OutputScan::default();
        let _ = output.scan(text);
        output.entered_files
    }

    #[test]
    fn entered_files_skip_pseudo_files() {
        let text = b"# 0 \"a.c\"\n# 1 \"/work//\" 1\n# 0 \"<built-in>\" 1\n# 1 \"/usr/include/stdio.h\" 1 3 4\nint x;\n# 5 \"a.c\" 2\n";
        assert_eq!(entered_files(text), [&b"a.c"[..], b"/usr/include/stdio.h"]);
    }

    #[test]
    fn entered_files_need_flag_one() {
        let text = b"# 0 \"main.c\"\n# 1 \"a.h\" 1\n# 3 \"main.c\" 2\n# 10 \"gen.y\"\n# 1 \"a.h\" 1\n# 1 \"b.h\" 12\n# 1 \"c.h\" 1\n";
        assert_eq!(entered_files(text), [&b"main.c"[..], b"a.h", b"c.h"]);
    }

    #[test]
    fn entered_files_are_unescaped() {
        let text = b"# 0 \"m.c\"\n# 1 \"dir\\\\sub/q\\\"h\\\"\\101.h\" 1\n";
        assert_eq!(entered_files(text), [&b"m.c"[..], b"dir\\sub/q\"h\"A.h"]);
        // A quote that does not close on the marker's line is no name.
        assert_eq!(entered_files(b"# 0 \"m.c\"\n# 1 \"open\n\" 1\n"), [&b"m.c"[..]]);
    }

    #[test]
    fn pragma_search_finds_every_spelling() {
        let found: &[(&[u8], &str)] = &[
            (b"#pragma message", "message"),
            (b"#pragma message(\"x\")\n", "message"),
            (b"// pragma\n\t# \tpragma   redefine_extname a b\r\n", "redefine_extname"),
            (b"#pragma messages\n#pragma message\n", "message"),
            (b"#/**/pragma message\n", "message"),
            (b"#pragma/**/message(\"x\")\n", "message"),
            (b"/* x */ #pragma message\n", "message"),
            (b"#pragma \\\nmessage(\"x\")\n", "message"),
            (b"#pragma \\\r\nredefine_extname a b\r\n", "redefine_extname"),
            (b"#\x0cpragma\x0bmessage\n", "message"),
            (b"#pragma push_macro(\"X\")\n", "push_macro"),
            (b"#pragma pop_macro(\"X\")\n", "pop_macro"),
            (b"#pragma GCC poison bad\n", "poison"),
            (b"int x;\n#if 0\n#pragma message \"off\"\n#endif\n", "message"),
        ];
        let search = |sample: &[u8]| find_pragma(&splice_lines(sample), DROPPED_PRAGMAS);
        for (sample, name) in found {
            assert_eq!(search(sample), Some(*name), "{}", String::from_utf8_lossy(sample));
        }
        let clean: &[&[u8]] = &[
            b"",
            b"pragma",
            b"#pragmamessage\n# pragma\n",
            b"#pragma once\n#pragma pack(1)\n#pragma messages\n",
            b"#pragma GCC diagnostic ignored \"-Wmessage\"\n",
            b"message pragma\n_Pragma(\"once\")\n",
            b"#pragma GCC push_options\n#pragma GCC pop_options\n",
        ];
        for sample in clean {
            assert_eq!(search(sample), None, "{}", String::from_utf8_lossy(sample));
        }
    }

    #[test]
    fn split_macro_names_are_found() {
        let source = b"const char *f = __BASE_\\\nFILE__;\n";
        assert!(matches!(find_in_source(source), ControlFlow::Break(Finding::Macro("__BASE_FILE__"))));
        let crlf = b"const char *f = __BASE_\\\r\nFILE__;\r\n";
        assert!(matches!(find_in_source(crlf), ControlFlow::Break(Finding::Macro("__BASE_FILE__"))));
        let clean = b"#define A \\\n  1\nint a = A;\n";
        assert!(matches!(find_in_source(clean), ControlFlow::Continue(())));
    }

    #[test]
    fn pieces_keep_joined_lines_whole() {
        let dir = tempfile::tempdir().unwrap();
        // A logical line that crosses the end of the first piece.
        let mut text = b"int x;\n".repeat(CHUNK_BYTES / 7 - 1);
        text.extend_from_slice(b"#pragma \\\n");
        text.extend_from_slice(&b" \\\n".repeat(40));
        text.extend_from_slice(b"message(\"x\")\n");
        let path = write_file(dir.path(), "joined.h", &text);
        let mut reader = LineChunks::new();
        let found = reader.for_each(File::open(&path).unwrap(), find_in_source).unwrap();
        assert!(matches!(found, Some(Finding::Pragma("message"))));
    }

    #[test]
    fn identifiers_after_underscores_are_not_whole() {
        assert_eq!(check(b"int ___DATE__; int _x__TIME__;", no_files), None);
        assert!(check(b"(__DATE__)", no_files).unwrap().contains("__DATE__"));
        assert!(check(b"a___ __TIMESTAMP__", no_files).unwrap().contains("__TIMESTAMP__"));
    }

    #[test]
    fn marker_names_on_the_first_and_last_lines() {
        assert_eq!(entered_files(b"# 1 \"first.h\""), [&b"first.h"[..]]);
        assert_eq!(entered_files(b"int x;\n# 0 \"m.c\"\n# 7 \"last.h\" 1"), [&b"m.c"[..], b"last.h"]);
        assert!(entered_files(b"#1 \"no.h\"\n# x \"no.h\"\n").is_empty());
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

    fn write_file(dir: &Path, name: &str, content: &[u8]) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap();
        path
    }

    #[test]
    fn file_check_reads_in_line_pieces() {
        let dir = tempfile::tempdir().unwrap();
        let filler = b"int x;\n".repeat(CHUNK_BYTES / 7 + 3);

        let mut late_macro = filler.clone();
        late_macro.extend_from_slice(b"const char *d = __DATE__;\n");
        let path = write_file(dir.path(), "late.i", &late_macro);
        assert!(check_file(&path, None, None).unwrap().unwrap().contains("__DATE__"));

        // One line longer than the buffer, the macro at its end.
        let mut long_line = vec![b'x'; 3 * CHUNK_BYTES];
        long_line.extend_from_slice(b" __TIME__");
        let path = write_file(dir.path(), "long.i", &long_line);
        assert!(check_file(&path, None, None).unwrap().unwrap().contains("__TIME__"));

        let header = write_file(dir.path(), "note.h", b"#pragma message \"hi\"\n");
        let mut late_marker = b"# 0 \"main.c\"\n".to_vec();
        late_marker.extend_from_slice(&filler);
        late_marker.extend_from_slice(format!("# 1 \"{}\" 1\nint y;\n", header.display()).as_bytes());
        let path = write_file(dir.path(), "marker.i", &late_marker);
        let reason = check_file(&path, None, None).unwrap().unwrap();
        assert!(reason.contains("note.h contains #pragma message"), "{reason}");

        let path = write_file(dir.path(), "clean.i", &filler);
        assert_eq!(check_file(&path, None, None).unwrap(), None);
        assert!(check_file(&dir.path().join("missing.i"), None, None).is_err());
    }

    #[test]
    fn header_list_from_gcc() {
        let dir = tempfile::tempdir().unwrap();
        let guarded = write_file(dir.path(), "g.h", b"");
        let list = format!(". a.h\n.. /usr/include/b.h\n. a.h\nMultiple include guards may be useful for:\n{}\n", guarded.display());
        let headers = parse_header_list(list.as_bytes()).unwrap();
        assert_eq!(headers, [&b"a.h"[..], b"/usr/include/b.h", b"a.h"]);
        assert_eq!(parse_header_list(b""), Some(Vec::new()));
        assert_eq!(parse_header_list(b". sp ace.h").unwrap(), [&b"sp ace.h"[..]]);
    }

    #[test]
    fn header_list_rejects_diagnostics() {
        let rejected: &[&[u8]] = &[
            b"a.c:1:2: warning: #warning x\n",
            b". a.h\nIn file included from a.c:1:\nb.h:1:2: warning: #warning y\n",
            b"..\n",
            b".x a.h\n",
            b"...! pch.h.gch\n",
            b". a.h\nguards:\n",
            b". a.h\nguards:\n/no/such/file.h\n",
        ];
        for stderr in rejected {
            assert_eq!(parse_header_list(stderr), None, "{}", String::from_utf8_lossy(stderr));
        }
    }

    #[test]
    fn listed_headers_are_searched_as_files() {
        let dir = tempfile::tempdir().unwrap();
        let main = write_file(dir.path(), "main.c", b"#include \"x.h\"\nint m;\n");
        let clean = write_file(dir.path(), "clean.h", b"#pragma once\n#define X 1\n");
        let stamp = write_file(dir.path(), "stamp.h", b"#define STAMP __TIME__\n");
        let note = write_file(dir.path(), "note.h", b"  #pragma message (\"x\")\n");
        let pre = write_file(dir.path(), "pre.h", b"int depth = __INCLUDE_LEVEL__;\n");
        let main_marker = format!("# 0 \"{0}\"\n# 0 \"<built-in>\"\n#define __STDC__ 1\n# 0 \"<command-line>\"\n", main.display());
        let output = |prefix: &str, rest: &str| {
            let text = format!("{main_marker}{prefix}# 0 \"<command-line>\" 2\n# 1 \"{}\"\n{rest}", main.display());
            write_file(dir.path(), "out.i", text.as_bytes())
        };
        let name = |path: &std::path::PathBuf| path.display().to_string().into_bytes();

        let path = output("", "int m;\n");
        assert_eq!(check_file(&path, Some(&[name(&clean)]), None).unwrap(), None);
        let reason = check_file(&path, Some(&[name(&clean), name(&stamp)]), None).unwrap().unwrap();
        assert!(reason.contains("stamp.h uses __TIME__"), "{reason}");
        let reason = check_file(&path, Some(&[name(&note)]), None).unwrap().unwrap();
        assert!(reason.contains("note.h contains #pragma message"), "{reason}");

        // Before the main file: a -D value and a file from -include.
        let path = output("#define WHEN __DATE__\n", "int m;\n");
        assert!(check_file(&path, Some(&[]), None).unwrap().unwrap().contains("__DATE__"));
        let path = output(&format!("# 1 \"{}\" 1\nint depth = 0;\n", pre.display()), "int m;\n");
        let reason = check_file(&path, Some(&[]), None).unwrap().unwrap();
        assert!(reason.contains("pre.h uses __INCLUDE_LEVEL__"), "{reason}");

        // After the main file starts, the files are searched, not the output.
        let path = output("", "const char *d = __DATE__;\n");
        assert_eq!(check_file(&path, Some(&[]), None).unwrap(), None);
        assert!(check_file(&path, None, None).unwrap().unwrap().contains("__DATE__"));
        std::fs::write(&main, "const char *d = __DATE__;\n").unwrap();
        assert!(check_file(&path, Some(&[]), None).unwrap().unwrap().contains("main.c uses __DATE__"));
    }

    #[test]
    fn cache_spares_clean_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        let main = write_file(dir.path(), "main.c", b"int m;\n");
        let stamp = write_file(dir.path(), "stamp.h", b"#define STAMP __TIME__\n");
        let text = format!("# 0 \"{0}\"\n# 0 \"<command-line>\"\n# 1 \"{0}\"\nint m;\n", main.display());
        let path = write_file(dir.path(), "out.i", text.as_bytes());
        let headers = [stamp.display().to_string().into_bytes()];
        for _ in 0..2 {
            let reason = check_file(&path, Some(&headers), Some(cache.clone())).unwrap().unwrap();
            assert!(reason.contains("stamp.h uses __TIME__"), "{reason}");
        }
        // Files written just now are not recorded (their times are too recent).
        assert!(!cache.exists());
    }

    #[test]
    fn cache_header_names_every_search() {
        let header = String::from_utf8_lossy(header_cache::HEADER);
        for name in MACROS_EXPANDED_DIFFERENTLY.iter().chain(DROPPED_PRAGMAS) {
            assert!(header.contains(std::str::from_utf8(name).unwrap()), "{header}");
        }
    }
}
