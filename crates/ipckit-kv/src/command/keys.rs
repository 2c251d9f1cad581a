//! The keyspace commands: DEL, UNLINK, EXISTS, TYPE, EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT
//! (NX XX GT LT), TTL, PTTL, EXPIRETIME, PEXPIRETIME, PERSIST, KEYS, SCAN (MATCH COUNT TYPE),
//! DBSIZE, FLUSHDB, FLUSHALL, SELECT.

use super::strings::invalid_expire;
use super::{Ctx, ERR_NOT_INT, ERR_SYNTAX, Outcome, Spec, err, fmt_i64, is, parse_i64};
use crate::resp::Reply;
use crate::store::glob;

const W: &[&str] = &["write"];
const W_FAST: &[&str] = &["write", "fast"];
const RO_FAST: &[&str] = &["readonly", "fast"];
const RO: &[&str] = &["readonly"];

/// This family's entries in the command table.
pub(super) const SPECS: &[Spec] = &[
    Spec {
        name: "del",
        arity: -2,
        flags: W,
        keys: (1, -1, 1),
        run: del,
    },
    Spec {
        name: "unlink",
        arity: -2,
        flags: W_FAST,
        keys: (1, -1, 1),
        run: del,
    },
    Spec {
        name: "exists",
        arity: -2,
        flags: RO_FAST,
        keys: (1, -1, 1),
        run: exists,
    },
    Spec {
        name: "type",
        arity: 2,
        flags: RO_FAST,
        keys: (1, 1, 1),
        run: type_,
    },
    Spec {
        name: "expire",
        arity: -3,
        flags: W_FAST,
        keys: (1, 1, 1),
        run: expire,
    },
    Spec {
        name: "pexpire",
        arity: -3,
        flags: W_FAST,
        keys: (1, 1, 1),
        run: pexpire,
    },
    Spec {
        name: "expireat",
        arity: -3,
        flags: W_FAST,
        keys: (1, 1, 1),
        run: expireat,
    },
    Spec {
        name: "pexpireat",
        arity: -3,
        flags: W_FAST,
        keys: (1, 1, 1),
        run: pexpireat,
    },
    Spec {
        name: "ttl",
        arity: 2,
        flags: RO_FAST,
        keys: (1, 1, 1),
        run: ttl,
    },
    Spec {
        name: "pttl",
        arity: 2,
        flags: RO_FAST,
        keys: (1, 1, 1),
        run: pttl,
    },
    Spec {
        name: "expiretime",
        arity: 2,
        flags: RO_FAST,
        keys: (1, 1, 1),
        run: expiretime,
    },
    Spec {
        name: "pexpiretime",
        arity: 2,
        flags: RO_FAST,
        keys: (1, 1, 1),
        run: pexpiretime,
    },
    Spec {
        name: "persist",
        arity: 2,
        flags: W_FAST,
        keys: (1, 1, 1),
        run: persist,
    },
    Spec {
        name: "keys",
        arity: 2,
        flags: RO,
        keys: (0, 0, 0),
        run: keys,
    },
    Spec {
        name: "scan",
        arity: -2,
        flags: RO,
        keys: (0, 0, 0),
        run: scan,
    },
    Spec {
        name: "dbsize",
        arity: 1,
        flags: RO_FAST,
        keys: (0, 0, 0),
        run: dbsize,
    },
    Spec {
        name: "flushdb",
        arity: -1,
        flags: W,
        keys: (0, 0, 0),
        run: flush,
    },
    Spec {
        name: "flushall",
        arity: -1,
        flags: W,
        keys: (0, 0, 0),
        run: flush,
    },
    Spec {
        name: "select",
        arity: 2,
        flags: &["loading", "stale", "fast"],
        keys: (0, 0, 0),
        run: select,
    },
];

fn del(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    let now = ctx.now_ms;
    let mut gone = Vec::new();
    for k in &args[1..] {
        // A key past its time counts as missing (and goes).
        if ctx.store.contains(k, now) && ctx.store.remove(k).is_some() {
            gone.push(k);
        }
    }
    let n = gone.len() as i64;
    let p = if gone.is_empty() {
        Vec::new()
    } else {
        ctx.prop(|| {
            let mut c = vec![b"DEL".to_vec()];
            c.extend(gone.iter().map(|k| k.to_vec()));
            vec![c]
        })
    };
    Outcome::write(Reply::Int(n), p)
}

