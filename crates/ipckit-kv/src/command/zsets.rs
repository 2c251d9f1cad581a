//! The sorted set commands: ZADD (NX XX GT LT CH INCR), ZINCRBY, ZSCORE, ZCARD, ZREM,
//! ZPOPMIN, ZPOPMAX (with a count), ZRANGE (by index, BYSCORE, REV, LIMIT, WITHSCORES),
//! ZREVRANGE, ZRANGEBYSCORE, ZREVRANGEBYSCORE.
//!
//! In RESP3 a score is a double, and WITHSCORES pairs are arrays of [member, score], as
//! Redis 7 replies.

use super::lists::{clamp_range, positive_count};
use super::{
    Ctx, ERR_NOT_FLOAT, ERR_NOT_INT, ERR_SYNTAX, Outcome, Spec, err, is, parse_f64, parse_i64,
    wrongtype,
};
use crate::resp::{Protocol, Reply};
use crate::store::{Value, ZSet};

const RO: &[&str] = &["readonly"];
const RO_FAST: &[&str] = &["readonly", "fast"];
const W_OOM_FAST: &[&str] = &["write", "denyoom", "fast"];

/// This family's entries in the command table.
pub(super) const SPECS: &[Spec] = &[
    Spec {
        name: "zadd",
        arity: -4,
        flags: W_OOM_FAST,
        keys: (1, 1, 1),
        run: zadd,
    },
    Spec {
        name: "zincrby",
        arity: 4,
        flags: W_OOM_FAST,
        keys: (1, 1, 1),
        run: zincrby,
    },
    Spec {
        name: "zscore",
        arity: 3,
        flags: RO_FAST,
        keys: (1, 1, 1),
        run: zscore,
    },
    Spec {
        name: "zcard",
        arity: 2,
        flags: RO_FAST,
        keys: (1, 1, 1),
        run: zcard,
    },
    Spec {
        name: "zrem",
        arity: -3,
        flags: &["write", "fast"],
        keys: (1, 1, 1),
        run: zrem,
    },
    Spec {
        name: "zpopmin",
        arity: -2,
        flags: &["write", "fast"],
        keys: (1, 1, 1),
        run: zpopmin,
    },
    Spec {
        name: "zpopmax",
        arity: -2,
        flags: &["write", "fast"],
        keys: (1, 1, 1),
        run: zpopmax,
    },
    Spec {
        name: "zrange",
        arity: -4,
        flags: RO,
        keys: (1, 1, 1),
        run: zrange,
    },
    Spec {
        name: "zrevrange",
        arity: -4,
        flags: RO,
        keys: (1, 1, 1),
        run: zrevrange,
    },
    Spec {
        name: "zrangebyscore",
        arity: -4,
        flags: RO,
        keys: (1, 1, 1),
        run: zrangebyscore,
    },
    Spec {
        name: "zrevrangebyscore",
        arity: -4,
        flags: RO,
        keys: (1, 1, 1),
        run: zrevrangebyscore,
    },
];

const ERR_NAN: &str = "ERR resulting score is not a number (NaN)";

#[derive(Default)]
struct AddFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
    ch: bool,
    incr: bool,
}

/// ZADD and ZINCRBY, as Redis's `zaddGenericCommand`: options, then every score parsed
/// before anything changes, then each pair as `zsetAdd` does it.
fn zadd_generic(ctx: &mut Ctx<'_>, args: &[Vec<u8>], mut f: AddFlags, options: bool) -> Outcome {
    let key = &args[1];
    let mut at = 2;
    if options {
        while at < args.len() {
            let a = &args[at];
            if is(a, "nx") {
                f.nx = true;
            } else if is(a, "xx") {
                f.xx = true;
            } else if is(a, "ch") {
                f.ch = true;
            } else if is(a, "incr") {
                f.incr = true;
            } else if is(a, "gt") {
                f.gt = true;
            } else if is(a, "lt") {
                f.lt = true;
            } else {
                break;
            }
            at += 1;
        }
    }
    let rest = &args[at..];
    if rest.is_empty() || !rest.len().is_multiple_of(2) {
        return err(ERR_SYNTAX);
    }
    if f.nx && f.xx {
        return err("ERR XX and NX options at the same time are not compatible");
    }
    if (f.nx && (f.gt || f.lt)) || (f.gt && f.lt) {
        return err("ERR GT, LT, and/or NX options at the same time are not compatible");
    }
    if f.incr && rest.len() > 2 {
        return err("ERR INCR option supports a single increment-element pair");
    }
    let mut scores = Vec::with_capacity(rest.len() / 2);
    for pair in rest.chunks_exact(2) {
        match parse_f64(&pair[0]) {
            Some(s) => scores.push(s),
            None => return err(ERR_NOT_FLOAT),
        }
    }
    let now = ctx.now_ms;
    let (mut added, mut updated, mut processed) = (0i64, 0i64, 0i64);
    let mut last = 0.0;
    let exists = match ctx.store.get(key, now) {
        None => false,
        Some(Value::ZSet(_)) => true,
        Some(_) => return wrongtype(),
    };
    if !exists {
        if f.xx {
            return Outcome::reply(if f.incr { Reply::Nil } else { Reply::Int(0) });
        }
        ctx.store.set(key.clone(), Value::ZSet(ZSet::new()), None);
    }
    let Some(Value::ZSet(z)) = ctx.store.lookup_mut(key, now) else {
        unreachable!("made above")
    };
    let before = z.approx_bytes();
    let mut nan = false;
    for (pair, &score) in rest.chunks_exact(2).zip(&scores) {
        let member = &pair[1];
        match z.score(member) {
            Some(cur) => {
                if f.nx {
                    continue;
                }
                let mut new = score;
                if f.incr {
                    new += cur;
                    if new.is_nan() {
                        nan = true;
                        break;
                    }
                }
                if (f.lt && new >= cur) || (f.gt && new <= cur) {
                    continue;
                }
                last = new;
                processed += 1;
                if new != cur {
                    z.insert(member, new);
                    updated += 1;
                }
            }
            None if !f.xx => {
                z.insert(member, score);
                last = score;
                added += 1;
                processed += 1;
            }
            None => {}
        }
    }
    let delta = z.approx_bytes() as i64 - before as i64;
    ctx.store.adjust_used(delta);
    if added + updated > 0 {
        ctx.store.mark_changed(key);
    }
    ctx.store.remove_if_empty(key);
    if nan {
        return err(ERR_NAN);
    }
    let p = if added + updated > 0 {
        ctx.prop_args(args)
    } else {
        Vec::new()
    };
    let reply = if f.incr {
        if processed > 0 {
            Reply::Double(last)
        } else {
            Reply::Nil
        }
    } else {
        Reply::Int(if f.ch { added + updated } else { added })
    };
    Outcome::write(reply, p)
}

