//! `ipckit ls --json`: one [`ObjectJson`] per object, in one array.
//!
//! Names come from the system and may be any bytes: `name` is the name as
//! [`ipckit::name::escape`] prints it (printable UTF-8 as it is, a backslash doubled, control
//! characters as `\n`, `\t`, `\r` or `\u{1b}`, bytes that are not UTF-8 as `\xff`), the same
//! text `uri` holds after its scheme, and what `ipckit rm` takes back. When that text is not
//! the name's bytes as they are, `name_hex` has them (lower-case hex, two digits a byte);
//! for a plain name it is null.

use ipckit::host::{Creator, Holder, Object};
use serde::{Deserialize, Serialize};

/// One object: every field, lower-case names, null when unknown.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct ObjectJson {
    /// `sysv-mq`, `posix-shm`, … ([`ipckit::host::Kind::name`]).
    pub kind: String,
    /// What `ipckit rm` takes ([`Object::uri`]).
    pub uri: String,
    /// System V key, `0x` and eight hex digits.
    pub key: Option<String>,
    pub id: Option<i32>,
    /// The name, escaped (see the module docs): the name itself when it is printable UTF-8
    /// without a backslash.
    pub name: Option<String>,
    /// The name's bytes in hex, when `name` is not them as they are (not UTF-8, or a control
    /// character or backslash in it); null otherwise.
    pub name_hex: Option<String>,
    pub owner: Option<String>,
    pub uid: Option<u32>,
    /// `rw-r-----`.
    pub perms: Option<String>,
    /// The same bits in octal, four digits: `0640`.
    pub mode: Option<String>,
    pub size: Option<u64>,
    pub nattch: Option<u64>,
    pub msgs: Option<u64>,
    pub usedbytes: Option<u64>,
    pub nsems: Option<u64>,
    pub cpid: Option<u32>,
    pub lpid: Option<u32>,
    pub lspid: Option<u32>,
    pub lrpid: Option<u32>,
    /// Seconds since the epoch.
    pub ctime: Option<i64>,
    /// Seconds since the epoch.
    pub last_used: Option<i64>,
    /// As lsipc's COMMAND: the creator's while it runs, else the holders'.
    pub command: Option<String>,
    pub detail: Option<String>,
    pub pids: Vec<u32>,
    pub holders: Vec<HolderJson>,
    pub creator: Option<CreatorJson>,
    /// `live`, `orphan`, `stale`, `unknown`.
    pub state: String,
    pub reason: String,
}

/// A process that holds, maps or is attached to the object.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct HolderJson {
    pub pid: u32,
    pub command: String,
    pub read: bool,
    pub write: bool,
    pub mapped: bool,
}

/// The creator an ipckit-made name records.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct CreatorJson {
    pub pid: u32,
    pub purpose: String,
    pub alive: bool,
}

impl From<&Holder> for HolderJson {
    fn from(h: &Holder) -> HolderJson {
        HolderJson {
            pid: h.pid,
            command: h.command.clone(),
            read: h.read,
            write: h.write,
            mapped: h.mapped,
        }
    }
}

impl From<&Creator> for CreatorJson {
    fn from(c: &Creator) -> CreatorJson {
        CreatorJson {
            pid: c.pid,
            purpose: c.purpose.clone(),
            alive: c.alive,
        }
    }
}

impl From<&Object> for ObjectJson {
    fn from(o: &Object) -> ObjectJson {
        ObjectJson {
            kind: o.kind.name().to_string(),
            uri: o.uri(),
            key: o.key.map(|k| format!("{k:#010x}")),
            id: o.id,
            name: o.name.as_deref().map(ipckit::name::escape),
            name_hex: o.unusual_name().map(hex),
            owner: o.owner.clone(),
            uid: o.uid,
            perms: o.perms.map(crate::ls::perms_string),
            mode: o.perms.map(|p| format!("{p:04o}")),
            size: o.size,
            nattch: o.nattch,
            msgs: o.msgs,
            usedbytes: o.used_bytes,
            nsems: o.nsems,
            cpid: o.cpid,
            lpid: o.lpid,
            lspid: o.lspid,
            lrpid: o.lrpid,
            ctime: o.ctime,
            last_used: o.last_used,
            command: crate::ls::command(o),
            detail: o.detail.clone(),
            pids: o.pids(),
            holders: o.holders.iter().map(HolderJson::from).collect(),
            creator: o.creator.as_ref().map(CreatorJson::from),
            state: o.state.name().to_string(),
            reason: o.reason.clone(),
        }
    }
}

