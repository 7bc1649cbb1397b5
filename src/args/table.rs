//! The table of compiler options that gcc 12 and clang 14 accept, each with
//! what it means for a distributed compile.
//!
//! Every option that needs handling of its own is listed once here. The
//! class of an option decides where it goes: only to the local preprocessor
//! run, to both the preprocessor and the server, to neither, or whether the
//! whole job must run locally. An option missing from the table is passed to
//! both steps, as its effect is unknown.

/// The way an option's value is written on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// The word is exactly the name: `-c`.
    Flag,
    /// The value follows the name in the same word, possibly empty: `-O2`, `-fdump-tree-all`.
    Joined,
    /// The value is the next word: `-Xclang -foo`.
    Separate,
    /// Either `-Idir` or `-I dir`.
    JoinedOrSeparate,
    /// Either `--sysroot=dir` or `--sysroot dir`; the name is written without `=`.
    EqualsOrSeparate,
}

/// The compile step an action option selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `-c`: compile and assemble to an object file.
    Object,
    /// `-S`: compile to an assembler file.
    Assembly,
}

/// The dependency-file options of the gcc driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dependency {
    /// `-MD` or `-MMD`: write a dependency file while compiling.
    Write,
    /// `-MF FILE`: the dependency file's name.
    File,
    /// `-MT TARGET` or `-MQ TARGET`: the rule's target.
    Target,
    /// `-MP`, `-MG`, `-MV`: change the content of the file, nothing else.
    Modifier,
}

/// The meaning of an option for a distributed compile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Affects preprocessing only: given to the local preprocessor, not sent.
    Preprocessor,
    /// Affects the compile, and maybe preprocessing too: given to both.
    Compile,
    /// Matters only when linking. Kept for the preprocessor run, because
    /// clang warns about it there exactly as in a local compile, and not sent.
    Linker,
    /// `-c` or `-S`.
    Action(Action),
    /// `-o FILE`.
    Output,
    /// `-x LANGUAGE`, which applies to the inputs after it.
    Language,
    /// A dependency-file option of the driver.
    Dependency(Dependency),
    /// `-Wp,OPTIONS`: options handed to the preprocessor as they are.
    PreprocessorPassthrough,
    /// `-Wa,OPTIONS` or `-Xassembler OPTION`: sent, unless the assembler
    /// would write a listing or dependency file.
    Assembler,
    /// `-Xclang OPTION`: sent, unless it loads a plugin.
    ClangFrontend,
    /// `-fopt-info...`: reports go to standard error (sent), or to a file
    /// named after `=` (the job runs locally).
    OptimizationReport,
    /// `-march=native` and its kind: the value depends on the machine.
    Native,
    /// The job runs locally, for the reason given.
    Local(&'static str),
}

/// One option of the table.
#[derive(Debug)]
pub struct OptionSpec {
    /// The name as written, with its dashes; for [`Form::Joined`] the fixed prefix.
    pub name: &'static str,
    pub form: Form,
    pub class: Class,
}

const SIDE_OUTPUT: &str = "writes a file beside the output that stock distccd does not send back";
const PROFILE: &str = "reads or writes profile data on this machine";
const INFORMATION: &str = "prints information about the compiler instead of compiling";
const LOCAL_FILE: &str = "makes the compiler read a file of this machine that the server does not have";
const PREPROCESSED_OUTPUT_ONLY: &str =
    "only changes preprocessed output (-E); a local compile shows how the compiler treats it in a compile";
const LINK_TIME_OPTIMISATION: &str =
    "link-time optimisation objects are not worth distributing, and stock distccd 3.4 rejects -flto";
const RTL_DUMP: &str = "writes compiler dump files beside the output";
const MODULES: &str = "uses a module cache or module files on this machine";

const fn option(name: &'static str, form: Form, class: Class) -> OptionSpec {
    OptionSpec { name, form, class }
}

use Class::*;
use Form::*;

