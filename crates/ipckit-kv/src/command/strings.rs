//! The string commands: SET (EX PX EXAT PXAT NX XX GET KEEPTTL), GET, GETEX, GETDEL, GETSET,
//! SETNX, SETEX, PSETEX, MSET, MGET, INCR, INCRBY, DECR, DECRBY, APPEND, STRLEN.

use super::{
    Ctx, ERR_NOT_INT, ERR_OVERFLOW, ERR_SYNTAX, Outcome, Spec, err, fmt_i64, is, parse_i64,
    wrongtype,
};
use crate::resp::Reply;
use crate::store::Value;

const RW: &[&str] = &["write", "denyoom"];
const RW_FAST: &[&str] = &["write", "denyoom", "fast"];
const RO_FAST: &[&str] = &["readonly", "fast"];

/// This family's entries in the command table.
pub(super) const SPECS: &[Spec] = &[
    Spec {
        name: "get",
        arity: 2,
        flags: RO_FAST,
        keys: (1, 1, 1),
        run: get,
    },
    Spec {
        name: "set",
        arity: -3,
        flags: RW,
        keys: (1, 1, 1),
        run: set,
    },
    Spec {
        name: "getex",
        arity: -2,
        flags: &["write", "fast"],
        keys: (1, 1, 1),
        run: getex,
    },
    Spec {
        name: "getdel",
        arity: 2,
        flags: &["write", "fast"],
        keys: (1, 1, 1),
        run: getdel,
    },
    Spec {
        name: "getset",
        arity: 3,
        flags: RW_FAST,
        keys: (1, 1, 1),
        run: getset,
    },
    Spec {
        name: "setnx",
        arity: 3,
        flags: RW_FAST,
        keys: (1, 1, 1),
        run: setnx,
    },
    Spec {
        name: "setex",
        arity: 4,
        flags: RW,
        keys: (1, 1, 1),
        run: setex,
    },
    Spec {
        name: "psetex",
        arity: 4,
        flags: RW,
        keys: (1, 1, 1),
        run: psetex,
    },
    Spec {
        name: "mset",
        arity: -3,
        flags: RW,
        keys: (1, -1, 2),
        run: mset,
    },
    Spec {
        name: "mget",
        arity: -2,
        flags: RO_FAST,
        keys: (1, -1, 1),
        run: mget,
    },
    Spec {
        name: "incr",
        arity: 2,
        flags: RW_FAST,
        keys: (1, 1, 1),
        run: incr,
    },
    Spec {
        name: "decr",
        arity: 2,
        flags: RW_FAST,
        keys: (1, 1, 1),
        run: decr,
    },
    Spec {
        name: "incrby",
        arity: 3,
        flags: RW_FAST,
        keys: (1, 1, 1),
        run: incrby,
    },
    Spec {
        name: "decrby",
        arity: 3,
        flags: RW_FAST,
        keys: (1, 1, 1),
        run: decrby,
    },
    Spec {
        name: "append",
        arity: 3,
        flags: RW_FAST,
        keys: (1, 1, 1),
        run: append,
    },
    Spec {
        name: "strlen",
        arity: 2,
        flags: RO_FAST,
        keys: (1, 1, 1),
        run: strlen,
    },
];

/// The longest string APPEND may make (Redis's proto-max-bulk-len default).
const MAX_STRING: usize = 512 << 20;

/// `ERR invalid expire time in 'x' command`, for the commands that take one.
pub(super) fn invalid_expire(cmd: &str) -> Outcome {
    err(match cmd {
        "set" => "ERR invalid expire time in 'set' command",
        "setex" => "ERR invalid expire time in 'setex' command",
        "psetex" => "ERR invalid expire time in 'psetex' command",
        "expire" => "ERR invalid expire time in 'expire' command",
        "pexpire" => "ERR invalid expire time in 'pexpire' command",
        "expireat" => "ERR invalid expire time in 'expireat' command",
        "getex" => "ERR invalid expire time in 'getex' command",
        _ => "ERR invalid expire time in 'pexpireat' command",
    })
}

