use super::*;

fn words(text: &str) -> Vec<OsString> {
    text.split_whitespace().map(OsString::from).collect()
}

fn no_native(_: &[OsString]) -> Result<Vec<OsString>, String> {
    Err("not available in this test".into())
}

fn fake_native(options: &[OsString]) -> Result<Vec<OsString>, String> {
    assert_eq!(options, [OsString::from("-march=native")]);
    Ok(words("-march=znver3 -mavx2 --param l1-cache-size=32 -mtune=znver3"))
}

fn gcc() -> Toolchain<'static> {
    Toolchain {
        family: Family::Gcc,
        cplusplus_driver: false,
        working_directory: OsStr::new("/work/dir"),
        resolve_native: &no_native,
    }
}

fn gxx() -> Toolchain<'static> {
    Toolchain { cplusplus_driver: true, ..gcc() }
}

fn clang() -> Toolchain<'static> {
    Toolchain { family: Family::Clang, ..gcc() }
}

fn remote_with(toolchain: &Toolchain, text: &str) -> RemoteJob {
    match analyse(&words(text), toolchain) {
        Decision::Remote(job) => job,
        Decision::Local(reason) => panic!("{text}: expected remote, got local: {reason}"),
    }
}

fn remote(text: &str) -> RemoteJob {
    remote_with(&gcc(), text)
}

fn local_with(toolchain: &Toolchain, text: &str) -> String {
    match analyse(&words(text), toolchain) {
        Decision::Local(reason) => reason,
        Decision::Remote(job) => panic!("{text}: expected local, got remote: {job:?}"),
    }
}

fn local(text: &str) -> String {
    local_with(&gcc(), text)
}

#[test]
fn simple_compile_is_remote() {
    let job = remote("-O2 -c lapi.c -o lapi.o");
    assert_eq!(job.input, "lapi.c");
    assert_eq!(job.output, Output::File("lapi.o".into()));
    assert_eq!(job.preprocessed_ext, "i");
    assert_eq!(job.cpp_args, words("-fdirectives-only -H -O2 -E lapi.c"));
    assert_eq!(job.server_args, words("-O2 -fdirectives-only -x cpp-output lapi.c -c -o distcc-output.o"));
}

#[test]
fn implied_output_is_basename() {
    let job = remote("-c src/x.cpp");
    assert_eq!(job.output, Output::File("x.o".into()));
    assert_eq!(job.preprocessed_ext, "ii");
    assert_eq!(job.server_args, words("-fdirectives-only -x c++-cpp-output src/x.cpp -c -o distcc-output.o"));
    let job = remote("-S src/x.c");
    assert_eq!(job.output, Output::File("x.s".into()));
    assert_eq!(job.server_args, words("-fdirectives-only -x cpp-output src/x.c -S -o distcc-output.s"));
}

#[test]
fn assembly_to_stdout_is_remote() {
    let job = remote("-S a.c -o -");
    assert_eq!(job.output, Output::Stdout);
    assert!(local("-c a.c -o -").contains("standard output"));
}

#[test]
fn preprocessor_options_stay_local() {
    let job = remote("-DX=1 -I inc -Iinc2 -include pre.h -MD -MP -c a.c -o obj/a.o");
    assert_eq!(job.server_args, words("-fdirectives-only -x cpp-output a.c -c -o distcc-output.o"));
    assert_eq!(
        job.cpp_args,
        words("-fdirectives-only -H -MF obj/a.d -MQ obj/a.o -DX=1 -I inc -Iinc2 -include pre.h -MD -MP -E a.c")
    );
}

