//! distcc-rs's own options. They are recognised only as the first argument,
//! as with stock distcc, so they never swallow a compiler's options.
//!
//! The same definitions produce `--help` and the OPTIONS section of the
//! manual page (`--generate man`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgGroup, Command};

use crate::check::{self, CheckOptions, Format};
use crate::compile::SYSTEM_HOSTS_FILE;
use crate::config::{Config, ENV_VARS};
use crate::exit;
use crate::hosts;
use crate::manpage;
use crate::masquerade;

/// First arguments that select one of distcc-rs's own commands.
const OWN_OPTIONS: &[&str] = &[
    "--help",
    "-h",
    "--version",
    "-V",
    "--show-hosts",
    "-j",
    "--show-principal",
    "--check-hosts",
    "--install-masquerade",
    "--generate",
];

/// Calling forms shown in the usage line of `--help` and in the SYNOPSIS of
/// the manual page.
pub const SYNOPSIS: &[(&str, &str)] = &[
    ("distcc-rs COMPILER [COMPILER ARGS...]", "names the compiler"),
    ("distcc-rs [COMPILER ARGS...]", "uses cc, when the first argument is an option or a source file"),
    ("COMPILER [COMPILER ARGS...]", "through a masquerade link named after the compiler"),
    ("distcc-rs OPTION", "runs one of the options below"),
];

/// The host list grammar in one line per form, shared by `--help` and the
/// manual page.
pub const HOST_GRAMMAR: &[(&str, &str)] = &[
    ("localhost[/LIMIT]", "run jobs on this machine (LIMIT default 2)"),
    ("HOST[:PORT][/LIMIT][,OPTION...]", "a distccd server over TCP (PORT default 3632, LIMIT default 4)"),
    ("[IPV6][:PORT][/LIMIT][,OPTION...]", "a distccd server at an IPv6 address, written in brackets"),
    ("[USER]@HOST[/LIMIT][:COMMAND][,OPTION...]", "a distccd server started through ssh (COMMAND default distccd)"),
];

/// Seconds that `--check-hosts` waits for all hosts together by default.
const DEFAULT_CHECK_TIMEOUT_SECONDS: f64 = 30.0;

/// Builds the definition of the own options.
pub fn command() -> Command {
    Command::new("distcc-rs")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Distributes C and C++ compiles to distccd servers, with optional Kerberos (GSS-API) authentication")
        .override_usage(usage_text())
        .disable_version_flag(true)
        .disable_help_flag(true)
        .arg(
            Arg::new("help")
                .short('h')
                .long("help")
                .action(ArgAction::Help)
                .help("Print help (--help adds the environment variables and host list forms)"),
        )
        .arg(
            Arg::new("version")
                .long("version")
                .short('V')
                .action(ArgAction::SetTrue)
                .help("Print the version, the protocols and whether GSS-API support is built in"),
        )
        .arg(
            Arg::new("show-hosts")
                .long("show-hosts")
                .action(ArgAction::SetTrue)
                .help("Print the parsed host list, one entry per line"),
        )
        .arg(
            Arg::new("jobs")
                .short('j')
                .action(ArgAction::SetTrue)
                .help("Print the total number of slots of the host list, localhost included and ,down entries excluded, for make -j"),
        )
        .arg(
            Arg::new("show-principal")
                .long("show-principal")
                .action(ArgAction::SetTrue)
                .help("Print the client principal, its ticket expiry and each ,auth host's service principal")
                .long_help("Print the client principal in the credential cache, its ticket expiry, and the service principal each ,auth host would be asked for. Exit 119 without valid credentials."),
        )
        .arg(
            Arg::new("check-hosts")
                .long("check-hosts")
                .action(ArgAction::SetTrue)
                .help("Check every host: resolve, connect, authenticate, compile; exit 1 if any is not usable")
                .long_help("Check every host of the list in parallel, within the --timeout limit: name resolution, connection time, and a trivial remote compile; for ,auth hosts also the client principal, the target principal requested, whether a service ticket was obtained, the server's verdict and the handshake time. A host in backoff after an earlier failure is checked all the same, and its backoff is shown. The report ends with one line per host, usable or not usable and why. Exit 0 when every host is usable, 1 otherwise."),
        )
        .arg(
            Arg::new("format")
                .long("format")
                .value_name("FORMAT")
                .value_parser(["text", "json"])
                .default_value("text")
                .help("Report format of --check-hosts and --show-principal"),
        )
        .arg(
            Arg::new("timeout")
                .long("timeout")
                .value_name("SECONDS")
                .value_parser(parse_check_timeout)
                .help(format!("Time limit of --check-hosts in seconds [default: {DEFAULT_CHECK_TIMEOUT_SECONDS}]"))
                .long_help(format!(
                    "Time limit of --check-hosts for all hosts together, in seconds (decimals allowed, at most 3600); hosts still being checked then are reported as not usable [default: {DEFAULT_CHECK_TIMEOUT_SECONDS}]"
                )),
        )
        .arg(
            Arg::new("compiler")
                .long("compiler")
                .value_name("NAME")
                .value_parser(parse_compiler_name)
                .help("Compiler of the trivial compile of --check-hosts [default: cc]")
                .long_help("Compiler the servers run for the trivial compile of --check-hosts; it must be in their compiler whitelist [default: cc]"),
        )
        .arg(
            Arg::new("install-masquerade")
                .long("install-masquerade")
                .value_name("DIR")
                .value_parser(clap::value_parser!(PathBuf))
                .help("Create links to distcc-rs in DIR for the compilers on PATH")
                .long_help("Create symbolic links to distcc-rs in DIR, created when missing, for the compilers found on PATH: gcc, g++, cc, c++, clang and clang++, with version suffixes (gcc-12) and target prefixes (x86_64-linux-gnu-gcc). Existing files in DIR are never replaced. Put DIR first on PATH to use the links."),
        )
        .arg(
            Arg::new("generate")
                .long("generate")
                .value_name("KIND")
                .value_parser(["man"])
                .help("Print generated documentation: man prints this manual page in roff"),
        )
        .group(
            ArgGroup::new("command")
                .args(["version", "show-hosts", "jobs", "show-principal", "check-hosts", "install-masquerade", "generate"])
                .multiple(false),
        )
        .after_help("Run 'distcc-rs --help' for the environment variables and the host list grammar, 'man distcc-rs' for the manual.")
        .after_long_help(long_help_text())
}

