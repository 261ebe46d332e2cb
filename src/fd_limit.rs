//! The open-file limit and the connection cap derived from it.
//!
//! At start `run` raises the soft `RLIMIT_NOFILE` to the hard limit (a
//! proxy needs two descriptors per proxied connection, and the usual soft
//! default, 1,024, would cap it at a few hundred clients). Unless
//! `server.max_connections` is set, the server-wide cap on client
//! connections is derived from that limit:
//!
//! ```text
//! max_connections = (nofile - FIXED_RESERVE) / 2
//! ```
//!
//! Half of what is left after a fixed reserve goes to client connections,
//! half to backend connections: every client connection in flight holds at
//! most one backend connection on HTTP/1 and on TCP listeners (pooled idle
//! backend connections come out of the same half, since they were opened by
//! such requests). [`FIXED_RESERVE`] covers what does not scale with
//! clients: stdio, the listening sockets, the admin listener and its
//! connections, the error and access logs, the upgrade socket, health check
//! connections, DNS lookups, and each runtime thread's epoll and wake fds.
//! At the cap switchyard stops accepting (see [`crate::conn_cap`]), so the
//! process does not run into `EMFILE` with clients waiting in the backlog.

/// Descriptors kept for everything that is not a client connection or its
/// backend connection.
pub const FIXED_RESERVE: u64 = 128;

/// Taken as the limit when the hard limit is "unlimited" (its counting
/// still needs a number; Linux never allows more than this by default).
const UNLIMITED_AS: u64 = 1 << 20;

/// The open-file limit before and after [`raise`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoFile {
    pub was: u64,
    pub now: u64,
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit. On failure the
/// current soft limit is kept and reported.
pub fn raise() -> std::io::Result<NoFile> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let was = finite(lim.rlim_cur);
    if lim.rlim_cur >= lim.rlim_max {
        return Ok(NoFile { was, now: was });
    }
    let raised = libc::rlimit {
        rlim_cur: lim.rlim_max,
        rlim_max: lim.rlim_max,
    };
    // SAFETY: setrlimit reads the struct it is given.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(NoFile {
        was,
        now: finite(lim.rlim_max),
    })
}

fn finite(limit: libc::rlim_t) -> u64 {
    if limit == libc::RLIM_INFINITY {
        UNLIMITED_AS
    } else {
        limit
    }
}

/// The derived `server.max_connections` for an open-file limit `nofile`:
/// `(nofile - FIXED_RESERVE) / 2`, at least 1 (a process with fewer
/// descriptors than the reserve still serves, one client at a time).
pub fn derived_max_connections(nofile: u64) -> usize {
    let clients = nofile.saturating_sub(FIXED_RESERVE) / 2;
    usize::try_from(clients.max(1)).unwrap_or(usize::MAX)
}

/// The server-wide cap in force: `configured` when set, else derived from
/// the limit `nofile`. Logs the figures (and warns when a configured cap
/// leaves less than the reserve for everything else).
pub fn server_cap(configured: u32, nofile: u64) -> usize {
    let derived = derived_max_connections(nofile);
    if configured == 0 {
        log::info!(
            "open-file limit {nofile}: server.max_connections = {derived} \
             (({nofile} - {FIXED_RESERVE} reserved) / 2: one backend connection per client connection)"
        );
        return derived;
    }
    let configured = configured as usize;
    if configured > derived {
        log::warn!(
            "server.max_connections {configured} is more than the open-file limit {nofile} allows \
             ({derived}: ({nofile} - {FIXED_RESERVE} reserved) / 2); accepts may fail with EMFILE"
        );
    } else {
        log::info!("open-file limit {nofile}: server.max_connections = {configured} (configured)");
    }
    configured
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_cap_leaves_the_reserve_and_half_for_backends() {
        assert_eq!(derived_max_connections(1024), 448);
        assert_eq!(derived_max_connections(256), 64);
        assert_eq!(derived_max_connections(1_048_576), 524_224);
        assert_eq!(derived_max_connections(100), 1);
        assert_eq!(derived_max_connections(0), 1);
    }

    #[test]
    fn a_configured_cap_wins() {
        assert_eq!(server_cap(10, 1024), 10);
        assert_eq!(server_cap(0, 1024), 448);
        assert_eq!(server_cap(5000, 1024), 5000);
    }

    #[test]
    fn raising_never_lowers_the_limit() {
        let nofile = raise().unwrap();
        assert!(nofile.now >= nofile.was);
    }
}
