//! The `ipckit` command end to end: a round trip for every scheme, stdin and --lines, JSON,
//! interop with cat and socat, signals, and exit codes (0 ok, 1 runtime failure, 2 usage).

mod common;

use std::path::Path;
use std::process::{Command, ExitStatus};

use common::{Proc, RemoveMq, RemoveShm, T, dev_shm, ipckit, tempdir};

/// Runs `ipckit ARGS` with `stdin`, bounded by T: (status, stdout lines, stderr lines, pid).
fn run(args: &[&str], stdin: &[u8]) -> (ExitStatus, Vec<String>, Vec<String>, i32) {
    let mut cmd = ipckit();
    cmd.args(args);
    let r = common::run_with_timeout(cmd, stdin, T);
    (r.status, r.out_lines(), r.err_lines(), r.pid)
}

fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn json(line: &str) -> serde_json::Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

#[test]
fn a_round_trip_for_every_scheme() {
    let dir = tempdir();
    let d = dir.path().display();
    let abs = ipckit::name::unique("cli");
    let port = free_tcp_port();
    // (URI, whether the receiver can name the sending process)
    let cases = [
        (format!("fifo:{d}/fifo"), false),
        (format!("unix:{d}/stream.sock"), true),
        (format!("unix-dgram:{d}/dgram.sock"), true),
        (format!("unix-seqpacket:{d}/seq.sock"), true),
        (format!("abstract:{abs}"), true),
        (format!("tcp:127.0.0.1:{port}"), false),
    ];
    for (uri, knows_peer) in &cases {
        let mut recv = Proc::server(&["recv", uri, "--json", "--count", "1", "--timeout", "20s"]);
        let msg = format!("hello over {uri}");
        let (st, _, err, sender_pid) = run(&["send", uri, &msg], b"");
        assert!(st.success(), "send {uri}: {err:?}");
        let v = json(&recv.out_line());
        assert!(recv.wait().success(), "recv {uri}");
        assert_eq!(v["data"], msg.as_str(), "{uri}");
        assert_eq!(v["bytes"], msg.len(), "{uri}");
        assert!(v.get("base64").is_none(), "{uri}");
        if *knows_peer {
            assert_eq!(v["peer_pid"], sender_pid, "{uri}: peer_pid is the sender");
            assert_eq!(
                v["peer_uid"],
                ipckit::socket::ancillary::Credentials::current().uid,
                "{uri}"
            );
        } else {
            assert!(v["peer_pid"].is_null() && v["peer_uid"].is_null(), "{uri}");
        }
    }
    // Every socket file and FIFO recv made is gone with it.
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "recv removed what it created"
    );
}

#[test]
fn lines_become_messages_and_streams_split_at_newlines() {
    let dir = tempdir();
    let uri = format!("unix-dgram:{}/d.sock", dir.path().display());
    let mut recv = Proc::server(&["recv", &uri, "--count", "3", "--timeout", "20s"]);
    let (st, _, err, _) = run(&["send", "--lines", &uri], b"one\ntwo\nthree\n");
    assert!(st.success(), "{err:?}");
    assert!(recv.wait().success());
    assert_eq!(Proc::rest(&recv.out), ["one", "two", "three"]);

    // A byte stream from stdin: recv without --count reads until the sender closes.
    let uri = format!("unix:{}/s.sock", dir.path().display());
    let mut recv = Proc::server(&["recv", &uri, "--timeout", "20s"]);
    let (st, _, err, _) = run(&["send", &uri], b"alpha\nbeta\nno newline at end");
    assert!(st.success(), "{err:?}");
    assert!(recv.wait().success());
    assert_eq!(
        Proc::rest(&recv.out),
        ["alpha", "beta", "no newline at end"]
    );

    // Several MESSAGE arguments: one message each, or one line each on a byte stream.
    for uri in [
        format!("unix-dgram:{}/d2.sock", dir.path().display()),
        format!("unix:{}/s2.sock", dir.path().display()),
    ] {
        let mut recv = Proc::server(&["recv", &uri, "--count", "3", "--timeout", "20s"]);
        let (st, _, err, _) = run(&["send", &uri, "one", "two words", ""], b"");
        assert!(st.success(), "{uri}: {err:?}");
        assert!(recv.wait().success(), "{uri}");
        assert_eq!(Proc::rest(&recv.out), ["one", "two words", ""], "{uri}");
    }
}

#[test]
fn binary_data_comes_out_as_base64_in_json() {
    let dir = tempdir();
    let uri = format!("unix-seqpacket:{}/q.sock", dir.path().display());
    let mut recv = Proc::server(&["recv", &uri, "--json", "--count", "1", "--timeout", "20s"]);
    let (st, _, err, _) = run(&["send", &uri], &[0xff, 0xfe, 0x00, 0x41]);
    assert!(st.success(), "{err:?}");
    let v = json(&recv.out_line());
    assert!(recv.wait().success());
    assert!(v["data"].is_null());
    assert_eq!(v["base64"], "//4AQQ==");
    assert_eq!(v["bytes"], 4);
}

#[test]
fn cat_reads_what_send_writes_to_a_fifo() {
    let dir = tempdir();
    let fifo = dir.path().join("p");
    let mut mkfifo = Command::new("mkfifo");
    mkfifo.arg(&fifo);
    let made = common::run(mkfifo);
    assert!(made.status.success(), "mkfifo: {}", made.err());
    let mut cat = Command::new("cat");
    cat.arg(&fifo);
    let mut cat = Proc::start(cat);
    let uri = format!("fifo:{}", fifo.display());
    let (st, _, err, _) = run(&["send", &uri, "for cat", "--timeout", "20s"], b"");
    assert!(st.success(), "{err:?}");
    assert_eq!(cat.out_line(), "for cat");
    assert!(cat.wait().success());
    assert!(fifo.exists(), "send never removes a FIFO it did not create");
}

