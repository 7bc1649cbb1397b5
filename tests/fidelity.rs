//! Compile fidelity: each command line of the table runs once through
//! distcc-rs against stock distccd and once with the plain compiler, in two
//! sibling directories whose names have the same length. The exit status,
//! standard output, standard error and every file in the directory must
//! match, after the name of the one directory is replaced by the other's.
//! Objects that clang builds with debug information are compared by their
//! debug-info names and by their bytes without debug sections, because
//! clang records MD5 sums of the source files only when it reads them
//! itself. Each case also states where the job must run: remote, local, or
//! remote and then again locally for the compiler's own diagnostics. That
//! is read from distcc-rs's log, and the table of results is printed at the end.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::bed;

/// Where a job ran, as distcc-rs's log shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Where {
    /// Compiled on the server; its result was used.
    Remote,
    /// Compiled locally without asking a server.
    Local,
    /// Compiled on the server, which printed diagnostics or failed, then
    /// compiled locally so that the compiler's own diagnostics appear.
    Redone,
}

/// How the command is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Invoke {
    /// `distcc-rs COMPILER ARGS`.
    Explicit,
    /// `COMPILER ARGS` with a masquerade directory first on PATH.
    Masquerade,
    /// `ccache COMPILER ARGS` with `CCACHE_PREFIX=distcc-rs`.
    Ccache,
}

/// Extra checks of one case, run on the distcc-rs directory after the
/// comparison; they return a description of what is wrong.
type Check = fn(&Path, &RunResult) -> Result<(), String>;

#[derive(Clone)]
struct Case {
    compiler: &'static str,
    args: Vec<String>,
    expect: Where,
    invoke: Invoke,
    auth: bool,
    env: Vec<(&'static str, &'static str)>,
    stdin: Option<&'static str>,
    compare_stderr: bool,
    /// The compiler writes time stamps or random names into some files, so
    /// only their names are compared.
    nondeterministic: bool,
    checks: Vec<Check>,
}

impl Case {
    fn new(compiler: &'static str, args: &str, expect: Where) -> Case {
        Case {
            compiler,
            args: args.split_whitespace().map(String::from).collect(),
            expect,
            invoke: Invoke::Explicit,
            auth: false,
            env: Vec::new(),
            stdin: None,
            compare_stderr: true,
            nondeterministic: false,
            checks: Vec::new(),
        }
    }

    /// Builds a case whose words may contain spaces.
    fn words(compiler: &'static str, args: &[&str], expect: Where) -> Case {
        let mut case = Case::new(compiler, "", expect);
        case.args = args.iter().map(|a| a.to_string()).collect();
        case
    }

    fn env(mut self, name: &'static str, value: &'static str) -> Case {
        self.env.push((name, value));
        self
    }

    fn invoke(mut self, invoke: Invoke) -> Case {
        self.invoke = invoke;
        self
    }

    fn auth(mut self) -> Case {
        self.auth = true;
        self
    }

    fn stdin(mut self, text: &'static str) -> Case {
        self.stdin = Some(text);
        self
    }

    fn check(mut self, check: Check) -> Case {
        self.checks.push(check);
        self
    }

    fn nondeterministic(mut self) -> Case {
        self.nondeterministic = true;
        self
    }

    /// For a remote failure reported as the server printed it, which lacks
    /// the source lines of a local compile.
    fn without_stderr_comparison(mut self) -> Case {
        self.compare_stderr = false;
        self
    }

    fn describe(&self) -> String {
        let prefix = match self.invoke {
            Invoke::Explicit => "",
            Invoke::Masquerade => "(masquerade) ",
            Invoke::Ccache => "(ccache prefix) ",
        };
        let env: String = self.env.iter().map(|(n, v)| format!("{n}={v} ")).collect();
        let host = if self.auth { " [auth]" } else { "" };
        format!("{prefix}{env}{} {}{host}", self.compiler, self.args.join(" "))
    }

    /// Returns how objects built with debug information are compared when
    /// their bytes differ.
    fn debug_comparison(&self) -> Option<DebugComparison> {
        let debug = self.args.iter().any(|a| a.starts_with("-g") && a != "-g0" && !a.contains("record"))
            && !self.args.iter().any(|a| a == "-g0");
        if !debug {
            return None;
        }
        if self.compiler.starts_with("clang") {
            return Some(DebugComparison::Names);
        }
        if self.args.iter().any(|a| a == "-gno-record-gcc-switches") {
            return None;
        }
        Some(DebugComparison::ExceptProducerSwitch)
    }
}

/// Ways to compare objects with debug information whose bytes differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DebugComparison {
    /// clang records MD5 sums of the sources it reads, which the server
    /// cannot read: compare the debug names and the bytes outside debug
    /// sections.
    Names,
    /// gcc lists -fdirectives-only, which the server needs, among the
    /// switches in DW_AT_producer: compare the bytes outside debug sections,
    /// the debug information entries with that one switch removed, and the
    /// decoded line table.
    ExceptProducerSwitch,
}

/// Where a case ran and why, or what differs from the local compile.
type CaseResult = Result<(Where, String), String>;

/// What one run left behind.
struct RunResult {
    output: Output,
    files: BTreeMap<PathBuf, (u32, Vec<u8>)>,
    log: String,
}

const A_C: &str = "#include <stdio.h>\n#include <string.h>\nstatic int counter;\nint scale(int x) { return x * 3 + counter++; }\nint main(int argc, char **argv) {\n  char buf[32];\n  strcpy(buf, argc > 1 ? argv[1] : \"x\");\n  printf(\"%s %d\\n\", buf, scale(argc));\n  return 0;\n}\n";
const D_C: &str = "int d_twice(int x) { return 2 * x; }\nint d_main(void) { return d_twice(21); }\n";
const SW_C: &str = "int classify(int x) {\n  int r = 0;\n  switch (x) {\n  case 1:\n    r += 1;\n    /* fall through */\n  case 2:\n    r += 2;\n    break;\n  default:\n    r = -1;\n  }\n  return r;\n}\n";
const K_CC: &str = "#include <cstddef>\nnamespace { int hidden(int x) { return x + 1; } }\ntemplate <typename T> struct Box { T v; T get() const { return v; } };\nstruct Init { Init(); int n; };\nInit::Init() : n(hidden(41)) {}\nstatic Init init_object;\nint k_value() { Box<int> b{init_object.n}; return b.get(); }\nstd::size_t k_size() { return sizeof(Box<long>); }\n";
const ASM: &str = "        .text\n        .globl asm_value\nasm_value:\n        movl $VALUE, %eax\n        ret\n        .section .note.GNU-stack,\"\",@progbits\n";
const OBJC: &str = "__attribute__((objc_root_class))\n@interface Root\n- (int)value;\n@end\n@implementation Root\n- (int)value { return 7; }\n@end\nint om(void) { return 1; }\n";

