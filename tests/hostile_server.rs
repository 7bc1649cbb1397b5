//! A scripted fake distcc server that sends broken or hostile replies.
//!
//! Every case must end in a local compile with a correct object and one
//! warning line that names the host and the field at fault. No temporary
//! file may be left behind, and the peak memory of the client (measured
//! with GNU time, so it includes the local compiler) must stay under
//! 64 MiB, also when the server claims a body of up to 4 GiB.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::{Scratch, assert_same_file};

const HELLO: &str = "#include <stdio.h>\nint hello(void) { return printf(\"hello\\n\"); }\n";

/// Peak memory allowed for the client and its local compile, in KiB.
const MEMORY_LIMIT_KIB: u64 = 64 * 1024;

/// How the fake server replies once it has read the whole request.
type Reply = Box<dyn FnOnce(&mut TcpStream) + Send>;

struct FakeServer {
    port: u16,
    /// Every byte the client sent, kept to check what reached the server.
    received: Arc<Mutex<Vec<u8>>>,
    thread: thread::JoinHandle<()>,
}

/// Accepts one connection. With `read_request`, reads the distcc request
/// (DIST, ARGC, ARGV..., DOTI) before `reply` runs; otherwise `reply` gets
/// the connection as it is (for the authentication handshake).
fn fake_server(read_request: bool, reply: Reply) -> FakeServer {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let received = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&received);
    let thread = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        stream.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
        if read_request {
            let request = read_distcc_request(&mut stream);
            record.lock().unwrap().extend_from_slice(&request);
        }
        reply(&mut stream);
        // Keep what the client sends after the scripted part, until it closes.
        let mut rest = Vec::new();
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let _ = stream.read_to_end(&mut rest);
        record.lock().unwrap().extend_from_slice(&rest);
    });
    FakeServer { port, received, thread }
}

fn read_token(stream: &mut TcpStream, name: &str) -> (Vec<u8>, u32) {
    let mut header = [0u8; 12];
    stream.read_exact(&mut header).unwrap();
    assert_eq!(&header[..4], name.as_bytes(), "request token");
    let value = u32::from_str_radix(std::str::from_utf8(&header[4..]).unwrap(), 16).unwrap();
    (header.to_vec(), value)
}

fn read_distcc_request(stream: &mut TcpStream) -> Vec<u8> {
    let mut request = Vec::new();
    let (header, _) = read_token(stream, "DIST");
    request.extend_from_slice(&header);
    let (header, argc) = read_token(stream, "ARGC");
    request.extend_from_slice(&header);
    for _ in 0..argc {
        let (header, length) = read_token(stream, "ARGV");
        request.extend_from_slice(&header);
        let mut word = vec![0u8; length as usize];
        stream.read_exact(&mut word).unwrap();
        request.extend_from_slice(&word);
    }
    let (header, length) = read_token(stream, "DOTI");
    request.extend_from_slice(&header);
    let mut source = vec![0u8; length as usize];
    stream.read_exact(&mut source).unwrap();
    request.extend_from_slice(&source);
    request
}

fn token(name: &str, value: u32) -> Vec<u8> {
    format!("{name}{value:08x}").into_bytes()
}

fn item(name: &str, payload: &[u8]) -> Vec<u8> {
    let mut bytes = token(name, payload.len() as u32);
    bytes.extend_from_slice(payload);
    bytes
}

