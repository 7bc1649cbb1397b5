//! A distccd with its own IP address in a network namespace, reached over a
//! veth pair and authenticated as `host/NAME` for a real-looking host name,
//! which the client finds by a reverse lookup of the server's address.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common;
use crate::support::{Workspace, assert_same_object, private_mounts_unavailable, run_command, with_private_resolver};

/// Exit status of scripts/netns-host when namespaces are unavailable.
const EXIT_UNAVAILABLE: i32 = 77;

/// A host set up by scripts/netns-host; torn down when dropped.
struct NamespaceHost {
    state: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl NamespaceHost {
    /// Sets the host up, or returns why it cannot be set up here.
    fn start(bed_dir: &Path) -> Result<NamespaceHost, String> {
        let state = tempfile::Builder::new().prefix("distcc-rs-netns-").tempdir().unwrap();
        let output = Command::new(common::repo().join("scripts/netns-host"))
            .arg("up")
            .arg(bed_dir)
            .arg(state.path())
            .output()
            .expect("run scripts/netns-host");
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        if output.status.code() == Some(EXIT_UNAVAILABLE) {
            return Err(stderr.trim().to_string());
        }
        assert!(output.status.success(), "scripts/netns-host up failed ({}):\n{stderr}", output.status);
        let text = std::fs::read_to_string(state.path().join("env")).unwrap();
        let env = text
            .lines()
            .filter_map(|line| line.strip_prefix("export "))
            .filter_map(|pair| pair.split_once('='))
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        Ok(NamespaceHost { state, env })
    }

    fn var(&self, name: &str) -> &str {
        self.env.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str()).unwrap_or_else(|| panic!("no {name}"))
    }

    fn path(&self, name: &str) -> PathBuf {
        PathBuf::from(self.var(name))
    }
}

impl Drop for NamespaceHost {
    fn drop(&mut self) {
        let status = Command::new(common::repo().join("scripts/netns-host")).arg("down").arg(self.state.path()).status();
        if !matches!(status, Ok(status) if status.success()) {
            eprintln!("scripts/netns-host down {} failed: {status:?}", self.state.path().display());
        }
    }
}

#[test]
fn netns_host_authenticated_by_reverse_name() {
    if let Some(reason) = private_mounts_unavailable() {
        eprintln!("skipped: a private mount namespace for /etc/hosts is unavailable: {reason}");
        return;
    }
    let bed = common::bed();
    let host = match NamespaceHost::start(&bed.dir) {
        Ok(host) => host,
        Err(reason) => {
            eprintln!("skipped: {reason}");
            return;
        }
    };
    let address = host.var("NETNS_ADDR");
    let name = host.var("NETNS_HOSTNAME");
    assert_ne!(name, "localhost");

    let workspace = Workspace::new();
    workspace.write("ns.c", b"#include <string.h>\nsize_t length(const char *s) { return strlen(s); }\n");
    workspace.compile_locally(&["-c", "ns.c", "-o", "local.o"]);
    let kerberos: Vec<(String, String)> = bed.kerberos_env();

    // Written as an address, the entry needs the reverse lookup; written as
    // the name, a forward lookup first.
    for (entry, output) in [(format!("{address},auth"), "by-address.o"), (format!("{name},auth"), "by-name.o")] {
        let mut env: Vec<(&str, &str)> = kerberos.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        env.extend([("DISTCC_HOSTS", entry.as_str()), ("DISTCC_FALLBACK", "0"), ("DISTCC_VERBOSE", "1")]);
        let command = workspace.command(&env, &["gcc", "-c", "ns.c", "-o", output]);
        let run = run_command(&mut with_private_resolver(&command, &host.path("NETNS_HOSTS_FILE"), &host.path("NETNS_RESOLV_FILE")));
        run.assert_success();
        let stderr = run.stderr();
        assert!(stderr.contains(&format!("connected to {address}:3632")), "entry {entry}:\n{stderr}");
        assert!(stderr.contains(&format!("target principal host/{name}")), "entry {entry}:\n{stderr}");
        assert!(stderr.contains("server granted access to alice@"), "entry {entry}:\n{stderr}");
        assert_same_object(&workspace.path(output), &workspace.path("local.o"));
    }

    let log = host.path("NETNS_LOG");
    let client = format!("client: {}:", host.var("NETNS_CLIENT_ADDR"));
    assert_eq!(common::log_lines_after_wait(&log, &[&client, "COMPILE_OK"], 2), 2, "server log:\n{}", std::fs::read_to_string(&log).unwrap_or_default());
}