fn exists(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    let now = ctx.now_ms;
    let n = args[1..]
        .iter()
        .filter(|k| ctx.store.contains(k, now))
        .count();
    Outcome::reply(Reply::Int(n as i64))
}

fn type_(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    let t = ctx
        .store
        .get(&args[1], ctx.now_ms)
        .map_or("none", |v| v.type_name());
    Outcome::reply(Reply::status(t))
}

#[derive(Default)]
struct ExpireFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
}

fn expire_flags(args: &[Vec<u8>]) -> Result<ExpireFlags, Outcome> {
    let mut f = ExpireFlags::default();
    for a in args {
        if is(a, "nx") {
            f.nx = true;
        } else if is(a, "xx") {
            f.xx = true;
        } else if is(a, "gt") {
            f.gt = true;
        } else if is(a, "lt") {
            f.lt = true;
        } else {
            let mut line = b"ERR Unsupported option ".to_vec();
            line.extend_from_slice(a);
            return Err(Outcome::reply(super::error_line(line)));
        }
    }
    if f.nx && (f.xx || f.gt || f.lt) {
        return Err(err(
            "ERR NX and XX, GT or LT options at the same time are not compatible",
        ));
    }
    if f.gt && f.lt {
        return Err(err(
            "ERR GT and LT options at the same time are not compatible",
        ));
    }
    Ok(f)
}

/// EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT, as Redis's `expireGenericCommand`.
fn expire_generic(
    ctx: &mut Ctx<'_>,
    args: &[Vec<u8>],
    cmd: &str,
    seconds: bool,
    relative: bool,
) -> Outcome {
    let f = match expire_flags(&args[3..]) {
        Ok(f) => f,
        Err(e) => return e,
    };
    let Some(mut when) = parse_i64(&args[2]) else {
        return err(ERR_NOT_INT);
    };
    if seconds {
        if !(i64::MIN / 1000..=i64::MAX / 1000).contains(&when) {
            return invalid_expire(cmd);
        }
        when *= 1000;
    }
    if relative {
        let base = ctx.now_ms as i64;
        if when > i64::MAX - base {
            return invalid_expire(cmd);
        }
        when += base;
    }
    let key = &args[1];
    let now = ctx.now_ms;
    if !ctx.store.contains(key, now) {
        return Outcome::reply(Reply::Int(0));
    }
    let current = ctx.store.expires_at(key, now).map(|t| t as i64);
    let refuse = (f.nx && current.is_some())
        || (f.xx && current.is_none())
        || (f.gt && current.is_none_or(|c| when <= c))
        || (f.lt && current.is_some_and(|c| when >= c));
    if refuse {
        return Outcome::reply(Reply::Int(0));
    }
    // While loading the log a past time is kept (the key is purged when the replay ends):
    // later commands in the log must find the key with its time to live.
    if when <= now as i64 && !ctx.store.loading() {
        ctx.store.remove(key);
        let p = ctx.prop(|| vec![vec![b"DEL".to_vec(), key.clone()]]);
        return Outcome::write(Reply::Int(1), p);
    }
    ctx.store.set_expiry(key, now, Some(when as u64));
    let p = ctx.prop(|| {
        let mut b = [0u8; 20];
        vec![vec![
            b"PEXPIREAT".to_vec(),
            key.clone(),
            fmt_i64(when, &mut b).to_vec(),
        ]]
    });
    Outcome::write(Reply::Int(1), p)
}

fn expire(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    expire_generic(ctx, args, "expire", true, true)
}

fn pexpire(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    expire_generic(ctx, args, "pexpire", false, true)
}

fn expireat(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    expire_generic(ctx, args, "expireat", true, false)
}

fn pexpireat(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    expire_generic(ctx, args, "pexpireat", false, false)
}

