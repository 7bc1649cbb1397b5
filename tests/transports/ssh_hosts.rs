//! ssh hosts, with a stand-in for ssh that logs its arguments and runs the
//! remote command on this machine. No real ssh connection is made.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::common;
use crate::support::{Workspace, assert_same_object};

/// Writes the stand-in: it appends its arguments to `log`, skips ssh's
/// options and the host name, and runs the rest (the remote command) here.
fn write_fake_ssh(workspace: &Workspace, log: &Path) -> PathBuf {
    let script = format!(
        r#"#!/bin/sh
# Stand-in for ssh: log the arguments, then run the remote command locally.
printf '%s\n' "$*" >> '{log}'
while [ $# -gt 0 ]; do
    case "$1" in
        -l|-o|-p|-i) shift 2 ;;
        -*) shift ;;
        *) break ;;
    esac
done
shift
exec "$@"
"#,
        log = log.display()
    );
    let path = workspace.write("fake-ssh", script.as_bytes());
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

const SOURCE: &[u8] = b"#include <stdio.h>\nint main(void) { puts(\"ssh\"); return 0; }\n";

#[test]
fn ssh_host_runs_inetd_twice() {
    let workspace = Workspace::new();
    workspace.write("hello.c", SOURCE);
    let log = workspace.path("ssh.log");
    let fake_ssh = write_fake_ssh(&workspace, &log);
    workspace.compile_locally(&["-c", "hello.c", "-o", "local.o"]);

    for round in 1..=2 {
        let output = format!("remote{round}.o");
        let run = workspace.run(
            &[
                ("DISTCC_SSH", fake_ssh.to_str().unwrap()),
                ("DISTCC_HOSTS", "alice@build.example"),
                ("DISTCC_FALLBACK", "0"),
                ("DISTCC_VERBOSE", "1"),
            ],
            &["gcc", "-c", "hello.c", "-o", &output],
        );
        run.assert_success();
        assert!(run.stderr().contains("compiled hello.c on alice@build.example"), "round {round}: {}", run.stderr());
        assert!(run.stderr().contains("exited with status 0"), "ssh child not reaped: {}", run.stderr());
        assert_same_object(&workspace.path(&output), &workspace.path("local.o"));
    }

    let logged = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = logged.lines().collect();
    assert_eq!(lines.len(), 2, "one ssh run per job: {logged}");
    for line in lines {
        assert!(line.starts_with("-l alice build.example distccd --inetd"), "stand-in got: {line}");
    }
}

#[test]
fn ssh_entry_in_show_hosts() {
    let workspace = Workspace::new();
    let run = workspace.run(&[("DISTCC_HOSTS", "alice@build.example/4:/usr/sbin/distccd")], &["--show-hosts"]);
    assert_eq!(run.code(), Some(0), "{}", run.stderr());
    assert_eq!(String::from_utf8_lossy(&run.output.stdout), "alice@build.example/4:/usr/sbin/distccd\n");

    let run = workspace.run(&[("DISTCC_HOSTS", "@build.example,lzo")], &["--show-hosts"]);
    assert_eq!(String::from_utf8_lossy(&run.output.stdout), "@build.example/4,lzo\n");
}

#[test]
fn ssh_names_read_as_options_rejected() {
    let workspace = Workspace::new();
    for entry in ["-oProxyCommand=x@host", "alice@-oProxyCommand=x", "alice@host:-x"] {
        let run = workspace.run(&[("DISTCC_HOSTS", entry)], &["--show-hosts"]);
        assert_eq!(run.code(), Some(106), "entry {entry} accepted: {}", run.stderr());
        assert!(run.stderr().contains(&format!("invalid host entry '{entry}'")), "{}", run.stderr());
        assert!(run.stderr().contains("must not start with '-'"), "{}", run.stderr());
    }
}

#[test]
fn ssh_lzo_host_compresses() {
    let workspace = Workspace::new();
    workspace.write("hello.c", SOURCE);
    let log = workspace.path("ssh.log");
    let fake_ssh = write_fake_ssh(&workspace, &log);
    let run = workspace.run(
        &[
            ("DISTCC_SSH", fake_ssh.to_str().unwrap()),
            ("DISTCC_HOSTS", "@build.example,lzo"),
            ("DISTCC_FALLBACK", "0"),
            ("DISTCC_VERBOSE", "1"),
        ],
        &["gcc", "-c", "hello.c", "-o", "remote.o"],
    );
    run.assert_success();
    assert!(run.stderr().contains("LZO-compressed"), "{}", run.stderr());
    workspace.compile_locally(&["-c", "hello.c", "-o", "local.o"]);
    assert_same_object(&workspace.path("remote.o"), &workspace.path("local.o"));
}