/// Lower-case hex, two digits a byte.
pub fn hex(name: &std::ffi::OsStr) -> String {
    use std::os::unix::ffi::OsStrExt;
    name.as_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipckit::host::{self, Kind};
    use serde_json::{Value, json};

    /// The shape `ls --json` has always had, written out field by field: the typed struct
    /// must give exactly this.
    fn reference(o: &Object) -> Value {
        json!({
            "kind": o.kind.name(),
            "uri": o.uri(),
            "key": o.key.map(|k| format!("{k:#010x}")),
            "id": o.id,
            "name": o.name.as_deref().map(ipckit::name::escape),
            "name_hex": o.unusual_name().map(hex),
            "owner": o.owner,
            "uid": o.uid,
            "perms": o.perms.map(crate::ls::perms_string),
            "mode": o.perms.map(|p| format!("{p:04o}")),
            "size": o.size,
            "nattch": o.nattch,
            "msgs": o.msgs,
            "usedbytes": o.used_bytes,
            "nsems": o.nsems,
            "cpid": o.cpid,
            "lpid": o.lpid,
            "lspid": o.lspid,
            "lrpid": o.lrpid,
            "ctime": o.ctime,
            "last_used": o.last_used,
            "command": crate::ls::command(o),
            "detail": o.detail,
            "pids": o.pids(),
            "holders": o.holders.iter().map(|h| json!({
                "pid": h.pid,
                "command": h.command,
                "read": h.read,
                "write": h.write,
                "mapped": h.mapped,
            })).collect::<Vec<_>>(),
            "creator": o.creator.as_ref().map(|c| json!({
                "pid": c.pid,
                "purpose": c.purpose,
                "alive": c.alive,
            })),
            "state": o.state.name(),
            "reason": o.reason,
        })
    }

    #[test]
    fn ls_json_parses_into_the_typed_struct_with_the_same_fields() {
        // A socket this process listens on (live, held by us) and a socket file nobody is
        // bound to (stale): two real objects, made with std alone.
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("live.sock");
        let stale = dir.path().join("stale.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&live).unwrap();
        drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
        let listing = host::scan(&host::Options {
            kinds: vec![Kind::Unix],
            socket_dirs: vec![dir.path().to_path_buf()],
        });
        let ours: Vec<Object> = listing
            .objects
            .into_iter()
            .filter(|o| {
                o.name
                    .as_deref()
                    .is_some_and(|n| std::path::Path::new(n).starts_with(dir.path()))
            })
            .collect();
        assert_eq!(ours.len(), 2, "{ours:?}");
        let mut text = Vec::new();
        crate::ls::write_json(&mut text, &ours).unwrap();
        let typed: Vec<ObjectJson> = serde_json::from_slice(&text).unwrap();
        let untyped: Vec<Value> = serde_json::from_slice(&text).unwrap();
        for ((o, t), v) in ours.iter().zip(&typed).zip(&untyped) {
            assert_eq!(*v, reference(o));
            assert_eq!(t.uri, o.uri());
            assert_eq!(t.state, o.state.name());
        }
        let held = typed.iter().find(|t| t.state == "live").unwrap();
        assert!(held.pids.contains(&std::process::id()), "{held:?}");
        assert!(typed.iter().any(|t| t.state == "stale"), "{typed:?}");
    }

    #[test]
    fn a_name_that_is_not_plain_is_escaped_and_given_in_hex() {
        use std::os::unix::ffi::OsStrExt;
        let mut o = Object::new(Kind::PosixShm);
        for (bytes, name, hexed) in [
            (&b"/plain"[..], "/plain", None),
            (b"/x\xff", "/x\\xff", Some("2f78ff")),
            (b"/e\x1b[1m", "/e\\u{1b}[1m", Some("2f651b5b316d")),
            (
                b"/back\\slash",
                "/back\\\\slash",
                Some("2f6261636b5c736c617368"),
            ),
        ] {
            o.name = Some(std::ffi::OsStr::from_bytes(bytes).into());
            let j = ObjectJson::from(&o);
            assert_eq!(j.name.as_deref(), Some(name));
            assert_eq!(j.name_hex.as_deref(), hexed);
            assert_eq!(j.uri, format!("shm:{name}"));
        }
    }
}