fn usage_text() -> String {
    let width = SYNOPSIS.iter().map(|(form, _)| form.len()).max().unwrap_or(0);
    let lines: Vec<String> = SYNOPSIS
        .iter()
        .map(|(form, meaning)| format!("{form:<width$}  ({meaning})"))
        .collect();
    lines.join("\n       ")
}

fn long_help_text() -> String {
    let mut text = String::from("Environment:\n");
    for var in ENV_VARS {
        text.push_str(&format!("  {:<24} {} (default: {})\n", var.name, var.description, var.default));
    }
    text.push_str("\nHost list (DISTCC_HOSTS, else $DISTCC_DIR/hosts, else /etc/distcc/hosts), entries separated by blanks:\n");
    for (form, meaning) in HOST_GRAMMAR {
        text.push_str(&format!("  {form:<44} {meaning}\n"));
    }
    text.push_str("  OPTION: lzo, cpp (with lzo), down, auth (GSS-API), auth=NAME (GSS-API, service host name NAME)\n");
    text.push_str("\nSee 'man distcc-rs' for authentication, fallback rules, exit codes and examples.");
    text
}

fn parse_check_timeout(text: &str) -> Result<Duration, String> {
    match text.trim().parse::<f64>() {
        Ok(seconds) if seconds.is_finite() && seconds > 0.0 && seconds <= 3600.0 => Ok(Duration::from_secs_f64(seconds)),
        _ => Err(format!("invalid time limit '{text}': expected a number of seconds greater than 0 and at most 3600")),
    }
}

fn parse_compiler_name(text: &str) -> Result<String, String> {
    let valid = !text.is_empty()
        && !text.starts_with('-')
        && text.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+' | '/'));
    if valid {
        Ok(text.to_string())
    } else {
        Err(format!("invalid compiler name '{text}': expected a program name such as gcc or /usr/bin/cc"))
    }
}

/// Returns true when `first` (the first argument) selects an own option,
/// written alone or as `--option=VALUE`.
fn is_own_option(first: &str) -> bool {
    OWN_OPTIONS.iter().any(|option| {
        first == *option || (option.starts_with("--") && first.strip_prefix(option).is_some_and(|rest| rest.starts_with('=')))
    })
}

