//! The one error type of ipckit: what was being done, to which object, the errno, and what to do.
//!
//! ```
//! use ipckit::stream::fifo;
//! let err = fifo::try_open_write("/nonexistent/ipckit-doc-fifo").unwrap_err();
//! assert_eq!(err.errno(), Some(ipckit::Errno::NOENT));
//! // "opening FIFO /nonexistent/ipckit-doc-fifo for writing: No such file or directory (ENOENT); ..."
//! assert!(err.to_string().contains("ENOENT"));
//! ```

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

pub use rustix::io::Errno;

/// Shorthand for `std::result::Result<T, ipckit::Error>`.
pub type Result<T> = std::result::Result<T, Error>;

/// What kind of failure an [`Error`] is, for code that branches on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The kernel refused: see [`Error::errno`].
    Os,
    /// A timed operation ran out of time.
    TimedOut,
    /// Data or control data did not fit the buffer given and was cut.
    Truncated,
    /// The caller's input is invalid (a name too long, a bad URI, ...).
    InvalidInput,
    /// The other side is gone.
    Disconnected,
    /// The object is no longer the one that was looked at: re-created, its id reused, or
    /// put to use since (see `host::remove`).
    Changed,
}

/// An ipckit error: operation, object, errno and a hint a person can act on.
///
/// It displays as one line, for example
/// `opening FIFO /run/x for writing: No such device or address (ENXIO); no process has it open
/// for reading: open it for reading first, or open without O_NONBLOCK to wait for a reader`.
/// `Debug` prints the same line, so `fn main() -> Result<(), ipckit::Error>` shows it.
#[derive(Clone)]
pub struct Error {
    kind: ErrorKind,
    op: Cow<'static, str>,
    object: Option<String>,
    errno: Option<Errno>,
    detail: Option<String>,
    hint: Option<Cow<'static, str>>,
    received: Option<usize>,
}

impl Error {
    /// An error the kernel reported with `errno` while doing `op`.
    pub fn os(op: impl Into<Cow<'static, str>>, errno: Errno) -> Self {
        Error {
            kind: ErrorKind::Os,
            op: op.into(),
            object: None,
            errno: Some(errno),
            detail: None,
            hint: default_hint(errno).map(Cow::Borrowed),
            received: None,
        }
    }

    /// An error that is not an errno: `detail` says what went wrong.
    pub fn new(
        kind: ErrorKind,
        op: impl Into<Cow<'static, str>>,
        detail: impl Into<String>,
    ) -> Self {
        Error {
            kind,
            op: op.into(),
            object: None,
            errno: None,
            detail: Some(detail.into()),
            hint: None,
            received: None,
        }
    }

    /// A timed operation gave up after `after`.
    pub fn timed_out(op: impl Into<Cow<'static, str>>, after: Duration) -> Self {
        Error::new(
            ErrorKind::TimedOut,
            op,
            format!("timed out after {after:?}"),
        )
    }

    /// A timed operation whose deadline passed (the `_deadline` forms, which know no
    /// duration to report).
    pub fn deadline_passed(op: impl Into<Cow<'static, str>>) -> Self {
        Error::new(ErrorKind::TimedOut, op, "the deadline passed")
    }

    /// Names the object the operation was applied to (a path, a name, a URI).
    pub fn object(mut self, object: impl fmt::Display) -> Self {
        let object = object.to_string();
        self.object = (!object.is_empty()).then_some(object);
        self
    }