/// Concatenates the encoded fields of a reply.
fn reply_bytes(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

/// Sends `bytes` and closes the sending side.
fn send(bytes: Vec<u8>) -> Reply {
    Box::new(move |stream: &mut TcpStream| {
        let _ = stream.write_all(&bytes);
        let _ = stream.shutdown(std::net::Shutdown::Write);
    })
}

/// Sends `head`, then `total` bytes of filler (or until the client stops
/// reading), then closes.
fn send_then_stream(head: Vec<u8>, total: u64) -> Reply {
    Box::new(move |stream: &mut TcpStream| {
        if stream.write_all(&head).is_err() {
            return;
        }
        let chunk = vec![b'x'; 1 << 20];
        let mut sent = 0u64;
        let started = Instant::now();
        while sent < total && started.elapsed() < Duration::from_secs(60) {
            let size = chunk.len().min((total - sent) as usize);
            if stream.write_all(&chunk[..size]).is_err() {
                return;
            }
            sent += size as u64;
        }
        let _ = stream.shutdown(std::net::Shutdown::Write);
    })
}

/// The result of one client run.
struct Run {
    exit_code: Option<i32>,
    stderr: String,
    max_rss_kib: u64,
    elapsed: Duration,
}

/// Runs `command` to its end under GNU time, which reports the peak
/// resident memory of the client and of the compilers it waited for. The
/// measurement must not start in this test process: a child inherits its
/// parent's resident size at fork and the kernel counts that in its peak.
fn run_measured(command: Command, dir: &Path) -> Run {
    let stderr_path = dir.join("client.stderr");
    let rss_path = dir.join("client.maxrss");
    let mut timed = Command::new("/usr/bin/time");
    timed.arg("--format=%M").arg("--output").arg(&rss_path).arg(command.get_program()).args(command.get_args());
    timed.env_clear();
    for (name, value) in command.get_envs() {
        if let Some(value) = value {
            timed.env(name, value);
        }
    }
    if let Some(directory) = command.get_current_dir() {
        timed.current_dir(directory);
    }
    timed.stdout(std::fs::File::create(dir.join("client.stdout")).unwrap());
    timed.stderr(std::fs::File::create(&stderr_path).unwrap());
    let started = Instant::now();
    let status = timed.status().expect("run /usr/bin/time (Debian package time)");
    let max_rss_kib = std::fs::read_to_string(&rss_path)
        .unwrap()
        .lines()
        .last()
        .and_then(|line| line.trim().parse().ok())
        .expect("GNU time wrote the peak memory");
    Run {
        exit_code: status.code(),
        stderr: std::fs::read_to_string(&stderr_path).unwrap(),
        max_rss_kib,
        elapsed: started.elapsed(),
    }
}

struct Case {
    name: &'static str,
    reply: Reply,
    /// Text that the warning must contain: the field at fault.
    expected: &'static str,
    /// Extra environment for the client.
    env: &'static [(&'static str, &'static str)],
}

fn case(name: &'static str, reply: Reply, expected: &'static str) -> Case {
    Case { name, reply, expected, env: &[] }
}

fn good_head() -> Vec<Vec<u8>> {
    vec![token("DONE", 1), token("STAT", 0), item("SERR", b""), item("SOUT", b"")]
}

fn protocol_cases() -> Vec<Case> {
    let with_head = |tail: Vec<Vec<u8>>| {
        let mut parts = good_head();
        parts.extend(tail);
        reply_bytes(&parts)
    };
    vec![
        case("no reply", send(Vec::new()), "closed the connection without a reply"),
        case(
            "other protocol version",
            send(reply_bytes(&[token("DONE", 2), token("STAT", 0), item("SERR", b""), item("SOUT", b""), item("DOTO", b"x")])),
            "DONE carries protocol version 2, expected 1",
        ),
        case("unknown token", send(token("HELO", 1)), "expected token DONE, received 'HELO00000001'"),
        case(
            "SERR before STAT",
            send(reply_bytes(&[token("DONE", 1), item("SERR", b"w")])),
            "expected token STAT, received 'SERR00000001'",
        ),
        case(
            "DOTO before SOUT",
            send(reply_bytes(&[token("DONE", 1), token("STAT", 0), item("SERR", b""), item("DOTO", b"x")])),
            "expected token SOUT, received 'DOTO00000001'",
        ),
        case("bad hexadecimal digits", send(b"DONE0000000g".to_vec()), "DONE value '0000000g' is not 8 hexadecimal digits"),
        case(
            "STAT all ones",
            send(reply_bytes(&[token("DONE", 1), token("STAT", 0xffff_ffff)])),
            "STAT value 0xffffffff is invalid",
        ),
        case(
            "STAT of a stopped process",
            send(reply_bytes(&[token("DONE", 1), token("STAT", 0x137f)])),
            "STAT value 0x137f is invalid",
        ),
        case(
            "SERR of 4 GiB",
            send(reply_bytes(&[token("DONE", 1), token("STAT", 0), token("SERR", 0xffff_ffff)])),
            "SERR value 0xffffffff is invalid",
        ),
        case(
            "SOUT of 4 GiB",
            send(reply_bytes(&[token("DONE", 1), token("STAT", 0), item("SERR", b""), token("SOUT", 0xffff_ffff)])),
            "SOUT value 0xffffffff is invalid",
        ),
        case("DOTO of 4 GiB", send(with_head(vec![token("DOTO", 0xffff_ffff)])), "DOTO value 0xffffffff is invalid"),
        case(
            "DOTO of 2 GiB cut after 160 MiB",
            send_then_stream(with_head(vec![token("DOTO", 0x7fff_ffff)]), 160 << 20),
            "while reading DOTO",
        ),
        case(
            "endless SERR",
            send_then_stream(reply_bytes(&[token("DONE", 1), token("STAT", 0), token("SERR", 0x00ff_ffff)]), 64 << 20),
            "expected token SOUT, received 'xxxxxxxxxxxx'",
        ),
        case(
            "SERR repeated",
            send(reply_bytes(&[token("DONE", 1), token("STAT", 0)]).into_iter().chain(item("SERR", b"warn").repeat(1000)).collect()),
            "expected token SOUT, received 'SERR00000004'",
        ),
        case(
            "SERR cut short",
            send(reply_bytes(&[token("DONE", 1), token("STAT", 0), token("SERR", 0x100), b"warning".to_vec()])),
            "while reading SERR",
        ),
        case(
            "SOUT cut short",
            send(reply_bytes(&[token("DONE", 1), token("STAT", 0), item("SERR", b""), token("SOUT", 0x100), b"out".to_vec()])),
            "while reading SOUT",
        ),
        case(
            "DOTO cut short",
            send(with_head(vec![token("DOTO", 0x100), b"\x7fELF".to_vec()])),
            "while reading DOTO",
        ),
        case(
            "bytes after the reply",
            send(with_head(vec![item("DOTO", b"not an object"), b"DOTO00000004more".to_vec()])),
            "unexpected data after the end of the reply (after DOTO), starting with 'DOTO00000004more'",
        ),
        case(
            "compiler killed on the server",
            send(reply_bytes(&[token("DONE", 1), token("STAT", 11), item("SERR", b""), item("SOUT", b""), item("DOTO", b"")])),
            "compiler on the server was killed by SIGSEGV",
        ),
        Case {
            name: "stall after DONE",
            reply: Box::new(|stream: &mut TcpStream| {
                let _ = stream.write_all(&token("DONE", 1));
                thread::sleep(Duration::from_secs(3));
            }),
            expected: "waiting for STAT timed out after 1 s (DISTCC_IO_TIMEOUT)",
            env: &[("DISTCC_IO_TIMEOUT", "1")],
        },
    ]
}

fn local_reference(scratch: &Scratch) -> PathBuf {
    let reference = scratch.path().join("reference.o");
    let status = Command::new("gcc")
        .current_dir(scratch.path())
        .args(["-O2", "-c", "hostile.c", "-o"])
        .arg(&reference)
        .status()
        .unwrap();
    assert!(status.success());
    reference
}

/// Lists the files left in `dir` whose names start with `prefix`.
fn leftovers(dir: &Path, prefix: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(prefix))
        .collect()
}

