//! Resolving `-march=native`, `-mtune=native` and `-mcpu=native` on the
//! client.
//!
//! gcc's driver replaces these options with the CPU name and feature flags
//! it detects before it runs the compiler proper. `gcc -###` prints the
//! compiler-proper command without running it, so the replacement is the
//! words that the `cc1` command gains when the native options are added to
//! an otherwise identical command line.

use std::ffi::OsString;
use std::path::Path;
use std::process::{Command, Stdio};

/// Returns the options gcc at `compiler` substitutes for `native_options`,
/// in the order it passes them to the compiler proper.
pub fn resolve_gcc(compiler: &Path, native_options: &[OsString]) -> Result<Vec<OsString>, String> {
    let baseline = compiler_proper_words(compiler, &[])?;
    let native = compiler_proper_words(compiler, native_options)?;

    // Remove each baseline word once; what is left came from the native options.
    let mut unmatched = baseline;
    let mut expansion = Vec::new();
    for word in native {
        if let Some(position) = unmatched.iter().position(|w| *w == word) {
            unmatched.remove(position);
        } else {
            expansion.push(OsString::from(word));
        }
    }
    if expansion.is_empty() {
        return Err(format!("{} -### showed no options for {}", compiler.display(), describe(native_options)));
    }
    if let Some(word) = expansion.iter().find(|w| w.to_string_lossy().contains("native")) {
        return Err(format!(
            "{} -### still passes '{}' to the compiler proper",
            compiler.display(),
            word.to_string_lossy()
        ));
    }
    Ok(expansion)
}

fn describe(options: &[OsString]) -> String {
    options.iter().map(|o| o.to_string_lossy()).collect::<Vec<_>>().join(" ")
}

/// Runs `compiler -### OPTIONS -S -x c /dev/null -o /dev/null` and returns the
/// words of the `cc1` command it prints, after the program name.
fn compiler_proper_words(compiler: &Path, options: &[OsString]) -> Result<Vec<String>, String> {
    let output = Command::new(compiler)
        .arg("-###")
        .args(options)
        .args(["-S", "-x", "c", "/dev/null", "-o", "/dev/null"])
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {} -###: {e}", compiler.display()))?;
    if !output.status.success() {
        return Err(format!(
            "{} -### {} failed: {}",
            compiler.display(),
            describe(options),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let text = String::from_utf8_lossy(&output.stderr);
    for line in text.lines() {
        let words = split_quoted(line)?;
        let is_cc1 = words.first().is_some_and(|program| Path::new(program).file_name().is_some_and(|n| n == "cc1"));
        if is_cc1 {
            return Ok(words[1..].to_vec());
        }
    }
    Err(format!("{} -### printed no cc1 command", compiler.display()))
}

/// Splits a command as gcc's `-###` prints it: words separated by spaces,
/// some in double quotes with `\` escaping `"`, `\` and `$`.
fn split_quoted(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek() == Some(&' ') {
            chars.next();
        }
        let Some(&first) = chars.peek() else {
            break;
        };
        let mut word = String::new();
        if first == '"' {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(c) => word.push(c),
                        None => return Err(format!("unterminated quote in gcc -### output: {line}")),
                    },
                    Some(c) => word.push(c),
                    None => return Err(format!("unterminated quote in gcc -### output: {line}")),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ' ' {
                    break;
                }
                word.push(c);
                chars.next();
            }
        }
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_quoted_follows_gcc_quoting() {
        let words = split_quoted(r#" /usr/lib/cc1 -quiet "-march=znver3" --param "l1-cache-size=32" "a\"b\\c" """#).unwrap();
        assert_eq!(words, ["/usr/lib/cc1", "-quiet", "-march=znver3", "--param", "l1-cache-size=32", "a\"b\\c", ""]);
        assert!(split_quoted(r#" cc1 "open"#).is_err());
    }

    #[test]
    fn resolves_with_installed_gcc() {
        let Ok(gcc) = which::which("gcc") else {
            eprintln!("gcc not installed; skipping");
            return;
        };
        let expansion = resolve_gcc(&gcc, &[OsString::from("-march=native")]).unwrap();
        let first = expansion[0].to_string_lossy().into_owned();
        assert!(first.starts_with("-march="), "expansion starts with {first}");
        assert!(!first.contains("native"));
        assert!(expansion.iter().any(|w| w.to_string_lossy().starts_with("-mtune=")));
    }
}
