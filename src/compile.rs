//! The life of one compile: decide local or remote, preprocess, try the
//! hosts in order, and fall back to a local compile when no host worked.

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::args::{self, Decision, Output, RemoteJob};
use crate::auth::{self, Credentials};
use crate::config::Config;
use crate::exit;
use crate::hosts::{self, Auth, HostList, HostSpec, Transport};
use crate::invocation::{self, Invocation};
use crate::tempfiles::OutputTemp;
use crate::remote::{self, Failure, Reply};
use crate::signals;
use crate::slots::{HeldSlot, HostChoice, LocalLimits, LocalPool, Slots};
use crate::state::{Phase, Target};
use crate::tempfiles::{self, PrivateDir};
use crate::transport::Connection;

/// The file in the state directory that records headers free of the
/// pragmas that directives-only output drops.
const HEADER_CACHE_NAME: &str = "header-checks";

/// The system-wide host list, read when neither `DISTCC_HOSTS` nor
/// `$DISTCC_DIR/hosts` exists (Debian's distcc package reads it too).
pub const SYSTEM_HOSTS_FILE: &str = "/etc/distcc/hosts";

/// Runs or distributes one compiler command and returns the exit code.
pub fn run(invocation: Invocation, config: &Config) -> i32 {
    let compiler = match invocation::resolve_compiler(&invocation.compiler_name, std::env::var_os("PATH").as_deref()) {
        Ok(path) => path,
        Err(error) => {
            log::error!("{error:#}");
            return exit::COMPILER_MISSING;
        }
    };
    log::debug!("compiler '{}' is {}", invocation.compiler_name.to_string_lossy(), compiler.display());

    if config.safeguard >= 2 {
        log::error!(
            "distcc-rs invoked itself recursively (_DISTCC_SAFEGUARD={}): '{}' at {} runs distcc-rs again; put the real compiler first on PATH or name it by its absolute path",
            config.safeguard,
            invocation.compiler_name.to_string_lossy(),
            compiler.display()
        );
        return exit::RECURSION;
    }
    let local = LocalCompile { compiler: &compiler, invocation: &invocation, config, slots: None, output: None };
    if config.safeguard == 1 {
        // The distcc-rs process that started this compiler has the slot.
        log::debug!("running locally: called from a compiler that distcc-rs started (_DISTCC_SAFEGUARD=1)");
        return local.run();
    }
    if !config.errors.is_empty() {
        // One message for all invalid settings. No host is contacted, so
        // nothing is retried and no host is backed off.
        let errors = config.errors.join("; ");
        if !config.fallback {
            log::error!("{errors}; local fallback disabled by DISTCC_FALLBACK=0");
            return exit::BAD_ARGUMENTS;
        }
        log::warn!("{errors}; compiling locally");
    }

    let (family, cplusplus_driver) = args::detect_family(&invocation.compiler_name, &compiler);
    let working_directory = args::working_directory();
    let resolve_native = |options: &[OsString]| args::resolve_gcc_native(&compiler, options);
    let toolchain = args::Toolchain {
        family,
        cplusplus_driver,
        working_directory: &working_directory,
        resolve_native: &resolve_native,
    };
    let decision = if config.errors.is_empty() {
        args::analyse(&invocation.args, &toolchain)
    } else {
        Decision::Local(format!("invalid settings: {}", config.errors.join("; ")))
    };
    let job = match decision {
        Decision::Local(reason) => return run_locally(&local, &reason),
        Decision::Remote(job) => job,
    };
    if let Output::File(path) = &job.output
        && let Some(reason) = output_needs_local_compile(Path::new(path), Path::new(&job.input))
    {
        return run_locally(&local, &reason);
    }
    if job.output == Output::Stdout && crate::stdio::stdout_was_closed() {
        // The compiler then reports the closed descriptor itself.
        return run_locally(&local, "output to standard output, which is closed");
    }
    log::debug!("distributable: compile {} to {}", job.input.to_string_lossy(), describe_output(&job.output));
    log::debug!("server arguments: {}", display_argv(&job.server_args));

    let slots = match Slots::open(config, &job.input.to_string_lossy()) {
        Ok(slots) => slots,
        Err(message) => {
            if !config.fallback {
                log::error!("{message}; local fallback disabled by DISTCC_FALLBACK=0");
                return exit::IO_ERROR;
            }
            log::error!("{message}; compiling {} locally", job.input.to_string_lossy());
            return local.run();
        }
    };
    let output = match &job.output {
        Output::File(path) => Some(Path::new(path)),
        Output::Stdout => None,
    };
    let local = LocalCompile { slots: Some(&slots), output, ..local };
    let hosts = match load_hosts(config) {
        Ok(hosts) => hosts,
        Err(message) => return local.fall_back(&job, &[message], exit::NO_HOSTS, LocalLimits::from_list(None)),
    };
    let limits = LocalLimits::from_list(Some(&hosts));
    Distribution { job: &job, local: &local, hosts: &hosts, config, slots: &slots, limits }.run()
}

