//! IPv6 host entries against a stock distccd listening on ::1.

use crate::support::{Distccd, Workspace, assert_same_object};

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
