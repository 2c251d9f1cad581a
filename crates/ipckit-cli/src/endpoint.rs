//! Endpoint URIs: `fifo:PATH`, `unix:PATH`, `unix-dgram:PATH`, `unix-seqpacket:PATH`,
//! `abstract:NAME`, `tcp:HOST:PORT`, the kernel objects `mq:/NAME`, `sysv-mq:KEY`,
//! `shm:/NAME`, `sysv-shm:KEY` (KEY in decimal or 0x-hex), and `channel:/NAME`, ipckit's own
//! shared-memory channel.
//!
//! Who makes what: `recv` and `listen` bind the sockets and make the FIFO, and remove them on
//! exit. The kernel objects are opened, never bound: `recv` needs them to exist, `send
//! --create` makes one and keeps it. A channel has one receiver, which owns its name:
//! `recv channel:/NAME` creates it (`/dev/shm/NAME`, mode 0600) and removes it on exit,
//! any stop signal included; `send` joins it and fails at once when no receiver is
//! running. A name (`/NAME`) is checked as every POSIX name is.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use ipckit::name::SysvKey;

/// Where `send`, `recv` and `listen` talk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Fifo(PathBuf),
    Unix(PathBuf),
    UnixDgram(PathBuf),
    UnixSeqpacket(PathBuf),
    Abstract(String),
    Tcp(String),
    PosixMq(String),
    SysvMq(SysvKey),
    PosixShm(String),
    SysvShm(SysvKey),
    /// ipckit's channel, named like POSIX shared memory: the receiver creates and owns it.
    Channel(String),
}

pub const SCHEMES: &str = "fifo:PATH, unix:PATH, unix-dgram:PATH, unix-seqpacket:PATH, abstract:NAME, \
                           tcp:HOST:PORT, mq:/NAME, sysv-mq:KEY, shm:/NAME, sysv-shm:KEY, \
                           channel:/NAME";

/// A POSIX name as a URI holds it, checked.
fn posix_name(s: &str, rest: &str) -> Result<String, String> {
    ipckit::name::check_posix_name(rest).map_err(|e| format!("'{s}': {e}"))?;
    Ok(rest.to_string())
}

/// A System V key as a URI holds it: a real key (a private object cannot be found by key).
pub fn sysv_key(s: &str, rest: &str) -> Result<SysvKey, String> {
    if rest.starts_with("id=") {
        return Err(format!(
            "'{s}': a private object (no key) is reached by its id only to remove it \
             (`ipckit rm {s}`); send and recv take a key"
        ));
    }
    match rest.parse::<SysvKey>() {
        Ok(SysvKey::Private) => Err(format!(
            "'{s}': a private object (key 0) cannot be found by key; give its key as ipcs shows it"
        )),
        Ok(k) => Ok(k),
        Err(e) => Err(format!("'{s}': {e}")),
    }
}

impl Endpoint {
    /// True when one send is one receive (the transport keeps message boundaries).
    pub fn keeps_boundaries(&self) -> bool {
        matches!(
            self,
            Endpoint::UnixDgram(_)
                | Endpoint::UnixSeqpacket(_)
                | Endpoint::PosixMq(_)
                | Endpoint::SysvMq(_)
                | Endpoint::Channel(_)
        )
    }

    /// True for the named kernel objects (queues and shared memory), which `send` and `recv`
    /// open rather than bind or connect to. Not a channel: its receiver creates it and owns
    /// it, as a listener owns the socket it binds.
    pub fn is_kernel_object(&self) -> bool {
        matches!(
            self,
            Endpoint::PosixMq(_)
                | Endpoint::SysvMq(_)
                | Endpoint::PosixShm(_)
                | Endpoint::SysvShm(_)
        )
    }
}