/// Runs a job that is not distributed in a slot of this machine. The host
/// list is read only for its `--localslots` and `--localslots_cpp`, and the
/// state directory only for the slot, so problems with either are logged
/// as debug messages: the compile does not need them.
fn run_locally(local: &LocalCompile, reason: &str) -> i32 {
    log::debug!("running locally: {reason}");
    let args = &local.invocation.args;
    let source = args.iter().find(|a| args::is_source_name(a)).map(|a| a.to_string_lossy().into_owned());
    let slots = match Slots::open(local.config, source.as_deref().unwrap_or("")) {
        Ok(slots) => slots,
        Err(message) => {
            log::debug!("{message}; running without a local slot");
            return local.run();
        }
    };
    let limits = match load_hosts(local.config) {
        Ok(list) => LocalLimits::from_list(Some(&list)),
        Err(message) => {
            log::debug!("{message}; using the default local slot counts");
            LocalLimits::from_list(None)
        }
    };
    // Preprocess-only jobs share the preprocessor pool, as in stock distcc.
    let pool = if args.iter().any(|a| a == "-E") { LocalPool::Preprocess } else { LocalPool::Compile };
    LocalCompile { slots: Some(&slots), ..*local }.run_in_slot(pool, limits)
}

/// Sets `_DISTCC_SAFEGUARD` for every child process, so that a compiler
/// that runs distcc-rs again is detected. The variable is set in this
/// process's own environment instead of on each `Command`. A `Command` with
/// one changed variable copies the whole environment into a map first,
/// which cost 20 to 180 thousand instructions per spawn, depending on the
/// size of the environment (callgrind, release build).
///
/// # Safety
/// No other thread may run: call it before `signals::install` starts the
/// signal thread.
pub unsafe fn mark_children(level: u32) {
    // SAFETY: the caller guarantees that no other thread reads or changes the
    // environment meanwhile.
    unsafe { std::env::set_var("_DISTCC_SAFEGUARD", level.to_string()) };
}

/// Returns why the output must be written by a local compile. Writing the
/// object by rename would replace a device such as `/dev/null` or a symbolic
/// link instead of writing through it, as the compiler does. When the
/// compiler cannot write the output, it reports that itself; gcc also
/// refuses an output that is the source file, which a rename would replace.
fn output_needs_local_compile(output: &Path, input: &Path) -> Option<String> {
    if is_same_file(output, input) {
        return Some(format!("output '{}' is the source file", output.display()));
    }
    match std::fs::symlink_metadata(output) {
        Ok(meta) if !meta.file_type().is_file() => {
            return Some(format!("output '{}' exists and is not a regular file", output.display()));
        }
        Ok(_) if !is_writable(output) => {
            return Some(format!("output '{}' exists and is not writable", output.display()));
        }
        _ => {}
    }
    let directory = match output.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    if !directory.is_dir() || !is_writable(directory) {
        return Some(format!("the output's directory '{}' is missing or not writable", directory.display()));
    }
    None
}

fn is_same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

fn is_writable(path: &Path) -> bool {
    nix::unistd::access(path, nix::unistd::AccessFlags::W_OK).is_ok()
}

