//! Servers that misbehave in ways a real distccd cannot on demand, scripted
//! on loopback. Every case must end in a local compile within the bound of
//! the timeout that applies, and name that timeout.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use crate::common;
use crate::support::{Run, Workspace, assert_same_object};

/// What a scripted server does with each connection it accepts.
#[derive(Clone, Copy)]
enum Behaviour {
    /// Reads the request and never replies.
    Silent,
    /// Closes the connection as soon as it is accepted.
    CloseAtOnce,
    /// Reads the request and replies with an HTTP error.
    Garbage,
}

/// A scripted server on 127.0.0.1. Connections that it keeps open are
/// closed when it is dropped.
struct FakeServer {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl FakeServer {
    fn start(behaviour: Behaviour) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        listener.set_nonblocking(true).unwrap();
        thread::spawn(move || {
            let mut open_connections = Vec::new();
            while !stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        stream.set_nonblocking(false).unwrap();
                        if let Some(stream) = serve(stream, behaviour) {
                            open_connections.push(stream);
                        }
                    }
                    Err(_) => thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        FakeServer { port, stop }
    }

    fn entry(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Handles one connection; returns it when it must stay open.
fn serve(mut stream: TcpStream, behaviour: Behaviour) -> Option<TcpStream> {
    match behaviour {
        Behaviour::Silent => {
            // Drain the request on a thread so that the client's writes
            // complete and it waits for the reply.
            let mut reader = stream.try_clone().unwrap();
            thread::spawn(move || {
                let mut sink = [0u8; 4096];
                while matches!(reader.read(&mut sink), Ok(n) if n > 0) {}
            });
            Some(stream)
        }
        Behaviour::CloseAtOnce => None,
        Behaviour::Garbage => {
            // Read the whole request first: closing with unread data would
            // send a reset, and the client might never see the reply.
            thread::spawn(move || {
                let mut sink = [0u8; 4096];
                stream.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
                while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
                let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
                let _ = stream.shutdown(std::net::Shutdown::Write);
                stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
            });
            None
        }
    }
}

const SOURCE: &[u8] = b"int answer(void) { return 42; }\n";

fn compile(workspace: &Workspace, hosts: &str, env: &[(&str, &str)]) -> Run {
    let mut all = vec![("DISTCC_HOSTS", hosts)];
    all.extend_from_slice(env);
    let run = workspace.run(&all, &["gcc", "-c", "answer.c", "-o", "answer.o"]);
    run.assert_success();
    assert_same_object(&workspace.path("answer.o"), &workspace.path("local.o"));
    std::fs::remove_file(workspace.path("answer.o")).unwrap();
    run
}

fn workspace() -> Workspace {
    let workspace = Workspace::new();
    workspace.write("answer.c", SOURCE);
    workspace.compile_locally(&["-c", "answer.c", "-o", "local.o"]);
    workspace
}

fn assert_fell_back(run: &Run, expected: &str) {
    let stderr = run.stderr();
    assert!(stderr.contains(expected), "expected {expected:?} in:\n{stderr}");
    assert!(stderr.contains("compiling locally"), "no local fallback reported:\n{stderr}");
}

#[test]
fn timeout_silent_server() {
    let workspace = workspace();
    let server = FakeServer::start(Behaviour::Silent);
    let run = compile(&workspace, &server.entry(), &[("DISTCC_IO_TIMEOUT", "3")]);
    assert_fell_back(&run, "waiting for DONE timed out after 3 s (DISTCC_IO_TIMEOUT)");
    let seconds = run.elapsed.as_secs_f64();
    assert!(seconds >= 3.0, "fell back after {seconds:.2} s, before the I/O timeout");
    assert!(seconds < 5.0, "fell back after {seconds:.2} s");
}

#[test]
fn timeout_three_silent_servers() {
    let workspace = workspace();
    let servers: Vec<FakeServer> = (0..3).map(|_| FakeServer::start(Behaviour::Silent)).collect();
    let hosts = servers.iter().map(FakeServer::entry).collect::<Vec<_>>().join(" ");
    let run = compile(&workspace, &hosts, &[("DISTCC_IO_TIMEOUT", "2")]);
    for server in &servers {
        assert_fell_back(&run, &format!("{}: waiting for DONE timed out after 2 s (DISTCC_IO_TIMEOUT)", server.entry()));
    }
    let seconds = run.elapsed.as_secs_f64();
    assert!(seconds >= 6.0, "fell back after {seconds:.2} s, before three I/O timeouts");
    assert!(seconds < 8.0, "fell back after {seconds:.2} s");
}

#[test]
fn timeout_server_closes_at_once() {
    let workspace = workspace();
    let server = FakeServer::start(Behaviour::CloseAtOnce);
    let run = compile(&workspace, &server.entry(), &[("DISTCC_IO_TIMEOUT", "3")]);
    assert_fell_back(&run, &server.entry());
    let stderr = run.stderr();
    assert!(
        stderr.contains("server closed the connection") || stderr.contains("Connection reset") || stderr.contains("Broken pipe"),
        "{stderr}"
    );
    assert!(run.elapsed.as_secs_f64() < 1.0, "fell back after {:?}", run.elapsed);
}

#[test]
fn timeout_server_answers_garbage() {
    let workspace = workspace();
    let server = FakeServer::start(Behaviour::Garbage);
    let run = compile(&workspace, &server.entry(), &[("DISTCC_IO_TIMEOUT", "3")]);
    assert_fell_back(&run, "protocol error: expected token DONE, received 'HTTP/1.1 400'");
    assert!(run.elapsed.as_secs_f64() < 1.0, "fell back after {:?}", run.elapsed);

    // The same garbage in answer to a protocol 2 request.
    let run = compile(&workspace, &format!("{},lzo", server.entry()), &[("DISTCC_IO_TIMEOUT", "3")]);
    assert_fell_back(&run, "protocol error: expected token DONE");
    assert!(run.elapsed.as_secs_f64() < 1.0, "fell back after {:?}", run.elapsed);
}

/// A listener with a backlog of 0 whose queue is already full: the kernel
/// drops further SYNs, so a connect never completes.
struct FullBacklog {
    _listener: OwnedFd,
    _queued: Vec<TcpStream>,
    port: u16,
}

impl FullBacklog {
    fn start() -> FullBacklog {
        // SAFETY: plain socket calls on a descriptor this function owns; the
        // address structure is fully initialised before use.
        let (listener, port) = unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
            assert!(fd >= 0, "socket failed");
            let listener = OwnedFd::from_raw_fd(fd);
            let mut address: libc::sockaddr_in = std::mem::zeroed();
            address.sin_family = libc::AF_INET as libc::sa_family_t;
            address.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
            let length = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            assert_eq!(libc::bind(fd, &address as *const _ as *const libc::sockaddr, length), 0, "bind failed");
            assert_eq!(libc::listen(fd, 0), 0, "listen failed");
            let mut bound_length = length;
            libc::getsockname(fd, &mut address as *mut _ as *mut libc::sockaddr, &mut bound_length);
            (listener, u16::from_be(address.sin_port))
        };
        // Fill the accept queue until a connect no longer completes.
        let target = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let mut queued = Vec::new();
        for _ in 0..8 {
            match TcpStream::connect_timeout(&target, Duration::from_millis(300)) {
                Ok(stream) => queued.push(stream),
                Err(_) => return FullBacklog { _listener: listener, _queued: queued, port },
            }
        }
        panic!("the accept queue of a backlog-0 listener did not fill after 8 connections");
    }
}

#[test]
fn timeout_connect_never_completes() {
    let workspace = workspace();
    let backlog = FullBacklog::start();
    let entry = format!("127.0.0.1:{}", backlog.port);

    let run = compile(&workspace, &entry, &[("DISTCC_CONNECT_TIMEOUT", "1.5"), ("DISTCC_IO_TIMEOUT", "3")]);
    assert_fell_back(&run, &format!("connect to {entry} timed out after 1.5 s (DISTCC_CONNECT_TIMEOUT)"));
    let seconds = run.elapsed.as_secs_f64();
    assert!((1.5..3.0).contains(&seconds), "fell back after {seconds:.2} s");

    // The default connect timeout is stock distcc's 4 s.
    let run = compile(&workspace, &entry, &[("DISTCC_IO_TIMEOUT", "3")]);
    assert_fell_back(&run, &format!("connect to {entry} timed out after 4 s (DISTCC_CONNECT_TIMEOUT)"));
    let seconds = run.elapsed.as_secs_f64();
    assert!((4.0..5.5).contains(&seconds), "fell back after {seconds:.2} s");
}

#[test]
fn timeout_invalid_value_named() {
    let workspace = workspace();
    let run = compile(&workspace, "127.0.0.1:1", &[("DISTCC_IO_TIMEOUT", "soon")]);
    assert!(run.stderr().contains("invalid DISTCC_IO_TIMEOUT='soon'"), "{}", run.stderr());
}

#[test]
fn timeout_auth_handshake() {
    // An ,auth host that accepts and never answers the handshake is bounded
    // by the authentication timeout, not by the I/O timeout.
    let bed = common::bed();
    let workspace = workspace();
    let server = FakeServer::start(Behaviour::Silent);
    let entry = format!("{},auth", server.entry());
    let kerberos = bed.kerberos_env();
    let mut env: Vec<(&str, &str)> = kerberos.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    env.extend([("DISTCC_AUTH_TIMEOUT", "1"), ("DISTCC_IO_TIMEOUT", "30")]);
    let run = compile(&workspace, &entry, &env);
    assert_fell_back(&run, "server did not answer the authentication handshake within 1 s (DISTCC_AUTH_TIMEOUT)");
    let seconds = run.elapsed.as_secs_f64();
    assert!((1.0..3.0).contains(&seconds), "fell back after {seconds:.2} s");
}
