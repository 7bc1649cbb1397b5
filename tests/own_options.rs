//! The manual page, `--help`, `--version` and `--install-masquerade`: what a
//! user reads and runs before the first compile. No test bed is needed.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use regex::Regex;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn manual() -> PathBuf {
    repo().join("man/distcc-rs.1")
}

fn distcc_rs() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_distcc-rs"));
    command.env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default());
    command
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn run(command: &mut Command) -> Output {
    command.output().expect("run command")
}

#[test]
fn manual_lints_clean_with_mandoc() {
    let output = run(Command::new("mandoc").args(["-T", "lint"]).arg(manual()));
    let report = format!("{}{}", text(&output.stdout), text(&output.stderr));
    assert!(output.status.success(), "mandoc -T lint failed ({}):\n{report}", output.status);
    assert_eq!(report, "", "mandoc -T lint reported problems");
}

#[test]
fn manual_lints_clean_with_groff() {
    let output = run(Command::new("groff").args(["-ww", "-man", "-z"]).arg(manual()));
    assert!(output.status.success(), "groff failed: {}", text(&output.stderr));
    assert_eq!(text(&output.stderr), "", "groff -ww reported warnings");
}

#[test]
fn manual_renders_with_man() {
    let output = run(Command::new("man").arg("-l").arg(manual()).env("MANWIDTH", "80").env("LC_ALL", "C.UTF-8").env("MAN_DISABLE_SECCOMP", "1").env_remove("MAN_KEEP_FORMATTING"));
    assert!(output.status.success(), "man -l failed: {}", text(&output.stderr));
    assert_eq!(text(&output.stderr), "", "man -l printed warnings");
    let page = text(&output.stdout);
    for heading in [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "OPTIONS",
        "HOST LIST",
        "AUTHENTICATION",
        "LOCAL COMPILES AND FALLBACK",
        "ENVIRONMENT",
        "EXIT STATUS",
        "FILES",
        "EXAMPLES",
        "SEE ALSO",
    ] {
        assert!(page.lines().any(|line| line.trim_end() == heading), "section {heading} missing from the rendered page");
    }
}

#[test]
fn generated_manual_matches_checked_in() {
    let output = run(distcc_rs().args(["--generate", "man"]));
    assert!(output.status.success(), "{}", text(&output.stderr));
    let checked_in = std::fs::read_to_string(manual()).unwrap();
    assert!(
        text(&output.stdout) == checked_in,
        "man/distcc-rs.1 is out of date; run: cargo run -- --generate man > man/distcc-rs.1"
    );
}

/// Returns the names of the environment variables documented in the
/// ENVIRONMENT section: each `.TP` item's `.B NAME` line.
fn documented_variables() -> BTreeSet<String> {
    let page = std::fs::read_to_string(manual()).unwrap();
    let section = page
        .split("\n.SH ")
        .find(|section| section.starts_with("ENVIRONMENT\n"))
        .expect("ENVIRONMENT section");
    let lines: Vec<&str> = section.lines().collect();
    lines
        .windows(2)
        .filter(|pair| pair[0] == ".TP")
        .filter_map(|pair| pair[1].strip_prefix(".B "))
        .map(|name| name.replace("\\-", "-"))
        .collect()
}

/// Source files of the program, without their `#[cfg(test)]` modules (test
/// code sets variables of its own choosing) and without comment lines.
fn program_sources() -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    let mut pending = vec![repo().join("src")];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                let source = std::fs::read_to_string(&path).unwrap();
                let program = source.split("#[cfg(test)]").next().unwrap_or("");
                let code: Vec<&str> = program.lines().filter(|line| !line.trim_start().starts_with("//")).collect();
                files.push((path, code.join("\n")));
            }
        }
    }
    files
}

