//! Transports against stock distccd: protocol 2 (LZO), ssh hosts, IPv6,
//! timeouts, and a server with its own address in a network namespace.
//! Scripted servers stand in for faults a real server cannot produce.

#[path = "../common/mod.rs"]
mod common;

mod ipv6;
mod lzo_wire;
mod netns;
mod ssh_hosts;
mod support;
mod timeouts;
