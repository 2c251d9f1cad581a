//! Replies, and how each is written in RESP2 and RESP3.

use std::borrow::Cow;

/// The protocol a connection speaks: RESP2 until the client says `HELLO 3`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    #[default]
    Resp2,
    Resp3,
}

/// One reply. Commands build these; [`Reply::encode`] writes them for the connection's
/// protocol.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `+OK`: a status line (no CR or LF in it).
    Status(Cow<'static, str>),
    /// `-ERR ...`: the whole error line after the `-`, its first word the code (`ERR`,
    /// `WRONGTYPE`, `NOAUTH`, `EXECABORT`, `OOM`...), worded as Redis words it.
    Error(Cow<'static, str>),
    /// `:42`.
    Int(i64),
    /// `$3\r\nabc`.
    Bulk(Vec<u8>),
    /// No value: RESP2 `$-1`, RESP3 `_`.
    Nil,
    /// No array (an aborted EXEC, a blocked pop that timed out): RESP2 `*-1`, RESP3 `_`.
    NilArray,
    /// `*N` and N replies.
    Array(Vec<Reply>),
    /// RESP3 `%N` and N key/value pairs; RESP2 an array of 2N.
    Map(Vec<(Reply, Reply)>),
    /// RESP3 `~N`; RESP2 an array.
    Set(Vec<Reply>),
    /// RESP3 `,1.5`; RESP2 a bulk string of the number as Redis prints it.
    Double(f64),
    /// RESP3 `=N\r\ntxt:...` (verbatim text, INFO's reply); RESP2 a bulk string.
    Verbatim(Vec<u8>),
}

impl Reply {
    /// `+OK`.
    pub const OK: Reply = Reply::Status(Cow::Borrowed("OK"));

    /// A status reply.
    pub fn status(s: &'static str) -> Reply {
        Reply::Status(Cow::Borrowed(s))
    }

    /// An error reply; `line` starts with its code: `"ERR syntax error"`.
    pub fn error(line: impl Into<Cow<'static, str>>) -> Reply {
        Reply::Error(line.into())
    }

    /// A bulk string.
    pub fn bulk(b: impl Into<Vec<u8>>) -> Reply {
        Reply::Bulk(b.into())
    }

    /// Appends this reply, encoded for `proto`, to `out`.
    pub fn encode(&self, proto: Protocol, out: &mut Vec<u8>) {
        let resp3 = proto == Protocol::Resp3;
        match self {
            Reply::Status(s) => line(out, b'+', s.as_bytes()),
            Reply::Error(s) => line(out, b'-', s.as_bytes()),
            Reply::Int(n) => number(out, b':', *n),
            Reply::Bulk(b) => bulk(out, b'$', b),
            Reply::Nil if resp3 => out.extend_from_slice(b"_\r\n"),
            Reply::Nil => out.extend_from_slice(b"$-1\r\n"),
            Reply::NilArray if resp3 => out.extend_from_slice(b"_\r\n"),
            Reply::NilArray => out.extend_from_slice(b"*-1\r\n"),
            Reply::Array(items) => {
                number(out, b'*', items.len() as i64);
                for i in items {
                    i.encode(proto, out);
                }
            }
            Reply::Map(pairs) => {
                if resp3 {
                    number(out, b'%', pairs.len() as i64);
                } else {
                    number(out, b'*', (pairs.len() * 2) as i64);
                }
                for (k, v) in pairs {
                    k.encode(proto, out);
                    v.encode(proto, out);
                }
            }
            Reply::Set(items) => {
                number(out, if resp3 { b'~' } else { b'*' }, items.len() as i64);
                for i in items {
                    i.encode(proto, out);
                }
            }
            Reply::Double(d) if resp3 => line(out, b',', format_double(*d).as_bytes()),
            Reply::Double(d) => bulk(out, b'$', format_double(*d).as_bytes()),
            Reply::Verbatim(text) if resp3 => {
                let mut body = b"txt:".to_vec();
                body.extend_from_slice(text);
                bulk(out, b'=', &body)
            }
            Reply::Verbatim(text) => bulk(out, b'$', text),
        }
    }

    /// Whether this is an error reply.
    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }
}

fn line(out: &mut Vec<u8>, tag: u8, body: &[u8]) {
    out.push(tag);
    out.extend_from_slice(body);
    out.extend_from_slice(b"\r\n");
}

/// `tag`, `n` in decimal, CR LF, with no allocation (every reply has one: the hot path).
#[inline]
fn number(out: &mut Vec<u8>, tag: u8, n: i64) {
    let mut buf = [0u8; 20];
    line(out, tag, fmt_i64(n, &mut buf));
}

/// `v` in decimal into the end of `buf`, and where it starts there: the crate's one integer
/// formatter (replies, command results, the log), with no allocation.
#[inline]
pub(crate) fn decimal(mut v: u64, buf: &mut [u8; 20]) -> usize {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            return i;
        }
    }
}

/// `n` in decimal, into `buf` (no allocation).
#[inline]
pub(crate) fn fmt_i64(n: i64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = decimal(n.unsigned_abs(), buf);
    if n < 0 {
        i -= 1;
        buf[i] = b'-';
    }
    &buf[i..]
}

fn bulk(out: &mut Vec<u8>, tag: u8, body: &[u8]) {
    out.reserve(body.len() + 16);
    number(out, tag, body.len() as i64);
    out.extend_from_slice(body);
    out.extend_from_slice(b"\r\n");
}

/// A double as Redis prints one: `inf`, `-inf`, `nan`, an integer without a fraction when it
/// is one (`3`), else the shortest form that reads back the same (`1.5`, `0.1`).
pub fn format_double(d: f64) -> String {
    if d.is_nan() {
        "nan".into()
    } else if d.is_infinite() {
        if d > 0.0 { "inf".into() } else { "-inf".into() }
    } else if d == d.trunc() && d.abs() < 1e17 {
        format!("{}", d as i64)
    } else {
        format!("{d}")
    }
}
