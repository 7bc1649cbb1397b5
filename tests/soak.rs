//! Soak test: many compiles from 16 concurrent clients against two stock
//! distccd servers on loopback, one of which is killed (SIGKILL to its
//! process group) halfway through and restarted on the same port a second
//! later.
//!
//! Afterwards every object must equal a local gcc build and no client may
//! have hung. No process of the run may be left, no compiler may have
//! inherited a descriptor of the client, no lock in the shared DISTCC_DIR
//! may still be held, and no temporary file may be left.
//!
//! The number of compiles is `DISTCC_RS_SOAK_COMPILES` (default 500, at
//! least 32). The sources are the C files of zlib and Lua 5.4.

mod common;

use std::collections::BTreeSet;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::Scratch;

const CLIENTS: usize = 16;

/// Maximum time one client may take before it counts as hung. A compile
/// takes well under a second here; the bound leaves room for a loaded machine.
const CLIENT_DEADLINE: Duration = Duration::from_secs(120);

/// The compiler wrapper that every job runs for preprocessing and local
/// compiles: it records its open descriptors, then runs gcc.
const WRAPPER: &str = "#!/bin/sh\nls /proc/$$/fd >\"$FD_RECORDS/$$\"\nexec /usr/bin/gcc \"$@\"\n";

/// Exit status of distccd when it cannot bind its port (EXIT_BIND_FAILED).
const DISTCCD_BIND_FAILED: i32 = 102;

/// A stock distccd on 127.0.0.1, in a process group of its own.
struct Server {
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
    starts: u32,
}

impl Server {
    fn start(dir: PathBuf) -> Server {
        for _ in 0..5 {
            let port = free_port();
            let mut server = Server { dir: dir.clone(), port, child: None, starts: 0 };
            if server.run().is_ok() {
                return server;
            }
        }
        panic!("distccd could not bind a free port in 5 attempts; see {}", dir.display());
    }

    /// Starts distccd on `self.port` and waits until it listens.
    fn run(&mut self) -> Result<(), i32> {
        self.starts += 1;
        let state = self.dir.join(format!("run{}", self.starts));
        std::fs::create_dir_all(state.join("tmp")).unwrap();
        let log = self.log(self.starts);
        std::fs::write(&log, b"").unwrap();
        let mut command = Command::new("distccd");
        command
            .args(["--daemon", "--no-detach", "--listen", "127.0.0.1", "--allow", "127.0.0.1", "--jobs", "8"])
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--log-file")
            .arg(&log)
            .args(["--log-level", "info"])
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("TMPDIR", state.join("tmp"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(state.join("stderr")).unwrap())
            .process_group(0);
        // SAFETY: geteuid only reads the process's user id.
        if unsafe { libc::geteuid() } == 0 {
            // distccd started as root switches to this user (Debian's distcc
            // package creates it) before it opens its log.
            command.args(["--user", "distccd"]);
            chown_to_distccd(&[&self.dir, &state, &state.join("tmp"), &log]);
        }
        let mut child = command.spawn().expect("start distccd (Debian package distcc)");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if is_listening(self.port) {
                self.child = Some(child);
                return Ok(());
            }
            if let Some(status) = child.try_wait().unwrap() {
                let code = status.code().unwrap_or(-1);
                assert_eq!(code, DISTCCD_BIND_FAILED, "distccd exited with {status} at start-up; see {}", state.display());
                return Err(code);
            }
            assert!(Instant::now() < deadline, "distccd did not listen on port {} within 10 s", self.port);
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn log(&self, start: u32) -> PathBuf {
        self.dir.join(format!("distccd{start}.log"))
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}/8", self.port)
    }

    /// Kills distccd and its workers with SIGKILL, as a crash would.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill only sends a signal to the group this test started.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
        }
    }

    /// Counts the jobs that the server's logs record as compiled.
    fn compiled(&self) -> usize {
        (1..=self.starts).map(|start| common::count_log_lines(&self.log(start), &["COMPILE_OK"])).sum()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill only sends a signal to the group this test started.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGTERM) };
            let _ = child.wait();
        }
    }
}