fn describe_output(output: &Output) -> String {
    match output {
        Output::File(path) => path.to_string_lossy().into_owned(),
        Output::Stdout => "standard output".into(),
    }
}

fn load_hosts(config: &Config) -> Result<HostList, String> {
    match hosts::load_host_list(config.hosts.as_deref(), config.distcc_dir.as_deref(), Path::new(SYSTEM_HOSTS_FILE)) {
        Ok(Some((list, source))) => {
            log::debug!("host list from {source}: {} hosts", list.hosts.len());
            Ok(list)
        }
        Ok(None) => Err(format!(
            "no host list: set DISTCC_HOSTS or write {} or {SYSTEM_HOSTS_FILE}",
            config
                .distcc_dir
                .as_ref()
                .map(|d| d.join("hosts").display().to_string())
                .unwrap_or_else(|| "$DISTCC_DIR/hosts".into())
        )),
        Err(error) => Err(error.to_string()),
    }
}

/// Runs the compiler on this machine with the user's unchanged arguments.
#[derive(Clone, Copy)]
struct LocalCompile<'a> {
    compiler: &'a Path,
    invocation: &'a Invocation,
    config: &'a Config,
    /// Slots of this machine; `None` when the state directory is unusable.
    slots: Option<&'a Slots>,
    /// The object file, when the arguments name it: it is removed if a
    /// signal interrupts the compiler after it started writing it.
    output: Option<&'a Path>,
}

impl LocalCompile<'_> {
    /// Runs the compiler as a child process and returns its exit code, or
    /// 128 plus the signal that killed it.
    ///
    /// A child rather than `exec`, so that a signal sent to distcc-rs alone
    /// (`kill PID`, as make does) still stops the compiler and everything it
    /// started: see `signals`.
    fn run(&self) -> i32 {
        let mut command = self.command();
        let _guard = self.output.map(|output| signals::guard_output(output.to_path_buf()));
        let mut child = match signals::spawn(&mut command) {
            Ok(child) => child,
            Err(error) => {
                log::error!("cannot run compiler {}: {error}", self.compiler.display());
                return exit::COMPILER_MISSING;
            }
        };
        match signals::wait(&mut child) {
            Ok(status) => exit_code(&status, self.compiler),
            Err(error) => {
                log::error!("waiting for compiler {} failed: {error}", self.compiler.display());
                exit::DISTCC_FAILED
            }
        }
    }

    /// Waits for a slot of `pool` and runs the compiler in it.
    fn run_in_slot(&self, pool: LocalPool, limits: LocalLimits) -> i32 {
        let Some(slots) = self.slots else {
            return self.run();
        };
        match slots.acquire_local(pool, limits) {
            Ok(slot) => self.run_holding(slots, slot),
            Err(message) => {
                log::warn!("{message}; compiling without a local slot");
                self.run()
            }
        }
    }

    /// Runs the compiler while this process keeps `slot`, until the
    /// compiler exits.
    fn run_holding(&self, slots: &Slots, slot: HeldSlot) -> i32 {
        slots.monitor.note(Target::Local, Phase::Compile);
        let code = self.run();
        drop(slot);
        code
    }

    fn command(&self) -> Command {
        let mut command = Command::new(self.compiler);
        command.args(&self.invocation.args);
        command
    }

    /// Reports why distribution failed and compiles locally, or fails with
    /// `code` when `DISTCC_FALLBACK=0`.
    fn fall_back(&self, job: &RemoteJob, reasons: &[String], code: i32, limits: LocalLimits) -> i32 {
        let source = job.input.to_string_lossy();
        let reasons = reasons.join("; ");
        if !self.config.fallback {
            log::error!("{source}: {reasons}; local fallback disabled by DISTCC_FALLBACK=0");
            return code;
        }
        log::warn!("{source}: {reasons}; compiling locally");
        self.run_in_slot(LocalPool::Compile, limits)
    }
}

