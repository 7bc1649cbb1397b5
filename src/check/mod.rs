//! Diagnosis commands. `--check-hosts` tries every host of the list the way
//! a compile would, step by step, and reports which hosts are usable and
//! why the others are not. `--show-principal` shows the Kerberos names a compile
//! would use. Both print their report on standard output, as text or JSON.

mod principal;
mod report;

use std::io::Write;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::auth::{self, AuthError, Credentials, Target};
use crate::backoff::{BackedOff, Backoff};
use crate::compile::SYSTEM_HOSTS_FILE;
use crate::config::{Config, format_seconds};
use crate::exit;
use crate::hosts::{self, Auth, HostList, HostSpec, Transport};
use crate::invocation;
use crate::remote::{self, Reply};
use crate::statedir;
use crate::tempfiles;
use crate::transport::{Connection, Stream};

pub use principal::show_principal;
use report::{json_report, text_report};

/// Report format of the diagnosis commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

/// Settings of `--check-hosts`.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    pub format: Format,
    /// Time for all hosts together; hosts still being checked then are
    /// reported as not usable.
    pub time_limit: Duration,
    /// Compiler the servers run for the trivial compile.
    pub compiler: String,
}

/// Exit code of `--check-hosts` when at least one host is not usable.
pub const SOME_HOST_UNUSABLE: i32 = 1;

/// Preprocessed C source of the trivial compile. It needs no header, so any
/// C compiler on the server can build it.
const CHECK_SOURCE: &str = "int distcc_rs_check(int value) { return 2 * value + 1; }\n";

/// File names sent to the server for the trivial compile; they appear in
/// the server's log.
const CHECK_INPUT_NAME: &str = "distcc-rs-check.i";
const CHECK_OUTPUT_NAME: &str = "distcc-rs-check.o";

/// Everything learned about one host, step by step. A step that was not
/// reached is `None`.
#[derive(Debug, Clone, Default)]
struct HostCheck {
    entry: String,
    /// The step in progress, named when the time limit ends the check.
    step: &'static str,
    resolution: Option<Result<Resolved, String>>,
    connection: Option<Result<Connected, String>>,
    auth: Option<AuthCheck>,
    compile: Option<Result<Compiled, String>>,
    /// For a `localhost` entry: the compiler found on `PATH`.
    local_compiler: Option<Result<String, String>>,
    /// The host's backoff record, when compiles skip it at the moment.
    backoff: Option<BackedOff>,
    verdict: Option<Verdict>,
}

#[derive(Debug, Clone)]
struct Resolved {
    addresses: Vec<IpAddr>,
    elapsed: Duration,
}

#[derive(Debug, Clone)]
struct Connected {
    /// The server's address for TCP, or the ssh destination.
    peer: String,
    elapsed: Duration,
}

/// Results of the GSS-API steps of an `,auth` host.
#[derive(Debug, Clone, Default)]
struct AuthCheck {
    client_principal: Option<Result<String, String>>,
    target_principal: Option<Result<String, String>>,
    service_ticket: Option<Result<(), String>>,
    /// `Some(true)` for the server's `y`, `Some(false)` for its `n`.
    access_granted: Option<bool>,
    /// Time from sending `*` to the server's verdict, or why the handshake failed.
    handshake: Option<Result<Duration, String>>,
}

#[derive(Debug, Clone)]
struct Compiled {
    object_bytes: u64,
    elapsed: Duration,
}

#[derive(Debug, Clone)]
struct Verdict {
    usable: bool,
    reason: String,
}

/// Runs `--check-hosts` and returns the exit code: 0 when every host is
/// usable, [`SOME_HOST_UNUSABLE`] otherwise, or the code for a missing or
/// invalid host list.
pub fn check_hosts(config: &Config, options: &CheckOptions) -> i32 {
    let list = match load_hosts(config) {
        Ok(list) => list,
        Err(code) => return code,
    };
    if list.hosts.is_empty() {
        log::error!("the host list contains no hosts");
        return exit::NO_HOSTS;
    }
    let deadline = Instant::now() + options.time_limit;
    let checks = run_checks(&list.hosts, config, options, deadline);

    match options.format {
        Format::Text => print!("{}", text_report(&checks)),
        Format::Json => println!("{}", json_report(&checks)),
    }
    if checks.iter().all(|check| check.verdict.as_ref().is_some_and(|v| v.usable)) {
        0
    } else {
        SOME_HOST_UNUSABLE
    }
}