/// Runs one compile against the fake server and checks everything the
/// module comment promises. Returns what the server received.
/// `options` is appended to the host entry: "", ",auth" or ",lzo".
fn check_case(scratch: &Scratch, reference: &Path, case: Case, options: &str) -> Vec<u8> {
    let object = scratch.path().join("hostile.o");
    let _ = std::fs::remove_file(&object);
    let server = fake_server(!options.contains("auth"), case.reply);
    let hosts = format!("127.0.0.1:{}{options}", server.port);
    let mut command = scratch.distcc(&hosts);
    command.args(["gcc", "-O2", "-c", "hostile.c", "-o", "hostile.o"]);
    for (name, value) in case.env {
        command.env(name, value);
    }
    let run = run_measured(command, scratch.path());
    let name = case.name;
    let log = &run.stderr;

    assert_eq!(run.exit_code, Some(0), "{name}: {log}");
    assert_same_file(&object, reference);
    assert_eq!(log.lines().count(), 1, "{name}: one warning line: {log}");
    assert!(log.contains(&format!("127.0.0.1:{}", server.port)), "{name}: names the host: {log}");
    assert!(log.contains(case.expected), "{name}: expected '{}': {log}", case.expected);
    assert!(log.contains("compiling locally"), "{name}: {log}");
    assert!(run.max_rss_kib < MEMORY_LIMIT_KIB, "{name}: peak memory {} KiB", run.max_rss_kib);
    assert!(run.elapsed < Duration::from_secs(20), "{name}: took {:?}", run.elapsed);
    assert_eq!(leftovers(scratch.path(), ".distcc-rs-"), Vec::<String>::new(), "{name}: temporary object left");
    assert_eq!(leftovers(&scratch.path().join(".tmp"), ""), Vec::<String>::new(), "{name}: TMPDIR not empty");
    eprintln!("{name}: peak memory {} KiB, {:?}", run.max_rss_kib, run.elapsed);

    server.thread.join().unwrap();
    server.received.lock().unwrap().clone()
}