/// Returns the sources every case directory starts with.
fn sources() -> Vec<(&'static str, Vec<u8>)> {
    let text = |s: &str| s.as_bytes().to_vec();
    vec![
        ("a.c", text(A_C)),
        ("h.h", text("#define H_VALUE 5\n")),
        ("c.c", text("#include \"h.h\"\nint c_value(void) { return H_VALUE; }\n")),
        ("v.c", text("#include \"h.h\"\n#include <stddef.h>\nsize_t v_value(void) { return H_VALUE; }\n")),
        ("d.c", text(D_C)),
        ("p.txt", text(D_C)),
        ("conftest.c", text(D_C)),
        ("sp ace/b c.c", text(D_C)),
        ("ü/ñ.c", text(D_C)),
        ("src/x.c", text("#include \"../h.h\"\nconst char *where(void) { return __FILE__; }\nint line(void) { return __LINE__ + H_VALUE; }\n")),
        ("file.c", text("const char *f1 = __FILE__;\nint l = __LINE__;\n")),
        ("whdr.h", text("static int helper(void) { return 1; }\n")),
        ("whdr.c", text("#include \"whdr.h\"\nint main_value(void) { return 2; }\n")),
        ("wmac.c", text("#define CHECK(x) if (x = 1) return 1\nint f(int v) { CHECK(v); return 0; }\n")),
        ("base.c", text("const char *base = __BASE_FILE__;\n")),
        ("msg.c", text("#pragma message(\"built with distcc-rs\")\nint m;\n")),
        ("rx.c", text("int old(void);\n#pragma redefine_extname old renamed\nint use(void) { return old(); }\nint after = __LINE__;\n")),
        ("ompline.c", text("void g(double *a, int n) {\n#pragma omp parallel for\n  for (int i = 0; i < n; i++) a[i] = i;\n}\nint after = __LINE__;\n")),
        ("colmac.c", text("#include <stddef.h>\n#define TWICE(x) ((x) + (x))\nint *pick(int *p) { if (p == NULL) return NULL; return p; }\nint twice(int v) { int r = TWICE(v); return r + TWICE(r); }\n")),
        ("ubmac.c", text("#define SHIFT(a, b) ((a) << (b))\nint sh(int a, int b) { int r = SHIFT(a, b) + SHIFT(b, a); return r; }\n")),
        ("sw.c", text(SW_C)),
        ("warn.c", text("int w(void) {\n  int unused = 3;\n  return 0;\n}\n")),
        ("err.c", text("int e(void) {\n  return missing_symbol + ;\n}\n")),
        ("pperr.c", text("#error this build is not configured\nint x;\n")),
        ("ppwarn.c", text("#warning this header is deprecated\nint y;\n")),
        ("cfg.h", text("#define CFG 1\n")),
        ("inc/inc_a.h", text("#define INC_A 2\n")),
        ("cfgmain.c", text("#include \"inc_a.h\"\nint cm(void) { return CFG + INC_A + NAME; }\n")),
        ("sys/sysh.h", text("#define SYSH 1\n")),
        ("q/qh.h", text("#define QH 2\n")),
        ("after/afterh.h", text("#define AFTERH 3\n")),
        ("inc_user.c", text("#include <sysh.h>\n#include \"qh.h\"\n#include <afterh.h>\nint iu(void) { return SYSH + QH + AFTERH; }\n")),
        ("pre.i", text("# 1 \"pre.c\"\n# 1 \"<built-in>\"\n# 1 \"<command-line>\"\n# 1 \"pre.c\"\nint pre(void) { return 4; }\n")),
        ("k.ii", text("# 1 \"k.cc\"\nint kii() { return 1; }\n")),
        ("lit.c", text("const char *e = \"\u{e9}t\u{e9}\";\n")),
        ("latin1.c", b"const char *e = \"\xe9t\xe9\";\n".to_vec()),
        ("ub.c", text("int sh(int a, int b) { return a << b; }\nint dv(int a, int b) { return a / b; }\n")),
        ("omp.c", text("void fill(double *a, int n) {\n#pragma omp parallel for\n  for (int i = 0; i < n; i++) a[i] = i;\n}\n")),
        ("date.c", text("const char *stamp = __DATE__ \" \" __TIME__;\n")),
        ("stamph.h", text("#define STAMP __TIME__\n")),
        ("usestamp.c", text("#include \"stamph.h\"\nconst char *s = STAMP;\n")),
        ("lvl.h", text("int lvl = __INCLUDE_LEVEL__;\n")),
        ("uselvl.c", text("#include \"lvl.h\"\nint u;\n")),
        ("msgh.h", text("#pragma message(\"from a header\")\nint mh;\n")),
        ("pushpop.c", text("#define X 3\n#pragma push_macro(\"X\")\n#undef X\n#define X 20\n#pragma pop_macro(\"X\")\nint r(void) { return X; }\n")),
        ("poison.c", text("#pragma GCC poison bad\nint bad;\n")),
        ("msgsplit.c", text("#pragma \\\nmessage(\"split\")\nint s;\n")),
        ("msgcomment.c", text("#/**/pragma message(\"c\")\nint c;\n")),
        ("empty.c", Vec::new()),
        ("k.cc", text(K_CC)),
        ("k.C", text(K_CC)),
        ("k.cxx", text(K_CC)),
        ("kvec.cc", text("#include <vector>\n#include <string>\nstd::size_t kv() { std::vector<std::string> v{\"a\", \"b\"}; return v.size(); }\n")),
        ("kwarn.cc", text("int kw() {\n  int unused = 1;\n  return 0;\n}\n")),
        ("kerr.cc", text("template <typename T> int f(T t) { return t.missing(); }\nint g() { return f(1); }\n")),
        ("o.m", text(OBJC)),
        ("om.txt", text(OBJC)),
        ("o.mm", text("struct P { int v; };\nint omm() { P p{2}; return p.v; }\n")),
        ("asm.S", text(&format!("#define VALUE 42\n{ASM}"))),
        ("asmx.txt", text(&format!("#define VALUE 43\n{ASM}"))),
        ("plain.s", text(&ASM.replace("$VALUE", "$44"))),
        ("args.rsp", text("-c \"sp ace/b c.c\" -o \"sp ace/b c.o\"")),
        ("outer.rsp", text("-O2 @inner.rsp -o 'rsp out.o'")),
        ("inner.rsp", text("-c -DQ=\\\"q\\\" d.c")),
        ("quoted.rsp", text("-DWORD='two words' -c\td.c\n-o\n'quoted.o'\n")),
    ]
}

