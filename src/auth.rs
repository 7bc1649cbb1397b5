//! GSS-API mutual authentication for hosts marked `,auth`, as stock distccd
//! 3.4 expects it (its `--auth` mode).
//!
//! Right after the TCP connection is made, and before the distcc request:
//! 1. the client sends `*` and the server replies with `*`;
//! 2. the client runs the GSS-API initiator (Kerberos 5), requesting mutual
//!    authentication, replay and sequence detection; each context token goes
//!    over the wire as a `TLEN` token header followed by the token bytes, in
//!    both directions, until the context is complete;
//! 3. the server sends one byte: `y` (access granted) or `n` (the client's
//!    principal is blacklisted, or missing from the whitelist).
//!
//! Only the start of the connection is protected: after the verdict the job
//! travels unencrypted and without integrity protection, exactly as with
//! stock distcc. Tokens and tickets are never logged.

use std::cell::OnceCell;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::config::format_seconds;
use crate::gssapi::{self, ClientContext, Cred, GssError, Name};
use crate::protocol;
use crate::transport::Stream;

/// Largest context token accepted from a server. Kerberos AP-REP tokens are a
/// few hundred bytes; anything near this bound is not a real token.
const MAX_TOKEN_BYTES: u32 = 256 * 1024;

/// Most context tokens accepted from a server in one handshake. Kerberos
/// needs one; the bound stops a server that never completes the context.
const MAX_ROUNDS: usize = 8;

/// The flags the completed context must grant.
const REQUIRED_FLAGS: u32 = gssapi::MUTUAL_FLAG | gssapi::REPLAY_FLAG | gssapi::SEQUENCE_FLAG;

/// An authentication failure.
#[derive(Debug)]
pub enum AuthError {
    /// No usable credentials on the client: a problem of the client's, not the server's.
    Credentials(String),
    /// The server did not send `*` in time.
    HandshakeTimeout(Duration),
    /// The connection failed or sent something else during the handshake.
    Handshake(String),
    /// GSS-API reported an error while building the context.
    Gssapi(String),
    /// GSS-API failed before any token reached the server: the first step
    /// only reads the credential cache and asks the KDC for a service
    /// ticket, so the server is not at fault (unknown service principal,
    /// KDC unreachable).
    LocalGssapi(String),
    /// The server sent the verdict `n`.
    AccessDenied { principal: String },
    /// A read timed out after the `*` exchange.
    Timeout { waiting_for: &'static str, after: Duration },
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthError::Credentials(message) => write!(f, "{message}"),
            AuthError::HandshakeTimeout(after) => write!(
                f,
                "server did not answer the authentication handshake within {} (DISTCC_AUTH_TIMEOUT); is it running distccd --auth?",
                format_seconds(*after)
            ),
            AuthError::Handshake(message) => write!(f, "{message}"),
            AuthError::Gssapi(message) | AuthError::LocalGssapi(message) => write!(f, "{message}"),
            AuthError::AccessDenied { principal } => {
                write!(f, "access denied by server for {principal} (blacklisted or not whitelisted)")
            }
            AuthError::Timeout { waiting_for, after } => write!(
                f,
                "server did not send {waiting_for} within {} (DISTCC_AUTH_TIMEOUT)",
                format_seconds(*after)
            ),
        }
    }
}

/// The client's Kerberos credentials, acquired once per job.
pub struct Credentials {
    cred: Cred,
    /// The client principal, looked up on first use: only messages need it,
    /// and the lookup costs a Kerberos context of its own.
    principal: OnceCell<String>,
}

impl Credentials {
    /// Returns the client principal, e.g. `alice@EXAMPLE.COM`: used in
    /// messages, never secret.
    pub fn principal(&self) -> &str {
        self.principal
            .get_or_init(|| self.cred.principal().unwrap_or_else(|_| "an unknown principal".into()))
    }
}

/// Acquires the default initiator credentials from the credential cache.
pub fn acquire_credentials() -> Result<Credentials, AuthError> {
    check_cache_file()?;
    let (cred, remaining) = Cred::acquire_default().map_err(|e| AuthError::Credentials(describe_credential_error(&e)))?;
    if remaining.is_zero() {
        return Err(AuthError::Credentials(expired_message()));
    }
    Ok(Credentials { cred, principal: OnceCell::new() })
}

