//! The session pool: bounded checkout, replacement of broken sessions, re-login.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use test_support::softhsm_test;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, CInitializeFlags};
use cryptoki_ops::{Curve, EcKeySpec, Error, Hsm};

softhsm_test!(fn checkout_times_out_when_every_session_is_busy(token) {
    let config = token.config().with_max_sessions(1).with_checkout_timeout(Duration::from_millis(200));
    let hsm = Hsm::open(&config).unwrap();
    let (held, release) = (mpsc::channel::<()>(), mpsc::channel::<()>());
    let holder = {
        let hsm = hsm.clone();
        std::thread::spawn(move || {
            hsm.with_session(|_| {
                held.0.send(()).unwrap();
                release.1.recv().unwrap();
                Ok(())
            })
            .unwrap();
        })
    };
    held.1.recv().unwrap();
    let stats = hsm.pool_stats();
    assert_eq!((stats.max_sessions, stats.in_use, stats.idle), (1, 1, 0), "{stats:?}");
    let started = Instant::now();
    let err = hsm.list_keys().unwrap_err();
    assert!(matches!(err, Error::PoolExhausted { size: 1, .. }), "{err}");
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert!(err.to_string().contains("max_sessions"), "the error says how to fix it: {err}");
    release.0.send(()).unwrap();
    holder.join().unwrap();
    hsm.list_keys().unwrap(); // the session came back
});

softhsm_test!(fn sessions_closed_behind_the_pools_back_are_replaced(token) {
    let hsm = Hsm::open(&token.config().with_max_sessions(3)).unwrap();
    hsm.generate_ec_key(&EcKeySpec::new(Curve::P256, "k")).unwrap();
    let key = hsm.signing_key(&"k".parse().unwrap()).unwrap();
    // Open three sessions, all idle in the pool with a cached key handle.
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| for _ in 0..20 { key.sign(&[1; 32]).unwrap(); });
        }
    });
    // The module is finalised and initialised again behind the pool's back (as when an HSM
    // client library restarts): every session handle dies and the login is gone.
    let pkcs11 = hsm.module().pkcs11().clone();
    pkcs11.clone().finalize().unwrap();
    pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)).unwrap();
    // The next signature finds a dead session, drops it and the other dead ones, and succeeds
    // on a new, logged-in session.
    let before = hsm.pool_stats();
    assert_eq!(before.replaced, 0);
    key.sign(&[2; 32]).unwrap();
    assert_eq!(hsm.open_sessions(), 1, "dead sessions are dropped, one new one opened");
    let stats = hsm.pool_stats();
    assert_eq!((stats.in_use, stats.idle), (0, 1), "{stats:?}");
    assert_eq!(stats.replaced, before.idle as u64, "every dead session counted: {before:?} {stats:?}");
    hsm.list_keys().unwrap();
    // Again, and this time the first call after the restart creates a key: it is retried on a
    // fresh session too, because a dead handle means nothing was done.
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| for _ in 0..10 { key.sign(&[1; 32]).unwrap(); });
        }
    });
    pkcs11.clone().finalize().unwrap();
    pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)).unwrap();
    hsm.generate_ec_key(&EcKeySpec::new(Curve::Secp256k1, "after-restart")).unwrap();
    hsm.signing_key(&"after-restart".parse().unwrap()).unwrap().sign(&[3; 32]).unwrap();
});

softhsm_test!(fn a_logout_behind_the_pools_back_is_repaired_by_logging_in_again(token) {
    let hsm = token.open();
    hsm.generate_ec_key(&EcKeySpec::new(Curve::Secp256k1, "k")).unwrap();
    let key = hsm.signing_key(&"k".parse().unwrap()).unwrap();
    hsm.with_session(|s| s.logout()).unwrap();
    key.sign(&[3; 32]).unwrap();
    assert_eq!(hsm.list_keys().unwrap().len(), 2, "private objects are visible again");
});

softhsm_test!(fn two_pools_on_one_token_share_the_login(token) {
    let a = token.open();
    let b = token.open(); // second C_Login: CKR_USER_ALREADY_LOGGED_IN is success
    a.generate_ec_key(&EcKeySpec::new(Curve::P256, "shared")).unwrap();
    b.signing_key(&"shared".parse().unwrap()).unwrap().sign(&[4; 32]).unwrap();
    drop(a);
    b.signing_key(&"shared".parse().unwrap()).unwrap().sign(&[5; 32]).unwrap();
});