/// Returns the exit code of a finished compiler, or 128 plus the number of
/// the signal that killed it, which is reported with its name.
fn exit_code(status: &std::process::ExitStatus, compiler: &Path) -> i32 {
    if let Some(code) = status.code() {
        return code;
    }
    let signal = status.signal().unwrap_or(0);
    log::error!("compiler {} was killed by {}", compiler.display(), exit::signal_name(signal));
    128 + signal
}

struct Distribution<'a> {
    job: &'a RemoteJob,
    local: &'a LocalCompile<'a>,
    hosts: &'a HostList,
    config: &'a Config,
    slots: &'a Slots,
    limits: LocalLimits,
}

/// State shared by the attempts on successive hosts.
struct Attempts {
    temp_dir: Option<PrivateDir>,
    preprocessor: Option<Preprocessor>,
    credentials: Option<Result<Credentials, String>>,
    /// The state directory's [`HEADER_CACHE_NAME`] file.
    header_cache: PathBuf,
}

impl Distribution<'_> {
    fn run(self) -> i32 {
        let mut attempts = Attempts {
            temp_dir: None,
            preprocessor: None,
            credentials: None,
            header_cache: self.slots.dir.root.join(HEADER_CACHE_NAME),
        };
        // Failures of the state directory; host failures are kept in `choice`.
        let mut slot_errors: Vec<String> = Vec::new();
        let mut last_code = exit::NO_HOSTS;
        let mut choice = HostChoice::new(self.hosts);

        loop {
            let (index, slot) = match self.slots.acquire_host(&mut choice) {
                Ok(Some(pick)) => pick,
                Ok(None) => break,
                Err(message) => {
                    slot_errors.push(message);
                    break;
                }
            };
            let host = choice.host(index);
            if host.transport == Transport::Local {
                log::debug!("host list entry {} runs the job locally", host.verbatim);
                attempts.discard(self.config);
                return self.local.run_holding(self.slots, slot);
            }
            if attempts.temp_dir.is_none() {
                match tempfiles::create_private_dir(&self.config.tmpdir) {
                    Ok(dir) => attempts.temp_dir = Some(dir),
                    Err(message) => {
                        // Every host would fail the same way, and blaming
                        // the host would back it off.
                        drop(slot);
                        return self.local.fall_back(self.job, &[message], exit::IO_ERROR, self.limits);
                    }
                }
            }
            log::debug!("trying host {}", host.display_name());
            match self.attempt(host, &mut attempts) {
                Ok(Outcome::Done(code)) => {
                    self.slots.host_worked(host);
                    attempts.discard(self.config);
                    return code;
                }
                Ok(Outcome::CompileLocally { reason, host_worked }) => {
                    log::debug!("compiling locally: {reason}");
                    if host_worked {
                        self.slots.host_worked(host);
                    }
                    drop(slot);
                    attempts.discard(self.config);
                    return self.local.run_in_slot(LocalPool::Compile, self.limits);
                }
                Ok(Outcome::FailedOnServer(code)) => {
                    log::debug!("compiling locally: the compile on {} failed with exit code {code}", host.display_name());
                    drop(slot);
                    attempts.discard(self.config);
                    let local_code = self.local.run_in_slot(LocalPool::Compile, self.limits);
                    self.judge_server_failure(host, code, local_code);
                    return local_code;
                }
                Err(failure) => {
                    log::debug!("{} failed at {}: {}", host.display_name(), failure.step, failure.message);
                    if failure.host_fault {
                        self.slots.host_failed(host, &failure.message);
                    }
                    last_code = failure.exit_code;
                    choice.exclude(index, &failure.message);
                    drop(slot);
                    // A job must not wait for a host slot while it holds a
                    // local one (stock distcc's lock order, which rules out
                    // deadlocks), so the preprocessor finishes first.
                    if let Some(reason) = attempts.settle_preprocessor(self.job) {
                        log::debug!("compiling locally: {reason}");
                        attempts.discard(self.config);
                        return self.local.run_in_slot(LocalPool::Compile, self.limits);
                    }
                }
            }
        }
        attempts.discard(self.config);
        let mut reasons = choice.unused_host_reasons();
        reasons.extend(slot_errors);
        if reasons.is_empty() {
            reasons.push("no usable host: every host is marked ,down".into());
        }
        self.local.fall_back(self.job, &reasons, last_code, self.limits)
    }

    fn attempt(&self, host: &HostSpec, attempts: &mut Attempts) -> Result<Outcome, Failure> {
        attempts.start_preprocessor(self.job, self.local, self.slots, self.limits)?;
        // Loading the GSS-API library and reading the credential cache take
        // about a millisecond, which now overlaps the preprocessor's run.
        let credentials = if host.auth != Auth::None { Some(attempts.credentials()?) } else { None };

        self.slots.monitor.note(Target::Remote, Phase::Connect);
        let mut connection = Connection::open(host, self.config)?;
        let handshake = match credentials {
            Some(credentials) => remote::authenticate(&mut connection, host, credentials, self.config),
            None => Ok(()),
        };
        let result = handshake.and_then(|()| self.exchange(&mut connection, host, attempts));
        connection.close(result)
    }

    /// Sends the job on an open, authenticated connection and handles the reply.
    fn exchange(&self, connection: &mut Connection, host: &HostSpec, attempts: &mut Attempts) -> Result<Outcome, Failure> {
        let preprocessed = match attempts.finish_preprocessor(self.job)? {
            Preprocessed::Ready(path) => path,
            Preprocessed::CompileLocally(reason) => return Ok(Outcome::CompileLocally { reason, host_worked: false }),
        };

        let protocol = remote::protocol_for(host);
        let argv = server_argv(&self.local.invocation.compiler_name, self.local.compiler, &self.job.server_args);
        let argv_bytes: Vec<&[u8]> = argv.iter().map(|a| a.as_bytes()).collect();
        log::debug!("sending job to {} with protocol {protocol}: {}", host.display_name(), display_argv(&argv));
        self.slots.monitor.note(Target::Remote, Phase::Send);
        remote::send_request(connection, protocol, &argv_bytes, &preprocessed, self.config)?;
        self.slots.monitor.note(Target::Remote, Phase::Compile);
        let receive_path = match &self.job.output {
            Output::File(path) => PathBuf::from(path),
            // The object goes to a temporary file first, as for a file output.
            Output::Stdout => self.config.tmpdir.join("distcc-rs-stdout"),
        };
        let reply = remote::receive_reply(connection, protocol, &receive_path, self.config)?;
        self.handle_reply(host, reply)
    }

    /// Reports a compile that failed on the server with `server_code` but
    /// succeeded here, which would otherwise cost a second compile without a
    /// word. Exit code 1 means compile errors: a server whose compiler
    /// differs, or a difference in how the source was sent, so only this
    /// job is affected and only this job gets a warning. Other codes, such as gcc's
    /// 4 for an internal compiler error, point at a broken compiler there,
    /// and the host is backed off so that the following jobs skip it.
    fn judge_server_failure(&self, host: &HostSpec, server_code: i32, local_code: i32) {
        if local_code != 0 {
            self.slots.host_worked(host);
            return;
        }
        let input = self.job.input.to_string_lossy();
        let reason = format!("the compile of {input} failed there with exit code {server_code} but succeeded here");
        if server_code == 1 {
            log::warn!("{}: {reason}; compiled locally", host.display_name());
            self.slots.host_worked(host);
        } else {
            log::warn!("{}: {reason}; check the server's compiler", host.display_name());
            self.slots.host_failed(host, &format!("{reason}; check the server's compiler"));
        }
    }

    fn handle_reply(&self, host: &HostSpec, reply: Reply) -> Result<Outcome, Failure> {
        if libc::WIFSIGNALED(reply.status) {
            let signal = exit::signal_name(libc::WTERMSIG(reply.status));
            return Err(Failure::host("compile", format!("compiler on the server was killed by {signal}"), 128 + libc::WTERMSIG(reply.status)));
        }
        let code = libc::WEXITSTATUS(reply.status);
        let warnings_match = self.job.server_warnings_match
            && !mentions_distccd(&reply.stderr)
            && !has_typographic_quotes(&reply.stderr)
            && messages_in_c_locale();
        if code == 0 && !reply.stderr.is_empty() && self.config.fallback && !warnings_match {
            // The server compiled preprocessed text without the source files,
            // so its diagnostics lack the source lines and carets that the
            // compiler prints here. A local compile prints them exactly.
            return Ok(Outcome::CompileLocally {
                reason: format!("the compile on {} printed diagnostics", host.display_name()),
                host_worked: true,
            });
        }
        if code == 0 {
            let Some(object) = reply.object else {
                return Err(Failure::host("receive", "server reported success without an object file", exit::PROTOCOL_ERROR));
            };
            self.write_output(object)?;
            relay_output(&reply.stdout, &reply.stderr);
            log::debug!("compiled {} on {}", self.job.input.to_string_lossy(), host.display_name());
            return Ok(Outcome::Done(0));
        }
        if code == exit::COMPILER_MISSING {
            return Err(Failure::host(
                "compile",
                "server could not run the compiler (exit 110); is it installed there and listed in /usr/lib/distcc?",
                exit::COMPILER_MISSING,
            ));
        }
        if self.config.skip_local_retry || !self.config.fallback {
            log::debug!(
                "compile of {} failed on {} with exit code {code}; reporting the server's diagnostics without a local retry",
                self.job.input.to_string_lossy(),
                host.display_name()
            );
            relay_output(&reply.stdout, &reply.stderr);
            return Ok(Outcome::Done(code));
        }
        // The server's diagnostics are dropped: the local compile prints its
        // own, with source lines that the server could not show.
        Ok(Outcome::FailedOnServer(code))
    }

    /// Puts the received object or assembler file where the compiler would
    /// have written it.
    fn write_output(&self, object: OutputTemp) -> Result<(), Failure> {
        match &self.job.output {
            Output::File(path) => remote::install_object(object, Path::new(path)).map_err(|e| {
                Failure::client(
                    "write output",
                    format!("cannot write '{}': {e}", Path::new(path).display()),
                    exit::IO_ERROR,
                )
            }),
            Output::Stdout => {
                let mut file = object.as_file().try_clone().map_err(|e| {
                    Failure::client("write output", format!("cannot read the received output: {e}"), exit::IO_ERROR)
                })?;
                std::io::Seek::rewind(&mut file).map_err(|e| {
                    Failure::client("write output", format!("cannot read the received output: {e}"), exit::IO_ERROR)
                })?;
                let mut stdout = std::io::stdout().lock();
                std::io::copy(&mut file, &mut stdout).and_then(|_| stdout.flush()).map_err(|e| {
                    Failure::client("write output", format!("cannot write to standard output: {e}"), exit::IO_ERROR)
                })?;
                Ok(())
            }
        }
    }
}