#[test]
fn dependency_file_follows_gcc() {
    let job = remote("-MMD -MF v.dep -c v.c -o v2.o");
    assert_eq!(job.cpp_args, words("-fdirectives-only -H -MQ v2.o -MMD -MF v.dep -E v.c"));
    let job = remote("-MD -MT tgt -c v.c -o obj/v.o");
    assert_eq!(job.cpp_args, words("-fdirectives-only -H -MF obj/v.d -MD -MT tgt -E v.c"));
    let job = remote("-MD -c v.c");
    assert_eq!(job.cpp_args, words("-fdirectives-only -H -MD -E v.c"));
    let job = remote("-Wp,-MD,dep.d -c v.c -o obj/v.o");
    assert_eq!(job.cpp_args, words("-fdirectives-only -H -Wp,-MD,dep.d -E v.c"));
    assert_eq!(job.server_args, words("-fdirectives-only -x cpp-output v.c -c -o distcc-output.o"));
    let job = remote("-MD -S v.c -o -");
    assert_eq!(job.cpp_args, words("-fdirectives-only -H -MF -.d -MQ - -MD -E v.c"));
}

#[test]
fn mixed_dependency_styles_are_local() {
    assert!(local("-MD -Wp,-MF,x.d -c v.c -o v.o").contains("-Wp"));
    assert!(local("-Wp,-M -c v.c").contains("dependency generation only"));
    assert!(local("-Xpreprocessor -MM -c v.c").contains("dependency generation only"));
}

#[test]
fn language_option_becomes_preprocessed_language() {
    let job = remote("-x c++ -c a.c -o a.o");
    assert_eq!(job.cpp_args, words("-fdirectives-only -H -x c++ -E a.c"));
    assert_eq!(job.server_args, words("-fdirectives-only -x c++-cpp-output a.c -c -o distcc-output.o"));
    assert_eq!(job.preprocessed_ext, "ii");
    let job = remote("-xc -c d.txt -o d.o");
    assert_eq!(job.server_args, words("-fdirectives-only -x cpp-output distcc-input.i -c -o distcc-output.o"));
}

#[test]
fn cplusplus_driver_sends_cxx() {
    let job = remote_with(&gxx(), "-c a.c");
    assert_eq!(job.server_args, words("-fdirectives-only -x c++-cpp-output a.c -c -o distcc-output.o"));
    assert_eq!(job.preprocessed_ext, "ii");
}

#[test]
fn preprocessed_input_needs_no_preprocessor() {
    let job = remote("-c a.ii -o a.o");
    assert!(job.input_is_preprocessed);
    assert!(job.cpp_args.is_empty());
    assert_eq!(job.server_args, words("-x c++-cpp-output a.ii -c -o distcc-output.o"));
    assert!(local("-g -c a.i").contains("working directory"));
    let job = remote_with(&clang(), "-g -c a.i");
    assert!(job.server_args.contains(&OsString::from("-fdebug-compilation-dir=/work/dir")));
}

#[test]
fn clang_gets_compilation_directory_with_debug_info() {
    let job = remote_with(&clang(), "-g -O1 -c a.c -o a.o");
    assert_eq!(job.cpp_args, words("-g -O1 -E a.c"));
    assert_eq!(
        job.server_args,
        words("-g -O1 -Qunused-arguments -fdebug-compilation-dir=/work/dir -x cpp-output a.c -c -o distcc-output.o")
    );
    let job = remote_with(&clang(), "-g -g0 -c a.c");
    assert!(!job.server_args.iter().any(|w| w.to_string_lossy().contains("compilation-dir")));
    let job = remote_with(&clang(), "-g -fdebug-compilation-dir=. -c a.c");
    assert_eq!(job.server_args.iter().filter(|w| w.to_string_lossy().contains("compilation-dir")).count(), 1);
    assert!(local_with(&clang(), "-g -grecord-command-line -c a.c").contains("record"));
    assert!(local_with(&clang(), "-frecord-gcc-switches -c a.c").contains("record"));
    assert!(local("-frecord-gcc-switches -c a.c").contains("record"));
    remote("-g -grecord-gcc-switches -c a.c");
}