impl Credentials {
    /// Returns how long the ticket-granting ticket remains valid.
    pub fn remaining_lifetime(&self) -> Result<Duration, AuthError> {
        self.cred.lifetime().map_err(|e| AuthError::Credentials(describe_credential_error(&GssError::Call(e))))
    }
}

/// Obtains the service ticket for `target` without contacting the server:
/// the first initiator step of a GSS-API context asks the KDC for it, or
/// finds it in the credential cache. This tells a service principal that the
/// KDC does not know apart from a server that fails later in the handshake.
pub fn obtain_service_ticket(credentials: &Credentials, target: &Target) -> Result<(), AuthError> {
    let name_type = if target.host_based { &gssapi::NT_HOSTBASED_SERVICE } else { &gssapi::NT_USER_NAME };
    let name = Name::import(target.name.as_bytes(), name_type)
        .map_err(|e| AuthError::Gssapi(format!("invalid target principal '{}': {e}", target.name)))?;
    let mut context = ClientContext::new(&credentials.cred, name, REQUIRED_FLAGS);
    context.step(None).map_err(|e| AuthError::Gssapi(describe_context_error(&e, target)))?;
    Ok(())
}

/// Rejects a `KRB5CCNAME` file that is not a credential cache. MIT Kerberos
/// 1.20 (Debian 12) can crash in gss_acquire_cred on such a file (a
/// principal freed in krb5_cccol_have_content), so the header is checked
/// first: a cache file starts with 0x05 and a format version from 1 to 4.
/// Missing and empty files are left to the library, which reports them.
fn check_cache_file() -> Result<(), AuthError> {
    let Ok(name) = std::env::var("KRB5CCNAME") else {
        return Ok(());
    };
    let path = match name.split_once(':') {
        Some(("FILE", path)) => path,
        // Other cache types (DIR:, KEYRING:, KCM:, MEMORY:) are not files.
        Some((kind, _)) if !kind.is_empty() && kind.bytes().all(|b| b.is_ascii_uppercase()) => return Ok(()),
        _ => name.as_str(),
    };
    let mut header = [0u8; 2];
    let read = match std::fs::File::open(path) {
        Ok(mut file) => std::io::Read::read(&mut file, &mut header).unwrap_or(0),
        Err(_) => return Ok(()),
    };
    if read == 0 || (header[0] == 0x05 && (1..=4).contains(&header[1]) && read == 2) {
        return Ok(());
    }
    Err(AuthError::Credentials(format!(
        "KRB5CCNAME file '{path}' is not a Kerberos credential cache; run kinit"
    )))
}

/// Returns the name of the credential cache in use, for messages.
pub fn cache_name() -> String {
    std::env::var("KRB5CCNAME").unwrap_or_else(|_| "the default credential cache".into())
}

fn expired_message() -> String {
    format!("Kerberos ticket in {} has expired; run kinit", cache_name())
}

fn describe_credential_error(error: &GssError) -> String {
    let routine = match error {
        GssError::Load(load) => return load.to_string(),
        GssError::Call(call) => call.routine(),
    };
    if routine == gssapi::S_CREDENTIALS_EXPIRED {
        expired_message()
    } else if routine == gssapi::S_NO_CRED {
        format!("no valid Kerberos ticket in {}; run kinit ({error})", cache_name())
    } else {
        format!("cannot read Kerberos credentials from {}: {error}", cache_name())
    }
}

/// The service principal to ask for, and how GSS-API should read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `host/build1.example.com`, or `distcc@build1.example.com` for a host-based name.
    pub name: String,
    pub host_based: bool,
}

