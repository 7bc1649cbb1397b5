//! Protocol 2 (`,lzo`) against stock distccd, with a proxy that records the
//! bytes on the wire in both directions.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

use crate::common;
use crate::support::{Distccd, Workspace, assert_same_object, read};

/// The bytes of one proxied connection.
#[derive(Default)]
struct Transcript {
    to_server: Vec<u8>,
    to_client: Vec<u8>,
}

/// A TCP proxy on 127.0.0.1 that forwards to `upstream` and records every byte.
struct RecordingProxy {
    port: u16,
    transcripts: Arc<Mutex<Vec<Arc<Mutex<Transcript>>>>>,
    pumps: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl RecordingProxy {
    fn start(upstream: SocketAddr) -> RecordingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let transcripts: Arc<Mutex<Vec<Arc<Mutex<Transcript>>>>> = Arc::default();
        let pumps: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (shared_transcripts, shared_pumps) = (Arc::clone(&transcripts), Arc::clone(&pumps));
        // The accept thread ends with the test process.
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { break };
                let server = TcpStream::connect(upstream).expect("proxy connects to distccd");
                let transcript = Arc::new(Mutex::new(Transcript::default()));
                shared_transcripts.lock().unwrap().push(Arc::clone(&transcript));
                let up = pump(client.try_clone().unwrap(), server.try_clone().unwrap(), Arc::clone(&transcript), true);
                let down = pump(server, client, transcript, false);
                shared_pumps.lock().unwrap().extend([up, down]);
            }
        });
        RecordingProxy { port, transcripts, pumps }
    }

    /// Waits for the forwarding threads and returns the transcripts.
    fn finish(&self) -> Vec<Transcript> {
        for pump in self.pumps.lock().unwrap().drain(..) {
            pump.join().unwrap();
        }
        self.transcripts
            .lock()
            .unwrap()
            .drain(..)
            .map(|t| std::mem::take(&mut *t.lock().unwrap()))
            .collect()
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream, transcript: Arc<Mutex<Transcript>>, to_server: bool) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let count = match from.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(count) => count,
            };
            let mut recorded = transcript.lock().unwrap();
            let target = if to_server { &mut recorded.to_server } else { &mut recorded.to_client };
            target.extend_from_slice(&buffer[..count]);
            drop(recorded);
            if to.write_all(&buffer[..count]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    })
}

/// A cursor over recorded protocol bytes.
struct Tokens<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Tokens<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Tokens { bytes, position: 0 }
    }

    /// Reads a token header, checks its name and returns its value.
    fn token(&mut self, name: &str) -> u32 {
        let header = &self.bytes[self.position..self.position + 12];
        assert_eq!(&header[..4], name.as_bytes(), "expected token {name} at byte {}", self.position);
        self.position += 12;
        u32::from_str_radix(std::str::from_utf8(&header[4..]).unwrap(), 16).unwrap()
    }

    /// Reads a token and its payload.
    fn item(&mut self, name: &str) -> &'a [u8] {
        let length = self.token(name) as usize;
        let payload = &self.bytes[self.position..self.position + length];
        self.position += length;
        payload
    }

    fn at_end(&self) -> bool {
        self.position == self.bytes.len()
    }
}

/// Sizes seen on the wire for one job.
struct WireSizes {
    doti: usize,
    doto: usize,
    to_server: usize,
    to_client: usize,
}

/// Parses a whole protocol 2 exchange and checks that every length matches
/// the bytes that followed it.
fn parse_exchange(transcript: &Transcript) -> WireSizes {
    let mut request = Tokens::new(&transcript.to_server);
    assert_eq!(request.token("DIST"), 2, "request must announce protocol 2");
    let argc = request.token("ARGC");
    for _ in 0..argc {
        request.item("ARGV");
    }
    let doti = request.item("DOTI").len();
    assert!(request.at_end(), "bytes after DOTI in the request");

    let mut reply = Tokens::new(&transcript.to_client);
    assert_eq!(reply.token("DONE"), 2, "reply must carry protocol 2");
    assert_eq!(reply.token("STAT"), 0, "server compile failed");
    reply.item("SERR");
    reply.item("SOUT");
    let doto = reply.item("DOTO").len();
    assert!(reply.at_end(), "bytes after DOTO in the reply");
    WireSizes { doti, doto, to_server: transcript.to_server.len(), to_client: transcript.to_client.len() }
}

fn preprocessed_size(workspace: &Workspace, source: &str) -> usize {
    let output = Command::new("gcc").current_dir(workspace.dir.path()).args(["-E", source]).output().unwrap();
    assert!(output.status.success());
    output.stdout.len()
}