fn chown_to_distccd(paths: &[&Path]) {
    for path in paths {
        let status = Command::new("chown").arg("distccd").arg(path).status().unwrap();
        assert!(status.success(), "chown distccd {}", path.display());
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Reads /proc/net/tcp instead of connecting, so that no test connection
/// shows up in a server log.
fn is_listening(port: u16) -> bool {
    let wanted = format!("0100007F:{port:04X}");
    std::fs::read_to_string("/proc/net/tcp")
        .unwrap_or_default()
        .lines()
        .any(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.len() > 3 && fields[1] == wanted && fields[3] == "0A"
        })
}

fn compile_count() -> usize {
    let count = match std::env::var("DISTCC_RS_SOAK_COMPILES") {
        Ok(text) => text.parse().unwrap_or_else(|_| panic!("invalid DISTCC_RS_SOAK_COMPILES='{text}': expected a number")),
        Err(_) => 500,
    };
    assert!(count >= 32, "DISTCC_RS_SOAK_COMPILES={count}: at least 32 compiles, two per client");
    count
}

/// The outcome of one client run.
enum Outcome {
    Finished { code: Option<i32>, stderr: String },
    Hung,
}

fn run_client(mut command: Command) -> Outcome {
    let mut child = command.spawn().expect("start distcc-rs");
    let deadline = Instant::now() + CLIENT_DEADLINE;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            if let Some(mut pipe) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
            }
            return Outcome::Finished { code: status.code(), stderr };
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Outcome::Hung;
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// Files under `dir` whose lock another process still holds, tested with
/// both POSIX record locks (what stock distcc uses) and flock.
fn held_locks(dir: &Path) -> Vec<String> {
    let mut held = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return held;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            held.extend(held_locks(&path));
            continue;
        }
        let Ok(file) = std::fs::OpenOptions::new().read(true).write(true).open(&path) else { continue };
        // SAFETY: flock structure filled in for F_GETLK on an open file.
        let mut lock: libc::flock = unsafe { std::mem::zeroed() };
        lock.l_type = libc::F_WRLCK as libc::c_short;
        lock.l_whence = libc::SEEK_SET as libc::c_short;
        // SAFETY: F_GETLK with a valid descriptor and flock structure.
        let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETLK, &mut lock) };
        if rc == 0 && lock.l_type != libc::F_UNLCK as libc::c_short {
            held.push(format!("{} (record lock of process {})", path.display(), lock.l_pid));
        }
        // SAFETY: flock with a valid descriptor; released right away.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            held.push(format!("{} (flock)", path.display()));
        } else {
            unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_UN) };
        }
    }
    held
}

