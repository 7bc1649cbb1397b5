//! One remote attempt on an open connection: authenticate when the host is
//! marked `,auth`, send the job and read the reply, in protocol 1 (plain) or
//! 2 (LZO1X-compressed source, messages and object).

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};


use crate::auth::{self, AuthError, Credentials};
use crate::config::{Config, format_seconds};
use crate::exit;
use crate::hosts::{Auth, HostSpec, Transport};
use crate::lzo;
use crate::ssh::SshConnection;
use crate::protocol::{self, ReplyError};
use crate::tempfiles::{self, OutputTemp};
use crate::transport::{Connection, Stream, plain_io_error};


/// A failed remote attempt, described in plain words for the user.
#[derive(Debug)]
pub struct Failure {
    /// The step that failed: "connect", "authentication", "send", ...
    pub step: &'static str,
    pub message: String,
    /// True when the host is at fault (later work: back it off); false for
    /// problems on the client's side such as a missing Kerberos ticket.
    pub host_fault: bool,
    /// The distcc exit code used when local fallback is disabled.
    pub exit_code: i32,
}

impl Failure {
    pub fn host(step: &'static str, message: impl Into<String>, exit_code: i32) -> Failure {
        Failure { step, message: message.into(), host_fault: true, exit_code }
    }

    pub fn client(step: &'static str, message: impl Into<String>, exit_code: i32) -> Failure {
        Failure { step, message: message.into(), host_fault: false, exit_code }
    }
}

/// The server's reply: the compiler's status, output and object file.
#[derive(Debug)]
pub struct Reply {
    /// Wait status of the server's compiler (exit code << 8, or a signal number).
    pub status: i32,
    pub stderr: Vec<u8>,
    pub stdout: Vec<u8>,
    /// The object file, complete, in the output's directory; present when status is 0.
    pub object: Option<OutputTemp>,
}

/// Runs the GSS-API handshake on a host marked `,auth`.
pub fn authenticate(
    stream: &mut impl Stream,
    host: &HostSpec,
    credentials: &Credentials,
    config: &Config,
) -> Result<(), Failure> {
    let named = match &host.auth {
        Auth::Named(name) => Some(name.as_str()),
        _ => None,
    };
    let entry_host = match &host.transport {
        Transport::Tcp { host, .. } | Transport::Ssh { host, .. } => host.as_str(),
        Transport::Local => "localhost",
    };
    let target = auth::choose_target(named, stream.peer_addr(), entry_host, config.principal.as_deref())
        .map_err(|message| Failure::client("authentication", message, exit::GSSAPI_FAILED))?;
    log::debug!(
        "authenticating to {} as {} with target principal {}",
        host.display_name(),
        credentials.principal(),
        target.name
    );
    let result = auth::authenticate(stream, credentials, &target, config.auth_timeout);
    stream
        .set_read_timeout(Some(config.io_timeout))
        .map_err(|e| Failure::host("authentication", format!("cannot restore the I/O timeout: {e}"), exit::IO_ERROR))?;
    result.map_err(|error| match &error {
        // Problems of the client's Kerberos set-up back off no host.
        AuthError::Credentials(_) | AuthError::LocalGssapi(_) => {
            Failure::client("authentication", error.to_string(), exit::GSSAPI_FAILED)
        }
        AuthError::Gssapi(_) => Failure::host("authentication", error.to_string(), exit::GSSAPI_FAILED),
        AuthError::HandshakeTimeout(_) | AuthError::Timeout { .. } => {
            Failure::host("authentication", error.to_string(), exit::TIMEOUT)
        }
        AuthError::Handshake(_) => Failure::host("authentication", error.to_string(), exit::PROTOCOL_ERROR),
        AuthError::AccessDenied { .. } => Failure::host("authentication", error.to_string(), exit::ACCESS_DENIED),
    })
}

/// Returns the protocol version to speak with `host`: 1 plain, 2 with
/// `,lzo`. Pump mode (`,lzo,cpp`, protocol 3) needs an include server, so a
/// host marked `cpp` gets protocol 2 with local preprocessing, as stock
/// distcc 3.4 does when no include server is running.
pub fn protocol_for(host: &HostSpec) -> u32 {
    if host.cpp {
        log::debug!("{}: pump mode (,cpp) is not supported; preprocessing locally and using protocol 2", host.display_name());
    }
    host.protocol().min(2)
}

/// Sends the request: header, then the preprocessed source as `DOTI`,
/// compressed as one LZO1X block in protocol 2.
pub fn send_request(
    connection: &mut Connection,
    protocol_version: u32,
    argv: &[&[u8]],
    preprocessed: &Path,
    config: &Config,
) -> Result<(), Failure> {
    match connection {
        Connection::Tcp(stream) => write_request(stream, protocol_version, argv, preprocessed, config),
        Connection::Ssh(ssh) => write_request(ssh, protocol_version, argv, preprocessed, config),
    }
}