fn socat() -> Option<&'static str> {
    let mut version = Command::new("socat");
    version.arg("-V");
    let found = common::run_if_installed(version).is_some_and(|r| r.status.success());
    if found {
        return Some("socat");
    }
    // .ci/run installs socat; outside CI the test says why it did not run.
    assert!(
        std::env::var_os("CI").is_none(),
        "socat is missing in CI: .ci/run must install it"
    );
    eprintln!("SKIPPED: socat is not installed (apt-get install socat)");
    None
}

#[test]
fn socat_talks_to_listen_and_an_interrupt_cleans_up() {
    let Some(socat) = socat() else { return };
    let dir = tempdir();
    let path = dir.path().join("l.sock");
    let uri = format!("unix:{}", path.display());
    let mut listen = Proc::server(&["listen", &uri, "--json"]);
    for text in ["first peer", "second peer"] {
        let mut s = Command::new(socat);
        s.args(["-", &format!("UNIX-CONNECT:{}", path.display())]);
        let mut s = Proc::start(s);
        s.stdin(format!("{text}\n").as_bytes());
        assert!(s.wait().success());
        let v = json(&listen.out_line());
        assert_eq!(v["data"], text);
        assert_eq!(v["peer_pid"], s.child.id(), "the peer is socat itself");
    }
    ipckit::notify::signal::kill(listen.child.id(), ipckit::notify::signal::SIGINT).unwrap();
    assert!(listen.wait().success(), "listen exits 0 when interrupted");
    assert!(!path.exists(), "the socket file is removed on SIGINT");
    let err = Proc::rest(&listen.err);
    assert!(err.iter().any(|l| l.contains("SIGINT received")), "{err:?}");
}

#[test]
fn an_interrupted_recv_fails_but_still_removes_its_fifo() {
    let dir = tempdir();
    let path = dir.path().join("f");
    let uri = format!("fifo:{}", path.display());
    let mut recv = Proc::server(&["recv", &uri]);
    assert!(path.exists());
    ipckit::notify::signal::kill(recv.child.id(), ipckit::notify::signal::SIGTERM).unwrap();
    assert_eq!(recv.wait().code(), Some(1));
    assert!(
        !path.exists(),
        "the FIFO recv created is removed on SIGTERM"
    );
    let err = Proc::rest(&recv.err);
    assert!(
        err.iter().any(|l| l.contains("interrupted by SIGTERM")),
        "{err:?}"
    );
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["send"][..],
        &["send", "bogus:x", "hi"],
        &["send", "tcp:127.0.0.1", "hi"],
        &["recv", "unix:/tmp/x", "--timeout", "banana"],
        &["recv", "unix:/tmp/x", "--count", "0"],
        &["recv", "unix:/tmp/x", "--mode", "999"],
        // "/." and "/.." name /dev/shm and /dev itself, not an object.
        &["send", "shm:/..", "x"],
        &["send", "mq:/.", "x"],
        &["recv", "channel:/.."],
        &["frobnicate"],
    ] {
        let (st, _, err, _) = run(args, b"");
        assert_eq!(st.code(), Some(2), "{args:?}: {err:?}");
        assert!(
            !err.is_empty() && !err.iter().any(|l| l.contains("panicked")),
            "{args:?}: {err:?}"
        );
    }
}

#[test]
fn runtime_errors_exit_1_with_one_clear_line() {
    let dir = tempdir();
    let missing = format!("unix:{}/nobody.sock", dir.path().display());
    let cases: [(&[&str], &str); 4] = [
        (&["send", &missing, "hi"], "start the listener first"),
        (&["send", "tcp:192.0.2.1:9", "hi"], "--allow-remote"),
        (
            &["recv", &missing, "--timeout", "100ms"],
            "timed out after 100ms",
        ),
        (
            &[
                "send",
                &format!("fifo:{}/nofifo", dir.path().display()),
                "x",
            ],
            "mkfifo",
        ),
    ];
    for (args, says) in cases {
        let (st, out, err, _) = run(args, b"");
        assert_eq!(st.code(), Some(1), "{args:?}: {err:?}");
        assert!(out.is_empty(), "{args:?}: {out:?}");
        assert_eq!(
            err.len() - usize::from(err[0].contains(" on ")),
            1,
            "{args:?}: one error line: {err:?}"
        );
        let last = err.last().unwrap();
        assert!(
            last.starts_with("ipckit: ") && last.contains(says),
            "{args:?}: {last}"
        );
    }
    assert!(
        !Path::new(&missing[5..]).exists(),
        "the timed-out recv removed its socket"
    );
}

#[test]
fn control_characters_in_an_error_line_are_escaped() {
    // A name with a terminal escape (set the window title, then red) and a forged second line.
    let dir = tempdir();
    let evil = format!(
        "unix:{}/a\x1b]0;owned\x07\x1b[31m\nipckit: all good",
        dir.path().display()
    );
    let out = common::ipckit_run(&["send", &evil, "hi"]);
    assert_eq!(out.status.code(), Some(1), "{}", out.err());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(!err.contains('\x1b') && !err.contains('\x07'), "{err:?}");
    assert_eq!(err.lines().count(), 1, "no forged second line: {err:?}");
    assert!(err.contains("\\u{1b}]0;owned\\u{7}"), "{err:?}");
}

