//! Transports against stock distccd: protocol 2 (LZO), ssh hosts, IPv6 and
//! timeouts, with scripted servers for faults a real server cannot produce.

mod ipv6;
mod lzo_wire;
mod ssh_hosts;
mod support;
mod timeouts;
