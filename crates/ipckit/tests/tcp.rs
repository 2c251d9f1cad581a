//! TCP loopback helpers: Nagle off, remote addresses refused unless asked for.

mod common;

use std::io::Write;

use common::say;
use ipckit::ErrorKind;
use ipckit::socket::tcp;

#[test]
fn child() {
    let Some(role) = common::role() else { return };
    match role.as_str() {
        "client" => {
            let mut c = tcp::connect(&common::arg("ADDR"), false).unwrap();
            assert!(c.nodelay().unwrap());
            c.write_all(b"over loopback").unwrap();
            say("sent");
        }
        other => panic!("unknown role {other}"),
    }
}

#[test]
fn a_loopback_round_trip_between_processes() {
    let l = tcp::listen("127.0.0.1:0", false).unwrap();
    let addr = l.local_addr().unwrap();
    let mut child = common::child("child", "client").arg("ADDR", addr).start();
    let mut s = common::accept_tcp(&l);
    assert_eq!(child.line(), "sent");
    assert_eq!(common::read_to_eof(&mut s), b"over loopback");
    child.success();
}

#[test]
fn remote_addresses_need_to_be_allowed() {
    // Nothing is sent: the address is refused before any connect.
    let err = tcp::connect("192.0.2.1:9", false).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("--allow-remote"), "{err}");
    assert!(tcp::listen("0.0.0.0:0", false).is_err());
    assert!(tcp::resolve("[::1]:80", false).is_ok());
    // A name other than localhost is refused before any DNS query is made.
    let err = tcp::resolve("example.invalid:80", false).unwrap_err();
    assert!(
        err.to_string()
            .contains("is a name, not a loopback address"),
        "{err}"
    );
    assert!(tcp::resolve("localhost:80", false).is_ok());
}

#[test]
fn timed_connects_fail_with_timed_out_or_connect() {
    let l = tcp::listen("127.0.0.1:0", false).unwrap();
    let addr = l.local_addr().unwrap().to_string();
    // A deadline already passed: no attempt, a TimedOut error naming the address.
    let err = tcp::connect_deadline(&addr, false, ipckit::Deadline::now()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    assert!(err.to_string().contains(&addr), "{err}");
    // A listener there: the timed forms connect, with Nagle off.
    let c = tcp::connect_timeout(&addr, false, common::T).unwrap();
    assert!(c.nodelay().unwrap());
    let c = tcp::connect_deadline(&addr, false, ipckit::Deadline::after(common::T)).unwrap();
    assert!(c.nodelay().unwrap());
}
