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
fn number(s: &[u8]) -> Option<i64> {
    std::str::from_utf8(s).ok()?.parse::<i64>().ok()
}

/// Parses one request from the start of `buf`.
pub fn parse_request(buf: &[u8], limits: &Limits) -> Parse {
    match buf.first() {
        None => Parse::Incomplete,
        Some(b'*') => parse_multibulk(buf, limits),
        Some(_) => parse_inline(buf, limits),
    }
}

fn parse_multibulk(buf: &[u8], limits: &Limits) -> Parse {
    let Some((count_line, mut at)) = line_at(buf, 0) else {
        if buf.len() > limits.max_inline {
            return protocol_error("too big mbulk count string");
        }
        return Parse::Incomplete;
    };
    let count = match number(&count_line[1..]) {
        Some(n) if n > limits.max_args as i64 => {
            return protocol_error("invalid multibulk length");
        }
        Some(n) if n <= 0 => {
            return Parse::Request {
                args: Vec::new(),
                used: at,
            };
        }
        Some(n) => n as usize,
        None => return protocol_error("invalid multibulk length"),
    };
    // Never trust the count for an allocation: grow as the arguments arrive.
    let mut args = Vec::with_capacity(count.min(64));
    for _ in 0..count {
        let Some(&tag) = buf.get(at) else {
            return Parse::Incomplete;
        };
        if tag != b'$' {
            return protocol_error(&format!("expected '$', got '{}'", tag as char));
        }
        let Some((len_line, body)) = line_at(buf, at) else {
            if buf.len() - at > limits.max_inline {
                return protocol_error("too big bulk count string");
            }
            return Parse::Incomplete;
        };
        let len = match number(&len_line[1..]) {
            Some(n) if n >= 0 && n as u64 <= limits.max_bulk as u64 => n as usize,
            _ => return protocol_error("invalid bulk length"),
        };
        let end = body + len;
        if buf.len() < end + 2 {
            return Parse::Incomplete;
        }
        if &buf[end..end + 2] != b"\r\n" {
            return protocol_error("invalid bulk length");
        }
        args.push(buf[body..end].to_vec());
        at = end + 2;
    }
    Parse::Request { args, used: at }
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
