//! Compiler command-line analysis: is this a single compile that can run on
//! a server, and if so, what runs locally (the preprocessor) and what the
//! server receives.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

/// A compile that can be distributed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteJob {
    /// The source file as written on the command line.
    pub input: OsString,
    /// The object file to write, as written or implied.
    pub output: OsString,
    /// Extension of the preprocessed source (`i`, `ii`, `mi`, `mii`); the
    /// server picks the language from it.
    pub preprocessed_ext: &'static str,
    /// True when the input is already preprocessed, so no local run is needed.
    pub input_is_preprocessed: bool,
    /// Arguments for the local preprocessor run (after the compiler name).
    pub cpp_args: Vec<OsString>,
    /// Arguments for the server (after the compiler name): no preprocessor
    /// options, the original input name and `-o OUTPUT`.
    pub server_args: Vec<OsString>,
}

/// The outcome of the analysis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Run the compiler locally with the unchanged arguments; the text says why.
    Local(String),
    Remote(RemoteJob),
}

/// Source extensions and the extension of their preprocessed form.
const SOURCE_EXTENSIONS: &[(&str, &str)] = &[
    ("c", "i"),
    ("cc", "ii"),
    ("cpp", "ii"),
    ("cxx", "ii"),
    ("cp", "ii"),
    ("c++", "ii"),
    ("C", "ii"),
    ("m", "mi"),
    ("mm", "mii"),
    ("M", "mii"),
    ("i", "i"),
    ("ii", "ii"),
    ("mi", "mi"),
    ("mii", "mii"),
];

const PREPROCESSED_EXTENSIONS: &[&str] = &["i", "ii", "mi", "mii"];

/// Extensions of inputs that are compiled, but never remotely: stock distccd
/// refuses assembler sources.
const LOCAL_ONLY_EXTENSIONS: &[&str] = &["s", "S", "sx"];

fn extension(name: &OsStr) -> Option<&str> {
    let file_name = Path::new(name).file_name()?;
    let bytes = file_name.as_bytes();
    let dot = bytes.iter().rposition(|&b| b == b'.')?;
    std::str::from_utf8(&bytes[dot + 1..]).ok().filter(|ext| !ext.is_empty())
}

/// Returns true for a file name that the compiler treats as a C-family source.
pub fn is_source_name(name: &OsStr) -> bool {
    extension(name).is_some_and(|ext| SOURCE_EXTENSIONS.iter().any(|(e, _)| *e == ext))
}

fn is_input_name(name: &OsStr) -> bool {
    is_source_name(name) || extension(name).is_some_and(|ext| LOCAL_ONLY_EXTENSIONS.contains(&ext))
}

/// Options that take the next word as their argument.
const OPTIONS_WITH_ARGUMENT: &[&str] = &[
    "-o", "-x", "-D", "-U", "-I", "-include", "-imacros", "-isystem", "-idirafter", "-iprefix",
    "-iwithprefix", "-iwithprefixbefore", "-iquote", "-isysroot", "-MF", "-MT", "-MQ", "-L", "-l",
    "-Xpreprocessor", "-Xassembler", "-Xlinker", "-aux-info", "--param", "-T", "-u", "-z",
    "-target", "--target", "-arch",
];

/// Preprocessor-only options that the server must not receive, with an argument word.
const STRIP_WITH_ARGUMENT: &[&str] = &[
    "-D", "-U", "-I", "-include", "-imacros", "-isystem", "-idirafter", "-iprefix",
    "-iwithprefix", "-iwithprefixbefore", "-iquote", "-MF", "-MT", "-MQ", "-L", "-l",
    "-Xpreprocessor",
];

/// Preprocessor-only options that the server must not receive, one word (prefix match).
const STRIP_PREFIXES: &[&str] = &[
    "-Wp,", "-Wl,", "-D", "-U", "-I", "-MF", "-MT", "-MQ", "-isystem", "-iquote", "-idirafter",
    "-l", "-L",
];

