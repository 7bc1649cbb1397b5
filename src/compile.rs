//! The life of one compile: decide local or remote, preprocess, try the
//! hosts in order, and fall back to a local compile when no host worked.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::args::{self, Decision, Output, RemoteJob};
use crate::auth::{self, Credentials};
use crate::config::Config;
use crate::exit;
use crate::hosts::{self, Auth, HostList, HostSpec, Transport};
use crate::invocation::{self, Invocation};
use crate::remote::{self, Failure, Reply};

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
    let local = LocalCompile { compiler: &compiler, invocation: &invocation, config };
    if config.safeguard == 1 {
        log::debug!("running locally: called from a compiler that distcc-rs started (_DISTCC_SAFEGUARD=1)");
        return local.exec();
    }
    for error in &config.errors {
        log::warn!("{error}");
    }
    if !config.errors.is_empty() {
        if !config.fallback {
            log::error!("invalid settings and local fallback disabled by DISTCC_FALLBACK=0");
            return exit::BAD_ARGUMENTS;
        }
        return local.exec();
    }

    let (family, cplusplus_driver) = args::detect_family(&invocation.compiler_name, &compiler);
    let working_directory = args::working_directory();
    let resolve_native = |options: &[OsString]| args::resolve_gcc_native(&compiler, options);
    let toolchain = args::Toolchain { family, cplusplus_driver, working_directory: &working_directory, resolve_native: &resolve_native };
    let job = match args::analyse(&invocation.args, &toolchain) {
        Decision::Local(reason) => {
            log::debug!("running locally: {reason}");
            return local.exec();
        }
        Decision::Remote(job) => job,
    };
    if let Output::File(path) = &job.output {
        if let Some(reason) = output_needs_local_compile(Path::new(path)) {
            log::debug!("running locally: {reason}");
            return local.exec();
        }
    }
    log::debug!("distributable: compile {} to {}", job.input.to_string_lossy(), describe_output(&job.output));
    log::debug!("server arguments: {}", display_argv(&job.server_args));

    let hosts = match load_hosts(config) {
        Ok(hosts) => hosts,
        Err(message) => return local.fall_back(&job, &[message], exit::NO_HOSTS),
    };
    Distribution { job: &job, local: &local, hosts: &hosts, config }.run()
}

/// Returns why the output must be written by a local compile. Writing the
/// object by rename would replace a device such as `/dev/null` or a symbolic
/// link instead of writing through it, as the compiler does; and when the
/// compiler could not write the output, it should say so itself.
fn output_needs_local_compile(output: &Path) -> Option<String> {
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
struct LocalCompile<'a> {
    compiler: &'a Path,
    invocation: &'a Invocation,
    config: &'a Config,
}

impl LocalCompile<'_> {
    /// Replaces this process with the compiler, so that its exit status,
    /// output and signals reach the caller untouched.
    fn exec(&self) -> i32 {
        let error = self.command().exec();
        log::error!("cannot run compiler {}: {error}", self.compiler.display());
        exit::COMPILER_MISSING
    }

    fn command(&self) -> Command {
        let mut command = Command::new(self.compiler);
        command.args(&self.invocation.args);
        command.env("_DISTCC_SAFEGUARD", (self.config.safeguard + 1).to_string());
        command
    }

    /// Reports why distribution failed and compiles locally, or fails with
    /// `code` when `DISTCC_FALLBACK=0`.
    fn fall_back(&self, job: &RemoteJob, reasons: &[String], code: i32) -> i32 {
        let source = job.input.to_string_lossy();
        let reasons = reasons.join("; ");
        if !self.config.fallback {
            log::error!("{source}: {reasons}; local fallback disabled by DISTCC_FALLBACK=0");
            return code;
        }
        log::warn!("{source}: {reasons}; compiling locally");
        self.exec()
    }
}

struct Distribution<'a> {
    job: &'a RemoteJob,
    local: &'a LocalCompile<'a>,
    hosts: &'a HostList,
    config: &'a Config,
}

