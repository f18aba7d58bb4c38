//! How many calls the run keeps in flight when the user does not say: what
//! keeps every running partition at its pace at the observed round trip
//! (`calls per second × latency`, PRODUCT.md "Speed"), within what the process's
//! open-file limit allows, which is raised toward its hard limit first.

/// Calls in flight no automatic bound goes below: discovery and AssumeRole
/// start before any partition runs, and a few spare slots absorb bursts.
pub const AUTO_FLOOR: usize = 32;

/// The most calls in flight an automatic bound allows, whatever the open-file
/// limit: each is a connection and a request's buffers (a few tens of KB), and
/// past this two cores are the limit, not the round trip.
pub const AUTO_CEILING: usize = 4096;

/// File descriptors kept for everything but connections (report files, the
/// runtime, the credentials chain's files).
const SPARE_FILES: u64 = 256;

/// Open files the process asks for when it raises its soft limit: a connection
/// per call in flight, the same again idle in the pool, and spare.
const WANTED_FILES: u64 = 2 * AUTO_CEILING as u64 + SPARE_FILES;

/// Bursts above the mean: a partition's chains start together, and jitter
/// moves calls' ends.
const HEADROOM: f64 = 1.5;

/// The automatic bound: `demand` calls per second (the running partitions'
/// pace) held `latency_s` each, with headroom, at least [`AUTO_FLOOR`], at most
/// `ceiling`, and at most `cap` (`--concurrency`) when given. Pure.
pub fn auto_limit(demand: f64, latency_s: f64, ceiling: usize, cap: Option<usize>) -> usize {
    let busy = (demand.max(0.0) * latency_s.max(0.0) * HEADROOM).ceil();
    let want = if busy.is_finite() {
        (busy as usize).saturating_add(AUTO_FLOOR)
    } else {
        usize::MAX
    };
    let limit = want.min(ceiling.max(1));
    cap.map_or(limit, |c| limit.min(c.max(1)))
}

/// The open-file limit, before and after trying to raise it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenFiles {
    pub soft_before: u64,
    pub soft: u64,
    pub hard: u64,
    /// Why the soft limit could not be raised as far as wanted, if it could not.
    pub problem: Option<String>,
}

impl OpenFiles {
    /// Calls in flight these open files allow: half of what is left after the
    /// spare (a connection per call, as many again idle in the pool), within
    /// [`AUTO_FLOOR`]..=[`AUTO_CEILING`].
    pub fn ceiling(&self) -> usize {
        let usable = self.soft.saturating_sub(SPARE_FILES) / 2;
        (usable.min(AUTO_CEILING as u64) as usize).max(AUTO_FLOOR)
    }
}

/// Raise the soft open-file limit toward the hard limit, as far as an
/// automatic bound at its ceiling could use. Never lowers it. If it cannot be
/// raised (a hard limit below what is wanted, or the system refuses), the
/// ceiling follows the limit there is, and `problem` says so.
pub fn raise_open_files() -> OpenFiles {
    imp::raise(WANTED_FILES)
}

#[cfg(unix)]
mod imp {
    use super::OpenFiles;

    pub fn raise(wanted: u64) -> OpenFiles {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes into the struct we own.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
            let e = std::io::Error::last_os_error();
            return OpenFiles {
                soft_before: 1024,
                soft: 1024,
                hard: 1024,
                problem: Some(format!("cannot read the open-file limit: {e}")),
            };
        }
        let (soft, hard) = (lim.rlim_cur as u64, lim.rlim_max as u64);
        let mut out = OpenFiles {
            soft_before: soft,
            soft,
            hard,
            problem: None,
        };
        if soft >= wanted {
            return out;
        }
        let target = wanted.min(hard);
        if target > soft {
            let new = libc::rlimit {
                rlim_cur: target as libc::rlim_t,
                rlim_max: lim.rlim_max,
            };
            // SAFETY: setrlimit reads the struct we own; raising the soft limit up
            // to the hard one needs no privilege.
            if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &new) } == 0 {
                out.soft = target;
            } else {
                let e = std::io::Error::last_os_error();
                out.problem = Some(format!(
                    "cannot raise the open-file limit from {soft} to {target}: {e}"
                ));
                return out;
            }
        }
        if out.soft < wanted {
            out.problem = Some(format!(
                "the open-file limit is {} (hard limit {hard}), below the {wanted} a full bound could use",
                out.soft
            ));
        }
        out
    }
}

#[cfg(not(unix))]
mod imp {
    use super::OpenFiles;

    pub fn raise(_wanted: u64) -> OpenFiles {
        OpenFiles {
            soft_before: 512,
            soft: 512,
            hard: 512,
            problem: Some("the open-file limit is not raised on this platform".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_follows_pace_times_latency() {
        // 4,000 partitions at 2 calls/s, 50 ms: 400 busy, with headroom 600.
        assert_eq!(auto_limit(8_000.0, 0.05, 4096, None), 600 + AUTO_FLOOR);
        // At 800 ms the same partitions would need 12,800: the ceiling.
        assert_eq!(auto_limit(8_000.0, 0.8, 4096, None), 4096);
        // Nothing running yet: the floor, for discovery and AssumeRole.
        assert_eq!(auto_limit(0.0, 0.4, 4096, None), AUTO_FLOOR);
        // --concurrency caps it, however small.
        assert_eq!(auto_limit(8_000.0, 0.8, 4096, Some(4)), 4);
        assert_eq!(auto_limit(0.0, 0.0, 4096, Some(500)), AUTO_FLOOR);
        assert_eq!(auto_limit(f64::INFINITY, 1.0, 100, None), 100);
    }

    #[test]
    fn the_ceiling_follows_the_open_files() {
        let of = |soft| OpenFiles {
            soft_before: soft,
            soft,
            hard: soft,
            problem: None,
        };
        assert_eq!(of(1024).ceiling(), 384);
        assert_eq!(of(20_000).ceiling(), AUTO_CEILING);
        assert_eq!(of(100).ceiling(), AUTO_FLOOR);
    }

    #[cfg(unix)]
    #[test]
    fn raising_never_lowers_the_limit() {
        let r = raise_open_files();
        assert!(r.soft >= r.soft_before);
        assert!(r.soft <= r.hard);
        assert_eq!(r.problem.is_none(), r.soft >= WANTED_FILES);
    }
}