/// Returns the command lines of the suite.
fn cases() -> Vec<Case> {
    use Where::*;
    let mut cases = Vec::new();

    // C compiles that go to the server, with gcc and with clang.
    for compiler in ["gcc", "clang"] {
        for args in [
            "-c a.c",
            "-c a.c -o a.o",
            "-O2 -c a.c -o a.o",
            "-Os -c a.c -o obj/a.o",
            "-O3 -funroll-loops -c a.c -o a.o",
            "-std=c99 -pedantic -c a.c -o a.o",
            "-Wall -Wextra -c a.c -o a.o",
            "-fPIC -c a.c -o a.o",
            "-ffunction-sections -fdata-sections -c a.c -o a.o",
            "-pipe -pthread -c a.c -o a.o",
            "-O2 -fstack-protector-strong -D_FORTIFY_SOURCE=2 -c a.c -o a.o",
            "-fno-omit-frame-pointer -fvisibility=hidden -c a.c",
            "-DNAME=42 -UNAME -DNAME=7 -I inc -Iinc2 -include cfg.h -c cfgmain.c -o cfgmain.o",
            "-isystem sys -iquote q -idirafter after -c inc_user.c",
            "-S a.c -o a.s",
            "-S a.c",
            "-S a.c -o -",
            "-S -O2 -masm=intel c.c -o c.s",
            "-c src/x.c -o obj/x.o",
            "-c @DIR@/a.c -o @DIR@/obj/abs.o",
            "-g -c a.c -o a.o",
            "-g -O2 -c src/x.c -o obj/x.o",
            "-g3 -c a.c -o a.o",
            "-ggdb -gdwarf-4 -c a.c -o a.o",
            "-g -fdebug-prefix-map=@DIR@=/src -c a.c -o a.o",
            "-g -ffile-prefix-map=@DIR@=/src -c @DIR@/src/x.c -o x.o",
            "-g -x c -c d.c -o d.o",
            "-x c -c p.txt -o p.o",
            "-xc -c p.txt -o p.o",
            "-x c d.c -x none -c -o d.o",
            "-c pre.i -o pre.o",
            "-fopenmp -c omp.c -o omp.o",
            "-fno-ident -c a.c -o a.o",
            "-w -c warn.c -o warn.o",
            "-Werror -c a.c -o a.o",
            "-c file.c -o file.o",
            "-g -O1 -c colmac.c -o colmac.o",
            "-c empty.c -o empty.o",
            "-MMD -MF obj/v.d -c v.c -o obj/v.o",
            "-MMD -MF v.dep -c v.c -o v2.o",
            "-MD -c c.c",
            "-MD -MP -MT custom -c c.c -o obj/c.o",
            "-MD -MQ $dollar -MT plain -c c.c -o c.o",
            "-MFobj/j.d -MD -c c.c -o c.o",
            "-MD -S c.c -o c.s",
            "-MD -S c.c -o -",
            "-MMD -c src/x.c -o obj/x.o",
            "-Wp,-MD,wp.d -c c.c -o obj/c.o",
            "-Wp,-MMD,wp.d -MT foo -c c.c -o c.o",
            "-Wp,-DNAME=3 -imacros cfg.h -I inc -c cfgmain.c -o cfgmain.o",
        ] {
            cases.push(Case::new(compiler, args, Remote));
        }
        cases.push(Case::words(compiler, &["-g", "-c", "sp ace/b c.c", "-o", "sp ace/b c.o"], Remote));
        cases.push(Case::words(compiler, &["-g", "-c", "ü/ñ.c", "-o", "ü/ñ.o"], Remote));
        cases.push(Case::new(compiler, "@args.rsp", Remote));
        cases.push(Case::new(compiler, "@outer.rsp", Remote));
        cases.push(Case::new(compiler, "@quoted.rsp", Remote));
        cases.push(Case::new(compiler, "-c a.c -o a.o", Remote).auth());
        cases.push(Case::new(compiler, "-g -MD -c c.c -o obj/c.o", Remote).auth());

        // Diagnostics: the compiler's own text, source lines included.
        cases.push(Case::new(compiler, "-c err.c -o err.o", Redone));
        cases.push(Case::new(compiler, "-Wall -c warn.c -o warn.o", Redone));
        cases.push(Case::new(compiler, "-Wall -fdiagnostics-color=always -c warn.c -o warn.o", Redone));
        cases.push(Case::new(compiler, "-Wall -Werror=unused-variable -c warn.c -o warn.o", Redone));
        cases.push(Case::new(compiler, "-c pperr.c", Local));
        cases.push(Case::new(compiler, "-c ppwarn.c", Local));
        cases.push(Case::new(compiler, "-c a.c -o nodir/a.o", Local));
        cases.push(
            Case::new(compiler, "-c err.c -o err.o", Remote)
                .env("DISTCC_SKIP_LOCAL_RETRY", "1")
                .without_stderr_comparison(),
        );

        // Jobs that run locally, with the outputs of a local compile.
        for args in [
            "-E a.c",
            "-E -dM c.c",
            "-M c.c",
            "-MM c.c",
            "-MD -M c.c",
            "-c a.c c.c",
            "a.c -o prog",
            "-c a.c -o -",
            "-save-temps -c a.c -o a.o",
            "-g -gsplit-dwarf -c a.c -o a.o",
            "-fprofile-use -Wno-missing-profile -c a.c -o a.o",
            "-fstack-usage -c a.c -o a.o",
            "-c asm.S -o asm.o",
            "-c plain.s -o plain.o",
            "-x assembler-with-cpp -c asmx.txt -o asmx.o",
            "-B/nonexistent/bin/ -c a.c -o a.o",
            "-fplugin=/nonexistent/plugin.so -c a.c -o a.o",
            "-c conftest.c",
            "-fsyntax-only -c a.c",
            "-S -fverbose-asm c.c -o c.s",
            "-C -c c.c -o c.o",
            "-c @missing.rsp",
            "-c a.c x.o",
        ] {
            cases.push(Case::new(compiler, args, Local));
        }
        // These write time stamps or random section names, even locally.
        for args in ["--coverage -c a.c -o a.o", "-fprofile-generate -c a.c -o a.o", "-flto -c a.c -o a.o"] {
            cases.push(Case::new(compiler, args, Local).nondeterministic());
        }
        cases.push(Case::new(compiler, "-x c -c - -o stdin.o", Local).stdin(D_C));
        cases.push(Case::new(compiler, "-E -", Local).stdin(A_C));
        cases.push(Case::new(compiler, "-g -c a.c -o a.o", Remote).invoke(Invoke::Masquerade));
        cases.push(Case::new(compiler, "@args.rsp", Remote).invoke(Invoke::Masquerade));
    }

    // gcc-only command lines.
    for args in [
        "-march=native -O2 -c a.c -o a.o",
        "-mtune=native -O2 -c a.c -o a.o",
        "-march=native -O2 -gno-record-gcc-switches -g -c a.c -o a.o",
        "-Wl,-z,now -lm -L/tmp -c a.c -o a.o",
        "--sysroot=/ -c a.c -o a.o",
        "-Wimplicit-fallthrough -Werror -c sw.c -o sw.o",
        "-Wextra -Werror -c sw.c -o sw.o",
        "-Wa,--noexecstack -c a.c -o a.o",
        "-fexec-charset=ISO-8859-1 -c lit.c -o lit.o",
        "-finput-charset=ISO-8859-1 -c latin1.c -o latin1.o",
        "-fmax-errors=1 -c a.c -o a.o",
    ] {
        cases.push(Case::new("gcc", args, Remote));
    }
    cases.push(Case::new("gcc", "-Wimplicit-fallthrough -Werror -c sw.c -o sw.o", Remote).check(no_backoff));
    cases.push(Case::new("gcc", "-O2 -fopenmp -c omp.c -o omp.o", Remote));
    cases.push(Case::new("gcc", "-Wp,-MD,wp.d,-MT,tgt,-MP -c c.c -o obj/c.o", Remote));
    cases.push(Case::new("clang", "-Wp,-MD,wp.d,-MT,tgt,-MP -c c.c -o obj/c.o", Local));
    // Without source excerpts and in the C locale (the test bed's distccd
    // runs in it), the server's warnings read as local ones.
    for args in [
        "-Wall -fno-diagnostics-show-caret -c warn.c -o warn.o",
        "-Wall -fno-diagnostics-show-caret -c whdr.c -o whdr.o",
        "-Wall -fno-diagnostics-show-caret -fdiagnostics-color=always -c whdr.c",
        "-Wall -fno-diagnostics-show-caret -c wmac.c -o wmac.o",
    ] {
        cases.push(Case::new("gcc", args, Remote).env("LC_ALL", "C"));
    }
    cases.push(Case::new("gcc", "-Wall -c whdr.c -o whdr.o", Redone).env("LC_ALL", "C"));
    cases.push(Case::new("gcc", "-Wall -fno-diagnostics-show-caret -c whdr.c -o whdr.o", Redone).env("LC_ALL", "C.UTF-8"));
    cases.push(Case::new("gcc", "-Wall -fno-diagnostics-show-caret -c err.c -o err.o", Redone).env("LC_ALL", "C"));
    cases.push(Case::new("gcc", "-fsanitize=address -c a.c -o a.o", Remote));
    cases.push(Case::new("gcc", "-fsanitize=undefined -c ub.c -o ub.o", Remote));
    cases.push(Case::new("gcc", "-O1 -fsanitize=undefined -c ubmac.c -o ubmac.o", Remote));
    cases.push(Case::new("gcc", "-fopenmp -fsanitize=undefined -c ubmac.c -o ubmac.o", Local));
    // clang collapses white space when it preprocesses, so checks that record
    // columns stay local.
    cases.push(Case::new("clang", "-fsanitize=address -c a.c -o a.o", Local));
    cases.push(Case::new("clang", "-O1 -fsanitize=undefined -c ubmac.c -o ubmac.o", Local));
    cases.push(Case::new("gcc", "-fopenmp -c ompline.c -o ompline.o", Remote));
    cases.push(Case::new("gcc", "-c date.c -o date.o", Local).env("SOURCE_DATE_EPOCH", "0"));
    cases.push(Case::new("gcc", "-c base.c -o base.o", Local));
    // The same macros and pragmas in a header, a file given to -include and
    // a -D value.
    cases.push(Case::new("gcc", "-c usestamp.c -o usestamp.o", Local).env("SOURCE_DATE_EPOCH", "0"));
    cases.push(Case::new("gcc", "-c uselvl.c -o uselvl.o", Local));
    cases.push(Case::new("gcc", "-include msgh.h -c a.c -o a.o", Local));
    cases.push(Case::new("gcc", "-include lvl.h -c a.c -o a.o", Local));
    cases.push(Case::new("gcc", "-DWHEN=__DATE__ -c a.c -o a.o", Local).env("SOURCE_DATE_EPOCH", "0"));
    // gcc 12 leaves these pragmas out of directives-only output too, and
    // the spellings of a pragma that gcc accepts.
    cases.push(Case::new("gcc", "-c pushpop.c -o pushpop.o", Local));
    cases.push(Case::new("g++", "-x c++ -c pushpop.c -o pushpop.o", Local));
    cases.push(Case::new("gcc", "-c poison.c -o poison.o", Local));
    cases.push(Case::new("gcc", "-c msgsplit.c -o msgsplit.o", Local));
    cases.push(Case::new("gcc", "-c msgcomment.c -o msgcomment.o", Local));
    cases.push(Case::new("gcc", "-c msg.c -o msg.o", Local));
    cases.push(Case::new("gcc", "-c rx.c -o rx.o", Local));
    cases.push(Case::new("clang", "-c base.c -o base.o", Remote));
    cases.push(Case::new("clang", "-c rx.c -o rx.o", Remote));
    cases.push(Case::new("clang", "-c msg.c -o msg.o", Local));
    cases.push(
        Case::new("gcc", "-Wimplicit-fallthrough -Werror -c sw.c -o sw.o", Remote)
            .env("DISTCC_SKIP_LOCAL_RETRY", "1")
            .check(no_backoff),
    );
    cases.push(Case::new("gcc", "-MD -c c.c -o obj/c.o", Remote).check(dependency_file_of_object));
    cases.push(Case::new("gcc", "-MMD -MF obj/v.d -c v.c -o obj/v.o", Remote).check(target_of_v_d));
    cases.push(Case::new("gcc", "-MMD -MF v.dep -c v.c -o v2.o", Remote).check(target_of_v_dep));
    cases.push(Case::new("gcc", "-g -x c -c d.c -o d.o", Remote).check(debug_names_of_d));
    cases.push(Case::new("gcc", "-g -x c++ -c d.c -o d.o", Remote).check(debug_names_of_d));
    cases.push(Case::new("gcc", "-g -gsplit-dwarf -c a.c -o a.o", Local).check(dwo_name_is_a_dwo));
    cases.push(
        Case::new("gcc", "-g -gsplit-dwarf -c a.c -o a.o", Local).invoke(Invoke::Ccache).check(dwo_name_is_a_dwo),
    );
    cases.push(Case::new("gcc", "-O2 -c a.c -o a.o", Remote).invoke(Invoke::Ccache));
    for args in [
        "-march=native -O2 -g -c a.c -o a.o",
        "-frecord-gcc-switches -c a.c -o a.o",
        "-g -c pre.i -o pre.o",
        "-fdump-tree-original -c a.c -o a.o",
        "-fcallgraph-info -c a.c -o a.o",
        "-aux-info protos.txt -c a.c -o a.o",
        "-O3 -fopt-info-vec-optimized=vec.txt -c a.c -o a.o",
        "-Wa,-adhln=a.lst -c a.c -o a.o",
        "-specs=/nonexistent.specs -c a.c -o a.o",
        "-fno-working-directory -g -c a.c -o a.o",
        "-c o.m",
    ] {
        cases.push(Case::new("gcc", args, Local));
    }
    // A precompiled header differs in a few bytes between two local builds.
    cases.push(Case::new("gcc", "-x c-header -c h.h -o h.gch", Local).nondeterministic());

    // clang-only command lines.
    for args in [
        "-gline-tables-only -O2 -c a.c -o a.o",
        "-g -c pre.i -o pre.o",
        "-g -fdebug-compilation-dir=. -c a.c -o a.o",
        "-target x86_64-linux-gnu -c a.c -o a.o",
        "--target=x86_64-linux-gnu -O1 -c a.c -o a.o",
        "-Xclang -fno-validate-pch -c a.c -o a.o",
    ] {
        cases.push(Case::new("clang", args, Remote));
    }
    for args in [
        "-march=native -O2 -c a.c -o a.o",
        "-Wl,-z,now -lm -c a.c -o a.o",
        "-mllvm -x86-asm-syntax=intel -c a.c -o a.o",
        // The Objective-C runtime data name the compiled file by its path.
        "-c o.m -o o.o",
        "-g -c o.m -o o.o",
        "-x objective-c -c om.txt -o om.o",
        "-frecord-command-line -c a.c -o a.o",
        // clang accepts no other execution or input character set than UTF-8.
        "-fexec-charset=ISO-8859-1 -c lit.c -o lit.o",
        "-finput-charset=ISO-8859-1 -c latin1.c -o latin1.o",
        "-fprofile-instr-generate -c a.c -o a.o",
    ] {
        cases.push(Case::new("clang", args, Local));
    }
    // clang ignores fall-through comments, so it warns here as it does locally.
    cases.push(Case::new("clang", "-Wimplicit-fallthrough -Werror -c sw.c -o sw.o", Redone));
    cases.push(Case::new("clang", "-g -x c -c d.c -o d.o", Remote).check(debug_names_of_d));

    // C++ with g++ and clang++.
    for compiler in ["g++", "clang++"] {
        for args in [
            "-c k.cc -o k.o",
            "-std=c++17 -O2 -c k.cc -o k.o",
            "-g -c k.cc -o k.o",
            "-fno-exceptions -fno-rtti -c k.cc",
            "-fPIC -O2 -c k.C -o kC.o",
            "-c k.cxx",
            "-x c++ -c d.c -o d.o",
            "-g -x c++ -c d.c -o d.o",
            "-MD -c k.cc -o obj/k.o",
            "-S k.cc -o -",
            "-c k.ii -o kii.o",
            "-O1 -c kvec.cc -o kvec.o",
        ] {
            cases.push(Case::new(compiler, args, Remote));
        }
        cases.push(Case::new(compiler, "-Wall -c kwarn.cc -o kwarn.o", Redone));
        cases.push(Case::new(compiler, "-c kerr.cc -o kerr.o", Redone));
        cases.push(Case::new(compiler, "-c k.cc d.c", Local));
    }
    cases.push(Case::new("g++", "-g -x c++ -c d.c -o d.o", Remote).check(debug_names_of_d));
    cases.push(Case::new("g++", "-c d.c -o d.o", Remote));
    // clang++ warns that treating a .c file as C++ is deprecated.
    cases.push(Case::new("clang++", "-c d.c -o d.o", Local));
    cases.push(Case::new("clang++", "-c o.mm -o omm.o", Local));
    cases
}

