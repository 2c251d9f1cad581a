//! How received messages are printed (`recv`, `listen`): raw bytes plus a newline, or with
//! `--json` one [`MessageJson`] per line.

use std::borrow::Cow;
use std::io::Write;

use base64::Engine;
use serde::{Deserialize, Serialize};

/// One received message as `--json` prints it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct MessageJson<'a> {
    /// The message as text, or null when it is not UTF-8.
    #[serde(borrow)]
    pub data: Option<Cow<'a, str>>,
    /// The message in base64, present only when it is not UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base64: Option<String>,
    pub bytes: usize,
    pub peer_pid: Option<ipckit::Pid>,
    pub peer_uid: Option<u32>,
    /// A POSIX queue message's priority.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
    /// A System V queue message's type.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub mtype: Option<i64>,
    /// True on each piece of a byte-stream line too long to print whole (a line over 1 MiB is
    /// printed in pieces); absent on everything else.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub split: bool,
}

/// What is known of a message besides its bytes: who sent it, when the transport can tell,
/// its priority or type on a queue, and whether it is a piece of a split line.
#[derive(Debug, Clone, Copy, Default)]
pub struct Peer {
    pub pid: Option<ipckit::Pid>,
    pub uid: Option<u32>,
    pub priority: Option<u32>,
    pub mtype: Option<i64>,
    /// A piece of a byte-stream line too long to print whole.
    pub split: bool,
}

/// Writes one message to `out` and flushes, so pipelines see it at once.
pub fn emit(out: &mut impl Write, msg: &[u8], peer: Peer, json: bool) -> std::io::Result<()> {
    if json {
        let text = std::str::from_utf8(msg).ok();
        let obj = MessageJson {
            data: text.map(Cow::Borrowed),
            base64: text
                .is_none()
                .then(|| base64::engine::general_purpose::STANDARD.encode(msg)),
            bytes: msg.len(),
            peer_pid: peer.pid,
            peer_uid: peer.uid,
            priority: peer.priority,
            mtype: peer.mtype,
            split: peer.split,
        };
        serde_json::to_writer(&mut *out, &obj)?;
        out.write_all(b"\n")?;
    } else {
        out.write_all(msg)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_text_binary_priority_and_type() {
        let mut v = Vec::new();
        let peer = Peer {
            pid: Some(7),
            uid: Some(0),
            ..Peer::default()
        };
        emit(&mut v, b"hi", peer, true).unwrap();
        emit(
            &mut v,
            b"q",
            Peer {
                priority: Some(3),
                ..Peer::default()
            },
            true,
        )
        .unwrap();
        emit(
            &mut v,
            b"t",
            Peer {
                mtype: Some(-2),
                ..Peer::default()
            },
            true,
        )
        .unwrap();
        emit(&mut v, &[0xff, 0x00], Peer::default(), true).unwrap();
        emit(
            &mut v,
            b"piece",
            Peer {
                split: true,
                ..Peer::default()
            },
            true,
        )
        .unwrap();
        let s = String::from_utf8(v).unwrap();
        let lines: Vec<&str> = s.lines().collect();
        // Each line reads back into the type that wrote it.
        let back: Vec<MessageJson> = lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(back[0].data.as_deref(), Some("hi"));
        assert_eq!(back[0].peer_pid, Some(7));
        assert_eq!(back[1].priority, Some(3));
        assert_eq!(back[2].mtype, Some(-2));
        assert_eq!(
            (back[3].data.as_ref(), back[3].base64.as_deref()),
            (None, Some("/wA="))
        );
        assert_eq!(
            lines[0],
            r#"{"data":"hi","bytes":2,"peer_pid":7,"peer_uid":0}"#
        );
        assert_eq!(
            lines[1],
            r#"{"data":"q","bytes":1,"peer_pid":null,"peer_uid":null,"priority":3}"#
        );
        assert_eq!(
            lines[2],
            r#"{"data":"t","bytes":1,"peer_pid":null,"peer_uid":null,"type":-2}"#
        );
        assert_eq!(
            lines[3],
            r#"{"data":null,"base64":"/wA=","bytes":2,"peer_pid":null,"peer_uid":null}"#
        );
        assert!(back[4].split && !back[0].split);
        assert_eq!(
            lines[4],
            r#"{"data":"piece","bytes":5,"peer_pid":null,"peer_uid":null,"split":true}"#
        );
    }
}
