//! Fuzz target: the `DISTCC_HOSTS` parser.
//!
//! Any text must parse or fail without a panic. A parsed entry must keep the
//! invariants the rest of the client relies on: a limit of at least 1, and
//! no name that ssh could read as an option or a shell could interpret. Its
//! canonical text must parse back to the same entry.

#![no_main]

// distcc-rs is a binary crate, so the fuzz targets compile its
// self-contained parser modules directly.
#[allow(dead_code)]
#[path = "../../src/hosts.rs"]
mod hosts;

use hosts::{HostSpec, Transport, parse_host_list};
use libfuzzer_sys::fuzz_target;

fn is_safe_word(word: &str, extra: &str) -> bool {
    !word.starts_with('-') && word.chars().all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
}

fn check_entry(host: &HostSpec) {
    assert!(host.limit >= 1, "{host:?}");
    match &host.transport {
        Transport::Local => {}
        Transport::Tcp { host: name, port, ipv6 } => {
            assert!(*port >= 1, "{host:?}");
            if !*ipv6 {
                assert!(is_safe_word(name, "._-"), "{host:?}");
            }
        }
        Transport::Ssh { user, host: name, command } => {
            assert!(is_safe_word(name, "._-"), "{host:?}");
            if let Some(user) = user {
                assert!(is_safe_word(user, "._-"), "{host:?}");
            }
            if let Some(command) = command {
                assert!(is_safe_word(command, "/._-+~"), "{host:?}");
            }
        }
    }
    let canonical = host.to_string();
    let reparsed = parse_host_list(&canonical, "fuzz").unwrap_or_else(|e| panic!("'{canonical}' does not parse: {e}"));
    assert_eq!(reparsed.hosts.len(), 1, "'{canonical}'");
    let mut expected = host.clone();
    expected.verbatim = canonical.clone();
    assert_eq!(reparsed.hosts[0], expected, "'{canonical}'");
}

fuzz_target!(|data: &[u8]| {
    // Hosts files are read with invalid UTF-8 replaced, as here.
    let text = String::from_utf8_lossy(data);
    if let Ok(list) = parse_host_list(&text, "fuzz") {
        assert!(!list.hosts.is_empty());
        for host in &list.hosts {
            check_entry(host);
        }
    }
});