/// Preprocessor-only options that the server must not receive, one word (exact).
const STRIP_EXACT: &[&str] = &["-MD", "-MMD", "-MG", "-MP", "-undef", "-nostdinc", "-nostdinc++"];

/// Options that make the job local, with the reason (exact match).
const LOCAL_EXACT: &[(&str, &str)] = &[
    ("-E", "preprocessing only (-E)"),
    ("-M", "dependency generation only (-M)"),
    ("-MM", "dependency generation only (-MM)"),
    ("-S", "assembler output (-S)"),
    ("-save-temps", "-save-temps writes intermediate files beside the object"),
    ("-gsplit-dwarf", "-gsplit-dwarf writes a .dwo file beside the object"),
    ("--coverage", "--coverage writes a .gcno file beside the object"),
    ("-ftest-coverage", "-ftest-coverage writes a .gcno file beside the object"),
    ("-fprofile-arcs", "profiling instrumentation (-fprofile-arcs)"),
    ("-fstack-usage", "-fstack-usage writes a .su file beside the object"),
    ("-fcallgraph-info", "-fcallgraph-info writes a .ci file beside the object"),
    ("-flto", "link-time optimisation (-flto)"),
    ("-frepo", "-frepo writes .rpo files"),
    ("-march=native", "-march=native depends on the machine that compiles"),
    ("-mtune=native", "-mtune=native depends on the machine that compiles"),
    ("-mcpu=native", "-mcpu=native depends on the machine that compiles"),
];

/// Options that make the job local, with the reason (prefix match).
const LOCAL_PREFIXES: &[(&str, &str)] = &[
    ("-fprofile-generate", "profiling instrumentation (-fprofile-generate)"),
    ("-fprofile-use", "profile feedback reads local files (-fprofile-use)"),
    ("-fauto-profile", "profile feedback reads local files (-fauto-profile)"),
    ("-fdump-", "-fdump-* writes dump files beside the object"),
    ("-fopt-info=", "-fopt-info=FILE writes a file"),
    ("-fcallgraph-info=", "-fcallgraph-info writes a .ci file beside the object"),
    ("-specs=", "-specs= reads a local specs file"),
    ("-fplugin=", "-fplugin= loads a local plugin"),
    ("-B", "-B names local compiler programs"),
    ("-dr", "RTL dumps (-dr)"),
    ("-flto=", "link-time optimisation (-flto=)"),
    ("-Wa,-a", "assembler listing (-Wa,-a)"),
];

fn local_reason(word: &str) -> Option<String> {
    if let Some((_, reason)) = LOCAL_EXACT.iter().find(|(opt, _)| *opt == word) {
        return Some(reason.to_string());
    }
    if let Some((_, reason)) = LOCAL_PREFIXES.iter().find(|(prefix, _)| word.starts_with(prefix)) {
        return Some(reason.to_string());
    }
    if word.starts_with("-M") && !is_dependency_option(word) {
        return Some(format!("dependency generation only ({word})"));
    }
    if word.starts_with("-Wa,") && word.contains("--MD") {
        return Some(format!("assembler dependency output ({word})"));
    }
    None
}

/// `-MD`, `-MMD`, `-MG`, `-MP` and `-MF`/`-MT`/`-MQ` accompany a compile;
/// other `-M` options replace it.
fn is_dependency_option(word: &str) -> bool {
    matches!(word, "-MD" | "-MMD" | "-MG" | "-MP")
        || ["-MF", "-MT", "-MQ"].iter().any(|p| word.starts_with(p))
}

/// Languages for `-x` that the server can compile from preprocessed text.
fn is_distributable_language(language: &str) -> bool {
    matches!(language, "c" | "c++" | "objective-c" | "objective-c++")
}

