//! Compiler command-line analysis: is this a single compile that can run on
//! a server, and if so, what runs locally (the preprocessor) and what the
//! server receives.
//!
//! Every option is looked up once in the option table ([`table`]), whose
//! class decides where it goes. The result reproduces what a local compile
//! writes: the object or assembler file, the dependency file (written by the
//! local preprocessor, with gcc's name and target), and the debug-info names
//! (taken from the preprocessed text, or given to clang explicitly). Options
//! that would make the compiler write other files, or read files only this
//! machine has, make the job local.

mod directives_only;
mod language;
mod native;
mod response;
mod scan;
mod stock_server;
mod table;
mod toolchain;

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

pub use language::Language;
pub use directives_only::{check_file as check_directives_only_output, parse_header_list};
pub use native::resolve_gcc as resolve_gcc_native;
pub use toolchain::{detect as detect_family, working_directory};
use scan::{Token, TokenKind};
use table::{Action, Class, Dependency};

/// The compiler family, which decides how the source is preprocessed and
/// which options the server needs in addition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Gcc,
    Clang,
}

/// Replaces machine-dependent options (`-march=native`) with the options
/// they stand for on this machine, or explains why it cannot.
pub type NativeResolver<'a> = dyn Fn(&[OsString]) -> Result<Vec<OsString>, String> + 'a;

/// Facts about the compiler and the machine that the analysis needs.
pub struct Toolchain<'a> {
    pub family: Family,
    /// True for `g++`, `clang++` and their kind, which compile `.c` files as C++.
    pub cplusplus_driver: bool,
    /// The working directory as the compiler would name it, which the server
    /// must be given for clang's `DW_AT_comp_dir`.
    pub working_directory: &'a OsStr,
    /// Replaces `-march=native` and the like with what they mean on this machine.
    pub resolve_native: &'a NativeResolver<'a>,
}

/// The destination of the compile's main output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    File(OsString),
    /// `-o -`: the compiler writes to standard output.
    Stdout,
}

/// A compile that can be distributed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteJob {
    /// The source file as written on the command line.
    pub input: OsString,
    /// The object or assembler file, as written or implied.
    pub output: Output,
    /// Extension of the preprocessed source (`i`, `ii`, `mi`, `mii`).
    pub preprocessed_ext: &'static str,
    /// True when the input is already preprocessed, so no local run is needed.
    pub input_is_preprocessed: bool,
    /// Arguments for the local preprocessor run (after the compiler name).
    pub cpp_args: Vec<OsString>,
    /// Arguments for the server (after the compiler name).
    pub server_args: Vec<OsString>,
    /// True when the preprocessed text is gcc's directives-only output, in
    /// which the server expands the macros; it must pass
    /// [`check_directives_only_output`] before it is sent.
    pub server_expands_macros: bool,
    /// True when the preprocessor runs with `-H`, added for the check of its
    /// output, so that its standard error lists the headers it read (see
    /// [`parse_header_list`]).
    pub lists_headers: bool,
    /// True when the server's warnings read exactly as a local compile's:
    /// gcc with directives-only text and without source excerpts
    /// (-fno-diagnostics-show-caret), since excerpts need the source files.
    pub server_warnings_match: bool,
}

/// The outcome of the analysis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// A local compile with the unchanged arguments, for the reason given.
    Local(String),
    Remote(RemoteJob),
}

/// Returns true for a file name that the compiler treats as a C-family,
/// assembler or preprocessed source.
pub fn is_source_name(name: &OsStr) -> bool {
    !matches!(Language::from_file_name(name, false), Language::Other | Language::Header)
}

/// Decides whether `args` (the words after the compiler name) describe one
/// distributable compile.
pub fn analyse(args: &[OsString], toolchain: &Toolchain) -> Decision {
    let dialect = match toolchain.family {
        Family::Gcc => response::Dialect::Gnu,
        Family::Clang => response::Dialect::Llvm,
    };
    let expanded = match response::expand(args, dialect) {
        Ok(expanded) => expanded,
        Err(reason) => return Decision::Local(reason),
    };
    let args = expanded.as_deref().unwrap_or(args);
    let tokens = match scan::scan(args) {
        Ok(tokens) => tokens,
        Err(reason) => return Decision::Local(reason),
    };
    match Analysis::new(args, &tokens, toolchain).and_then(|analysis| analysis.into_job()) {
        Ok(job) => Decision::Remote(job),
        Err(reason) => Decision::Local(reason),
    }
}

