//! SIGINT, SIGTERM and SIGHUP during a job: the client stops its
//! preprocessor and its local compiler with everything they started, removes
//! its temporary files, leaves no output, does not compile locally instead,
//! and dies by the same signal.
//!
//! The compiler is a shell script around gcc that logs each call and can
//! sleep first, so a test can signal the client while the script runs.
//! Every process of a job carries a marker in its environment, which is how
//! a test finds processes that outlived the client.

mod common;

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::Scratch;

const HELLO: &str = "#include <stdio.h>\nint hello(void) { return printf(\"hello\\n\"); }\n";

/// The test compiler. `SLOW_CPP` and `SLOW_CC` are seconds to sleep before
/// preprocessing and before compiling; `KILL_CC` is a signal the compile
/// step sends itself.
const COMPILER: &str = r#"#!/bin/sh
case " $* " in
*" -E "*) echo "preprocess $*" >>"$COMPILER_LOG"; [ -z "$SLOW_CPP" ] || sleep "$SLOW_CPP" ;;
*) echo "compile $*" >>"$COMPILER_LOG"; [ -z "$SLOW_CC" ] || sleep "$SLOW_CC"; [ -z "$KILL_CC" ] || kill -s "$KILL_CC" $$ ;;
esac
exec gcc "$@"
"#;

struct Job {
    scratch: Scratch,
    marker: String,
}

impl Job {
    fn new(name: &str) -> Job {
        let scratch = Scratch::new();
        scratch.write("job.c", HELLO);
        let compiler = scratch.write("bin/testcc", COMPILER);
        std::fs::set_permissions(&compiler, std::fs::Permissions::from_mode(0o755)).unwrap();
        let marker = format!("{name}-{}-{}", std::process::id(), scratch.path().display());
        Job { scratch, marker }
    }

    fn object(&self) -> PathBuf {
        self.scratch.path().join("job.o")
    }

    fn compiler_log(&self) -> String {
        std::fs::read_to_string(self.scratch.path().join("compiler.log")).unwrap_or_default()
    }

    fn tmpdir_entries(&self) -> Vec<String> {
        std::fs::read_dir(self.scratch.path().join(".tmp"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }

    /// Starts the client in a process group of its own, so a test can
    /// signal the group as a terminal would.
    fn start(&self, hosts: &str, env: &[(&str, &str)]) -> Child {
        self.start_through(&[], hosts, env)
    }

    /// Starts the client as the last word of `launcher` (a program and its
    /// arguments, which must exec the client), or directly when it is empty.
    fn start_through(&self, launcher: &[&str], hosts: &str, env: &[(&str, &str)]) -> Child {
        let mut command = match launcher.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(common::distcc_rs());
                command
            }
            None => Command::new(common::distcc_rs()),
        };
        self.scratch.prepare_without_bed(&mut command, hosts);
        let path = format!("{}:{}", self.scratch.path().join("bin").display(), std::env::var("PATH").unwrap());
        command
            .env("PATH", path)
            .env("COMPILER_LOG", self.scratch.path().join("compiler.log"))
            .env("SIGNAL_TEST_MARKER", &self.marker)
            .args(["testcc", "-O2", "-c", "job.c", "-o", "job.o"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.scratch.path().join("client.stderr")).unwrap())
            .process_group(0);
        for (name, value) in env {
            command.env(name, value);
        }
        command.spawn().expect("start distcc-rs")
    }

    fn client_stderr(&self) -> String {
        std::fs::read_to_string(self.scratch.path().join("client.stderr")).unwrap_or_default()
    }

    /// Processes other than zombies whose environment has this job's marker.
    fn live_processes(&self) -> Vec<String> {
        common::processes_with_env(&format!("SIGNAL_TEST_MARKER={}", self.marker))
    }
}

/// Waits until `condition` holds, for at most `limit`.
fn wait_until(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        thread::sleep(Duration::from_millis(10));
    }
    condition()
}

/// Waits for the client to end, for at most `limit`; kills it on timeout.
fn wait_for_exit(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        thread::sleep(Duration::from_millis(5));
    }
}

fn dead_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A server that accepts one job, reports on `received` once it has the
/// whole request (or, with `request: false`, the connection), and then
/// never replies: it holds the connection until the client closes it, for
/// at most 20 s.
fn silent_server(request: bool) -> (u16, mpsc::Receiver<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (received, receiver) = mpsc::channel();
    thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        if request {
            read_request(&mut stream);
        }
        let _ = received.send(());
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest);
    });
    (port, receiver)
}