/// Every option with handling of its own, gcc and clang spellings together.
pub static OPTIONS: &[OptionSpec] = &[
    // The compile step and the output.
    option("-c", Flag, Action(self::Action::Object)),
    option("--compile", Flag, Action(self::Action::Object)),
    option("-S", Flag, Action(self::Action::Assembly)),
    option("--assemble", Flag, Action(self::Action::Assembly)),
    option("-E", Flag, Local("preprocessing only (-E) is done locally")),
    option("--preprocess", Flag, Local("preprocessing only (--preprocess) is done locally")),
    option("-fsyntax-only", Flag, Local("checks syntax without writing an object")),
    option("-o", JoinedOrSeparate, Output),
    option("--output", EqualsOrSeparate, Output),
    option("-x", JoinedOrSeparate, Language),
    option("--language", EqualsOrSeparate, Language),
    // Dependency files.
    option("-MD", Flag, Dependency(self::Dependency::Write)),
    option("-MMD", Flag, Dependency(self::Dependency::Write)),
    option("--write-dependencies", Flag, Dependency(self::Dependency::Write)),
    option("--write-user-dependencies", Flag, Dependency(self::Dependency::Write)),
    option("-MF", JoinedOrSeparate, Dependency(self::Dependency::File)),
    option("-MT", JoinedOrSeparate, Dependency(self::Dependency::Target)),
    option("-MQ", JoinedOrSeparate, Dependency(self::Dependency::Target)),
    option("-MP", Flag, Dependency(self::Dependency::Modifier)),
    option("-MG", Flag, Dependency(self::Dependency::Modifier)),
    option("--print-missing-file-dependencies", Flag, Dependency(self::Dependency::Modifier)),
    option("-MV", Flag, Dependency(self::Dependency::Modifier)),
    option("-M", Flag, Local("dependency generation only (-M) replaces the compile")),
    option("-MM", Flag, Local("dependency generation only (-MM) replaces the compile")),
    option("--dependencies", Flag, Local("dependency generation only (--dependencies) replaces the compile")),
    option(
        "--user-dependencies",
        Flag,
        Local("dependency generation only (--user-dependencies) replaces the compile"),
    ),
    option("-MJ", JoinedOrSeparate, Local("writes a compilation database entry describing the local command")),
    // Preprocessor options.
    option("-D", JoinedOrSeparate, Preprocessor),
    option("--define-macro", EqualsOrSeparate, Preprocessor),
    option("-U", JoinedOrSeparate, Preprocessor),
    option("--undefine-macro", EqualsOrSeparate, Preprocessor),
    option("-A", JoinedOrSeparate, Preprocessor),
    option("--assert", EqualsOrSeparate, Preprocessor),
    option("-I", JoinedOrSeparate, Preprocessor),
    option("--include-directory", EqualsOrSeparate, Preprocessor),
    option("-I-", Flag, Preprocessor),
    option("-iquote", JoinedOrSeparate, Preprocessor),
    option("-isystem", JoinedOrSeparate, Preprocessor),
    option("-isystem-after", JoinedOrSeparate, Preprocessor),
    option("-cxx-isystem", JoinedOrSeparate, Preprocessor),
    option("-idirafter", JoinedOrSeparate, Preprocessor),
    option("--include-directory-after", EqualsOrSeparate, Preprocessor),
    option("-iprefix", JoinedOrSeparate, Preprocessor),
    option("--include-prefix", EqualsOrSeparate, Preprocessor),
    option("-iwithprefix", JoinedOrSeparate, Preprocessor),
    option("--include-with-prefix", EqualsOrSeparate, Preprocessor),
    option("-iwithprefixbefore", JoinedOrSeparate, Preprocessor),
    option("--include-with-prefix-before", EqualsOrSeparate, Preprocessor),
    option("-imultilib", JoinedOrSeparate, Preprocessor),
    option("-imultiarch", JoinedOrSeparate, Preprocessor),
    option("-isysroot", JoinedOrSeparate, Preprocessor),
    option("-iframework", JoinedOrSeparate, Preprocessor),
    option("-F", JoinedOrSeparate, Preprocessor),
    option("-include", JoinedOrSeparate, Preprocessor),
    option("--include", EqualsOrSeparate, Preprocessor),
    option("-imacros", JoinedOrSeparate, Preprocessor),
    option("--imacros", EqualsOrSeparate, Preprocessor),
    option("--sysroot", EqualsOrSeparate, Preprocessor),
    option("-gcc-toolchain", Separate, Preprocessor),
    option("--gcc-toolchain", EqualsOrSeparate, Preprocessor),
    option("-resource-dir", Separate, Preprocessor),
    option("-resource-dir=", Joined, Preprocessor),
    option("-stdlib=", Joined, Preprocessor),
    option("-stdlib++-isystem", JoinedOrSeparate, Preprocessor),
    option("-nostdinc", Flag, Preprocessor),
    option("--no-standard-includes", Flag, Preprocessor),
    option("-nostdinc++", Flag, Preprocessor),
    option("-nostdlibinc", Flag, Preprocessor),
    option("-nobuiltininc", Flag, Preprocessor),
    option("-undef", Flag, Preprocessor),
    option("-trigraphs", Flag, Preprocessor),
    option("--trigraphs", Flag, Preprocessor),
    option("-traditional-cpp", Flag, Preprocessor),
    option("--traditional-cpp", Flag, Preprocessor),
    option("-remap", Flag, Preprocessor),
    option("-H", Flag, Preprocessor),
    option("--trace-includes", Flag, Preprocessor),
    option("-finput-charset=", Joined, Preprocessor),
    option("-fworking-directory", Flag, Preprocessor),
    option("-fno-working-directory", Flag, Preprocessor),
    // gcc's server expands __FILE__, so it needs the map too.
    option("-fmacro-prefix-map=", Joined, Compile),
    option("-fpch-preprocess", Flag, Preprocessor),
    option("-fpch-deps", Flag, Preprocessor),
    option("-ftrack-macro-expansion", Joined, Preprocessor),
    option("-Xpreprocessor", Separate, Preprocessor),
    option("-Wp,", Joined, PreprocessorPassthrough),
    option("-C", Flag, Local(PREPROCESSED_OUTPUT_ONLY)),
    option("--comments", Flag, Local(PREPROCESSED_OUTPUT_ONLY)),
    option("-CC", Flag, Local(PREPROCESSED_OUTPUT_ONLY)),
    option("--comments-in-macros", Flag, Local(PREPROCESSED_OUTPUT_ONLY)),
    option("-P", Flag, Local(PREPROCESSED_OUTPUT_ONLY)),
    option("--no-line-commands", Flag, Local(PREPROCESSED_OUTPUT_ONLY)),
    option("-dD", Flag, Local(PREPROCESSED_OUTPUT_ONLY)),
    option("-dI", Flag, Local(PREPROCESSED_OUTPUT_ONLY)),
    option("-dN", Flag, Local(PREPROCESSED_OUTPUT_ONLY)),
    option("-dU", Flag, Local(PREPROCESSED_OUTPUT_ONLY)),
    option("-include-pch", Separate, Local("reads a precompiled header that only this machine has")),
    // Options that make the compiler print information instead of compiling.
    option("-v", Flag, Local(INFORMATION)),
    option("--verbose", Flag, Local(INFORMATION)),
    option("-###", Flag, Local(INFORMATION)),
    option("--help", Joined, Local(INFORMATION)),
    option("--target-help", Flag, Local(INFORMATION)),
    option("--version", Flag, Local(INFORMATION)),
    option("-print-", Joined, Local(INFORMATION)),
    option("--print-", Joined, Local(INFORMATION)),
    option("-dumpversion", Flag, Local(INFORMATION)),
    option("-dumpfullversion", Flag, Local(INFORMATION)),
    option("-dumpmachine", Flag, Local(INFORMATION)),
    option("-dumpspecs", Flag, Local(INFORMATION)),
    option("-time", Joined, Local("reports the time of each compiler program run on this machine")),
    // Options that name auxiliary output files; they only matter together
    // with an option that writes such a file, and those run locally.
    option("-dumpdir", Separate, Compile),
    option("-dumpbase", Separate, Compile),
    option("-dumpbase-ext", Separate, Compile),
    // Options whose output files stock distccd does not return.
    option("-save-temps", Joined, Local(SIDE_OUTPUT)),
    option("--save-temps", Joined, Local(SIDE_OUTPUT)),
    option("-gsplit-dwarf", Joined, Local(SIDE_OUTPUT)),
    option("-gmodules", Flag, Local(MODULES)),
    option("--coverage", Flag, Local(SIDE_OUTPUT)),
    option("-ftest-coverage", Flag, Local(SIDE_OUTPUT)),
    option("-fprofile-arcs", Flag, Local(SIDE_OUTPUT)),
    option("-fstack-usage", Flag, Local(SIDE_OUTPUT)),
    option("-fcallgraph-info", Joined, Local(SIDE_OUTPUT)),
    option("-fdump-", Joined, Local(SIDE_OUTPUT)),
    option("-aux-info", JoinedOrSeparate, Local(SIDE_OUTPUT)),
    option("--aux-info", EqualsOrSeparate, Local(SIDE_OUTPUT)),
    option("-fcompare-debug", Joined, Local(SIDE_OUTPUT)),
    option("-ftime-trace", Joined, Local(SIDE_OUTPUT)),
    option("-fsave-optimization-record", Joined, Local(SIDE_OUTPUT)),
    option("-foptimization-record-file=", Joined, Local(SIDE_OUTPUT)),
    option("-foptimization-record-passes=", Joined, Local(SIDE_OUTPUT)),
    option("-serialize-diagnostics", Separate, Local(SIDE_OUTPUT)),
    option("--serialize-diagnostics", EqualsOrSeparate, Local(SIDE_OUTPUT)),
    option("-frepo", Flag, Local(SIDE_OUTPUT)),
    option("-fopt-info", Joined, OptimizationReport),
    option("-fverbose-asm", Flag, Local("annotates assembler output with source lines that the server cannot read")),
    // Dumps selected by letters (`-dr`, `-da`, ...); the letters that only
    // change assembler comments are sent.
    option("-d", Joined, Local(RTL_DUMP)),
    option("-dA", Flag, Compile),
    option("-dp", Flag, Compile),
    option("-dP", Flag, Compile),
    option("-dM", Flag, Local(RTL_DUMP)),
    // Profiles.
    option("-fprofile-generate", Joined, Local(PROFILE)),
    option("-fprofile-use", Joined, Local(PROFILE)),
    option("-fprofile-dir=", Joined, Local(PROFILE)),
    option("-fprofile-correction", Flag, Local(PROFILE)),
    option("-fprofile-abs-path", Flag, Local(PROFILE)),
    option("-fprofile-info-section", Joined, Local(PROFILE)),
    option("-fauto-profile", Joined, Local(PROFILE)),
    option("-fprofile-instr-generate", Joined, Local(PROFILE)),
    option("-fprofile-instr-use", Joined, Local(PROFILE)),
    option("-fprofile-sample-use=", Joined, Local(PROFILE)),
    option("-fprofile-remapping-file=", Joined, Local(PROFILE)),
    option("-fcs-profile-generate", Joined, Local(PROFILE)),
    option("-fcoverage-mapping", Flag, Local(PROFILE)),
    option("-fprofile-list=", Joined, Local(PROFILE)),
    // Options that name files or programs of this machine.
    option("-B", JoinedOrSeparate, Local(LOCAL_FILE)),
    option("--prefix", EqualsOrSeparate, Local(LOCAL_FILE)),
    option("-specs=", Joined, Local(LOCAL_FILE)),
    option("-specs", Separate, Local(LOCAL_FILE)),
    option("--specs", EqualsOrSeparate, Local(LOCAL_FILE)),
    option("-wrapper", Separate, Local(LOCAL_FILE)),
    option("-fplugin=", Joined, Local(LOCAL_FILE)),
    option("-fplugin-arg-", Joined, Local(LOCAL_FILE)),
    option("-fpass-plugin=", Joined, Local(LOCAL_FILE)),
    option("-iplugindir=", Joined, Local(LOCAL_FILE)),
    option("-fsanitize-ignorelist=", Joined, Local(LOCAL_FILE)),
    option("-fsanitize-blacklist=", Joined, Local(LOCAL_FILE)),
    option("-fsanitize-coverage-allowlist=", Joined, Local(LOCAL_FILE)),
    option("-fsanitize-coverage-ignorelist=", Joined, Local(LOCAL_FILE)),
    option("-fxray-always-instrument=", Joined, Local(LOCAL_FILE)),
    option("-fxray-never-instrument=", Joined, Local(LOCAL_FILE)),
    option("-fxray-attr-list=", Joined, Local(LOCAL_FILE)),
    option("-ivfsoverlay", JoinedOrSeparate, Local(LOCAL_FILE)),
    option("-working-directory", JoinedOrSeparate, Local("changes the directory the compiler works in")),
    option("-fmodules", Joined, Local(MODULES)),
    option("-fmodule-file=", Joined, Local(MODULES)),
    option("-fmodule-map-file=", Joined, Local(MODULES)),
    option("-fmodule-mapper=", Joined, Local(MODULES)),
    option("-fprebuilt-module-path=", Joined, Local(MODULES)),
    option("-fcxx-modules", Flag, Local(MODULES)),
    option("-fimplicit-modules", Flag, Local(MODULES)),
    option("-flto", Joined, Local(LINK_TIME_OPTIMISATION)),
    option("-fno-lto", Flag, Compile),
    // Options that depend on the machine that compiles.
    option("-march=native", Flag, Native),
    option("-mtune=native", Flag, Native),
    option("-mcpu=native", Flag, Native),
    // Options of the compiler proper with a separate value.
    option("--param", EqualsOrSeparate, Compile),
    option("-emit-llvm", Flag, Compile),
    option("-target", Separate, Compile),
    option("-mllvm", Separate, Compile),
    option("-Xclang", Separate, ClangFrontend),
    option("-Wa,", Joined, Assembler),
    option("-Xassembler", Separate, Assembler),
    // Link-only options.
    option("-l", JoinedOrSeparate, Linker),
    option("-L", JoinedOrSeparate, Linker),
    option("--library-directory", EqualsOrSeparate, Linker),
    option("-Wl,", Joined, Linker),
    option("-Xlinker", Separate, Linker),
    option("-T", JoinedOrSeparate, Linker),
    option("-u", JoinedOrSeparate, Linker),
    option("-z", Separate, Linker),
    option("-e", JoinedOrSeparate, Linker),
    option("--entry", EqualsOrSeparate, Linker),
    option("-shared", Flag, Linker),
    option("-static", Flag, Linker),
    option("-static-pie", Flag, Linker),
    option("-pie", Flag, Linker),
    option("-no-pie", Flag, Linker),
    option("-rdynamic", Flag, Linker),
    option("-s", Flag, Linker),
    option("-r", Flag, Linker),
    option("-symbolic", Flag, Linker),
    option("-nostdlib", Flag, Linker),
    option("-nostdlib++", Flag, Linker),
    option("-nostartfiles", Flag, Linker),
    option("-nodefaultlibs", Flag, Linker),
    option("-nolibc", Flag, Linker),
    option("-static-libgcc", Flag, Linker),
    option("-shared-libgcc", Flag, Linker),
    option("-static-libstdc++", Flag, Linker),
    option("-static-libasan", Flag, Linker),
    option("-fuse-ld=", Joined, Linker),
    option("--ld-path=", Joined, Linker),
];

