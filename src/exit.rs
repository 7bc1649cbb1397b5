//! Exit codes. distcc-rs uses the codes of stock distcc 3.4 (`src/exitcode.h`
//! upstream) so that build scripts that test for them keep working; a compiler's
//! own status is passed through unchanged.

/// Generic failure of distcc-rs itself.
pub const DISTCC_FAILED: i32 = 100;
/// Invalid command line or environment value.
pub const BAD_ARGUMENTS: i32 = 101;
/// Could not connect to the server or resolve its name.
pub const CONNECT_FAILED: i32 = 103;
/// The host list is invalid.
pub const BAD_HOSTSPEC: i32 = 106;
/// Read, write or temporary-file failure.
pub const IO_ERROR: i32 = 107;
/// The server closed the connection in the middle of a reply.
pub const TRUNCATED: i32 = 108;
/// The server sent something that is not the distcc protocol.
pub const PROTOCOL_ERROR: i32 = 109;
/// The compiler could not be found or executed.
pub const COMPILER_MISSING: i32 = 110;
/// distcc-rs was invoked recursively through its own compiler.
pub const RECURSION: i32 = 111;
/// The server denied access to the client's Kerberos principal.
pub const ACCESS_DENIED: i32 = 113;
/// No usable host.
pub const NO_HOSTS: i32 = 116;
/// A network or authentication timeout fired.
pub const TIMEOUT: i32 = 118;
/// A GSS-API call failed, including missing or expired credentials.
pub const GSSAPI_FAILED: i32 = 119;

/// Returns the conventional name of a signal, such as "SIGSEGV".
pub fn signal_name(signal: i32) -> String {
    match nix::sys::signal::Signal::try_from(signal) {
        Ok(sig) => sig.as_str().to_string(),
        Err(_) => format!("signal {signal}"),
    }
}