/// The facts gathered from one scan of the tokens.
struct Analysis<'a> {
    args: &'a [OsString],
    tokens: &'a [Token],
    toolchain: &'a Toolchain<'a>,
    action: Option<Action>,
    /// Index of the input's token and its language.
    input: Option<(usize, Language)>,
    output: Option<OsString>,
    /// Driver-level `-MD`/`-MMD`, `-MF`, `-MT`/`-MQ`.
    writes_dependencies: bool,
    names_dependency_file: bool,
    names_dependency_target: bool,
    /// A `-M` option handed over with `-Wp,` or `-Xpreprocessor`.
    passes_dependency_option: bool,
    native_options: Vec<OsString>,
    debug_info: bool,
    /// gcc: -g records the switches in DW_AT_producer (the default);
    /// -gno-record-gcc-switches turns that off.
    producer_lists_switches: bool,
    /// gcc -frecord-gcc-switches, or clang's -grecord-command-line and its
    /// aliases: the object records the compiler's command line.
    records_command_line: bool,
    no_working_directory: bool,
    sets_compilation_directory: bool,
    /// A -fsanitize= option: the checks record source columns.
    sanitizes: bool,
}

impl<'a> Analysis<'a> {
    fn new(args: &'a [OsString], tokens: &'a [Token], toolchain: &'a Toolchain<'a>) -> Result<Analysis<'a>, String> {
        let mut analysis = Analysis {
            args,
            tokens,
            toolchain,
            action: None,
            input: None,
            output: None,
            writes_dependencies: false,
            names_dependency_file: false,
            names_dependency_target: false,
            passes_dependency_option: false,
            native_options: Vec::new(),
            debug_info: false,
            producer_lists_switches: true,
            records_command_line: false,
            no_working_directory: false,
            sets_compilation_directory: false,
            sanitizes: false,
        };
        let mut language: Option<Language> = None;
        for (index, token) in tokens.iter().enumerate() {
            let word = token.word(args);
            match &token.kind {
                TokenKind::Operand => analysis.note_operand(index, word, language)?,
                TokenKind::Unknown => analysis.note_unknown(word.as_bytes()),
                TokenKind::Known { spec, value } => match spec.class {
                    Class::Local(reason) => return Err(format!("{}: {reason}", display_words(token.words(args)))),
                    Class::Action(action) => {
                        // gcc stops at the earliest step requested: -S wins over -c.
                        if analysis.action != Some(Action::Assembly) {
                            analysis.action = Some(action);
                        }
                    }
                    Class::Output => {
                        if analysis.output.is_some() {
                            return Err(format!("more than one output ({})", display_words(token.words(args))));
                        }
                        analysis.output = Some(value.clone());
                    }
                    Class::Language => language = Language::from_x_name(value),
                    Class::Dependency(Dependency::Write) => analysis.writes_dependencies = true,
                    Class::Dependency(Dependency::File) => {
                        // The preprocessor's standard output is the preprocessed
                        // source, so dependencies written there would corrupt it.
                        if writes_to_stdout(value) {
                            return Err(format!(
                                "dependency output to standard output ({})",
                                display_words(token.words(args))
                            ));
                        }
                        analysis.names_dependency_file = true;
                    }
                    Class::Dependency(Dependency::Target) => analysis.names_dependency_target = true,
                    Class::Dependency(Dependency::Modifier) => {}
                    Class::PreprocessorPassthrough => analysis.note_preprocessor_options(word, value)?,
                    Class::Preprocessor => {
                        if spec.name == "-Xpreprocessor" && value.as_bytes().starts_with(b"-M") {
                            analysis.note_preprocessor_options(word, value)?;
                        }
                        if spec.name == "-fno-working-directory" {
                            analysis.no_working_directory = true;
                        } else if spec.name == "-fworking-directory" {
                            analysis.no_working_directory = false;
                        }
                    }
                    Class::Assembler => check_assembler_options(word, value)?,
                    Class::ClangFrontend => check_clang_frontend_option(value)?,
                    Class::OptimizationReport => {
                        if value.as_bytes().contains(&b'=') {
                            return Err(format!("{}: writes the optimization report to a file", word.to_string_lossy()));
                        }
                    }
                    Class::Native => analysis.native_options.push(word.to_owned()),
                    Class::Compile | Class::Linker => {}
                },
            }
        }
        Ok(analysis)
    }

    fn note_operand(&mut self, index: usize, word: &OsStr, language: Option<Language>) -> Result<(), String> {
        if word == "-" {
            return Err("source read from standard input (-)".into());
        }
        let language = language.unwrap_or_else(|| Language::from_file_name(word, self.toolchain.cplusplus_driver));
        let shown = word.to_string_lossy();
        match language {
            Language::Assembler | Language::AssemblerWithCpp => {
                return Err(format!(
                    "{shown}: assembler source ({}) is assembled locally; stock distccd accepts only C-family sources",
                    language.x_name()
                ));
            }
            Language::Header => return Err(format!("{shown}: a header compiles to a precompiled header")),
            Language::ObjectiveC
            | Language::ObjectiveCxx
            | Language::PreprocessedObjectiveC
            | Language::PreprocessedObjectiveCxx => {
                // The GNU Objective-C runtime data name the compiled file by
                // its path, which on the server is a temporary file.
                return Err(format!("{shown}: Objective-C objects record the path of the compiled file"));
            }
            Language::Other => {
                return Err(format!("{shown}: not a C, C++ or Objective-C source (a linker input or another language)"));
            }
            _ => {}
        }
        if let Some((previous, _)) = self.input {
            let first = self.tokens[previous].word(self.args).to_string_lossy();
            return Err(format!("more than one input ({first} and {shown})"));
        }
        self.input = Some((index, language));
        Ok(())
    }

    fn note_unknown(&mut self, word: &[u8]) {
        if let Some(enabled) = debug_level(word) {
            self.debug_info = enabled;
        }
        let clang = self.toolchain.family == Family::Clang;
        match word {
            b"-grecord-gcc-switches" if !clang => self.producer_lists_switches = true,
            b"-gno-record-gcc-switches" if !clang => self.producer_lists_switches = false,
            b"-frecord-gcc-switches" => self.records_command_line = true,
            b"-fno-record-gcc-switches" => self.records_command_line = false,
            b"-grecord-gcc-switches" | b"-grecord-command-line" | b"-frecord-command-line" if clang => {
                self.records_command_line = true
            }
            b"-gno-record-gcc-switches" | b"-gno-record-command-line" | b"-fno-record-command-line" if clang => {
                self.records_command_line = false
            }
            _ => {}
        }
        if word.starts_with(b"-fdebug-compilation-dir") || word.starts_with(b"-ffile-compilation-dir") {
            self.sets_compilation_directory = true;
        }
        if word.starts_with(b"-fsanitize=") {
            self.sanitizes = true;
        }
    }

    /// Checks the options given to the preprocessor directly (`-Wp,` or
    /// `-Xpreprocessor`). Dependency options there are applied by the
    /// preprocessor as written, the same in a compile and in a `-E` run.
    fn note_preprocessor_options(&mut self, word: &OsStr, value: &OsStr) -> Result<(), String> {
        let pieces: Vec<&[u8]> = value.as_bytes().split(|&b| b == b',').collect();
        let clang_wp = self.toolchain.family == Family::Clang && word.as_bytes().starts_with(b"-Wp,");
        if clang_wp && pieces.iter().any(|p| p.starts_with(b"-M")) {
            // clang's driver reads exactly -Wp,-MD,FILE and -Wp,-MMD,FILE
            // itself, as -MD -MF FILE, and then targets the output like -MD
            // does. Other dependency options in -Wp it treats in ways that
            // differ between a compile and a -E run.
            if pieces.len() == 2 && matches!(pieces[0], b"-MD" | b"-MMD") {
                self.writes_dependencies = true;
                self.names_dependency_file = true;
                return Ok(());
            }
            return Err(format!(
                "{}: clang handles dependency options in -Wp differently when it only preprocesses",
                word.to_string_lossy()
            ));
        }
        for piece in pieces {
            if !piece.starts_with(b"-M") {
                continue;
            }
            if matches!(piece, b"-M" | b"-MM") {
                return Err(format!(
                    "{}: dependency generation only replaces the compile",
                    word.to_string_lossy()
                ));
            }
            self.passes_dependency_option = true;
        }
        Ok(())
    }

    /// Builds the job, or explains why the compile stays local.
    fn into_job(self) -> Result<RemoteJob, String> {
        let Some(action) = self.action else {
            return Err("no -c or -S: not a compile to an object or assembler file".into());
        };
        let Some((input_token, language)) = self.input else {
            return Err("no source file".into());
        };
        let input = self.tokens[input_token].word(self.args).to_owned();
        let input_name = Path::new(&input).file_name().map(OsStr::as_bytes).unwrap_or_default();
        if input_name.starts_with(b"conftest.") || input_name.starts_with(b"tmp.conftest.") {
            return Err("configure test (conftest.*): faster locally".into());
        }
        let output = match &self.output {
            Some(name) if name.is_empty() => return Err("empty output name (-o '')".into()),
            Some(name) if name == "-" && action == Action::Object => {
                return Err("object file written to standard output (-o -)".into());
            }
            Some(name) if name == "-" => Output::Stdout,
            Some(name) => Output::File(name.clone()),
            None => Output::File(implied_output(&input, action)),
        };
        self.check_object_records(language)?;
        if self.sanitizes && !self.uses_directives_only() && !language.is_preprocessed() {
            // A fully expanded text puts tokens in other columns (clang also
            // collapses white space), and sanitizer checks record columns.
            return Err("-fsanitize= records source columns, which fully preprocessed text changes".into());
        }
        let native_expansion = self.resolve_native()?;
        if self.writes_dependencies && self.passes_dependency_option {
            return Err("dependency options both for the driver and through -Wp or -Xpreprocessor".into());
        }

        let preprocessed = language.preprocessed().expect("inputs are C-family sources");
        let cpp_args = if language.is_preprocessed() { Vec::new() } else { self.preprocessor_args(&output) };
        let (server_args, server_input, server_output) =
            self.server_args(preprocessed, language.is_preprocessed(), &input, action, &native_expansion);
        stock_server::check(&server_args, &server_input, &server_output)?;

        Ok(RemoteJob {
            input,
            output,
            preprocessed_ext: preprocessed.preprocessed_extension(),
            input_is_preprocessed: language.is_preprocessed(),
            cpp_args,
            server_args,
            server_expands_macros: self.uses_directives_only() && !language.is_preprocessed(),
            lists_headers: self.adds_header_list() && !language.is_preprocessed(),
            server_warnings_match: self.uses_directives_only() && !language.is_preprocessed() && self.hides_source_excerpts(),
        })
    }

    fn has_word(&self, word: &str) -> bool {
        self.args.iter().any(|a| a == word)
    }

    /// True when the last of -f[no-]diagnostics-show-caret turns excerpts off,
    /// and no option requests fix-it output, which also needs the source.
    fn hides_source_excerpts(&self) -> bool {
        let wants_fixits = self
            .args
            .iter()
            .any(|a| a == "-fdiagnostics-generate-patch" || a == "-fdiagnostics-parseable-fixits");
        !wants_fixits
            && self
                .args
                .iter()
                .rev()
                .find(|a| *a == "-fdiagnostics-show-caret" || *a == "-fno-diagnostics-show-caret")
                .is_some_and(|a| a == "-fno-diagnostics-show-caret")
    }

    /// True when gcc preprocesses with -fdirectives-only (see [`DIRECTIVES_ONLY`]).
    fn uses_directives_only(&self) -> bool {
        self.toolchain.family == Family::Gcc && !DROPS_PRAGMAS_IN_DIRECTIVES_ONLY.iter().any(|o| self.has_word(o))
    }

    /// True when the preprocessor gets `-H` from us: gcc's directives-only
    /// output is checked with the headers it lists. A user's own `-H` or
    /// `--trace-includes`, also through -Wp or -Xpreprocessor, is left
    /// alone, and the output is then searched for the headers instead.
    fn adds_header_list(&self) -> bool {
        let user_lists_headers = self.args.iter().enumerate().any(|(i, arg)| {
            let bytes = arg.as_bytes();
            let lists = |word: &[u8]| word == b"-H" || word == b"--trace-includes";
            lists(bytes)
                || (bytes.starts_with(b"-Wp,") && bytes[4..].split(|&b| b == b',').any(lists))
                || (arg == "-Xpreprocessor" && self.args.get(i + 1).is_some_and(|next| lists(next.as_bytes())))
        });
        self.uses_directives_only() && !user_lists_headers
    }

    /// Makes sure the names and directories an object records are those of
    /// a local compile.
    fn check_object_records(&self, language: Language) -> Result<(), String> {
        if self.records_command_line {
            // clang records its internal command line, which names the
            // server's temporary files. gcc records the options of the
            // compiler proper, which usually include -fdirectives-only.
            return Err("the object would record the server's command line (-frecord-gcc-switches or -grecord-command-line)".into());
        }
        if self.toolchain.family == Family::Clang {
            return Ok(());
        }
        if !self.debug_info {
            return Ok(());
        }
        // gcc takes DW_AT_comp_dir from the working-directory line that its
        // preprocessor writes with -g; without that line the server would
        // name its own directory.
        if self.no_working_directory {
            return Err("-fno-working-directory with debug information: gcc would record the server's directory".into());
        }
        if language.is_preprocessed() {
            return Err(
                "preprocessed input with debug information: gcc would record the server's working directory".into(),
            );
        }
        Ok(())
    }

    /// Replaces the native options, or explains why the job stays local.
    fn resolve_native(&self) -> Result<Vec<OsString>, String> {
        if self.native_options.is_empty() {
            return Ok(Vec::new());
        }
        let shown = display_words(&self.native_options);
        if self.toolchain.family == Family::Clang {
            return Err(format!("{shown}: clang resolves it only for its own compiles"));
        }
        if self.debug_info && self.producer_lists_switches {
            // The resolved options would be recorded in DW_AT_producer in the
            // order the server's driver sorts them, which differs from the
            // order of a local compile.
            return Err(format!("{shown} with recorded compiler switches (-g): the object would differ"));
        }
        (self.toolchain.resolve_native)(&self.native_options)
            .map_err(|e| format!("{shown} could not be resolved on this machine: {e}"))
    }

    /// Builds the preprocessor command: the user's words with `-c`/`-S`
    /// turned into `-E` and `-o` removed, plus what makes the dependency file
    /// and the preprocessed text match a local compile.
    fn preprocessor_args(&self, output: &Output) -> Vec<OsString> {
        // The added options go first: none of them depends on its position,
        // and the user's words keep their order after them.
        let mut result = Vec::with_capacity(self.args.len() + 5);
        if self.uses_directives_only() {
            if !self.has_word(DIRECTIVES_ONLY) {
                result.push(OsString::from(DIRECTIVES_ONLY));
            }
            if self.adds_header_list() {
                result.push(OsString::from("-H"));
            }
        } else if self.toolchain.family == Family::Gcc {
            // gcc honours comments such as /* fall through */ for
            // -Wimplicit-fallthrough; -C keeps them in the expanded text.
            result.push(OsString::from("-C"));
        }
        if self.writes_dependencies && self.output.is_some() {
            // With -o, gcc's driver names the dependency file after the
            // output and quotes the output as its target; a -E run without
            // -o would use the source's name for both.
            let output_name = match output {
                Output::File(name) => name.clone(),
                Output::Stdout => OsString::from("-"),
            };
            if !self.names_dependency_file {
                result.push(OsString::from("-MF"));
                result.push(replace_extension(&output_name, "d"));
            }
            if !self.names_dependency_target {
                result.push(OsString::from("-MQ"));
                result.push(output_name);
            }
        }

        for token in self.tokens {
            match &token.kind {
                TokenKind::Known { spec, .. } => match spec.class {
                    Class::Action(_) => result.push(OsString::from("-E")),
                    Class::Output => {}
                    _ => result.extend_from_slice(token.words(self.args)),
                },
                TokenKind::Unknown | TokenKind::Operand => result.extend_from_slice(token.words(self.args)),
            }
        }
        result
    }

    /// The server's arguments, the source name it will see and the output
    /// name it will see.
    fn server_args(
        &self,
        preprocessed: Language,
        preprocessed_input: bool,
        input: &OsStr,
        action: Action,
        native_expansion: &[OsString],
    ) -> (Vec<OsString>, OsString, OsString) {
        // The resolved native options go first, where gcc's driver puts them
        // for the compiler proper, so that later -m options still win.
        let mut result: Vec<OsString> = native_expansion.to_vec();
        for token in self.tokens {
            let sent = match &token.kind {
                TokenKind::Unknown => true,
                TokenKind::Operand => false,
                TokenKind::Known { spec, .. } => matches!(
                    spec.class,
                    Class::Compile | Class::Assembler | Class::ClangFrontend | Class::OptimizationReport
                ),
            };
            if sent {
                result.extend_from_slice(token.words(self.args));
            }
        }
        if self.uses_directives_only() && !self.has_word(DIRECTIVES_ONLY) && !preprocessed_input {
            result.push(OsString::from(DIRECTIVES_ONLY));
        }

        if self.toolchain.family == Family::Clang {
            // Options that only concern preprocessing or linking are unused
            // for preprocessed input, and clang would warn about them there.
            result.push(OsString::from("-Qunused-arguments"));
            if self.debug_info && !self.sets_compilation_directory {
                let mut option = OsString::from("-fdebug-compilation-dir=");
                option.push(self.toolchain.working_directory);
                result.push(option);
            }
        }

        let server_input = server_input_name(input, preprocessed);
        let (action_word, output_name) = match action {
            Action::Object => ("-c", "distcc-output.o"),
            Action::Assembly => ("-S", "distcc-output.s"),
        };
        let server_output = OsString::from(output_name);
        result.push(OsString::from("-x"));
        result.push(OsString::from(preprocessed.x_name()));
        result.push(server_input.clone());
        result.push(OsString::from(action_word));
        result.push(OsString::from("-o"));
        result.push(server_output.clone());
        (result, server_input, server_output)
    }
}