/// A connection that can send the contents of a file.
trait SendFile: Write {
    /// Writes `bytes` that a file's contents will follow at once.
    fn write_before_file(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.write_all(bytes)
    }

    /// Sends up to `length` bytes from the file's position and returns how
    /// many were sent (fewer only when the file is shorter).
    fn send_file(&mut self, file: &mut File, length: u64) -> io::Result<u64> {
        io::copy(&mut file.take(length), self)
    }
}

impl SendFile for SshConnection {}

impl SendFile for TcpStream {
    /// Writes with MSG_MORE, so that the kernel sends the bytes in one
    /// segment with the start of the file despite TCP_NODELAY.
    fn write_before_file(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            // SAFETY: the descriptor is open and `bytes` is readable for the call.
            let count = unsafe { libc::send(self.as_raw_fd(), bytes.as_ptr().cast(), bytes.len(), libc::MSG_MORE) };
            if count < 0 {
                let error = io::Error::last_os_error();
                if error.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(error);
            }
            bytes = &bytes[count as usize..];
        }
        Ok(())
    }

    /// Sends with sendfile(2), as stock distcc does: std's io::copy (Rust
    /// 1.95) copies a file to a socket through user space in 8 KiB writes,
    /// 590 system calls for the 4.8 MB of preprocessed SQLite.
    fn send_file(&mut self, file: &mut File, length: u64) -> io::Result<u64> {
        let mut sent = 0;
        while sent < length {
            // Linux sends at most 0x7ffff000 bytes per call.
            let chunk = (length - sent).min(0x7fff_f000) as usize;
            // SAFETY: both descriptors are open for the call; a null offset
            // makes sendfile read from the file's own position and advance it.
            let count = unsafe { libc::sendfile(self.as_raw_fd(), file.as_raw_fd(), std::ptr::null_mut(), chunk) };
            if count < 0 {
                let error = io::Error::last_os_error();
                if error.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(error);
            }
            if count == 0 {
                break;
            }
            sent += count as u64;
        }
        Ok(sent)
    }
}

fn write_request(
    stream: &mut impl SendFile,
    protocol_version: u32,
    argv: &[&[u8]],
    preprocessed: &Path,
    config: &Config,
) -> Result<(), Failure> {
    let send_failure = |e: io::Error| io_failure("send", "sending the job", e, config);
    let read_failure = |e: io::Error| {
        Failure::client("send", format!("cannot read '{}': {e}", preprocessed.display()), exit::IO_ERROR)
    };
    let mut source = File::open(preprocessed).map_err(|e| {
        Failure::client("send", format!("cannot open the preprocessed source '{}': {e}", preprocessed.display()), exit::IO_ERROR)
    })?;
    let length = source.metadata().map_err(read_failure)?.len();
    let too_long = |length: u64| {
        Failure::client("send", format!("preprocessed source is {length} bytes, more than the protocol allows"), exit::IO_ERROR)
    };
    let length32 = u32::try_from(length).map_err(|_| too_long(length))?;

    let mut request = protocol::request_header(protocol_version, argv).map_err(send_failure)?;
    if protocol_version >= 2 {
        // LZO compresses one block held in memory, as stock distcc does.
        let mut plain = Vec::with_capacity(length as usize);
        source.read_to_end(&mut plain).map_err(read_failure)?;
        if plain.len() as u64 != length {
            return Err(Failure::client("send", "preprocessed source changed while it was read", exit::IO_ERROR));
        }
        // Empty data is sent as a zero length without a block, as distccd expects.
        let compressed = if plain.is_empty() { Vec::new() } else { lzo::compress(&plain) };
        let compressed_length = u32::try_from(compressed.len()).map_err(|_| too_long(compressed.len() as u64))?;
        protocol::put_token(&mut request, b"DOTI", compressed_length);
        request.extend_from_slice(&compressed);
        stream.write_all(&request).map_err(send_failure)?;
        log::debug!(
            "sent {} arguments and {length} bytes of preprocessed source, LZO-compressed to {compressed_length} bytes",
            argv.len()
        );
        return Ok(());
    }

    // The source goes from the page cache to the socket without a copy in
    // the client's memory, which would add its size to the peak RSS.
    protocol::put_token(&mut request, b"DOTI", length32);
    stream.write_before_file(&request).map_err(send_failure)?;
    let copied = stream.send_file(&mut source, length).map_err(send_failure)?;
    if copied != length {
        return Err(Failure::client("send", "preprocessed source changed while it was sent", exit::IO_ERROR));
    }
    log::debug!("sent {} arguments and {length} bytes of preprocessed source", argv.len());
    Ok(())
}