/// Decides whether `args` (the words after the compiler name) describe one
/// distributable compile.
pub fn analyse(args: &[OsString]) -> Decision {
    let mut input: Option<usize> = None;
    let mut output: Option<OsString> = None;
    let mut seen_compile = false;
    let mut dependency_file = false;
    let mut has_mf = false;
    let mut has_target = false;

    let mut i = 0;
    while i < args.len() {
        let word = args[i].as_os_str();
        let Some(text) = word.to_str() else {
            // Non-UTF-8 words are only file names: treat them as inputs or pass through.
            if input.is_some() && is_input_name(word) {
                return Decision::Local("more than one input file".into());
            }
            if is_input_name(word) {
                input = Some(i);
            }
            i += 1;
            continue;
        };
        if text.starts_with('@') {
            return Decision::Local(format!("response file {text} is read by the compiler"));
        }
        if text == "-" {
            return Decision::Local("source read from standard input (-)".into());
        }
        if let Some(reason) = local_reason(text) {
            return Decision::Local(reason);
        }
        if text == "-c" {
            seen_compile = true;
        } else if text == "-MD" || text == "-MMD" {
            dependency_file = true;
        } else if text.starts_with("-MF") {
            has_mf = true;
        } else if text.starts_with("-MT") || text.starts_with("-MQ") {
            has_target = true;
        }
        if text.starts_with("-Wp,") {
            let pieces: Vec<&str> = text.split(',').skip(1).collect();
            if pieces.iter().any(|p| p.starts_with("-M") && !matches!(*p, "-MD" | "-MMD" | "-MF" | "-MT" | "-MQ" | "-MP" | "-MG")) {
                return Decision::Local(format!("dependency generation only ({text})"));
            }
        }
        if text == "-o" {
            let Some(next) = args.get(i + 1) else {
                return Decision::Local("-o without a file name".into());
            };
            if output.is_some() {
                return Decision::Local("more than one output (-o)".into());
            }
            output = Some(next.clone());
            i += 2;
            continue;
        }
        if let Some(joined) = text.strip_prefix("-o") {
            if output.is_some() {
                return Decision::Local("more than one output (-o)".into());
            }
            output = Some(OsString::from(joined));
            i += 1;
            continue;
        }
        if text == "-x" {
            let language = args.get(i + 1).and_then(|l| l.to_str()).unwrap_or("");
            if !is_distributable_language(language) {
                return Decision::Local(format!("language '-x {language}' is compiled locally"));
            }
            i += 2;
            continue;
        }
        if let Some(language) = text.strip_prefix("-x") {
            if !is_distributable_language(language) {
                return Decision::Local(format!("language '{text}' is compiled locally"));
            }
            i += 1;
            continue;
        }
        if text.starts_with('-') {
            i += if OPTIONS_WITH_ARGUMENT.contains(&text) { 2 } else { 1 };
            continue;
        }
        if is_input_name(word) {
            if input.is_some() {
                return Decision::Local("more than one input file".into());
            }
            input = Some(i);
        } else if text.ends_with(".o") || text.ends_with(".a") || text.ends_with(".so") {
            return Decision::Local(format!("link step (object or library {text})"));
        }
        i += 1;
    }

    if !seen_compile {
        return Decision::Local("no -c: not a compile to an object file".into());
    }
    let Some(input_index) = input else {
        return Decision::Local("no source file".into());
    };
    let input_word = args[input_index].clone();
    let Some(ext) = extension(&input_word).map(str::to_owned) else {
        return Decision::Local("source file has no extension".into());
    };
    let ext = ext.as_str();
    if LOCAL_ONLY_EXTENSIONS.contains(&ext) {
        return Decision::Local(format!("assembler source .{ext} is assembled locally"));
    }
    let preprocessed_ext = SOURCE_EXTENSIONS
        .iter()
        .find(|(e, _)| *e == ext)
        .map(|(_, p)| *p)
        .expect("is_input_name accepted the extension");
    if Path::new(&input_word)
        .file_name()
        .is_some_and(|n| n.as_bytes().starts_with(b"conftest.") || n.as_bytes().starts_with(b"tmp.conftest."))
    {
        return Decision::Local("configure test (conftest.*) is faster locally".into());
    }

    let explicit_output = output.is_some();
    let output = match output {
        Some(o) if o == "-" => return Decision::Local("object written to standard output (-o -)".into()),
        Some(o) if o.is_empty() => return Decision::Local("empty output name".into()),
        Some(o) => o,
        None => implied_output(&input_word),
    };

    let mut cpp_args = preprocessor_args(args);
    if dependency_file && explicit_output {
        // Run without -o, the preprocessor would name the dependency file and
        // its target after the source; gcc names them after the object.
        if !has_mf {
            cpp_args.push("-MF".into());
            cpp_args.push(replace_extension(&output, "d"));
        }
        if !has_target {
            cpp_args.push("-MQ".into());
            cpp_args.push(output.clone());
        }
    }
    let mut server_args = server_args(args);
    if !explicit_output {
        server_args.push("-o".into());
        server_args.push(output.clone());
    }

    Decision::Remote(RemoteJob {
        input: input_word,
        output,
        preprocessed_ext,
        input_is_preprocessed: PREPROCESSED_EXTENSIONS.contains(&ext),
        cpp_args,
        server_args,
    })
}