fn load_hosts(config: &Config) -> Result<HostList, i32> {
    let loaded = hosts::load_host_list(config.hosts.as_deref(), config.distcc_dir.as_deref(), Path::new(SYSTEM_HOSTS_FILE));
    match loaded {
        Ok(Some((list, source))) => {
            log::debug!("host list from {source}: {} hosts", list.hosts.len());
            Ok(list)
        }
        Ok(None) => {
            log::error!("no host list: set DISTCC_HOSTS or write $DISTCC_DIR/hosts or {SYSTEM_HOSTS_FILE}");
            Err(exit::NO_HOSTS)
        }
        Err(error) => {
            log::error!("{error}");
            Err(exit::BAD_HOSTSPEC)
        }
    }
}

/// Checks every host on its own thread and waits until all are done or the
/// deadline passes. Threads still running then are left behind: the process
/// exits right after the report.
fn run_checks(hosts: &[HostSpec], config: &Config, options: &CheckOptions, deadline: Instant) -> Vec<HostCheck> {
    let backoff = open_backoff(config);
    let (done_sender, done_receiver) = mpsc::channel::<usize>();
    let mut shared = Vec::with_capacity(hosts.len());
    for (index, host) in hosts.iter().enumerate() {
        let check = Arc::new(Mutex::new(HostCheck {
            entry: host.verbatim.clone(),
            step: "start",
            backoff: backoff.as_ref().and_then(|backoff| backed_off(backoff, host)),
            ..HostCheck::default()
        }));
        shared.push(Arc::clone(&check));
        let host = host.clone();
        let config = config.clone();
        let options = options.clone();
        let done = done_sender.clone();
        let spawned = std::thread::Builder::new().name(format!("check {}", host.verbatim)).spawn(move || {
            let checker = Checker { host: &host, config: &config, options: &options, deadline, report: &check };
            let verdict = checker.run();
            lock(&check).verdict = Some(verdict);
            let _ = done.send(index);
        });
        if let Err(error) = spawned {
            lock(&shared[index]).verdict =
                Some(Verdict { usable: false, reason: format!("cannot start a thread for the check: {error}") });
            let _ = done_sender.send(index);
        }
    }
    drop(done_sender);

    let mut finished = 0;
    while finished < hosts.len() {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match done_receiver.recv_timeout(remaining) {
            Ok(_) => finished += 1,
            Err(_) => break,
        }
    }

    shared
        .iter()
        .map(|check| {
            let mut snapshot = lock(check).clone();
            if snapshot.verdict.is_none() {
                snapshot.verdict = Some(Verdict {
                    usable: false,
                    reason: format!(
                        "check did not finish within {} (--timeout) during the {} step",
                        format_seconds(options.time_limit),
                        snapshot.step
                    ),
                });
            }
            snapshot
        })
        .collect()
}

/// Opens the backoff records that compiles use, or returns `None` when the
/// state directory cannot be used. Compiles then run locally, so that is
/// reported as a warning.
fn open_backoff(config: &Config) -> Option<Backoff> {
    match statedir::open(config) {
        Ok(dir) => Some(Backoff::new(&dir.lock, config.backoff_period)),
        Err(message) => {
            log::warn!("{message}; compiles run locally until it is fixed");
            None
        }
    }
}

fn backed_off(backoff: &Backoff, host: &HostSpec) -> Option<BackedOff> {
    if host.is_local() {
        return None;
    }
    match backoff.check(host) {
        Ok(state) => state,
        Err(error) => {
            log::debug!("cannot read {}: {error}", backoff.file(host).display());
            None
        }
    }
}

fn lock(check: &Mutex<HostCheck>) -> std::sync::MutexGuard<'_, HostCheck> {
    check.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The check of one host. Each step records its result in `report` as soon
/// as it is known, so that a check cut short by the deadline still shows
/// how far it got.
struct Checker<'a> {
    host: &'a HostSpec,
    config: &'a Config,
    options: &'a CheckOptions,
    deadline: Instant,
    report: &'a Mutex<HostCheck>,
}

fn unusable(reason: impl Into<String>) -> Verdict {
    Verdict { usable: false, reason: reason.into() }
}