/// True when gcc here prints its messages untranslated and with ASCII
/// quotes: its LC_MESSAGES and LC_CTYPE locales are C or POSIX. A server's
/// gcc runs in distccd's locale, so its messages match only then (and only
/// when they contain no typographic quotes, which gcc prints in UTF-8
/// locales).
fn messages_in_c_locale() -> bool {
    let set = |value: Option<OsString>| value.filter(|v| !v.is_empty());
    let all = set(std::env::var_os("LC_ALL"));
    let lang = set(std::env::var_os("LANG"));
    let effective = |category: Option<OsString>| {
        all.clone().or(set(category)).or(lang.clone()).unwrap_or_else(|| OsString::from("C"))
    };
    let is_c = |locale: OsString| matches!(locale.to_str(), Some("C" | "POSIX"));
    is_c(effective(std::env::var_os("LC_MESSAGES"))) && is_c(effective(std::env::var_os("LC_CTYPE")))
}

fn has_typographic_quotes(text: &[u8]) -> bool {
    text.windows(3).any(|w| w == "\u{2018}".as_bytes() || w == "\u{2019}".as_bytes())
}

/// True when distccd added messages of its own to the compiler's standard
/// error (it logs warnings there as `distccd[PID] ...`).
fn mentions_distccd(stderr: &[u8]) -> bool {
    stderr.windows(8).any(|w| w == b"distccd[")
}

