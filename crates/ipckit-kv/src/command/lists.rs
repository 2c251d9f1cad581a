//! The list commands: LPUSH, RPUSH, LPUSHX, RPUSHX, LPOP, RPOP (with a count), LRANGE,
//! LLEN, LINDEX.

use std::collections::VecDeque;

use super::{Ctx, ERR_NOT_INT, ERR_POSITIVE, Outcome, Spec, err, parse_i64, wrongtype};
use crate::resp::Reply;
use crate::store::{ITEM_BYTES, Value};

const W_OOM_FAST: &[&str] = &["write", "denyoom", "fast"];
const W_FAST: &[&str] = &["write", "fast"];
const RO_FAST: &[&str] = &["readonly", "fast"];

/// This family's entries in the command table.
pub(super) const SPECS: &[Spec] = &[
    Spec {
        name: "lpush",
        arity: -3,
        flags: W_OOM_FAST,
        keys: (1, 1, 1),
        run: lpush,
    },
    Spec {
        name: "rpush",
        arity: -3,
        flags: W_OOM_FAST,
        keys: (1, 1, 1),
        run: rpush,
    },
    Spec {
        name: "lpushx",
        arity: -3,
        flags: W_OOM_FAST,
        keys: (1, 1, 1),
        run: lpushx,
    },
    Spec {
        name: "rpushx",
        arity: -3,
        flags: W_OOM_FAST,
        keys: (1, 1, 1),
        run: rpushx,
    },
    Spec {
        name: "lpop",
        arity: -2,
        flags: W_FAST,
        keys: (1, 1, 1),
        run: lpop,
    },
    Spec {
        name: "rpop",
        arity: -2,
        flags: W_FAST,
        keys: (1, 1, 1),
        run: rpop,
    },
    Spec {
        name: "lrange",
        arity: 4,
        flags: &["readonly"],
        keys: (1, 1, 1),
        run: lrange,
    },
    Spec {
        name: "llen",
        arity: 2,
        flags: RO_FAST,
        keys: (1, 1, 1),
        run: llen,
    },
    Spec {
        name: "lindex",
        arity: 3,
        flags: &["readonly"],
        keys: (1, 1, 1),
        run: lindex,
    },
];

fn push(ctx: &mut Ctx<'_>, args: &[Vec<u8>], front: bool, only_existing: bool) -> Outcome {
    let key = &args[1];
    let now = ctx.now_ms;
    let elems = &args[2..];
    let bytes: u64 = elems.iter().map(|e| e.len() as u64 + ITEM_BYTES).sum();
    let len = match ctx.store.lookup_mut(key, now) {
        Some(Value::List(l)) => {
            for e in elems {
                if front {
                    l.push_front(e.clone());
                } else {
                    l.push_back(e.clone());
                }
            }
            let n = l.len();
            ctx.store.mark_changed(key);
            ctx.store.adjust_used(bytes as i64);
            n
        }
        Some(_) => return wrongtype(),
        None if only_existing => return Outcome::reply(Reply::Int(0)),
        None => {
            let mut l = VecDeque::with_capacity(elems.len());
            for e in elems {
                if front {
                    l.push_front(e.clone());
                } else {
                    l.push_back(e.clone());
                }
            }
            let n = l.len();
            ctx.store.set(key.clone(), Value::List(l), None);
            n
        }
    };
    Outcome::write(Reply::Int(len as i64), ctx.prop_args(args))
}

fn lpush(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    push(ctx, args, true, false)
}

fn rpush(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    push(ctx, args, false, false)
}

fn lpushx(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    push(ctx, args, true, true)
}

fn rpushx(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    push(ctx, args, false, true)
}

/// A count as Redis's `getPositiveLongFromObjectOrReply` takes it.
pub(super) fn positive_count(arg: &[u8]) -> Result<usize, Outcome> {
    match parse_i64(arg) {
        Some(n) if n >= 0 => Ok(n as usize),
        _ => Err(super::err(ERR_POSITIVE)),
    }
}

fn pop(ctx: &mut Ctx<'_>, args: &[Vec<u8>], front: bool) -> Outcome {
    if args.len() > 3 {
        return Outcome::reply(super::arity_error(if front { "lpop" } else { "rpop" }));
    }
    let count = match args.get(2).map(|a| positive_count(a)) {
        None => None,
        Some(Ok(n)) => Some(n),
        Some(Err(e)) => return e,
    };
    let key = &args[1];
    let now = ctx.now_ms;
    let missing = if count.is_some() {
        Reply::NilArray
    } else {
        Reply::Nil
    };
    let l = match ctx.store.lookup_mut(key, now) {
        None => return Outcome::reply(missing),
        Some(Value::List(l)) => l,
        Some(_) => return wrongtype(),
    };
    if count == Some(0) {
        return Outcome::reply(Reply::Array(Vec::new()));
    }
    let take = count.unwrap_or(1).min(l.len());
    let mut freed = 0u64;
    let mut popped = Vec::with_capacity(take);
    for _ in 0..take {
        let e = if front { l.pop_front() } else { l.pop_back() };
        let Some(e) = e else { break };
        freed += e.len() as u64 + ITEM_BYTES;
        popped.push(e);
    }
    ctx.store.mark_changed(key);
    ctx.store.adjust_used(-(freed as i64));
    ctx.store.remove_if_empty(key);
    let reply = match count {
        None => popped.pop().map_or(Reply::Nil, Reply::Bulk),
        Some(_) => Reply::Array(popped.into_iter().map(Reply::Bulk).collect()),
    };
    Outcome::write(reply, ctx.prop_args(args))
}

fn lpop(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    pop(ctx, args, true)
}

fn rpop(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    pop(ctx, args, false)
}

/// Redis's index range: negative from the end, clamped; `None` when empty.
pub(super) fn clamp_range(start: i64, stop: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let mut start = if start < 0 { len + start } else { start };
    let mut stop = if stop < 0 { len + stop } else { stop };
    if start < 0 {
        start = 0;
    }
    if start > stop || start >= len {
        return None;
    }
    if stop >= len {
        stop = len - 1;
    }
    Some((start as usize, stop as usize))
}

fn lrange(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    let (Some(start), Some(stop)) = (parse_i64(&args[2]), parse_i64(&args[3])) else {
        return err(ERR_NOT_INT);
    };
    let l = match ctx.store.get(&args[1], ctx.now_ms) {
        None => return Outcome::reply(Reply::Array(Vec::new())),
        Some(Value::List(l)) => l,
        Some(_) => return wrongtype(),
    };
    let items = match clamp_range(start, stop, l.len()) {
        None => Vec::new(),
        Some((a, b)) => l.range(a..=b).map(|e| Reply::Bulk(e.clone())).collect(),
    };
    Outcome::reply(Reply::Array(items))
}

fn llen(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    match ctx.store.get(&args[1], ctx.now_ms) {
        None => Outcome::reply(Reply::Int(0)),
        Some(Value::List(l)) => Outcome::reply(Reply::Int(l.len() as i64)),
        Some(_) => wrongtype(),
    }
}

fn lindex(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    let Some(i) = parse_i64(&args[2]) else {
        return err(ERR_NOT_INT);
    };
    let l = match ctx.store.get(&args[1], ctx.now_ms) {
        None => return Outcome::reply(Reply::Nil),
        Some(Value::List(l)) => l,
        Some(_) => return wrongtype(),
    };
    let i = if i < 0 { l.len() as i64 + i } else { i };
    let e = usize::try_from(i).ok().and_then(|i| l.get(i));
    Outcome::reply(e.map_or(Reply::Nil, |e| Reply::Bulk(e.clone())))
}
