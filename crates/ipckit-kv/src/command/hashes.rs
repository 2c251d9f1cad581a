//! The hash commands: HSET, HMSET, HSETNX, HGET, HMGET, HDEL, HGETALL, HKEYS, HVALS, HLEN,
//! HEXISTS, HINCRBY.

use std::collections::HashMap;

use super::{Ctx, ERR_NOT_INT, ERR_OVERFLOW, Outcome, Spec, err, fmt_i64, parse_i64, wrongtype};
use crate::resp::Reply;
use crate::store::{ITEM_BYTES, Value};

const W_OOM_FAST: &[&str] = &["write", "denyoom", "fast"];
const RO_FAST: &[&str] = &["readonly", "fast"];
const RO: &[&str] = &["readonly"];

/// This family's entries in the command table.
pub(super) const SPECS: &[Spec] = &[
    Spec {
        name: "hset",
        arity: -4,
        flags: W_OOM_FAST,
        keys: (1, 1, 1),
        run: hset,
    },
    Spec {
        name: "hmset",
        arity: -4,
        flags: W_OOM_FAST,
        keys: (1, 1, 1),
        run: hmset,
    },
    Spec {
        name: "hsetnx",
        arity: 4,
        flags: W_OOM_FAST,
        keys: (1, 1, 1),
        run: hsetnx,
    },
    Spec {
        name: "hget",
        arity: 3,
        flags: RO_FAST,
        keys: (1, 1, 1),
        run: hget,
    },
    Spec {
        name: "hmget",
        arity: -3,
        flags: RO_FAST,
        keys: (1, 1, 1),
        run: hmget,
    },
    Spec {
        name: "hdel",
        arity: -3,
        flags: &["write", "fast"],
        keys: (1, 1, 1),
        run: hdel,
    },
    Spec {
        name: "hgetall",
        arity: 2,
        flags: RO,
        keys: (1, 1, 1),
        run: hgetall,
    },
    Spec {
        name: "hkeys",
        arity: 2,
        flags: RO,
        keys: (1, 1, 1),
        run: hkeys,
    },
    Spec {
        name: "hvals",
        arity: 2,
        flags: RO,
        keys: (1, 1, 1),
        run: hvals,
    },
    Spec {
        name: "hlen",
        arity: 2,
        flags: RO_FAST,
        keys: (1, 1, 1),
        run: hlen,
    },
    Spec {
        name: "hexists",
        arity: 3,
        flags: RO_FAST,
        keys: (1, 1, 1),
        run: hexists,
    },
    Spec {
        name: "hincrby",
        arity: 4,
        flags: W_OOM_FAST,
        keys: (1, 1, 1),
        run: hincrby,
    },
];

/// Sets the field-value pairs; how many fields are new (Err: the key holds another type).
fn set_pairs(ctx: &mut Ctx<'_>, key: &[u8], pairs: &[Vec<u8>]) -> Result<usize, Outcome> {
    let now = ctx.now_ms;
    match ctx.store.lookup_mut(key, now) {
        Some(Value::Hash(h)) => {
            let mut added = 0;
            let mut delta = 0i64;
            for fv in pairs.chunks_exact(2) {
                match h.get_mut(&fv[0]) {
                    Some(v) => {
                        delta += fv[1].len() as i64 - v.len() as i64;
                        v.clear();
                        v.extend_from_slice(&fv[1]);
                    }
                    None => {
                        delta += (fv[0].len() + fv[1].len()) as i64 + ITEM_BYTES as i64;
                        h.insert(fv[0].clone(), fv[1].clone());
                        added += 1;
                    }
                }
            }
            ctx.store.mark_changed(key);
            ctx.store.adjust_used(delta);
            Ok(added)
        }
        Some(_) => Err(wrongtype()),
        None => {
            let mut h = HashMap::with_capacity(pairs.len() / 2);
            for fv in pairs.chunks_exact(2) {
                h.insert(fv[0].clone(), fv[1].clone());
            }
            let added = h.len();
            ctx.store.set(key.to_vec(), Value::Hash(h), None);
            Ok(added)
        }
    }
}

fn hset(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    if !args.len().is_multiple_of(2) {
        return Outcome::reply(super::arity_error("hset"));
    }
    match set_pairs(ctx, &args[1], &args[2..]) {
        Ok(n) => Outcome::write(Reply::Int(n as i64), ctx.prop_args(args)),
        Err(e) => e,
    }
}

fn hmset(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    if !args.len().is_multiple_of(2) {
        return Outcome::reply(super::arity_error("hmset"));
    }
    match set_pairs(ctx, &args[1], &args[2..]) {
        Ok(_) => Outcome::write(Reply::OK, ctx.prop_args(args)),
        Err(e) => e,
    }
}

