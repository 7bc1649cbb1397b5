//! Standard descriptors that were closed when the client started.
//!
//! distcc-rs has its own C `main`, so Rust's start-up code, which opens
//! `/dev/null` on a closed descriptor 0, 1 or 2, does not run. Without
//! that, the first file the client opened (a slot's lock file) became
//! descriptor 1 or 2, and the compiler's output or the client's messages
//! went into it. [`reserve`] puts `/dev/null` there instead, close-on-exec,
//! so the compiler still finds the descriptor closed, as it would without
//! distcc-rs.

use std::sync::atomic::{AtomicBool, Ordering};

static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Opens `/dev/null` on each of descriptors 0, 1 and 2 that is closed.
/// Call it first, before anything opens a file.
#[cfg_attr(test, allow(dead_code))]
pub fn reserve() {
    for fd in 0..=2 {
        // SAFETY: F_GETFD only inspects the descriptor.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } != -1 {
            continue;
        }
        // SAFETY: the path is a NUL-terminated literal. open(2) returns the
        // lowest free descriptor, which is `fd` because the lower ones are
        // open or were opened by earlier rounds of this loop.
        let opened = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
        if opened == 1 {
            STDOUT_CLOSED.store(true, Ordering::Relaxed);
        }
    }
}

/// True when standard output was closed at start.
pub fn stdout_was_closed() -> bool {
    STDOUT_CLOSED.load(Ordering::Relaxed)
}