#[test]
fn an_empty_seqpacket_message_is_refused_not_sent() {
    let dir = tempdir();
    let uri = format!("unix-seqpacket:{}/q.sock", dir.path().display());
    // On the command line: a usage error, before any connect.
    let (st, _, err, _) = run(&["send", &uri, ""], b"");
    assert_eq!(st.code(), Some(2), "{err:?}");
    assert!(err[0].contains("end of stream"), "{err:?}");
    // From standard input: refused when it comes, after the lines before it went.
    let mut recv = Proc::server(&["recv", &uri, "--json", "--timeout", "20s"]);
    let (st, _, err, _) = run(&["send", "--lines", &uri], b"one\n\nthree\n");
    assert_eq!(st.code(), Some(1), "{err:?}");
    assert!(
        err[0].contains("line 2 of standard input is empty") && err[0].contains("1 messages sent"),
        "{err:?}"
    );
    assert_eq!(json(&recv.out_line())["data"], "one");
    assert!(recv.wait().success());
}

#[test]
fn a_flag_that_does_not_apply_to_the_endpoint_is_a_usage_error() {
    let dir = tempdir();
    let sock = format!("unix:{}/nobody.sock", dir.path().display());
    let sysv = format!("sysv-mq:{}", test_key(7));
    let cases: [(&[&str], &str); 12] = [
        (&["send", &sock, "x", "--priority", "3"], "--priority"),
        (&["send", &sock, "x", "--type", "2"], "--type"),
        (&["send", &sock, "x", "--offset", "2"], "--offset"),
        (&["send", &sock, "x", "--create"], "--create"),
        (
            &["send", "mq:/cli-no-such-q", "x", "--mode", "644"],
            "--mode",
        ),
        (
            &["send", "shm:/cli-no-such-s", "x", "--size", "64"],
            "--size",
        ),
        (&["send", &sock, "x", "--allow-remote"], "--allow-remote"),
        (&["recv", "mq:/cli-no-such-q", "--type", "3"], "--type"),
        // The queue does not exist: the --type is refused first, as a usage error.
        (&["recv", &sysv, "--type", "-3", "--except"], "--except"),
        (
            &["recv", &sysv, "--type=-9223372036854775808"],
            "no positive bound",
        ),
        (&["recv", &sock, "--len", "3"], "--len"),
        (&["recv", "mq:/cli-no-such-q", "--mode", "644"], "--mode"),
    ];
    for (args, says) in cases {
        let (st, _, err, _) = run(args, b"");
        assert_eq!(st.code(), Some(2), "{args:?}: {err:?}");
        assert_eq!(err.len(), 1, "{args:?}: one line: {err:?}");
        assert!(err[0].contains(says), "{args:?}: {err:?}");
    }
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "nothing was made"
    );
}

#[test]
fn out_of_range_semaphore_and_scenario_arguments_are_usage_errors() {
    let key = test_key(8);
    for args in [
        &[
            "sem",
            "create",
            &format!("sysv-sem:{key}#3"),
            "--nsems",
            "2",
        ][..],
        &[
            "sem",
            "create",
            &format!("sysv-sem:{key}"),
            "--value",
            "40000",
        ],
        &[
            "sem",
            "create",
            "sem:/cli-no-such-sem",
            "--value",
            "4294967295",
        ],
        &["lab", "no-such-scenario"],
    ] {
        let (st, _, err, _) = run(args, b"");
        assert_eq!(st.code(), Some(2), "{args:?}: {err:?}");
    }
    // Refused before anything was made.
    assert!(
        ipckit::sync::sem_sysv::SysvSemSet::open(key.parse().unwrap(), ipckit::Access::ReadWrite)
            .is_err(),
        "no set was created for key {key}"
    );
}

#[test]
fn listen_serves_writer_after_writer() {
    let dir = tempdir();
    let d = dir.path().display();
    // A FIFO is reopened after each writer leaves; sockets accept one peer after another.
    for uri in [
        format!("fifo:{d}/f"),
        format!("unix-seqpacket:{d}/q.sock"),
        format!("unix-dgram:{d}/d.sock"),
    ] {
        let mut listen = Proc::server(&["listen", &uri]);
        for text in ["first", "second"] {
            let (st, _, err, _) = run(&["send", &uri, text, "--timeout", "20s"], b"");
            assert!(st.success(), "{uri}: {err:?}");
            assert_eq!(listen.out_line(), text, "{uri}");
        }
        ipckit::notify::signal::kill(listen.child.id(), ipckit::notify::signal::SIGTERM).unwrap();
        assert!(listen.wait().success(), "{uri}");
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "listen removed what it created"
    );
}

#[test]
fn the_timeout_holds_while_a_peer_keeps_sending() {
    let dir = tempdir();
    let uri = format!("unix:{}/busy.sock", dir.path().display());
    let mut recv = Proc::server(&["recv", &uri, "--count", "1000000000", "--timeout", "300ms"]);
    // `yes` writes lines for ever; recv must still stop at its deadline.
    let mut yes = Command::new("sh");
    yes.args([
        "-c",
        &format!("yes | {} send {uri}", env!("CARGO_BIN_EXE_ipckit")),
    ]);
    let _yes = Proc::start(yes);
    assert_eq!(recv.wait().code(), Some(1));
    let err = Proc::rest(&recv.err);
    assert!(
        err.iter().any(|l| l.contains("timed out after 300ms")),
        "{err:?}"
    );
}