fn read_request(stream: &mut TcpStream) {
    let mut read_value = |name: &str| {
        let mut header = [0u8; 12];
        stream.read_exact(&mut header).unwrap();
        assert_eq!(&header[..4], name.as_bytes());
        u32::from_str_radix(std::str::from_utf8(&header[4..]).unwrap(), 16).unwrap()
    };
    read_value("DIST");
    let argc = read_value("ARGC");
    let skip = |stream: &mut TcpStream, length: u32| {
        let mut payload = vec![0u8; length as usize];
        stream.read_exact(&mut payload).unwrap();
    };
    for _ in 0..argc {
        let length = {
            let mut header = [0u8; 12];
            stream.read_exact(&mut header).unwrap();
            u32::from_str_radix(std::str::from_utf8(&header[4..]).unwrap(), 16).unwrap()
        };
        skip(stream, length);
    }
    let mut header = [0u8; 12];
    stream.read_exact(&mut header).unwrap();
    assert_eq!(&header[..4], b"DOTI");
    let length = u32::from_str_radix(std::str::from_utf8(&header[4..]).unwrap(), 16).unwrap();
    skip(stream, length);
}

fn signal_client(child: &Child, signal: i32, whole_group: bool) {
    let pid = child.id() as i32;
    // SAFETY: kill only sends a signal to the process (group) this test started.
    let rc = unsafe { if whole_group { libc::kill(-pid, signal) } else { libc::kill(pid, signal) } };
    assert_eq!(rc, 0, "kill failed: {}", std::io::Error::last_os_error());
}

#[test]
fn sigterm_stops_local_compiler() {
    let job = Job::new("local");
    let hosts = format!("127.0.0.1:{}", dead_port());
    let mut client = job.start(&hosts, &[("SLOW_CC", "3")]);
    assert!(
        wait_until(Duration::from_secs(10), || job.compiler_log().contains("compile ")),
        "the local compile did not start: {}",
        job.client_stderr()
    );
    thread::sleep(Duration::from_millis(100));

    let sent = Instant::now();
    signal_client(&client, libc::SIGTERM, false);
    let status = wait_for_exit(&mut client, Duration::from_secs(1)).expect("client still runs 1 s after SIGTERM");
    assert_eq!(status.signal(), Some(libc::SIGTERM), "client status {status:?}");
    let gone = wait_until(Duration::from_secs(1).saturating_sub(sent.elapsed()), || job.live_processes().is_empty());
    assert!(gone, "processes of the job outlived the client by 1 s: {:?}", job.live_processes());

    thread::sleep(Duration::from_secs(4));
    assert!(!job.object().exists(), "an object appeared after the signal");
    assert_eq!(job.tmpdir_entries(), Vec::<String>::new());
    assert_eq!(job.compiler_log().matches("compile ").count(), 1, "{}", job.compiler_log());
}

#[test]
fn signal_while_waiting_for_server() {
    for (signal, whole_group) in [(libc::SIGINT, true), (libc::SIGTERM, false), (libc::SIGHUP, false)] {
        let job = Job::new("waiting");
        let (port, received) = silent_server(true);
        let mut client = job.start(&format!("127.0.0.1:{port}"), &[]);
        received.recv_timeout(Duration::from_secs(10)).expect("the server did not receive the job");
        thread::sleep(Duration::from_millis(100));

        signal_client(&client, signal, whole_group);
        let status = wait_for_exit(&mut client, Duration::from_secs(1)).expect("client still runs 1 s after the signal");
        assert_eq!(status.signal(), Some(signal), "signal {signal}: client status {status:?}");
        assert_eq!(job.tmpdir_entries(), Vec::<String>::new(), "signal {signal}: TMPDIR not empty");
        assert!(!job.compiler_log().contains("compile "), "signal {signal}: compiled locally: {}", job.compiler_log());
        assert!(job.compiler_log().contains("preprocess "), "{}", job.compiler_log());
        assert!(!job.object().exists());
        assert!(job.live_processes().is_empty(), "{:?}", job.live_processes());
    }
}

#[test]
fn sigterm_stops_preprocessor() {
    let job = Job::new("preprocessing");
    let (port, connected) = silent_server(false);
    let mut client = job.start(&format!("127.0.0.1:{port}"), &[("SLOW_CPP", "3")]);
    connected.recv_timeout(Duration::from_secs(10)).expect("the client did not connect");
    assert!(wait_until(Duration::from_secs(5), || job.compiler_log().contains("preprocess ")));
    thread::sleep(Duration::from_millis(100));
    assert!(!job.tmpdir_entries().is_empty(), "the preprocessed source is being written");

    let sent = Instant::now();
    signal_client(&client, libc::SIGTERM, false);
    let status = wait_for_exit(&mut client, Duration::from_secs(1)).expect("client still runs 1 s after SIGTERM");
    assert_eq!(status.signal(), Some(libc::SIGTERM));
    let gone = wait_until(Duration::from_secs(1).saturating_sub(sent.elapsed()), || job.live_processes().is_empty());
    assert!(gone, "the preprocessor outlived the client: {:?}", job.live_processes());
    assert_eq!(job.tmpdir_entries(), Vec::<String>::new());
    assert!(!job.compiler_log().contains("compile "), "{}", job.compiler_log());
}

