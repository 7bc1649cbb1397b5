//! Response files: a word `@FILE` stands for the words written in FILE.
//!
//! gcc reads them with libiberty's `expandargv` and clang with LLVM's GNU
//! tokenizer. Both split on white space, strip single and double quotes,
//! let a backslash escape the next character (inside quotes too), expand
//! `@FILE` words found inside a file, and resolve relative names against the
//! working directory, not the including file. They differ on `""`: libiberty
//! keeps an empty word, LLVM drops it. A file that does not exist is left as
//! the literal word `@FILE`, which the compiler then reports as a missing
//! input. That case and every other read problem are returned as errors
//! here, so that the job runs locally and the compiler prints its own message.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

/// Whose rules split a response file into words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// libiberty (gcc): `""` is an empty word.
    Gnu,
    /// LLVM (clang): empty words are dropped.
    Llvm,
}

/// libiberty stops after this many response files, which also ends a file
/// that names itself; LLVM stops such loops as well.
const MAX_RESPONSE_FILES: usize = 2000;

/// Replaces every `@FILE` word with the words of FILE, recursively. Returns
/// `None` when there is no `@` word.
pub fn expand(args: &[OsString], dialect: Dialect) -> Result<Option<Vec<OsString>>, String> {
    if !args.iter().any(|a| a.as_bytes().starts_with(b"@")) {
        return Ok(None);
    }
    let mut words: Vec<OsString> = args.to_vec();
    let mut files_read = 0;
    let mut i = 0;
    while i < words.len() {
        let Some(name) = words[i].as_bytes().strip_prefix(b"@") else {
            i += 1;
            continue;
        };
        let path = Path::new(OsStr::from_bytes(name)).to_owned();
        files_read += 1;
        if files_read > MAX_RESPONSE_FILES {
            return Err(format!(
                "more than {MAX_RESPONSE_FILES} response files (does '{}' include itself?)",
                path.display()
            ));
        }
        let content = read_response_file(&path)?;
        let inserted = split(&content, dialect);
        // The inserted words are scanned again, for nested response files.
        words.splice(i..=i, inserted);
    }
    Ok(Some(words))
}

fn read_response_file(path: &Path) -> Result<Vec<u8>, String> {
    let metadata = std::fs::metadata(path)
        .map_err(|e| format!("cannot read response file '@{}': {e}", path.display()))?;
    if metadata.is_dir() {
        return Err(format!("response file '@{}' is a directory", path.display()));
    }
    std::fs::read(path).map_err(|e| format!("cannot read response file '@{}': {e}", path.display()))
}

fn is_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c')
}

/// Splits the text of a response file into words.
pub fn split(text: &[u8], dialect: Dialect) -> Vec<OsString> {
    let mut words = Vec::new();
    let mut i = 0;
    loop {
        while i < text.len() && is_space(text[i]) {
            i += 1;
        }
        if i >= text.len() {
            break;
        }
        let mut word = Vec::new();
        let mut quote: Option<u8> = None;
        while i < text.len() {
            let byte = text[i];
            if quote.is_none() && is_space(byte) {
                break;
            }
            if byte == b'\\' {
                // A backslash at the very end escapes nothing: libiberty drops
                // it, LLVM keeps it.
                if let Some(&next) = text.get(i + 1) {
                    word.push(next);
                    i += 2;
                    continue;
                }
                if dialect == Dialect::Llvm {
                    word.push(byte);
                }
                i += 1;
                continue;
            }
            match quote {
                Some(q) if byte == q => quote = None,
                Some(_) => word.push(byte),
                None if byte == b'\'' || byte == b'"' => quote = Some(byte),
                None => word.push(byte),
            }
            i += 1;
        }
        if !word.is_empty() || dialect == Dialect::Gnu {
            words.push(OsString::from_vec(word));
        }
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_gnu(text: &str) -> Vec<String> {
        split(text.as_bytes(), Dialect::Gnu).into_iter().map(|w| w.into_string().unwrap()).collect()
    }

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(split_gnu(r#"-c "sp ace/b c.c" -o 'sp ace/b c.o'"#), ["-c", "sp ace/b c.c", "-o", "sp ace/b c.o"]);
        assert_eq!(split_gnu(r#"-DX=\"q\" a\ b"#), ["-DX=\"q\"", "a b"]);
        assert_eq!(split_gnu(r#"'it\'s' "say \"hi\"""#), ["it's", "say \"hi\""]);
        assert_eq!(split_gnu("a\"b c\"d\n\t e"), ["ab cd", "e"]);
        assert_eq!(split_gnu("  \n "), Vec::<String>::new());
    }

    #[test]
    fn empty_word_depends_on_dialect() {
        assert_eq!(split_gnu(r#"a "" b"#), ["a", "", "b"]);
        let llvm: Vec<OsString> = split(br#"a "" b"#, Dialect::Llvm);
        assert_eq!(llvm, ["a", "b"]);
    }

    #[test]
    fn nested_files_resolve_from_working_directory() {
        let dir = tempfile::tempdir().unwrap();
        let outer = dir.path().join("outer.rsp");
        let inner = dir.path().join("inner.rsp");
        std::fs::write(&inner, "-DINNER 'x y.c'").unwrap();
        std::fs::write(&outer, format!("-c @{} -o out.o", inner.display())).unwrap();
        let args = vec![OsString::from("-O2"), OsString::from(format!("@{}", outer.display()))];
        let expanded = expand(&args, Dialect::Gnu).unwrap().unwrap();
        assert_eq!(expanded, ["-O2", "-c", "-DINNER", "x y.c", "-o", "out.o"]);
    }

    #[test]
    fn no_response_file_is_none() {
        assert_eq!(expand(&[OsString::from("-c")], Dialect::Gnu).unwrap(), None);
    }

    #[test]
    fn problems_name_the_file() {
        let error = expand(&[OsString::from("@/nonexistent/args.rsp")], Dialect::Gnu).unwrap_err();
        assert!(error.contains("/nonexistent/args.rsp"), "{error}");

        let dir = tempfile::tempdir().unwrap();
        let error = expand(&[OsString::from(format!("@{}", dir.path().display()))], Dialect::Gnu).unwrap_err();
        assert!(error.contains("is a directory"), "{error}");

        let looping = dir.path().join("loop.rsp");
        std::fs::write(&looping, format!("@{}", looping.display())).unwrap();
        let error = expand(&[OsString::from(format!("@{}", looping.display()))], Dialect::Gnu).unwrap_err();
        assert!(error.contains("include itself"), "{error}");
    }
}
