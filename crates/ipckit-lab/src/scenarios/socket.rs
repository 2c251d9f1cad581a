//! Unix domain sockets, live: what a byte stream does to message boundaries (and what
//! seqpacket and datagram sockets keep), handing an open file to another process with
//! `SCM_RIGHTS`, the kernel vouching for who is at the other end (`SO_PEERCRED`,
//! `SCM_CREDENTIALS`), and the socket file a killed server leaves behind, which only a refused
//! connect proves stale and which must never be taken from a live server.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};

use ipckit::socket::ancillary::{self, Credentials};
use ipckit::socket::unix::{
    BindOptions, UnixAddr, UnixDatagram, UnixListener, UnixSeqpacket, UnixStream,
};
use ipckit::transport::{MessageTransport, TimedRead};

use crate::child::{self, Args, Child, Role, T};
use crate::{Lab, Result, Scenario, Verdict, errno_of};

pub(crate) const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "message-boundaries",
        lesson: "a stream socket is a byte stream: two writes can arrive as one read; seqpacket and datagram sockets keep each send a message",
        run: message_boundaries,
    },
    Scenario {
        name: "fd-passing",
        lesson: "SCM_RIGHTS hands another process an open file it could not open itself: a new number there, the same open file",
        run: fd_passing,
    },
    Scenario {
        name: "peer-credentials",
        lesson: "the kernel tells a server who connected (SO_PEERCRED, recorded at connect) and who sent each message (SCM_CREDENTIALS)",
        run: peer_credentials,
    },
    Scenario {
        name: "stale-socket",
        lesson: "a killed server leaves its socket file: bind fails with EADDRINUSE until a refused connect proves it stale; a live one is never taken over",
        run: stale_socket,
    },
];

pub(crate) const ROLES: &[Role] = &[
    ("socket-two-sends", two_sends),
    ("socket-fd-receiver", fd_receiver),
    ("socket-cred-client", cred_client),
    ("socket-stale-server", stale_server),
    ("socket-second-server", second_server),
];

/// A private directory under the system temp dir, removed with everything in it on drop (even
/// a socket file a killed child left there).
struct TempDir(PathBuf);