#[test]
fn linker_options_only_reach_the_preprocessor() {
    let job = remote("-c a.c -lm -L/x -Wl,-z,now -pthread -o a.o");
    assert_eq!(job.cpp_args, words("-fdirectives-only -H -E a.c -lm -L/x -Wl,-z,now -pthread"));
    assert_eq!(job.server_args, words("-pthread -fdirectives-only -x cpp-output a.c -c -o distcc-output.o"));
}

#[test]
fn unknown_options_reach_both_steps() {
    let job = remote("-fno-frobnicate -Wfancy -c a.c");
    assert_eq!(job.cpp_args, words("-fdirectives-only -H -fno-frobnicate -Wfancy -E a.c"));
    assert_eq!(job.server_args, words("-fno-frobnicate -Wfancy -fdirectives-only -x cpp-output a.c -c -o distcc-output.o"));
}

#[test]
fn side_outputs_are_local() {
    for option in [
        "-gsplit-dwarf",
        "-save-temps",
        "-save-temps=obj",
        "--coverage",
        "-ftest-coverage",
        "-fstack-usage",
        "-fdump-tree-all",
        "-fcallgraph-info",
        "-fopt-info-vec=vec.txt",
        "-ftime-trace",
        "-fsave-optimization-record",
    ] {
        let reason = local(&format!("{option} -c a.c -o a.o"));
        assert!(reason.contains(option.split('=').next().unwrap()), "{option}: {reason}");
    }
    assert!(local("-aux-info protos.h -c a.c").contains("-aux-info protos.h"));
    assert!(local("-Wa,-adhln=a.lst -c a.c").contains("listing"));
    assert!(local("-Xassembler --MD -Xassembler x.d -c a.c").contains("listing or dependency"));
    remote("-fopt-info-vec -c a.c");
    remote("-Wa,--noexecstack -c a.c");
}

#[test]
fn local_cases() {
    assert!(local("-E a.c").contains("-E"));
    assert!(local("-M a.c").contains("-M"));
    assert!(local("-MM -c a.c").contains("-MM"));
    assert!(local("a.c -o prog").contains("no -c"));
    assert!(local("-c a.c b.c").contains("more than one input (a.c and b.c)"));
    assert!(local("-c").contains("no source"));
    assert!(local("-x c -c -").contains("standard input"));
    assert!(local("-c a.s").contains("assembler"));
    assert!(local("-c a.S").contains("assembler"));
    assert!(local("-x assembler-with-cpp -c a.c").contains("assembler"));
    assert!(local("-c conftest.c").contains("conftest"));
    assert!(local("-c a.c -o x.o -o y.o").contains("more than one output"));
    assert!(local("-c a.c -o").contains("missing argument after '-o'"));
    assert!(local("-c a.c x.o").contains("x.o: not a C"));
    assert!(local("-c a.h").contains("precompiled header"));
    assert!(local("-c a.f90").contains("a.f90"));
    assert!(local_with(&clang(), "-c a.m").contains("Objective-C"));
    assert!(local_with(&clang(), "-x objective-c++ -c a.txt").contains("Objective-C"));
    assert!(local("-fsyntax-only -c a.c").contains("syntax"));
    assert!(local("-B/opt/bin -c a.c").contains("-B/opt/bin"));
    assert!(local("-specs=my.specs -c a.c").contains("-specs=my.specs"));
    assert!(local("-fplugin=x.so -c a.c").contains("-fplugin"));
    assert!(local("-fprofile-use=prof -c a.c").contains("profile"));
    assert!(local("-fprofile-generate -c a.c").contains("profile"));
    assert!(local("-flto -c a.c").contains("link-time"));
    assert!(local("-v -c a.c").contains("information"));
    assert!(local("-C -c a.c").contains("preprocessed output"));
    assert!(local("-fno-working-directory -g -c a.c").contains("-fno-working-directory"));
    assert!(local_with(&clang(), "-Xclang -load -Xclang p.so -c a.c").contains("plugin"));
    let empty_output = vec![OsString::from("-c"), OsString::from("a.c"), OsString::from("-o"), OsString::new()];
    assert!(matches!(analyse(&empty_output, &gcc()), Decision::Local(reason) if reason.contains("empty output")));
}