softhsm_test!(fn a_logout_after_the_key_handle_was_cached_is_repaired_too(token) {
    // Issue 12 item 5: the handle cached in the session goes stale when the login is lost
    // (SoftHSM2 answers CKR_KEY_HANDLE_INVALID), and the lookup after it runs logged out. Both
    // get their own retry.
    let hsm = Hsm::open(&token.config().with_max_sessions(2)).unwrap();
    hsm.generate_ec_key(&EcKeySpec::new(Curve::Secp256k1, "k")).unwrap();
    let key = hsm.signing_key(&"k".parse().unwrap()).unwrap();
    for round in 0..3u8 {
        key.sign(&[round; 32]).unwrap(); // caches the handle
        // Another session of the same token logs the application out.
        let pkcs11 = hsm.module().pkcs11();
        let slot_id = hsm.module().tokens().unwrap().into_iter().find(|t| t.label == token.label).unwrap().slot_id;
        let slot = pkcs11.get_slots_with_initialized_token().unwrap().into_iter().find(|s| s.id() == slot_id).unwrap();
        let other = pkcs11.open_rw_session(slot).unwrap();
        other.logout().unwrap();
        drop(other);
        key.sign(&[round + 10; 32]).unwrap_or_else(|e| panic!("round {round}: {e}"));
    }
    assert_eq!(hsm.list_keys().unwrap().len(), 2, "private objects are visible again");
});

softhsm_test!(fn warm_up_opens_every_session_and_caches_the_key_in_each(token) {
    let hsm = Hsm::open(&token.config().with_max_sessions(4)).unwrap();
    hsm.generate_ec_key(&EcKeySpec::new(Curve::P256, "k")).unwrap();
    let key = hsm.signing_key(&"k".parse().unwrap()).unwrap();
    assert_eq!(key.warm_up().unwrap(), 4);
    let stats = hsm.pool_stats();
    assert_eq!((stats.in_use, stats.idle), (0, 4), "{stats:?}");
    // A session another thread holds is left alone, not waited for.
    let (held, release) = (mpsc::channel::<()>(), mpsc::channel::<()>());
    let (held_tx, release_rx) = (held.0, release.1);
    std::thread::scope(|s| {
        s.spawn(move || {
            hsm.with_session(|_| {
                held_tx.send(()).unwrap();
                release_rx.recv().unwrap();
                Ok(())
            })
            .unwrap()
        });
        held.1.recv().unwrap();
        assert_eq!(key.warm_up().unwrap(), 3);
        release.0.send(()).unwrap();
    });
    key.sign(&[1; 32]).unwrap();
});

softhsm_test!(fn a_caller_arriving_while_others_wait_queues_behind_them(token) {
    // One session; a waiter is queued when its holder gives the session back and at once asks
    // for it again: the waiter gets it first (first come, first served), not the holder.
    let hsm = Hsm::open(&token.config().with_max_sessions(1)).unwrap();
    let order = std::sync::Mutex::new(Vec::new());
    let (held, release) = (mpsc::channel::<()>(), mpsc::channel::<()>());
    let (held_tx, release_rx) = (held.0, release.1);
    let (hsm_ref, order_ref) = (&hsm, &order);
    std::thread::scope(|s| {
        s.spawn(move || {
            hsm_ref.with_session(|_| {
                held_tx.send(()).unwrap();
                release_rx.recv().unwrap();
                Ok(())
            })
            .unwrap();
            hsm_ref.with_session(|_| {
                order_ref.lock().unwrap().push("holder again");
                Ok(())
            })
            .unwrap();
        });
        held.1.recv().unwrap();
        s.spawn(|| {
            hsm.with_session(|_| {
                order.lock().unwrap().push("waiter");
                Ok(())
            })
            .unwrap();
        });
        while hsm.pool_stats().waiting == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
        release.0.send(()).unwrap();
    });
    assert_eq!(*order.lock().unwrap(), ["waiter", "holder again"]);
});
