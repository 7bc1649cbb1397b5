//! distcc-rs: a drop-in replacement for the distcc client, with Kerberos
//! (GSS-API) mutual authentication for `distccd --auth` servers.

// The C `main` below replaces Rust's entry point, see its comment.
#![cfg_attr(not(test), no_main)]

mod args;
mod auth;
mod backoff;
mod check;
mod cli;
mod compile;
mod config;
mod exit;
mod gssapi;
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
mod stdio;
mod tempfiles;
mod transport;

use std::ffi::OsString;

/// The process entry point, called by the C runtime.
///
/// Rust's own entry point would first record the main thread's stack bounds
/// for its stack-overflow message. glibc's `pthread_getattr_np` parses
/// /proc/self/maps for that: about 0.1 million instructions per run, a
/// quarter of the client's cost for a plain job (callgrind, release build).
/// Without it a stack overflow ends in a plain SIGSEGV, with no message.
/// `std::env::args_os` still works: on glibc, std reads the arguments from
/// an ELF constructor.
#[cfg(not(test))]
#[unsafe(no_mangle)]
extern "C" fn main(_argc: std::ffi::c_int, _argv: *const *const std::ffi::c_char) -> std::ffi::c_int {
    // As Rust's entry point does: a write to a closed connection must return
    // EPIPE, not kill the client. std restores the default in every child.
    // SAFETY: setting a signal disposition to SIG_IGN has no preconditions.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    stdio::reserve();
    // A panic must not unwind into C; 101 is the exit code Rust gives it.
    match std::panic::catch_unwind(run) {
        Ok(never) => match never {},
        Err(_) => 101,
    }
}

#[cfg_attr(test, allow(dead_code))]
fn run() -> std::convert::Infallible {
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
            // SAFETY: the client has started no other thread yet; the signal
            // thread starts on the next line.
            unsafe { compile::mark_children(config.safeguard + 1) };
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