/// Finds every environment variable the program reads. These are the names
/// passed to a lookup call (`var`, `var_os`, `env_var`, `getenv`, or the
/// `lookup` and `text` closures of the settings code), and every `DISTCC_`
/// name in a string literal, because messages name the variables a user can
/// set.
fn variables_read_by_code() -> BTreeSet<(String, String)> {
    let call = Regex::new(r#"\b(?:var_os|var|env_var|getenv|lookup|text)\(\s*"([A-Za-z_][A-Za-z0-9_]*)""#).unwrap();
    // `(?s:.)` also takes the newline of a backslash-newline continuation.
    let literal = Regex::new(r#""(?:[^"\\]|\\(?s:.))*""#).unwrap();
    let distcc_name = Regex::new(r"\b_?DISTCC_[A-Z0-9_]*[A-Z0-9]\b").unwrap();
    let mut found = BTreeSet::new();
    for (path, code) in program_sources() {
        let file = path.strip_prefix(repo()).unwrap().display().to_string();
        for capture in call.captures_iter(&code) {
            found.insert((capture[1].to_string(), file.clone()));
        }
        for string in literal.find_iter(&code) {
            for name in distcc_name.find_iter(string.as_str()) {
                found.insert((name.as_str().to_string(), file.clone()));
            }
        }
    }
    found
}

#[test]
fn manual_documents_every_variable_read() {
    let documented = documented_variables();
    let read = variables_read_by_code();
    let names: BTreeSet<&str> = read.iter().map(|(name, _)| name.as_str()).collect();
    // The scan must see the variables known to be read, or it proves nothing.
    for known in ["DISTCC_HOSTS", "DISTCC_VERBOSE", "HOME", "PATH", "TMPDIR", "KRB5CCNAME", "_DISTCC_SAFEGUARD"] {
        assert!(names.contains(known), "the source scan missed {known}; found {names:?}");
    }
    let missing: Vec<String> = read
        .iter()
        .filter(|(name, _)| !documented.contains(name))
        .map(|(name, file)| format!("{name} (read in {file})"))
        .collect();
    assert!(
        missing.is_empty(),
        "environment variables read by the code but missing from the ENVIRONMENT section of man/distcc-rs.1 \
         (add them to ENV_VARS in src/config.rs and regenerate the manual): {missing:?}"
    );
}

#[test]
fn long_help_lists_every_documented_variable() {
    let output = run(distcc_rs().arg("--help"));
    assert!(output.status.success());
    let help = text(&output.stdout);
    for name in documented_variables() {
        assert!(help.contains(&name), "--help does not mention {name}");
    }
    for form in ["localhost[/LIMIT]", "HOST[:PORT][/LIMIT][,OPTION...]", "[USER]@HOST[/LIMIT][:COMMAND][,OPTION...]"] {
        assert!(help.contains(form), "--help lacks the host form {form}");
    }
}

#[test]
fn short_help_is_concise_and_lists_options() {
    let output = run(distcc_rs().arg("-h"));
    assert!(output.status.success());
    let help = text(&output.stdout);
    assert!(help.lines().count() <= 25, "-h has {} lines:\n{help}", help.lines().count());
    assert!(!help.contains("DISTCC_IO_TIMEOUT"), "-h leaves the variables to --help");
    let page = std::fs::read_to_string(manual()).unwrap();
    let long_option = Regex::new(r"\\fB\\-\\-([a-z-\\]+)\\fR").unwrap();
    let options: BTreeSet<String> = long_option.captures_iter(&page).map(|c| c[1].replace("\\-", "-")).collect();
    assert!(options.contains("check-hosts"), "{options:?}");
    assert!(options.contains("install-masquerade"), "{options:?}");
    for option in options {
        assert!(help.contains(&format!("--{option}")), "-h lacks --{option}, which the manual lists");
    }
}

#[test]
fn version_names_protocols_and_gssapi() {
    let output = run(distcc_rs().arg("--version"));
    assert!(output.status.success());
    let version = text(&output.stdout);
    assert!(version.starts_with(&format!("distcc-rs {}\n", env!("CARGO_PKG_VERSION"))), "{version}");
    assert!(version.contains("protocols: 1"), "{version}");
    assert!(version.contains("GSS-API"), "{version}");
    assert!(version.contains("built in"), "{version}");
}

#[test]
fn own_option_errors_name_the_value() {
    let cases: [(&[&str], &str); 4] = [
        (&["--check-hosts", "--timeout", "soon"], "invalid time limit 'soon'"),
        (&["--check-hosts", "--format", "xml"], "xml"),
        (&["--show-hosts", "--format", "json"], "--format applies only to --check-hosts and --show-principal"),
        (&["--show-principal", "--compiler", "gcc"], "--compiler applies only to --check-hosts"),
    ];
    for (args, expected) in cases {
        let output = run(distcc_rs().args(args).env("DISTCC_HOSTS", "127.0.0.1:1"));
        assert_eq!(output.status.code(), Some(101), "{args:?}: {}", text(&output.stderr));
        assert!(text(&output.stderr).contains(expected), "{args:?}: {}", text(&output.stderr));
        assert!(output.stdout.is_empty(), "{args:?} printed a report");
    }
}

/// Writes an executable shell script that prints its name.
fn fake_program(path: &Path) {
    std::fs::write(path, "#!/bin/sh\necho \"$0\"\n").unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn install_masquerade_links_compilers_on_path() {
    let scratch = tempfile::tempdir().unwrap();
    let first = scratch.path().join("first");
    let second = scratch.path().join("second");
    let masq = scratch.path().join("masq");
    std::fs::create_dir_all(&first).unwrap();
    std::fs::create_dir_all(&second).unwrap();
    let compilers = ["gcc", "gcc-12", "x86_64-linux-gnu-gcc-12", "g++", "clang++-16", "cc"];
    for name in compilers {
        fake_program(&first.join(name));
    }
    for name in ["gcc-ar", "clang-format", "c++filt", "c89-gcc", "ld"] {
        fake_program(&first.join(name));
    }
    fake_program(&second.join("c++"));
    std::fs::write(second.join("clang"), "not executable").unwrap();
    let path: OsString = std::env::join_paths([&masq, &first, &second]).unwrap();

    let output = run(distcc_rs().env("PATH", &path).arg("--install-masquerade").arg(&masq));
    assert!(output.status.success(), "{}", text(&output.stderr));
    let report = text(&output.stdout);
    let own = PathBuf::from(env!("CARGO_BIN_EXE_distcc-rs")).canonicalize().unwrap();
    let mut linked: Vec<String> = std::fs::read_dir(&masq)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    linked.sort();
    let mut expected: Vec<String> = compilers.iter().map(|s| s.to_string()).chain(["c++".to_string()]).collect();
    expected.sort();
    assert_eq!(linked, expected, "{report}");
    for name in &linked {
        let link = masq.join(name);
        assert_eq!(std::fs::read_link(&link).unwrap(), own, "{name}");
        assert!(report.contains(&format!("created {}", link.display())), "{report}");
    }
    assert!(report.contains("export PATH="), "{report}");

    // A second run keeps the links, and a foreign file is never replaced.
    std::fs::remove_file(masq.join("cc")).unwrap();
    std::fs::write(masq.join("cc"), "keep me").unwrap();
    let output = run(distcc_rs().env("PATH", &path).arg("--install-masquerade").arg(&masq));
    assert_eq!(output.status.code(), Some(107), "{}", text(&output.stderr));
    assert!(text(&output.stderr).contains(&format!("not replacing {}", masq.join("cc").display())), "{}", text(&output.stderr));
    assert_eq!(std::fs::read_to_string(masq.join("cc")).unwrap(), "keep me");
    assert!(text(&output.stdout).contains(&format!("kept {}", masq.join("gcc").display())));
}

#[test]
fn install_masquerade_without_compilers_fails() {
    let scratch = tempfile::tempdir().unwrap();
    let empty = scratch.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let masq = scratch.path().join("masq");
    let output = run(distcc_rs().env("PATH", &empty).arg("--install-masquerade").arg(&masq));
    assert_eq!(output.status.code(), Some(110));
    assert!(text(&output.stderr).contains("no compiler found on PATH"), "{}", text(&output.stderr));
}

#[test]
fn show_hosts_into_closed_pipe_is_quiet() {
    use std::io::{BufRead, BufReader};
    use std::os::unix::process::ExitStatusExt;
    // Far more output than a pipe buffers, so the writer meets the closed pipe.
    let hosts: Vec<String> = (0..20_000).map(|i| format!("host{i}.example:{}", 1000 + i % 60_000)).collect();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hosts"), hosts.join("\n")).unwrap();
    let mut child = distcc_rs()
        .arg("--show-hosts")
        .env("DISTCC_DIR", dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    assert!(first.starts_with("host0.example:1000/4"), "{first}");
    let output = child.wait_with_output().unwrap();
    assert!(!text(&output.stderr).contains("panicked"), "{}", text(&output.stderr));
    assert_eq!(output.status.signal(), Some(libc::SIGPIPE), "{:?}", output.status);
}

#[test]
fn jobs_with_every_host_down_fails() {
    let output = distcc_rs().arg("-j").env("DISTCC_HOSTS", "a,down b/3,down").output().unwrap();
    assert_eq!(output.status.code(), Some(116), "{}", text(&output.stderr));
    assert!(output.stdout.is_empty(), "{}", text(&output.stdout));
    assert!(text(&output.stderr).contains("every host in the list is marked ,down"), "{}", text(&output.stderr));

    let output = distcc_rs().arg("-j").env("DISTCC_HOSTS", "a,down b/3").output().unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout), "3\n");
}