/// Added to messages about a server that closed the connection before it
/// replied: stock distccd does that when it requires authentication, when
/// the client's address is not allowed, or when it refuses the compiler.
const CLOSED_HINT: &str =
    "the server may require authentication (,auth), refuse this client address or compiler, or have stopped";

fn is_closed(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionAborted
    )
}

fn io_failure(step: &'static str, doing: &str, error: io::Error, config: &Config) -> Failure {
    if is_closed(&error) {
        Failure::host(step, format!("{doing} failed: server closed the connection; {CLOSED_HINT}"), exit::IO_ERROR)
    } else if matches!(error.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) {
        Failure::host(
            step,
            format!("{doing} timed out after {} (DISTCC_IO_TIMEOUT)", format_seconds(config.io_timeout)),
            exit::TIMEOUT,
        )
    } else {
        Failure::host(step, format!("{doing} failed: {}", plain_io_error(&error)), exit::IO_ERROR)
    }
}

/// Time to wait for the server to close the connection after the reply.
/// Stock distccd closes it as soon as it has removed its temporary files,
/// in a few milliseconds; a server that keeps it open longer is accepted
/// without the check for data after the reply.
const END_OF_REPLY_WAIT: Duration = Duration::from_millis(500);

/// Reads the reply. The object is streamed into a temporary file beside
/// `output`, so memory use does not grow with its size. In protocol 2 it is
/// decompressed on the way.
pub fn receive_reply(
    connection: &mut Connection,
    protocol_version: u32,
    output: &Path,
    config: &Config,
) -> Result<Reply, Failure> {
    // A BufReader zeroes its buffer before the first read unless the reader
    // is one of std's own, such as TcpStream: through the enum, that was
    // 65 thousand instructions per job (callgrind counts each byte that
    // `rep stosb` writes).
    match connection {
        Connection::Tcp(stream) => receive_reply_on(stream, protocol_version, output, config),
        ssh @ Connection::Ssh(_) => receive_reply_on(ssh, protocol_version, output, config),
    }
}

fn receive_reply_on(
    stream: &mut impl Stream,
    protocol_version: u32,
    output: &Path,
    config: &Config,
) -> Result<Reply, Failure> {
    let started = Instant::now();
    let mut reader = io::BufReader::with_capacity(64 * 1024, stream);
    let (head, object) = protocol::read_reply(&mut reader, protocol_version, || tempfiles::create_beside(output))
        .map_err(|e| reply_failure(e, output, config))?;
    log::debug!(
        "server compiler finished with wait status {:#x}; reply of {} bytes of object file received after {:.1} ms",
        head.status,
        head.object_length,
        started.elapsed().as_secs_f64() * 1000.0
    );

    let waited = Instant::now();
    reader
        .get_ref()
        .set_read_timeout(Some(END_OF_REPLY_WAIT.min(config.io_timeout)))
        .map_err(|e| Failure::host("receive", format!("cannot set the read timeout: {e}"), exit::IO_ERROR))?;
    match protocol::check_end(&mut reader) {
        Ok(()) => log::debug!("server closed the connection {:.1} ms after the reply", waited.elapsed().as_secs_f64() * 1000.0),
        Err(ReplyError::Io { error, .. }) if matches!(error.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
            log::debug!("server kept the connection open after the reply; not checked for more data");
        }
        Err(ReplyError::Io { error, .. }) if is_closed(&error) => {}
        Err(error) => return Err(reply_failure(error, output, config)),
    }
    Ok(Reply { status: head.status, stderr: head.stderr, stdout: head.stdout, object })
}

fn reply_failure(error: ReplyError, output: &Path, config: &Config) -> Failure {
    match error {
        ReplyError::Io { error, field } => io_failure("receive", &format!("waiting for {field}"), error, config),
        ReplyError::Truncated { field: "DONE" } => Failure::host(
            "receive",
            format!("server closed the connection without a reply; {CLOSED_HINT}"),
            exit::TRUNCATED,
        ),
        ReplyError::Truncated { .. } => Failure::host("receive", error.to_string(), exit::TRUNCATED),
        ReplyError::Output { error } => Failure::client(
            "write output",
            format!("cannot write a temporary file in '{}': {error}", tempfiles::output_directory(output).display()),
            exit::IO_ERROR,
        ),
        other => Failure::host("receive", other.to_string(), exit::PROTOCOL_ERROR),
    }
}

/// Sets the object's mode to what the compiler would give it (0666 minus the
/// umask) and renames it onto the output path.
pub fn install_object(object: OutputTemp, output: &Path) -> io::Result<()> {
    object.install(output, 0o666 & !current_umask())
}

fn current_umask() -> u32 {
    // SAFETY: umask only swaps the process's file-mode mask; it is restored at once.
    unsafe {
        let mask = libc::umask(0o022);
        libc::umask(mask);
        mask as u32
    }
}
