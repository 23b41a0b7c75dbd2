//! The root package's tests use the workspace's test harness, the `test-support` crate, as
//! `mod common;`: this re-exports it, and `softhsm_test!` with it.

pub use test_support::*;

/// Running `tezos-hsm serve` and talking HTTP to it (the root package's serve tests).
#[allow(dead_code)] // each test binary uses part of the harness
pub mod serve;

/// [`test_support::softhsm_test!`], for the tests that declare `mod common;`.
#[macro_export]
macro_rules! softhsm_test {
    ($($test:tt)*) => {
        test_support::softhsm_test! { $($test)* }
    };
}