#[test]
fn tcp_port_zero_reports_the_port_chosen() {
    let mut cmd = ipckit();
    cmd.args([
        "recv",
        "tcp:127.0.0.1:0",
        "--count",
        "1",
        "--timeout",
        "20s",
    ]);
    let mut p = Proc::start(cmd);
    let ready = p.err.recv_timeout(T).unwrap();
    let port = ready.rsplit(':').next().unwrap();
    assert_ne!(port, "0", "{ready}");
    let (st, _, err, _) = run(&["send", &format!("tcp:127.0.0.1:{port}"), "hi"], b"");
    assert!(st.success(), "{err:?}");
    assert_eq!(p.out_line(), "hi");
    assert!(p.wait().success());
}

/// Removes a System V queue when dropped, so a failing test leaves nothing behind.
struct RemoveQueue(ipckit::mq::sysv::SysvMq);

impl Drop for RemoveQueue {
    fn drop(&mut self) {
        let id = self.0.id();
        if let Ok(q) = ipckit::mq::sysv::SysvMq::open_id(id, ipckit::Access::ReadOnly) {
            let _ = q.remove();
        }
    }
}

/// A System V key unique to this test process and `salt`.
fn test_key(salt: i32) -> String {
    format!(
        "0x{:08x}",
        0x2c00_0000 | (salt << 16) | (std::process::id() as i32 & 0xffff)
    )
}

#[test]
fn posix_queue_round_trip_with_priorities_and_rm() {
    let name = ipckit::name::unique_posix("cli-mq");
    let uri = format!("mq:{name}");
    let (st, _, err, _) = run(&["send", &uri, "no queue yet"], b"");
    assert_eq!(st.code(), Some(1), "{err:?}");
    assert!(
        err[0].contains("ENOENT") && err[0].contains("--create"),
        "{err:?}"
    );
    // From here a failing assertion still removes the queue.
    let _cleanup = RemoveMq(name.clone());
    for (msg, prio) in [("low", "1"), ("high", "20")] {
        let (st, _, err, _) = run(&["send", &uri, msg, "--create", "--priority", prio], b"");
        assert!(st.success(), "{err:?}");
    }
    let (st, out, err, _) = run(
        &["recv", &uri, "--count", "2", "--json", "--timeout", "20s"],
        b"",
    );
    assert!(st.success(), "{err:?}");
    let got: Vec<_> = out.iter().map(|l| json(l)).collect();
    assert_eq!(
        (got[0]["data"].as_str(), got[0]["priority"].as_u64()),
        (Some("high"), Some(20))
    );
    assert_eq!(
        (got[1]["data"].as_str(), got[1]["priority"].as_u64()),
        (Some("low"), Some(1))
    );
    let (st, _, err, _) = run(&["recv", &uri, "--timeout", "100ms"], b"");
    assert_eq!(st.code(), Some(1));
    assert!(err[0].contains("timed out after 100ms"), "{err:?}");
    assert!(run(&["rm", &uri], b"").0.success());
    let (st, _, _, _) = run(&["rm", &uri], b"");
    assert_eq!(st.code(), Some(1), "already removed");
}

#[test]
fn sysv_queue_types_filters_and_lines() {
    let key = test_key(1);
    let uri = format!("sysv-mq:{key}");
    let (st, _, err, _) = run(
        &["send", &uri, "--create", "--type", "4", "--lines"],
        b"four-a\nfour-b\n",
    );
    assert!(st.success(), "{err:?}");
    let _cleanup = RemoveQueue(
        ipckit::mq::sysv::SysvMq::open(key.parse().unwrap(), ipckit::Access::ReadOnly).unwrap(),
    );
    assert!(run(&["send", &uri, "two", "--type", "2"], b"").0.success());
    let recv = |args: &[&str]| {
        let mut all = vec!["recv", uri.as_str(), "--json", "--timeout", "20s"];
        all.extend_from_slice(args);
        let (st, out, err, _) = run(&all, b"");
        assert!(st.success(), "{args:?}: {err:?}");
        let v = json(&out[0]);
        (
            v["type"].as_i64().unwrap(),
            v["data"].as_str().unwrap().to_string(),
        )
    };
    assert_eq!(
        recv(&["--type", "-3"]),
        (2, "two".into()),
        "lowest type up to 3"
    );
    assert_eq!(
        recv(&["--type", "5", "--except"]),
        (4, "four-a".into()),
        "any type but 5"
    );
    assert_eq!(recv(&["--type", "4"]), (4, "four-b".into()));
    assert!(run(&["rm", &uri], b"").0.success());
    assert!(
        ipckit::mq::sysv::SysvMq::open(key.parse().unwrap(), ipckit::Access::ReadOnly).is_err(),
        "rm removed it"
    );
}

#[test]
fn a_queue_made_by_ipcmk_receives_ipckit_send() {
    let mut ipcmk = Command::new("ipcmk");
    ipcmk.args(["-Q", "-p", "0600"]);
    let made = common::run(ipcmk);
    assert!(made.status.success(), "ipcmk (util-linux): {}", made.err());
    let text = made.out();
    let id: i32 = text.trim().rsplit(' ').next().unwrap().parse().unwrap();
    // Removed whatever happens from here.
    let q = RemoveQueue(ipckit::mq::sysv::SysvMq::open_id(id, ipckit::Access::ReadOnly).unwrap());
    // ipcmk chooses a random key; /proc/sysvipc/msg says which.
    let table = std::fs::read_to_string("/proc/sysvipc/msg").unwrap();
    let key: i32 = table
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f[1].parse() == Ok(id))
        .map(|f| f[0].parse().unwrap())
        .expect("the queue ipcmk made");
    let uri = format!("sysv-mq:{key}");
    let (st, _, err, _) = run(&["send", &uri, "to ipcmk's queue"], b"");
    assert!(st.success(), "{err:?}");
    let mut buf = [0u8; 64];
    let m =
        q.0.try_recv(&mut buf, ipckit::mq::sysv::TypeFilter::Any, false)
            .unwrap()
            .unwrap();
    assert_eq!(&buf[..m.len], b"to ipcmk's queue");
}