#[test]
fn compiler_killed_by_signal_is_named() {
    let job = Job::new("killed");
    let hosts = format!("127.0.0.1:{}", dead_port());
    let mut client = job.start(&hosts, &[("KILL_CC", "SEGV")]);
    let status = wait_for_exit(&mut client, Duration::from_secs(20)).expect("client hangs");
    let log = job.client_stderr();
    assert_eq!(status.code(), Some(128 + libc::SIGSEGV), "{log}");
    assert!(log.contains("testcc was killed by SIGSEGV"), "{log}");
    assert!(!job.object().exists());
}

#[test]
fn ignored_sighup_stays_ignored() {
    let job = Job::new("nohup");
    let hosts = format!("127.0.0.1:{}", dead_port());
    // The shell ignores SIGHUP, as nohup does, and execs the client.
    let launcher = ["sh", "-c", "trap '' HUP; exec \"$@\"", "sh"];
    let mut client = job.start_through(&launcher, &hosts, &[("SLOW_CC", "1")]);
    assert!(wait_until(Duration::from_secs(10), || job.compiler_log().contains("compile ")));
    signal_client(&client, libc::SIGHUP, true);
    let status = wait_for_exit(&mut client, Duration::from_secs(20)).expect("client hangs");
    assert_eq!(status.code(), Some(0), "{}", job.client_stderr());
    assert!(job.object().exists());
}

#[test]
fn children_start_with_no_blocked_signals() {
    // The client blocks SIGINT, SIGTERM and SIGHUP in all its threads; its
    // children must not inherit that. A Python compiler wrapper reads its
    // own mask before anything could change it (dash, unlike Python, clears
    // the mask at start-up).
    let job = Job::new("mask");
    let wrapper = "#!/usr/bin/env python3\nimport os, sys\nmask = [l for l in open('/proc/self/status') if l.startswith('SigBlk:')][0]\nopen(os.environ['COMPILER_LOG'], 'a').write(mask)\nos.execvp('gcc', ['gcc'] + sys.argv[1:])\n";
    let compiler = job.scratch.write("bin/testcc", wrapper);
    std::fs::set_permissions(&compiler, std::fs::Permissions::from_mode(0o755)).unwrap();
    let hosts = format!("127.0.0.1:{}", dead_port());
    let mut client = job.start(&hosts, &[]);
    let status = wait_for_exit(&mut client, Duration::from_secs(20)).expect("client hangs");
    assert_eq!(status.code(), Some(0), "{}", job.client_stderr());
    let log = job.compiler_log();
    assert_eq!(log.lines().count(), 2, "preprocessor and local compile: {log}");
    for line in log.lines() {
        assert_eq!(line.split_whitespace().nth(1), Some("0000000000000000"), "{log}");
    }
}

#[test]
fn sigterm_stops_ssh_command() {
    // An ssh host whose command never replies: the client waits for the
    // reply while the ssh child (here a shell that execs sleep) runs.
    let job = Job::new("ssh");
    let ssh = job.scratch.write("bin/silent-ssh", "#!/bin/sh\nexec sleep 60\n");
    std::fs::set_permissions(&ssh, std::fs::Permissions::from_mode(0o755)).unwrap();
    let ssh_text = ssh.to_str().unwrap().to_string();
    let mut client = job.start("@build.example", &[("DISTCC_SSH", ssh_text.as_str()), ("DISTCC_IO_TIMEOUT", "30")]);
    assert!(
        wait_until(Duration::from_secs(10), || job.live_processes().iter().any(|p| p.contains("sleep 60"))),
        "the ssh command did not start: {}",
        job.client_stderr()
    );
    thread::sleep(Duration::from_millis(100));

    let sent = Instant::now();
    signal_client(&client, libc::SIGTERM, false);
    let status = wait_for_exit(&mut client, Duration::from_secs(1)).expect("client still runs 1 s after SIGTERM");
    assert_eq!(status.signal(), Some(libc::SIGTERM));
    let gone = wait_until(Duration::from_secs(1).saturating_sub(sent.elapsed()), || job.live_processes().is_empty());
    assert!(gone, "the ssh command outlived the client: {:?}", job.live_processes());
    assert_eq!(job.tmpdir_entries(), Vec::<String>::new());
    assert!(!job.compiler_log().contains("compile "), "{}", job.compiler_log());
}