fn zadd(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    zadd_generic(ctx, args, AddFlags::default(), true)
}

fn zincrby(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    let f = AddFlags {
        incr: true,
        ..AddFlags::default()
    };
    zadd_generic(ctx, args, f, false)
}

/// The sorted set at `key` for a read: Ok(None) when missing.
fn read<'a>(ctx: &'a mut Ctx<'_>, key: &[u8]) -> Result<Option<&'a ZSet>, Outcome> {
    match ctx.store.get(key, ctx.now_ms) {
        None => Ok(None),
        Some(Value::ZSet(z)) => Ok(Some(z)),
        Some(_) => Err(wrongtype()),
    }
}

fn zscore(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    match read(ctx, &args[1]) {
        Err(e) => e,
        Ok(z) => Outcome::reply(
            z.and_then(|z| z.score(&args[2]))
                .map_or(Reply::Nil, Reply::Double),
        ),
    }
}

fn zcard(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    match read(ctx, &args[1]) {
        Err(e) => e,
        Ok(z) => Outcome::reply(Reply::Int(z.map_or(0, |z| z.len()) as i64)),
    }
}

fn zrem(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    let key = &args[1];
    let z = match ctx.store.lookup_mut(key, ctx.now_ms) {
        None => return Outcome::reply(Reply::Int(0)),
        Some(Value::ZSet(z)) => z,
        Some(_) => return wrongtype(),
    };
    let before = z.approx_bytes();
    let gone = args[2..].iter().filter(|m| z.remove(m).is_some()).count();
    let delta = z.approx_bytes() as i64 - before as i64;
    if gone == 0 {
        return Outcome::reply(Reply::Int(0));
    }
    ctx.store.adjust_used(delta);
    ctx.store.mark_changed(key);
    ctx.store.remove_if_empty(key);
    Outcome::write(Reply::Int(gone as i64), ctx.prop_args(args))
}

/// A (member, score) pair in the reply: RESP2 flat, RESP3 an array of two.
fn pairs(proto: Protocol, items: Vec<(Vec<u8>, f64)>, nested: bool) -> Reply {
    let mut out = Vec::with_capacity(items.len() * 2);
    for (m, s) in items {
        if nested && proto == Protocol::Resp3 {
            out.push(Reply::Array(vec![Reply::Bulk(m), Reply::Double(s)]));
        } else {
            out.push(Reply::Bulk(m));
            out.push(Reply::Double(s));
        }
    }
    Reply::Array(out)
}

fn zpop(ctx: &mut Ctx<'_>, args: &[Vec<u8>], max: bool) -> Outcome {
    if args.len() > 3 {
        return err(ERR_SYNTAX);
    }
    let count = match args.get(2).map(|a| positive_count(a)) {
        None => None,
        Some(Ok(n)) => Some(n),
        Some(Err(e)) => return e,
    };
    let key = &args[1];
    let proto = ctx.session.proto;
    let z = match ctx.store.lookup_mut(key, ctx.now_ms) {
        None => return Outcome::reply(Reply::Array(Vec::new())),
        Some(Value::ZSet(z)) => z,
        Some(_) => return wrongtype(),
    };
    if count == Some(0) {
        return Outcome::reply(Reply::Array(Vec::new()));
    }
    let before = z.approx_bytes();
    let mut popped = Vec::new();
    for _ in 0..count.unwrap_or(1) {
        let item = if max { z.pop_max() } else { z.pop_min() };
        match item {
            Some(p) => popped.push(p),
            None => break,
        }
    }
    let delta = z.approx_bytes() as i64 - before as i64;
    ctx.store.adjust_used(delta);
    ctx.store.mark_changed(key);
    ctx.store.remove_if_empty(key);
    Outcome::write(pairs(proto, popped, count.is_some()), ctx.prop_args(args))
}

