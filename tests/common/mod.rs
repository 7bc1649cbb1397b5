//! Harness for integration tests: one real test bed per test binary (a
//! private MIT Kerberos KDC and stock distccd servers on loopback, brought up
//! by `scripts/testbed`), and helpers to run the built `distcc-rs` against it.
//!
//! The bed is started on first use and stopped when the test binary exits.

#![allow(dead_code)]

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Returns the repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Returns the path of the `distcc-rs` binary under test.
pub fn distcc_rs() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_distcc-rs"))
}

/// A running test bed.
pub struct Bed {
    pub dir: PathBuf,
    env: HashMap<String, String>,
}

static BED: OnceLock<Bed> = OnceLock::new();
static BED_DIR: OnceLock<PathBuf> = OnceLock::new();

extern "C" fn stop_bed() {
    if let Some(dir) = BED_DIR.get() {
        let _ = Command::new(repo().join("scripts/testbed")).arg("down").arg(dir).status();
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Returns the test bed, bringing it up on first use. Panics with the
/// script's output when it cannot start: these tests need the real parts.
pub fn bed() -> &'static Bed {
    BED.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("distcc-rs-bed-")
            .tempdir()
            .expect("create the test bed directory")
            .keep();
        BED_DIR.set(dir.clone()).expect("test bed started once");
        // SAFETY: registering a plain extern "C" function with atexit.
        unsafe { libc::atexit(stop_bed) };
        let output = Command::new(repo().join("scripts/testbed"))
            .arg("up")
            .arg(&dir)
            .output()
            .expect("run scripts/testbed (run scripts/install-deps first)");
        assert!(
            output.status.success(),
            "scripts/testbed up failed ({}):\n{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let env = parse_env_file(&dir.join("env"));
        Bed { dir, env }
    })
}

fn parse_env_file(path: &Path) -> HashMap<String, String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("export "))
        .filter_map(|pair| pair.split_once('='))
        .map(|(name, value)| (name.to_string(), value.trim_matches('"').trim_matches('\'').to_string()))
        .collect()
}

impl Bed {
    /// Returns a value from the bed's `env` file, e.g. `TESTBED_AUTH1_PORT`.
    pub fn var(&self, name: &str) -> &str {
        self.env.get(name).unwrap_or_else(|| panic!("test bed has no {name}")).as_str()
    }

    pub fn has(&self, name: &str) -> bool {
        self.env.contains_key(name)
    }

    /// Returns the loopback port of server `name` (PLAIN, AUTH1, ...).
    pub fn port(&self, name: &str) -> u16 {
        self.var(&format!("TESTBED_{name}_PORT")).parse().expect("port number")
    }

    /// Returns the log file of server `name`.
    pub fn log(&self, name: &str) -> PathBuf {
        PathBuf::from(self.var(&format!("TESTBED_{name}_LOG")))
    }

    /// Returns the Kerberos variables every client needs (private config and cache).
    pub fn kerberos_env(&self) -> Vec<(String, String)> {
        ["KRB5_CONFIG", "KRB5CCNAME"]
            .iter()
            .map(|name| (name.to_string(), self.var(name).to_string()))
            .collect()
    }

    /// Obtains a fresh ticket for the user into `cache` (a path), lasting `lifetime` (kinit syntax).
    pub fn kinit(&self, cache: &Path, lifetime: &str) {
        let status = Command::new("kinit")
            .env("KRB5_CONFIG", self.var("KRB5_CONFIG"))
            .env("KRB5CCNAME", format!("FILE:{}", cache.display()))
            .args(["-l", lifetime, "-k", "-t", self.var("TESTBED_USER_KEYTAB"), self.var("TESTBED_USER_PRINCIPAL")])
            .status()
            .expect("run kinit");
        assert!(status.success(), "kinit failed");
    }
}