/// Chooses the target principal, as stock distcc does: `host/NAME` read as a
/// Kerberos user name, or with `DISTCC_PRINCIPAL=SERVICE` the host-based
/// service `SERVICE@NAME`. NAME is `auth=NAME` when given, else the canonical
/// name of the connected peer (IPv4 or IPv6; stock distcc 3.4 looks up IPv4
/// only), else the host name written in the entry.
///
/// Fails when the entry is an IP address whose reverse lookup finds no name,
/// because `host/ADDRESS` is never a real principal.
pub fn choose_target(
    named: Option<&str>,
    peer: Option<SocketAddr>,
    entry_host: &str,
    service: Option<&str>,
) -> Result<Target, String> {
    let host = match named {
        Some(name) => name.to_string(),
        None => match peer.and_then(|addr| peer_name(addr.ip())) {
            Some(name) => name,
            None if entry_host.parse::<IpAddr>().is_ok() => {
                let address = peer.map(|addr| addr.ip().to_string()).unwrap_or_else(|| entry_host.to_string());
                return Err(format!(
                    "cannot choose the service principal for {entry_host}: the reverse lookup of {address} found no host name; \
                     add the address to /etc/hosts or DNS, or name the principal's host with ,auth=NAME"
                ));
            }
            None => entry_host.to_string(),
        },
    };
    log::debug!("service principal host name: {host}");
    Ok(match service {
        Some(service) => Target { name: format!("{service}@{host}"), host_based: true },
        None => Target { name: format!("host/{host}"), host_based: false },
    })
}

/// Returns the canonical name of the peer. A loopback address is looked up
/// in /etc/hosts only, never in DNS (a PTR query for ::1 would leave the
/// machine), and is `localhost` when the file does not name it: some systems
/// map 127.0.0.1 but not ::1. Other addresses use the system's reverse lookup.
fn peer_name(ip: IpAddr) -> Option<String> {
    if ip.is_loopback() {
        let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
        return Some(name_in_hosts_file(&hosts, ip).unwrap_or_else(|| "localhost".to_string()));
    }
    reverse_lookup(ip)
}

/// Returns the first name that a hosts file gives `ip`, as the system's
/// resolver does.
fn name_in_hosts_file(text: &str, ip: IpAddr) -> Option<String> {
    text.lines()
        .map(|line| line.split('#').next().unwrap_or(""))
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let address = fields.next()?.parse::<IpAddr>().ok()?;
            let name = fields.next()?;
            (address == ip).then(|| name.to_string())
        })
        .next()
}

/// Looks up the canonical name of an IPv4 or IPv6 address.
pub fn reverse_lookup(ip: IpAddr) -> Option<String> {
    let (storage, length) = socket_address(ip);
    let mut host = [0 as libc::c_char; 1025];
    // SAFETY: `storage` contains a valid sockaddr of `length` bytes and `host` is
    // a writable buffer of the given size; getnameinfo NUL-terminates it.
    let rc = unsafe {
        libc::getnameinfo(
            &storage as *const libc::sockaddr_storage as *const libc::sockaddr,
            length,
            host.as_mut_ptr(),
            host.len() as libc::socklen_t,
            std::ptr::null_mut(),
            0,
            libc::NI_NAMEREQD,
        )
    };
    if rc != 0 {
        return None;
    }
    // SAFETY: getnameinfo succeeded, so `host` is NUL-terminated.
    let name = unsafe { std::ffi::CStr::from_ptr(host.as_ptr()) };
    name.to_str().ok().map(str::to_string)
}

fn socket_address(ip: IpAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data; all-zero is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    match ip {
        IpAddr::V4(v4) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: 0,
                sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(v4.octets()) },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_in fits in sockaddr_storage.
            unsafe { std::ptr::write(&mut storage as *mut _ as *mut libc::sockaddr_in, sin) };
            (storage, std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t)
        }
        IpAddr::V6(v6) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: 0,
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr { s6_addr: v6.octets() },
                sin6_scope_id: 0,
            };
            // SAFETY: sockaddr_in6 fits in sockaddr_storage.
            unsafe { std::ptr::write(&mut storage as *mut _ as *mut libc::sockaddr_in6, sin6) };
            (storage, std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t)
        }
    }
}