impl Checker<'_> {
    fn run(&self) -> Verdict {
        if self.host.down {
            return unusable("marked down in the host list (,down), so no job is sent to it");
        }
        if self.host.transport == Transport::Local {
            return self.check_local();
        }
        match self.check_remote() {
            Ok(()) => Verdict { usable: true, reason: self.success_summary() },
            Err(reason) => unusable(reason),
        }
    }

    fn set_step(&self, step: &'static str) {
        lock(self.report).step = step;
        log::debug!("{}: {step}", self.host.verbatim);
    }

    /// Returns the time left before the deadline, bounded by `limit`, or an
    /// error when none is left.
    fn time_left(&self, limit: Duration) -> Result<Duration, String> {
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(format!("no time left within {} (--timeout)", format_seconds(self.options.time_limit)));
        }
        Ok(remaining.min(limit))
    }

    /// Checks a `localhost` entry, which needs no server: it is usable when
    /// the compiler can be found on this machine.
    fn check_local(&self) -> Verdict {
        self.set_step("local compiler");
        let path = std::env::var_os("PATH");
        let found = invocation::resolve_compiler(std::ffi::OsStr::new(&self.options.compiler), path.as_deref())
            .map(|compiler| compiler.display().to_string())
            .map_err(|error| format!("{error:#}"));
        lock(self.report).local_compiler = Some(found.clone());
        match found {
            Ok(compiler) => Verdict { usable: true, reason: format!("runs jobs on this machine with {compiler}") },
            Err(error) => unusable(format!("runs jobs on this machine, but {error}")),
        }
    }

    /// Checks a TCP or ssh host: resolution (TCP only), connection, the
    /// handshake of an `,auth` host, and the trivial compile.
    fn check_remote(&self) -> Result<(), String> {
        let entry_host = match &self.host.transport {
            Transport::Tcp { host: name, port, .. } => {
                self.check_resolution(name, *port)?;
                name.as_str()
            }
            Transport::Ssh { host: name, .. } => name.as_str(),
            Transport::Local => return Err(format!("host entry '{}' has no server", self.host.verbatim)),
        };

        self.set_step("connect");
        let mut config = self.config.clone();
        config.connect_timeout = self.time_left(self.config.connect_timeout)?;
        // The I/O timeout of an ssh connection also bounds ssh's own set-up.
        config.io_timeout = self.time_left(self.config.io_timeout)?;
        let started = Instant::now();
        let opened = Connection::open(self.host, &config);
        let connection = match &opened {
            Ok(connection) => Ok(Connected {
                peer: match connection.peer_addr() {
                    Some(address) => address.to_string(),
                    None => format!("ssh to {}", self.host.display_name()),
                },
                elapsed: started.elapsed(),
            }),
            Err(failure) => Err(failure.message.clone()),
        };
        lock(self.report).connection = Some(connection);
        let mut connection = opened.map_err(|failure| failure.message)?;

        let mut result = Ok(());
        if self.host.auth != Auth::None {
            result = self.check_auth(&mut connection, entry_host);
        }
        if result.is_ok() {
            result = self.check_compile(&mut connection);
        }
        // Closing an ssh connection adds the ssh command's status and
        // standard error to a failure.
        connection
            .close(result.map_err(|message| remote::Failure::host("check", message, exit::DISTCC_FAILED)))
            .map_err(|failure| failure.message)
    }

    fn check_resolution(&self, name: &str, port: u16) -> Result<(), String> {
        self.set_step("resolve");
        let started = Instant::now();
        let resolved = (name, port)
            .to_socket_addrs()
            .map(|addresses| addresses.map(|address| address.ip()).collect::<Vec<_>>())
            .map_err(|e| format!("cannot resolve host name '{name}': {e}"))
            .and_then(|addresses| {
                if addresses.is_empty() {
                    Err(format!("host name '{name}' has no addresses"))
                } else {
                    Ok(Resolved { addresses, elapsed: started.elapsed() })
                }
            });
        lock(self.report).resolution = Some(resolved.clone());
        resolved.map(|_| ())
    }

    fn check_auth(&self, stream: &mut Connection, entry_host: &str) -> Result<(), String> {
        self.set_step("credentials");
        lock(self.report).auth = Some(AuthCheck::default());
        let update = |change: &dyn Fn(&mut AuthCheck)| {
            if let Some(auth) = lock(self.report).auth.as_mut() {
                change(auth);
            }
        };

        let credentials = auth::acquire_credentials().map_err(|e| e.to_string());
        let principal = credentials.as_ref().map(|c| c.principal().to_string()).map_err(|e| e.clone());
        update(&|auth| auth.client_principal = Some(principal.clone()));
        let credentials: Credentials = credentials?;

        let target = self.target(entry_host, stream.peer_addr());
        let target_name = target.as_ref().map(|t| t.name.clone()).map_err(|e| e.clone());
        update(&|auth| auth.target_principal = Some(target_name.clone()));
        let target = target?;

        self.set_step("service ticket");
        let ticket = auth::obtain_service_ticket(&credentials, &target)
            .map_err(|e| format!("no service ticket for {}: {e}", target.name));
        update(&|auth| auth.service_ticket = Some(ticket.clone()));
        ticket?;

        self.set_step("handshake");
        let timeout = self.time_left(self.config.auth_timeout)?;
        let started = Instant::now();
        let result = auth::authenticate(stream, &credentials, &target, timeout);
        let elapsed = started.elapsed();
        let restored = Stream::set_read_timeout(stream, Some(self.config.io_timeout));
        match result {
            Ok(()) => {
                update(&|auth| {
                    auth.access_granted = Some(true);
                    auth.handshake = Some(Ok(elapsed));
                });
            }
            Err(error) => {
                let message = error.to_string();
                let denied = matches!(error, AuthError::AccessDenied { .. });
                update(&|auth| {
                    if denied {
                        auth.access_granted = Some(false);
                    }
                    auth.handshake = Some(Err(message.clone()));
                });
                return Err(message);
            }
        }
        restored.map_err(|e| format!("cannot restore the I/O timeout: {e}"))
    }

    fn target(&self, entry_host: &str, peer: Option<SocketAddr>) -> Result<Target, String> {
        let named = match &self.host.auth {
            Auth::Named(name) => Some(name.as_str()),
            _ => None,
        };
        auth::choose_target(named, peer, entry_host, self.config.principal.as_deref())
    }

    fn check_compile(&self, stream: &mut Connection) -> Result<(), String> {
        self.set_step("trivial compile");
        let compiled = self.run_trivial_compile(stream);
        lock(self.report).compile = Some(compiled.clone());
        compiled.map(|_| ()).map_err(|e| format!("trivial compile failed: {e}"))
    }

    fn run_trivial_compile(&self, stream: &mut Connection) -> Result<Compiled, String> {
        // Writes keep the timeout set when the connection was opened, which
        // is already bounded by the deadline.
        let mut config = self.config.clone();
        config.io_timeout = self.time_left(self.config.io_timeout)?;
        Stream::set_read_timeout(stream, Some(config.io_timeout))
            .map_err(|e| format!("cannot set the I/O timeout: {e}"))?;

        let temp_dir = tempfiles::create_private_dir(&self.config.tmpdir)?;
        let (mut file, source) = temp_dir
            .create_file(CHECK_INPUT_NAME)
            .map_err(|e| format!("cannot create '{}': {e}", temp_dir.path().join(CHECK_INPUT_NAME).display()))?;
        file.write_all(CHECK_SOURCE.as_bytes()).map_err(|e| format!("cannot write '{}': {e}", source.display()))?;
        drop(file);
        let output = temp_dir.path().join(CHECK_OUTPUT_NAME);

        let argv: [&[u8]; 5] =
            [self.options.compiler.as_bytes(), b"-c", CHECK_INPUT_NAME.as_bytes(), b"-o", CHECK_OUTPUT_NAME.as_bytes()];
        let protocol = remote::protocol_for(self.host);
        let started = Instant::now();
        remote::send_request(stream, protocol, &argv, &source, &config).map_err(|f| f.message)?;
        let reply = remote::receive_reply(stream, protocol, &output, &config).map_err(|f| f.message)?;
        let elapsed = started.elapsed();
        self.judge_reply(reply, elapsed)
    }

    fn judge_reply(&self, reply: Reply, elapsed: Duration) -> Result<Compiled, String> {
        if libc::WIFSIGNALED(reply.status) {
            return Err(format!(
                "the compiler on the server was killed by {}",
                exit::signal_name(libc::WTERMSIG(reply.status))
            ));
        }
        let code = libc::WEXITSTATUS(reply.status);
        if code == exit::COMPILER_MISSING {
            return Err(format!(
                "the server could not run '{}' (exit 110); is it installed there and allowed in its compiler whitelist (/usr/lib/distcc)? Choose another with --compiler",
                self.options.compiler
            ));
        }
        if code != 0 {
            let first_line = String::from_utf8_lossy(&reply.stderr).lines().next().unwrap_or("").trim().to_string();
            return Err(format!("'{}' on the server exited with code {code}: {first_line}", self.options.compiler));
        }
        let Some(object) = reply.object else {
            return Err("the server reported success without an object file".into());
        };
        let object_bytes = object.as_file().metadata().map(|m| m.len()).unwrap_or(0);
        if object_bytes == 0 {
            return Err("the server sent an empty object file".into());
        }
        Ok(Compiled { object_bytes, elapsed })
    }

    fn success_summary(&self) -> String {
        let report = lock(self.report);
        let summary = match report.auth.as_ref().and_then(|auth| auth.client_principal.clone()) {
            Some(Ok(principal)) => format!("authenticated as {principal} and compiled remotely"),
            _ => "compiled remotely".to_string(),
        };
        match &report.backoff {
            Some(state) => format!(
                "{summary}, but compiles skip it for {} more after an earlier failure (DISTCC_BACKOFF_PERIOD)",
                format_seconds(Duration::from_secs(state.remaining.as_secs().max(1)))
            ),
            None => summary,
        }
    }
}
