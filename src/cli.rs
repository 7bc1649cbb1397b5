//! distcc-rs's own options. They are recognised only as the first argument,
//! as with stock distcc, so they never swallow a compiler's options.

use std::ffi::OsString;
use std::path::Path;

use clap::{Arg, ArgAction, Command};

use crate::compile::SYSTEM_HOSTS_FILE;
use crate::config::{Config, ENV_VARS};
use crate::exit;
use crate::hosts;

/// First arguments that select one of distcc-rs's own commands.
const OWN_OPTIONS: &[&str] = &["--help", "-h", "--version", "-V", "--show-hosts", "-j", "--show-principal"];

fn command() -> Command {
    Command::new("distcc-rs")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Distributes C and C++ compiles to distccd servers, with optional Kerberos authentication")
        .override_usage(
            "distcc-rs COMPILER [COMPILER ARGS...]\n       distcc-rs [COMPILER ARGS...]      (compiler: cc)\n       COMPILER [COMPILER ARGS...]       (through a masquerade link named after the compiler)\n       distcc-rs OPTION",
        )
        .disable_version_flag(true)
        .arg(
            Arg::new("version")
                .long("version")
                .short('V')
                .action(ArgAction::SetTrue)
                .help("Print the version, the supported protocols and whether GSS-API support is built in"),
        )
        .arg(
            Arg::new("show-hosts")
                .long("show-hosts")
                .action(ArgAction::SetTrue)
                .help("Print the parsed host list, one entry per line, and exit (non-zero when it is invalid)"),
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
                .help("Print the Kerberos principal in the credential cache and the service principal each ,auth host would be asked for"),
        )
        .group(clap::ArgGroup::new("command").args(["version", "show-hosts", "jobs", "show-principal"]).multiple(false))
        .after_help(environment_help())
}

fn environment_help() -> String {
    let mut text = String::from("Environment:\n");
    for var in ENV_VARS {
        text.push_str(&format!("  {:<24} {} (default: {})\n", var.name, var.description, var.default));
    }
    text.push_str(
        "\nHost list grammar: localhost[/LIMIT]  HOST[:PORT][/LIMIT][,OPTION...]  [IPV6][:PORT][/LIMIT][,OPTION...]\n  [USER@]HOST[/LIMIT][:COMMAND][,OPTION...]; options: lzo, cpp, down, auth, auth=NAME",
    );
    text
}

/// Runs one of distcc-rs's own commands when `argv[1]` selects one; returns
/// its exit code, or `None` for a compile.
pub fn run_own_option(argv: &[OsString], config: &Config) -> Option<i32> {
    let first = argv.get(1)?.to_str()?;
    if !OWN_OPTIONS.contains(&first) {
        return None;
    }
    let matches = match command().try_get_matches_from(argv) {
        Ok(matches) => matches,
        Err(error) => {
            let _ = error.print();
            return Some(if error.use_stderr() { exit::BAD_ARGUMENTS } else { 0 });
        }
    };
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
        return Some(show_principal(config));
    }
    None
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
        println!("{total}");
    } else {
        for host in &list.hosts {
            println!("{host}");
        }
    }
    0
}

fn show_principal(config: &Config) -> i32 {
    match crate::auth::acquire_credentials() {
        Ok(credentials) => println!("client principal: {}", credentials.principal),
        Err(error) => {
            log::error!("{error}");
            return exit::GSSAPI_FAILED;
        }
    }
    if let Some(service) = &config.principal {
        println!("service: {service} (DISTCC_PRINCIPAL; host-based name SERVICE@HOST)");
    }
    0
}