/// Runs one of distcc-rs's own commands when `argv[1]` selects one; returns
/// its exit code, or `None` for a compile.
pub fn run_own_option(argv: &[OsString], config: &Config) -> Option<i32> {
    let first = argv.get(1)?.to_str()?;
    if !is_own_option(first) {
        return None;
    }
    // Reports end quietly when their reader goes away (`--show-hosts | head`),
    // as Unix filters do, instead of failing on a closed pipe.
    // SAFETY: resetting a signal disposition to its default has no preconditions.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let matches = match command().try_get_matches_from(argv) {
        Ok(matches) => matches,
        Err(error) => {
            let _ = error.print();
            return Some(if error.use_stderr() { exit::BAD_ARGUMENTS } else { 0 });
        }
    };
    let format = match matches.get_one::<String>("format").map(String::as_str) {
        Some("json") => Format::Json,
        _ => Format::Text,
    };
    let given = |name: &str| matches.value_source(name) == Some(ValueSource::CommandLine);
    let reports = matches.get_flag("check-hosts") || matches.get_flag("show-principal");
    if given("format") && !reports {
        log::error!("--format applies only to --check-hosts and --show-principal");
        return Some(exit::BAD_ARGUMENTS);
    }
    for name in ["timeout", "compiler"] {
        if given(name) && !matches.get_flag("check-hosts") {
            log::error!("--{name} applies only to --check-hosts");
            return Some(exit::BAD_ARGUMENTS);
        }
    }

    if matches.get_flag("version") {
        print_version();
        return Some(0);
    }
    if matches.get_flag("show-hosts") {
        return Some(show_hosts(config, false));
    }
    if matches.get_flag("jobs") {
        return Some(show_hosts(config, true));
    }
    if matches.get_flag("show-principal") {
        return Some(check::show_principal(config, format));
    }
    if matches.get_flag("check-hosts") {
        let options = CheckOptions {
            format,
            time_limit: matches
                .get_one::<Duration>("timeout")
                .copied()
                .unwrap_or(Duration::from_secs_f64(DEFAULT_CHECK_TIMEOUT_SECONDS)),
            compiler: matches.get_one::<String>("compiler").cloned().unwrap_or_else(|| "cc".to_string()),
        };
        return Some(check::check_hosts(config, &options));
    }
    if let Some(dir) = matches.get_one::<PathBuf>("install-masquerade") {
        return Some(masquerade::install(dir, std::env::var_os("PATH").as_deref()));
    }
    if matches.get_one::<String>("generate").is_some() {
        print!("{}", manpage::render());
        return Some(0);
    }
    log::error!("missing option after '{first}'; run 'distcc-rs --help'");
    Some(exit::BAD_ARGUMENTS)
}

fn print_version() {
    println!("distcc-rs {}", env!("CARGO_PKG_VERSION"));
    println!("  protocols: 1 (plain), 2 (LZO-compressed, ,lzo hosts)");
    println!("  transports: TCP over IPv4 and IPv6, ssh (DISTCC_SSH)");
    println!("  GSS-API (Kerberos 5) mutual authentication: built in");
    println!("  default port: {}", hosts::DEFAULT_PORT);
}

fn show_hosts(config: &Config, slots_only: bool) -> i32 {
    let loaded = hosts::load_host_list(config.hosts.as_deref(), config.distcc_dir.as_deref(), Path::new(SYSTEM_HOSTS_FILE));
    let list = match loaded {
        Ok(Some((list, _))) => list,
        Ok(None) => {
            log::error!("no host list: set DISTCC_HOSTS or write $DISTCC_DIR/hosts or {SYSTEM_HOSTS_FILE}");
            return exit::NO_HOSTS;
        }
        Err(error) => {
            log::error!("{error}");
            return exit::BAD_HOSTSPEC;
        }
    };
    if slots_only {
        // Stock distcc 3.4 also counts ,down entries, which never take a job.
        let total: u64 = list.hosts.iter().filter(|h| !h.down).map(|h| u64::from(h.limit)).sum();
        if total == 0 {
            // `make -j$(distcc-rs -j)` would run `make -j0`, which make rejects.
            log::error!("no slots: every host in the list is marked ,down");
            return exit::NO_HOSTS;
        }
        println!("{total}");
    } else {
        for host in &list.hosts {
            println!("{host}");
        }
    }
    0
}