#[test]
fn broken_replies_fall_back_locally() {
    let scratch = Scratch::new();
    scratch.write("hostile.c", HELLO);
    let reference = local_reference(&scratch);
    for case in protocol_cases() {
        check_case(&scratch, &reference, case, "");
    }
}

fn handshake_cases() -> Vec<Case> {
    let after_star = |bytes: Vec<u8>| {
        let mut reply = b"*".to_vec();
        reply.extend(bytes);
        send(reply)
    };
    vec![
        case("wrong handshake byte", send(b"x".to_vec()), "answered the handshake with 'x' instead of '*'"),
        case("closed after the handshake", after_star(Vec::new()), "TLEN"),
        case("token of 4 GiB", after_star(token("TLEN", 0xffff_ffff)), "context token of invalid length 4294967295"),
        case("empty token", after_star(token("TLEN", 0)), "context token of invalid length 0"),
        case("garbage token", after_star(item("TLEN", &[0x5a; 64])), "GSS-API authentication as host/localhost failed"),
        case("verdict without a token", after_star(b"y".to_vec()), "TLEN"),
    ]
}

#[test]
fn broken_handshakes_never_send_the_job() {
    let scratch = Scratch::new();
    scratch.write("hostile.c", HELLO);
    let reference = local_reference(&scratch);
    for case in handshake_cases() {
        let name = case.name;
        let received = check_case(&scratch, &reference, case, ",auth");
        // The bed's realm is DISTCC.TEST, so "DIST" alone occurs in tickets.
        let request_start = b"DIST00000001ARGC";
        assert!(
            !received.windows(request_start.len()).any(|w| w == request_start),
            "{name}: the job was sent to an unauthenticated server"
        );
        assert!(received.starts_with(b"*"), "{name}: the client started the handshake");
    }
}

/// Builds an LZO1X block of a few hundred KiB that decompresses to about
/// `megabytes` MiB of 'x'. It is one literal, then one match one byte back
/// whose length is extended by a run of zero bytes (each adds 255), then
/// the end marker.
fn lzo_bomb(megabytes: usize) -> Vec<u8> {
    let zero_bytes = (megabytes << 20) / 255;
    let mut block = vec![18, b'x', 0x20];
    block.extend(std::iter::repeat_n(0u8, zero_bytes));
    block.extend_from_slice(&[0x01, 0x00, 0x00, 0x11, 0x00, 0x00]);
    block
}

fn compressed_cases() -> Vec<Case> {
    let head = |status: u32| vec![token("DONE", 2), token("STAT", status)];
    let parts = |mut first: Vec<Vec<u8>>, rest: Vec<Vec<u8>>| {
        first.extend(rest);
        reply_bytes(&first)
    };
    // One literal, then a match 9 bytes back: only 1 byte exists.
    let overrun = vec![0x12, b'a', 0x40, 0x01, 0x11, 0x00, 0x00];
    vec![
        case(
            "DOTO not LZO",
            send(parts(head(0), vec![token("SERR", 0), token("SOUT", 0), item("DOTO", &overrun)])),
            "protocol error: DOTO: invalid LZO data",
        ),
        case(
            "SERR decompresses past the limit",
            send(parts(head(0), vec![item("SERR", &lzo_bomb(20))])),
            "protocol error: SERR: LZO data decompresses to more than the limit of 16777216 bytes",
        ),
        case(
            "DOTO block cut short",
            send(parts(head(0), vec![token("SERR", 0), token("SOUT", 0), token("DOTO", 100), vec![18, b'x']])),
            "while reading DOTO",
        ),
        case(
            "protocol 1 reply to a protocol 2 request",
            send(reply_bytes(&[token("DONE", 1), token("STAT", 0), token("SERR", 0), token("SOUT", 0), token("DOTO", 0)])),
            "DONE carries protocol version 1, expected 2",
        ),
    ]
}

#[test]
fn broken_compressed_replies_fall_back_locally() {
    let scratch = Scratch::new();
    scratch.write("hostile.c", HELLO);
    let reference = local_reference(&scratch);
    for case in compressed_cases() {
        check_case(&scratch, &reference, case, ",lzo");
    }
}