impl TempDir {
    /// A new directory under a fresh name, made 0700 by the mkdir itself (no moment where
    /// another user could add a name to it); one already there is an error, never reused.
    fn new(lab: &mut Lab) -> Result<TempDir> {
        let path = std::env::temp_dir().join(ipckit::name::unique("lab-socket"));
        std::fs::DirBuilder::new().mode(0o700).create(&path)?;
        let dir = TempDir(path);
        // Exactly 0700 whatever the umask took away (it can only have narrowed it).
        std::fs::set_permissions(&dir.0, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
        lab.say("parent", format!("mkdir {} (0700)", dir.0.display()));
        Ok(dir)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Child side: the descriptor the parent placed at 3 (`Spawn::fd(.., 3)`).
fn inherited_fd3() -> crate::Result<OwnedFd> {
    crate::child::take_fd(3)
}

fn show(bytes: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(bytes))
}

// ---------------------------------------------------------------------------------------------
// message-boundaries

fn message_boundaries(lab: &mut Lab) -> Result<Verdict> {
    // Stream: both writes are in the socket before the parent reads; one read takes all.
    let (mine, theirs) = UnixStream::pair()?;
    let mut c = start_two_sends(lab, "stream", theirs.as_fd())?;
    drop(theirs);
    let mut stream = mine;
    let mut buf = [0u8; 64];
    lab.say("parent", "one read, room for 64 bytes");
    let n = stream
        .read_timeout(&mut buf, T)?
        .ok_or("the stream read timed out")?;
    let stream_read = buf[..n].to_vec();
    lab.kernel(format!("read -> {n} bytes {}", show(&stream_read)));
    finish(&mut c)?;

    // Seqpacket and datagram: the same two sends are two messages.
    let (mine, theirs) = UnixSeqpacket::pair()?;
    let mut c = start_two_sends(lab, "seqpacket", theirs.as_fd())?;
    drop(theirs);
    let seq = recv_two(lab, mine)?;
    finish(&mut c)?;

    let (mine, theirs) = UnixDatagram::pair()?;
    let mut c = start_two_sends(lab, "datagram", theirs.as_fd())?;
    drop(theirs);
    let dgram = recv_two(lab, mine)?;
    finish(&mut c)?;

    let two = vec![b"one".to_vec(), b"two".to_vec()];
    let ok = stream_read == b"onetwo" && seq == two && dgram == two;
    let list = |v: &[Vec<u8>]| v.iter().map(|m| show(m)).collect::<Vec<_>>().join(" + ");
    Verdict::check(
        ok,
        format!(
            "stream: one read got {} ({} bytes, the boundary is gone); seqpacket: {}; datagram: {}",
            show(&stream_read),
            stream_read.len(),
            list(&seq),
            list(&dgram)
        ),
    )
}

/// Starts a child that writes "one" and "two" as two sends on `end`, and waits until both are
/// in the socket.
fn start_two_sends(lab: &mut Lab, kind: &str, end: std::os::fd::BorrowedFd<'_>) -> Result<Child> {
    let mut c = child::spawn("socket-two-sends")
        .arg("KIND", kind)
        .fd(end, 3)
        .start()?;
    lab.say(
        "parent",
        format!("socketpair({kind}), one end to child {}", c.pid()),
    );
    let line = c.line()?;
    if line != "sent" {
        return Err(format!("child {}: {line}", c.pid()).into());
    }
    lab.say(
        format!("child {}", c.pid()),
        "send \"one\" (3 bytes), send \"two\" (3 bytes): both sent",
    );
    Ok(c)
}

/// Receives two messages, each within `T`.
fn recv_two(lab: &mut Lab, mut sock: impl MessageTransport) -> Result<Vec<Vec<u8>>> {
    let mut got = Vec::new();
    for _ in 0..2 {
        let mut buf = Vec::new();
        sock.recv_msg_timeout(&mut buf, T)?
            .ok_or("no message within the timeout")?;
        lab.kernel(format!("recv -> {} bytes {}", buf.len(), show(&buf)));
        got.push(buf);
    }
    Ok(got)
}

fn finish(c: &mut Child) -> Result<()> {
    c.tell("done")?;
    c.success()
}

/// Child: two sends on the socket at descriptor 3, then "sent"; exits when told.
fn two_sends(args: &Args) -> Result<()> {
    let fd = inherited_fd3()?;
    match args.get("KIND")?.as_str() {
        "stream" => {
            let mut s = UnixStream::from_fd(fd)?;
            s.write_all(b"one")?;
            s.write_all(b"two")?;
        }
        "seqpacket" => {
            let s = UnixSeqpacket::from_fd(fd)?;
            s.send(b"one")?;
            s.send(b"two")?;
        }
        "datagram" => {
            let s = UnixDatagram::from_fd(fd)?;
            s.send(b"one")?;
            s.send(b"two")?;
        }
        other => return Err(format!("unknown socket kind {other}").into()),
    }
    child::say("sent");
    // Keep the socket open until the parent has read.
    let _ = child::hear();
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// fd-passing

fn fd_passing(lab: &mut Lab) -> Result<Verdict> {
    let dir = TempDir::new(lab)?;
    let path = dir.join("secret.txt");
    let content = format!("written by parent {} before unlink", std::process::id());
    let mut file = File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    file.write_all(content.as_bytes())?;
    file.rewind()?;
    let meta = file.metadata()?;
    let (dev, ino) = (meta.dev(), meta.ino());
    std::fs::remove_file(&path)?;
    lab.say(
        "parent",
        format!(
            "open secret.txt as fd {} (inode {ino}), write {} bytes, rewind, unlink it",
            file.as_raw_fd(),
            content.len()
        ),
    );

    let sock = dir.join("s.sock");
    let listener = UnixListener::bind(&UnixAddr::path(&sock), &BindOptions::default())?;
    let mut c = child::spawn("socket-fd-receiver")
        .arg("SOCK", sock.display())
        .arg("PATH", path.display())
        .start()?;
    let who = format!("child {}", c.pid());
    let open_errno = c.line()?;
    lab.say(
        &who,
        format!("open(secret.txt) -> {open_errno}: it cannot open it"),
    );
    let conn = listener
        .accept_timeout(T)?
        .ok_or("the child did not connect")?;
    lab.say("parent", format!("accept -> a connection from {who}"));
    ancillary::send_fds(&conn, b"F", &[file.as_fd()])?;
    lab.say(
        "parent",
        format!("sendmsg SCM_RIGHTS [fd {}] + 1 byte", file.as_raw_fd()),
    );

    let report = c.line()?;
    let mut parts = report.splitn(4, ' ');
    let mut field = || parts.next().ok_or("short report from the child");
    let (their_fd, their_dev, their_ino): (i32, u64, u64) =
        (field()?.parse()?, field()?.parse()?, field()?.parse()?);
    let their_content = field()?.to_string();
    lab.kernel(format!(
        "recvmsg -> the open file installed as fd {their_fd} in child {}",
        c.pid()
    ));
    lab.say(
        &who,
        format!(
            "fd {their_fd}: inode {their_ino}, read {} bytes {:?}",
            their_content.len(),
            their_content
        ),
    );
    let offset = file.stream_position()?;
    lab.say(
        "parent",
        format!(
            "own fd {}: file offset now {offset} (was 0)",
            file.as_raw_fd()
        ),
    );
    finish(&mut c)?;

    let same_file = (their_dev, their_ino) == (dev, ino);
    let ok = open_errno == "ENOENT"
        && their_content == content
        && same_file
        && offset == content.len() as u64;
    Verdict::check(
        ok,
        format!(
            "the child could not open the unlinked file ({open_errno}) but read its {} bytes through fd {their_fd} \
             (parent's fd {}): {} inode {ino}, and its read moved the parent's offset 0 -> {offset}",
            their_content.len(),
            file.as_raw_fd(),
            if same_file { "same" } else { "NOT the same" },
        ),
    )
}

/// Child: fails to open the path, connects, receives one descriptor and reads through it;
/// reports "FD DEV INO CONTENT".
fn fd_receiver(args: &Args) -> Result<()> {
    match File::open(args.get("PATH")?) {
        Ok(_) => child::say("opened"),
        Err(e) => child::say(errno_of(&e)),
    }
    let sock = UnixStream::connect_timeout(&UnixAddr::path(args.get("SOCK")?), T)?;
    if !ipckit::poll::readable_timeout(&sock, T)? {
        return Err("no descriptor within the timeout".into());
    }
    let mut byte = [0u8; 1];
    let got = ancillary::recv(&sock, &mut byte, 1)?;
    let fd = got.fds.into_iter().next().ok_or("no descriptor arrived")?;
    let raw = fd.as_raw_fd();
    let mut file = File::from(fd);
    let meta = file.metadata()?;
    let mut s = String::new();
    file.read_to_string(&mut s)?;
    child::say(format!("{raw} {} {} {s}", meta.dev(), meta.ino()));
    let _ = child::hear();
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// peer-credentials

fn peer_credentials(lab: &mut Lab) -> Result<Verdict> {
    let dir = TempDir::new(lab)?;
    let sock = dir.join("cred.sock");
    let listener = UnixListener::bind(&UnixAddr::path(&sock), &BindOptions::default())?;
    let me = Credentials::current();
    lab.say(
        "parent",
        format!(
            "listen on cred.sock (pid {} uid {} gid {})",
            me.pid, me.uid, me.gid
        ),
    );
    let mut c = child::spawn("socket-cred-client")
        .arg("SOCK", sock.display())
        .start()?;
    let who = format!("child {}", c.pid());
    let conn = listener
        .accept_timeout(T)?
        .ok_or("the child did not connect")?;
    let said: Vec<i64> = c
        .line()?
        .split(' ')
        .map(str::parse)
        .collect::<std::result::Result<_, _>>()?;
    let [pid, uid, gid, server_pid] = said[..] else {
        return Err("short report from the child".into());
    };
    lab.say(&who, format!("connect; I am pid {pid} uid {uid} gid {gid}"));
    lab.say(
        &who,
        format!("SO_PEERCRED on my end -> pid {server_pid} (the server)"),
    );
    let peer = conn.peer_cred()?;
    lab.kernel(format!(
        "SO_PEERCRED on the accepted socket -> pid {} uid {} gid {}",
        peer.pid, peer.uid, peer.gid
    ));

    ancillary::set_pass_credentials(&conn, true)?;
    lab.say(
        "parent",
        "setsockopt SO_PASSCRED on; tell the child to send",
    );
    c.tell("send")?;
    if c.line()? != "sent" {
        return Err("the child did not send".into());
    }
    lab.say(&who, "sendmsg \"hello\" with SCM_CREDENTIALS");
    if !ipckit::poll::readable_timeout(&conn, T)? {
        return Err("no message within the timeout".into());
    }
    let mut buf = [0u8; 16];
    let got = ancillary::recv(&conn, &mut buf, 0)?;
    let creds = got
        .credentials
        .ok_or("the message carried no credentials")?;
    lab.kernel(format!(
        "recvmsg -> {} with SCM_CREDENTIALS pid {} uid {} gid {}",
        show(&buf[..got.bytes]),
        creds.pid,
        creds.uid,
        creds.gid
    ));
    finish(&mut c)?;

    let child_creds = (c.pid() as i64, uid, gid);
    let as_tuple = |c: Credentials| (c.pid as i64, c.uid as i64, c.gid as i64);
    let ok = pid == c.pid() as i64
        && as_tuple(peer) == child_creds
        && as_tuple(creds) == child_creds
        && server_pid == me.pid as i64;
    Verdict::check(
        ok,
        format!(
            "child {} connected: SO_PEERCRED said pid {} uid {} gid {}, its message's SCM_CREDENTIALS said pid {}; \
             the child's SO_PEERCRED named the server, pid {server_pid}",
            c.pid(),
            peer.pid,
            peer.uid,
            peer.gid,
            creds.pid
        ),
    )
}

/// Child: connects, reports "PID UID GID SERVER_PID", then sends one message with its
/// credentials when told.
fn cred_client(args: &Args) -> Result<()> {
    let sock = UnixStream::connect_timeout(&UnixAddr::path(args.get("SOCK")?), T)?;
    let me = Credentials::current();
    let server = sock.peer_cred()?;
    child::say(format!("{} {} {} {}", me.pid, me.uid, me.gid, server.pid));
    if child::hear().as_deref() != Some("send") {
        return Ok(());
    }
    ancillary::send_credentials(&sock, b"hello")?;
    child::say("sent");
    let _ = child::hear();
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// stale-socket

fn stale_socket(lab: &mut Lab) -> Result<Verdict> {
    let dir = TempDir::new(lab)?;
    let path = dir.join("server.sock");
    let addr = UnixAddr::path(&path);

    let mut server = child::spawn("socket-stale-server")
        .arg("SOCK", path.display())
        .start()?;
    let spid = server.pid();
    if server.line()? != "listening" {
        return Err("the server did not start".into());
    }
    lab.say(
        format!("child {spid}"),
        "bind + listen on server.sock (plain bind: nothing removes the file)",
    );
    let listed_live = listed(&path);
    lab.kernel(format!(
        "/proc/net/unix: {listed_live} socket(s) bound to server.sock"
    ));
    let status = server.kill()?;
    lab.say("parent", format!("kill -9 {spid}; reaped: {status}"));

    // The file outlives its server.
    let old_ino = socket_inode(&path);
    lab.say(
        "parent",
        match old_ino {
            Some(ino) => format!("server.sock is still there: a socket file, inode {ino}"),
            None => "server.sock is gone".to_string(),
        },
    );

    // A plain bind (what std or a C server does) refuses the path.
    let plain = std::os::unix::net::UnixListener::bind(&path);
    let plain_errno = match &plain {
        Ok(_) => "bound".to_string(),
        Err(e) => errno_of(e),
    };
    drop(plain);
    lab.say("parent", "plain bind(server.sock) for a new server");
    lab.kernel(format!("bind -> {plain_errno}"));

    // Nobody is there.
    let connect_errno = match UnixStream::connect_timeout(&addr, T) {
        Ok(_) => "connected".to_string(),
        Err(e) => errno_of(&e),
    };
    lab.kernel(format!("connect(server.sock) -> {connect_errno}"));
    let listed_dead = listed(&path);
    lab.kernel(format!(
        "/proc/net/unix: {listed_dead} socket(s) bound to server.sock"
    ));

    // ipckit's bind proves it stale the same way, removes it, and binds.
    let opts = BindOptions::default();
    lab.say(
        "parent",
        "ipckit bind (take-over of a stale file: on, the default)",
    );
    let ours = UnixListener::bind(&addr, &opts)?;
    let our_socket = std::fs::File::from(ours.as_fd().try_clone_to_owned()?)
        .metadata()?
        .ino();
    let bound_to = listener_at(&path);
    lab.kernel(format!(
        "/proc/net/unix: server.sock -> listening socket {} (mine is {our_socket})",
        bound_to.map_or("none".into(), |i| i.to_string())
    ));

    // A second server must not take over the live one.
    let mut second = child::spawn("socket-second-server")
        .arg("SOCK", path.display())
        .start()?;
    let answer = second.line()?;
    second.success()?;
    let (second_errno, hint) = answer.split_once(' ').unwrap_or((answer.as_str(), ""));
    lab.say(
        format!("child {}", second.pid()),
        format!("ipckit bind(server.sock) -> {second_errno}: {hint}"),
    );
    let after = listener_at(&path);
    let kept = after == Some(our_socket) && socket_inode(&path).is_some();
    lab.kernel(format!(
        "/proc/net/unix: server.sock -> listening socket {}: {}",
        after.map_or("none".into(), |i| i.to_string()),
        if kept { "still mine" } else { "NOT mine" }
    ));
    drop(ours);

    let ok = listed_live == 1
        && status.signal() == Some(libc::SIGKILL)
        && old_ino.is_some()
        && plain_errno == "EADDRINUSE"
        && connect_errno == "ECONNREFUSED"
        && listed_dead == 0
        && bound_to == Some(our_socket)
        && second_errno == "EADDRINUSE"
        && kept;
    Verdict::check(
        ok,
        format!(
            "after kill -9 the file stayed; bind -> {plain_errno}, connect -> {connect_errno}, \
             {listed_dead} bound in /proc/net/unix; ipckit's bind took it over{}; \
             a second server's bind over the live one -> {second_errno}{}",
            if bound_to == Some(our_socket) {
                ""
            } else {
                " (NOT)"
            },
            if kept {
                ", the file left alone"
            } else {
                " and the file was TAKEN"
            },
        ),
    )
}

/// How many sockets the kernel lists as bound to `path` (a listener and any connections it
/// has not yet accepted).
fn listed(path: &Path) -> usize {
    let want = path.to_string_lossy();
    ipckit::host::procfs::read_lossy("/proc/net/unix")
        .map(|t| ipckit::host::procfs::net_unix(&t))
        .unwrap_or_default()
        .iter()
        .filter(|e| e.path.as_deref() == Some(&*want))
        .count()
}

/// The inode of the listening socket (in sockfs, as `fstat` on its descriptor gives it) that
/// the kernel lists as bound to `path`. Connections not yet accepted are listed under the same
/// path, so only the listener counts here.
fn listener_at(path: &Path) -> Option<u64> {
    let want = path.to_string_lossy();
    ipckit::host::procfs::read_lossy("/proc/net/unix")
        .map(|t| ipckit::host::procfs::net_unix(&t))
        .unwrap_or_default()
        .iter()
        .find(|e| e.listening && e.path.as_deref() == Some(&*want))
        .map(|e| e.inode)
}

/// The inode of the socket file at `path`, if a socket file is there.
fn socket_inode(path: &Path) -> Option<u64> {
    std::fs::symlink_metadata(path)
        .ok()
        .filter(|m| m.file_type().is_socket())
        .map(|m| m.ino())
}

/// Child: a server that binds with std (which never removes its socket file) and waits to be
/// killed.
fn stale_server(args: &Args) -> Result<()> {
    let _listener = std::os::unix::net::UnixListener::bind(args.parse::<PathBuf>("SOCK")?)?;
    child::say("listening");
    let _ = child::hear();
    Ok(())
}

/// Child: a second server trying ipckit's bind (with stale take-over) on a live path; reports
/// "bound" or "ERRNO HINT".
fn second_server(args: &Args) -> Result<()> {
    match UnixListener::bind(
        &UnixAddr::path(args.parse::<PathBuf>("SOCK")?),
        &BindOptions::default(),
    ) {
        Ok(_) => child::say("bound"),
        Err(e) => child::say(format!("{} {}", errno_of(&e), e.hint_text().unwrap_or(""))),
    }
    Ok(())
}