/// How gcc preprocesses for the server: include files, conditionals and
/// macro definitions are handled locally, and macros are expanded by the
/// server. A fully expanded text would move every token after a longer
/// expansion to another column, which changes the column numbers of the
/// debug line table, of -fsanitize=undefined reports and of
/// `__builtin_COLUMN`. The server needs the same option to read such text.
/// gcc then lists it in DW_AT_producer when it records its switches (-g),
/// which is the one difference from a local object.
const DIRECTIVES_ONLY: &str = "-fdirectives-only";

/// Options after which gcc 12 leaves `#pragma omp` or `#pragma acc` lines
/// out of directives-only output; such compiles are preprocessed fully.
const DROPS_PRAGMAS_IN_DIRECTIVES_ONLY: &[&str] = &["-fopenmp", "-fopenmp-simd", "-fopenacc"];

/// Returns the source name sent to the server: the name as written, as
/// stock distcc sends it (distccd logs it), unless distccd would not take
/// it for a source. The server replaces it with the name of its temporary
/// file and derives that file's extension from it. The language is given
/// with -x, so only the extension matters.
fn server_input_name(input: &OsStr, preprocessed: Language) -> OsString {
    if language::is_stock_source_name(input) && !input.as_bytes().starts_with(b"-") {
        return input.to_owned();
    }
    OsString::from(format!("distcc-input.{}", preprocessed.preprocessed_extension()))
}