fn no_backoff(dir: &Path, result: &RunResult) -> Result<(), String> {
    let state = dir.parent().unwrap().join("dist.distcc");
    let mut backoff = Vec::new();
    for entry in walk(&state) {
        if entry.file_name().is_some_and(|n| n.to_string_lossy().contains("backoff")) {
            backoff.push(entry.display().to_string());
        }
    }
    if !backoff.is_empty() {
        return Err(format!("host backed off: {}", backoff.join(", ")));
    }
    let stderr = String::from_utf8_lossy(&result.output.stderr);
    if !stderr.is_empty() {
        return Err(format!("expected no messages, got: {stderr}"));
    }
    if result.log.contains("retry") || result.log.contains("compiling locally") {
        return Err(format!("log shows a local retry:\n{}", result.log));
    }
    Ok(())
}

fn dependency_file_of_object(dir: &Path, _: &RunResult) -> Result<(), String> {
    let text = std::fs::read_to_string(dir.join("obj/c.d")).map_err(|e| format!("obj/c.d: {e}"))?;
    if text != "obj/c.o: c.c /usr/include/stdc-predef.h h.h\n" {
        return Err(format!("obj/c.d contains {text:?}"));
    }
    if dir.join("c.d").exists() {
        return Err("a stray ./c.d was written".into());
    }
    Ok(())
}

