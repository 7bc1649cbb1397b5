//! Mistakes of the user: invalid settings, a malformed host list, a missing
//! compiler, an unusable TMPDIR and a wrapper script that calls distcc-rs
//! again. Each ends quickly with one clear message and the documented exit
//! code, and contacts no server, so nothing is retried or backed off.

mod common;

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{Scratch, assert_same_file};

const HELLO: &str = "#include <stdio.h>\nint hello(void) { return printf(\"hello\\n\"); }\n";

/// A listening port that records whether a client connected.
struct Watched {
    listener: TcpListener,
}

impl Watched {
    fn new() -> Watched {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        Watched { listener }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.listener.local_addr().unwrap().port())
    }

    fn was_contacted(&self) -> bool {
        self.listener.accept().is_ok()
    }
}

fn compile(scratch: &Scratch, hosts: &str, env: &[(&str, &str)]) -> (Output, Duration) {
    let mut command = Command::new(common::distcc_rs());
    scratch.prepare_without_bed(&mut command, hosts);
    command.args(["gcc", "-O2", "-c", "bad.c", "-o", "bad.o"]);
    for (name, value) in env {
        command.env(name, value);
    }
    let started = Instant::now();
    let output = command.output().unwrap();
    (output, started.elapsed())
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn reference(scratch: &Scratch) -> std::path::PathBuf {
    let path = scratch.path().join("reference.o");
    let status = Command::new("gcc").current_dir(scratch.path()).args(["-O2", "-c", "bad.c", "-o"]).arg(&path).status().unwrap();
    assert!(status.success());
    path
}

/// Returns the variables that `--help` lists with a numeric default, plus
/// those that hold a number but default to unset.
fn numeric_variables() -> Vec<String> {
    let help = Command::new(common::distcc_rs()).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&help.stdout).into_owned();
    let mut names: Vec<String> = text
        .lines()
        .filter_map(|line| {
            let name = line.strip_prefix("  ")?.split_whitespace().next()?;
            let default = line.rsplit_once("(default: ")?.1.strip_suffix(')')?;
            (name.starts_with("DISTCC_") && default.parse::<f64>().is_ok()).then(|| name.to_string())
        })
        .collect();
    names.push("UNCACHED_ERR_FD".into());
    names
}

#[test]
fn invalid_numbers_compile_locally_once() {
    let scratch = Scratch::new();
    scratch.write("bad.c", HELLO);
    let expected = reference(&scratch);
    let variables = numeric_variables();
    for known in ["DISTCC_CONNECT_TIMEOUT", "DISTCC_IO_TIMEOUT", "DISTCC_AUTH_TIMEOUT", "DISTCC_VERBOSE", "DISTCC_FALLBACK"] {
        assert!(variables.iter().any(|v| v == known), "--help lists {known} with a numeric default: {variables:?}");
    }

    for variable in &variables {
        for value in ["abc", "-5", "1x", ""] {
            if value.is_empty() && !variable.ends_with("TIMEOUT") {
                // An empty switch or descriptor counts as unset.
                continue;
            }
            let server = Watched::new();
            let _ = std::fs::remove_file(scratch.path().join("bad.o"));
            let (output, elapsed) = compile(&scratch, &server.host(), &[(variable, value)]);
            let log = stderr(&output);
            let case = format!("{variable}='{value}'");
            assert!(output.status.success(), "{case}: {log}");
            assert_same_file(&scratch.path().join("bad.o"), &expected);
            assert_eq!(log.lines().count(), 1, "{case}: one message: {log}");
            assert!(log.contains(&format!("invalid {case}")), "{case}: {log}");
            assert!(log.contains("compiling locally"), "{case}: {log}");
            assert!(!server.was_contacted(), "{case}: a server was contacted");
            assert!(elapsed < Duration::from_secs(2), "{case}: took {elapsed:?}");
        }
    }

    // Without fallback the job fails with exit code 101 and one message.
    let server = Watched::new();
    let (output, _) = compile(&scratch, &server.host(), &[("DISTCC_IO_TIMEOUT", "-1"), ("DISTCC_FALLBACK", "0")]);
    let log = stderr(&output);
    assert_eq!(output.status.code(), Some(101), "{log}");
    assert_eq!(log.lines().count(), 1, "{log}");
    assert!(log.contains("invalid DISTCC_IO_TIMEOUT='-1'"), "{log}");
    assert!(log.contains("DISTCC_FALLBACK=0"), "{log}");
    assert!(!server.was_contacted());
}