#[test]
fn posix_shared_memory_send_recv_offsets_and_rm() {
    let name = ipckit::name::unique_posix("cli-shm");
    let uri = format!("shm:{name}");
    let (st, _, err, _) = run(&["recv", &uri], b"");
    assert_eq!(st.code(), Some(1), "recv never creates: {err:?}");
    let (st, _, err, _) = run(&["send", &uri, "hello shm", "--create"], b"");
    assert!(st.success(), "{err:?}");
    // From here a failing assertion still removes the object.
    let _cleanup = RemoveShm(name.clone());
    assert!(run(&["send", &uri, "XY", "--offset", "6"], b"").0.success());
    let (_, out, _, _) = run(&["recv", &uri, "--json"], b"");
    assert_eq!(json(&out[0])["data"], "hello XYm", "up to the first NUL");
    let (_, out, _, _) = run(&["recv", &uri, "--offset", "6", "--len", "2"], b"");
    assert_eq!(out, ["XY"]);
    let (st, _, err, _) = run(&["recv", &uri, "--offset", "4090", "--len", "10"], b"");
    assert_eq!(st.code(), Some(1));
    assert!(err[0].contains("past its end"), "{err:?}");
    assert!(run(&["rm", &uri], b"").0.success());
    assert!(!std::path::Path::new(&format!("/dev/shm{name}")).exists());
}

#[test]
fn a_channel_carries_each_message_inline_or_bulk_from_its_senders() {
    let name = ipckit::name::unique_posix("cli-ch");
    let uri = format!("channel:{name}");
    // Whatever happens below, nothing stays in /dev/shm.
    let _cleanup = RemoveShm(name.clone());
    // Around the slot's 4080 bytes: the largest inline message, and two bulk ones.
    let (fits, over, large) = ("a".repeat(4080), "b".repeat(4081), "c".repeat(70_000));
    let sent = [
        "hello",
        "",
        fits.as_str(),
        over.as_str(),
        large.as_str(),
        "bye",
    ];

    // Without --count, recv prints until its sender closes.
    let mut recv = Proc::server(&["recv", &uri, "--timeout", "20s"]);
    let meta = std::fs::metadata(dev_shm(&name)).expect("recv created the channel");
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
        0o600
    );
    let mut args = vec!["send", uri.as_str()];
    args.extend_from_slice(&sent);
    let (st, _, err, _) = run(&args, b"");
    assert!(st.success(), "{err:?}");
    assert!(recv.wait().success(), "recv ends when its sender closes");
    let got = Proc::rest(&recv.out);
    assert_eq!(got.len(), sent.len(), "{:?}", Proc::rest(&recv.err));
    for (g, s) in got.iter().zip(sent) {
        assert!(g == s, "{} bytes came as {} bytes", s.len(), g.len());
    }
    assert!(!dev_shm(&name).exists(), "recv removed its channel");

    // With --count, recv waits for further senders: standard input (one message, then one
    // per line), then arguments.
    let mut recv = Proc::server(&["recv", &uri, "--count", "5", "--json", "--timeout", "20s"]);
    let (st, _, err, _) = run(&["send", &uri], large.as_bytes());
    assert!(st.success(), "{err:?}");
    let (st, _, err, _) = run(&["send", "--lines", &uri], b"line one\nline two\n");
    assert!(st.success(), "{err:?}");
    let (st, _, err, _) = run(&["send", &uri, "third sender", &over], b"");
    assert!(st.success(), "{err:?}");
    assert!(recv.wait().success());
    let got: Vec<_> = Proc::rest(&recv.out).iter().map(|l| json(l)).collect();
    let data: Vec<&str> = got.iter().map(|v| v["data"].as_str().unwrap()).collect();
    assert_eq!(
        data,
        [
            large.as_str(),
            "line one",
            "line two",
            "third sender",
            over.as_str()
        ]
    );
    assert_eq!(got[0]["bytes"], 70_000);
    assert!(
        got[0]["peer_pid"].is_null(),
        "a channel cannot name its sender"
    );
    assert!(!dev_shm(&name).exists(), "recv removed its channel");
}

#[test]
fn send_to_a_channel_with_no_receiver_fails_at_once() {
    let name = ipckit::name::unique_posix("cli-ch-none");
    let uri = format!("channel:{name}");
    let _cleanup = RemoveShm(name.clone());
    let (st, out, err, _) = run(&["send", &uri, "anyone?"], b"");
    assert_eq!(st.code(), Some(1), "{err:?}");
    assert!(out.is_empty());
    assert_eq!(err.len(), 1, "one line: {err:?}");
    assert!(
        err[0].starts_with("ipckit: ")
            && err[0].contains(&format!("no receiver: start `ipckit recv {uri}` first")),
        "{err:?}"
    );
    assert!(!dev_shm(&name).exists(), "send never creates a channel");
    // With --timeout, send waits that long for a receiver, then says none came.
    let (st, _, err, _) = run(&["send", "--timeout", "100ms", &uri, "anyone?"], b"");
    assert_eq!(st.code(), Some(1), "{err:?}");
    assert!(err[0].contains("none came within 100ms"), "{err:?}");

    // A recv that times out removes its channel too.
    let (st, _, err, _) = run(&["recv", &uri, "--timeout", "100ms"], b"");
    assert_eq!(st.code(), Some(1));
    assert!(
        err.last().unwrap().contains("timed out after 100ms"),
        "{err:?}"
    );
    assert!(!dev_shm(&name).exists());
}

