//! Splitting a compiler command line into options, matched against the
//! option table, and operands.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

use super::table::{self, OptionSpec};

/// One option or operand, covering one or two words of the command line.
#[derive(Debug, Clone)]
pub struct Token {
    pub kind: TokenKind,
    /// Index of the first word in the command line.
    pub start: usize,
    /// Number of words: 2 when the value is a separate word, else 1.
    pub len: usize,
}

#[derive(Debug, Clone)]
pub enum TokenKind {
    /// An option of the table, with its value (empty for a flag).
    Known { spec: &'static OptionSpec, value: OsString },
    /// An option that the table does not list; it goes to both steps.
    Unknown,
    /// A word that is not an option: an input file, or `-` for standard input.
    Operand,
}

impl Token {
    /// The words of the token as they appear on the command line.
    pub fn words<'a>(&self, args: &'a [OsString]) -> &'a [OsString] {
        &args[self.start..self.start + self.len]
    }

    /// The first word of the token.
    pub fn word<'a>(&self, args: &'a [OsString]) -> &'a OsStr {
        &args[self.start]
    }
}

/// Splits `args` (the words after the compiler name) into tokens. Fails,
/// naming the option, when an option's separate value is missing.
pub fn scan(args: &[OsString]) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::with_capacity(args.len());
    let mut i = 0;
    while i < args.len() {
        let word = args[i].as_bytes();
        if word.len() < 2 || word[0] != b'-' {
            tokens.push(Token { kind: TokenKind::Operand, start: i, len: 1 });
            i += 1;
            continue;
        }
        let Some(found) = table::lookup(word) else {
            tokens.push(Token { kind: TokenKind::Unknown, start: i, len: 1 });
            i += 1;
            continue;
        };
        if found.value_in_next_word {
            let Some(value) = args.get(i + 1) else {
                return Err(format!("missing argument after '{}'", args[i].to_string_lossy()));
            };
            tokens.push(Token {
                kind: TokenKind::Known { spec: found.spec, value: value.clone() },
                start: i,
                len: 2,
            });
            i += 2;
        } else {
            let value = OsStr::from_bytes(table::joined_value(found.spec, word)).to_owned();
            tokens.push(Token { kind: TokenKind::Known { spec: found.spec, value }, start: i, len: 1 });
            i += 1;
        }
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<OsString> {
        text.split_whitespace().map(OsString::from).collect()
    }

    fn describe(args: &[OsString]) -> Vec<String> {
        scan(args)
            .unwrap()
            .iter()
            .map(|token| match &token.kind {
                TokenKind::Known { spec, value } => format!("{}={}", spec.name, value.to_string_lossy()),
                TokenKind::Unknown => format!("?{}", token.word(args).to_string_lossy()),
                TokenKind::Operand => format!("<{}>", token.word(args).to_string_lossy()),
            })
            .collect()
    }

    #[test]
    fn separate_and_joined_values() {
        let args = words("-o out.o -Iinc -I other -MF x.d -MTtarget -O2 a.c -x c++ - --sysroot=/s --param max-inline=3");
        assert_eq!(
            describe(&args),
            [
                "-o=out.o", "-I=inc", "-I=other", "-MF=x.d", "-MT=target", "?-O2", "<a.c>", "-x=c++", "<->", "--sysroot=/s",
                "--param=max-inline=3",
            ]
        );
    }

    #[test]
    fn value_that_looks_like_a_source_is_not_an_operand() {
        let args = words("-include pre.c -MT x.c -c a.c");
        assert_eq!(describe(&args), ["-include=pre.c", "-MT=x.c", "-c=", "<a.c>"]);
    }

    #[test]
    fn missing_value_names_the_option() {
        let error = scan(&words("-c a.c -o")).unwrap_err();
        assert!(error.contains("'-o'"), "{error}");
        let error = scan(&words("-c a.c -Xclang")).unwrap_err();
        assert!(error.contains("'-Xclang'"), "{error}");
    }

    #[test]
    fn tokens_keep_their_words() {
        let args = words("-x c a.c");
        let tokens = scan(&args).unwrap();
        assert_eq!(tokens[0].words(&args), &args[0..2]);
        assert_eq!(tokens[1].words(&args), &args[2..3]);
    }
}
