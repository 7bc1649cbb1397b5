//! Helpers for the transport tests: a stock distccd on a loopback address,
//! a workspace with sources, and runs of the distcc-rs binary.

use std::fs::File;
use std::io::Read;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BINARY: &str = env!("CARGO_BIN_EXE_distcc-rs");

/// Returns a TCP port that was free a moment ago on `address`.
pub fn free_port(address: IpAddr) -> u16 {
    let listener = TcpListener::bind(SocketAddr::new(address, 0)).expect("bind an ephemeral port");
    listener.local_addr().unwrap().port()
}

/// A stock distccd in the foreground (`--no-detach`), in its own process
/// group, stopped by process group id when dropped.
pub struct Distccd {
    child: Child,
    pub address: IpAddr,
    pub port: u16,
    pub log: PathBuf,
    _log_dir: tempfile::TempDir,
}

impl Distccd {
    /// Starts distccd on `address` that accepts jobs from the same address.
    pub fn start(address: &str, extra_args: &[&str]) -> Distccd {
        let ip: IpAddr = address.parse().expect("an IP address");
        let port = free_port(ip);
        let log_dir = tempfile::tempdir().unwrap();
        let log = log_dir.path().join("distccd.log");
        let log_file = File::create(&log).unwrap();
        let child = Command::new("distccd")
            .args(["--daemon", "--no-detach", "--log-stderr", "--log-level", "info", "--jobs", "2"])
            .args(["--listen", address, "--port", &port.to_string(), "--allow", address])
            .args(extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .process_group(0)
            .spawn()
            .expect("distccd must be installed (Debian package distcc)");
        let server = Distccd { child, address: ip, port, log, _log_dir: log_dir };
        server.wait_until_listening();
        server
    }

    fn wait_until_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let address = SocketAddr::new(self.address, self.port);
        while Instant::now() < deadline {
            if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("distccd did not listen on {address} within 10 s; its log:\n{}", self.log_text());
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Returns the host entry for this server, `127.0.0.1:PORT` or `[::1]:PORT`.
    pub fn entry(&self) -> String {
        match self.address {
            IpAddr::V4(ip) => format!("{ip}:{}", self.port),
            IpAddr::V6(ip) => format!("[{ip}]:{}", self.port),
        }
    }
}

impl Drop for Distccd {
    fn drop(&mut self) {
        let group = nix::unistd::Pid::from_raw(-(self.child.id() as i32));
        let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGTERM);
        let _ = self.child.wait();
    }
}

/// A temporary directory in which compiles run.
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new() -> Workspace {
        Workspace { dir: tempfile::tempdir().unwrap() }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, text: &[u8]) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Runs distcc-rs in the workspace with a clean distcc environment plus `env`.
    pub fn run(&self, env: &[(&str, &str)], args: &[&str]) -> Run {
        run_command(&mut self.command(env, args))
    }

    /// Builds the command that `run` runs.
    pub fn command(&self, env: &[(&str, &str)], args: &[&str]) -> Command {
        let mut command = Command::new(BINARY);
        command.current_dir(self.dir.path()).args(args);
        for (name, _) in std::env::vars() {
            let inherited_setting = name.starts_with("DISTCC_") || name.starts_with("KRB5");
            if inherited_setting || name == "_DISTCC_SAFEGUARD" || name == "UNCACHED_ERR_FD" {
                command.env_remove(name);
            }
        }
        command.env("DISTCC_DIR", self.path(".distcc"));
        // Every run tries its hosts afresh: with backoff, a host that failed
        // in one run of a test would be skipped by the next run.
        command.env("DISTCC_BACKOFF_PERIOD", "0");
        command.envs(env.iter().copied());
        command
    }

    /// Compiles `source` to `object` with gcc directly, as the reference.
    pub fn compile_locally(&self, args: &[&str]) {
        let status = Command::new("gcc").current_dir(self.dir.path()).args(args).status().unwrap();
        assert!(status.success(), "local reference compile gcc {args:?} failed");
    }
}

/// A finished run of the binary.
pub struct Run {
    pub output: Output,
    pub elapsed: Duration,
}

impl Run {
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    pub fn code(&self) -> Option<i32> {
        self.output.status.code()
    }

    /// Asserts exit 0 and an empty standard output, showing stderr otherwise.
    pub fn assert_success(&self) {
        assert_eq!(self.code(), Some(0), "distcc-rs failed; stderr:\n{}", self.stderr());
        assert!(self.output.stdout.is_empty(), "distcc-rs wrote to stdout: {:?}", self.output.stdout);
    }
}

pub fn run_command(command: &mut Command) -> Run {
    let started = Instant::now();
    let output = command.output().expect("run distcc-rs");
    Run { output, elapsed: started.elapsed() }
}

pub fn read(path: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display())).read_to_end(&mut bytes).unwrap();
    bytes
}

/// Asserts that two object files are byte for byte identical.
pub fn assert_same_object(remote: &Path, local: &Path) {
    let remote_bytes = read(remote);
    let local_bytes = read(local);
    assert!(!remote_bytes.is_empty(), "{} is empty", remote.display());
    assert!(
        remote_bytes == local_bytes,
        "{} ({} bytes) differs from the local compile {} ({} bytes)",
        remote.display(),
        remote_bytes.len(),
        local.display(),
        local_bytes.len()
    );
}

/// Wraps `command` so that it runs in a private mount namespace where
/// `hosts` and `resolv` are bind-mounted over /etc/hosts and
/// /etc/resolv.conf. Name lookups of the wrapped process then see only
/// these files, and the system's files stay untouched.
pub fn with_private_resolver(command: &Command, hosts: &Path, resolv: &Path) -> Command {
    let mut wrapped = Command::new("unshare");
    wrapped.args(["--mount", "--", "sh", "-c", r#"mount --bind "$1" /etc/hosts && mount --bind "$2" /etc/resolv.conf && shift 2 && exec "$@""#, "sh"]);
    wrapped.arg(hosts).arg(resolv).arg(command.get_program()).args(command.get_args());
    if let Some(dir) = command.get_current_dir() {
        wrapped.current_dir(dir);
    }
    for (name, value) in command.get_envs() {
        match value {
            Some(value) => wrapped.env(name, value),
            None => wrapped.env_remove(name),
        };
    }
    wrapped
}

/// Returns why a private mount namespace cannot be made here, or `None`.
pub fn private_mounts_unavailable() -> Option<String> {
    let output = Command::new("unshare").args(["--mount", "--", "mount", "--bind", "/etc/hosts", "/etc/hosts"]).output();
    match output {
        Ok(output) if output.status.success() => None,
        Ok(output) => Some(String::from_utf8_lossy(&output.stderr).trim().to_string()),
        Err(error) => Some(format!("cannot run unshare: {error}")),
    }
}
