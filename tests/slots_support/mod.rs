//! Test parts for the slot, backoff and monitor tests: stock `distccd`
//! servers on loopback, a TCP proxy that counts the jobs open at once, a
//! host that closes every connection, Lua sources and Makefiles.

#![allow(dead_code)]

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs;
use std::io::{self, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread;
use std::time::{Duration, Instant};

/// The distcc-rs binary under test.
pub fn distcc_rs() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_distcc-rs"))
}

/// Returns the first of `programs` missing from PATH, so that a test can
/// skip with a message naming it.
pub fn missing_program(programs: &[&str]) -> Option<String> {
    programs.iter().find(|p| which(p).is_none()).map(|p| p.to_string())
}

pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|candidate| candidate.is_file())
}

/// Prints why a test does not run. Tests return right after it.
pub fn skip(test: &str, reason: &str) {
    eprintln!("SKIPPED {test}: {reason}");
}

static TEST_LOCK: RwLock<()> = RwLock::new(());

/// Runs a test alone among the tests of this binary: the Lua builds, which
/// load every core, and the timing comparison, which other work would skew.
pub fn exclusive_test_lock() -> RwLockWriteGuard<'static, ()> {
    TEST_LOCK.write().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Lets a light test run next to other light tests, but never next to a
/// test that holds [`exclusive_test_lock`].
pub fn shared_test_lock() -> RwLockReadGuard<'static, ()> {
    TEST_LOCK.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A stock distccd on 127.0.0.1, stopped (by its process id) when dropped.
pub struct Distccd {
    pub port: u16,
    child: Child,
    pub log: PathBuf,
}

impl Distccd {
    /// Starts a plain distccd with `jobs` worker processes. Returns once it
    /// accepts connections.
    pub fn start(dir: &Path, jobs: u32) -> Distccd {
        let port = free_port();
        let log = dir.join(format!("distccd-{port}.log"));
        let mut command = Command::new("distccd");
        command
            .args(["--daemon", "--no-detach", "--log-stderr", "--log-level", "info"])
            .args(["--listen", "127.0.0.1", "--allow", "127.0.0.1"])
            .arg("--port")
            .arg(port.to_string())
            .arg("--jobs")
            .arg(jobs.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap());
        // distccd refuses to run as root without a user to switch to.
        if unsafe { libc::geteuid() } == 0 {
            command.args(["--user", "distccd"]);
        }
        let child = command.spawn().expect("start distccd");
        let server = Distccd { port, child, log };
        wait_for_port(port, Duration::from_secs(10));
        server
    }
}

impl Drop for Distccd {
    fn drop(&mut self) {
        // SAFETY: signals only the distccd this test started.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

pub fn wait_for_port(port: u16, limit: Duration) {
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < limit, "nothing listens on 127.0.0.1:{port} after {limit:?}");
        thread::sleep(Duration::from_millis(20));
    }
}

/// Counts of a proxy or a failing host.
#[derive(Debug, Default)]
pub struct Counts {
    /// Connections open now.
    pub open: AtomicUsize,
    /// Most connections open at once.
    pub max_open: AtomicUsize,
    /// Connections accepted in all.
    pub total: AtomicUsize,
}

impl Counts {
    pub fn total(&self) -> usize {
        self.total.load(Ordering::SeqCst)
    }
    pub fn max_open(&self) -> usize {
        self.max_open.load(Ordering::SeqCst)
    }
}

struct Connection {
    client: TcpStream,
    closed: AtomicBool,
}

impl Connection {
    /// Marks the connection closed once; returns true the first time.
    fn close(&self) -> bool {
        !self.closed.swap(true, Ordering::SeqCst)
    }

    /// Returns true when the client has closed its side: a peek without
    /// waiting reads end of file.
    fn client_has_closed(&self) -> bool {
        let mut byte = [0u8; 1];
        self.client.set_nonblocking(true).ok();
        let result = self.client.peek(&mut byte);
        self.client.set_nonblocking(false).ok();
        matches!(result, Ok(0))
    }
}

