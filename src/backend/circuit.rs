//! A circuit breaker in front of the backend: a backend known to be failing is not waited for.
//!
//! After `failures` consecutive connection failures or timeouts (or 5xx answers), the circuit
//! opens for `open_for`: every call fails at once with [`StorageError::CircuitOpen`], which
//! the client gets as 503 with `Retry-After`. When that time has passed, one call goes through
//! as a trial (half-open); its success closes the circuit, its failure opens it again. The
//! background readiness probe reports here too, so a recovered backend closes the circuit
//! within one probe interval even when no request comes. This is nginx's `max_fails` /
//! `fail_timeout` and Envoy's consecutive-failure outlier detection, for one backend.
//!
//! The state also drives `gateway_backend_up`: 0 from the moment the circuit opens or a probe
//! fails, 1 again when a call or a probe succeeds. A backend that answers but refuses this
//! gateway as a whole (its TLS handshake, or its signature or key: `SignatureDoesNotMatch`,
//! `InvalidAccessKeyId`) is not up for it either: 0, the same story `/readyz` tells, but
//! without opening the circuit (retrying sooner or later changes nothing, and the 502 says why).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::StorageError;
use crate::metrics::Metrics;

/// When the circuit opens and for how long.
#[derive(Clone, Copy, Debug)]
pub struct CircuitConfig {
    /// Consecutive failures that open the circuit; 0 turns the breaker off.
    pub failures: u32,
    /// How long it stays open before one trial call is let through.
    pub open_for: Duration,
    /// Most calls in flight at once (`--backend-max-concurrency`); more are refused at once.
    pub max_in_flight: usize,
}

/// Most calls in flight at once while the backend is failing (its last call failed, or the
/// circuit is open or half-open): a few trials, not a herd waiting on a backend known to be
/// broken.
pub const WHILE_FAILING: usize = 4;

#[derive(Debug)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// A trial call started at this time; others are refused until it reports.
    HalfOpen {
        trial_started: Instant,
    },
}

/// Whether a call may go to the backend.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    /// Go ahead.
    Pass,
    /// Go ahead as the one trial of a half-open circuit.
    Trial,
}

/// What one call says about the backend's health.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    /// The backend answered (any S3 answer, a 404 or 403 included).
    Answered,
    /// It could not be reached, did not answer in time, or answered 5xx.
    Failed,
    /// It answered, refusing this gateway whatever it asks: the TLS handshake, or the
    /// request's signature or key.
    Refused,
    /// Nothing learnt (the call never reached the network).
    Unknown,
}

impl Health {
    /// What a call's result says about the backend.
    pub fn of<T>(result: &Result<T, StorageError>) -> Self {
        match result {
            Ok(_) => Health::Answered,
            Err(StorageError::Unreachable(_) | StorageError::Timeout(_)) => Health::Failed,
            Err(StorageError::Backend { status, .. }) if *status >= 500 => Health::Failed,
            Err(StorageError::Tls(_)) => Health::Refused,
            Err(StorageError::Denied { code, .. }) if REFUSING_CODES.contains(&code.as_str()) => Health::Refused,
            // A HEAD's 401/403 has no body, so no code: a policy's refusal of one key and a bad
            // signature look alike. Recording it as an answer would report the backend up
            // between a request's refusal and the probe's GET that names it.
            Err(StorageError::Denied { code, .. }) if code.starts_with(crate::error::CODELESS) => Health::Unknown,
            Err(StorageError::CircuitOpen { .. } | StorageError::Saturated { .. } | StorageError::Internal(_)) => {
                Health::Unknown
            }
            Err(_) => Health::Answered,
        }
    }
}

/// S3 error codes that refuse every request of these credentials (an `AccessDenied` may be one
/// key's policy, and says nothing about the others).
const REFUSING_CODES: &[&str] = &[
    "SignatureDoesNotMatch",
    "InvalidAccessKeyId",
    "InvalidClientTokenId",
    "InvalidToken",
    "ExpiredToken",
    // The STS refused the client certificate (a 4xx): no credentials for any call.
    crate::error::STS_REFUSED,
];

/// The breaker of one backend.
#[derive(Debug)]
pub struct Circuit {
    config: CircuitConfig,
    state: Mutex<State>,
    metrics: std::sync::Arc<Metrics>,
    /// Calls in flight (`max_in_flight`).
    in_flight: std::sync::Arc<Semaphore>,
    /// Calls in flight while the backend is failing ([`WHILE_FAILING`]).
    while_failing: std::sync::Arc<Semaphore>,
}

/// The places a call holds while it is in flight.
#[derive(Debug)]
pub struct InFlight {
    _all: OwnedSemaphorePermit,
    _failing: Option<OwnedSemaphorePermit>,
}

impl Circuit {
    /// A closed circuit.
    pub fn new(config: CircuitConfig, metrics: std::sync::Arc<Metrics>) -> Self {
        Self {
            config,
            state: Mutex::new(State::Closed { failures: 0 }),
            metrics,
            in_flight: std::sync::Arc::new(Semaphore::new(config.max_in_flight.max(1))),
            while_failing: std::sync::Arc::new(Semaphore::new(WHILE_FAILING)),
        }
    }

    /// Whether the backend is failing: its last call failed, or the circuit is not closed.
    fn failing(&self) -> bool {
        !matches!(*self.state(), State::Closed { failures: 0 })
    }

