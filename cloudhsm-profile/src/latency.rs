//! A simulated network and HSM capacity: how long a request to the cluster takes, and how many
//! signatures the cluster works on at once before it throttles. Configured, like the faults, by
//! environment variables read once per process.
//!
//! | Variable | Effect |
//! |---|---|
//! | `CLOUDHSM_PROFILE_SIGN_LATENCY_US=N` | a `C_Sign` that returns a signature takes at least N µs, SoftHSM2's own work included: the round trip to an HSM. The call sleeps for the rest; it burns no CPU |
//! | `CLOUDHSM_PROFILE_READ_LATENCY_US=N` | each `C_FindObjects` and `C_GetAttributeValue` takes at least N µs (each is a network round trip on CloudHSM: user guide, "Retrieving attributes", `pkcs11-attributes-retrieve`) |
//! | `CLOUDHSM_PROFILE_SIGN_CAPACITY=N` | at most N signing `C_Sign` calls are served at once; one more is refused with `CKR_FUNCTION_FAILED`, the answer of a busy HSM (user guide, "HSM throttling", `troubleshoot-hsm-throttling`: "In PKCS11, busy errors map to CKR_FUNCTION_FAILED"), after the same round trip |
//!
//! Unset or 0 turns each off. The length query of a two-call `C_Sign` (NULL output buffer) is
//! answered at once, as a client library can without asking the HSM (our reasoning; AWS does not
//! document it), and is not counted. A refused `C_Sign` still ends the signing operation, as
//! PKCS#11 requires of a failed `C_Sign`, so the session can start the next one.
//!
//! With latency L and capacity C the simulated cluster signs at most C / L per second: C = 14
//! at L = 2 ms is 7,000/s, AWS's published figure for six `hsm2m.medium` HSMs (user guide,
//! "AWS CloudHSM performance information", `performance`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Minimum duration of a signing `C_Sign`, in microseconds.
pub const SIGN_LATENCY_US: &str = "CLOUDHSM_PROFILE_SIGN_LATENCY_US";
/// Minimum duration of a `C_FindObjects` or `C_GetAttributeValue`, in microseconds.
pub const READ_LATENCY_US: &str = "CLOUDHSM_PROFILE_READ_LATENCY_US";
/// Signing `C_Sign` calls served at once; more are throttled.
pub const SIGN_CAPACITY: &str = "CLOUDHSM_PROFILE_SIGN_CAPACITY";

/// The configured latencies and capacity, and the signatures in flight.
#[derive(Debug, Default)]
pub struct Network {
    sign: Duration,
    read: Duration,
    capacity: u64,
    in_flight: AtomicU64,
}

/// A signing request admitted or refused; [`Network::finish_sign`] ends it.
#[derive(Debug)]
#[must_use]
pub struct SignRequest {
    started: Instant,
    admitted: bool,
}

impl SignRequest {
    /// Whether the simulated HSM refused the request (over capacity).
    pub fn throttled(&self) -> bool {
        !self.admitted
    }
}

impl Network {
    /// The network of this process, read from the environment on first use.
    pub fn get() -> Result<&'static Self, &'static str> {
        static NETWORK: OnceLock<Result<Network, String>> = OnceLock::new();
        NETWORK
            .get_or_init(|| {
                Ok(Self {
                    sign: Duration::from_micros(crate::faults::number(SIGN_LATENCY_US)?),
                    read: Duration::from_micros(crate::faults::number(READ_LATENCY_US)?),
                    capacity: crate::faults::number(SIGN_CAPACITY)?,
                    in_flight: AtomicU64::new(0),
                })
            })
            .as_ref()
            .map_err(String::as_str)
    }

    /// Starts a signing request: admitted unless `capacity` requests are in flight already.
    pub fn begin_sign(&self) -> SignRequest {
        let started = Instant::now();
        // Taken only if free, so a refused request never makes another one look over capacity.
        let admitted = self
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (self.capacity == 0 || n < self.capacity).then_some(n + 1)
            })
            .is_ok();
        SignRequest { started, admitted }
    }

    /// Ends a signing request once its round trip has passed; frees its place if admitted.
    pub fn finish_sign(&self, request: SignRequest) {
        sleep_until(request.started + self.sign);
        if request.admitted {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// When a read started now must end at the earliest; [`sleep_until`] it after the call.
    pub fn read_deadline(&self) -> Instant {
        Instant::now() + self.read
    }
}

/// Sleeps (no busy waiting) until `deadline`; returns at once if it has passed.
pub fn sleep_until(deadline: Instant) {
    let now = Instant::now();
    if deadline > now {
        std::thread::sleep(deadline - now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn network(capacity: u64) -> Network {
        Network {
            capacity,
            ..Network::default()
        }
    }

    #[test]
    fn requests_beyond_the_capacity_are_refused_until_one_finishes() {
        let network = network(2);
        let (a, b, c) = (
            network.begin_sign(),
            network.begin_sign(),
            network.begin_sign(),
        );
        assert!(!a.throttled() && !b.throttled());
        assert!(c.throttled(), "the third of a capacity of 2");
        network.finish_sign(c);
        assert!(network.begin_sign().throttled(), "a refusal frees no place");
        network.finish_sign(a);
        let d = network.begin_sign();
        assert!(!d.throttled(), "a finished request frees its place");
        network.finish_sign(b);
        network.finish_sign(d);
        assert_eq!(network.in_flight.load(Ordering::Acquire), 0);
    }

    #[test]
    fn no_capacity_means_no_refusal() {
        let network = network(0);
        let requests: Vec<SignRequest> = (0..100).map(|_| network.begin_sign()).collect();
        assert!(requests.iter().all(|r| !r.throttled()));
    }
}