/// A TCP proxy on 127.0.0.1 that forwards to `upstream_port` and counts
/// the connections open at once. A job holds its connection for the whole
/// remote job, so this is the number of jobs on the server.
///
/// A connection counts as open until its client closes it. Before a new
/// connection is counted, every open one is checked for a pending end of
/// file: a client releases its slot only after closing the connection, so
/// by the time the next client connects, its close has reached the proxy,
/// even if the thread that reads it has not run yet.
pub struct CountingProxy {
    pub port: u16,
    pub counts: Arc<Counts>,
}

impl CountingProxy {
    pub fn start(upstream_port: u16) -> CountingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let counts = Arc::new(Counts::default());
        let shared = Arc::clone(&counts);
        thread::spawn(move || {
            let live: Arc<Mutex<Vec<Arc<Connection>>>> = Arc::default();
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let connection = Arc::new(Connection { client: client.try_clone().unwrap(), closed: AtomicBool::new(false) });
                {
                    let mut live = live.lock().unwrap();
                    for other in live.iter() {
                        if other.client_has_closed() && other.close() {
                            shared.open.fetch_sub(1, Ordering::SeqCst);
                        }
                    }
                    live.retain(|c| !c.closed.load(Ordering::SeqCst));
                    live.push(Arc::clone(&connection));
                    shared.total.fetch_add(1, Ordering::SeqCst);
                    let open = shared.open.fetch_add(1, Ordering::SeqCst) + 1;
                    shared.max_open.fetch_max(open, Ordering::SeqCst);
                }
                let shared = Arc::clone(&shared);
                thread::spawn(move || forward(client, upstream_port, connection, shared));
            }
        });
        CountingProxy { port, counts }
    }
}

fn forward(client: TcpStream, upstream_port: u16, connection: Arc<Connection>, counts: Arc<Counts>) {
    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream_port)) else {
        if connection.close() {
            counts.open.fetch_sub(1, Ordering::SeqCst);
        }
        return;
    };
    let (mut client_read, mut server_write) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let upstream = thread::spawn(move || {
        let _ = io::copy(&mut client_read, &mut server_write);
        let _ = server_write.shutdown(Shutdown::Write);
    });
    let (mut server_read, mut client_write) = (server, client);
    let _ = io::copy(&mut server_read, &mut client_write);
    let _ = client_write.shutdown(Shutdown::Write);
    let _ = upstream.join();
    if connection.close() {
        counts.open.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A host that accepts connections and closes them at once, counting them.
/// Clients see a failure on the host's side (the server closed before
/// replying), like a crashed or refusing distccd.
pub struct ClosingHost {
    pub port: u16,
    pub counts: Arc<Counts>,
}

impl ClosingHost {
    pub fn start() -> ClosingHost {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let counts = Arc::new(Counts::default());
        let shared = Arc::clone(&counts);
        thread::spawn(move || {
            for stream in listener.incoming() {
                shared.total.fetch_add(1, Ordering::SeqCst);
                drop(stream);
            }
        });
        ClosingHost { port, counts }
    }
}

/// A port on 127.0.0.1 where nothing listens: connections are refused.
pub fn refused_port() -> u16 {
    free_port()
}

/// Directory of the Lua 5.4 sources: `scripts/sources lua` when the script
/// exists, else the `lua-src` crate in cargo's registry.
pub fn lua_sources() -> Option<PathBuf> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/sources");
    if script.is_file() {
        let output = Command::new(&script).arg("lua").output().ok()?;
        if output.status.success() {
            let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
            return lua_dir_with_sources(&dir);
        }
    }
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
    for index in fs::read_dir(home.join("registry/src")).ok()?.flatten() {
        let candidate = index.path().join("lua-src-551.1.0/lua-5.4.9");
        if let Some(dir) = lua_dir_with_sources(&candidate) {
            return Some(dir);
        }
    }
    None
}