fn zpopmin(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    zpop(ctx, args, false)
}

fn zpopmax(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    zpop(ctx, args, true)
}

/// A score bound as Redis's `zslParseRange` takes it: `(` for exclusive, then a double.
fn score_bound(arg: &[u8]) -> Option<(f64, bool)> {
    let (excl, num) = match arg.split_first() {
        Some((b'(', rest)) => (true, rest),
        _ => (false, arg),
    };
    parse_f64(num).map(|v| (v, excl))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum By {
    Rank,
    Score,
}

/// ZRANGE's core. `args[2..4]` are the range, options from `args[4]` on; `by`/`rev` are the
/// command's own (ZREVRANGE, ZRANGEBYSCORE...), which turn those options off.
fn zrange_generic(
    ctx: &mut Ctx<'_>,
    args: &[Vec<u8>],
    by: Option<By>,
    rev: Option<bool>,
) -> Outcome {
    let mut with_scores = false;
    let mut limit: Option<(i64, i64)> = None;
    let mut by_opt = by;
    let mut rev_opt = rev;
    let mut j = 4;
    while j < args.len() {
        let a = &args[j];
        let left = args.len() - j - 1;
        if is(a, "withscores") {
            with_scores = true;
        } else if is(a, "limit") && left >= 2 {
            match (parse_i64(&args[j + 1]), parse_i64(&args[j + 2])) {
                (Some(o), Some(c)) => limit = Some((o, c)),
                _ => return err(ERR_NOT_INT),
            }
            j += 2;
        } else if rev.is_none() && is(a, "rev") {
            rev_opt = Some(true);
        } else if by.is_none() && by_opt.is_none() && is(a, "byscore") {
            by_opt = Some(By::Score);
        } else if by.is_none() && by_opt.is_none() && is(a, "bylex") {
            return err("ERR BYLEX is not supported by this server");
        } else {
            return err(ERR_SYNTAX);
        }
        j += 1;
    }
    let by = by_opt.unwrap_or(By::Rank);
    let rev = rev_opt.unwrap_or(false);
    if limit.is_some_and(|(_, c)| c != -1) && by == By::Rank {
        return err(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        );
    }
    let (lo, hi) = if rev && by == By::Score {
        (&args[3], &args[2])
    } else {
        (&args[2], &args[3])
    };
    enum Range {
        Rank(i64, i64),
        Score((f64, bool), (f64, bool)),
    }
    let range = match by {
        By::Rank => match (parse_i64(lo), parse_i64(hi)) {
            (Some(a), Some(b)) => Range::Rank(a, b),
            _ => return err(ERR_NOT_INT),
        },
        By::Score => match (score_bound(lo), score_bound(hi)) {
            (Some(a), Some(b)) => Range::Score(a, b),
            _ => return err("ERR min or max is not a float"),
        },
    };
    let proto = ctx.session.proto;
    let z = match read(ctx, &args[1]) {
        Err(e) => return e,
        Ok(None) => return Outcome::reply(Reply::Array(Vec::new())),
        Ok(Some(z)) => z,
    };
    let items: Vec<(&[u8], f64)> = match range {
        Range::Rank(a, b) => match clamp_range(a, b, z.len()) {
            None => Vec::new(),
            Some((a, b)) => z.range_by_rank(a, b, rev),
        },
        Range::Score((min, min_x), (max, max_x)) => {
            let mut v = z.range_by_score(min, min_x, max, max_x, rev);
            if let Some((offset, count)) = limit {
                if offset < 0 {
                    v.clear();
                } else {
                    let offset = (offset as usize).min(v.len());
                    v.drain(..offset);
                    if count >= 0 {
                        v.truncate(count as usize);
                    }
                }
            }
            v
        }
    };
    let reply = if with_scores {
        pairs(
            proto,
            items.into_iter().map(|(m, s)| (m.to_vec(), s)).collect(),
            true,
        )
    } else {
        Reply::Array(
            items
                .into_iter()
                .map(|(m, _)| Reply::Bulk(m.to_vec()))
                .collect(),
        )
    };
    Outcome::reply(reply)
}

fn zrange(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    zrange_generic(ctx, args, None, None)
}

fn zrevrange(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    zrange_generic(ctx, args, Some(By::Rank), Some(true))
}

fn zrangebyscore(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    zrange_generic(ctx, args, Some(By::Score), Some(false))
}

fn zrevrangebyscore(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    zrange_generic(ctx, args, Some(By::Score), Some(true))
}