#[test]
fn debug_info_with_working_directory_is_remote() {
    remote("-g -c a.c");
    remote("-fno-working-directory -c a.c");
    remote("-fno-working-directory -g -g0 -c a.c");
}

#[test]
fn native_options_resolve_on_gcc() {
    let toolchain = Toolchain { resolve_native: &fake_native, ..gcc() };
    let job = remote_with(&toolchain, "-O2 -march=native -mno-avx2 -c a.c -o a.o");
    assert_eq!(job.cpp_args, words("-fdirectives-only -H -O2 -march=native -mno-avx2 -E a.c"));
    assert_eq!(
        job.server_args,
        words(
            "-march=znver3 -mavx2 --param l1-cache-size=32 -mtune=znver3 -O2 -mno-avx2 -fdirectives-only -x cpp-output a.c -c -o distcc-output.o"
        )
    );
    let reason = local_with(&toolchain, "-O2 -g -march=native -c a.c");
    assert!(reason.contains("recorded"), "{reason}");
    remote_with(&toolchain, "-O2 -g -gno-record-gcc-switches -march=native -c a.c");
    assert!(local("-march=native -c a.c").contains("could not be resolved"));
    assert!(local_with(&clang(), "-march=native -c a.c").contains("clang"));
}

#[test]
fn stock_server_refusals_make_the_job_local() {
    let reason = local_with(&clang(), "-mllvm -x86-asm-syntax=intel -c a.c");
    assert!(reason.contains("stock distccd"), "{reason}");
}

#[test]
fn response_files_are_expanded() {
    let dir = tempfile::tempdir().unwrap();
    let rsp = dir.path().join("args.rsp");
    std::fs::write(&rsp, "-c \"sp ace/b c.c\" -o \"sp ace/b c.o\"").unwrap();
    let args = vec![OsString::from("-O1"), OsString::from(format!("@{}", rsp.display()))];
    let Decision::Remote(job) = analyse(&args, &gcc()) else {
        panic!("expected remote");
    };
    assert_eq!(job.input, "sp ace/b c.c");
    assert_eq!(job.output, Output::File("sp ace/b c.o".into()));
    assert_eq!(job.cpp_args, ["-fdirectives-only", "-H", "-O1", "-E", "sp ace/b c.c"]);
    let missing = vec![OsString::from("@/nonexistent.rsp")];
    let Decision::Local(reason) = analyse(&missing, &gcc()) else {
        panic!("expected local");
    };
    assert!(reason.contains("/nonexistent.rsp"), "{reason}");
}

#[test]
fn replace_extension_follows_gcc() {
    assert_eq!(replace_extension(OsStr::new("obj/c.o"), "d"), "obj/c.d");
    assert_eq!(replace_extension(OsStr::new("foo"), "d"), "foo.d");
    assert_eq!(replace_extension(OsStr::new("d.x/foo"), "d"), "d.x/foo.d");
    assert_eq!(replace_extension(OsStr::new("a.b.o"), "d"), "a.b.d");
    assert_eq!(replace_extension(OsStr::new(".hidden"), "d"), ".d");
}

#[test]
fn source_names() {
    assert!(is_source_name(OsStr::new("a.c")));
    assert!(is_source_name(OsStr::new("a.S")));
    assert!(!is_source_name(OsStr::new("a.o")));
    assert!(!is_source_name(OsStr::new("a.h")));
}

#[test]
fn gcc_server_expands_macros() {
    assert!(remote("-c a.c").server_expands_macros);
    assert!(!remote("-c a.i").server_expands_macros);
    assert!(!remote_with(&clang(), "-c a.c").server_expands_macros);
    let job = remote("-fdirectives-only -c a.c");
    assert_eq!(job.cpp_args.iter().filter(|w| *w == "-fdirectives-only").count(), 1);
    assert_eq!(job.server_args.iter().filter(|w| *w == "-fdirectives-only").count(), 1);
}

