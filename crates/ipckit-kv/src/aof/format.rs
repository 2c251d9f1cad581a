//! The log's format: each command a RESP array of bulk strings, as Redis's appendonly file
//! (`*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n`), and the strict parser recovery reads it
//! back with.

/// The most arguments one logged command may have (a corrupt count must not be believed).
pub const MAX_ARGS: u64 = 1 << 31;
/// The longest argument (a corrupt length must not be believed): 4 GiB.
pub const MAX_ARG_LEN: u64 = 1 << 32;

/// Appends `args` to `out` as one RESP array of bulk strings.
///
/// ```
/// let mut out = Vec::new();
/// ipckit_kv::aof::encode(&[&b"SET"[..], b"k", b"v"], &mut out);
/// assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n");
/// ```
pub fn encode<A: AsRef<[u8]>>(args: &[A], out: &mut Vec<u8>) {
    let total: usize = args.iter().map(|a| a.as_ref().len() + 16).sum();
    out.reserve(total + 16);
    out.push(b'*');
    push_uint(out, args.len() as u64);
    out.extend_from_slice(b"\r\n");
    for a in args {
        let a = a.as_ref();
        out.push(b'$');
        push_uint(out, a.len() as u64);
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// Decimal digits of `n`, without a `format!`.
fn push_uint(out: &mut Vec<u8>, n: u64) {
    let mut digits = [0u8; 20];
    let i = crate::resp::decimal(n, &mut digits);
    out.extend_from_slice(&digits[i..]);
}

/// What the bytes at some offset hold.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// A whole command, `len` bytes long.
    Command { args: Vec<Vec<u8>>, len: usize },
    /// The start of a command, well formed as far as it goes, that the bytes end inside.
    Incomplete,
    /// Not a command: the byte at `at` (from the command's start) is wrong, for `why`.
    Invalid { at: usize, why: &'static str },
}

/// Reads a decimal number ended by `\r\n` at `buf[at..]`: `Ok(Some((n, after)))`,
/// `Ok(None)` when the bytes end first, `Err((offset, why))` when it is not one.
fn number(buf: &[u8], at: usize, max: u64) -> Result<Option<(u64, usize)>, (usize, &'static str)> {
    let mut n: u64 = 0;
    let mut i = at;
    loop {
        let Some(&b) = buf.get(i) else {
            return Ok(None);
        };
        match b {
            b'0'..=b'9' if i - at < 19 => {
                n = n * 10 + u64::from(b - b'0');
                i += 1;
            }
            b'\r' if i > at => {
                return match buf.get(i + 1) {
                    None => Ok(None),
                    Some(b'\n') if n <= max => Ok(Some((n, i + 2))),
                    Some(b'\n') => Err((at, "a length larger than any command the log holds")),
                    Some(_) => Err((i + 1, "a \\r not followed by \\n")),
                };
            }
            _ => return Err((i, "a length that is not a decimal number")),
        }
    }
}

/// Parses one command at the start of `buf`.
pub(crate) fn parse(buf: &[u8]) -> Parsed {
    let Some(&first) = buf.first() else {
        return Parsed::Incomplete;
    };
    if first != b'*' {
        return Parsed::Invalid {
            at: 0,
            why: "a command that does not start with '*'",
        };
    }
    let (count, mut at) = match number(buf, 1, MAX_ARGS) {
        Ok(Some(v)) => v,
        Ok(None) => return Parsed::Incomplete,
        Err((at, why)) => return Parsed::Invalid { at, why },
    };
    if count == 0 {
        return Parsed::Invalid {
            at: 1,
            why: "a command of no arguments",
        };
    }
    let mut args = Vec::with_capacity(count.min(64) as usize);
    for _ in 0..count {
        match buf.get(at) {
            None => return Parsed::Incomplete,
            Some(b'$') => {}
            Some(_) => {
                return Parsed::Invalid {
                    at,
                    why: "an argument that does not start with '$'",
                };
            }
        }
        let (len, data) = match number(buf, at + 1, MAX_ARG_LEN) {
            Ok(Some(v)) => v,
            Ok(None) => return Parsed::Incomplete,
            Err((at, why)) => return Parsed::Invalid { at, why },
        };
        let len = len as usize;
        let end = data + len;
        if buf.len() < end + 2 {
            // The bytes there may still be wrong where they exist: a \r\n cut is Incomplete
            // only if what is there of it is right.
            if buf.len() == end + 1 && buf[end] != b'\r' {
                return Parsed::Invalid {
                    at: end,
                    why: "an argument not ended by \\r\\n",
                };
            }
            return Parsed::Incomplete;
        }
        if &buf[end..end + 2] != b"\r\n" {
            return Parsed::Invalid {
                at: end,
                why: "an argument not ended by \\r\\n",
            };
        }
        args.push(buf[data..end].to_vec());
        at = end + 2;
    }
    Parsed::Command { args, len: at }
}

/// Whether a whole command starts at any `*` of `buf` after its first byte: garbage with a
/// command after it is corruption in the middle of the log, not a torn tail. Returns the
/// offset of the first one.
pub(crate) fn command_after(buf: &[u8]) -> Option<usize> {
    let mut from = 1;
    while let Some(p) = buf.get(from..)?.iter().position(|&b| b == b'*') {
        let at = from + p;
        if matches!(parse(&buf[at..]), Parsed::Command { .. }) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(args: &[&str]) -> Vec<u8> {
        let mut v = Vec::new();
        encode(args, &mut v);
        v
    }

    #[test]
    fn a_command_round_trips_and_every_prefix_is_incomplete() {
        let bytes = enc(&["SET", "key", "", "a\r\nb"]);
        match parse(&bytes) {
            Parsed::Command { args, len } => {
                assert_eq!(len, bytes.len());
                assert_eq!(args, [&b"SET"[..], b"key", b"", b"a\r\nb"]);
            }
            other => panic!("{other:?}"),
        }
        for cut in 0..bytes.len() {
            assert_eq!(parse(&bytes[..cut]), Parsed::Incomplete, "cut at {cut}");
        }
    }

    #[test]
    fn wrong_bytes_are_invalid_not_incomplete() {
        for bad in [
            &b"\0\0\0"[..],
            b"*0\r\n",
            b"*-1\r\n",
            b"*1\r\n+OK\r\n",
            b"*1\r\n$1\r\nxx\r\n",
            b"*1\r\n$x",
            b"*1\r\x00",
            b"*99999999999999999999\r\n",
            b"*1\r\n$1\r\nxy",
        ] {
            assert!(
                matches!(parse(bad), Parsed::Invalid { .. }),
                "{:?}: {:?}",
                String::from_utf8_lossy(bad),
                parse(bad)
            );
        }
    }

    #[test]
    fn numbers_are_written_in_decimal() {
        for n in [0u64, 7, 10, 99, 100, 123_456_789, u64::MAX] {
            let mut v = Vec::new();
            push_uint(&mut v, n);
            assert_eq!(v, n.to_string().as_bytes());
        }
    }

    #[test]
    fn a_command_after_garbage_is_found() {
        let mut bytes = b"\0\0*garbage".to_vec();
        assert_eq!(command_after(&bytes), None);
        bytes.extend(enc(&["PING"]));
        assert_eq!(command_after(&bytes), Some(10));
    }
}
