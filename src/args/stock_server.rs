//! What stock distccd 3.4 accepts.
//!
//! The server scans the arguments it receives with the same rules as the
//! stock client (`dcc_scan_args` in `src/arg.c`) and closes the connection
//! without a reply when they call for a local compile; it also refuses
//! `-fplugin=` and `-specs=` (`src/serve.c`). An argument vector built for
//! the server is checked here first, so that a misreading turns into a
//! local compile with a reason instead of a failed host.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::language::is_stock_source_name;

/// Options after which the 3.4 scan skips one word.
const SKIPS_NEXT_WORD: &[&[u8]] = &[b"-MF", b"-MT", b"-MQ"];

/// Profile options the 3.4 scan refuses (exact names, then prefixes).
const PROFILE_EXACT: &[&[u8]] = &[b"-fprofile-arcs", b"-ftest-coverage", b"--coverage", b"-fprofile-correction"];
const PROFILE_PREFIXES: &[&[u8]] = &[b"-fprofile-generate", b"-fprofile-use", b"-fauto-profile"];

/// Languages after `-x` that the 3.4 scan accepts: the next word must start
/// with one of these.
const ACCEPTED_LANGUAGE_PREFIXES: &[&[u8]] = &[b"c", b"c++", b"objective-c", b"objective-c++", b"go"];

/// Checks that stock distccd 3.4 accepts `args` (the words after the compiler
/// name) and finds `input` and `output` in them, as the server would.
pub fn check(args: &[OsString], input: &OsStr, output: &OsStr) -> Result<(), String> {
    let mut found_input: Option<&OsStr> = None;
    let mut found_output: Option<&OsStr> = None;
    let mut seen_action = false;

    let mut i = 0;
    while i < args.len() {
        let word = args[i].as_bytes();
        if word.starts_with(b"-") {
            if let Some(reason) = refused_option(word, args.get(i + 1)) {
                return Err(format!("stock distccd refuses '{}': {reason}", args[i].to_string_lossy()));
            }
            if word == b"-c" || word == b"-S" {
                seen_action = true;
            } else if SKIPS_NEXT_WORD.contains(&word) {
                i += 1;
            } else if word == b"-o" {
                i += 1;
                note_output(&mut found_output, args.get(i).map(OsString::as_os_str))?;
            } else if let Some(joined) = word.strip_prefix(b"-o") {
                note_output(&mut found_output, Some(OsStr::from_bytes(joined)))?;
            }
        } else if is_stock_source_name(&args[i]) {
            if found_input.is_some() {
                return Err(format!(
                    "stock distccd would read '{}' as a second source file",
                    args[i].to_string_lossy()
                ));
            }
            found_input = Some(&args[i]);
        } else if word.ends_with(b".o") {
            note_output(&mut found_output, Some(&args[i]))?;
        }
        i += 1;
    }

    if !seen_action {
        return Err("stock distccd needs -c or -S".into());
    }
    if found_input != Some(input) {
        return Err(format!(
            "stock distccd would not find the source file '{}'",
            input.to_string_lossy()
        ));
    }
    let name = Path::new(input).file_name().map(OsStr::as_bytes).unwrap_or_default();
    if name.starts_with(b"conftest.") || name.starts_with(b"tmp.conftest.") {
        return Err("stock distccd compiles configure tests (conftest.*) locally".into());
    }
    if found_output != Some(output) || output == "-" {
        return Err(format!("stock distccd would not find the output '{}'", output.to_string_lossy()));
    }
    Ok(())
}

fn note_output<'a>(found: &mut Option<&'a OsStr>, word: Option<&'a OsStr>) -> Result<(), String> {
    let Some(word) = word else {
        return Err("-o without a file name".into());
    };
    if found.is_some() {
        return Err(format!(
            "stock distccd would read '{}' as a second output",
            word.to_string_lossy()
        ));
    }
    *found = Some(word);
    Ok(())
}

/// The reason stock distccd 3.4 runs an option locally (and so refuses the
/// job), or `None` when it accepts it.
fn refused_option(word: &[u8], next: Option<&OsString>) -> Option<&'static str> {
    if word == b"-E" {
        return Some("preprocessing only");
    }
    let allowed_dependency = matches!(word, b"-MD" | b"-MMD" | b"-MG" | b"-MP")
        || [b"-MF", b"-MT", b"-MQ"].iter().any(|p| word.starts_with(*p));
    if word.starts_with(b"-M") && !allowed_dependency {
        return Some("dependency generation only");
    }
    if matches!(word, b"-march=native" | b"-mtune=native" | b"-flto") {
        return Some("depends on the compiling machine or links");
    }
    if word.starts_with(b"-Wa,") && (contains(word, b",-a") || contains(word, b"--MD")) {
        return Some("assembler listing or dependency output");
    }
    if word.starts_with(b"-specs=") || word.starts_with(b"-fplugin=") {
        return Some("loads a file of the client");
    }
    if PROFILE_EXACT.contains(&word) || PROFILE_PREFIXES.iter().any(|p| word.starts_with(p)) {
        return Some("profile data");
    }
    if word == b"-frepo" {
        return Some("writes .rpo files");
    }
    if let Some(next) = next.filter(|_| word.starts_with(b"-x")) {
        let next = next.as_bytes();
        if !ACCEPTED_LANGUAGE_PREFIXES.iter().any(|p| next.starts_with(p)) {
            return Some("the word after an option starting with -x is not a language it accepts");
        }
    }
    if word.starts_with(b"-dr") {
        return Some("RTL dumps");
    }
    None
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<OsString> {
        text.split_whitespace().map(OsString::from).collect()
    }

    fn accepts(text: &str) -> Result<(), String> {
        check(&words(text), OsStr::new("a.c"), OsStr::new("a.o"))
    }

    #[test]
    fn plain_compile_is_accepted() {
        assert_eq!(accepts("-O2 -x cpp-output a.c -c -o a.o"), Ok(()));
        assert_eq!(accepts("-x c++-cpp-output a.c -S -oa.o"), Ok(()));
        assert_eq!(accepts("-MT x.c -x cpp-output a.c -c -o a.o"), Ok(()));
    }

    #[test]
    fn refusals_name_the_word() {
        let error = accepts("-mllvm -x86-asm-syntax=intel -x cpp-output a.c -c -o a.o").unwrap_err();
        assert!(error.contains("-x86-asm-syntax=intel"), "{error}");
        assert!(accepts("-MM -x cpp-output a.c -c -o a.o").is_err());
        assert!(accepts("-Wa,-adhln -x cpp-output a.c -c -o a.o").is_err());
        assert!(accepts("-fprofile-use=x -x cpp-output a.c -c -o a.o").is_err());
        assert!(accepts("-fplugin=x.so -x cpp-output a.c -c -o a.o").is_err());
    }

    #[test]
    fn extra_source_or_output_is_refused() {
        let error = accepts("-Xclang b.c -x cpp-output a.c -c -o a.o").unwrap_err();
        assert!(error.contains("second source"), "{error}");
        let error = accepts("-mllvm b.o -x cpp-output a.c -c -o a.o").unwrap_err();
        assert!(error.contains("second output"), "{error}");
        assert!(accepts("-x cpp-output a.c -o a.o").is_err());
    }

    #[test]
    fn conftest_is_refused() {
        let error = check(&words("-x cpp-output conftest.c -c -o a.o"), OsStr::new("conftest.c"), OsStr::new("a.o"))
            .unwrap_err();
        assert!(error.contains("conftest"), "{error}");
    }
}