/// The object name gcc picks without `-o`: the source's base name with `.o`, in
/// the current directory.
fn implied_output(input: &OsStr) -> OsString {
    let name = Path::new(input).file_name().unwrap_or(input);
    replace_extension(name, "o")
}

/// Replaces the text after the last dot of the final component, as gcc's
/// `%b`/`%.d` specs do (`obj/c.o` → `obj/c.d`, `foo` → `foo.d`, `.x` → `.d`).
pub fn replace_extension(path: &OsStr, new_ext: &str) -> OsString {
    let bytes = path.as_bytes();
    let start = bytes.iter().rposition(|&b| b == b'/').map_or(0, |p| p + 1);
    let stem_end = bytes[start..].iter().rposition(|&b| b == b'.').map_or(bytes.len(), |p| start + p);
    let mut result = bytes[..stem_end].to_vec();
    result.push(b'.');
    result.extend_from_slice(new_ext.as_bytes());
    OsString::from_vec(result)
}

/// The preprocessor command: every option kept, `-o FILE` removed, `-c` → `-E`.
fn preprocessor_args(args: &[OsString]) -> Vec<OsString> {
    let mut result = Vec::with_capacity(args.len() + 4);
    let mut i = 0;
    while i < args.len() {
        let word = &args[i];
        if word == "-o" {
            i += 2;
            continue;
        }
        if word.as_bytes().starts_with(b"-o") {
            i += 1;
            continue;
        }
        if word == "-c" {
            result.push(OsString::from("-E"));
        } else {
            result.push(word.clone());
        }
        i += 1;
    }
    result
}