#[test]
fn an_interrupted_channel_recv_removes_its_channel() {
    use ipckit::notify::signal::{SIGINT, SIGTERM, kill};
    let name = ipckit::name::unique_posix("cli-ch-int");
    let uri = format!("channel:{name}");
    let _cleanup = RemoveShm(name.clone());
    for (sig, says) in [
        (SIGTERM, "interrupted by SIGTERM"),
        (SIGINT, "interrupted by SIGINT"),
    ] {
        let mut recv = Proc::server(&["recv", &uri, "--count", "2"]);
        let (st, _, err, _) = run(&["send", &uri, "one of two"], b"");
        assert!(st.success(), "{err:?}");
        assert_eq!(recv.out_line(), "one of two");
        assert!(dev_shm(&name).exists());
        kill(recv.child.id(), sig).unwrap();
        assert_eq!(recv.wait().code(), Some(1), "{says}");
        let err = Proc::rest(&recv.err);
        assert!(err.iter().any(|l| l.contains(says)), "{err:?}");
        assert!(!dev_shm(&name).exists(), "removed on {says}");
    }
    // listen takes every sender's messages, and a SIGINT is its normal end.
    let mut listen = Proc::server(&["listen", &uri]);
    for text in ["first sender", "second sender"] {
        assert!(run(&["send", &uri, text], b"").0.success());
        assert_eq!(listen.out_line(), text);
    }
    kill(listen.child.id(), SIGINT).unwrap();
    assert!(listen.wait().success(), "listen exits 0 when interrupted");
    assert!(!dev_shm(&name).exists(), "listen removed its channel");
}

#[test]
fn a_channel_left_by_a_killed_receiver_is_named_and_removable() {
    let name = ipckit::name::unique_posix("cli-ch-kill");
    let uri = format!("channel:{name}");
    let _cleanup = RemoveShm(name.clone());
    let mut recv = Proc::server(&["recv", &uri]);
    ipckit::notify::signal::kill(recv.child.id(), ipckit::notify::signal::SIGKILL).unwrap();
    recv.wait();
    assert!(dev_shm(&name).exists(), "SIGKILL cannot be caught");
    let (st, _, err, _) = run(&["send", &uri, "hi"], b"");
    assert_eq!(st.code(), Some(1));
    assert!(
        err[0].contains("no receiver") && err[0].contains(&format!("ipckit rm {uri}")),
        "{err:?}"
    );
    let (st, _, err, _) = run(&["recv", &uri, "--timeout", "20s"], b"");
    assert_eq!(st.code(), Some(1), "{err:?}");
    assert!(
        err[0].contains("already exists") && err[0].contains(&format!("ipckit rm {uri}")),
        "{err:?}"
    );
    let (st, _, err, _) = run(&["rm", &uri], b"");
    assert!(st.success(), "{err:?}");
    assert!(!dev_shm(&name).exists());
}

#[test]
fn a_bad_channel_name_is_a_usage_error() {
    for (uri, says) in [
        ("channel:nope", "must start with /"),
        ("channel:/a/b", "no / after the first"),
        ("channel:/", "nothing after the /"),
    ] {
        for args in [&["recv", uri][..], &["send", uri, "x"]] {
            let (st, _, err, _) = run(args, b"");
            assert_eq!(st.code(), Some(2), "{args:?}: {err:?}");
            let err = err.join("\n");
            assert!(err.contains(uri) && err.contains(says), "{args:?}: {err}");
        }
    }
    // A channel takes --mode like every named object, applied exactly.
    let name = ipckit::name::unique_posix("cli-ch-mode");
    let uri = format!("channel:{name}");
    let _cleanup = RemoveShm(name.clone());
    let mut recv = Proc::server(&["recv", &uri, "--mode", "640", "--timeout", "20s"]);
    let meta = std::fs::metadata(dev_shm(&name)).expect("recv created the channel");
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777,
        0o640
    );
    assert!(run(&["send", &uri, "x"], b"").0.success());
    assert!(recv.wait().success());
    assert!(!dev_shm(&name).exists());
}

#[test]
fn a_segment_made_by_a_c_program_is_readable_by_recv() {
    let dir = tempdir();
    let src = dir.path().join("maker.c");
    let key = test_key(2);
    std::fs::write(
        &src,
        format!(
            r#"#include <stdio.h>
#include <string.h>
#include <sys/shm.h>
int main(void) {{
    int id = shmget({key}, 4096, IPC_CREAT | IPC_EXCL | 0600);
    if (id < 0) {{ perror("shmget"); return 1; }}
    char *p = shmat(id, 0, 0);
    if (p == (void *)-1) {{ perror("shmat"); return 1; }}
    strcpy(p, "written by C");
    shmdt(p);
    printf("%d\n", id);
    return 0;
}}
"#
        ),
    )
    .unwrap();
    let exe = dir.path().join("maker");
    let mut cc = Command::new("cc");
    cc.arg(&src).arg("-o").arg(&exe);
    let cc = common::run(cc);
    assert!(cc.status.success(), "a C compiler (cc): {}", cc.err());
    // Removed whatever happens from here, even if the program fails after shmget.
    let _cleanup = common::RemoveSegmentByKey(i32::from_str_radix(&key[2..], 16).unwrap());
    let made = common::run(Command::new(&exe));
    assert!(made.status.success(), "{}", made.err());
    let id: i32 = made.out().trim().parse().unwrap();
    assert!(ipckit::shm::sysv::SysvShm::open_id(id, ipckit::Access::ReadOnly).is_ok());
    let (st, out, err, _) = run(&["recv", &format!("sysv-shm:{key}")], b"");
    assert!(st.success(), "{err:?}");
    assert_eq!(out, ["written by C"]);
}

