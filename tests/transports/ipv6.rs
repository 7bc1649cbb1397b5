//! IPv6 host entries against a stock distccd listening on ::1.

use crate::common;
use crate::support::{Distccd, Workspace, assert_same_object, private_mounts_unavailable, run_command, with_private_resolver};

const SOURCE: &[u8] = b"double half(double x) { return x / 2; }\n";

#[test]
fn ipv6_plain_host_compiles_remotely() {
    let workspace = Workspace::new();
    workspace.write("half.c", SOURCE);
    workspace.compile_locally(&["-c", "half.c", "-o", "local.o"]);
    let server = Distccd::start("::1", &[]);

    for (entry, output) in [(server.entry(), "port.o"), (format!("{}/2", server.entry()), "limit.o")] {
        let run = workspace.run(
            &[("DISTCC_HOSTS", &entry), ("DISTCC_FALLBACK", "0"), ("DISTCC_VERBOSE", "1")],
            &["gcc", "-c", "half.c", "-o", output],
        );
        run.assert_success();
        assert!(run.stderr().contains(&format!("connected to [::1]:{}", server.port)), "{}", run.stderr());
        assert!(run.stderr().contains(&format!("compiled half.c on [::1]:{}", server.port)), "{}", run.stderr());
        assert_same_object(&workspace.path(output), &workspace.path("local.o"));
    }
    assert!(server.log_text().contains("client: ::1:"), "distccd log: {}", server.log_text());
}

#[test]
fn ipv6_entries_in_show_hosts() {
    let workspace = Workspace::new();
    let run = workspace.run(&[("DISTCC_HOSTS", "[::1] [::1]:4000 [::1]/3 [fe80::1]:3633/2,lzo,auth")], &["--show-hosts"]);
    assert_eq!(run.code(), Some(0), "{}", run.stderr());
    assert_eq!(
        String::from_utf8_lossy(&run.output.stdout),
        "[::1]:3632/4\n[::1]:4000/4\n[::1]:3632/3\n[fe80::1]:3633/2,lzo,auth\n"
    );
}

#[test]
fn ipv6_bare_address_rejected() {
    let workspace = Workspace::new();
    for entry in ["::1", "::1:3632", "fe80::1/2"] {
        let run = workspace.run(&[("DISTCC_HOSTS", entry)], &["--show-hosts"]);
        assert_eq!(run.code(), Some(106), "entry {entry}: {}", run.stderr());
        assert!(run.stderr().contains(&format!("invalid host entry '{entry}' in DISTCC_HOSTS")), "{}", run.stderr());
        assert!(run.stderr().contains("brackets"), "{}", run.stderr());
    }

    // A compile with such a list runs locally and names the entry.
    workspace.write("half.c", SOURCE);
    let run = workspace.run(&[("DISTCC_HOSTS", "::1")], &["gcc", "-c", "half.c", "-o", "half.o"]);
    run.assert_success();
    assert!(run.stderr().contains("IPv6 address '::1' must be written in brackets: [::1]"), "{}", run.stderr());
    assert!(workspace.path("half.o").exists());
}

/// Builds the environment of a client of the test bed.
fn bed_env<'a>(kerberos: &'a [(String, String)], extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut env: Vec<(&str, &str)> = kerberos.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    env.extend_from_slice(extra);
    env
}

#[test]
fn ipv6_auth_host_without_name() {
    // `[::1]:PORT,auth`: the target principal comes from the peer ::1,
    // where stock distcc 3.4 looks up 0.0.0.0 instead.
    let bed = common::bed();
    if !bed.has("TESTBED_AUTH6_PORT") {
        panic!("the test bed has no AUTH6 server: ::1 cannot be bound here");
    }
    let workspace = Workspace::new();
    workspace.write("half.c", SOURCE);
    workspace.compile_locally(&["-c", "half.c", "-o", "local.o"]);
    let entry = format!("[::1]:{},auth", bed.port("AUTH6"));
    let kerberos = bed.kerberos_env();
    let env = bed_env(&kerberos, &[("DISTCC_HOSTS", &entry), ("DISTCC_FALLBACK", "0"), ("DISTCC_VERBOSE", "1")]);

    let run = workspace.run(&env, &["gcc", "-c", "half.c", "-o", "auth6.o"]);
    run.assert_success();
    let stderr = run.stderr();
    assert!(stderr.contains("server granted access to alice@"), "{stderr}");
    assert_same_object(&workspace.path("auth6.o"), &workspace.path("local.o"));
    let log = bed.log("AUTH6");
    assert!(common::log_lines_after_wait(&log, &["client: ::1:", "COMPILE_OK"], 1) >= 1, "AUTH6 log has no job from ::1");

    // With a Debian-style /etc/hosts, the reverse lookup of ::1 returns
    // ip6-localhost, and that name's principal is used.
    if let Some(reason) = private_mounts_unavailable() {
        eprintln!("skipped the /etc/hosts part: a private mount namespace is unavailable: {reason}");
        return;
    }
    let hosts = workspace.write("hosts", b"127.0.0.1 localhost\n::1 ip6-localhost ip6-loopback\n");
    let resolv = workspace.write("resolv.conf", b"nameserver 127.0.0.1\n");
    let command = workspace.command(&env, &["gcc", "-c", "half.c", "-o", "named6.o"]);
    let run = run_command(&mut with_private_resolver(&command, &hosts, &resolv));
    run.assert_success();
    assert!(run.stderr().contains("target principal host/ip6-localhost"), "{}", run.stderr());
    assert!(run.stderr().contains("server granted access"), "{}", run.stderr());
    assert_same_object(&workspace.path("named6.o"), &workspace.path("local.o"));
}
