//! Glob patterns as Redis matches them (KEYS, SCAN MATCH, CONFIG GET): a port of Redis's
//! `stringmatchlen` (util.c), byte for byte, with its quirks: `*` any run, `?` one byte,
//! `[abc]` `[^abc]` `[a-z]` (a reversed range is swapped; an unterminated class ends at the
//! pattern's end), `\x` a literal `x`, and the early stop that keeps `a*a*a*...b` linear.
//!
//! ```
//! use ipckit_kv::store::glob::matches;
//! assert!(matches(b"h?llo", b"hello", false));
//! assert!(matches(b"h[^e]llo", b"hallo", false));
//! assert!(!matches(b"h[a-b]llo", b"hello", false));
//! assert!(!matches(b"*", b"", false)); // as Redis: KEYS and SCAN special-case a lone `*`
//! assert!(matches(b"HE*", b"hello", true));
//! ```

/// Whether `string` matches `pattern` (`nocase`: ASCII case-insensitively).
pub fn matches(pattern: &[u8], string: &[u8], nocase: bool) -> bool {
    let mut skip_longer = false;
    imp(pattern, string, nocase, &mut skip_longer, 0)
}

/// The byte at `i`, or NUL past the end (the C code reads the terminator there).
#[inline]
fn at(s: &[u8], i: usize) -> u8 {
    s.get(i).copied().unwrap_or(0)
}

fn lower(c: u8) -> u8 {
    c.to_ascii_lowercase()
}

fn imp(pat: &[u8], s: &[u8], nocase: bool, skip_longer: &mut bool, depth: usize) -> bool {
    // Redis bounds nothing but the stack; patterns come from clients, so stop absurd nesting.
    if depth > 1000 {
        return false;
    }
    let (mut p, mut i) = (0usize, 0usize);
    while p < pat.len() && i < s.len() {
        match pat[p] {
            b'*' => {
                while p + 1 < pat.len() && pat[p + 1] == b'*' {
                    p += 1;
                }
                if p + 1 == pat.len() {
                    return true;
                }
                while i < s.len() {
                    if imp(&pat[p + 1..], &s[i..], nocase, skip_longer, depth + 1) {
                        return true;
                    }
                    if *skip_longer {
                        return false;
                    }
                    i += 1;
                }
                *skip_longer = true;
                return false;
            }
            b'?' => i += 1,
            b'[' => {
                p += 1;
                let not = at(pat, p) == b'^';
                if not {
                    p += 1;
                }
                let mut hit = false;
                let c = s[i];
                loop {
                    let left = pat.len().saturating_sub(p);
                    if at(pat, p) == b'\\' && left >= 2 {
                        p += 1;
                        if pat[p] == c {
                            hit = true;
                        }
                    } else if at(pat, p) == b']' {
                        break;
                    } else if left == 0 {
                        p -= 1;
                        break;
                    } else if left >= 3 && pat[p + 1] == b'-' {
                        let (mut start, mut end, mut ch) = (pat[p], pat[p + 2], c);
                        if start > end {
                            std::mem::swap(&mut start, &mut end);
                        }
                        if nocase {
                            start = lower(start);
                            end = lower(end);
                            ch = lower(ch);
                        }
                        p += 2;
                        if ch >= start && ch <= end {
                            hit = true;
                        }
                    } else if (!nocase && pat[p] == c) || (nocase && lower(pat[p]) == lower(c)) {
                        hit = true;
                    }
                    p += 1;
                }
                if not {
                    hit = !hit;
                }
                if !hit {
                    return false;
                }
                i += 1;
            }
            b => {
                let mut b = b;
                if b == b'\\' && pat.len() - p >= 2 {
                    p += 1;
                    b = pat[p];
                }
                let same = if nocase {
                    lower(b) == lower(s[i])
                } else {
                    b == s[i]
                };
                if !same {
                    return false;
                }
                i += 1;
            }
        }
        p += 1;
        if i == s.len() {
            while at(pat, p) == b'*' {
                p += 1;
            }
            break;
        }
    }
    p >= pat.len() && i == s.len()
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn redis_cases() {
        let m = |p: &str, s: &str| matches(p.as_bytes(), s.as_bytes(), false);
        assert!(m("*", "anything"));
        assert!(m("h*o", "hello"));
        assert!(m("h*o", "ho"));
        assert!(!m("h*o", "hellx"));
        assert!(m("a\\*b", "a*b"));
        assert!(!m("a\\*b", "axb"));
        assert!(m("[z-a]", "m"), "a reversed range is swapped");
        assert!(m("[abc", "c"), "an unterminated class ends at the end");
        assert!(m("[\\]]", "]"));
        assert!(!m("[^a]", "a"));
        assert!(!m("?", ""));
        assert!(m("", ""));
        assert!(!m("", "a"));
        assert!(m("a**", "a"));
        assert!(m("k:*:x", "k:1:2:x"));
        assert!(!m("a*a*a*a*a*a*a*a*a*a*b", &"a".repeat(200)));
    }
}