#[test]
fn posix_semaphore_commands() {
    let name = ipckit::name::unique_posix("cli-sem");
    let uri = format!("sem:{name}");
    assert!(
        run(&["sem", "create", &uri, "--value", "1"], b"")
            .0
            .success()
    );
    let _cleanup = RemoveSem(name.clone());
    assert!(
        run(&["sem", "wait", &uri, "--timeout", "20s"], b"")
            .0
            .success()
    );
    let (st, _, err, _) = run(&["sem", "wait", &uri, "--timeout", "100ms"], b"");
    assert_eq!(st.code(), Some(1), "the value is 0: the wait times out");
    assert!(err[0].contains("timed out after 100ms"), "{err:?}");
    assert!(run(&["sem", "post", &uri], b"").0.success());
    let (_, out, _, _) = run(&["sem", "value", &uri, "--json"], b"");
    assert_eq!(json(&out[0])["value"], 1);
    assert!(run(&["sem", "rm", &uri], b"").0.success());
    let (st, _, err, _) = run(&["sem", "value", &uri], b"");
    assert_eq!(st.code(), Some(1));
    assert!(err[0].contains("ENOENT"), "{err:?}");
}

/// Unlinks a POSIX named semaphore when dropped.
struct RemoveSem(String);

impl Drop for RemoveSem {
    fn drop(&mut self) {
        let _ = ipckit::sync::sem_posix::remove(&self.0);
    }
}

#[test]
fn sysv_semaphore_commands_address_one_semaphore_of_a_set() {
    let key = test_key(3);
    let uri = format!("sysv-sem:{key}#1");
    assert!(
        run(
            &["sem", "create", &uri, "--nsems", "2", "--value", "3"],
            b""
        )
        .0
        .success()
    );
    let set =
        ipckit::sync::sem_sysv::SysvSemSet::open(key.parse().unwrap(), ipckit::Access::ReadWrite)
            .unwrap();
    assert_eq!(set.get_all().unwrap(), [0, 3], "only #1 got the value");
    assert!(run(&["sem", "wait", &uri], b"").0.success());
    // The command exits at once: its wait must not be undone at exit (no SEM_UNDO).
    assert_eq!(set.get(1).unwrap(), 2);
    let (st, _, _, _) = run(
        &[
            "sem",
            "wait",
            &format!("sysv-sem:{key}#0"),
            "--timeout",
            "100ms",
        ],
        b"",
    );
    assert_eq!(st.code(), Some(1));
    let (st, _, err, _) = run(&["sem", "value", &format!("sysv-sem:{key}#7")], b"");
    assert_eq!(st.code(), Some(1));
    assert!(err[0].contains("indexes 0 to 1"), "{err:?}");
    assert!(run(&["sem", "rm", &uri], b"").0.success());
    assert!(
        ipckit::sync::sem_sysv::SysvSemSet::open(key.parse().unwrap(), ipckit::Access::ReadWrite)
            .is_err()
    );
    let (st, _, _, _) = run(&["sem", "create", "sem:noslash"], b"");
    assert_eq!(st.code(), Some(2), "a bad URI is a usage error");
}

#[test]
fn kernel_object_edge_cases_fail_cleanly() {
    let name = ipckit::name::unique_posix("cli-edge");
    let uri = format!("shm:{name}");
    // A size too small for offset + message is refused before anything is made.
    let (st, _, err, _) = run(
        &["send", &uri, "twelve bytes", "--create", "--size", "4"],
        b"",
    );
    assert_eq!(st.code(), Some(1));
    assert!(err[0].contains("smaller than"), "{err:?}");
    assert!(
        !std::path::Path::new(&format!("/dev/shm{name}")).exists(),
        "nothing left behind"
    );
    let (st, _, err, _) = run(
        &["send", &uri, "x", "--offset", "18446744073709551615"],
        b"",
    );
    assert_eq!(st.code(), Some(1), "{err:?}");
    assert!(!err.iter().any(|l| l.contains("internal error")), "{err:?}");
    // An empty payload still creates the object.
    assert!(run(&["send", &uri, "", "--create"], b"").0.success());
    let _cleanup = RemoveShm(name.clone());
    let (st, out, _, _) = run(&["recv", &uri], b"");
    assert!(st.success());
    assert_eq!(out, [""]);
    let key = test_key(4);
    let mq = format!("sysv-mq:{key}");
    let (st, _, err, _) = run(&["recv", &mq, "--type=-9223372036854775808"], b"");
    assert_eq!(
        st.code(),
        Some(2),
        "a --type out of range is a usage error: {err:?}"
    );
    assert!(!err.iter().any(|l| l.contains("internal error")), "{err:?}");
}