/// Runs the whole handshake on a connected stream. On success the stream is
/// ready for the distcc request; the read timeout is left at `timeout`.
pub fn authenticate(
    stream: &mut impl Stream,
    credentials: &Credentials,
    target: &Target,
    timeout: Duration,
) -> Result<(), AuthError> {
    let started = Instant::now();
    set_timeout(stream, timeout)?;
    exchange_stars(stream, timeout)?;
    log::debug!("server answered the authentication handshake after {:.1} ms", ms(started));

    let name_type = if target.host_based { &gssapi::NT_HOSTBASED_SERVICE } else { &gssapi::NT_USER_NAME };
    let name = Name::import(target.name.as_bytes(), name_type)
        .map_err(|e| AuthError::Gssapi(format!("invalid target principal '{}': {e}", target.name)))?;
    let mut context = ClientContext::new(&credentials.cred, name, REQUIRED_FLAGS);
    run_context_loop(stream, &mut context, target, timeout)?;
    check_flags(&context)?;
    log::debug!("GSS-API context with {} complete after {:.1} ms", target.name, ms(started));

    read_verdict(stream, credentials, timeout)?;
    log::debug!("server granted access to {} after {:.1} ms", credentials.principal(), ms(started));
    Ok(())
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

fn set_timeout(stream: &impl Stream, timeout: Duration) -> Result<(), AuthError> {
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| AuthError::Handshake(format!("cannot set the handshake timeout: {e}")))
}

fn is_timeout(error: &std::io::Error) -> bool {
    matches!(error.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)
}

fn exchange_stars(stream: &mut impl Stream, timeout: Duration) -> Result<(), AuthError> {
    stream
        .write_all(b"*")
        .map_err(|e| AuthError::Handshake(format!("sending the handshake failed: {e}")))?;
    let mut reply = [0u8; 1];
    stream.quick_ack();
    match stream.read(&mut reply) {
        Ok(1) if reply[0] == b'*' => Ok(()),
        Ok(1) => Err(AuthError::Handshake(format!(
            "server answered the handshake with {} instead of '*'; is it running distccd --auth?",
            protocol::printable(&reply)
        ))),
        Ok(_) => Err(AuthError::Handshake(
            "server closed the connection during the handshake; it may not accept authentication".into(),
        )),
        Err(e) if is_timeout(&e) => Err(AuthError::HandshakeTimeout(timeout)),
        Err(e) => Err(AuthError::Handshake(format!("reading the server's handshake failed: {e}"))),
    }
}

fn run_context_loop(
    stream: &mut impl Stream,
    context: &mut ClientContext,
    target: &Target,
    timeout: Duration,
) -> Result<(), AuthError> {
    let mut input: Option<Vec<u8>> = None;
    for _ in 0..=MAX_ROUNDS {
        let first_step = input.is_none();
        let output = context.step(input.as_deref()).map_err(|e| {
            let message = describe_context_error(&e, target);
            if first_step { AuthError::LocalGssapi(message) } else { AuthError::Gssapi(message) }
        })?;
        if let Some(token) = output {
            send_token(stream, &token)?;
        }
        if context.is_complete() {
            return Ok(());
        }
        input = Some(receive_token(stream, timeout)?);
    }
    Err(AuthError::Gssapi(format!(
        "GSS-API context with {} not complete after {MAX_ROUNDS} server tokens",
        target.name
    )))
}

fn describe_context_error(error: &gssapi::Error, target: &Target) -> String {
    if error.routine() == gssapi::S_CREDENTIALS_EXPIRED {
        return expired_message();
    }
    format!("GSS-API authentication as {} failed: {error}", target.name)
}

fn send_token(stream: &mut impl Stream, token: &[u8]) -> Result<(), AuthError> {
    // Header and token in one write: two small writes would wait for a
    // delayed ACK on the server's side.
    let mut frame = Vec::with_capacity(12 + token.len());
    protocol::put_string(&mut frame, b"TLEN", token)
        .map_err(|e| AuthError::Gssapi(format!("context token too large: {e}")))?;
    stream
        .write_all(&frame)
        .map_err(|e| AuthError::Handshake(format!("sending a context token failed: {e}")))
}

fn receive_token(stream: &mut impl Stream, timeout: Duration) -> Result<Vec<u8>, AuthError> {
    stream.quick_ack();
    let length = protocol::read_token(stream, "TLEN").map_err(|e| reply_error(e, "a context token", timeout))?;
    if length == 0 || length > MAX_TOKEN_BYTES {
        return Err(AuthError::Handshake(format!(
            "server sent a context token of invalid length {length} (expected 1 to {MAX_TOKEN_BYTES} bytes)"
        )));
    }
    let mut token = vec![0u8; length as usize];
    stream.quick_ack();
    stream.read_exact(&mut token).map_err(|e| {
        if is_timeout(&e) {
            AuthError::Timeout { waiting_for: "a context token", after: timeout }
        } else {
            AuthError::Handshake(format!("reading a context token failed: {e}"))
        }
    })?;
    Ok(token)
}