fn get(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    match ctx.store.get(&args[1], ctx.now_ms) {
        None => Outcome::reply(Reply::Nil),
        Some(Value::Str(s)) => Outcome::reply(Reply::Bulk(s.clone())),
        Some(_) => wrongtype(),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Unit {
    Ex,
    Px,
    ExAt,
    PxAt,
}

/// An expiry argument made absolute (Unix ms), checked as Redis's
/// `getExpireMillisecondsOrReply` checks it.
fn absolute_expiry(ctx: &Ctx<'_>, cmd: &str, unit: Unit, arg: &[u8]) -> Result<u64, Outcome> {
    let Some(n) = parse_i64(arg) else {
        return Err(err(ERR_NOT_INT));
    };
    let seconds = matches!(unit, Unit::Ex | Unit::ExAt);
    if n <= 0 || (seconds && n > i64::MAX / 1000) {
        return Err(invalid_expire(cmd));
    }
    let mut ms = if seconds { n * 1000 } else { n };
    if matches!(unit, Unit::Ex | Unit::Px) {
        ms = match ms.checked_add(ctx.now_ms as i64) {
            Some(v) => v,
            None => return Err(invalid_expire(cmd)),
        };
    }
    Ok(ms as u64)
}

/// The string at `key` for a GET-like read: Ok(None) when missing, Err on the wrong type.
fn old_string(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<Option<Vec<u8>>, Outcome> {
    match ctx.store.get(key, ctx.now_ms) {
        None => Ok(None),
        Some(Value::Str(s)) => Ok(Some(s.clone())),
        Some(_) => Err(wrongtype()),
    }
}

fn bulk_or_nil(v: Option<Vec<u8>>) -> Reply {
    v.map_or(Reply::Nil, Reply::Bulk)
}

struct SetOpts {
    nx: bool,
    xx: bool,
    get: bool,
    keep_ttl: bool,
    expires: Option<u64>,
}

/// SET's core, shared with SETNX, SETEX, PSETEX and GETSET.
fn set_generic(ctx: &mut Ctx<'_>, key: &[u8], value: &[u8], o: SetOpts) -> Outcome {
    let mut old = None;
    if o.get {
        match old_string(ctx, key) {
            Ok(v) => old = v,
            Err(e) => return e,
        }
    }
    if o.nx || o.xx {
        let found = if o.get {
            old.is_some()
        } else {
            ctx.store.contains(key, ctx.now_ms)
        };
        if (o.nx && found) || (o.xx && !found) {
            return Outcome::reply(if o.get { bulk_or_nil(old) } else { Reply::Nil });
        }
    }
    let reply = if o.get { bulk_or_nil(old) } else { Reply::OK };
    if let Some(at) = o.expires
        && at <= ctx.now_ms
        && !ctx.store.loading()
    {
        // Already past: the key is gone at once (Redis 7.0 sets it and lets it expire).
        ctx.store.remove(key);
        let p = ctx.prop(|| vec![vec![b"DEL".to_vec(), key.to_vec()]]);
        return Outcome::write(reply, p);
    }
    ctx.store
        .set_str(key, value, ctx.now_ms, o.expires, o.keep_ttl);
    let p = ctx.prop(|| {
        let mut c = vec![b"SET".to_vec(), key.to_vec(), value.to_vec()];
        if let Some(at) = o.expires {
            let mut b = [0u8; 20];
            c.push(b"PXAT".to_vec());
            c.push(fmt_i64(at as i64, &mut b).to_vec());
        } else if o.keep_ttl {
            c.push(b"KEEPTTL".to_vec());
        }
        vec![c]
    });
    Outcome::write(reply, p)
}

fn set(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    let (key, value) = (&args[1], &args[2]);
    if args.len() == 3 {
        // The plain SET: no options to parse.
        ctx.store.set_str(key, value, ctx.now_ms, None, false);
        return Outcome::write(Reply::OK, ctx.prop_args(args));
    }
    let mut o = SetOpts {
        nx: false,
        xx: false,
        get: false,
        keep_ttl: false,
        expires: None,
    };
    let mut unit: Option<(Unit, &[u8])> = None;
    let mut j = 3;
    while j < args.len() {
        let a = &args[j];
        let next = args.get(j + 1);
        let other_unit = |u: Unit| unit.is_some_and(|(v, _)| v != u);
        if is(a, "nx") && !o.xx {
            o.nx = true;
        } else if is(a, "xx") && !o.nx {
            o.xx = true;
        } else if is(a, "get") {
            o.get = true;
        } else if is(a, "keepttl") && unit.is_none() {
            o.keep_ttl = true;
        } else if let Some(u) = [
            ("ex", Unit::Ex),
            ("px", Unit::Px),
            ("exat", Unit::ExAt),
            ("pxat", Unit::PxAt),
        ]
        .iter()
        .find(|(w, _)| is(a, w))
        .map(|(_, u)| *u)
            && !o.keep_ttl
            && !other_unit(u)
            && let Some(n) = next
        {
            unit = Some((u, n));
            j += 1;
        } else {
            return err(ERR_SYNTAX);
        }
        j += 1;
    }
    if let Some((u, n)) = unit {
        match absolute_expiry(ctx, "set", u, n) {
            Ok(at) => o.expires = Some(at),
            Err(e) => return e,
        }
    }
    set_generic(ctx, key, value, o)
}

fn plain(expires: Option<u64>) -> SetOpts {
    SetOpts {
        nx: false,
        xx: false,
        get: false,
        keep_ttl: false,
        expires,
    }
}

fn setnx(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    if ctx.store.contains(&args[1], ctx.now_ms) {
        return Outcome::reply(Reply::Int(0));
    }
    let out = set_generic(ctx, &args[1], &args[2], plain(None));
    Outcome::write(Reply::Int(1), out.propagate)
}

fn setex_generic(ctx: &mut Ctx<'_>, args: &[Vec<u8>], cmd: &str, unit: Unit) -> Outcome {
    match absolute_expiry(ctx, cmd, unit, &args[2]) {
        Ok(at) => set_generic(ctx, &args[1], &args[3], plain(Some(at))),
        Err(e) => e,
    }
}

fn setex(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    setex_generic(ctx, args, "setex", Unit::Ex)
}

fn psetex(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    setex_generic(ctx, args, "psetex", Unit::Px)
}

fn getset(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    let mut o = plain(None);
    o.get = true;
    set_generic(ctx, &args[1], &args[2], o)
}

/// GETEX key [EX s | PX ms | EXAT t | PXAT t | PERSIST].
fn getex(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    let mut unit: Option<(Unit, &[u8])> = None;
    let mut persist = false;
    let mut j = 2;
    while j < args.len() {
        let a = &args[j];
        let next = args.get(j + 1);
        if is(a, "persist") && unit.is_none() {
            persist = true;
        } else if let Some(u) = [
            ("ex", Unit::Ex),
            ("px", Unit::Px),
            ("exat", Unit::ExAt),
            ("pxat", Unit::PxAt),
        ]
        .iter()
        .find(|(w, _)| is(a, w))
        .map(|(_, u)| *u)
            && !persist
            && unit.is_none_or(|(v, _)| v == u)
            && let Some(n) = next
        {
            unit = Some((u, n));
            j += 1;
        } else {
            return err(ERR_SYNTAX);
        }
        j += 1;
    }
    let expires = match unit {
        None => None,
        Some((u, n)) => match absolute_expiry(ctx, "getex", u, n) {
            Ok(at) => Some(at),
            Err(e) => return e,
        },
    };
    let key = &args[1];
    let v = match old_string(ctx, key) {
        Err(e) => return e,
        Ok(None) => return Outcome::reply(Reply::Nil),
        Ok(Some(v)) => v,
    };
    let now = ctx.now_ms;
    let p = if let Some(at) = expires {
        if at <= now && !ctx.store.loading() {
            ctx.store.remove(key);
            ctx.prop(|| vec![vec![b"DEL".to_vec(), key.clone()]])
        } else {
            ctx.store.set_expiry(key, now, Some(at));
            ctx.prop(|| {
                let mut b = [0u8; 20];
                vec![vec![
                    b"PEXPIREAT".to_vec(),
                    key.clone(),
                    fmt_i64(at as i64, &mut b).to_vec(),
                ]]
            })
        }
    } else if persist && ctx.store.expires_at(key, now).is_some() {
        ctx.store.set_expiry(key, now, None);
        ctx.prop(|| vec![vec![b"PERSIST".to_vec(), key.clone()]])
    } else {
        Vec::new()
    };
    Outcome::write(Reply::Bulk(v), p)
}

fn getdel(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    match old_string(ctx, &args[1]) {
        Err(e) => e,
        Ok(None) => Outcome::reply(Reply::Nil),
        Ok(Some(v)) => {
            ctx.store.remove(&args[1]);
            let p = ctx.prop(|| vec![vec![b"DEL".to_vec(), args[1].clone()]]);
            Outcome::write(Reply::Bulk(v), p)
        }
    }
}

fn mset(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    if args.len().is_multiple_of(2) {
        return Outcome::reply(super::arity_error("mset"));
    }
    for kv in args[1..].chunks_exact(2) {
        ctx.store.set_str(&kv[0], &kv[1], ctx.now_ms, None, false);
    }
    Outcome::write(Reply::OK, ctx.prop_args(args))
}

fn mget(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    let now = ctx.now_ms;
    let items = args[1..]
        .iter()
        .map(|k| match ctx.store.get(k, now) {
            Some(Value::Str(s)) => Reply::Bulk(s.clone()),
            _ => Reply::Nil,
        })
        .collect();
    Outcome::reply(Reply::Array(items))
}

/// INCRBY's core: the new value, or the error Redis gives.
fn incr_by(ctx: &mut Ctx<'_>, args: &[Vec<u8>], by: i64) -> Outcome {
    let key = &args[1];
    let now = ctx.now_ms;
    let mut buf = [0u8; 20];
    let new = match ctx.store.lookup_mut(key, now) {
        None => {
            let text = fmt_i64(by, &mut buf);
            ctx.store.set_str(key, text, now, None, true);
            by
        }
        Some(Value::Str(s)) => {
            let Some(old) = parse_i64(s) else {
                return err(ERR_NOT_INT);
            };
            let Some(new) = old.checked_add(by) else {
                return err(ERR_OVERFLOW);
            };
            let text = fmt_i64(new, &mut buf);
            let delta = text.len() as i64 - s.len() as i64;
            s.clear();
            s.extend_from_slice(text);
            ctx.store.mark_changed(key);
            ctx.store.adjust_used(delta);
            new
        }
        Some(_) => return wrongtype(),
    };
    let p = ctx.prop(|| {
        let mut b = [0u8; 20];
        vec![vec![
            b"INCRBY".to_vec(),
            key.clone(),
            fmt_i64(by, &mut b).to_vec(),
        ]]
    });
    Outcome::write(Reply::Int(new), p)
}

fn incr(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    incr_by(ctx, args, 1)
}

fn decr(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    incr_by(ctx, args, -1)
}

fn incrby(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    match parse_i64(&args[2]) {
        Some(by) => incr_by(ctx, args, by),
        None => err(ERR_NOT_INT),
    }
}

fn decrby(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    match parse_i64(&args[2]) {
        Some(i64::MIN) => err("ERR decrement would overflow"),
        Some(by) => incr_by(ctx, args, -by),
        None => err(ERR_NOT_INT),
    }
}

fn append(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    let (key, tail) = (&args[1], &args[2]);
    let now = ctx.now_ms;
    let len = match ctx.store.get(key, now) {
        None => {
            ctx.store.set_str(key, tail, now, None, true);
            tail.len()
        }
        Some(Value::Str(s)) => {
            if s.len() + tail.len() > MAX_STRING {
                return err("ERR string exceeds maximum allowed size (proto-max-bulk-len)");
            }
            if tail.is_empty() {
                return Outcome::reply(Reply::Int(s.len() as i64));
            }
            let Some(Value::Str(s)) = ctx.store.get_mut(key, now) else {
                unreachable!("looked up above")
            };
            s.extend_from_slice(tail);
            let len = s.len();
            ctx.store.adjust_used(tail.len() as i64);
            len
        }
        Some(_) => return wrongtype(),
    };
    Outcome::write(Reply::Int(len as i64), ctx.prop_args(args))
}

fn strlen(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    match ctx.store.get(&args[1], ctx.now_ms) {
        None => Outcome::reply(Reply::Int(0)),
        Some(Value::Str(s)) => Outcome::reply(Reply::Int(s.len() as i64)),
        Some(_) => wrongtype(),
    }
}