    /// A place for one call in flight, or why not: as many are in flight as allowed (fewer
    /// while the backend is failing), and the rest are refused at once rather than queued
    /// behind a backend that does not answer (Envoy's pending-request circuit breaking,
    /// nginx's `max_conns`).
    ///
    /// # Errors
    /// [`StorageError::Saturated`], counted by the caller.
    pub fn enter(&self) -> Result<InFlight, StorageError> {
        let all = self
            .in_flight
            .clone()
            .try_acquire_owned()
            .map_err(|_| StorageError::Saturated {
                in_flight: self.config.max_in_flight,
            })?;
        let failing = if self.failing() {
            Some(
                self.while_failing
                    .clone()
                    .try_acquire_owned()
                    .map_err(|_| StorageError::Saturated {
                        in_flight: WHILE_FAILING,
                    })?,
            )
        } else {
            None
        };
        Ok(InFlight {
            _all: all,
            _failing: failing,
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a call may go to the backend now.
    ///
    /// # Errors
    /// [`StorageError::CircuitOpen`] with the time after which to try again.
    pub fn admit(&self) -> Result<Admission, StorageError> {
        if self.config.failures == 0 {
            return Ok(Admission::Pass);
        }
        let now = Instant::now();
        let mut state = self.state();
        match *state {
            State::Closed { .. } => Ok(Admission::Pass),
            State::Open { until } if now < until => Err(StorageError::CircuitOpen {
                retry_after: until - now,
            }),
            // A trial that never reported (its request was cancelled) does not hold the
            // circuit forever: after another open period, the next call is a trial.
            State::HalfOpen { trial_started } if now < trial_started + self.config.open_for => {
                Err(StorageError::CircuitOpen {
                    retry_after: Duration::from_secs(1),
                })
            }
            State::Open { .. } | State::HalfOpen { .. } => {
                *state = State::HalfOpen { trial_started: now };
                Ok(Admission::Trial)
            }
        }
    }

    /// How long a client should wait before asking again while the backend is failing: until
    /// the circuit would let the next trial call through.
    pub fn retry_after(&self) -> Duration {
        self.config.open_for
    }

    /// Records what a call (or a probe) found.
    pub fn record(&self, health: Health) {
        let mut state = self.state();
        match health {
            Health::Unknown => {}
            Health::Refused => self.metrics.backend_up.set(0),
            Health::Answered => {
                if !matches!(*state, State::Closed { .. }) {
                    tracing::info!("backend answers again: circuit closed");
                }
                *state = State::Closed { failures: 0 };
                self.metrics.backend_circuit_open.set(0);
                self.metrics.backend_up.set(1);
            }
            Health::Failed => {
                let open = match *state {
                    State::Closed { failures } => {
                        let failures = failures + 1;
                        *state = State::Closed { failures };
                        self.config.failures > 0 && failures >= self.config.failures
                    }
                    State::HalfOpen { .. } => true,
                    State::Open { .. } => false,
                };
                if open {
                    tracing::warn!(
                        open_for = ?self.config.open_for,
                        "backend failing: circuit open; requests that need it answer 503 at once"
                    );
                    *state = State::Open {
                        until: Instant::now() + self.config.open_for,
                    };
                    self.metrics.backend_circuit_open.set(1);
                    self.metrics.backend_circuit_opened.inc();
                }
                self.metrics.backend_up.set(0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn circuit(failures: u32, open_for: Duration) -> Circuit {
        Circuit::new(
            CircuitConfig {
                failures,
                open_for,
                max_in_flight: 64,
            },
            std::sync::Arc::new(Metrics::new()),
        )
    }

    #[test]
    fn opens_after_consecutive_failures_and_closes_after_a_trial() {
        let c = circuit(3, Duration::from_millis(50));
        for _ in 0..2 {
            c.record(Health::Failed);
            assert_eq!(c.admit().unwrap(), Admission::Pass);
        }
        c.record(Health::Answered); // resets the count
        for _ in 0..3 {
            assert_eq!(c.admit().unwrap(), Admission::Pass);
            c.record(Health::Failed);
        }
        assert!(matches!(c.admit(), Err(StorageError::CircuitOpen { .. })));
        assert_eq!(c.metrics.backend_up.get(), 0);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(c.admit().unwrap(), Admission::Trial);
        // Only one trial at a time.
        assert!(matches!(c.admit(), Err(StorageError::CircuitOpen { .. })));
        c.record(Health::Failed);
        assert!(matches!(c.admit(), Err(StorageError::CircuitOpen { .. })));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(c.admit().unwrap(), Admission::Trial);
        c.record(Health::Answered);
        assert_eq!(c.admit().unwrap(), Admission::Pass);
        assert_eq!(c.metrics.backend_up.get(), 1);
    }

    #[test]
    fn a_refusal_is_not_undone_by_a_head_without_a_code() {
        let denied = |code: &str| -> Result<(), StorageError> {
            Err(StorageError::Denied {
                code: code.into(),
                message: String::new(),
            })
        };
        let c = circuit(3, Duration::from_secs(60));
        c.record(Health::of(&denied("SignatureDoesNotMatch")));
        assert_eq!(c.metrics.backend_up.get(), 0);
        // HeadBucket or HeadObject with the same wrong key: 403, no body, no code.
        assert_eq!(Health::of(&denied("HTTP 403")), Health::Unknown);
        c.record(Health::of(&denied("HTTP 403")));
        assert_eq!(c.metrics.backend_up.get(), 0);
        assert_eq!(Health::of(&denied(crate::error::STS_REFUSED)), Health::Refused);
        // A policy's refusal of one key, with its code, is an answer.
        c.record(Health::of(&denied("AccessDenied")));
        assert_eq!(c.metrics.backend_up.get(), 1);
    }

    #[test]
    fn zero_failures_turns_it_off() {
        let c = circuit(0, Duration::from_secs(60));
        for _ in 0..100 {
            c.record(Health::Failed);
        }
        assert_eq!(c.admit().unwrap(), Admission::Pass);
    }
}