fn target_of_v_d(dir: &Path, _: &RunResult) -> Result<(), String> {
    check_target(dir, "obj/v.d", "obj/v.o")
}

fn target_of_v_dep(dir: &Path, _: &RunResult) -> Result<(), String> {
    check_target(dir, "v.dep", "v2.o")
}

fn check_target(dir: &Path, file: &str, target: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(dir.join(file)).map_err(|e| format!("{file}: {e}"))?;
    if !text.starts_with(&format!("{target}: ")) {
        return Err(format!("{file} starts with {:?}, expected target {target}", text.lines().next()));
    }
    Ok(())
}

fn debug_names_of_d(dir: &Path, _: &RunResult) -> Result<(), String> {
    let names = debug_names(&dir.join("d.o"))?;
    let expected_dir = format!("DW_AT_comp_dir: {}", dir.parent().unwrap().join("work").display());
    if !names.iter().any(|n| n == "DW_AT_name: d.c") {
        return Err(format!("no DW_AT_name d.c in {names:?}"));
    }
    if !names.contains(&expected_dir) {
        return Err(format!("no {expected_dir} in {names:?}"));
    }
    Ok(())
}

fn dwo_name_is_a_dwo(dir: &Path, _: &RunResult) -> Result<(), String> {
    let names = debug_names(&dir.join("a.o"))?;
    if !names.iter().any(|n| n == "DW_AT_dwo_name: a.dwo" || n == "DW_AT_GNU_dwo_name: a.dwo") {
        return Err(format!("no DW_AT_dwo_name a.dwo in {names:?}"));
    }
    if !dir.join("a.dwo").exists() {
        return Err("a.dwo is missing".into());
    }
    Ok(())
}