fn relay_output(stdout: &[u8], stderr: &[u8]) {
    if !stdout.is_empty() {
        let _ = std::io::stdout().write_all(stdout);
        let _ = std::io::stdout().flush();
    }
    if !stderr.is_empty() {
        let _ = std::io::stderr().write_all(stderr);
    }
}

enum Outcome {
    /// The job is finished with this exit code.
    Done(i32),
    /// The compiler printed diagnostics, or failed, before or on the server:
    /// compile locally, so that they appear exactly as a local compile
    /// prints them. This blames no host; `host_worked` is true when the
    /// host compiled the job.
    CompileLocally { reason: String, host_worked: bool },
    /// The compiler failed on the server with this exit code: compile
    /// locally, where it prints its own diagnostics. When the local compile
    /// succeeds, the server is at fault.
    FailedOnServer(i32),
}

/// The result of the local preprocessor run.
enum Preprocessed {
    /// The preprocessed source, ready to send.
    Ready(PathBuf),
    /// The preprocessor failed or printed diagnostics, for the reason given.
    CompileLocally(String),
}

impl Attempts {
    fn credentials(&mut self) -> Result<&Credentials, Failure> {
        let cached = self.credentials.get_or_insert_with(|| auth::acquire_credentials().map_err(|e| e.to_string()));
        match cached {
            Ok(credentials) => Ok(credentials),
            Err(message) => Err(Failure::client("authentication", message.clone(), exit::GSSAPI_FAILED)),
        }
    }

