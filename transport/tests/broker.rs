//! Embedded broker: binding, readiness, stop.

mod common;

use std::net::{SocketAddr, TcpListener, TcpStream};

use latchkey_transport::broker::{BrokerError, EmbeddedBroker};

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().expect("literal address")
}

#[test]
fn port_zero_reports_the_real_port_and_accepts_connections() {
    common::init_tracing();
    let broker = EmbeddedBroker::start(any_port()).expect("broker starts");
    let addr = broker.local_addr();
    assert_ne!(addr.port(), 0);
    assert!(broker.is_running());
    assert_eq!(broker.url(), format!("mqtt://{addr}"));
    TcpStream::connect(addr).expect("broker port accepts TCP");
    broker.stop();
}

#[test]
fn occupied_port_is_a_bind_error_not_a_silent_success() {
    common::init_tracing();
    let squatter = TcpListener::bind(any_port()).expect("bind squatter");
    let addr = squatter.local_addr().expect("squatter addr");
    match EmbeddedBroker::start(addr) {
        Err(BrokerError::Bind {
            addr: reported,
            source,
        }) => {
            assert_eq!(reported, addr);
            assert_eq!(source.kind(), std::io::ErrorKind::AddrInUse);
        }
        other => panic!("expected BrokerError::Bind, got {other:?}"),
    }
}

#[test]
fn second_broker_on_same_port_is_a_bind_error_with_clear_message() {
    common::init_tracing();
    let first = EmbeddedBroker::start(any_port()).expect("first broker");
    let err = EmbeddedBroker::start(first.local_addr()).expect_err("second broker must fail");
    let msg = err.to_string();
    assert!(matches!(err, BrokerError::Bind { .. }), "{err:?}");
    assert!(msg.contains(&first.local_addr().to_string()), "{msg}");
    assert!(msg.contains("already using this port"), "{msg}");
    assert!(first.is_running());
}

#[test]
fn stop_frees_the_port_for_a_new_broker() {
    common::init_tracing();
    let first = EmbeddedBroker::start(any_port()).expect("first broker");
    let addr = first.local_addr();
    first.stop();
    assert!(
        TcpStream::connect(addr).is_err(),
        "port still accepting after stop"
    );
    let second = EmbeddedBroker::start(addr).expect("restart on the same port");
    assert_eq!(second.local_addr(), addr);
    TcpStream::connect(addr).expect("restarted broker accepts TCP");
}

#[test]
fn wildcard_address_works_and_reports_its_port() {
    common::init_tracing();
    let broker = EmbeddedBroker::start("0.0.0.0:0".parse().expect("literal"))
        .expect("broker on all interfaces");
    let port = broker.local_addr().port();
    assert_ne!(port, 0);
    TcpStream::connect(("127.0.0.1", port)).expect("reachable through loopback");
}