impl FromStr for Endpoint {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (scheme, rest) = s.split_once(':').ok_or_else(|| {
            format!("'{s}' is not an endpoint URI: expected SCHEME:ADDRESS, one of {SCHEMES}")
        })?;
        if rest.is_empty() {
            return Err(format!("'{s}' has no address after '{scheme}:'"));
        }
        let path = || PathBuf::from(rest);
        Ok(match scheme {
            "fifo" => Endpoint::Fifo(path()),
            "unix" => Endpoint::Unix(path()),
            "unix-dgram" => Endpoint::UnixDgram(path()),
            "unix-seqpacket" => Endpoint::UnixSeqpacket(path()),
            "abstract" => Endpoint::Abstract(rest.to_string()),
            "mq" => Endpoint::PosixMq(posix_name(s, rest)?),
            "sysv-mq" => Endpoint::SysvMq(sysv_key(s, rest)?),
            "shm" => Endpoint::PosixShm(posix_name(s, rest)?),
            "sysv-shm" => Endpoint::SysvShm(sysv_key(s, rest)?),
            "channel" => Endpoint::Channel(posix_name(s, rest)?),
            "tcp" => {
                let (host, port) = rest
                    .rsplit_once(':')
                    .ok_or_else(|| format!("'{s}' needs a port: tcp:HOST:PORT"))?;
                if host.is_empty() {
                    return Err(format!(
                        "'{s}' needs a host: tcp:HOST:PORT (e.g. tcp:127.0.0.1:{port})"
                    ));
                }
                port.parse::<u16>()
                    .map_err(|_| format!("'{port}' in '{s}' is not a port number (0-65535)"))?;
                Endpoint::Tcp(rest.to_string())
            }
            other => return Err(format!("unknown scheme '{other}': use one of {SCHEMES}")),
        })
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Fifo(p) => write!(f, "fifo:{}", p.display()),
            Endpoint::Unix(p) => write!(f, "unix:{}", p.display()),
            Endpoint::UnixDgram(p) => write!(f, "unix-dgram:{}", p.display()),
            Endpoint::UnixSeqpacket(p) => write!(f, "unix-seqpacket:{}", p.display()),
            Endpoint::Abstract(n) => write!(f, "abstract:{n}"),
            Endpoint::Tcp(a) => write!(f, "tcp:{a}"),
            Endpoint::PosixMq(n) => write!(f, "mq:{n}"),
            Endpoint::SysvMq(k) => write!(f, "sysv-mq:{k}"),
            Endpoint::PosixShm(n) => write!(f, "shm:{n}"),
            Endpoint::SysvShm(k) => write!(f, "sysv-shm:{k}"),
            Endpoint::Channel(n) => write!(f, "channel:{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_scheme() {
        assert_eq!("fifo:/tmp/p".parse(), Ok(Endpoint::Fifo("/tmp/p".into())));
        assert_eq!(
            "unix:rel.sock".parse(),
            Ok(Endpoint::Unix("rel.sock".into()))
        );
        assert_eq!(
            "unix-dgram:/a".parse(),
            Ok(Endpoint::UnixDgram("/a".into()))
        );
        assert_eq!(
            "unix-seqpacket:/a".parse(),
            Ok(Endpoint::UnixSeqpacket("/a".into()))
        );
        assert_eq!("abstract:x".parse(), Ok(Endpoint::Abstract("x".into())));
        assert_eq!("tcp:[::1]:80".parse(), Ok(Endpoint::Tcp("[::1]:80".into())));
        assert_eq!("mq:/q".parse(), Ok(Endpoint::PosixMq("/q".into())));
        assert_eq!(
            "sysv-mq:0x10".parse(),
            Ok(Endpoint::SysvMq(SysvKey::Key(16)))
        );
        assert_eq!(
            "sysv-shm:16".parse(),
            Ok(Endpoint::SysvShm(SysvKey::Key(16)))
        );
        assert_eq!("shm:/s".parse(), Ok(Endpoint::PosixShm("/s".into())));
        assert_eq!("channel:/c".parse(), Ok(Endpoint::Channel("/c".into())));
        for t in [
            "fifo:/a",
            "tcp:localhost:9",
            "abstract:n",
            "mq:/q",
            "sysv-mq:0x00000010",
            "channel:/c",
        ] {
            assert_eq!(t.parse::<Endpoint>().unwrap().to_string(), t);
        }
    }

    #[test]
    fn rejects_bad_uris() {
        for bad in [
            "nothing",
            "fifo:",
            "http:x",
            "tcp:127.0.0.1",
            "tcp::80",
            "tcp:h:99999",
            "channel:",
            "channel:c",
            "channel:/",
            "channel:/a/b",
        ] {
            assert!(bad.parse::<Endpoint>().is_err(), "{bad} should be rejected");
        }
        let long = format!("channel:/{}", "n".repeat(255));
        let err = long.parse::<Endpoint>().unwrap_err();
        assert!(err.contains("longer than 255 bytes"), "{err}");
    }

    #[test]
    fn a_channel_keeps_boundaries_and_is_not_a_kernel_object() {
        let c: Endpoint = "channel:/c".parse().unwrap();
        assert!(c.keeps_boundaries());
        assert!(
            !c.is_kernel_object(),
            "its receiver creates it: recv does not just open it"
        );
        assert!(SCHEMES.contains("channel:/NAME"));
    }
}