fn reply_error(error: protocol::ReplyError, waiting_for: &'static str, timeout: Duration) -> AuthError {
    match error {
        protocol::ReplyError::Io { error, .. } if is_timeout(&error) => {
            AuthError::Timeout { waiting_for, after: timeout }
        }
        other => AuthError::Handshake(other.to_string()),
    }
}

fn check_flags(context: &ClientContext) -> Result<(), AuthError> {
    let granted = context.granted_flags();
    if granted & REQUIRED_FLAGS == REQUIRED_FLAGS {
        Ok(())
    } else {
        Err(AuthError::Gssapi(format!(
            "GSS-API context lacks required protection: requested mutual authentication, replay and sequence detection, granted {}",
            gssapi::describe_flags(granted)
        )))
    }
}

fn read_verdict(stream: &mut impl Stream, credentials: &Credentials, timeout: Duration) -> Result<(), AuthError> {
    let mut verdict = [0u8; 1];
    stream.quick_ack();
    match stream.read(&mut verdict) {
        Ok(1) if verdict[0] == b'y' => Ok(()),
        Ok(1) if verdict[0] == b'n' => Err(AuthError::AccessDenied { principal: credentials.principal().to_string() }),
        Ok(1) => Err(AuthError::Handshake(format!(
            "server sent access verdict {} instead of 'y' or 'n'",
            protocol::printable(&verdict)
        ))),
        Ok(_) => Err(AuthError::Handshake(
            "server closed the connection before sending its access verdict".into(),
        )),
        Err(e) if is_timeout(&e) => Err(AuthError::Timeout { waiting_for: "its access verdict", after: timeout }),
        Err(e) => Err(AuthError::Handshake(format!("reading the access verdict failed: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_from_auth_name() {
        let target = choose_target(Some("build1.example.com"), None, "10.0.0.1", None).unwrap();
        assert_eq!(target, Target { name: "host/build1.example.com".into(), host_based: false });
    }

    #[test]
    fn target_with_service_is_host_based() {
        let target = choose_target(Some("b1"), None, "b1", Some("distcc")).unwrap();
        assert_eq!(target, Target { name: "distcc@b1".into(), host_based: true });
    }

    #[test]
    fn target_falls_back_to_entry_name() {
        let target = choose_target(None, None, "build2", None).unwrap();
        assert_eq!(target.name, "host/build2");
    }

    #[test]
    fn address_entry_without_name_is_an_error() {
        // TEST-NET-1 has no reverse name in /etc/hosts; without a peer no
        // lookup is made at all.
        let error = choose_target(None, None, "192.0.2.7", None).unwrap_err();
        assert!(error.contains("192.0.2.7"), "{error}");
        assert!(error.contains(",auth=NAME"), "{error}");
        let error = choose_target(None, None, "::1", None).unwrap_err();
        assert!(error.contains("::1"), "{error}");
    }

    #[test]
    fn loopback_peer_is_localhost() {
        let peer = "[::1]:3632".parse().ok();
        assert_eq!(choose_target(None, peer, "::1", None).unwrap().name, "host/localhost");
    }

    #[test]
    fn hosts_file_gives_first_name() {
        let text = "# comment\n127.0.0.1\tlocalhost\n::1 ip6-localhost ip6-loopback # v6\n";
        assert_eq!(name_in_hosts_file(text, "::1".parse().unwrap()).as_deref(), Some("ip6-localhost"));
        assert_eq!(name_in_hosts_file(text, "127.0.0.1".parse().unwrap()).as_deref(), Some("localhost"));
        assert_eq!(name_in_hosts_file(text, "127.0.0.2".parse().unwrap()), None);
    }

    #[test]
    fn loopback_reverse_lookup() {
        // /etc/hosts on Debian maps 127.0.0.1 to localhost.
        let name = reverse_lookup("127.0.0.1".parse().unwrap());
        assert_eq!(name.as_deref(), Some("localhost"));
    }
}