#[test]
fn verbose_log_contains_no_token() {
    // The client's context token carries its Kerberos ticket. With every
    // debug message on, no part of it may appear in the log, raw or in hex.
    let scratch = Scratch::new();
    scratch.write("hostile.c", HELLO);
    let mut reply = b"*".to_vec();
    reply.extend(item("TLEN", &[0x5a; 64]));
    let server = fake_server(false, send(reply));
    let mut command = scratch.distcc(&format!("127.0.0.1:{},auth", server.port));
    command.env("DISTCC_VERBOSE", "1").args(["gcc", "-O2", "-c", "hostile.c", "-o", "hostile.o"]);
    let output = command.output().unwrap();
    let log = output.stderr;
    let text = String::from_utf8_lossy(&log).into_owned();
    assert!(output.status.success(), "{text}");
    assert!(text.contains("authenticating to"), "the handshake ran: {text}");
    server.thread.join().unwrap();

    let received = server.received.lock().unwrap().clone();
    assert!(received.starts_with(b"*TLEN"), "the client sent a token");
    let length = u32::from_str_radix(std::str::from_utf8(&received[5..13]).unwrap(), 16).unwrap() as usize;
    let token = &received[13..13 + length];
    assert!(token.len() > 100, "a Kerberos AP-REQ is several hundred bytes: {}", token.len());
    // The token also contains the realm and the service principal in clear
    // text, which the log names on purpose, so windows of printable ASCII
    // are skipped.
    for window in token.windows(8).filter(|w| !w.iter().all(|b| b.is_ascii_graphic())) {
        assert!(!log.windows(8).any(|w| w == window), "raw token bytes in the log: {window:?}");
        let hex: String = window.iter().map(|b| format!("{b:02x}")).collect();
        assert!(!text.to_lowercase().contains(&hex), "token bytes in hex in the log: {hex}");
    }
    let longest_hex_run = text
        .split(|c: char| !c.is_ascii_hexdigit())
        .map(str::len)
        .max()
        .unwrap_or(0);
    assert!(longest_hex_run < 32, "a long hexadecimal run in the log: {text}");
}

/// Builds a reply that reports a failed compile with `exit_code`.
fn failed_compile(exit_code: u32) -> Vec<u8> {
    reply_bytes(&[
        token("DONE", 1),
        token("STAT", exit_code << 8),
        item("SERR", b"cc1: internal compiler error: Segmentation fault\n"),
        item("SOUT", b""),
        token("DOTO", 0),
    ])
}

#[test]
fn failing_server_compiles_are_backed_off() {
    let scratch = Scratch::new();
    scratch.write("hostile.c", HELLO);
    let reference = local_reference(&scratch);
    let object = scratch.path().join("hostile.o");
    let compile = |hosts: &str| {
        let mut command = scratch.distcc(hosts);
        command.args(["gcc", "-O2", "-c", "hostile.c", "-o", "hostile.o"]);
        let output = command.output().unwrap();
        (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())
    };

    // gcc's exit code 4, an internal compiler error on the server: the job
    // compiles here, the server's messages are dropped, the warning blames
    // the server, and the next job skips it.
    let server = fake_server(true, send(failed_compile(4)));
    let hosts = format!("127.0.0.1:{}", server.port);
    let (code, log) = compile(&hosts);
    assert_eq!(code, Some(0), "{log}");
    assert_same_file(&object, &reference);
    assert!(!log.contains("internal compiler error"), "{log}");
    assert_eq!(log.lines().count(), 1, "one warning line: {log}");
    assert!(log.contains(&format!("127.0.0.1:{}", server.port)), "{log}");
    assert!(log.contains("failed there with exit code 4 but succeeded here"), "{log}");
    assert!(log.contains("check the server's compiler"), "{log}");
    server.thread.join().unwrap();

    assert!(!leftovers(&scratch.path().join(".distcc/lock"), "backoff").is_empty(), "backoff recorded");
    std::fs::remove_file(&object).unwrap();
    let (code, log) = compile(&hosts);
    assert_eq!(code, Some(0), "{log}");
    assert_same_file(&object, &reference);
    assert!(log.contains("failed there with exit code 4 but succeeded here"), "names the recorded reason: {log}");

    // Exit code 1, compile errors there only: a warning for this job, and
    // no backoff, since the difference may lie in this source alone.
    let other = Scratch::new();
    other.write("hostile.c", HELLO);
    let server = fake_server(true, send(failed_compile(1)));
    let hosts = format!("127.0.0.1:{}", server.port);
    let mut command = other.distcc(&hosts);
    command.args(["gcc", "-O2", "-c", "hostile.c", "-o", "hostile.o"]);
    let output = command.output().unwrap();
    let log = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(0), "{log}");
    assert_same_file(&other.path().join("hostile.o"), &reference);
    assert_eq!(log.lines().count(), 1, "one warning line: {log}");
    assert!(log.contains("failed there with exit code 1 but succeeded here; compiled locally"), "{log}");
    server.thread.join().unwrap();
    assert_eq!(leftovers(&other.path().join(".distcc/lock"), "backoff"), Vec::<String>::new(), "no backoff recorded");
}