/// Counts the lines of `log` that contain every one of `needles`.
pub fn count_log_lines(log: &Path, needles: &[&str]) -> usize {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines().filter(|line| needles.iter().all(|n| line.contains(n))).count()
}

/// Counts matching lines once the count has reached `expected`, or after 5 s.
/// distccd logs a job's summary after it has sent the reply, so the client
/// can finish before the line is written.
pub fn log_lines_after_wait(log: &Path, needles: &[&str], expected: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let count = count_log_lines(log, needles);
        if count >= expected || Instant::now() >= deadline {
            return count;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A scratch directory for one test, with a private `DISTCC_DIR`.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Scratch {
        Scratch { dir: tempfile::Builder::new().prefix("distcc-rs-test-").tempdir().expect("scratch dir") }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Builds a `distcc-rs` command run in this directory with a clean environment:
    /// no DISTCC_* settings of the caller, private DISTCC_DIR and TMPDIR,
    /// and the bed's Kerberos settings.
    pub fn distcc(&self, hosts: &str) -> Command {
        let mut command = Command::new(distcc_rs());
        self.prepare(&mut command, hosts);
        command
    }

    pub fn prepare(&self, command: &mut Command, hosts: &str) {
        self.prepare_without_bed(command, hosts);
        for (name, value) in bed().kerberos_env() {
            command.env(name, value);
        }
    }

    /// Like `prepare`, for tests that need no test bed: no Kerberos settings.
    pub fn prepare_without_bed(&self, command: &mut Command, hosts: &str) {
        command.current_dir(self.path());
        command.env_clear();
        for name in ["PATH", "HOME", "LANG", "LC_ALL"] {
            if let Some(value) = std::env::var_os(name) {
                command.env(name, value);
            }
        }
        let tmp = self.path().join(".tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        command.env("TMPDIR", &tmp);
        command.env("DISTCC_DIR", self.path().join(".distcc"));
        command.env("DISTCC_HOSTS", hosts);
    }
}

/// Runs a command and returns its output, with a bound on its run time.
pub fn run(command: &mut Command) -> Output {
    command.output().expect("run command")
}

/// Runs a command and returns its output and how long it took.
pub fn run_timed(command: &mut Command) -> (Output, Duration) {
    let started = Instant::now();
    let output = run(command);
    (output, started.elapsed())
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts that two files have identical bytes.
pub fn assert_same_file(actual: &Path, expected: &Path) {
    let a = std::fs::read(actual).unwrap_or_else(|e| panic!("read {}: {e}", actual.display()));
    let b = std::fs::read(expected).unwrap_or_else(|e| panic!("read {}: {e}", expected.display()));
    assert!(a == b, "{} differs from {} ({} vs {} bytes)", actual.display(), expected.display(), a.len(), b.len());
}

/// Returns the directory of a C source tree shipped by a crate (`lua`, `sqlite`, `zlib`).
pub fn sources(name: &str) -> PathBuf {
    let output = Command::new(repo().join("scripts/sources")).arg(name).output().expect("run scripts/sources");
    assert!(output.status.success(), "scripts/sources {name} failed: {}", stderr(&output));
    PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
}

/// Lists the `.c` files of a source directory, sorted.
pub fn c_files(dir: &Path, exclude: &[&str]) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension() == Some(OsStr::new("c")))
        .filter(|p| !exclude.iter().any(|x| p.file_name() == Some(OsStr::new(x))))
        .collect();
    files.sort();
    files
}

/// Lists the processes (zombies excluded) whose environment contains
/// `needle`, a `NAME=VALUE` entry, as "PID command line".
pub fn processes_with_env(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else { continue };
        if !environ.split(|&b| b == 0).any(|var| var == needle.as_bytes()) {
            continue;
        }
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        if stat.rsplit(')').next().and_then(|rest| rest.split_whitespace().next()) != Some("Z") {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            found.push(format!("{name} {}", String::from_utf8_lossy(&cmdline).replace('\0', " ")));
        }
    }
    found
}