fn lua_dir_with_sources(dir: &Path) -> Option<PathBuf> {
    [dir.to_path_buf(), dir.join("src")]
        .into_iter()
        .find(|candidate| candidate.join("lvm.c").is_file() && candidate.join("lauxlib.h").is_file())
}

/// The library `.c` files of the Lua directory, sorted: all but the
/// stand-alone programs `lua.c` and `luac.c`, which the `lua-src` crate
/// does not ship.
pub fn lua_c_files(dir: &Path) -> Vec<String> {
    let mut files: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".c") && name != "lua.c" && name != "luac.c")
        .collect();
    files.sort();
    files
}

pub const LUA_CFLAGS: &str = "-O2 -Wall -DLUA_COMPAT_5_3 -DLUA_USE_LINUX";

/// A program that runs a Lua chunk; it is printed by `luatest`.
const LUA_MAIN: &str = r#"#include <stdio.h>
#include "lua.h"
#include "lauxlib.h"
#include "lualib.h"

int main(void) {
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    if (luaL_dostring(L, "local t = {} for i = 1, 10 do t[i] = i * i end print(table.concat(t, ','))")) {
        fprintf(stderr, "%s\n", lua_tostring(L, -1));
        return 1;
    }
    lua_close(L);
    return 0;
}
"#;

/// Output of `luatest` when Lua works.
pub const LUATEST_OUTPUT: &str = "1,4,9,16,25,36,49,64,81,100\n";

/// Writes a Makefile that compiles every Lua library source and `main.c`
/// with `$(CC)` (or with `compilers[i % n]` for source number i when several
/// are given) and links them into `luatest`. Returns the object names.
pub fn write_lua_makefile(build: &Path, sources: &Path, compilers: &[&str]) -> Vec<String> {
    let mut files = lua_c_files(sources);
    files.push("main.c".to_string());
    let objects: Vec<String> = files.iter().map(|f| f.replace(".c", ".o")).collect();
    let mut text = String::new();
    text.push_str(&format!("SRC = {}\nCFLAGS = {LUA_CFLAGS}\n\n", sources.display()));
    text.push_str(&format!("luatest: {}\n\t$(CC) -o $@ $^ -lm -ldl\n\n", objects.join(" ")));
    for (i, (file, object)) in files.iter().zip(&objects).enumerate() {
        let compiler = if compilers.is_empty() { "$(CC)".to_string() } else { compilers[i % compilers.len()].to_string() };
        let source = if file == "main.c" { "main.c".to_string() } else { format!("$(SRC)/{file}") };
        text.push_str(&format!("{object}: {source}\n\t{compiler} $(CFLAGS) -I$(SRC) -c $< -o $@\n\n"));
    }
    fs::create_dir_all(build).unwrap();
    fs::write(build.join("Makefile"), text).unwrap();
    fs::write(build.join("main.c"), LUA_MAIN).unwrap();
    objects
}

