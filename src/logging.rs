//! The logger behind the `log` macros.
//!
//! By default only warnings and errors are printed, as `distcc-rs: warning:
//! ...`, with nothing that changes from run to run (configure scripts and
//! libtool compare standard error between runs). `DISTCC_VERBOSE=1` adds
//! debug lines with the process id and the time since start. Messages go to
//! `DISTCC_LOG` when set, else to ccache's `UNCACHED_ERR_FD`, else to standard
//! error; never to standard output, which belongs to the compiler.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::FromRawFd;
use std::sync::Mutex;
use std::time::Instant;

use log::{Level, LevelFilter, Log, Metadata, Record};

use crate::config::Config;

enum Sink {
    Stderr,
    File(File),
}

struct Logger {
    sink: Mutex<Sink>,
    verbose: bool,
    started: Instant,
    pid: u32,
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        self.verbose || metadata.level() <= Level::Warn
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = match record.level() {
            Level::Error => "error",
            Level::Warn => "warning",
            Level::Info => "info",
            Level::Debug | Level::Trace => "debug",
        };
        // One write per message, so that lines of parallel jobs do not interleave.
        let line = if self.verbose {
            let elapsed = self.started.elapsed().as_secs_f64() * 1000.0;
            format!("distcc-rs[{}] {elapsed:.1}ms {level}: {}\n", self.pid, record.args())
        } else {
            format!("distcc-rs: {level}: {}\n", record.args())
        };
        let mut sink = self.sink.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let _ = match &mut *sink {
            Sink::Stderr => std::io::stderr().write_all(line.as_bytes()),
            Sink::File(file) => file.write_all(line.as_bytes()),
        };
    }

    fn flush(&self) {}
}

/// Installs the logger. Returns a message to print when `DISTCC_LOG` could
/// not be opened (the messages then go to standard error).
pub fn init(config: &Config) -> Option<String> {
    let mut problem = None;
    let sink = if let Some(path) = &config.log_file {
        match OpenOptions::new().create(true).append(true).open(path) {
            Ok(file) => Sink::File(file),
            Err(err) => {
                problem = Some(format!(
                    "cannot open DISTCC_LOG file '{}': {err}; logging to standard error",
                    path.display()
                ));
                Sink::Stderr
            }
        }
    } else if let Some(fd) = config.uncached_err_fd.filter(|fd| fd_is_open(*fd)) {
        // SAFETY: the descriptor is open (checked above) and ccache hands it
        // to us for exactly this use; it stays open until the process exits.
        Sink::File(unsafe { File::from_raw_fd(fd) })
    } else {
        Sink::Stderr
    };
    let logger = Logger {
        sink: Mutex::new(sink),
        verbose: config.verbose,
        started: Instant::now(),
        pid: std::process::id(),
    };
    if log::set_boxed_logger(Box::new(logger)).is_ok() {
        log::set_max_level(if config.verbose { LevelFilter::Debug } else { LevelFilter::Warn });
    }
    problem
}

fn fd_is_open(fd: i32) -> bool {
    // SAFETY: F_GETFD only queries the descriptor table.
    unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
}