/// Returns whether the word turns debug information on (`Some(true)`), off
/// (`Some(false)`), or leaves it as it is (`None`).
fn debug_level(word: &[u8]) -> Option<bool> {
    let rest = word.strip_prefix(b"-g")?;
    match rest {
        b"0" | b"gdb0" => Some(false),
        b"" | b"1" | b"2" | b"3" | b"gdb" | b"gdb1" | b"gdb2" | b"gdb3" | b"line-tables-only" | b"line-directives-only"
        | b"mlt" | b"full" | b"used" | b"lldb" | b"sce" | b"dbx" | b"btf" | b"ctf" => Some(true),
        _ if rest.starts_with(b"dwarf") || rest.starts_with(b"stabs") || rest.starts_with(b"xcoff") => Some(true),
        _ => None,
    }
}

fn check_assembler_options(word: &OsStr, value: &OsStr) -> Result<(), String> {
    for piece in value.as_bytes().split(|&b| b == b',') {
        let listing = piece.starts_with(b"-a") && !piece.starts_with(b"-am");
        if listing || piece.starts_with(b"--MD") || piece == b"-MD" {
            return Err(format!(
                "{}: the assembler would write a listing or dependency file",
                word.to_string_lossy()
            ));
        }
    }
    Ok(())
}

fn check_clang_frontend_option(value: &OsStr) -> Result<(), String> {
    let value = value.as_bytes();
    if matches!(value, b"-load" | b"-add-plugin" | b"-plugin") || value.starts_with(b"-plugin-arg-") {
        return Err(format!(
            "-Xclang {}: loads a plugin of this machine",
            String::from_utf8_lossy(value)
        ));
    }
    Ok(())
}

fn display_words(words: &[OsString]) -> String {
    words.iter().map(|w| w.to_string_lossy()).collect::<Vec<_>>().join(" ")
}

/// Returns the output name gcc picks without `-o`: the source's base name
/// with `.o` (or `.s` for `-S`), in the current directory.
fn implied_output(input: &OsStr, action: Action) -> OsString {
    let name = Path::new(input).file_name().unwrap_or(input);
    let extension = match action {
        Action::Object => "o",
        Action::Assembly => "s",
    };
    replace_extension(name, extension)
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

#[cfg(test)]
mod tests;

/// Returns true for a file name that refers to the process's standard output.
fn writes_to_stdout(name: &OsStr) -> bool {
    matches!(name.as_bytes(), b"-" | b"/dev/stdout" | b"/dev/fd/1" | b"/proc/self/fd/1")
}
