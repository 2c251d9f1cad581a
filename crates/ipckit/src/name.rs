//! Object names: validation, unique names, and the ipckit ownership tag.
//!
//! ```
//! let a = ipckit::name::unique("demo");
//! let b = ipckit::name::unique("demo");
//! assert_ne!(a, b);
//! assert!(a.starts_with("ipckit-demo-"));
//! ```

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, ErrorKind, Result};

/// The prefix ipckit puts on the names it makes up, so `ipckit ls` can tell its objects apart.
pub const TAG: &str = "ipckit";

/// The longest filesystem path a Unix socket can be bound to (`sun_path` less its NUL).
pub const SOCKET_PATH_MAX: usize = 107;

/// The longest abstract socket name (`sun_path` less the leading NUL).
pub const ABSTRACT_NAME_MAX: usize = 107;

/// A name unique on this host for this process's lifetime: `ipckit-PURPOSE-PID-N-NANOS`.
pub fn unique(purpose: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{TAG}-{purpose}-{}-{n}-{nanos:x}", std::process::id())
}

/// Checks a path for a Unix socket: not empty, no NUL byte, at most [`SOCKET_PATH_MAX`] bytes.
pub fn check_socket_path(path: &Path) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_os_str().as_bytes();
    let bad =
        |why: String| {
            Err(Error::new(ErrorKind::InvalidInput, "checking Unix socket path", why)
            .object(path.display())
            .hint("use a shorter path, or an abstract name (abstract:NAME), which has no file"))
        };
    if bytes.is_empty() {
        return bad("the path is empty".into());
    }
    if bytes.contains(&0) {
        return bad("the path contains a NUL byte".into());
    }
    if bytes.len() > SOCKET_PATH_MAX {
        return bad(format!(
            "{} bytes is longer than the {SOCKET_PATH_MAX} a socket address holds",
            bytes.len()
        ));
    }
    Ok(())
}

/// Checks an abstract socket name: at most [`ABSTRACT_NAME_MAX`] bytes.
pub fn check_abstract_name(name: &[u8]) -> Result<()> {
    if name.len() > ABSTRACT_NAME_MAX {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "checking abstract socket name",
            format!("{} bytes is longer than {ABSTRACT_NAME_MAX}", name.len()),
        )
        .object(String::from_utf8_lossy(name)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_path_limits() {
        assert!(check_socket_path(Path::new("/tmp/x.sock")).is_ok());
        assert!(check_socket_path(Path::new("")).is_err());
        let long = format!("/tmp/{}", "a".repeat(200));
        let err = check_socket_path(Path::new(&long)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("abstract"));
        assert!(check_abstract_name(&[b'a'; 108]).is_err());
        assert!(check_abstract_name(b"ok").is_ok());
    }
}