/// Reads the name and directory attributes of an object's debug information, in order.
fn debug_names(object: &Path) -> Result<Vec<String>, String> {
    let output = Command::new("readelf")
        .arg("--debug-dump=info")
        .arg(object)
        .output()
        .map_err(|e| format!("readelf: {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    let mut names = Vec::new();
    for line in text.lines() {
        for attribute in ["DW_AT_name", "DW_AT_comp_dir", "DW_AT_dwo_name", "DW_AT_GNU_dwo_name", "DW_AT_producer"] {
            let Some(position) = line.find(&format!("{attribute} ")) else {
                continue;
            };
            // The value follows the last ": " (readelf shows string offsets first).
            let value = line[position..].rsplit(": ").next().unwrap_or("").trim();
            names.push(format!("{attribute}: {value}"));
        }
    }
    Ok(names)
}

/// Returns the bytes of an object without its debug sections.
fn stripped(object: &Path, scratch: &Path) -> Result<Vec<u8>, String> {
    let out = scratch.join(format!("stripped-{}", std::process::id()));
    let status = Command::new("objcopy")
        .arg("--strip-debug")
        .arg(object)
        .arg(&out)
        .status()
        .map_err(|e| format!("objcopy: {e}"))?;
    if !status.success() {
        return Err(format!("objcopy --strip-debug {} failed", object.display()));
    }
    let bytes = std::fs::read(&out).map_err(|e| e.to_string())?;
    let _ = std::fs::remove_file(&out);
    Ok(bytes)
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            found.extend(walk(&path));
        } else {
            found.push(path);
        }
    }
    found
}

fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u32, Vec<u8>)> {
    walk(dir)
        .into_iter()
        .map(|path| {
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let bytes = std::fs::read(&path).unwrap_or_default();
            (path.strip_prefix(dir).unwrap().to_owned(), (meta.permissions().mode() & 0o7777, bytes))
        })
        .collect()
}

fn replace_bytes(data: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut result = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        if data[i..].starts_with(from) {
            result.extend_from_slice(to);
            i += from.len();
        } else {
            result.push(data[i]);
            i += 1;
        }
    }
    result
}

/// The shared parts of every case run: the suite's directory, the
/// masquerade directory and the host entries.
struct Suite {
    root: PathBuf,
    masquerade: PathBuf,
    plain_host: String,
    auth_host: String,
}

impl Suite {
    fn new() -> Suite {
        let bed = bed();
        let root = tempfile::Builder::new().prefix("distcc-rs-fidelity-").tempdir().unwrap().keep();
        // distccd runs as its own user and never needs to enter these
        // directories; the compilers run as the test's user.
        let masquerade = root.join("masq");
        std::fs::create_dir_all(&masquerade).unwrap();
        for compiler in ["gcc", "g++", "clang", "clang++"] {
            std::os::unix::fs::symlink(common::distcc_rs(), masquerade.join(compiler)).unwrap();
        }
        Suite {
            root,
            masquerade,
            plain_host: format!("127.0.0.1:{}", bed.port("PLAIN")),
            auth_host: format!("127.0.0.1:{},auth", bed.port("AUTH1")),
        }
    }