/// A match of a command-line word against the table.
#[derive(Debug, Clone, Copy)]
pub struct Match {
    pub spec: &'static OptionSpec,
    /// Whether the value is the next word rather than part of this one.
    pub value_in_next_word: bool,
}

/// Finds the table entry for an option word (one starting with `-`). The
/// longest matching name wins, so `-MD` is not read as `-M` with a value and
/// `-dumpbase` is not read as the dump letters of `-d`.
pub fn lookup(word: &[u8]) -> Option<Match> {
    let mut best: Option<Match> = None;
    for spec in OPTIONS {
        let Some(value_in_next_word) = matches(spec, word) else {
            continue;
        };
        let longer = best.is_none_or(|b| spec.name.len() > b.spec.name.len());
        if longer {
            best = Some(Match { spec, value_in_next_word });
        }
    }
    best
}

/// Returns whether the word matches the entry and, if so, whether the value
/// is in the next word.
fn matches(spec: &OptionSpec, word: &[u8]) -> Option<bool> {
    let name = spec.name.as_bytes();
    match spec.form {
        Flag => (word == name).then_some(false),
        Separate => (word == name).then_some(true),
        Joined => word.starts_with(name).then_some(false),
        JoinedOrSeparate => word.starts_with(name).then_some(word.len() == name.len()),
        EqualsOrSeparate => {
            if word == name {
                Some(true)
            } else if word.starts_with(name) && word.get(name.len()) == Some(&b'=') {
                Some(false)
            } else {
                None
            }
        }
    }
}