#[test]
fn bench_writes_the_table_and_both_reports() {
    let dir = tempdir();
    let (json_path, html_path) = (dir.path().join("r.json"), dir.path().join("r.html"));
    let (st, out, err, _) = run(
        &[
            "bench",
            "--only",
            "pipe,posix-mq,ref-memcpy",
            "--sizes",
            "64,64k",
            "--duration",
            "0.05",
            "--no-pin",
            "--json",
            json_path.to_str().unwrap(),
            "--html",
            html_path.to_str().unwrap(),
        ],
        b"",
    );
    assert!(st.success(), "{err:?}");
    let table = out.join("\n");
    assert!(
        table.contains("latency (RTT)") && table.contains("throughput"),
        "{table}"
    );
    assert!(
        table.contains("skipped: over the POSIX queue's message limit"),
        "{table}"
    );
    assert!(
        table.contains("message queues are slower than pipes"),
        "{table}"
    );
    let report = json(&std::fs::read_to_string(&json_path).unwrap());
    assert_eq!(report["version"], 1);
    assert_eq!(report["host"]["pinned"], false);
    let rows = report["runs"].as_array().unwrap();
    // pipe: 2 latency + 2 throughput; posix-mq the same (one skipped); ref-memcpy: 2.
    assert_eq!(rows.len(), 10);
    assert!(
        rows.iter()
            .all(|r| r["skipped"].is_string() || r["verified"] == true)
    );
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("<svg"));
}

#[test]
fn bench_usage_errors_exit_2_and_name_the_valid_choices() {
    let (st, _, err, _) = run(&["bench", "--only", "pipe,carrier-pigeon"], b"");
    assert_eq!(st.code(), Some(2));
    let err = err.join("\n");
    assert!(
        err.contains("carrier-pigeon") && err.contains("unix-seqpacket"),
        "{err}"
    );
    let (st, _, err, _) = run(&["bench", "--sizes", "64,lots"], b"");
    assert_eq!(st.code(), Some(2), "{err:?}");
    let (st, _, _, _) = run(&["bench", "--duration", "-1"], b"");
    assert_eq!(st.code(), Some(2));
    let (st, _, _, _) = run(&["bench", "--quick", "--full"], b"");
    assert_eq!(st.code(), Some(2));
}

#[test]
fn completions_for_bash_zsh_and_fish_cover_every_subcommand() {
    let dir = tempdir();
    for shell in ["bash", "zsh", "fish"] {
        let (st, out, err, _) = run(&["completions", shell], b"");
        assert!(st.success(), "{shell}: {err:?}");
        let script = out.join("\n");
        for sub in [
            "bench",
            "send",
            "recv",
            "ls",
            "rm",
            "gc",
            "sem",
            "completions",
            "man",
        ] {
            assert!(script.contains(sub), "{shell} completions lack {sub}");
        }
        assert!(script.contains("older-than"), "{shell}: no flags");
        if shell == "bash" {
            // bash itself accepts the script.
            let path = dir.path().join("ipckit.bash");
            std::fs::write(&path, &script).unwrap();
            let mut bash = Command::new("bash");
            bash.arg("-n").arg(&path);
            let check = common::run(bash);
            assert!(check.status.success(), "{}", check.err());
        }
    }
    let (st, _, _, _) = run(&["completions", "tcsh"], b"");
    assert_eq!(st.code(), Some(2), "an unknown shell is a usage error");
}

#[test]
fn man_prints_roff_and_writes_a_page_per_subcommand() {
    let (st, out, err, _) = run(&["man"], b"");
    assert!(st.success(), "{err:?}");
    let page = out.join("\n");
    assert!(page.contains(".TH ipckit 1"), "{page}");
    assert!(
        page.contains(".SH NAME") && page.contains(".SH SUBCOMMANDS"),
        "{page}"
    );
    assert!(page.contains("ipckit\\-ls(1)"), "{page}");

    let (st, out, _, _) = run(&["man", "sem", "wait"], b"");
    assert!(st.success());
    let page = out.join("\n");
    assert!(page.contains(".TH ipckit-sem-wait 1"), "{page}");
    assert!(page.contains("\\-\\-timeout"), "{page}");

    let (st, _, err, _) = run(&["man", "nope"], b"");
    assert_eq!(st.code(), Some(1));
    assert!(err.join("\n").contains("no subcommand 'nope'"), "{err:?}");

    let dir = tempdir();
    let out_dir = dir.path().join("man1");
    let (st, out, err, _) = run(&["man", "--out", out_dir.to_str().unwrap()], b"");
    assert!(st.success(), "{err:?}");
    let mut names: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names.len(), out.len(), "one line per page written: {out:?}");
    for name in [
        "ipckit.1",
        "ipckit-ls.1",
        "ipckit-rm.1",
        "ipckit-man.1",
        "ipckit-sem-wait.1",
    ] {
        assert!(names.iter().any(|n| n == name), "{name} not in {names:?}");
    }
    for name in &names {
        let text = std::fs::read_to_string(out_dir.join(name)).unwrap();
        let title = format!(".TH {} 1", name.trim_end_matches(".1"));
        assert!(text.contains(&title), "{name}: {text}");
    }

    // A page is never written through a symlink.
    let target = dir.path().join("elsewhere");
    std::fs::remove_file(out_dir.join("ipckit-ls.1")).unwrap();
    std::os::unix::fs::symlink(&target, out_dir.join("ipckit-ls.1")).unwrap();
    let (st, _, err, _) = run(&["man", "ls", "--out", out_dir.to_str().unwrap()], b"");
    assert_eq!(st.code(), Some(1), "{err:?}");
    assert!(!target.exists());
}