/// Compiles `source` through a `,lzo` host behind the recording proxy and
/// checks the object and the wire sizes.
fn compile_through_lzo_host(workspace: &Workspace, source: &str, flags: &[&str]) {
    let server = Distccd::start("127.0.0.1", &[]);
    let proxy = RecordingProxy::start(SocketAddr::new(server.address, server.port));
    let hosts = format!("127.0.0.1:{},lzo", proxy.port);

    let mut args = vec!["gcc"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["-c", source, "-o", "remote.o"]);
    let run = workspace.run(&[("DISTCC_HOSTS", &hosts), ("DISTCC_FALLBACK", "0"), ("DISTCC_VERBOSE", "1")], &args);
    run.assert_success();
    assert!(run.stderr().contains("with protocol 2"), "{}", run.stderr());

    let mut local_args: Vec<&str> = flags.to_vec();
    local_args.extend_from_slice(&["-c", source, "-o", "local.o"]);
    workspace.compile_locally(&local_args);
    assert_same_object(&workspace.path("remote.o"), &workspace.path("local.o"));

    let transcripts = proxy.finish();
    assert_eq!(transcripts.len(), 1, "one connection per job");
    let sizes = parse_exchange(&transcripts[0]);
    let source_size = preprocessed_size(workspace, source);
    let object_size = read(&workspace.path("remote.o")).len();
    eprintln!(
        "{source}: preprocessed {source_size} bytes sent as DOTI of {} ({} on the wire); object {object_size} bytes received as DOTO of {} ({} on the wire)",
        sizes.doti, sizes.to_server, sizes.doto, sizes.to_client
    );
    assert!(sizes.doti * 2 < source_size, "DOTI {} bytes is not compressed (source {source_size})", sizes.doti);
    assert!(sizes.to_server * 2 < source_size, "request {} bytes for a source of {source_size}", sizes.to_server);
    assert!(sizes.doto * 10 < object_size * 9, "DOTO {} bytes is not compressed (object {object_size})", sizes.doto);
    assert!(sizes.to_client < object_size, "reply {} bytes for an object of {object_size}", sizes.to_client);
}

#[test]
fn lzo_sqlite_amalgamation() {
    let workspace = Workspace::new();
    let source = common::sources("sqlite").join("sqlite3.c");
    std::fs::copy(&source, workspace.path("sqlite3.c")).unwrap();
    // -O1: at -O0, gcc places label nops by macro expansion locations, which
    // differ between compiling sqlite3.c and its preprocessed form.
    compile_through_lzo_host(&workspace, "sqlite3.c", &["-O1"]);
}

/// Writes a C file of about 7.6 MB: a large table and functions over it.
fn generated_source() -> Vec<u8> {
    let mut text = String::with_capacity(8 * 1024 * 1024);
    text.push_str("/* Generated to test large transfers. */\n");
    let mut table = 0;
    while text.len() < 7_600_000 {
        text.push_str(&format!("static const unsigned int table{table}[] = {{\n"));
        for i in 0..20_000u32 {
            // Periodic values, as in real lookup tables: text and object compress.
            let value = (i % 1000) * (table + 1) % 4096;
            text.push_str(&format!("{value},"));
            if i % 16 == 15 {
                text.push('\n');
            }
        }
        text.push_str("};\n");
        text.push_str(&format!(
            "unsigned int sum{table}(unsigned int n) {{ unsigned int s = 0; for (unsigned int i = 0; i < n && i < 20000; i++) s += table{table}[i] * {}; return s; }}\n",
            table + 3
        ));
        table += 1;
    }
    text.into_bytes()
}

#[test]
fn lzo_generated_large_source() {
    let workspace = Workspace::new();
    let source = generated_source();
    assert!(source.len() >= 7_600_000);
    workspace.write("generated.c", &source);
    compile_through_lzo_host(&workspace, "generated.c", &[]);
}

#[test]
fn lzo_compile_error_and_warnings() {
    // SERR comes back compressed and is shown; the failed compile is then
    // confirmed locally.
    let workspace = Workspace::new();
    workspace.write("warn.c", b"int f(int x) { int unused; return x; }\n");
    let server = Distccd::start("127.0.0.1", &[]);
    let hosts = format!("{},lzo", server.entry());
    let run = workspace.run(
        &[("DISTCC_HOSTS", &hosts), ("DISTCC_FALLBACK", "0")],
        &["gcc", "-Wall", "-c", "warn.c", "-o", "warn.o"],
    );
    run.assert_success();
    assert!(run.stderr().contains("unused variable"), "server warning not relayed: {}", run.stderr());

    workspace.write("broken.c", b"int f(void) { return undeclared_name; }\n");
    let run = workspace.run(
        &[("DISTCC_HOSTS", &hosts), ("DISTCC_FALLBACK", "0")],
        &["gcc", "-c", "broken.c", "-o", "broken.o"],
    );
    assert_eq!(run.code(), Some(1), "{}", run.stderr());
    assert!(run.stderr().contains("undeclared_name"), "{}", run.stderr());
    assert!(!workspace.path("broken.o").exists(), "a failed compile left an object");
}
