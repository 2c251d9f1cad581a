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
                Scan::Incomplete | Scan::Partial(_) => Parse::Incomplete,
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

/// How far a `*N` request that has not all arrived yet was parsed (Redis's `multibulklen`
/// and the offset it reached): the next read resumes there, so each byte of a request that
/// trickles in is looked at once, not once per read. Offsets are from the request's start.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Arguments the request has (0: no request under way).
    count: usize,
    /// Where its first argument starts (after the `*N` line).
    start: usize,
    /// Arguments found complete so far.
    done: usize,
    /// Where the next one starts.
    at: usize,
}

impl Progress {
    /// Where the parse of a request under way has reached (0 when none is).
    pub fn offset(&self) -> usize {
        self.at
    }
}

/// As [`parse_request`], but into `args`, whose vectors are reused from one request to the
/// next (cleared and refilled): the event loop's form, with no allocation per argument once
/// the vectors have grown. The vectors past `argc` are left as they were.
pub fn parse_request_into(buf: &[u8], limits: &Limits, args: &mut Vec<Vec<u8>>) -> Parsed {
    parse_request_resume(buf, limits, args, &mut Progress::default())
}

/// As [`parse_request_into`], resuming an incomplete `*N` request where `progress` says the
/// last call on the same buffer (grown since, its start unmoved) stopped. An incomplete
/// request's arguments are not copied until it is whole (`args` is shared by every client);
/// then one pass copies them. `progress` is cleared when the request is whole or invalid.
pub fn parse_request_resume(
    buf: &[u8],
    limits: &Limits,
    args: &mut Vec<Vec<u8>>,
    progress: &mut Progress,
) -> Parsed {
    let mut copy = |i: usize, a: &[u8]| {
        if i == args.len() {
            args.push(a.to_vec());
        } else {
            let slot = &mut args[i];
            slot.clear();
            slot.extend_from_slice(a);
        }
    };
    if progress.count > 0 {
        let p = *progress;
        return match bulks(buf, limits, p.count, p.done, p.at, |_, _| {}) {
            Scan::Partial(q) => {
                *progress = Progress {
                    start: p.start,
                    ..q
                };
                Parsed::Incomplete
            }
            Scan::Incomplete => Parsed::Incomplete,
            Scan::Invalid(e) => {
                *progress = Progress::default();
                Parsed::Invalid(e)
            }
            Scan::Done { .. } => {
                *progress = Progress::default();
                match bulks(buf, limits, p.count, 0, p.start, copy) {
                    Scan::Done { argc, used } => Parsed::Request { argc, used },
                    _ => unreachable!("a request found whole is whole on the second pass"),
                }
            }
        };
    }
    match buf.first() {
        None => Parsed::Incomplete,
        Some(b'*') => match multibulk(buf, limits, &mut copy) {
            Scan::Done { argc, used } => Parsed::Request { argc, used },
            Scan::Incomplete => Parsed::Incomplete,
            Scan::Partial(p) => {
                *progress = p;
                Parsed::Incomplete
            }
            Scan::Invalid(e) => Parsed::Invalid(e),
        },
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
    Done {
        argc: usize,
        used: usize,
    },
    /// Not arrived, and not even its `*N` line.
    Incomplete,
    /// Not all arrived: how far it got.
    Partial(Progress),
    Invalid(String),
}

fn invalid(what: &str) -> Scan {
    Scan::Invalid(format!("ERR Protocol error: {what}"))
}

/// The number after the tag byte at `buf[at]` on a line that ends in CR LF, and where the
/// next line starts: one pass over the digits, what every client sends. `None` for anything
/// else (a bare LF, no digits, not arrived yet): the caller then reads it the general way.
#[inline]
fn quick_number(buf: &[u8], at: usize) -> Option<(i64, usize)> {
    let mut i = at + 1;
    let mut n: i64 = 0;
    let start = i;
    while let Some(&d) = buf.get(i) {
        if d.is_ascii_digit() {
            if i - start >= 18 {
                return None;
            }
            n = n * 10 + (d - b'0') as i64;
            i += 1;
        } else if d == b'\r' && i > start && buf.get(i + 1) == Some(&b'\n') {
            return Some((n, i + 2));
        } else {
            return None;
        }
    }
    None
}

/// A `*N` request: each argument handed to `arg(index, bytes)` as it is found (an incomplete
/// request may have handed some already).
#[inline]
fn multibulk(buf: &[u8], limits: &Limits, mut arg: impl FnMut(usize, &[u8])) -> Scan {
    if let Some((count, at)) = quick_number(buf, 0) {
        if count as u64 > limits.max_args as u64 {
            return invalid("invalid multibulk length");
        }
        if count == 0 {
            return Scan::Done { argc: 0, used: at };
        }
        return bulks(buf, limits, count as usize, 0, at, arg);
    }
    let Some((count_line, at)) = line_at(buf, 0) else {
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
    bulks(buf, limits, count, 0, at, &mut arg)
}

#[cfg(test)]
thread_local! {
    /// Bytes the bulk scanner stepped over (each argument's header and body, or what had
    /// arrived of them), for the test that the work on a trickling request is linear.
    static EXAMINED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

#[inline]
fn examined(_n: usize) {
    #[cfg(test)]
    EXAMINED.with(|e| e.set(e.get() + _n));
}

/// The bulk strings `first..count` of a request, the first of them at `at`.
#[inline]
fn bulks(
    buf: &[u8],
    limits: &Limits,
    count: usize,
    first: usize,
    mut at: usize,
    mut arg: impl FnMut(usize, &[u8]),
) -> Scan {
    let start = at;
    // `looked`: the bytes looked at to find it incomplete.
    let partial = |done: usize, at: usize, looked: usize| {
        examined(looked);
        Scan::Partial(Progress {
            count,
            start,
            done,
            at,
        })
    };
    for i in first..count {
        let Some(&tag) = buf.get(at) else {
            return partial(i, at, 0);
        };
        if tag != b'$' {
            return invalid(&format!("expected '$', got '{}'", tag as char));
        }
        let (len, body) = match quick_number(buf, at) {
            Some((n, body)) => (n, body),
            None => {
                let Some((len_line, body)) = line_at(buf, at) else {
                    if buf.len() - at > limits.max_inline {
                        return invalid("too big bulk count string");
                    }
                    return partial(i, at, buf.len() - at);
                };
                match number(&len_line[1..]) {
                    Some(n) => (n, body),
                    None => return invalid("invalid bulk length"),
                }
            }
        };
        let len = match len {
            n if n >= 0 && n as u64 <= limits.max_bulk as u64 => n as usize,
            _ => return invalid("invalid bulk length"),
        };
        let end = body + len;
        if buf.len() < end + 2 {
            return partial(i, at, body - at);
        }
        if &buf[end..end + 2] != b"\r\n" {
            return invalid("invalid bulk length");
        }
        arg(i, &buf[body..end]);
        examined(end + 2 - at);
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
    fn parsing_into_reused_vectors_finds_what_parse_request_finds() {
        let l = Limits::default();
        let mut pool = vec![b"stale and long".to_vec(); 5];
        for input in [
            &b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"[..],
            b"*2\n$3\nGET\n$1\r\nk\r\n",
            b"*1\r\n$0\r\n\r\n",
            b"*0\r\n",
            b"*-1\r\n",
            b"PING a 'b c'\r\n",
            b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nabc",
            b"*1\r\n$-1\r\n",
            b"*12345678901234567890\r\n",
            b"*1\r\n$2x\r\nab\r\n",
        ] {
            let want = parse_request(input, &l);
            let got = parse_request_into(input, &l, &mut pool);
            match (want, got) {
                (Parse::Request { args, used }, Parsed::Request { argc, used: u }) => {
                    assert_eq!(used, u, "{input:?}");
                    assert_eq!(args[..], pool[..argc], "{input:?}");
                }
                (Parse::Incomplete, Parsed::Incomplete) => {}
                (Parse::Invalid(a), Parsed::Invalid(b)) => assert_eq!(a, b),
                (a, b) => panic!("{input:?}: {a:?} vs {b:?}"),
            }
        }
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

    fn examined_now() -> usize {
        EXAMINED.with(|e| e.get())
    }

    /// Feeds `input` `chunk` bytes at a time, as the event loop does (the buffer grows, its
    /// start stays), each call resuming with `progress` or, with `resume` false, from the
    /// start as the loop once did. Returns the request's arguments and the bytes examined.
    fn trickle(input: &[u8], chunk: usize, resume: bool) -> (Vec<Vec<u8>>, usize) {
        let l = Limits::default();
        let mut pool = Vec::new();
        let mut progress = Progress::default();
        let before = examined_now();
        let mut end = 0;
        loop {
            end = (end + chunk).min(input.len());
            if !resume {
                progress = Progress::default();
            }
            match parse_request_resume(&input[..end], &l, &mut pool, &mut progress) {
                Parsed::Request { argc, used } => {
                    assert_eq!(used, input.len());
                    pool.truncate(argc);
                    return (pool, examined_now() - before);
                }
                Parsed::Incomplete => assert!(end < input.len(), "whole yet incomplete"),
                Parsed::Invalid(e) => panic!("{e}"),
            }
        }
    }

    #[test]
    fn a_trickling_multibulk_is_parsed_in_linear_work() {
        let n = 20_000;
        let mut input = format!("*{n}\r\n").into_bytes();
        for i in 0..n {
            let a = i.to_string();
            input.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
        }
        let (args, work) = trickle(&input, 7, true);
        assert_eq!(args.len(), n);
        assert_eq!(args[n - 1], (n - 1).to_string().into_bytes());
        // Each byte once as it arrives, once more in the copy when it is whole.
        assert!(
            work <= 3 * input.len(),
            "{work} bytes examined for {}",
            input.len()
        );
        // What the loop did before, on a tenth of it: parse from the start on every read.
        let small = {
            let mut v = format!("*{}\r\n", n / 10).into_bytes();
            for _ in 0..n / 10 {
                v.extend_from_slice(b"$1\r\na\r\n");
            }
            v
        };
        let (_, work) = trickle(&small, 7, false);
        assert!(
            work > 50 * small.len(),
            "the measure tells quadratic from linear: {work}"
        );
    }

    proptest::proptest! {
        #[test]
        fn resuming_finds_what_one_parse_finds(
            args in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..40), 1..30),
            chunk in 1usize..64,
        ) {
            let mut input = format!("*{}\r\n", args.len()).into_bytes();
            for a in &args {
                input.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
                input.extend_from_slice(a);
                input.extend_from_slice(b"\r\n");
            }
            let (got, _) = trickle(&input, chunk, true);
            proptest::prop_assert_eq!(&got, &args);
            match parse_request(&input, &Limits::default()) {
                Parse::Request { args: one, .. } => proptest::prop_assert_eq!(one, args),
                other => proptest::prop_assert!(false, "{other:?}"),
            }
        }
    }
}
