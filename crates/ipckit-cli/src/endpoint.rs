//! Endpoint URIs: `fifo:PATH`, `unix:PATH`, `unix-dgram:PATH`, `unix-seqpacket:PATH`,
//! `abstract:NAME`, `tcp:HOST:PORT`, and the kernel objects `mq:/NAME`, `sysv-mq:KEY`,
//! `shm:/NAME`, `sysv-shm:KEY` (KEY in decimal or 0x-hex).

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
}

pub const SCHEMES: &str = "fifo:PATH, unix:PATH, unix-dgram:PATH, unix-seqpacket:PATH, abstract:NAME, \
                           tcp:HOST:PORT, mq:/NAME, sysv-mq:KEY, shm:/NAME, sysv-shm:KEY";

/// A POSIX name as a URI holds it, checked.
fn posix_name(s: &str, rest: &str) -> Result<String, String> {
    ipckit::name::check_posix_name(rest).map_err(|e| format!("'{s}': {e}"))?;
    Ok(rest.to_string())
}

/// A System V key as a URI holds it: a real key (a private object cannot be found by key).
pub fn sysv_key(s: &str, rest: &str) -> Result<SysvKey, String> {
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
        )
    }

    /// True for the named kernel objects (queues and shared memory), which `send` and `recv`
    /// open rather than bind or connect to.
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
        for t in [
            "fifo:/a",
            "tcp:localhost:9",
            "abstract:n",
            "mq:/q",
            "sysv-mq:0x00000010",
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
        ] {
            assert!(bad.parse::<Endpoint>().is_err(), "{bad} should be rejected");
        }
    }
}