/// TTL and friends: -2 missing, -1 no expiry, else `f(expiry)`.
fn ttl_generic(ctx: &mut Ctx<'_>, key: &[u8], f: impl Fn(u64, u64) -> i64) -> Outcome {
    let now = ctx.now_ms;
    if !ctx.store.contains(key, now) {
        return Outcome::reply(Reply::Int(-2));
    }
    Outcome::reply(Reply::Int(
        ctx.store.expires_at(key, now).map_or(-1, |t| f(t, now)),
    ))
}

fn ttl(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    ttl_generic(ctx, &args[1], |t, now| ((t - now + 500) / 1000) as i64)
}

fn pttl(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    ttl_generic(ctx, &args[1], |t, now| (t - now) as i64)
}

fn expiretime(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    ttl_generic(ctx, &args[1], |t, _| (t / 1000) as i64)
}

fn pexpiretime(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    ttl_generic(ctx, &args[1], |t, _| t as i64)
}

fn persist(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    let now = ctx.now_ms;
    if ctx.store.expires_at(&args[1], now).is_none() {
        return Outcome::reply(Reply::Int(0));
    }
    ctx.store.set_expiry(&args[1], now, None);
    Outcome::write(Reply::Int(1), ctx.prop_args(args))
}

fn keys(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    let pat = &args[1];
    let all = pat.as_slice() == b"*";
    let found = ctx
        .store
        .keys(ctx.now_ms)
        .filter(|k| all || glob::matches(pat, k, false))
        .map(|k| Reply::Bulk(k.clone()))
        .collect();
    Outcome::reply(Reply::Array(found))
}

/// A cursor as Redis's `strtoul` takes it (a leading sign allowed, `-1` wraps).
fn parse_cursor(s: &[u8]) -> Option<u64> {
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(if neg { v.wrapping_neg() } else { v })
}

fn scan(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    let Some(cursor) = parse_cursor(&args[1]) else {
        return err("ERR invalid cursor");
    };
    let mut count = 10usize;
    let mut pattern: Option<&[u8]> = None;
    let mut type_name: Option<&[u8]> = None;
    let mut j = 2;
    while j < args.len() {
        let Some(v) = args.get(j + 1) else {
            return err(ERR_SYNTAX);
        };
        if is(&args[j], "count") {
            match parse_i64(v) {
                None => return err(ERR_NOT_INT),
                Some(n) if n < 1 => return err(ERR_SYNTAX),
                Some(n) => count = n as usize,
            }
        } else if is(&args[j], "match") {
            pattern = (v.as_slice() != b"*").then_some(v.as_slice());
        } else if is(&args[j], "type") {
            type_name = Some(v);
        } else {
            return err(ERR_SYNTAX);
        }
        j += 2;
    }
    let now = ctx.now_ms;
    let (next, keys) = ctx.store.scan(cursor, count, now);
    let keys = keys
        .into_iter()
        .filter(|k| pattern.is_none_or(|p| glob::matches(p, k, false)))
        .filter(|k| {
            type_name.is_none_or(|t| {
                ctx.store
                    .peek(k, now)
                    .is_some_and(|(v, _)| is(t, v.type_name()))
            })
        })
        .map(Reply::Bulk)
        .collect();
    let mut b = [0u8; 20];
    let cursor = if next > i64::MAX as u64 {
        next.to_string().into_bytes()
    } else {
        fmt_i64(next as i64, &mut b).to_vec()
    };
    Outcome::reply(Reply::Array(vec![Reply::Bulk(cursor), Reply::Array(keys)]))
}

fn dbsize(ctx: &mut Ctx<'_>, _args: &[Vec<u8>]) -> Outcome {
    ctx.store.purge_expired(ctx.now_ms);
    Outcome::reply(Reply::Int(ctx.store.len() as i64))
}

fn flush(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    match &args[1..] {
        [] => {}
        [a] if is(a, "async") || is(a, "sync") => {}
        _ => return err(ERR_SYNTAX),
    }
    ctx.store.clear();
    let p = ctx.prop(|| vec![vec![args[0].to_ascii_uppercase()]]);
    Outcome::write(Reply::OK, p)
}

fn select(_ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    match parse_i64(&args[1]) {
        None => err(ERR_NOT_INT),
        Some(0) => Outcome::reply(Reply::OK),
        Some(_) => err("ERR DB index is out of range"),
    }
}
