//! Requests: RESP arrays of bulk strings, and inline lines, with Redis's limits and wording.

/// What a parser may take from one client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The longest bulk string (Redis's `proto-max-bulk-len`, 512 MiB).
    pub max_bulk: usize,
    /// The longest inline request line, or array-count line (64 KiB, as Redis).
    pub max_inline: usize,
    /// The most arguments in one request (Redis: 1024 * 1024).
    pub max_args: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk: 512 << 20,
            max_inline: 64 << 10,
            max_args: 1024 * 1024,
        }
    }
}

/// What [`parse_request`] found at the start of a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parse {
    /// A whole request, `used` bytes long. `args` is empty for an empty line or `*0`, which
    /// Redis skips without a reply.
    Request { args: Vec<Vec<u8>>, used: usize },
    /// Not all of it has arrived yet.
    Incomplete,
    /// A protocol error: the error line to reply (`"ERR Protocol error: ..."`) before closing.
    Invalid(String),
}

fn protocol_error(what: &str) -> Parse {
    Parse::Invalid(format!("ERR Protocol error: {what}"))
}

/// The line at `buf[at..]` up to CR LF (or LF), and where the next line starts.
fn line_at(buf: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let rest = buf.get(at..)?;
    let nl = rest.iter().position(|&b| b == b'\n')?;
    let line = &rest[..nl];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    Some((line, at + nl + 1))
}

/// A decimal integer as Redis's `string2ll` takes it: an optional `-`, digits, nothing else.
#[inline]
fn number(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    let mut n: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add((d - b'0') as i64)?;
    }
    Some(if neg { -n } else { n })
}

/// Parses one request from the start of `buf`.
pub fn parse_request(buf: &[u8], limits: &Limits) -> Parse {
    match buf.first() {
        None => Parse::Incomplete,
        Some(b'*') => {
            let mut args = Vec::new();
            match multibulk(buf, limits, |_, a| args.push(a.to_vec())) {
                Scan::Done { used, .. } => Parse::Request { args, used },
                Scan::Incomplete => Parse::Incomplete,
                Scan::Invalid(e) => Parse::Invalid(e),
            }
        }
        Some(_) => parse_inline(buf, limits),
    }
}

/// What [`parse_request_into`] found at the start of a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A whole request, `used` bytes long, its arguments the first `argc` of the vector
    /// given (`argc` 0 for an empty line or `*0`, which Redis skips without a reply).
    Request { argc: usize, used: usize },
    /// Not all of it has arrived yet.
    Incomplete,
    /// A protocol error: the error line to reply before closing.
    Invalid(String),
}

/// As [`parse_request`], but into `args`, whose vectors are reused from one request to the
/// next (cleared and refilled): the event loop's form, with no allocation per argument once
/// the vectors have grown. The vectors past `argc` are left as they were.
pub fn parse_request_into(buf: &[u8], limits: &Limits, args: &mut Vec<Vec<u8>>) -> Parsed {
    match buf.first() {
        None => Parsed::Incomplete,
        Some(b'*') => {
            let scan = multibulk(buf, limits, |i, a| {
                if i == args.len() {
                    args.push(a.to_vec());
                } else {
                    let slot = &mut args[i];
                    slot.clear();
                    slot.extend_from_slice(a);
                }
            });
            match scan {
                Scan::Done { argc, used } => Parsed::Request { argc, used },
                Scan::Incomplete => Parsed::Incomplete,
                Scan::Invalid(e) => Parsed::Invalid(e),
            }
        }
        Some(_) => match parse_inline(buf, limits) {
            Parse::Request { args: got, used } => {
                let argc = got.len();
                for (i, a) in got.into_iter().enumerate() {
                    if i < args.len() {
                        args[i] = a;
                    } else {
                        args.push(a);
                    }
                }
                Parsed::Request { argc, used }
            }
            Parse::Incomplete => Parsed::Incomplete,
            Parse::Invalid(e) => Parsed::Invalid(e),
        },
    }
}

enum Scan {
    Done { argc: usize, used: usize },
    Incomplete,
    Invalid(String),
}

fn invalid(what: &str) -> Scan {
    Scan::Invalid(format!("ERR Protocol error: {what}"))
}

/// A `*N` request: each argument handed to `arg(index, bytes)` as it is found (an incomplete
/// request may have handed some already).
#[inline]
fn multibulk(buf: &[u8], limits: &Limits, mut arg: impl FnMut(usize, &[u8])) -> Scan {
    let Some((count_line, mut at)) = line_at(buf, 0) else {
        if buf.len() > limits.max_inline {
            return invalid("too big mbulk count string");
        }
        return Scan::Incomplete;
    };
    let count = match number(&count_line[1..]) {
        Some(n) if n > limits.max_args as i64 => {
            return invalid("invalid multibulk length");
        }
        Some(n) if n <= 0 => return Scan::Done { argc: 0, used: at },
        Some(n) => n as usize,
        None => return invalid("invalid multibulk length"),
    };
    for i in 0..count {
        let Some(&tag) = buf.get(at) else {
            return Scan::Incomplete;
        };
        if tag != b'$' {
            return invalid(&format!("expected '$', got '{}'", tag as char));
        }
        let Some((len_line, body)) = line_at(buf, at) else {
            if buf.len() - at > limits.max_inline {
                return invalid("too big bulk count string");
            }
            return Scan::Incomplete;
        };
        let len = match number(&len_line[1..]) {
            Some(n) if n >= 0 && n as u64 <= limits.max_bulk as u64 => n as usize,
            _ => return invalid("invalid bulk length"),
        };
        let end = body + len;
        if buf.len() < end + 2 {
            return Scan::Incomplete;
        }
        if &buf[end..end + 2] != b"\r\n" {
            return invalid("invalid bulk length");
        }
        arg(i, &buf[body..end]);
        at = end + 2;
    }
    Scan::Done {
        argc: count,
        used: at,
    }
}

