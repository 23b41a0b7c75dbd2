//! The HSM and the watermark store, timed into [`Metrics`](super::Metrics) histograms without
//! changing what they do: [`TimedSigner`] around the HSM key the guard signs with, and
//! [`TimedStore`] around the guard's [`WatermarkStore`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use tezos_keys::high_watermark::{KeyMarks, LockedRecord, WatermarkStore};
use tezos_keys::{GuardError, PublicKeyHash, Signature};

use super::{Histogram, Metrics};

/// A signer whose every signature is timed into a histogram (the HSM latency).
pub struct TimedSigner<'a, S: ?Sized> {
    inner: &'a S,
    histogram: &'a Histogram,
}

impl<'a, S: ?Sized> TimedSigner<'a, S> {
    /// `inner`, timed into `histogram`.
    pub fn new(inner: &'a S, histogram: &'a Histogram) -> Self {
        Self { inner, histogram }
    }
}

impl<S> signature::Signer<Signature> for TimedSigner<'_, S>
where
    S: signature::Signer<Signature> + ?Sized,
{
    fn try_sign(&self, message: &[u8]) -> Result<Signature, signature::Error> {
        let start = Instant::now();
        let result = self.inner.try_sign(message);
        self.histogram.observe(start.elapsed());
        result
    }
}

/// A watermark store whose time per guarded request (waiting for the record's lock, loading,
/// saving; not the HSM call in between) is observed into
/// [`Metrics::watermark_store`](super::Metrics::watermark_store) once the record is released.
pub struct TimedStore {
    inner: Arc<dyn WatermarkStore>,
    metrics: Arc<Metrics>,
}

impl TimedStore {
    /// `inner`, timed into `metrics`.
    pub fn new(inner: Arc<dyn WatermarkStore>, metrics: Arc<Metrics>) -> Self {
        Self { inner, metrics }
    }
}

impl WatermarkStore for TimedStore {
    fn lock(&self, key: &PublicKeyHash) -> Result<Box<dyn LockedRecord + '_>, GuardError> {
        let start = Instant::now();
        let result = self.inner.lock(key);
        let spent = start.elapsed();
        match result {
            Ok(record) => Ok(Box::new(TimedRecord {
                inner: Some(record),
                spent,
                histogram: &self.metrics.watermark_store,
            })),
            Err(e) => {
                self.metrics.watermark_store.observe(spent);
                Err(e)
            }
        }
    }
}

struct TimedRecord<'a> {
    /// `None` only while dropped.
    inner: Option<Box<dyn LockedRecord + 'a>>,
    spent: Duration,
    histogram: &'a Histogram,
}

impl LockedRecord for TimedRecord<'_> {
    fn load(&mut self) -> Result<KeyMarks, GuardError> {
        let start = Instant::now();
        let result = match &mut self.inner {
            Some(inner) => inner.load(),
            None => Ok(KeyMarks::default()),
        };
        self.spent += start.elapsed();
        result
    }

    fn save(&mut self, marks: &KeyMarks) -> Result<(), GuardError> {
        let start = Instant::now();
        let result = match &mut self.inner {
            Some(inner) => inner.save(marks),
            None => Ok(()),
        };
        self.spent += start.elapsed();
        result
    }
}

impl Drop for TimedRecord<'_> {
    fn drop(&mut self) {
        // Releasing the record is part of its cost (a PostgreSQL store commits then).
        let start = Instant::now();
        drop(self.inner.take());
        self.histogram.observe(self.spent + start.elapsed());
    }
}
