//! One remote attempt on an open connection: authenticate when the host is
//! marked `,auth`, send the job and read the reply, in protocol 1 (plain) or
//! 2 (LZO1X-compressed source, messages and object).

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;
use std::time::Instant;

use tempfile::NamedTempFile;

use crate::auth::{self, AuthError, Credentials};
use crate::config::{Config, format_seconds};
use crate::exit;
use crate::hosts::{Auth, HostSpec, Transport};
use crate::lzo;
use crate::protocol::{self, ReplyError};
use crate::transport::{Stream, plain_io_error};

/// Requests up to this size go out in a single write, preprocessed source included.
const SINGLE_WRITE_LIMIT: u64 = 4 * 1024 * 1024;

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
    pub object: Option<NamedTempFile>,
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
        credentials.principal,
        target.name
    );
    let result = auth::authenticate(stream, credentials, &target, config.auth_timeout);
    stream
        .set_read_timeout(Some(config.io_timeout))
        .map_err(|e| Failure::host("authentication", format!("cannot restore the I/O timeout: {e}"), exit::IO_ERROR))?;
    result.map_err(|error| {
        let code = match &error {
            AuthError::Credentials(_) | AuthError::Gssapi(_) => exit::GSSAPI_FAILED,
            AuthError::HandshakeTimeout(_) | AuthError::Timeout { .. } => exit::TIMEOUT,
            AuthError::Handshake(_) => exit::PROTOCOL_ERROR,
            AuthError::AccessDenied { .. } => exit::ACCESS_DENIED,
        };
        Failure::host("authentication", error.to_string(), code)
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
    stream: &mut impl Write,
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

    protocol::put_token(&mut request, b"DOTI", length32);
    if length <= SINGLE_WRITE_LIMIT {
        request.reserve(length as usize);
        source.read_to_end(&mut request).map_err(read_failure)?;
        stream.write_all(&request).map_err(send_failure)?;
    } else {
        stream.write_all(&request).map_err(send_failure)?;
        let copied = io::copy(&mut source, stream).map_err(send_failure)?;
        if copied != length {
            return Err(Failure::client("send", "preprocessed source changed while it was sent", exit::IO_ERROR));
        }
    }
    log::debug!("sent {} arguments and {length} bytes of preprocessed source", argv.len());
    Ok(())
}

/// Added to messages about a server that closed the connection before it
/// replied: stock distccd does that when it requires authentication, when
/// the client's address is not allowed, or when it refuses the compiler.
const CLOSED_HINT: &str =
    "the server may require authentication (,auth), or refuse this client address or compiler";

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

/// Reads the reply. The object is streamed into a temporary file beside
/// `output`, so memory use does not grow with its size. In protocol 2 it is
/// decompressed on the way.
pub fn receive_reply(
    stream: &mut impl Read,
    protocol_version: u32,
    output: &Path,
    config: &Config,
) -> Result<Reply, Failure> {
    let started = Instant::now();
    let failure = |e| reply_failure(e, config, false);
    let compressed = protocol_version >= 2;
    let mut reader = io::BufReader::with_capacity(64 * 1024, stream);
    let version = protocol::read_token(&mut reader, "DONE").map_err(|e| reply_failure(e, config, true))?;
    if version != protocol_version {
        return Err(Failure::host(
            "receive",
            format!("protocol error: server replied with protocol version {version}, expected {protocol_version}"),
            exit::PROTOCOL_ERROR,
        ));
    }
    let stat = protocol::read_token(&mut reader, "STAT").map_err(failure)?;
    let status = protocol::check_wait_status(stat).map_err(failure)?;
    let stderr = read_message(&mut reader, "SERR", compressed).map_err(failure)?;
    let stdout = read_message(&mut reader, "SOUT", compressed).map_err(failure)?;
    let object_length = protocol::read_token(&mut reader, "DOTO").map_err(failure)?;
    if object_length > protocol::MAX_OBJECT_BYTES {
        return Err(Failure::host(
            "receive",
            format!("protocol error: DOTO length {object_length} is larger than {} bytes", protocol::MAX_OBJECT_BYTES),
            exit::PROTOCOL_ERROR,
        ));
    }
    log::debug!("server compiler finished with wait status {status:#x} after {:.1} ms", started.elapsed().as_secs_f64() * 1000.0);

    if status != 0 {
        protocol::copy_payload(&mut reader, &mut io::sink(), "DOTO", u64::from(object_length)).map_err(failure)?;
        return Ok(Reply { status, stderr, stdout, object: None });
    }
    let mut file = temporary_output(output)?;
    if compressed && object_length > 0 {
        let plain_length = protocol::copy_compressed_payload(
            &mut reader,
            file.as_file_mut(),
            "DOTO",
            object_length,
            u64::from(protocol::MAX_OBJECT_BYTES),
        )
        .map_err(failure)?;
        log::debug!("received {plain_length} bytes of object file, LZO-compressed to {object_length} bytes");
    } else {
        protocol::copy_payload(&mut reader, file.as_file_mut(), "DOTO", u64::from(object_length)).map_err(failure)?;
        log::debug!("received {object_length} bytes of object file");
    }
    Ok(Reply { status, stderr, stdout, object: Some(file) })
}

fn read_message(reader: &mut impl Read, name: &'static str, compressed: bool) -> Result<Vec<u8>, ReplyError> {
    if compressed {
        protocol::read_compressed_message(reader, name, protocol::MAX_MESSAGE_BYTES)
    } else {
        protocol::read_message(reader, name, protocol::MAX_MESSAGE_BYTES)
    }
}

fn reply_failure(error: ReplyError, config: &Config, first_read: bool) -> Failure {
    match error {
        ReplyError::Io { error, field } => io_failure("receive", &format!("waiting for {field}"), error, config),
        ReplyError::Truncated { .. } if first_read => Failure::host(
            "receive",
            format!("server closed the connection without a reply; {CLOSED_HINT}"),
            exit::TRUNCATED,
        ),
        ReplyError::Truncated { .. } => Failure::host("receive", error.to_string(), exit::TRUNCATED),
        other => Failure::host("receive", other.to_string(), exit::PROTOCOL_ERROR),
    }
}

fn temporary_output(output: &Path) -> Result<NamedTempFile, Failure> {
    let directory = match output.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    tempfile::Builder::new()
        .prefix(".distcc-rs-")
        .suffix(".tmp")
        .tempfile_in(directory)
        .map_err(|e| {
            Failure::client(
                "write output",
                format!("cannot create a temporary file in '{}': {e}", directory.display()),
                exit::IO_ERROR,
            )
        })
}

/// Sets the object's mode to what the compiler would give it (0666 minus the
/// umask) and renames it onto the output path.
pub fn install_object(object: NamedTempFile, output: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mask = current_umask();
    std::fs::set_permissions(object.path(), std::fs::Permissions::from_mode(0o666 & !mask))?;
    object.persist(output).map_err(|e| e.error)?;
    Ok(())
}

fn current_umask() -> u32 {
    // SAFETY: umask only swaps the process's file-mode mask; it is restored at once.
    unsafe {
        let mask = libc::umask(0o022);
        libc::umask(mask);
        mask as u32
    }
}
