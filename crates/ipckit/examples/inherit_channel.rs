//! Two processes, one channel, no fork: the parent makes a Unix socket pair and a channel,
//! starts this program again with one socket end passed as "rendezvous"
//! ([`ipckit::inherit::pass`]), and sends the channel's receiver over its own end. The child
//! takes the socket up by name ([`ipckit::inherit::take`]), takes the receiver from it
//! ([`Receiver::receive_over`]), and answers each message it receives on the socket.
//!
//! ```text
//! cargo run -p ipckit --example inherit_channel
//! ```

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::Duration;

use ipckit::ErrorKind;
use ipckit::channel::{self, Options, Receiver};
use ipckit::inherit;

/// Set in the child's environment: it is the child.
const CHILD: &str = "IPCKIT_EXAMPLE_CHILD";
/// The bound on every wait for the other process.
const T: Duration = Duration::from_secs(10);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var_os(CHILD).is_some() {
        return child();
    }
    let (sock, theirs) = UnixStream::pair()?;
    let (mut tx, rx) = channel::pair(&Options::default())?;
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.env(CHILD, "1");
    let n = inherit::pass(&mut cmd, "rendezvous", &theirs)?;
    let mut child = cmd.spawn()?;
    // Only the child holds its end now (the copy `cmd` kept goes with it).
    drop((cmd, theirs));
    println!(
        "parent: started child {} with the socket as its descriptor {n}",
        child.id()
    );

    rx.send_over(&sock)?;
    drop(rx); // a channel has one receiver: the child's
    sock.set_read_timeout(Some(T))?;
    let mut answers = BufReader::new(&sock);
    for i in 0..3 {
        tx.send(format!("message {i}").as_bytes())?;
        let mut line = String::new();
        if answers.read_line(&mut line)? == 0 {
            return Err("the child hung up".into());
        }
        print!("parent: the child answered: {line}");
    }
    drop(tx); // the child's receiver reports Disconnected, and it exits
    let status = child.wait()?;
    println!("parent: the child exited: {status}");
    if !status.success() {
        return Err("the child failed".into());
    }
    Ok(())
}

fn child() -> Result<(), Box<dyn std::error::Error>> {
    // First thing in main: take what the parent passed.
    let sock = UnixStream::from(inherit::take("rendezvous")?);
    // One thread, so the record is gone: a program this one starts does not see it.
    assert!(std::env::var_os(inherit::ENV).is_none());
    let mut rx = Receiver::receive_over_timeout(&sock, T)?;
    loop {
        match rx.recv() {
            Ok(msg) => writeln!(&sock, "got {:?}", String::from_utf8_lossy(&msg))?,
            Err(e) if e.kind() == ErrorKind::Disconnected => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
}