    /// Replaces the hint: what the reader can do about it.
    pub fn hint(mut self, hint: impl Into<Cow<'static, str>>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Replaces the hint only when the errno is `errno`.
    pub fn hint_if(self, errno: Errno, hint: impl Into<Cow<'static, str>>) -> Self {
        if self.errno == Some(errno) {
            self.hint(hint)
        } else {
            self
        }
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The errno, when the kernel refused.
    pub fn errno(&self) -> Option<Errno> {
        self.errno
    }

    /// True for a timed operation that ran out of time.
    pub fn is_timeout(&self) -> bool {
        self.kind == ErrorKind::TimedOut
    }

    /// The operation that failed, e.g. "binding Unix socket".
    pub fn operation(&self) -> &str {
        &self.op
    }

    /// The hint, if there is one.
    pub fn hint_text(&self) -> Option<&str> {
        self.hint.as_deref()
    }

    /// For a [`Truncated`](ErrorKind::Truncated) receive: how many bytes did arrive in the
    /// buffer (the part of the message that fitted). `None` for other errors.
    pub fn received(&self) -> Option<usize> {
        self.received
    }

    /// Says what went wrong in words, keeping the errno (shown after them): for a refusal
    /// ipckit makes itself with the errno a program branches on (ENOSPC for a size that does
    /// not fit, EPERM for an object it will not adopt).
    pub(crate) fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Records how many bytes a truncated receive put in the buffer.
    pub(crate) fn with_received(mut self, bytes: usize) -> Self {
        self.received = Some(bytes);
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.op)?;
        if let Some(object) = &self.object {
            write!(f, " {object}")?;
        }
        f.write_str(": ")?;
        match (&self.detail, self.errno) {
            (Some(detail), Some(e)) => write!(f, "{detail} ({})", errno_name(e))?,
            (Some(detail), None) => f.write_str(detail)?,
            (None, Some(e)) => write!(f, "{} ({})", describe(e), errno_name(e))?,
            (None, None) => f.write_str("failed")?,
        }
        if let Some(hint) = &self.hint {
            write!(f, "; {hint}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for Error {}

impl From<Error> for std::io::Error {
    fn from(e: Error) -> Self {
        let kind = match e.kind {
            ErrorKind::TimedOut => std::io::ErrorKind::TimedOut,
            ErrorKind::InvalidInput => std::io::ErrorKind::InvalidInput,
            ErrorKind::Disconnected => std::io::ErrorKind::BrokenPipe,
            ErrorKind::Truncated => std::io::ErrorKind::InvalidData,
            ErrorKind::Changed => std::io::ErrorKind::Other,
            ErrorKind::Os => match e.errno {
                Some(errno) => std::io::Error::from(errno).kind(),
                None => std::io::ErrorKind::Other,
            },
        };
        std::io::Error::new(kind, e)
    }
}

/// Attaches an operation and an object to a failed system call.
pub(crate) trait Context<T> {
    /// `op` is a gerund phrase ("opening FIFO"), `object` what it was applied to.
    fn during(self, op: &'static str, object: impl fmt::Display) -> Result<T>;
}

impl<T> Context<T> for rustix::io::Result<T> {
    fn during(self, op: &'static str, object: impl fmt::Display) -> Result<T> {
        self.map_err(|e| Error::os(op, e).object(object))
    }
}

impl<T> Context<T> for std::io::Result<T> {
    fn during(self, op: &'static str, object: impl fmt::Display) -> Result<T> {
        self.map_err(|e| match e.raw_os_error() {
            Some(raw) => Error::os(op, Errno::from_raw_os_error(raw)).object(object),
            None if e.kind() == std::io::ErrorKind::TimedOut => {
                Error::new(ErrorKind::TimedOut, op, e.to_string()).object(object)
            }
            None => Error::new(ErrorKind::Os, op, e.to_string()).object(object),
        })
    }
}

/// The errno a libc call that just returned -1 left behind.
pub(crate) fn last_errno() -> Errno {
    let raw = std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO);
    Errno::from_raw_os_error(raw)
}

/// The error `errno` holds now, for a libc call that just failed.
pub(crate) fn last_os(op: &'static str, object: impl fmt::Display) -> Error {
    Error::os(op, last_errno()).object(object)
}

fn describe(errno: Errno) -> String {
    let s = std::io::Error::from(errno).to_string();
    // std appends " (os error N)"; the errno name replaces it.
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Any error as one line in ipckit's style: a `std::io::Error` from the kernel as its text,
/// its errno's name and ipckit's hint for it (`Connection reset by peer (ECONNRESET); the
/// peer closed ...`) where std would print `(os error 104)`; any other error as it displays.
///
/// ```
/// let e = std::io::Error::from_raw_os_error(104);
/// assert!(ipckit::error::message(&e).starts_with("Connection reset by peer (ECONNRESET); "));
/// ```
pub fn message(e: &(dyn std::error::Error + 'static)) -> String {
    let Some(io) = e.downcast_ref::<std::io::Error>() else {
        return e.to_string();
    };
    match (io.raw_os_error(), io.get_ref()) {
        (Some(raw), None) => {
            let errno = Errno::from_raw_os_error(raw);
            match default_hint(errno) {
                Some(hint) => format!("{} ({}); {hint}", describe(errno), errno_name(errno)),
                None => format!("{} ({})", describe(errno), errno_name(errno)),
            }
        }
        _ => io.to_string(),
    }
}

/// The hint ipckit gives for `errno` whatever the operation was (an error from outside ipckit,
/// such as a `std::io::Error`, can carry the same advice).
pub fn errno_hint(errno: Errno) -> Option<&'static str> {
    default_hint(errno)
}

fn default_hint(errno: Errno) -> Option<&'static str> {
    Some(match errno {
        Errno::ACCESS | Errno::PERM => "check the object's owner and mode, or run as its owner",
        Errno::MFILE | Errno::NFILE => {
            "too many open descriptors: close some or raise the limit (ulimit -n)"
        }
        Errno::NAMETOOLONG => "use a shorter path or name",
        Errno::LOOP => "ipckit does not follow symbolic links to IPC objects; use the real path",
        Errno::NOSPC | Errno::NOMEM => "a kernel limit or memory is exhausted: see `ipckit limits`",
        Errno::CONNRESET => {
            "the peer closed the connection with data unread, or died: what was in flight is lost"
        }
        Errno::PIPE => "the reader closed its end: what was not yet read is lost",
        Errno::CONNREFUSED => "nothing is listening there: start the receiver first",
        Errno::NOTCONN => "the socket is not connected: connect it first",
        Errno::TIMEDOUT => "the peer did not answer in time",
        Errno::ROFS => "the filesystem is mounted read-only: use another directory",
        Errno::DQUOT => "the disk quota is exhausted: free some space",
        _ => return None,
    })
}

/// The symbolic name of an errno ("ENXIO"), or "errno N" for one without a name here.
pub fn errno_name(errno: Errno) -> String {
    const NAMES: &[(Errno, &str)] = &[
        (Errno::PERM, "EPERM"),
        (Errno::NOENT, "ENOENT"),
        (Errno::SRCH, "ESRCH"),
        (Errno::INTR, "EINTR"),
        (Errno::IO, "EIO"),
        (Errno::NXIO, "ENXIO"),
        (Errno::TOOBIG, "E2BIG"),
        (Errno::BADF, "EBADF"),
        (Errno::CHILD, "ECHILD"),
        (Errno::AGAIN, "EAGAIN"),
        (Errno::NOMEM, "ENOMEM"),
        (Errno::ACCESS, "EACCES"),
        (Errno::FAULT, "EFAULT"),
        (Errno::BUSY, "EBUSY"),
        (Errno::EXIST, "EEXIST"),
        (Errno::NODEV, "ENODEV"),
        (Errno::NOTDIR, "ENOTDIR"),
        (Errno::ISDIR, "EISDIR"),
        (Errno::INVAL, "EINVAL"),
        (Errno::NFILE, "ENFILE"),
        (Errno::MFILE, "EMFILE"),
        (Errno::FBIG, "EFBIG"),
        (Errno::NOSPC, "ENOSPC"),
        (Errno::SPIPE, "ESPIPE"),
        (Errno::ROFS, "EROFS"),
        (Errno::PIPE, "EPIPE"),
        (Errno::RANGE, "ERANGE"),
        (Errno::DEADLK, "EDEADLK"),
        (Errno::NAMETOOLONG, "ENAMETOOLONG"),
        (Errno::NOSYS, "ENOSYS"),
        (Errno::LOOP, "ELOOP"),
        (Errno::NOMSG, "ENOMSG"),
        (Errno::IDRM, "EIDRM"),
        (Errno::OWNERDEAD, "EOWNERDEAD"),
        (Errno::NOTRECOVERABLE, "ENOTRECOVERABLE"),
        (Errno::NOTSOCK, "ENOTSOCK"),
        (Errno::MSGSIZE, "EMSGSIZE"),
        (Errno::PROTOTYPE, "EPROTOTYPE"),
        (Errno::NOPROTOOPT, "ENOPROTOOPT"),
        (Errno::OPNOTSUPP, "EOPNOTSUPP"),
        (Errno::ADDRINUSE, "EADDRINUSE"),
        (Errno::ADDRNOTAVAIL, "EADDRNOTAVAIL"),
        (Errno::NETUNREACH, "ENETUNREACH"),
        (Errno::CONNABORTED, "ECONNABORTED"),
        (Errno::CONNRESET, "ECONNRESET"),
        (Errno::NOBUFS, "ENOBUFS"),
        (Errno::ISCONN, "EISCONN"),
        (Errno::NOTCONN, "ENOTCONN"),
        (Errno::TIMEDOUT, "ETIMEDOUT"),
        (Errno::CONNREFUSED, "ECONNREFUSED"),
        (Errno::HOSTUNREACH, "EHOSTUNREACH"),
        (Errno::ALREADY, "EALREADY"),
        (Errno::INPROGRESS, "EINPROGRESS"),
    ];
    NAMES
        .iter()
        .find(|(e, _)| *e == errno)
        .map(|(_, n)| n.to_string())
        .unwrap_or_else(|| format!("errno {}", errno.raw_os_error()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_one_line_with_name_and_hint() {
        let e = Error::os("opening FIFO", Errno::NXIO)
            .object("/run/x")
            .hint("open it for reading first");
        let s = e.to_string();
        assert_eq!(
            s,
            "opening FIFO /run/x: No such device or address (ENXIO); open it for reading first"
        );
        assert!(!s.contains('\n'));
    }

    #[test]
    fn unknown_errno_still_named() {
        assert_eq!(errno_name(Errno::from_raw_os_error(4000)), "errno 4000");
        assert_eq!(errno_name(Errno::PIPE), "EPIPE");
    }

    #[test]
    fn converts_to_io_error_kind() {
        let io: std::io::Error = Error::timed_out("waiting", Duration::from_millis(5)).into();
        assert_eq!(io.kind(), std::io::ErrorKind::TimedOut);
        let io: std::io::Error = Error::os("writing", Errno::PIPE).into();
        assert_eq!(io.kind(), std::io::ErrorKind::BrokenPipe);
    }
}
