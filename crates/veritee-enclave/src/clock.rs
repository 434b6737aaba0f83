//! The enclave's own notion of time.
//!
//! An enclave has no clock the host cannot set: the simulated platform, SGX, TDX, SNP
//! and Nitro all read time through the host's kernel. What the enclave can do is refuse
//! to let time go backwards. Its time is the latest of
//! - the host's clock now,
//! - every time it has itself reported before (kept in memory, and written with every
//!   sealed state transition, so it survives restarts: see `state.rs`),
//! - every vendor-signed time it has verified (the issue date of collateral in a peer's
//!   evidence),
//! - the day this code was released ([`RELEASE_FLOOR`]).
//!
//! What the host can still do, in the terms of DESIGN.md: stop the clock, or make it run
//! slow, from the floor on. It cannot take it back before the floor, so collateral that
//! expired before the enclave last saw the time stays expired, and collateral issued
//! longer than [`MAX_COLLATERAL_AGE`] before the floor is refused however the clock is
//! set. Freezing the clock just after a revocation list was issued would keep an older
//! list acceptable until its own next update; the age bound caps that window.

use crate::service::lock;
use std::sync::Mutex;
use time::OffsetDateTime;

/// The earliest time this build accepts as "now": its release day. A host that sets
/// the clock before it gains nothing the release did not already know.
pub const RELEASE_FLOOR: OffsetDateTime = time::macros::datetime!(2026-12-01 00:00 UTC);

/// Collateral (revocation lists, TCB information) issued longer ago than this, by the
/// enclave's time, is refused when the enclave appraises a peer, whatever its own
/// validity period says.
pub const MAX_COLLATERAL_AGE: time::Duration = time::Duration::days(30);

/// Where the host's time comes from: the system clock, which the host controls.
pub type HostClock = fn() -> OffsetDateTime;

/// A clock that never goes backwards.
#[derive(Debug)]
pub(crate) struct TrustedClock {
    floor: Mutex<OffsetDateTime>,
    host: HostClock,
}

impl Default for TrustedClock {
    fn default() -> Self {
        Self {
            floor: Mutex::new(RELEASE_FLOOR),
            host: OffsetDateTime::now_utc,
        }
    }
}

impl TrustedClock {
    /// A clock reading the host's time from `host`.
    pub(crate) fn with_host(host: HostClock) -> Self {
        Self {
            host,
            ..Self::default()
        }
    }

    /// The enclave's time: the host's clock, unless that is earlier than any time the
    /// enclave has already seen.
    pub(crate) fn now(&self) -> OffsetDateTime {
        let host = (self.host)();
        let mut floor = lock(&self.floor);
        if host > *floor {
            *floor = host;
        }
        *floor
    }

    /// Raises the floor to a time the enclave has reason to believe has passed (a
    /// restored floor, a vendor-signed issue date).
    pub(crate) fn observe(&self, at: OffsetDateTime) {
        let mut floor = lock(&self.floor);
        if at > *floor {
            *floor = at;
        }
    }

    /// The floor without consulting the host's clock (what is written to sealed state).
    pub(crate) fn floor(&self) -> OffsetDateTime {
        *lock(&self.floor)
    }
}

/// A time as RFC 3339, for receipts and messages.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_never_goes_backwards() {
        fn set_back() -> OffsetDateTime {
            time::macros::datetime!(2001-01-01 00:00 UTC)
        }
        // A host clock before this build's release reads as the release day.
        let clock = TrustedClock::with_host(set_back);
        assert_eq!(clock.now(), RELEASE_FLOOR);
        // A vendor-signed time from the future (the host's clock is behind): the enclave
        // believes the later time from now on.
        let later = RELEASE_FLOOR + time::Duration::days(400);
        clock.observe(later);
        assert_eq!(clock.now(), later);
        assert_eq!(clock.floor(), later);
        // An earlier time observed changes nothing.
        clock.observe(RELEASE_FLOOR);
        assert_eq!(clock.now(), later);
        // The host's clock, when later than everything seen, is the time, and raises
        // the floor.
        let live = TrustedClock::default();
        let before = OffsetDateTime::now_utc();
        let now = live.now();
        assert!(now >= before && now >= RELEASE_FLOOR);
        assert_eq!(live.floor(), now);
    }
}