    fn start_preprocessor(
        &mut self,
        job: &RemoteJob,
        local: &LocalCompile,
        slots: &Slots,
        limits: LocalLimits,
    ) -> Result<(), Failure> {
        if self.preprocessor.is_some() {
            return Ok(());
        }
        if job.input_is_preprocessed {
            self.preprocessor = Some(Preprocessor::Done(PathBuf::from(&job.input)));
            return Ok(());
        }
        let slot = slots
            .acquire_local(LocalPool::Preprocess, limits)
            .map_err(|message| Failure::client("preprocess", message, exit::IO_ERROR))?;
        slots.monitor.note(Target::Local, Phase::Preprocess);
        let Some(temp_dir) = &self.temp_dir else {
            return Err(Failure::client("preprocess", "no temporary directory for the preprocessed source", exit::DISTCC_FAILED));
        };
        let name = format!("source.{}", job.preprocessed_ext);
        let (file, path) = temp_dir.create_file(&name).map_err(|e| {
            Failure::client(
                "preprocess",
                format!("cannot create '{}': {e}", temp_dir.path().join(&name).display()),
                exit::IO_ERROR,
            )
        })?;
        let mut command = Command::new(local.compiler);
        command
            .args(&job.cpp_args)
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(Stdio::piped());
        log::debug!("preprocessing: {} {}", local.compiler.display(), display_argv(&job.cpp_args));
        let child = signals::spawn(&mut command).map_err(|e| {
            Failure::client("preprocess", format!("cannot run {}: {e}", local.compiler.display()), exit::COMPILER_MISSING)
        })?;
        self.preprocessor = Some(Preprocessor::Running(child, path, slot));
        Ok(())
    }

    /// Waits for a running preprocessor, which frees its local slot.
    /// Returns why the job must compile locally, when it must.
    fn settle_preprocessor(&mut self, job: &RemoteJob) -> Option<String> {
        if !matches!(self.preprocessor, Some(Preprocessor::Running(..))) {
            return None;
        }
        match self.finish_preprocessor(job) {
            Ok(Preprocessed::Ready(_)) => None,
            Ok(Preprocessed::CompileLocally(reason)) => Some(reason),
            Err(failure) => {
                log::debug!("{}", failure.message);
                None
            }
        }
    }