#[test]
fn gcc_preprocessor_lists_headers() {
    let job = remote("-c a.c");
    assert!(job.lists_headers);
    assert_eq!(job.cpp_args, words("-fdirectives-only -H -E a.c"));
    for user_list in ["-H -c a.c", "-Wp,-MD,a.d,-H -c a.c", "-Xpreprocessor -H -c a.c"] {
        let job = remote(user_list);
        assert!(!job.lists_headers, "{user_list}");
        assert_eq!(job.cpp_args.iter().filter(|w| *w == "-H").count(), usize::from(!user_list.starts_with("-Wp")), "{user_list}");
    }
    for user_list in ["--trace-includes -c a.c", "-Wp,--trace-includes -c a.c", "-Xpreprocessor --trace-includes -c a.c"] {
        let job = remote(user_list);
        assert!(!job.lists_headers, "{user_list}");
        assert!(!job.cpp_args.iter().any(|w| w == "-H"), "{user_list}");
    }
    assert!(remote("-Wp,-D_FORTIFY_SOURCE=2,-Hx -c a.c").lists_headers);
    assert!(!remote("-c a.i").lists_headers);
    assert!(!remote_with(&clang(), "-c a.c").lists_headers);
}

#[test]
fn openmp_is_preprocessed_fully() {
    let job = remote("-fopenmp -c a.c");
    assert_eq!(job.cpp_args, words("-C -fopenmp -E a.c"));
    assert_eq!(job.server_args, words("-fopenmp -x cpp-output a.c -c -o distcc-output.o"));
    assert!(!job.server_expands_macros);
}

#[test]
fn sanitizers_need_unexpanded_macros() {
    remote("-fsanitize=undefined -c a.c");
    assert!(local("-fopenmp -fsanitize=undefined -c a.c").contains("columns"));
    assert!(local_with(&clang(), "-fsanitize=address -c a.c").contains("columns"));
}

#[test]
fn warnings_match_without_excerpts() {
    assert!(!remote("-Wall -c a.c").server_warnings_match);
    assert!(remote("-Wall -fno-diagnostics-show-caret -c a.c").server_warnings_match);
    assert!(!remote("-fno-diagnostics-show-caret -fdiagnostics-show-caret -c a.c").server_warnings_match);
    assert!(!remote_with(&clang(), "-fno-diagnostics-show-caret -c a.c").server_warnings_match);
    assert!(!remote("-fopenmp -fno-diagnostics-show-caret -c a.c").server_warnings_match);
}

#[test]
fn clang_reads_wp_dependency_file_itself() {
    let job = remote_with(&clang(), "-Wp,-MD,wp.d -c c.c -o obj/c.o");
    assert_eq!(job.cpp_args, words("-MQ obj/c.o -Wp,-MD,wp.d -E c.c"));
    let reason = local_with(&clang(), "-Wp,-MD,wp.d,-MT,tgt -c c.c -o obj/c.o");
    assert!(reason.contains("-Wp"), "{reason}");
}

#[test]
fn dependency_file_on_stdout_is_local() {
    for name in ["-", "/dev/stdout", "/dev/fd/1"] {
        let reason = local(&format!("-MD -MF {name} -c a.c -o a.o"));
        assert!(reason.contains("standard output"), "{name}: {reason}");
        let joined = local(&format!("-MD -MF{name} -c a.c -o a.o"));
        assert!(joined.contains("standard output"), "{name} joined: {joined}");
    }
}

#[test]
fn fixit_output_needs_local_warnings() {
    assert!(remote("-fno-diagnostics-show-caret -c a.c").server_warnings_match);
    assert!(!remote("-fno-diagnostics-show-caret -fdiagnostics-generate-patch -c a.c").server_warnings_match);
    assert!(!remote("-fno-diagnostics-show-caret -fdiagnostics-parseable-fixits -c a.c").server_warnings_match);
}