fn parse_inline(buf: &[u8], limits: &Limits) -> Parse {
    let Some((line, used)) = line_at(buf, 0) else {
        if buf.len() > limits.max_inline {
            return protocol_error("too big inline request");
        }
        return Parse::Incomplete;
    };
    if line.len() > limits.max_inline {
        return protocol_error("too big inline request");
    }
    match split_args(line) {
        Some(args) if args.len() > limits.max_args => protocol_error("invalid multibulk length"),
        Some(args) => Parse::Request { args, used },
        None => protocol_error("unbalanced quotes in request"),
    }
}

/// Splits an inline line as Redis's `sdssplitargs` does: on spaces, with "double quotes"
/// (escapes `\n \r \t \b \a \\ \" \xHH`) and 'single quotes' (only `\'`); a closing quote
/// must be followed by a space or the end. `None` for unbalanced quotes.
pub(crate) fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut args = Vec::new();
    let mut i = 0;
    let n = line.len();
    loop {
        while i < n && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= n {
            return Some(args);
        }
        let mut cur = Vec::new();
        let mut in_dq = false;
        let mut in_sq = false;
        loop {
            if in_dq {
                if i >= n {
                    return None;
                }
                let c = line[i];
                if c == b'\\'
                    && i + 3 < n
                    && line[i + 1] == b'x'
                    && let (Some(h), Some(l)) = (hex(line[i + 2]), hex(line[i + 3]))
                {
                    cur.push(h * 16 + l);
                    i += 4;
                    continue;
                }
                if c == b'\\' && i + 1 < n {
                    cur.push(match line[i + 1] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        other => other,
                    });
                    i += 2;
                    continue;
                }
                if c == b'"' {
                    if i + 1 < n && !line[i + 1].is_ascii_whitespace() {
                        return None;
                    }
                    i += 1;
                    break;
                }
                cur.push(c);
                i += 1;
            } else if in_sq {
                if i >= n {
                    return None;
                }
                let c = line[i];
                if c == b'\\' && i + 1 < n && line[i + 1] == b'\'' {
                    cur.push(b'\'');
                    i += 2;
                    continue;
                }
                if c == b'\'' {
                    if i + 1 < n && !line[i + 1].is_ascii_whitespace() {
                        return None;
                    }
                    i += 1;
                    break;
                }
                cur.push(c);
                i += 1;
            } else {
                if i >= n {
                    break;
                }
                match line[i] {
                    c if c.is_ascii_whitespace() => break,
                    b'"' => in_dq = true,
                    b'\'' => in_sq = true,
                    c => cur.push(c),
                }
                i += 1;
            }
        }
        args.push(cur);
    }
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(buf: &[u8]) -> Vec<Vec<u8>> {
        match parse_request(buf, &Limits::default()) {
            Parse::Request { args, .. } => args,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn inline_quoting_follows_redis() {
        assert_eq!(
            req(b"SET k \"a b\\x41\\n\"\r\n"),
            vec![b"SET".to_vec(), b"k".to_vec(), b"a bA\n".to_vec()]
        );
        assert_eq!(
            req(b"ECHO 'it\\'s'\n"),
            vec![b"ECHO".to_vec(), b"it's".to_vec()]
        );
        assert_eq!(req(b"\r\n"), Vec::<Vec<u8>>::new());
        assert!(matches!(
            parse_request(b"ECHO \"open\r\n", &Limits::default()),
            Parse::Invalid(e) if e == "ERR Protocol error: unbalanced quotes in request"
        ));
    }

    #[test]
    fn bad_multibulk_is_worded_as_redis_words_it() {
        let l = Limits::default();
        assert_eq!(
            parse_request(b"*1\r\n:1\r\n", &l),
            Parse::Invalid("ERR Protocol error: expected '$', got ':'".into())
        );
        assert_eq!(
            parse_request(b"*x\r\n", &l),
            Parse::Invalid("ERR Protocol error: invalid multibulk length".into())
        );
        assert_eq!(
            parse_request(b"*1\r\n$-5\r\n", &l),
            Parse::Invalid("ERR Protocol error: invalid bulk length".into())
        );
        let small = Limits { max_bulk: 4, ..l };
        assert_eq!(
            parse_request(b"*1\r\n$5\r\n", &small),
            Parse::Invalid("ERR Protocol error: invalid bulk length".into())
        );
    }
}