/// Returns the value of a matched option whose value is in the same word.
pub fn joined_value<'a>(spec: &OptionSpec, word: &'a [u8]) -> &'a [u8] {
    let rest = &word[spec.name.len()..];
    match spec.form {
        EqualsOrSeparate => rest.strip_prefix(b"=").unwrap_or(rest),
        _ => rest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_unique() {
        for (i, a) in OPTIONS.iter().enumerate() {
            for b in &OPTIONS[i + 1..] {
                assert!(a.name != b.name, "option {} is listed twice", a.name);
            }
        }
    }

    #[test]
    fn table_names_start_with_dash() {
        for spec in OPTIONS {
            assert!(spec.name.starts_with('-'), "option {} does not start with '-'", spec.name);
            assert!(spec.name.is_ascii(), "option {} is not ASCII", spec.name);
        }
    }

    #[test]
    fn equals_forms_are_named_without_equals() {
        for spec in OPTIONS.iter().filter(|s| s.form == EqualsOrSeparate) {
            assert!(!spec.name.ends_with('='), "{} must be named without '='", spec.name);
        }
    }

    #[test]
    fn joined_options_are_reachable() {
        // A Joined entry whose name is a prefix of a longer entry must still
        // match words that only it covers.
        for spec in OPTIONS.iter().filter(|s| s.form == Joined) {
            let word = format!("{}zz", spec.name);
            let found = lookup(word.as_bytes()).expect("a Joined entry matches its own prefix");
            assert_eq!(found.spec.name, spec.name, "word {word}");
        }
    }

    #[test]
    fn longest_name_wins() {
        assert_eq!(lookup(b"-MD").unwrap().spec.name, "-MD");
        assert_eq!(lookup(b"-MMD").unwrap().spec.name, "-MMD");
        assert_eq!(lookup(b"-MFdeps.d").unwrap().spec.name, "-MF");
        assert_eq!(lookup(b"-dumpbase").unwrap().spec.name, "-dumpbase");
        assert_eq!(lookup(b"-dumpbase-ext").unwrap().spec.name, "-dumpbase-ext");
        assert_eq!(lookup(b"-dr").unwrap().spec.name, "-d");
        assert_eq!(lookup(b"-dA").unwrap().spec.name, "-dA");
        assert_eq!(lookup(b"-Wl,-z,now").unwrap().spec.name, "-Wl,");
        assert_eq!(lookup(b"-Wp,-MD,x.d").unwrap().spec.name, "-Wp,");
        assert_eq!(lookup(b"-isystem/usr/x").unwrap().spec.name, "-isystem");
        assert_eq!(lookup(b"-isystem-after").unwrap().spec.name, "-isystem-after");
        assert_eq!(lookup(b"-include").unwrap().spec.name, "-include");
        assert_eq!(lookup(b"-include-pch").unwrap().spec.name, "-include-pch");
        assert_eq!(lookup(b"-gsplit-dwarf=single").unwrap().spec.name, "-gsplit-dwarf");
        assert_eq!(lookup(b"-I-").unwrap().spec.name, "-I-");
        assert_eq!(lookup(b"-Iinc").unwrap().spec.name, "-I");
    }

    #[test]
    fn value_position() {
        assert!(lookup(b"-o").unwrap().value_in_next_word);
        assert!(!lookup(b"-oout.o").unwrap().value_in_next_word);
        assert!(lookup(b"--sysroot").unwrap().value_in_next_word);
        assert!(!lookup(b"--sysroot=/x").unwrap().value_in_next_word);
        assert!(lookup(b"--sysrootx").is_none());
        assert!(lookup(b"-Xclang").unwrap().value_in_next_word);
        assert!(lookup(b"-Xclangx").is_none());
        let sysroot = lookup(b"--sysroot=/x").unwrap().spec;
        assert_eq!(joined_value(sysroot, b"--sysroot=/x"), b"/x");
        let include = lookup(b"-Idir").unwrap().spec;
        assert_eq!(joined_value(include, b"-Idir"), b"dir");
    }

    #[test]
    fn unknown_options_are_not_matched() {
        assert!(lookup(b"-O2").is_none());
        assert!(lookup(b"-Wall").is_none());
        assert!(lookup(b"-fPIC").is_none());
        assert!(lookup(b"-march=skylake").is_none());
        assert!(lookup(b"-g").is_none());
    }
}