/// The server's arguments: preprocessor-only options removed.
fn server_args(args: &[OsString]) -> Vec<OsString> {
    let mut result = Vec::with_capacity(args.len());
    let mut i = 0;
    while i < args.len() {
        let word = &args[i];
        let text = word.to_str().unwrap_or("");
        if STRIP_WITH_ARGUMENT.contains(&text) {
            i += 2;
            continue;
        }
        if STRIP_EXACT.contains(&text) || STRIP_PREFIXES.iter().any(|p| text.starts_with(p)) {
            i += 1;
            continue;
        }
        if OPTIONS_WITH_ARGUMENT.contains(&text) {
            result.push(word.clone());
            if let Some(next) = args.get(i + 1) {
                result.push(next.clone());
            }
            i += 2;
            continue;
        }
        result.push(word.clone());
        i += 1;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<OsString> {
        text.split_whitespace().map(OsString::from).collect()
    }

    fn remote(text: &str) -> RemoteJob {
        match analyse(&words(text)) {
            Decision::Remote(job) => job,
            Decision::Local(reason) => panic!("{text}: expected remote, got local: {reason}"),
        }
    }

    fn local(text: &str) -> String {
        match analyse(&words(text)) {
            Decision::Local(reason) => reason,
            Decision::Remote(job) => panic!("{text}: expected local, got remote: {job:?}"),
        }
    }

    #[test]
    fn simple_compile_is_remote() {
        let job = remote("-O2 -c lapi.c -o lapi.o");
        assert_eq!(job.input, "lapi.c");
        assert_eq!(job.output, "lapi.o");
        assert_eq!(job.preprocessed_ext, "i");
        assert_eq!(job.cpp_args, words("-O2 -E lapi.c"));
        assert_eq!(job.server_args, words("-O2 -c lapi.c -o lapi.o"));
    }

    #[test]
    fn implied_output_is_appended() {
        let job = remote("-c src/x.cpp");
        assert_eq!(job.output, "x.o");
        assert_eq!(job.preprocessed_ext, "ii");
        assert_eq!(job.server_args, words("-c src/x.cpp -o x.o"));
    }

    #[test]
    fn preprocessor_options_stay_local() {
        let job = remote("-DX=1 -I inc -Iinc2 -include pre.h -MD -MP -c a.c -o obj/a.o");
        assert_eq!(job.server_args, words("-c a.c -o obj/a.o"));
        assert_eq!(
            job.cpp_args,
            words("-DX=1 -I inc -Iinc2 -include pre.h -MD -MP -E a.c -MF obj/a.d -MQ obj/a.o")
        );
    }

    #[test]
    fn explicit_dependency_file_keeps_its_name() {
        let job = remote("-MMD -MF v.dep -c v.c -o v2.o");
        assert_eq!(job.cpp_args, words("-MMD -MF v.dep -E v.c -MQ v2.o"));
        let job = remote("-MD -MT tgt -c v.c -o obj/v.o");
        assert_eq!(job.cpp_args, words("-MD -MT tgt -E v.c -MF obj/v.d"));
    }

    #[test]
    fn local_cases() {
        assert!(local("-E a.c").contains("-E"));
        assert!(local("-M a.c").contains("-M"));
        assert!(local("-MM -c a.c").contains("-MM"));
        assert!(local("a.c -o prog").contains("no -c"));
        assert!(local("-c a.c b.c").contains("more than one input"));
        assert!(local("-c").contains("no source"));
        assert!(local("-c a.c -o -").contains("standard output"));
        assert!(local("-x c -c -").contains("standard input"));
        assert!(local("-c a.s").contains("assembler"));
        assert!(local("-c a.S").contains("assembler"));
        assert!(local("-x assembler-with-cpp -c a.c").contains("assembler-with-cpp"));
        assert!(local("-march=native -c a.c").contains("native"));
        assert!(local("-gsplit-dwarf -c a.c").contains(".dwo"));
        assert!(local("-c conftest.c").contains("conftest"));
        assert!(local("-c a.c -o x.o -o y.o").contains("more than one output"));
        assert!(local("-fdump-tree-all -c a.c").contains("dump"));
        assert!(local("@args.rsp").contains("response file"));
        assert!(local("a.o b.o -o prog").contains("no -c") || local("a.o b.o -o prog").contains("link"));
    }

    #[test]
    fn language_option_for_c_family_is_remote() {
        let job = remote("-x c++ -c a.c -o a.o");
        assert_eq!(job.server_args, words("-x c++ -c a.c -o a.o"));
    }

    #[test]
    fn replace_extension_follows_gcc() {
        assert_eq!(replace_extension(OsStr::new("obj/c.o"), "d"), "obj/c.d");
        assert_eq!(replace_extension(OsStr::new("foo"), "d"), "foo.d");
        assert_eq!(replace_extension(OsStr::new("d.x/foo"), "d"), "d.x/foo.d");
        assert_eq!(replace_extension(OsStr::new("a.b.o"), "d"), "a.b.d");
        assert_eq!(replace_extension(OsStr::new(".hidden"), "d"), ".d");
    }
}