fn hsetnx(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    match ctx.store.get(&args[1], ctx.now_ms) {
        Some(Value::Hash(h)) if h.contains_key(&args[2]) => Outcome::reply(Reply::Int(0)),
        Some(Value::Hash(_)) | None => match set_pairs(ctx, &args[1], &args[2..4]) {
            Ok(_) => Outcome::write(Reply::Int(1), ctx.prop_args(args)),
            Err(e) => e,
        },
        Some(_) => wrongtype(),
    }
}

type Hash = HashMap<Vec<u8>, Vec<u8>>;

/// The hash at `key` for a read: Ok(None) when missing.
fn read<'a>(ctx: &'a mut Ctx<'_>, key: &[u8]) -> Result<Option<&'a Hash>, Outcome> {
    match ctx.store.get(key, ctx.now_ms) {
        None => Ok(None),
        Some(Value::Hash(h)) => Ok(Some(h)),
        Some(_) => Err(wrongtype()),
    }
}

fn hget(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    match read(ctx, &args[1]) {
        Err(e) => e,
        Ok(h) => Outcome::reply(
            h.and_then(|h| h.get(&args[2]))
                .map_or(Reply::Nil, |v| Reply::Bulk(v.clone())),
        ),
    }
}

fn hmget(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    match read(ctx, &args[1]) {
        Err(e) => e,
        Ok(h) => Outcome::reply(Reply::Array(
            args[2..]
                .iter()
                .map(|f| {
                    h.and_then(|h| h.get(f))
                        .map_or(Reply::Nil, |v| Reply::Bulk(v.clone()))
                })
                .collect(),
        )),
    }
}

fn hdel(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    let key = &args[1];
    let h = match ctx.store.lookup_mut(key, ctx.now_ms) {
        None => return Outcome::reply(Reply::Int(0)),
        Some(Value::Hash(h)) => h,
        Some(_) => return wrongtype(),
    };
    let mut gone = 0;
    let mut freed = 0u64;
    for f in &args[2..] {
        if let Some(v) = h.remove(f) {
            gone += 1;
            freed += (f.len() + v.len()) as u64 + ITEM_BYTES;
        }
    }
    if gone == 0 {
        return Outcome::reply(Reply::Int(0));
    }
    ctx.store.mark_changed(key);
    ctx.store.adjust_used(-(freed as i64));
    ctx.store.remove_if_empty(key);
    Outcome::write(Reply::Int(gone), ctx.prop_args(args))
}

fn hgetall(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    match read(ctx, &args[1]) {
        Err(e) => e,
        Ok(h) => Outcome::reply(Reply::Map(
            h.into_iter()
                .flatten()
                .map(|(f, v)| (Reply::Bulk(f.clone()), Reply::Bulk(v.clone())))
                .collect(),
        )),
    }
}

fn hkeys(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    match read(ctx, &args[1]) {
        Err(e) => e,
        Ok(h) => Outcome::reply(Reply::Array(
            h.into_iter()
                .flat_map(|h| h.keys())
                .map(|f| Reply::Bulk(f.clone()))
                .collect(),
        )),
    }
}

fn hvals(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    match read(ctx, &args[1]) {
        Err(e) => e,
        Ok(h) => Outcome::reply(Reply::Array(
            h.into_iter()
                .flat_map(|h| h.values())
                .map(|v| Reply::Bulk(v.clone()))
                .collect(),
        )),
    }
}

fn hlen(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    match read(ctx, &args[1]) {
        Err(e) => e,
        Ok(h) => Outcome::reply(Reply::Int(h.map_or(0, |h| h.len()) as i64)),
    }
}

fn hexists(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    match read(ctx, &args[1]) {
        Err(e) => e,
        Ok(h) => Outcome::reply(Reply::Int(
            h.is_some_and(|h| h.contains_key(&args[2])) as i64
        )),
    }
}

fn hincrby(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    let Some(by) = parse_i64(&args[3]) else {
        return err(ERR_NOT_INT);
    };
    let (key, field) = (&args[1], &args[2]);
    let old = match read(ctx, key) {
        Err(e) => return e,
        Ok(None) => 0,
        Ok(Some(h)) => match h.get(field) {
            None => 0,
            Some(v) => match parse_i64(v) {
                Some(n) => n,
                None => return err("ERR hash value is not an integer"),
            },
        },
    };
    let Some(new) = old.checked_add(by) else {
        return err(ERR_OVERFLOW);
    };
    let mut b = [0u8; 20];
    let text = fmt_i64(new, &mut b).to_vec();
    let pair = [field.clone(), text];
    if let Err(e) = set_pairs(ctx, key, &pair) {
        return e;
    }
    Outcome::write(Reply::Int(new), ctx.prop_args(args))
}
