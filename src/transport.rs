//! How a job reaches its server: a TCP connection to distccd, or the
//! standard input and output of `distccd --inetd` started through ssh. Both
//! carry the same protocol, GSS-API handshake included.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::config::{Config, format_seconds};
use crate::exit;
use crate::hosts::{HostSpec, Transport};
use crate::remote::Failure;
use crate::ssh::SshConnection;

/// A byte stream to a server whose reads can be bounded in time.
pub trait Stream: Read + Write {
    /// Sets how long one read may wait; `None` waits forever.
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;

    /// Returns the server's address, when the transport has one.
    fn peer_addr(&self) -> Option<SocketAddr>;

    /// Asks the kernel to acknowledge the next segments at once, where the
    /// transport is TCP. distccd writes a token's header and body in separate
    /// small writes without TCP_NODELAY, so its second write waits for our
    /// ACK, and a delayed ACK (up to 40 ms on Linux) would stall each step of
    /// the handshake. Quick-ACK mode can end by itself, so callers set it
    /// again before each read.
    fn quick_ack(&self) {}
}

impl Stream for TcpStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }

    fn peer_addr(&self) -> Option<SocketAddr> {
        TcpStream::peer_addr(self).ok()
    }

    fn quick_ack(&self) {
        use std::os::fd::AsRawFd;
        let enable: libc::c_int = 1;
        // SAFETY: setsockopt with a valid socket and an int option value.
        unsafe {
            libc::setsockopt(
                self.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_QUICKACK,
                &enable as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
}

/// An open connection to one host.
pub enum Connection {
    Tcp(TcpStream),
    Ssh(SshConnection),
}

impl Connection {
    /// Connects to a TCP host or starts the ssh command for an ssh host.
    pub fn open(host: &HostSpec, config: &Config) -> Result<Connection, Failure> {
        match &host.transport {
            Transport::Tcp { host: name, port, .. } => connect_tcp(name, *port, config).map(Connection::Tcp),
            Transport::Ssh { user, host: name, command } => {
                SshConnection::start(&config.ssh_command, user.as_deref(), name, command.as_deref(), config)
                    .map(Connection::Ssh)
            }
            Transport::Local => Err(Failure::client(
                "connect",
                format!("host entry '{}' runs jobs on this machine and has no server", host.verbatim),
                exit::DISTCC_FAILED,
            )),
        }
    }

    /// Closes the connection and passes `result` through. For ssh, this
    /// waits for the ssh command to exit, and a failure gains its exit
    /// status and standard error.
    pub fn close<T>(self, result: Result<T, Failure>) -> Result<T, Failure> {
        match self {
            Connection::Tcp(stream) => {
                drop(stream);
                result
            }
            Connection::Ssh(mut ssh) => {
                let report = ssh.finish();
                match result {
                    Ok(value) => Ok(value),
                    Err(mut failure) => {
                        failure.message = format!("{}; {report}", failure.message);
                        Err(failure)
                    }
                }
            }
        }
    }
}

impl Read for Connection {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        match self {
            Connection::Tcp(stream) => stream.read(buffer),
            Connection::Ssh(ssh) => ssh.read(buffer),
        }
    }
}

impl Write for Connection {
    fn write(&mut self, buffer: &[u8]) -> io::Result<usize> {
        match self {
            Connection::Tcp(stream) => stream.write(buffer),
            Connection::Ssh(ssh) => ssh.write(buffer),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Connection::Tcp(stream) => stream.flush(),
            Connection::Ssh(ssh) => ssh.flush(),
        }
    }
}

impl Stream for Connection {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            Connection::Tcp(stream) => Stream::set_read_timeout(stream, timeout),
            Connection::Ssh(ssh) => ssh.set_read_timeout(timeout),
        }
    }

    fn peer_addr(&self) -> Option<SocketAddr> {
        match self {
            Connection::Tcp(stream) => Stream::peer_addr(stream),
            Connection::Ssh(_) => None,
        }
    }

    fn quick_ack(&self) {
        if let Connection::Tcp(stream) = self {
            stream.quick_ack();
        }
    }
}

/// Opens a TCP connection to `name`, trying each of its addresses (IPv4
/// and IPv6) in the resolver's order, each within the connect timeout.
fn connect_tcp(name: &str, port: u16, config: &Config) -> Result<TcpStream, Failure> {
    // NOTE: name resolution has no timeout of its own, as in stock distcc.
    let addresses: Vec<SocketAddr> = (name, port)
        .to_socket_addrs()
        .map_err(|e| Failure::host("resolve", format!("cannot resolve host name '{name}': {e}"), exit::CONNECT_FAILED))?
        .collect();
    if addresses.is_empty() {
        return Err(Failure::host("resolve", format!("host name '{name}' has no addresses"), exit::CONNECT_FAILED));
    }
    let mut last_error = None;
    for address in addresses {
        let started = Instant::now();
        match TcpStream::connect_timeout(&address, config.connect_timeout) {
            Ok(stream) => {
                log::debug!("connected to {address} in {:.1} ms", started.elapsed().as_secs_f64() * 1000.0);
                configure_stream(&stream, config)
                    .map_err(|e| Failure::host("connect", format!("cannot configure the connection: {e}"), exit::IO_ERROR))?;
                return Ok(stream);
            }
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                log::debug!("connect to {address} timed out");
                last_error = Some(Failure::host(
                    "connect",
                    format!(
                        "connect to {address} timed out after {} (DISTCC_CONNECT_TIMEOUT)",
                        format_seconds(config.connect_timeout)
                    ),
                    exit::TIMEOUT,
                ));
            }
            Err(e) => {
                log::debug!("connect to {address} failed: {e}");
                last_error = Some(Failure::host(
                    "connect",
                    format!("connect to {address} failed: {}", plain_io_error(&e)),
                    exit::CONNECT_FAILED,
                ));
            }
        }
    }
    Err(last_error.expect("at least one address was tried"))
}

fn configure_stream(stream: &TcpStream, config: &Config) -> io::Result<()> {
    // Requests are written in few large writes, so Nagle's algorithm only adds
    // delayed-ACK stalls (tens of milliseconds per small write).
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(config.io_timeout))?;
    stream.set_write_timeout(Some(config.io_timeout))?;
    Ok(())
}

/// Describes an I/O error in the words a user expects for a server connection.
pub fn plain_io_error(error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused (is distccd running on that port?)".into(),
        _ => error.to_string(),
    }
}