/// Runs the `luatest` program of a build and returns its output.
pub fn run_luatest(build: &Path) -> String {
    let output = Command::new(build.join("luatest")).output().expect("run luatest");
    assert!(output.status.success(), "luatest failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs `make -jJOBS` in `build` with `CC` and the environment `env`
/// (added to a copy of this process's environment, `None` removes).
pub fn run_make(build: &Path, jobs: u32, cc: &str, env: &[(&str, Option<OsString>)]) -> (Output, Duration) {
    let mut command = Command::new("make");
    command.current_dir(build).arg(format!("-j{jobs}")).arg(format!("CC={cc}"));
    apply_env(&mut command, env);
    let started = Instant::now();
    let output = command.output().expect("run make");
    (output, started.elapsed())
}

pub fn apply_env(command: &mut Command, env: &[(&str, Option<OsString>)]) {
    for (name, value) in env {
        match value {
            Some(value) => command.env(name, value),
            None => command.env_remove(name),
        };
    }
}

/// Builds Lua locally (plain gcc) once per test binary and returns the
/// directory with the reference objects.
pub fn reference_build(sources: &Path, root: &Path) -> PathBuf {
    static BUILT: Mutex<Option<PathBuf>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(dir) = built.as_ref() {
        return dir.clone();
    }
    let dir = root.join("reference");
    write_lua_makefile(&dir, sources, &[]);
    let (output, _) = run_make(&dir, 2, "gcc", &[]);
    assert!(output.status.success(), "local reference build failed:\n{}", String::from_utf8_lossy(&output.stderr));
    *built = Some(dir.clone());
    dir
}

/// Returns the objects of `build` whose bytes differ from `reference`.
pub fn differing_objects(build: &Path, reference: &Path, objects: &[String]) -> Vec<String> {
    objects
        .iter()
        .filter(|o| fs::read(build.join(o)).ok() != fs::read(reference.join(o)).ok())
        .cloned()
        .collect()
}

/// A temporary directory kept for the whole test binary, for reference builds.
pub fn shared_temp_root() -> PathBuf {
    static ROOT: Mutex<Option<tempfile::TempDir>> = Mutex::new(None);
    let mut root = ROOT.lock().unwrap_or_else(|p| p.into_inner());
    root.get_or_insert_with(|| tempfile::Builder::new().prefix("distcc-rs-slots-").tempdir().unwrap()).path().to_path_buf()
}

/// Environment changes for a client: a value to set, or `None` to remove.
pub type Env = Vec<(&'static str, Option<OsString>)>;

/// Environment for a distcc-rs or stock distcc run with its own state
/// directory and host list; DISTCC_VERBOSE, DISTCC_LOG and the other settings are removed.
pub fn client_env(distcc_dir: &Path, hosts: &str) -> Env {
    vec![
        ("DISTCC_DIR", Some(distcc_dir.as_os_str().to_owned())),
        ("DISTCC_HOSTS", Some(OsString::from(hosts))),
        ("DISTCC_VERBOSE", None),
        ("DISTCC_LOG", None),
        ("DISTCC_FALLBACK", None),
        ("DISTCC_BACKOFF_PERIOD", None),
        ("DISTCC_PAUSE_TIME_MSEC", Some(OsString::from("50"))),
    ]
}

pub fn with(mut env: Env, name: &'static str, value: Option<&str>) -> Env {
    env.retain(|(n, _)| *n != name);
    env.push((name, value.map(OsString::from)));
    env
}

/// Runs one client command with `env` in `dir`.
pub fn run_client(dir: &Path, program: &Path, args: &[&str], env: &[(&str, Option<OsString>)]) -> (Output, Duration) {
    let mut command = Command::new(program);
    command.current_dir(dir).args(args);
    apply_env(&mut command, env);
    let started = Instant::now();
    let output = command.output().expect("run the client");
    (output, started.elapsed())
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Parses `start NAME SECONDS` / `end NAME SECONDS` lines into intervals.
pub fn intervals(log: &str) -> HashMap<String, (f64, f64)> {
    let mut map: HashMap<String, (f64, f64)> = HashMap::new();
    for line in log.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        if let [kind, name, time] = parts[..] {
            let time: f64 = time.parse().unwrap();
            let entry = map.entry(name.to_string()).or_insert((f64::NAN, f64::NAN));
            match kind {
                "start" => entry.0 = time,
                "end" => entry.1 = time,
                _ => {}
            }
        }
    }
    map
}

/// Writes `contents` to `path` and makes it executable.
pub fn write_script(path: &Path, contents: &str) {
    let mut file = fs::File::create(path).unwrap();
    file.write_all(contents.as_bytes()).unwrap();
    drop(file);
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}