/// Lists the descriptors the wrapper recorded in `records` that are not in
/// `baseline`, one entry per compiler run that had extra ones.
fn extra_descriptors(records: &Path, baseline: &BTreeSet<String>) -> Vec<String> {
    let mut extra = Vec::new();
    for entry in std::fs::read_dir(records).unwrap().flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap();
        let seen: BTreeSet<String> = text.split_whitespace().map(str::to_string).collect();
        let unexpected: Vec<&String> = seen.difference(baseline).collect();
        if !unexpected.is_empty() {
            extra.push(format!("process {}: {unexpected:?}", entry.file_name().to_string_lossy()));
        }
    }
    extra
}

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn soak_two_servers_one_restarted() {
    let total = compile_count();
    let scratch = Scratch::new();
    let mut sources = common::c_files(&common::sources("zlib"), &[]);
    let lua = common::sources("lua");
    sources.extend(common::c_files(&lua, &["lua.c", "luac.c", "onelua.c"]));
    assert!(sources.len() >= 40, "expected the zlib and Lua sources: {sources:?}");

    // The servers' directory must be reachable by the user distccd.
    let servers_dir = tempfile::Builder::new().prefix("distcc-rs-soak-").tempdir().unwrap();
    std::fs::set_permissions(servers_dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    for name in ["a", "b"] {
        std::fs::create_dir(servers_dir.path().join(name)).unwrap();
        std::fs::set_permissions(servers_dir.path().join(name), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let descriptors_before = open_descriptors();
    let mut server_a = Server::start(servers_dir.path().join("a"));
    let server_b = Server::start(servers_dir.path().join("b"));

    let bin = scratch.path().join("bin");
    let wrapper = scratch.write("bin/gcc", WRAPPER);
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let records = scratch.path().join("fd-records");
    let objects = scratch.path().join("objects");
    let references = scratch.path().join("references");
    for dir in [&records, &objects, &references] {
        std::fs::create_dir_all(dir).unwrap();
    }
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let flags = ["-O2", "-DLUA_USE_LINUX", "-c"];

    // Descriptors of the wrapper when the test starts it directly: a shell
    // has some of its own, and this process may pass on some of its parent's.
    let baseline_records = scratch.path().join("fd-baseline");
    std::fs::create_dir_all(&baseline_records).unwrap();
    for (index, source) in sources.iter().enumerate() {
        let status = Command::new(&wrapper)
            .args(flags)
            .arg(source)
            .arg("-o")
            .arg(references.join(format!("{index}.o")))
            .env("FD_RECORDS", &baseline_records)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "local reference compile of {}", source.display());
    }
    let mut baseline = BTreeSet::new();
    for entry in std::fs::read_dir(&baseline_records).unwrap().flatten() {
        baseline.extend(std::fs::read_to_string(entry.path()).unwrap().split_whitespace().map(str::to_string));
    }

    let marker = format!("SOAK_MARKER={}", scratch.path().display());
    // The restarted server A listens on the same port.
    let (host_a, host_b) = (server_a.host(), server_b.host());
    let next = AtomicUsize::new(0);
    let finished = AtomicUsize::new(0);
    let fell_back = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::<String>::new());
    let started = Instant::now();
    let mut downtime = Duration::ZERO;

    thread::scope(|scope| {
        for _ in 0..CLIENTS {
            scope.spawn(|| {
                loop {
                    let job = next.fetch_add(1, Ordering::SeqCst);
                    if job >= total {
                        return;
                    }
                    let source_index = job % sources.len();
                    // Alternate the order so that both servers get jobs.
                    let hosts = if job.is_multiple_of(2) { format!("{host_a} {host_b}") } else { format!("{host_b} {host_a}") };
                    let mut command = Command::new(common::distcc_rs());
                    scratch.prepare_without_bed(&mut command, &hosts);
                    command
                        .env("PATH", &path)
                        .env("FD_RECORDS", &records)
                        .env("DISTCC_IO_TIMEOUT", "60")
                        .env("SOAK_MARKER", scratch.path())
                        .arg("gcc")
                        .args(flags)
                        .arg(&sources[source_index])
                        .arg("-o")
                        .arg(objects.join(format!("{job}.o")))
                        .stdin(Stdio::null())
                        .stdout(Stdio::null())
                        .stderr(Stdio::piped());
                    let outcome = run_client(command);
                    let problem = match outcome {
                        Outcome::Hung => Some(format!("job {job}: client still ran after {CLIENT_DEADLINE:?}")),
                        Outcome::Finished { code: Some(0), stderr } => {
                            if stderr.contains("warning") {
                                fell_back.fetch_add(1, Ordering::SeqCst);
                            }
                            let object = std::fs::read(objects.join(format!("{job}.o"))).unwrap_or_default();
                            let expected = std::fs::read(references.join(format!("{source_index}.o"))).unwrap();
                            (object != expected).then(|| {
                                format!("job {job}: object of {} differs from the local build", sources[source_index].display())
                            })
                        }
                        Outcome::Finished { code, stderr } => Some(format!("job {job}: exit {code:?}: {stderr}")),
                    };
                    if let Some(problem) = problem {
                        failures.lock().unwrap().push(problem);
                    }
                    finished.fetch_add(1, Ordering::SeqCst);
                }
            });
        }

        // Halfway through, kill server A and start it again on its port.
        while finished.load(Ordering::SeqCst) < total / 2 {
            thread::sleep(Duration::from_millis(20));
        }
        server_a.kill();
        let killed = Instant::now();
        thread::sleep(Duration::from_secs(1));
        server_a.run().expect("restart server A on its port");
        downtime = killed.elapsed();
    });
    let elapsed = started.elapsed();
    eprintln!(
        "soak: {total} compiles from {CLIENTS} clients in {elapsed:.1?}; server A killed after {} and back {downtime:.1?} later; \
         server logs: A compiled {}, B compiled {}; {} jobs warned about a failed host",
        total / 2,
        server_a.compiled(),
        server_b.compiled(),
        fell_back.load(Ordering::SeqCst)
    );

    let failures = failures.into_inner().unwrap();
    assert!(failures.is_empty(), "{} of {total} jobs failed:\n{}", failures.len(), failures.join("\n"));
    assert!(server_a.compiled() + server_b.compiled() > 0, "no job ran remotely");
    assert_eq!(common::processes_with_env(&marker), Vec::<String>::new(), "processes left after the run");
    assert_eq!(extra_descriptors(&records, &baseline), Vec::<String>::new(), "compilers inherited descriptors");
    assert_eq!(held_locks(&scratch.path().join(".distcc")), Vec::<String>::new(), "locks still held");
    let temporary: Vec<_> = std::fs::read_dir(scratch.path().join(".tmp")).unwrap().flatten().map(|e| e.path()).collect();
    assert!(temporary.is_empty(), "temporary files left: {temporary:?}");
    let partial: Vec<_> = std::fs::read_dir(&objects)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| !name.ends_with(".o"))
        .collect();
    assert!(partial.is_empty(), "temporary objects left: {partial:?}");
    drop(server_a);
    drop(server_b);
    assert_eq!(open_descriptors(), descriptors_before, "descriptors of the test process leaked");
}
