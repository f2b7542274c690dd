//! `poll(2)`, wrapped once for the metrics endpoint's event loop.
//!
//! On Unix each [`Watch`] becomes one `pollfd`; elsewhere the wait is a short sleep after which
//! every socket is reported ready (the sockets are non-blocking, so a socket that is not
//! ready answers `WouldBlock` and the loop waits again).

use std::time::Duration;

/// The descriptor a [`Watch`] waits on.
#[cfg(unix)]
pub(crate) type Fd = std::os::fd::RawFd;
/// Elsewhere no descriptor is needed.
#[cfg(not(unix))]
pub(crate) type Fd = ();

/// One socket to wait on, and what it is waiting for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Watch {
    /// The socket.
    pub(crate) fd: Fd,
    /// Wait until it can be written (else until it can be read).
    pub(crate) write: bool,
    /// Set by [`wait`]: it can be read or written (or has failed, which the next call reports).
    pub(crate) ready: bool,
}

/// Waits up to `timeout` until one of `watches` is ready; marks those that are.
///
/// # Errors
/// The OS error of `poll` other than `EINTR` (an interrupted wait reports nothing ready).
#[cfg(unix)]
pub(crate) fn wait(watches: &mut [Watch], timeout: Duration) -> std::io::Result<()> {
    let mut fds: Vec<libc::pollfd> = watches
        .iter()
        .map(|w| libc::pollfd {
            fd: w.fd,
            events: if w.write { libc::POLLOUT } else { libc::POLLIN },
            revents: 0,
        })
        .collect();
    let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    let nfds = libc::nfds_t::try_from(fds.len())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // SAFETY: `fds` is a live, initialised slice of `nfds` `pollfd`s that poll may write the
    // `revents` of; it is not touched elsewhere during the call. Invalid descriptors are
    // reported through `revents` (POLLNVAL), not undefined behaviour.
    let rc = unsafe { libc::poll(fds.as_mut_ptr(), nfds, ms) };
    if rc < 0 {
        let e = std::io::Error::last_os_error();
        return if e.kind() == std::io::ErrorKind::Interrupted {
            Ok(())
        } else {
            Err(e)
        };
    }
    for (w, p) in watches.iter_mut().zip(&fds) {
        w.ready = p.revents != 0;
    }
    Ok(())
}

/// Elsewhere: a short sleep, then every socket is tried.
#[cfg(not(unix))]
pub(crate) fn wait(watches: &mut [Watch], timeout: Duration) -> std::io::Result<()> {
    std::thread::sleep(timeout.min(Duration::from_millis(5)));
    for w in watches {
        w.ready = true;
    }
    Ok(())
}