#[test]
fn malformed_host_lists_compile_locally_once() {
    let scratch = Scratch::new();
    scratch.write("bad.c", HELLO);
    let expected = reference(&scratch);
    let lists = [
        ("127.0.0.1:notaport", "invalid port 'notaport'"),
        ("127.0.0.1:0", "port 0 is out of range"),
        ("127.0.0.1/0", "limit 0 is invalid"),
        ("-oProxyCommand=touch@x", "must not start with '-'"),
        ("alice@build:/usr/bin/distccd;reboot", "invalid character ';'"),
        ("@-oProxyCommand=x", "must not start with '-'"),
        ("build,auth,auth", "option 'auth' is given twice"),
        ("build,lzo,nosuch", "unknown option 'nosuch'"),
        ("[::1", "missing ']'"),
        ("::1", "must be written in brackets"),
        ("# only a comment", "no hosts in DISTCC_HOSTS"),
    ];
    for (list, reason) in lists {
        let _ = std::fs::remove_file(scratch.path().join("bad.o"));
        let (output, elapsed) = compile(&scratch, list, &[]);
        let log = stderr(&output);
        assert!(output.status.success(), "{list}: {log}");
        assert_same_file(&scratch.path().join("bad.o"), &expected);
        assert_eq!(log.lines().count(), 1, "{list}: {log}");
        assert!(log.contains(reason), "{list}: expected '{reason}': {log}");
        assert!(elapsed < Duration::from_secs(2), "{list}: took {elapsed:?}");
        assert!(!scratch.path().join("touch").exists());

        let (output, _) = compile(&scratch, list, &[("DISTCC_FALLBACK", "0")]);
        assert_eq!(output.status.code(), Some(116), "{list}: {}", stderr(&output));
        assert_eq!(stderr(&output).lines().count(), 1, "{list}: {}", stderr(&output));
    }
}

#[test]
fn unusable_tmpdir_compiles_locally() {
    let scratch = Scratch::new();
    scratch.write("bad.c", HELLO);
    let expected = reference(&scratch);
    let not_a_directory = scratch.write("plain-file", "");
    let missing = scratch.path().join("missing");
    for (tmpdir, reason) in [(&not_a_directory, "is not a directory"), (&missing, "does not exist")] {
        let server = Watched::new();
        let _ = std::fs::remove_file(scratch.path().join("bad.o"));
        let tmpdir_text = tmpdir.to_str().unwrap();
        let (output, _) = compile(&scratch, &server.host(), &[("TMPDIR", tmpdir_text)]);
        let log = stderr(&output);
        assert!(output.status.success(), "{log}");
        assert_same_file(&scratch.path().join("bad.o"), &expected);
        assert_eq!(log.lines().count(), 1, "{log}");
        assert!(log.contains(&format!("TMPDIR '{tmpdir_text}' {reason}")), "{log}");
        assert!(!server.was_contacted());

        let (output, _) = compile(&scratch, &server.host(), &[("TMPDIR", tmpdir_text), ("DISTCC_FALLBACK", "0")]);
        assert_eq!(output.status.code(), Some(107), "{}", stderr(&output));
    }
}