    fn prepare(&self, dir: &Path) {
        for (name, content) in sources() {
            let path = dir.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, content).unwrap();
        }
        std::fs::create_dir_all(dir.join("obj")).unwrap();
    }

    fn base_command(&self, program: &Path, dir: &Path, case: &Case, state: &Path) -> Command {
        let mut command = Command::new(program);
        command.current_dir(dir).env_clear();
        for name in ["PATH", "HOME", "LANG", "LC_ALL"] {
            if let Some(value) = std::env::var_os(name) {
                command.env(name, value);
            }
        }
        // Keep PWD right, since compilers prefer it to getcwd.
        command.env("PWD", dir);
        let tmp = state.join("tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        command.env("TMPDIR", &tmp);
        for (name, value) in &case.env {
            command.env(name, value);
        }
        command.stdin(if case.stdin.is_some() { Stdio::piped() } else { Stdio::null() });
        command
    }

    fn args_for(case: &Case, dir: &Path) -> Vec<String> {
        case.args.iter().map(|a| a.replace("@DIR@", &dir.display().to_string())).collect()
    }

    /// Runs the case through distcc-rs in `work`, which links to `dir`.
    fn run_distcc(&self, case: &Case, work: &Path, dir: &Path) -> RunResult {
        let state = dir.with_extension("distcc");
        std::fs::create_dir_all(&state).unwrap();
        let log = dir.with_extension("log");
        let args = Self::args_for(case, work);

        let mut command = match case.invoke {
            Invoke::Explicit => {
                let mut command = self.base_command(&common::distcc_rs(), work, case, &state);
                command.arg(case.compiler);
                command
            }
            Invoke::Masquerade => {
                let mut command = self.base_command(&self.masquerade.join(case.compiler), work, case, &state);
                let path = std::env::var("PATH").unwrap_or_default();
                command.env("PATH", format!("{}:{path}", self.masquerade.display()));
                command
            }
            Invoke::Ccache => {
                let mut command = self.base_command(Path::new("ccache"), work, case, &state);
                command.env("CCACHE_PREFIX", common::distcc_rs());
                command.env("CCACHE_DIR", state.join("ccache"));
                command.arg(case.compiler);
                command
            }
        };
        command.args(&args);

        command.env("DISTCC_HOSTS", if case.auth { &self.auth_host } else { &self.plain_host });
        command.env("DISTCC_DIR", &state);
        command.env("DISTCC_VERBOSE", "1");
        command.env("DISTCC_LOG", &log);
        if case.auth {
            for (name, value) in bed().kerberos_env() {
                command.env(name, value);
            }
        }

        let output = run_with_stdin(command, case.stdin);
        RunResult { output, files: snapshot(dir), log: std::fs::read_to_string(&log).unwrap_or_default() }
    }

    /// Runs the case with the plain compiler in `work`, which links to `dir`.
    fn run_local(&self, case: &Case, work: &Path, dir: &Path) -> RunResult {
        let state = dir.with_extension("state");
        std::fs::create_dir_all(&state).unwrap();
        let mut command = self.base_command(Path::new(case.compiler), work, case, &state);
        command.args(Self::args_for(case, work));
        let output = run_with_stdin(command, case.stdin);
        RunResult { output, files: snapshot(dir), log: String::new() }
    }

    /// Runs one case and returns where it ran, or what differs.
    fn run_case(&self, number: usize, case: &Case) -> Result<(Where, String), String> {
        let case_dir = self.root.join(format!("{number:03}"));
        let dist = case_dir.join("dist");
        let locl = case_dir.join("locl");
        for dir in [&dist, &locl] {
            std::fs::create_dir_all(dir).unwrap();
            self.prepare(dir);
        }
        // Both runs work in `work`, a link to their own directory, with PWD
        // naming the link. gcc and clang take the working directory from PWD
        // when it names the same directory as ".", so both record the same
        // path, and objects with debug information can be compared by bytes.
        let work = case_dir.join("work");
        std::os::unix::fs::symlink(&dist, &work).unwrap();
        let remote = self.run_distcc(case, &work, &dist);
        std::fs::remove_file(&work).unwrap();
        std::os::unix::fs::symlink(&locl, &work).unwrap();
        let local = self.run_local(case, &work, &locl);
        let ran = where_it_ran(&remote.log)?;

        let mut problems = Vec::new();
        if ran.0 != case.expect {
            problems.push(format!("expected {:?}, ran {:?} ({})", case.expect, ran.0, ran.1));
        }
        let from = dist.display().to_string().into_bytes();
        let to = locl.display().to_string().into_bytes();
        let normalise = |bytes: &[u8]| replace_bytes(bytes, &from, &to);
        if remote.output.status.code() != local.output.status.code() {
            problems.push(format!(
                "exit status {:?}, local {:?}",
                remote.output.status.code(),
                local.output.status.code()
            ));
        }
        if normalise(&remote.output.stdout) != local.output.stdout {
            problems.push(format!(
                "stdout differs ({} vs {} bytes)",
                remote.output.stdout.len(),
                local.output.stdout.len()
            ));
        }
        if case.compare_stderr && normalise(&remote.output.stderr) != local.output.stderr {
            problems.push(format!(
                "stderr differs:\n--- distcc-rs:\n{}\n--- local:\n{}",
                String::from_utf8_lossy(&remote.output.stderr),
                String::from_utf8_lossy(&local.output.stderr)
            ));
        }
        let names: std::collections::BTreeSet<&PathBuf> = remote.files.keys().chain(local.files.keys()).collect();
        for name in names {
            match (remote.files.get(name), local.files.get(name)) {
                (Some(_), None) => problems.push(format!("{} written only through distcc-rs", name.display())),
                (None, Some(_)) => problems.push(format!("{} written only by the local compile", name.display())),
                (Some((remote_mode, remote_bytes)), Some((local_mode, local_bytes))) => {
                    if remote_mode != local_mode {
                        problems.push(format!("{} has mode {remote_mode:o}, local {local_mode:o}", name.display()));
                    }
                    if case.nondeterministic {
                        continue;
                    }
                    if let Err(problem) =
                        compare_file(case, name, &normalise(remote_bytes), local_bytes, &dist, &locl, &case_dir)
                    {
                        problems.push(problem);
                    }
                }
                (None, None) => unreachable!(),
            }
        }
        for check in &case.checks {
            if let Err(problem) = check(&dist, &remote) {
                problems.push(problem);
            }
        }
        if problems.is_empty() {
            Ok(ran)
        } else {
            Err(format!("{}\n  log:\n{}", problems.join("\n  "), indent(&remote.log)))
        }
    }
}

