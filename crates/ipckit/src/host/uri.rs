//! Names in the listing's URIs: written with [`crate::name::escape`], read back with
//! [`unescape`], so the URI `ipckit ls` prints for any object leads `ipckit rm` to exactly it.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// The bytes of a name written as [`crate::name::escape`] writes it (as [`Object::uri`] and
/// [`Object::label`] show names): the inverse of `escape`, so
/// `unescape(escape(name)) == name` for every name.
///
/// | written | is |
/// |---|---|
/// | `\\` | one backslash |
/// | `\n`, `\t`, `\r` | newline, tab, carriage return |
/// | `\u{1b}` | the character U+001B (1 to 6 hex digits) |
/// | `\xff` | the byte 0xFF (exactly 2 hex digits) |
/// | any other byte | itself (raw bytes that are not UTF-8 too) |
///
/// A backslash followed by anything else is an error: a name that holds a backslash is
/// written with it doubled, so `a\b` cannot mean two things.
///
/// [`Object::uri`]: super::Object::uri
/// [`Object::label`]: super::Object::label
///
/// ```
/// use std::ffi::OsStr;
/// use std::os::unix::ffi::OsStrExt;
/// use ipckit::host::unescape;
///
/// let name = OsStr::from_bytes(b"/bad\xff\x1b[2J\\x41");
/// let shown = ipckit::name::escape(name);
/// assert_eq!(shown, "/bad\\xff\\u{1b}[2J\\\\x41");
/// assert_eq!(unescape(OsStr::new(&shown)).unwrap(), name);
/// assert!(unescape(OsStr::new("/a\\b")).is_err());
/// ```
pub fn unescape(text: &OsStr) -> Result<OsString, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let bad = |what: &str| {
            Err(format!(
                "{what} at byte {i} of '{}': a backslash in a name is written \\\\, a byte as \\xNN, a character as \\u{{N}}, as ipckit ls prints names",
                crate::name::escape(text)
            ))
        };
        match bytes.get(i + 1) {
            Some(b'\\') => out.push(b'\\'),
            Some(b'n') => out.push(b'\n'),
            Some(b't') => out.push(b'\t'),
            Some(b'r') => out.push(b'\r'),
            Some(b'x') => {
                let hex = bytes
                    .get(i + 2..i + 4)
                    .and_then(|h| std::str::from_utf8(h).ok());
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) if hex.is_some_and(|h| h.bytes().all(|c| c.is_ascii_hexdigit())) => {
                        out.push(b);
                        i += 4;
                        continue;
                    }
                    _ => return bad("'\\x' without two hex digits"),
                }
            }
            Some(b'u') => {
                let rest = &bytes[i + 2..];
                let close = rest.iter().position(|&b| b == b'}');
                let digits = match (rest.first(), close) {
                    (Some(b'{'), Some(close)) => std::str::from_utf8(&rest[1..close]).ok(),
                    _ => None,
                };
                let c = digits
                    .filter(|d| {
                        (1..=6).contains(&d.len()) && d.bytes().all(|c| c.is_ascii_hexdigit())
                    })
                    .and_then(|d| u32::from_str_radix(d, 16).ok())
                    .and_then(char::from_u32);
                match (c, close) {
                    (Some(c), Some(close)) => {
                        out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                        i += 2 + close + 1;
                        continue;
                    }
                    _ => return bad("'\\u' without {HEX} of a character"),
                }
            }
            Some(_) => return bad("a backslash that starts no escape"),
            None => return bad("a backslash at the end"),
        }
        i += 2;
    }
    Ok(OsString::from_vec(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_escape_reads_back() {
        for (text, bytes) in [
            (&b"plain"[..], &b"plain"[..]),
            (b"a\\\\b", b"a\\b"),
            (b"\\n\\t\\r", b"\n\t\r"),
            (b"\\u{1b}[31m", b"\x1b[31m"),
            (b"\\u{202e}", "\u{202e}".as_bytes()),
            (b"\\xff\\x00", b"\xff\x00"),
            // Raw bytes, as an argument given by a shell's $'...' arrives.
            (b"raw\xff\x1b", b"raw\xff\x1b"),
        ] {
            assert_eq!(
                unescape(OsStr::from_bytes(text)).unwrap().as_bytes(),
                bytes,
                "{}",
                String::from_utf8_lossy(text)
            );
        }
        for bad in [
            &b"a\\b"[..],
            b"end\\",
            b"\\x4",
            b"\\xg0",
            b"\\u{}",
            b"\\u{1234567}",
            b"\\u{d800}",
            b"\\u1b",
            b"\\u{1b",
        ] {
            assert!(
                unescape(OsStr::from_bytes(bad)).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    proptest! {
        #[test]
        fn unescape_inverts_escape(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let name = OsStr::from_bytes(&bytes);
            let shown = crate::name::escape(name);
            prop_assert!(!shown.bytes().any(|b| b.is_ascii_control()));
            prop_assert_eq!(unescape(OsStr::new(&shown)).unwrap(), name);
        }

        #[test]
        fn unescape_inverts_escape_of_text(text in "\\PC*|[\\x00-\\x1f\\x7f-\\u{9f}\\\\a-z]{0,20}") {
            let name = OsStr::new(&text);
            prop_assert_eq!(unescape(OsStr::new(&crate::name::escape(name))).unwrap(), name);
        }
    }
}