fn executable(path: &std::path::Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn site_wrapper_calling_distcc_again() {
    let scratch = Scratch::new();
    scratch.write("bad.c", HELLO);
    // A site's `cc` that sends every compile through distcc-rs, ahead of the
    // real compiler on PATH: distcc-rs resolves `cc` to the wrapper again.
    let tools = scratch.path().join("tools");
    executable(&scratch.path().join("site/cc"), "#!/bin/sh\nexec distcc-rs cc \"$@\"\n");
    std::fs::create_dir_all(&tools).unwrap();
    std::os::unix::fs::symlink(common::distcc_rs(), tools.join("distcc-rs")).unwrap();
    let path = format!("{}:{}:/usr/bin:/bin", scratch.path().join("site").display(), tools.display());

    let dead = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_host = format!("127.0.0.1:{}", dead.local_addr().unwrap().port());
    drop(dead);
    let live = Watched::new();
    for hosts in [dead_host, live.host()] {
        let mut command = Command::new(scratch.path().join("site/cc"));
        scratch.prepare_without_bed(&mut command, &hosts);
        command.env("PATH", &path).args(["-O2", "-c", "bad.c", "-o", "bad.o"]);
        let started = Instant::now();
        let output = command.output().unwrap();
        let elapsed = started.elapsed();
        let log = stderr(&output);
        assert_eq!(output.status.code(), Some(111), "{hosts}: {log}");
        assert_eq!(log.lines().count(), 1, "{hosts}: one message: {log}");
        assert!(log.contains("invoked itself recursively"), "{hosts}: {log}");
        assert!(log.contains("site/cc"), "{hosts}: names the wrapper: {log}");
        assert!(elapsed < Duration::from_secs(2), "{hosts}: took {elapsed:?}");
        assert!(!scratch.path().join("bad.o").exists());
    }
}

#[test]
fn missing_compiler_named_once() {
    let scratch = Scratch::new();
    scratch.write("bad.c", HELLO);
    let masquerade = scratch.path().join("masq");
    std::fs::create_dir_all(&masquerade).unwrap();
    std::os::unix::fs::symlink(common::distcc_rs(), masquerade.join("nosuchcc")).unwrap();
    let path = format!("{}:/usr/bin:/bin", masquerade.display());
    let server = Watched::new();

    let mut through_link = Command::new(masquerade.join("nosuchcc"));
    scratch.prepare_without_bed(&mut through_link, &server.host());
    through_link.env("PATH", &path).args(["-c", "bad.c", "-o", "bad.o"]);
    let mut explicit = Command::new(common::distcc_rs());
    scratch.prepare_without_bed(&mut explicit, &server.host());
    explicit.env("PATH", &path).args(["nosuchcc", "-c", "bad.c", "-o", "bad.o"]);

    for mut command in [through_link, explicit] {
        let started = Instant::now();
        let output = command.output().unwrap();
        let log = stderr(&output);
        assert_eq!(output.status.code(), Some(110), "{log}");
        assert_eq!(log.lines().count(), 1, "{log}");
        assert!(log.contains("compiler 'nosuchcc' not found on PATH"), "{log}");
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(!server.was_contacted());
    }
}

/// Runs distcc-rs and plain gcc with `redirect` (such as `>&-`) applied by
/// the shell, and returns both exit codes.
fn with_redirect(scratch: &Scratch, hosts: &str, args: &str, redirect: &str) -> (Option<i32>, Option<i32>) {
    let mut ours = Command::new("sh");
    ours.arg("-c").arg(format!("exec \"$0\" gcc {args} {redirect}")).arg(common::distcc_rs());
    scratch.prepare_without_bed(&mut ours, hosts);
    ours.env("DISTCC_VERBOSE", "1");
    let plain = Command::new("sh").arg("-c").arg(format!("exec gcc {args} {redirect}")).current_dir(scratch.path()).status();
    (ours.status().unwrap().code(), plain.unwrap().code())
}

#[test]
fn closed_standard_descriptors_stay_closed() {
    let scratch = Scratch::new();
    scratch.write("hello.c", HELLO);
    let watched = Watched::new();
    let hosts = watched.host();

    // Assembler to a closed standard output fails as it does with gcc.
    let (ours, plain) = with_redirect(&scratch, &hosts, "-S -o - hello.c", ">&-");
    assert_eq!(ours, plain, "exit code with standard output closed");
    assert_ne!(plain, Some(0));
    assert!(!watched.was_contacted(), "a job for a closed standard output was sent");

    // Messages with standard error closed go nowhere, not into a slot's
    // lock file. The host refuses connections, so the job falls back and
    // the client has messages to write.
    let refused = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let (ours, plain) = with_redirect(&scratch, &refused.to_string(), "-c hello.c -o hello.o", "2>&-");
    assert_eq!(ours, plain, "exit code with standard error closed");
    let expected = scratch.path().join("expected.o");
    assert!(Command::new("gcc").current_dir(scratch.path()).args(["-c", "hello.c", "-o"]).arg(&expected).status().unwrap().success());
    assert_same_file(&scratch.path().join("hello.o"), &expected);
    let lock_dir = scratch.path().join(".distcc/lock");
    let slot_files: Vec<_> = std::fs::read_dir(&lock_dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.file_name().unwrap().to_string_lossy().starts_with("cpu_"))
        .collect();
    assert!(!slot_files.is_empty(), "no slot was taken");
    for path in slot_files {
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0, "{} has content", path.display());
    }
}