    /// Waits for the preprocessor. Its diagnostics are not shown: when it
    /// prints any, or fails, the job compiles locally and the compiler prints
    /// them in order with its other diagnostics.
    fn finish_preprocessor(&mut self, job: &RemoteJob) -> Result<Preprocessed, Failure> {
        match self.preprocessor.take() {
            Some(Preprocessor::Done(path)) => {
                self.preprocessor = Some(Preprocessor::Done(path.clone()));
                Ok(Preprocessed::Ready(path))
            }
            // The local slot is freed when `_slot` goes out of scope here.
            Some(Preprocessor::Running(mut child, path, _slot)) => {
                // stdout goes to the file, so reading stderr to its end
                // before waiting cannot block the preprocessor.
                let mut diagnostics = Vec::new();
                if let Some(mut stderr) = child.stderr.take() {
                    use std::io::Read;
                    let _ = stderr.read_to_end(&mut diagnostics);
                }
                let status = signals::wait(&mut child)
                    .map_err(|e| Failure::client("preprocess", format!("waiting for the preprocessor failed: {e}"), exit::IO_ERROR))?;
                if !status.success() {
                    use std::os::unix::process::ExitStatusExt;
                    let reason = match status.code() {
                        Some(code) => format!("the preprocessor failed with exit code {code}"),
                        None => format!(
                            "the preprocessor was killed by {}",
                            exit::signal_name(status.signal().unwrap_or(0))
                        ),
                    };
                    return Ok(Preprocessed::CompileLocally(reason));
                }
                let printed_diagnostics = || Ok(Preprocessed::CompileLocally("the preprocessor printed diagnostics".into()));
                let listed_headers = if job.lists_headers {
                    match args::parse_header_list(&diagnostics) {
                        Some(headers) => Some(headers),
                        None => return printed_diagnostics(),
                    }
                } else if !diagnostics.is_empty() {
                    return printed_diagnostics();
                } else {
                    None
                };
                if job.server_expands_macros {
                    let cache = Some(self.header_cache.clone());
                    let verdict = args::check_directives_only_output(&path, listed_headers.as_deref(), cache).map_err(|e| {
                        Failure::client("preprocess", format!("cannot read '{}': {e}", path.display()), exit::IO_ERROR)
                    })?;
                    if let Some(reason) = verdict {
                        return Ok(Preprocessed::CompileLocally(reason));
                    }
                }
                self.preprocessor = Some(Preprocessor::Done(path.clone()));
                Ok(Preprocessed::Ready(path))
            }
            None => Err(Failure::client("preprocess", "preprocessor was not started", exit::DISTCC_FAILED)),
        }
    }

    /// Stops a running preprocessor and removes temporary files (unless
    /// `DISTCC_SAVE_TEMPS=1`).
    fn discard(&mut self, config: &Config) {
        if let Some(Preprocessor::Running(mut child, _, _)) = self.preprocessor.take() {
            let _ = child.kill();
            let _ = signals::wait(&mut child);
        }
        // Taking the directory removes it when it is dropped, unless kept.
        if let Some(dir) = self.temp_dir.take()
            && config.save_temps
        {
            let kept = dir.keep();
            log::warn!("kept temporary files in {} (DISTCC_SAVE_TEMPS=1)", kept.display());
        }
    }
}

enum Preprocessor {
    /// The child, its output file and the local slot it runs in.
    Running(Child, PathBuf, HeldSlot),
    Done(PathBuf),
}

/// Builds the server's argument vector. Stock distccd runs only compilers
/// that have a link in its masquerade directory (`/usr/lib/distcc`), named
/// without a directory, so the compiler name is sent as the user wrote it
/// when it is bare, else by its file name.
fn server_argv(name: &OsStr, resolved: &Path, server_args: &[OsString]) -> Vec<OsString> {
    let program = if name.as_bytes().contains(&b'/') {
        resolved.file_name().map(OsString::from).unwrap_or_else(|| name.to_owned())
    } else {
        name.to_owned()
    };
    let mut argv = Vec::with_capacity(server_args.len() + 1);
    argv.push(program);
    argv.extend(server_args.iter().cloned());
    argv
}

fn display_argv(argv: &[OsString]) -> String {
    argv.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" ")
}