/// State shared by the attempts on successive hosts.
struct Attempts {
    temp_dir: Option<tempfile::TempDir>,
    preprocessor: Option<Preprocessor>,
    credentials: Option<Result<Credentials, String>>,
}

impl Distribution<'_> {
    fn run(self) -> i32 {
        let mut attempts = Attempts { temp_dir: None, preprocessor: None, credentials: None };
        let mut failures: Vec<String> = Vec::new();
        let mut last_code = exit::NO_HOSTS;

        for host in &self.hosts.hosts {
            if host.down {
                log::debug!("skipping {}: marked down", host.display_name());
                continue;
            }
            if host.transport == Transport::Local {
                log::debug!("host list entry {} runs the job locally", host.verbatim);
                attempts.discard(self.config);
                return self.local.exec();
            }
            log::debug!("trying host {}", host.display_name());
            match self.attempt(host, &mut attempts) {
                Ok(Outcome::Done(code)) => {
                    attempts.discard(self.config);
                    return code;
                }
                Ok(Outcome::CompileLocally(reason)) => {
                    log::debug!("compiling locally: {reason}");
                    attempts.discard(self.config);
                    return self.local.exec();
                }
                Err(failure) => {
                    log::debug!("{} failed at {}: {}", host.display_name(), failure.step, failure.message);
                    failures.push(format!("{}: {}", host.verbatim, failure.message));
                    last_code = failure.exit_code;
                }
            }
        }
        attempts.discard(self.config);
        if failures.is_empty() {
            failures.push("no usable host in the host list".into());
        }
        self.local.fall_back(self.job, &failures, last_code)
    }

    fn attempt(&self, host: &HostSpec, attempts: &mut Attempts) -> Result<Outcome, Failure> {
        if let Transport::Ssh { .. } = host.transport {
            return Err(Failure::client("connect", "ssh hosts are not supported yet", exit::DISTCC_FAILED));
        }
        if host.protocol() != 1 {
            return Err(Failure::client(
                "connect",
                format!("protocol {} (,lzo) is not supported yet", host.protocol()),
                exit::DISTCC_FAILED,
            ));
        }
        if host.auth != Auth::None {
            attempts.credentials()?;
        }
        attempts.start_preprocessor(self.job, self.local, self.config)?;
        let credentials = if host.auth != Auth::None { Some(attempts.credentials()?) } else { None };

        let mut stream = remote::connect(host, self.config)?;
        if let Some(credentials) = credentials {
            remote::authenticate(&mut stream, host, credentials, self.config)?;
        }
        let preprocessed = match attempts.finish_preprocessor(self.job)? {
            Preprocessed::Ready(path) => path,
            Preprocessed::CompileLocally(reason) => return Ok(Outcome::CompileLocally(reason)),
        };

        let argv = server_argv(&self.local.invocation.compiler_name, self.local.compiler, &self.job.server_args);
        let argv_bytes: Vec<&[u8]> = argv.iter().map(|a| a.as_bytes()).collect();
        log::debug!("sending job to {}: {}", host.display_name(), display_argv(&argv));
        remote::send_request(&mut stream, host.protocol(), &argv_bytes, &preprocessed, self.config)?;
        let receive_path = match &self.job.output {
            Output::File(path) => PathBuf::from(path),
            // The object goes to a temporary file first, as for a file output.
            Output::Stdout => self.config.tmpdir.join("distcc-rs-stdout"),
        };
        let reply = remote::receive_reply(&mut stream, host.protocol(), &receive_path, self.config)?;
        self.handle_reply(host, reply)
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
            // compiler prints here; a local compile prints them exactly.
            return Ok(Outcome::CompileLocally(format!(
                "the compile on {} printed diagnostics",
                host.display_name()
            )));
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
        Ok(Outcome::CompileLocally(format!("the compile on {} failed with exit code {code}", host.display_name())))
    }

    /// Puts the received object or assembler file where the compiler would
    /// have written it.
    fn write_output(&self, object: tempfile::NamedTempFile) -> Result<(), Failure> {
        match &self.job.output {
            Output::File(path) => remote::install_object(object, Path::new(path)).map_err(|e| {
                Failure::client(
                    "write output",
                    format!("cannot write '{}': {e}", Path::new(path).display()),
                    exit::IO_ERROR,
                )
            }),
            Output::Stdout => {
                let mut file = object.reopen().map_err(|e| {
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
    let effective = |category: &str| {
        ["LC_ALL", category, "LANG"]
            .iter()
            .find_map(|name| std::env::var_os(name).filter(|value| !value.is_empty()))
            .unwrap_or_else(|| OsString::from("C"))
    };
    ["LC_MESSAGES", "LC_CTYPE"].iter().all(|category| matches!(effective(category).to_str(), Some("C" | "POSIX")))
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
    /// prints them. This blames no host.
    CompileLocally(String),
}

/// The result of the local preprocessor run.
enum Preprocessed {
    /// The preprocessed source, ready to send.
    Ready(PathBuf),
    /// The preprocessor failed or printed diagnostics; the text says which.
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

    fn start_preprocessor(&mut self, job: &RemoteJob, local: &LocalCompile, config: &Config) -> Result<(), Failure> {
        if self.preprocessor.is_some() {
            return Ok(());
        }
        if job.input_is_preprocessed {
            self.preprocessor = Some(Preprocessor::Done(PathBuf::from(&job.input)));
            return Ok(());
        }
        let temp_dir = tempfile::Builder::new()
            .prefix("distcc-rs-")
            .tempdir_in(&config.tmpdir)
            .map_err(|e| {
                Failure::client(
                    "preprocess",
                    format!("cannot create a temporary directory in TMPDIR '{}': {e}", config.tmpdir.display()),
                    exit::IO_ERROR,
                )
            })?;
        let path = temp_dir.path().join(format!("source.{}", job.preprocessed_ext));
        let file = File::create(&path).map_err(|e| {
            Failure::client("preprocess", format!("cannot create '{}': {e}", path.display()), exit::IO_ERROR)
        })?;
        let mut command = Command::new(local.compiler);
        command
            .args(&job.cpp_args)
            .env("_DISTCC_SAFEGUARD", (config.safeguard + 1).to_string())
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(Stdio::piped());
        log::debug!("preprocessing: {} {}", local.compiler.display(), display_argv(&job.cpp_args));
        let child = command.spawn().map_err(|e| {
            Failure::client("preprocess", format!("cannot run {}: {e}", local.compiler.display()), exit::COMPILER_MISSING)
        })?;
        self.temp_dir = Some(temp_dir);
        self.preprocessor = Some(Preprocessor::Running(child, path));
        Ok(())
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
            Some(Preprocessor::Running(child, path)) => {
                let output = child
                    .wait_with_output()
                    .map_err(|e| Failure::client("preprocess", format!("waiting for the preprocessor failed: {e}"), exit::IO_ERROR))?;
                if !output.status.success() {
                    use std::os::unix::process::ExitStatusExt;
                    let code = output.status.code().unwrap_or_else(|| 128 + output.status.signal().unwrap_or(0));
                    return Ok(Preprocessed::CompileLocally(format!("the preprocessor failed with exit code {code}")));
                }
                if !output.stderr.is_empty() {
                    return Ok(Preprocessed::CompileLocally("the preprocessor printed diagnostics".into()));
                }
                if job.server_expands_macros {
                    let text = std::fs::read(&path).map_err(|e| {
                        Failure::client("preprocess", format!("cannot read '{}': {e}", path.display()), exit::IO_ERROR)
                    })?;
                    if let Some(reason) = args::check_directives_only_output(&text, |file| std::fs::read(file).ok()) {
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
        if let Some(Preprocessor::Running(mut child, _)) = self.preprocessor.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(dir) = self.temp_dir.take() {
            if config.save_temps {
                let kept = dir.keep();
                log::warn!("kept temporary files in {} (DISTCC_SAVE_TEMPS=1)", kept.display());
            }
        }
    }
}

enum Preprocessor {
    Running(Child, PathBuf),
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