#[test]
fn ssh_failure_reports_stderr_and_falls_back() {
    let workspace = Workspace::new();
    workspace.write("hello.c", SOURCE);
    let failing = workspace.write(
        "failing-ssh",
        b"#!/bin/sh\necho 'ssh: connect to host build.example port 22: Connection refused' >&2\nexit 255\n",
    );
    std::fs::set_permissions(&failing, std::fs::Permissions::from_mode(0o755)).unwrap();

    let run = workspace.run(
        &[("DISTCC_SSH", failing.to_str().unwrap()), ("DISTCC_HOSTS", "alice@build.example")],
        &["gcc", "-c", "hello.c", "-o", "hello.o"],
    );
    run.assert_success();
    let stderr = run.stderr();
    assert!(stderr.contains("exited with status 255"), "{stderr}");
    assert!(stderr.contains("Connection refused"), "ssh's stderr missing: {stderr}");
    assert!(stderr.contains("compiling locally"), "{stderr}");
    workspace.compile_locally(&["-c", "hello.c", "-o", "local.o"]);
    assert_same_object(&workspace.path("hello.o"), &workspace.path("local.o"));

    let run = workspace.run(
        &[("DISTCC_SSH", "/nonexistent/ssh"), ("DISTCC_HOSTS", "alice@build.example"), ("DISTCC_FALLBACK", "0")],
        &["gcc", "-c", "hello.c", "-o", "hello2.o"],
    );
    assert_ne!(run.code(), Some(0));
    assert!(run.stderr().contains("cannot run ssh command '/nonexistent/ssh' (DISTCC_SSH)"), "{}", run.stderr());
    assert!(!workspace.path("hello2.o").exists());
}

#[test]
fn ssh_silent_command_times_out() {
    // An ssh command that never replies is bounded by the I/O timeout and
    // is stopped afterwards.
    let workspace = Workspace::new();
    workspace.write("hello.c", SOURCE);
    let silent = workspace.write("silent-ssh", b"#!/bin/sh\nexec sleep 60\n");
    std::fs::set_permissions(&silent, std::fs::Permissions::from_mode(0o755)).unwrap();
    let run = workspace.run(
        &[("DISTCC_SSH", silent.to_str().unwrap()), ("DISTCC_HOSTS", "@build.example"), ("DISTCC_IO_TIMEOUT", "1")],
        &["gcc", "-c", "hello.c", "-o", "hello.o"],
    );
    run.assert_success();
    assert!(run.stderr().contains("timed out after 1 s (DISTCC_IO_TIMEOUT)"), "{}", run.stderr());
    assert!(run.stderr().contains("was killed by SIGTERM"), "{}", run.stderr());
    assert!(run.elapsed.as_secs_f64() < 5.0, "took {:?}", run.elapsed);
}

#[test]
fn ssh_host_with_auth() {
    // GSS-API authentication runs over the ssh child's pipes as over TCP:
    // the remote command is a wrapper that starts distccd --auth.
    let bed = common::bed();
    let workspace = Workspace::new();
    workspace.write("hello.c", SOURCE);
    workspace.compile_locally(&["-c", "hello.c", "-o", "local.o"]);
    let log = workspace.path("ssh.log");
    let fake_ssh = write_fake_ssh(&workspace, &log);

    // distccd leaves root for an unprivileged user before it reads its
    // keytab, so the keytab copy and the workspace must be reachable.
    std::fs::set_permissions(workspace.dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let keytab = workspace.path("server.keytab");
    std::fs::copy(bed.dir.join("kdc/host-localhost.keytab"), &keytab).unwrap();
    std::fs::set_permissions(&keytab, std::fs::Permissions::from_mode(0o644)).unwrap();
    let rcache = workspace.path("rcache");
    std::fs::create_dir(&rcache).unwrap();
    std::fs::set_permissions(&rcache, std::fs::Permissions::from_mode(0o777)).unwrap();
    let wrapper = workspace.write(
        "distccd-auth",
        format!(
            "#!/bin/sh\nexport KRB5_KTNAME=FILE:{} KRB5RCACHEDIR={} DISTCCD_PRINCIPAL=host/localhost\nexec distccd --auth \"$@\"\n",
            keytab.display(),
            rcache.display()
        )
        .as_bytes(),
    );
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();

    let entry = format!("alice@build.example:{},auth=localhost", wrapper.display());
    let kerberos = bed.kerberos_env();
    let mut env: Vec<(&str, &str)> = kerberos.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    env.extend([
        ("DISTCC_SSH", fake_ssh.to_str().unwrap()),
        ("DISTCC_HOSTS", entry.as_str()),
        ("DISTCC_FALLBACK", "0"),
        ("DISTCC_VERBOSE", "1"),
    ]);
    let run = workspace.run(&env, &["gcc", "-c", "hello.c", "-o", "remote.o"]);
    run.assert_success();
    let stderr = run.stderr();
    assert!(stderr.contains("target principal host/localhost"), "{stderr}");
    assert!(stderr.contains("server granted access to alice@"), "{stderr}");
    assert!(stderr.contains("compiled hello.c on alice@build.example"), "{stderr}");
    assert_same_object(&workspace.path("remote.o"), &workspace.path("local.o"));
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.starts_with(&format!("-l alice build.example {} --inetd", wrapper.display())), "{logged}");
}
