//! The set commands: SADD, SREM, SPOP (with a count), SMEMBERS, SISMEMBER, SMISMEMBER,
//! SCARD.
//!
//! SPOP takes the members the set's hash order gives first: each set has its own random
//! hash keys, so the order is arbitrary, as Redis's random pick is, though not uniform.

use std::collections::HashSet;

use super::lists::positive_count;
use super::{Ctx, ERR_SYNTAX, Outcome, Spec, err, wrongtype};
use crate::resp::Reply;
use crate::store::{ITEM_BYTES, Value};

const RO_FAST: &[&str] = &["readonly", "fast"];

/// This family's entries in the command table.
pub(super) const SPECS: &[Spec] = &[
    Spec {
        name: "sadd",
        arity: -3,
        flags: &["write", "denyoom", "fast"],
        keys: (1, 1, 1),
        run: sadd,
    },
    Spec {
        name: "srem",
        arity: -3,
        flags: &["write", "fast"],
        keys: (1, 1, 1),
        run: srem,
    },
    Spec {
        name: "spop",
        arity: -2,
        flags: &["write", "fast"],
        keys: (1, 1, 1),
        run: spop,
    },
    Spec {
        name: "smembers",
        arity: 2,
        flags: &["readonly"],
        keys: (1, 1, 1),
        run: smembers,
    },
    Spec {
        name: "sismember",
        arity: 3,
        flags: RO_FAST,
        keys: (1, 1, 1),
        run: sismember,
    },
    Spec {
        name: "smismember",
        arity: -3,
        flags: RO_FAST,
        keys: (1, 1, 1),
        run: smismember,
    },
    Spec {
        name: "scard",
        arity: 2,
        flags: RO_FAST,
        keys: (1, 1, 1),
        run: scard,
    },
];

fn sadd(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    let key = &args[1];
    let now = ctx.now_ms;
    let added = match ctx.store.lookup_mut(key, now) {
        Some(Value::Set(s)) => {
            let mut added = 0;
            let mut bytes = 0u64;
            for m in &args[2..] {
                if !s.contains(m) {
                    s.insert(m.clone());
                    added += 1;
                    bytes += m.len() as u64 + ITEM_BYTES;
                }
            }
            if added > 0 {
                ctx.store.mark_changed(key);
                ctx.store.adjust_used(bytes as i64);
            }
            added
        }
        Some(_) => return wrongtype(),
        None => {
            let s: HashSet<Vec<u8>> = args[2..].iter().cloned().collect();
            let n = s.len();
            ctx.store.set(key.clone(), Value::Set(s), None);
            n
        }
    };
    let p = if added > 0 {
        ctx.prop_args(args)
    } else {
        Vec::new()
    };
    Outcome::write(Reply::Int(added as i64), p)
}

fn srem(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    let key = &args[1];
    let s = match ctx.store.lookup_mut(key, ctx.now_ms) {
        None => return Outcome::reply(Reply::Int(0)),
        Some(Value::Set(s)) => s,
        Some(_) => return wrongtype(),
    };
    let mut gone = 0;
    let mut freed = 0u64;
    for m in &args[2..] {
        if s.remove(m) {
            gone += 1;
            freed += m.len() as u64 + ITEM_BYTES;
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

fn spop(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    if args.len() > 3 {
        return err(ERR_SYNTAX);
    }
    let count = match args.get(2).map(|a| positive_count(a)) {
        None => None,
        Some(Ok(n)) => Some(n),
        Some(Err(e)) => return e,
    };
    let key = &args[1];
    let missing = if count.is_some() {
        Reply::Set(Vec::new())
    } else {
        Reply::Nil
    };
    let s = match ctx.store.lookup_mut(key, ctx.now_ms) {
        None => return Outcome::reply(missing),
        Some(Value::Set(s)) => s,
        Some(_) => return wrongtype(),
    };
    if count == Some(0) {
        return Outcome::reply(Reply::Set(Vec::new()));
    }
    let want = count.unwrap_or(1);
    let popped: Vec<Vec<u8>> = s.extract_if(|_| true).take(want).collect();
    // Popping from the front of a hash table leaves empty slots the next pop walks over:
    // rehash when the table is mostly empty.
    if s.capacity() > 64 && s.len() * 4 < s.capacity() {
        s.shrink_to_fit();
    }
    let freed: u64 = popped.iter().map(|m| m.len() as u64 + ITEM_BYTES).sum();
    ctx.store.mark_changed(key);
    ctx.store.adjust_used(-(freed as i64));
    ctx.store.remove_if_empty(key);
    let p = ctx.prop(|| {
        let mut c = vec![b"SREM".to_vec(), key.clone()];
        c.extend(popped.iter().cloned());
        vec![c]
    });
    let reply = match count {
        None => popped.into_iter().next().map_or(Reply::Nil, Reply::Bulk),
        Some(_) => Reply::Set(popped.into_iter().map(Reply::Bulk).collect()),
    };
    Outcome::write(reply, p)
}

/// The set at `key` for a read: Ok(None) when missing.
fn read<'a>(ctx: &'a mut Ctx<'_>, key: &[u8]) -> Result<Option<&'a HashSet<Vec<u8>>>, Outcome> {
    match ctx.store.get(key, ctx.now_ms) {
        None => Ok(None),
        Some(Value::Set(s)) => Ok(Some(s)),
        Some(_) => Err(wrongtype()),
    }
}

fn smembers(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    match read(ctx, &args[1]) {
        Err(e) => e,
        Ok(s) => Outcome::reply(Reply::Set(
            s.into_iter()
                .flatten()
                .map(|m| Reply::Bulk(m.clone()))
                .collect(),
        )),
    }
}

fn sismember(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    match read(ctx, &args[1]) {
        Err(e) => e,
        Ok(s) => Outcome::reply(Reply::Int(s.is_some_and(|s| s.contains(&args[2])) as i64)),
    }
}

fn smismember(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    match read(ctx, &args[1]) {
        Err(e) => e,
        Ok(s) => Outcome::reply(Reply::Array(
            args[2..]
                .iter()
                .map(|m| Reply::Int(s.is_some_and(|s| s.contains(m)) as i64))
                .collect(),
        )),
    }
}

fn scard(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    match read(ctx, &args[1]) {
        Err(e) => e,
        Ok(s) => Outcome::reply(Reply::Int(s.map_or(0, |s| s.len()) as i64)),
    }
}