fn compare_file(
    case: &Case,
    name: &Path,
    remote: &[u8],
    local: &[u8],
    dist: &Path,
    locl: &Path,
    scratch: &Path,
) -> Result<(), String> {
    if remote == local {
        return Ok(());
    }
    let is_object = name.extension().is_some_and(|e| e == "o");
    let Some(comparison) = case.debug_comparison().filter(|_| is_object) else {
        return Err(format!("{} differs ({} vs {} bytes)", name.display(), remote.len(), local.len()));
    };
    let remote_path = dist.join(name);
    let local_path = locl.join(name);
    if stripped(&remote_path, scratch)? != stripped(&local_path, scratch)? {
        return Err(format!("{} differs outside its debug sections", name.display()));
    }
    match comparison {
        DebugComparison::Names => {
            let remote_names = debug_names(&remote_path)?;
            let local_names = debug_names(&local_path)?;
            if remote_names != local_names {
                return Err(format!("{} debug names differ: {remote_names:?} vs {local_names:?}", name.display()));
            }
        }
        DebugComparison::ExceptProducerSwitch => {
            let remote_info = debug_dump(&remote_path, "info")?.replace(" -fdirectives-only", "");
            let local_info = debug_dump(&local_path, "info")?;
            if remote_info != local_info {
                return Err(format!(
                    "{} debug information differs:\n{}",
                    name.display(),
                    first_difference(&remote_info, &local_info)
                ));
            }
            let remote_lines = debug_dump(&remote_path, "decodedline")?;
            let local_lines = debug_dump(&local_path, "decodedline")?;
            if remote_lines != local_lines {
                return Err(format!(
                    "{} line table differs:\n{}",
                    name.display(),
                    first_difference(&remote_lines, &local_lines)
                ));
            }
        }
    }
    Ok(())
}

/// Returns a readelf dump of one kind of debug information, without the
/// file name header and with offsets into string sections removed, because
/// they move when a string changes length.
fn debug_dump(object: &Path, kind: &str) -> Result<String, String> {
    let output = Command::new("readelf")
        .arg(format!("--debug-dump={kind}"))
        .arg("--wide")
        .arg(object)
        .output()
        .map_err(|e| format!("readelf: {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    let mut result = String::new();
    for line in text.lines().filter(|l| !l.contains(&object.display().to_string())) {
        let mut line = line.to_string();
        // readelf shows string references as "(offset: 0x1f)" or
        // "(indirect string, offset: 0x1f)".
        let mut searched = 0;
        while let Some(found) = line[searched..].find("offset: 0x") {
            let start = searched + found + "offset: ".len();
            let end = line[start..].find(|c: char| !c.is_ascii_alphanumeric()).map_or(line.len(), |e| start + e);
            line.replace_range(start..end, "_");
            searched = start;
        }
        result.push_str(&line);
        result.push('\n');
    }
    Ok(result)
}

fn first_difference(a: &str, b: &str) -> String {
    for (line_a, line_b) in a.lines().zip(b.lines()) {
        if line_a != line_b {
            return format!("  distcc-rs: {line_a}\n  local:     {line_b}");
        }
    }
    format!("  {} vs {} lines", a.lines().count(), b.lines().count())
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}\n")).collect()
}

fn run_with_stdin(mut command: Command, stdin: Option<&str>) -> Output {
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().unwrap_or_else(|e| panic!("run {command:?}: {e}"));
    if let Some(text) = stdin {
        use std::io::Write;
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(text.as_bytes()).unwrap();
    }
    child.wait_with_output().unwrap()
}

/// Reads distcc-rs's verbose log: where the job ran and why.
fn where_it_ran(log: &str) -> Result<(Where, String), String> {
    for line in log.lines() {
        if let Some(reason) = line.split("running locally: ").nth(1) {
            return Ok((Where::Local, reason.to_string()));
        }
        if let Some(reason) = line.split("compiling locally: ").nth(1) {
            let kind = if reason.starts_with("the compile on") { Where::Redone } else { Where::Local };
            return Ok((kind, reason.to_string()));
        }
        if line.contains("reporting the server's diagnostics") {
            return Ok((Where::Remote, "remote failure reported".to_string()));
        }
        if let Some(host) = line.split(" on ").nth(1).filter(|_| line.contains("debug: compiled ")) {
            return Ok((Where::Remote, format!("on {host}")));
        }
    }
    Err(format!("the log does not say where the job ran:\n{}", indent(log)))
}

#[test]
fn compile_fidelity_table() {
    let cases = cases();
    assert!(cases.len() >= 150, "the suite must have at least 150 command lines, has {}", cases.len());
    let suite = Suite::new();

    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, CaseResult)>> = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(2, 4);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let number = next.fetch_add(1, Ordering::SeqCst);
                let Some(case) = cases.get(number) else {
                    break;
                };
                let result = suite.run_case(number, case);
                results.lock().unwrap().push((number, result));
            });
        }
    });

    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(number, _)| *number);
    let mut report = String::new();
    let mut failures = Vec::new();
    let mut counts = BTreeMap::new();
    for (number, result) in &results {
        let case = &cases[*number];
        match result {
            Ok((ran, reason)) => {
                *counts.entry(format!("{ran:?}")).or_insert(0) += 1;
                report.push_str(&format!("{number:03} {:<7} {}  -- {reason}\n", format!("{ran:?}"), case.describe()));
            }
            Err(problem) => {
                report.push_str(&format!("{number:03} FAILED  {}\n", case.describe()));
                failures.push(format!("{number:03} {}\n  {problem}", case.describe()));
            }
        }
    }
    report.push_str(&format!("{} command lines: {counts:?}, {} failed\n", cases.len(), failures.len()));
    eprintln!("{report}");
    let report_path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fidelity-report.txt");
    let _ = std::fs::write(&report_path, &report);
    if failures.is_empty() {
        let _ = std::fs::remove_dir_all(&suite.root);
    }
    assert!(
        failures.is_empty(),
        "{} of {} command lines differ from a local compile (directories kept in {}):\n{}",
        failures.len(),
        cases.len(),
        suite.root.display(),
        failures.join("\n")
    );
}
