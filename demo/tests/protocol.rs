//! The protocol suite end to end (issuer, lock and guest daemons over MQTT and the
//! simulated air) against every broker: the embedded one, and Mosquitto plain, with TLS,
//! and with the shipped deployment config (mutual TLS, CN = identity, shipped ACL).
//!
//! Without Mosquitto installed the Mosquitto cases fail with the install command, unless
//! LATCHKEY_SKIP_MOSQUITTO=1 is set (then they print that they were skipped).
// Test code: a failed unwrap is a failed test (support/ is shared test code).
#![allow(clippy::unwrap_used)]

mod support;

use support::mosquitto::Mode;
use support::{Env, suite};

/// One test per scenario for one broker. `$env` is an async expression giving
/// `Option<Env>` from the test's name (`None`: skipped).
macro_rules! suite_against {
    ($broker:ident, |$name:ident| $env:expr) => {
        mod $broker {
            use super::*;

            suite_against!(@case grant_then_unlock, |$name| $env);
            suite_against!(@case grant_expiry, |$name| $env);
            suite_against!(@case revocation_refused, |$name| $env);
            suite_against!(@case replayed_beacon_refused, |$name| $env);
        }
    };
    (@case $case:ident, |$name:ident| $env:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $case() {
            let $name = concat!(module_path!(), "::", stringify!($case));
            let env: Option<Env> = $env;
            let Some(mut env) = env else { return };
            suite::$case(&mut env).await;
        }
    };
}

suite_against!(embedded, |_name| Some(Env::embedded().await));
suite_against!(mosquitto_plain, |name| Env::mosquitto(Mode::Plain, name)
    .await);
suite_against!(mosquitto_tls, |name| Env::mosquitto(Mode::Tls, name).await);
suite_against!(mosquitto_mutual_tls_acl, |name| Env::mosquitto(
    Mode::MutualTls,
    name
)
.await);

/// The fixture itself: every mode starts, and comes back on the same port after a kill.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_fixture_restarts_on_the_same_port() {
    for mode in Mode::ALL {
        let Some(mut broker) = support::mosquitto::Mosquitto::start(
            mode,
            "mosquitto_fixture_restarts_on_the_same_port",
        ) else {
            return;
        };
        let port = broker.port();
        broker.kill();
        assert!(!broker.is_running());
        broker.restart();
        assert!(broker.is_running());
        assert_eq!(broker.port(), port);
    }
}
