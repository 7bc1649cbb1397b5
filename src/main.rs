//! distcc-rs: a drop-in replacement for the distcc client, with Kerberos
//! (GSS-API) mutual authentication for `distccd --auth` servers.

mod args;
mod auth;
mod backoff;
mod check;
mod cli;
mod compile;
mod config;
mod exit;
mod hosts;
mod invocation;
mod lock;
mod logging;
mod lzo;
mod manpage;
mod masquerade;
mod protocol;
mod remote;
mod signals;
mod slots;
mod ssh;
mod state;
mod statedir;
mod tempfiles;
mod transport;

use std::ffi::OsString;

fn main() {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let config = config::Config::from_env();
    if let Some(problem) = logging::init(&config) {
        log::warn!("{problem}");
    }
    let code = match invocation::classify(&argv) {
        Ok(invocation) => {
            if invocation.mode != invocation::Mode::Masquerade
                && let Some(code) = cli::run_own_option(&argv, &config)
            {
                std::process::exit(code);
            }
            signals::install();
            compile::run(invocation, &config)
        }
        Err(error) => {
            log::error!("{error:#}");
            exit::BAD_ARGUMENTS
        }
    };
    signals::exit(code);
}
