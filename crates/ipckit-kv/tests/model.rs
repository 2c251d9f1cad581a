//! Model-based property tests.
//!
//! 1. Random command sequences over a few keys (every type, expiry on a clock the test moves,
//!    MULTI/EXEC, RESP2 and RESP3) run against `execute` and against a small reference model
//!    written here from Redis's documented behaviour (B-tree maps, no shared code). Every
//!    reply must be equal (maps and sets compared without order). After every command the
//!    store's memory estimate must equal a recount, and at the end the commands the store
//!    propagated, replayed into a fresh store, must rebuild the same keyspace.
//! 2. `parse_request` fed arbitrary bytes never panics, never reads past its limits, and
//!    round-trips every well-formed request.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use ipckit_kv::command::{Ctx, Session, execute};
use ipckit_kv::resp::{Limits, Parse, Protocol, Reply, parse_request};
use ipckit_kv::store::{Store, Value};
use proptest::prelude::*;

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
const NOT_INT: &str = "ERR value is not an integer or out of range";
const OVERFLOW: &str = "ERR increment or decrement would overflow";
const START: u64 = 1_700_000_000_000;

// ---------------------------------------------------------------------------------------
// The model.

#[derive(Debug, Clone, PartialEq)]
enum MV {
    Str(Vec<u8>),
    List(VecDeque<Vec<u8>>),
    Hash(BTreeMap<Vec<u8>, Vec<u8>>),
    Set(BTreeSet<Vec<u8>>),
    /// member -> score
    ZSet(BTreeMap<Vec<u8>, f64>),
}

#[derive(Debug, Default)]
struct Model {
    keys: BTreeMap<Vec<u8>, (MV, Option<u64>)>,
    proto3: bool,
    multi: Option<Vec<Vec<Vec<u8>>>>,
}

fn b(s: &str) -> Reply {
    Reply::Bulk(s.as_bytes().to_vec())
}

fn e(s: &'static str) -> Reply {
    Reply::error(s)
}

fn int(n: usize) -> Reply {
    Reply::Int(n as i64)
}

/// Redis's `string2ll`: exactly the canonical decimal form.
fn canon_i64(s: &[u8]) -> Option<i64> {
    let n: i64 = std::str::from_utf8(s).ok()?.parse().ok()?;
    (n.to_string().as_bytes() == s).then_some(n)
}

fn text_f64(s: &[u8]) -> f64 {
    match s {
        b"inf" | b"+inf" => f64::INFINITY,
        b"-inf" => f64::NEG_INFINITY,
        _ => std::str::from_utf8(s).unwrap().parse().unwrap(),
    }
}

/// A sorted set's members in Redis's order.
fn zorder(z: &BTreeMap<Vec<u8>, f64>) -> Vec<(Vec<u8>, f64)> {
    let mut v: Vec<(Vec<u8>, f64)> = z.iter().map(|(m, s)| (m.clone(), *s)).collect();
    v.sort_by(|a, b| a.1.partial_cmp(&b.1).unwrap().then_with(|| a.0.cmp(&b.0)));
    v
}

impl Model {
    fn purge(&mut self, now: u64) {
        self.keys.retain(|_, (_, exp)| exp.is_none_or(|t| t > now));
    }

    fn pairs(&self, items: Vec<(Vec<u8>, f64)>, nested: bool) -> Reply {
        let mut out = Vec::new();
        for (m, s) in items {
            if nested && self.proto3 {
                out.push(Reply::Array(vec![Reply::Bulk(m), Reply::Double(s)]));
            } else {
                out.push(Reply::Bulk(m));
                out.push(Reply::Double(s));
            }
        }
        Reply::Array(out)
    }

    /// Runs one command; `real` is what the store replied (SPOP's pick is the store's).
    fn run(&mut self, a: &[Vec<u8>], now: u64, real: &Reply) -> Reply {
        self.purge(now);
        let name = String::from_utf8_lossy(&a[0]).to_ascii_lowercase();
        if let Some(q) = self.multi.as_mut() {
            match name.as_str() {
                "exec" => {
                    let q = self.multi.take().unwrap();
                    let Reply::Array(reals) = real else {
                        return Reply::Nil;
                    };
                    let mut out = Vec::new();
                    for (cmd, r) in q.iter().zip(reals) {
                        out.push(self.run(cmd, now, r));
                    }
                    return Reply::Array(out);
                }
                "discard" => {
                    self.multi = None;
                    return Reply::OK;
                }
                "multi" => return e("ERR MULTI calls can not be nested"),
                _ => {
                    q.push(a.to_vec());
                    return Reply::status("QUEUED");
                }
            }
        }
        let k = a.get(1).cloned().unwrap_or_default();
        match name.as_str() {
            "multi" => {
                self.multi = Some(Vec::new());
                Reply::OK
            }
            "exec" => e("ERR EXEC without MULTI"),
            "hello" => {
                self.proto3 = a[1] == b"3";
                Reply::Map(vec![
                    (b("server"), b("redis")),
                    (b("version"), b("7.0.15")),
                    (b("proto"), Reply::Int(if self.proto3 { 3 } else { 2 })),
                    (b("id"), Reply::Int(1)),
                    (b("mode"), b("standalone")),
                    (b("role"), b("master")),
                    (b("modules"), Reply::Array(vec![])),
                ])
            }
            "flushall" => {
                self.keys.clear();
                Reply::OK
            }
            "dbsize" => int(self.keys.len()),
            "get" => match self.keys.get(&k) {
                None => Reply::Nil,
                Some((MV::Str(s), _)) => Reply::Bulk(s.clone()),
                Some(_) => e(WRONGTYPE),
            },
            "set" => self.set(a, now),
            "getdel" => match self.keys.get(&k) {
                None => Reply::Nil,
                Some((MV::Str(s), _)) => {
                    let s = s.clone();
                    self.keys.remove(&k);
                    Reply::Bulk(s)
                }
                Some(_) => e(WRONGTYPE),
            },
            "mset" => {
                for kv in a[1..].chunks(2) {
                    self.keys
                        .insert(kv[0].clone(), (MV::Str(kv[1].clone()), None));
                }
                Reply::OK
            }
            "mget" => Reply::Array(
                a[1..]
                    .iter()
                    .map(|k| match self.keys.get(k) {
                        Some((MV::Str(s), _)) => Reply::Bulk(s.clone()),
                        _ => Reply::Nil,
                    })
                    .collect(),
            ),
            "incr" | "decr" | "incrby" | "decrby" => {
                let by = match name.as_str() {
                    "incr" => 1,
                    "decr" => -1,
                    "incrby" => canon_i64(&a[2]).unwrap(),
                    _ => -canon_i64(&a[2]).unwrap(),
                };
                let (old, exp) = match self.keys.get(&k) {
                    None => (0, None),
                    Some((MV::Str(s), exp)) => match canon_i64(s) {
                        Some(n) => (n, *exp),
                        None => return e(NOT_INT),
                    },
                    Some(_) => return e(WRONGTYPE),
                };
                let Some(new) = old.checked_add(by) else {
                    return e(OVERFLOW);
                };
                self.keys
                    .insert(k, (MV::Str(new.to_string().into_bytes()), exp));
                Reply::Int(new)
            }
            "append" => match self.keys.get_mut(&k) {
                None => {
                    let n = a[2].len();
                    self.keys.insert(k, (MV::Str(a[2].clone()), None));
                    int(n)
                }
                Some((MV::Str(s), _)) => {
                    s.extend_from_slice(&a[2]);
                    int(s.len())
                }
                Some(_) => e(WRONGTYPE),
            },
            "strlen" => match self.keys.get(&k) {
                None => int(0),
                Some((MV::Str(s), _)) => int(s.len()),
                Some(_) => e(WRONGTYPE),
            },
            "del" => {
                let mut n = 0;
                for k in &a[1..] {
                    if self.keys.remove(k).is_some() {
                        n += 1;
                    }
                }
                int(n)
            }
            "exists" => int(a[1..].iter().filter(|k| self.keys.contains_key(*k)).count()),
            "type" => Reply::status(match self.keys.get(&k) {
                None => "none",
                Some((MV::Str(_), _)) => "string",
                Some((MV::List(_), _)) => "list",
                Some((MV::Hash(_), _)) => "hash",
                Some((MV::Set(_), _)) => "set",
                Some((MV::ZSet(_), _)) => "zset",
            }),
            "expire" | "pexpire" => {
                let n = canon_i64(&a[2]).unwrap();
                let when = now as i64 + if name == "expire" { n * 1000 } else { n };
                let Some((_, exp)) = self.keys.get_mut(&k) else {
                    return int(0);
                };
                let cur = exp.map(|t| t as i64);
                let flag = a
                    .get(3)
                    .map(|f| String::from_utf8_lossy(f).to_ascii_lowercase());
                let refuse = match flag.as_deref() {
                    Some("nx") => cur.is_some(),
                    Some("xx") => cur.is_none(),
                    Some("gt") => cur.is_none_or(|c| when <= c),
                    Some("lt") => cur.is_some_and(|c| when >= c),
                    _ => false,
                };
                if refuse {
                    return int(0);
                }
                if when <= now as i64 {
                    self.keys.remove(&k);
                } else {
                    *exp = Some(when as u64);
                }
                int(1)
            }
            "ttl" | "pttl" => match self.keys.get(&k) {
                None => Reply::Int(-2),
                Some((_, None)) => Reply::Int(-1),
                Some((_, Some(t))) => Reply::Int(if name == "ttl" {
                    ((t - now + 500) / 1000) as i64
                } else {
                    (t - now) as i64
                }),
            },
            "persist" => match self.keys.get_mut(&k) {
                Some((_, exp @ Some(_))) => {
                    *exp = None;
                    int(1)
                }
                _ => int(0),
            },
            "lpush" | "rpush" => {
                let entry = self
                    .keys
                    .entry(k)
                    .or_insert_with(|| (MV::List(VecDeque::new()), None));
                let MV::List(l) = &mut entry.0 else {
                    return e(WRONGTYPE);
                };
                for x in &a[2..] {
                    if name == "lpush" {
                        l.push_front(x.clone());
                    } else {
                        l.push_back(x.clone());
                    }
                }
                int(l.len())
            }
            "lpop" | "rpop" => {
                let count = a.get(2).map(|c| canon_i64(c).unwrap() as usize);
                let Some((v, _)) = self.keys.get_mut(&k) else {
                    return if count.is_some() {
                        Reply::NilArray
                    } else {
                        Reply::Nil
                    };
                };
                let MV::List(l) = v else {
                    return e(WRONGTYPE);
                };
                if count == Some(0) {
                    return Reply::Array(vec![]);
                }
                let mut out = Vec::new();
                for _ in 0..count.unwrap_or(1) {
                    let x = if name == "lpop" {
                        l.pop_front()
                    } else {
                        l.pop_back()
                    };
                    match x {
                        Some(x) => out.push(Reply::Bulk(x)),
                        None => break,
                    }
                }
                if l.is_empty() {
                    self.keys.remove(&k);
                }
                match count {
                    None => out.pop().unwrap_or(Reply::Nil),
                    Some(_) => Reply::Array(out),
                }
            }
            "lrange" => {
                let (s, t) = (canon_i64(&a[2]).unwrap(), canon_i64(&a[3]).unwrap());
                match self.keys.get(&k) {
                    None => Reply::Array(vec![]),
                    Some((MV::List(l), _)) => {
                        let n = l.len() as i64;
                        let s = if s < 0 { (n + s).max(0) } else { s };
                        let t = if t < 0 { n + t } else { t.min(n - 1) };
                        Reply::Array(
                            (s..=t)
                                .filter(|i| *i >= 0 && *i < n)
                                .map(|i| Reply::Bulk(l[i as usize].clone()))
                                .collect(),
                        )
                    }
                    Some(_) => e(WRONGTYPE),
                }
            }
            "llen" => match self.keys.get(&k) {
                None => int(0),
                Some((MV::List(l), _)) => int(l.len()),
                Some(_) => e(WRONGTYPE),
            },
            "lindex" => {
                let i = canon_i64(&a[2]).unwrap();
                match self.keys.get(&k) {
                    None => Reply::Nil,
                    Some((MV::List(l), _)) => {
                        let i = if i < 0 { l.len() as i64 + i } else { i };
                        if i < 0 {
                            Reply::Nil
                        } else {
                            l.get(i as usize)
                                .map_or(Reply::Nil, |x| Reply::Bulk(x.clone()))
                        }
                    }
                    Some(_) => e(WRONGTYPE),
                }
            }
            "hset" => {
                let entry = self
                    .keys
                    .entry(k)
                    .or_insert_with(|| (MV::Hash(BTreeMap::new()), None));
                let MV::Hash(h) = &mut entry.0 else {
                    return e(WRONGTYPE);
                };
                let mut n = 0;
                for fv in a[2..].chunks(2) {
                    if h.insert(fv[0].clone(), fv[1].clone()).is_none() {
                        n += 1;
                    }
                }
                int(n)
            }
            "hget" => match self.keys.get(&k) {
                None => Reply::Nil,
                Some((MV::Hash(h), _)) => {
                    h.get(&a[2]).map_or(Reply::Nil, |v| Reply::Bulk(v.clone()))
                }
                Some(_) => e(WRONGTYPE),
            },
            "hdel" => match self.keys.get_mut(&k) {
                None => int(0),
                Some((MV::Hash(h), _)) => {
                    let n = a[2..].iter().filter(|f| h.remove(*f).is_some()).count();
                    if h.is_empty() {
                        self.keys.remove(&k);
                    }
                    int(n)
                }
                Some(_) => e(WRONGTYPE),
            },
            "hgetall" => match self.keys.get(&k) {
                None => Reply::Map(vec![]),
                Some((MV::Hash(h), _)) => Reply::Map(
                    h.iter()
                        .map(|(f, v)| (Reply::Bulk(f.clone()), Reply::Bulk(v.clone())))
                        .collect(),
                ),
                Some(_) => e(WRONGTYPE),
            },
            "hlen" => match self.keys.get(&k) {
                None => int(0),
                Some((MV::Hash(h), _)) => int(h.len()),
                Some(_) => e(WRONGTYPE),
            },
            "hexists" => match self.keys.get(&k) {
                None => int(0),
                Some((MV::Hash(h), _)) => int(h.contains_key(&a[2]) as usize),
                Some(_) => e(WRONGTYPE),
            },
            "hincrby" => {
                let by = canon_i64(&a[3]).unwrap();
                let entry = self
                    .keys
                    .entry(k)
                    .or_insert_with(|| (MV::Hash(BTreeMap::new()), None));
                let MV::Hash(h) = &mut entry.0 else {
                    return e(WRONGTYPE);
                };
                let old = match h.get(&a[2]) {
                    None => 0,
                    Some(v) => match canon_i64(v) {
                        Some(n) => n,
                        None => return e("ERR hash value is not an integer"),
                    },
                };
                let Some(new) = old.checked_add(by) else {
                    return e(OVERFLOW);
                };
                h.insert(a[2].clone(), new.to_string().into_bytes());
                Reply::Int(new)
            }
            "sadd" => {
                let entry = self
                    .keys
                    .entry(k)
                    .or_insert_with(|| (MV::Set(BTreeSet::new()), None));
                let MV::Set(s) = &mut entry.0 else {
                    return e(WRONGTYPE);
                };
                int(a[2..].iter().filter(|m| s.insert((*m).clone())).count())
            }
            "srem" => match self.keys.get_mut(&k) {
                None => int(0),
                Some((MV::Set(s), _)) => {
                    let n = a[2..].iter().filter(|m| s.remove(*m)).count();
                    if s.is_empty() {
                        self.keys.remove(&k);
                    }
                    int(n)
                }
                Some(_) => e(WRONGTYPE),
            },
            "smembers" => match self.keys.get(&k) {
                None => Reply::Set(vec![]),
                Some((MV::Set(s), _)) => {
                    Reply::Set(s.iter().map(|m| Reply::Bulk(m.clone())).collect())
                }
                Some(_) => e(WRONGTYPE),
            },
            "sismember" => match self.keys.get(&k) {
                None => int(0),
                Some((MV::Set(s), _)) => int(s.contains(&a[2]) as usize),
                Some(_) => e(WRONGTYPE),
            },
            "scard" => match self.keys.get(&k) {
                None => int(0),
                Some((MV::Set(s), _)) => int(s.len()),
                Some(_) => e(WRONGTYPE),
            },
            "spop" => {
                let count = a.get(2).map(|c| canon_i64(c).unwrap() as usize);
                let Some((v, _)) = self.keys.get_mut(&k) else {
                    return if count.is_some() {
                        Reply::Set(vec![])
                    } else {
                        Reply::Nil
                    };
                };
                let MV::Set(s) = v else {
                    return e(WRONGTYPE);
                };
                // Which members is the store's choice: check it chose members that were
                // there, as many as it should, and follow it.
                let chosen: Vec<Vec<u8>> = match real {
                    Reply::Bulk(m) => vec![m.clone()],
                    Reply::Set(items) => items
                        .iter()
                        .map(|r| match r {
                            Reply::Bulk(m) => m.clone(),
                            other => panic!("SPOP gave {other:?}"),
                        })
                        .collect(),
                    _ => vec![],
                };
                let want = count.unwrap_or(1).min(s.len());
                if chosen.len() != want || !chosen.iter().all(|m| s.contains(m)) {
                    return Reply::error("model: SPOP popped the wrong members");
                }
                for m in &chosen {
                    s.remove(m);
                }
                if s.is_empty() {
                    self.keys.remove(&k);
                }
                match count {
                    None => chosen.into_iter().next().map_or(Reply::Nil, Reply::Bulk),
                    Some(_) => Reply::Set(chosen.into_iter().map(Reply::Bulk).collect()),
                }
            }
            "zadd" | "zincrby" => self.zadd(a, name == "zincrby"),
            "zscore" => match self.keys.get(&k) {
                None => Reply::Nil,
                Some((MV::ZSet(z), _)) => z.get(&a[2]).map_or(Reply::Nil, |s| Reply::Double(*s)),
                Some(_) => e(WRONGTYPE),
            },
            "zcard" => match self.keys.get(&k) {
                None => int(0),
                Some((MV::ZSet(z), _)) => int(z.len()),
                Some(_) => e(WRONGTYPE),
            },
            "zrem" => match self.keys.get_mut(&k) {
                None => int(0),
                Some((MV::ZSet(z), _)) => {
                    let n = a[2..].iter().filter(|m| z.remove(*m).is_some()).count();
                    if z.is_empty() {
                        self.keys.remove(&k);
                    }
                    int(n)
                }
                Some(_) => e(WRONGTYPE),
            },
            "zpopmin" => {
                let count = a.get(2).map(|c| canon_i64(c).unwrap() as usize);
                let Some((v, _)) = self.keys.get_mut(&k) else {
                    return Reply::Array(vec![]);
                };
                let MV::ZSet(z) = v else {
                    return e(WRONGTYPE);
                };
                let order = zorder(z);
                let take: Vec<(Vec<u8>, f64)> =
                    order.into_iter().take(count.unwrap_or(1)).collect();
                for (m, _) in &take {
                    z.remove(m);
                }
                if z.is_empty() {
                    self.keys.remove(&k);
                }
                self.pairs(take, count.is_some())
            }
            "zrange" => {
                let (s, t) = (canon_i64(&a[2]).unwrap(), canon_i64(&a[3]).unwrap());
                let scores = a.len() > 4;
                match self.keys.get(&k) {
                    None => Reply::Array(vec![]),
                    Some((MV::ZSet(z), _)) => {
                        let order = zorder(z);
                        let n = order.len() as i64;
                        let s = if s < 0 { (n + s).max(0) } else { s };
                        let t = if t < 0 { n + t } else { t.min(n - 1) };
                        let items: Vec<(Vec<u8>, f64)> = (s..=t)
                            .filter(|i| *i >= 0 && *i < n)
                            .map(|i| order[i as usize].clone())
                            .collect();
                        if scores {
                            self.pairs(items, true)
                        } else {
                            Reply::Array(items.into_iter().map(|(m, _)| Reply::Bulk(m)).collect())
                        }
                    }
                    Some(_) => e(WRONGTYPE),
                }
            }
            other => panic!("the model has no {other}"),
        }
    }

    fn set(&mut self, a: &[Vec<u8>], now: u64) -> Reply {
        let k = a[1].clone();
        let opts: Vec<String> = a[3..]
            .iter()
            .map(|o| String::from_utf8_lossy(o).to_ascii_lowercase())
            .collect();
        let has = |o: &str| opts.iter().any(|x| x == o);
        let mut expires = None;
        for (i, o) in opts.iter().enumerate() {
            if o == "ex" || o == "px" {
                let n = canon_i64(opts[i + 1].as_bytes()).unwrap() as u64;
                expires = Some(now + if o == "ex" { n * 1000 } else { n });
            }
        }
        let old = self.keys.get(&k);
        let old_str = match old {
            Some((MV::Str(s), _)) => Some(s.clone()),
            Some(_) if has("get") => return e(WRONGTYPE),
            _ => None,
        };
        let found = old.is_some();
        let old_exp = old.and_then(|(_, e)| *e);
        let get_reply = || old_str.clone().map_or(Reply::Nil, Reply::Bulk);
        if (has("nx") && found) || (has("xx") && !found) {
            return if has("get") { get_reply() } else { Reply::Nil };
        }
        let reply = if has("get") { get_reply() } else { Reply::OK };
        let exp = if has("keepttl") { old_exp } else { expires };
        self.keys.insert(k, (MV::Str(a[2].clone()), exp));
        reply
    }

    fn zadd(&mut self, a: &[Vec<u8>], zincrby: bool) -> Reply {
        let k = a[1].clone();
        let (mut nx, mut xx, mut gt, mut lt, mut ch, mut incr) =
            (false, false, false, false, false, zincrby);
        let mut i = 2;
        if !zincrby {
            while i < a.len() {
                match String::from_utf8_lossy(&a[i]).to_ascii_lowercase().as_str() {
                    "nx" => nx = true,
                    "xx" => xx = true,
                    "gt" => gt = true,
                    "lt" => lt = true,
                    "ch" => ch = true,
                    "incr" => incr = true,
                    _ => break,
                }
                i += 1;
            }
        }
        let pairs: Vec<(f64, Vec<u8>)> = a[i..]
            .chunks(2)
            .map(|p| (text_f64(&p[0]), p[1].clone()))
            .collect();
        if nx && xx {
            return e("ERR XX and NX options at the same time are not compatible");
        }
        if (nx && (gt || lt)) || (gt && lt) {
            return e("ERR GT, LT, and/or NX options at the same time are not compatible");
        }
        if incr && pairs.len() > 1 {
            return e("ERR INCR option supports a single increment-element pair");
        }
        let z = match self.keys.get_mut(&k) {
            Some((MV::ZSet(z), _)) => z,
            Some(_) => return e(WRONGTYPE),
            None if xx => return if incr { Reply::Nil } else { int(0) },
            None => {
                self.keys
                    .insert(k.clone(), (MV::ZSet(BTreeMap::new()), None));
                let Some((MV::ZSet(z), _)) = self.keys.get_mut(&k) else {
                    unreachable!()
                };
                z
            }
        };
        let (mut added, mut updated, mut processed) = (0, 0, 0);
        let mut last = 0.0;
        for (score, m) in pairs {
            match z.get(&m).copied() {
                Some(cur) => {
                    if nx {
                        continue;
                    }
                    let new = if incr { score + cur } else { score };
                    if new.is_nan() {
                        return e("ERR resulting score is not a number (NaN)");
                    }
                    if (lt && new >= cur) || (gt && new <= cur) {
                        continue;
                    }
                    processed += 1;
                    last = new;
                    if new != cur {
                        z.insert(m, new);
                        updated += 1;
                    }
                }
                None if !xx => {
                    z.insert(m, if score == 0.0 { 0.0 } else { score });
                    added += 1;
                    processed += 1;
                    last = score;
                }
                None => {}
            }
        }
        if z.is_empty() {
            self.keys.remove(&k);
        }
        if incr {
            if processed > 0 {
                Reply::Double(last)
            } else {
                Reply::Nil
            }
        } else {
            int(if ch { added + updated } else { added })
        }
    }
}

/// Maps and sets have no order to compare: sort them (recursively).
fn norm(r: Reply) -> Reply {
    match r {
        Reply::Array(v) => Reply::Array(v.into_iter().map(norm).collect()),
        Reply::Set(v) => {
            let mut v: Vec<Reply> = v.into_iter().map(norm).collect();
            v.sort_by_key(|x| format!("{x:?}"));
            Reply::Set(v)
        }
        Reply::Map(v) => {
            let mut v: Vec<(Reply, Reply)> =
                v.into_iter().map(|(k, x)| (norm(k), norm(x))).collect();
            v.sort_by_key(|(k, _)| format!("{k:?}"));
            Reply::Map(v)
        }
        other => other,
    }
}

// ---------------------------------------------------------------------------------------
// The commands generated.

#[derive(Debug, Clone)]
enum Op {
    Run(Vec<String>),
    Tick(u64),
}

fn key() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["a", "b", "c"]).prop_map(String::from)
}

fn member() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["x", "y", "z", "w"]).prop_map(String::from)
}

fn value() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "v",
        "",
        "10",
        "-3",
        "0",
        "01",
        "9223372036854775807",
        "-9223372036854775808",
        "x y",
    ])
    .prop_map(String::from)
}

fn small() -> impl Strategy<Value = String> {
    (-3i64..=5).prop_map(|n| n.to_string())
}

fn score() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "-1", "0", "0.5", "1", "2", "inf", "-inf", "+inf", "-0", "1e3",
    ])
    .prop_map(String::from)
}

fn cmd(words: Vec<&str>, rest: Vec<String>) -> Vec<String> {
    words.into_iter().map(String::from).chain(rest).collect()
}

fn op() -> impl Strategy<Value = Op> {
    let strings = prop_oneof![
        (
            key(),
            value(),
            prop::sample::select(vec!["", "nx", "xx"]),
            any::<bool>(),
            prop::sample::select(vec!["", "ex", "px", "keepttl"]),
            1u64..4
        )
            .prop_map(|(k, v, cond, get, exp, n)| {
                let mut c = vec!["set".to_string(), k, v];
                if !cond.is_empty() {
                    c.push(cond.into());
                }
                if get {
                    c.push("GET".into());
                }
                match exp {
                    "ex" => c.extend(["EX".to_string(), n.to_string()]),
                    "px" => c.extend(["px".to_string(), (n * 700).to_string()]),
                    "keepttl" => c.push("KEEPTTL".into()),
                    _ => {}
                }
                c
            }),
        key().prop_map(|k| cmd(vec!["get"], vec![k])),
        key().prop_map(|k| cmd(vec!["getdel"], vec![k])),
        (key(), value(), key(), value())
            .prop_map(|(a, x, b, y)| cmd(vec!["mset"], vec![a, x, b, y])),
        (key(), key()).prop_map(|(a, b)| cmd(vec!["mget"], vec![a, b, "nokey".into()])),
        key().prop_map(|k| cmd(vec!["incr"], vec![k])),
        key().prop_map(|k| cmd(vec!["DECR"], vec![k])),
        (
            key(),
            prop::sample::select(vec![
                "5",
                "-7",
                "9223372036854775807",
                "-9223372036854775807"
            ])
        )
            .prop_map(|(k, n)| cmd(vec!["incrby"], vec![k, n.into()])),
        (key(), small()).prop_map(|(k, n)| cmd(vec!["decrby"], vec![k, n])),
        (key(), value()).prop_map(|(k, v)| cmd(vec!["append"], vec![k, v])),
        key().prop_map(|k| cmd(vec!["strlen"], vec![k])),
    ];
    let keyspace = prop_oneof![
        (key(), key()).prop_map(|(a, b)| cmd(vec!["del"], vec![a, b])),
        (key(), key()).prop_map(|(a, b)| cmd(vec!["exists"], vec![a.clone(), b, a])),
        key().prop_map(|k| cmd(vec!["type"], vec![k])),
        (
            key(),
            prop::sample::select(vec!["expire", "pexpire"]),
            -1i64..4,
            prop::sample::select(vec!["", "nx", "xx", "gt", "lt"])
        )
            .prop_map(|(k, c, n, f)| {
                let n = if c == "pexpire" { n * 600 } else { n };
                let mut v = cmd(vec![c], vec![k, n.to_string()]);
                if !f.is_empty() {
                    v.push(f.into());
                }
                v
            }),
        key().prop_map(|k| cmd(vec!["ttl"], vec![k])),
        key().prop_map(|k| cmd(vec!["pttl"], vec![k])),
        key().prop_map(|k| cmd(vec!["persist"], vec![k])),
        Just(cmd(vec!["dbsize"], vec![])),
    ];
    let lists = prop_oneof![
        (
            prop::sample::select(vec!["lpush", "rpush"]),
            key(),
            member(),
            member()
        )
            .prop_map(|(c, k, x, y)| cmd(vec![c], vec![k, x, y])),
        (
            prop::sample::select(vec!["lpop", "rpop"]),
            key(),
            prop::option::of(0usize..4)
        )
            .prop_map(|(c, k, n)| {
                let mut v = cmd(vec![c], vec![k]);
                v.extend(n.map(|n| n.to_string()));
                v
            }),
        (key(), small(), small()).prop_map(|(k, a, b)| cmd(vec!["lrange"], vec![k, a, b])),
        key().prop_map(|k| cmd(vec!["llen"], vec![k])),
        (key(), small()).prop_map(|(k, i)| cmd(vec!["lindex"], vec![k, i])),
    ];
    let hashes = prop_oneof![
        (key(), member(), value(), member(), value())
            .prop_map(|(k, f, v, g, w)| cmd(vec!["hset"], vec![k, f, v, g, w])),
        (key(), member()).prop_map(|(k, f)| cmd(vec!["hget"], vec![k, f])),
        (key(), member(), member()).prop_map(|(k, f, g)| cmd(vec!["hdel"], vec![k, f, g])),
        key().prop_map(|k| cmd(vec!["hgetall"], vec![k])),
        key().prop_map(|k| cmd(vec!["hlen"], vec![k])),
        (key(), member()).prop_map(|(k, f)| cmd(vec!["hexists"], vec![k, f])),
        (
            key(),
            member(),
            prop::sample::select(vec!["1", "-5", "9223372036854775807"])
        )
            .prop_map(|(k, f, n)| cmd(vec!["hincrby"], vec![k, f, n.into()])),
    ];
    let sets = prop_oneof![
        (key(), member(), member()).prop_map(|(k, x, y)| cmd(vec!["sadd"], vec![k, x, y])),
        (key(), member()).prop_map(|(k, x)| cmd(vec!["srem"], vec![k, x])),
        key().prop_map(|k| cmd(vec!["smembers"], vec![k])),
        (key(), member()).prop_map(|(k, x)| cmd(vec!["sismember"], vec![k, x])),
        key().prop_map(|k| cmd(vec!["scard"], vec![k])),
        (key(), prop::option::of(0usize..4)).prop_map(|(k, n)| {
            let mut v = cmd(vec!["spop"], vec![k]);
            v.extend(n.map(|n| n.to_string()));
            v
        }),
    ];
    let zsets = prop_oneof![
        (
            key(),
            prop::sample::subsequence(vec!["nx", "xx", "gt", "lt", "ch", "incr"], 0..3),
            prop::collection::vec((score(), member()), 1..3)
        )
            .prop_map(|(k, flags, pairs)| {
                let mut v = cmd(vec!["zadd"], vec![k]);
                v.extend(flags.into_iter().map(String::from));
                for (s, m) in pairs {
                    v.push(s);
                    v.push(m);
                }
                v
            }),
        (key(), score(), member()).prop_map(|(k, s, m)| cmd(vec!["zincrby"], vec![k, s, m])),
        (key(), member()).prop_map(|(k, m)| cmd(vec!["zscore"], vec![k, m])),
        key().prop_map(|k| cmd(vec!["zcard"], vec![k])),
        (key(), member()).prop_map(|(k, m)| cmd(vec!["zrem"], vec![k, m])),
        (key(), prop::option::of(0usize..4)).prop_map(|(k, n)| {
            let mut v = cmd(vec!["zpopmin"], vec![k]);
            v.extend(n.map(|n| n.to_string()));
            v
        }),
        (key(), small(), small(), any::<bool>()).prop_map(|(k, a, b, w)| {
            let mut v = cmd(vec!["zrange"], vec![k, a, b]);
            if w {
                v.push("WITHSCORES".into());
            }
            v
        }),
    ];
    let control = prop_oneof![
        Just(cmd(vec!["multi"], vec![])),
        Just(cmd(vec!["exec"], vec![])),
        Just(cmd(vec!["flushall"], vec![])),
        prop::sample::select(vec!["2", "3"]).prop_map(|p| cmd(vec!["hello"], vec![p.into()])),
    ];
    prop_oneof![
        5 => strings.prop_map(Op::Run),
        4 => keyspace.prop_map(Op::Run),
        3 => lists.prop_map(Op::Run),
        3 => hashes.prop_map(Op::Run),
        3 => sets.prop_map(Op::Run),
        4 => zsets.prop_map(Op::Run),
        1 => control.prop_map(Op::Run),
        2 => (0u64..2500).prop_map(Op::Tick),
    ]
}

fn snapshot(store: &Store, now: u64) -> BTreeMap<Vec<u8>, (Value, Option<u64>)> {
    store
        .entries(now)
        .map(|(k, v, e)| (k.clone(), (v.clone(), e)))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn store_matches_the_model(ops in prop::collection::vec(op(), 1..80)) {
        let mut store = Store::new();
        let mut session = Session::new(1);
        let mut model = Model::default();
        let mut now = START;
        let mut log: Vec<(u64, Vec<Vec<u8>>)> = Vec::new();
        for op in &ops {
            let words = match op {
                Op::Tick(ms) => {
                    now += ms;
                    if ms % 3 == 0 {
                        store.active_expire(now, 2);
                    }
                    continue;
                }
                Op::Run(words) => words,
            };
            let args: Vec<Vec<u8>> = words.iter().map(|w| w.as_bytes().to_vec()).collect();
            let out = {
                let mut ctx = Ctx::new(&mut store, &mut session, now);
                execute(&mut ctx, &args)
            };
            let expected = model.run(&args, now, &out.reply);
            prop_assert_eq!(norm(out.reply.clone()), norm(expected), "{:?} at +{}ms", words, now - START);
            prop_assert_eq!(store.used_memory(), store.recount(), "memory estimate after {:?}", words);
            prop_assert_eq!(session.proto == Protocol::Resp3, model.proto3);
            for c in out.propagate {
                log.push((now, c));
            }
        }
        // The log replays to the same keyspace.
        let mut replay = Store::new();
        let mut rs = Session::new(2);
        for (t, c) in &log {
            let mut ctx = Ctx::new(&mut replay, &mut rs, *t);
            let out = execute(&mut ctx, c);
            prop_assert!(!out.reply.is_error(), "replaying {:?} failed: {:?}", c, out.reply);
        }
        prop_assert_eq!(snapshot(&replay, now), snapshot(&store, now));
    }
}

// ---------------------------------------------------------------------------------------
// The parser.

fn encode(args: &[Vec<u8>]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

const SMALL: Limits = Limits {
    max_bulk: 16,
    max_inline: 32,
    max_args: 4,
};

/// Bytes that look like RESP often enough to reach deep into the parser.
fn resp_bytes() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..8),
        prop::sample::select(vec![
            b"*".to_vec(),
            b"$".to_vec(),
            b"\r\n".to_vec(),
            b"\n".to_vec(),
            b"-1".to_vec(),
            b"2".to_vec(),
            b"17".to_vec(),
            b"99999999999999999999".to_vec(),
            b"\"".to_vec(),
            b"'".to_vec(),
            b" ".to_vec(),
            b"\\x4".to_vec(),
            b"PING".to_vec(),
        ]),
    ];
    prop::collection::vec(piece, 0..24).prop_map(|p| p.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn parser_never_panics_and_keeps_its_limits(buf in resp_bytes()) {
        for limits in [SMALL, Limits::default()] {
            match parse_request(&buf, &limits) {
                Parse::Request { args, used } => {
                    prop_assert!(used > 0 && used <= buf.len());
                    prop_assert!(args.len() <= limits.max_args);
                    for a in &args {
                        prop_assert!(a.len() <= limits.max_bulk.max(limits.max_inline));
                    }
                    // More bytes after a whole request do not change it.
                    let mut longer = buf.clone();
                    longer.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
                    prop_assert_eq!(
                        parse_request(&longer, &limits),
                        Parse::Request { args, used }
                    );
                }
                Parse::Incomplete => {
                    // What it waits for is bounded by the limits: a client cannot make it
                    // buffer without end.
                    let bound = limits.max_inline
                        + limits.max_args * (limits.max_inline + limits.max_bulk + 2);
                    prop_assert!(buf.len() <= bound, "{} bytes still incomplete", buf.len());
                }
                Parse::Invalid(line) => {
                    prop_assert!(line.starts_with("ERR Protocol error: "));
                    prop_assert!(!line.contains('\r') && !line.contains('\n'));
                }
            }
        }
    }

    #[test]
    fn parser_round_trips_requests(args in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..16), 1..4), cut in any::<prop::sample::Index>()) {
        let wire = encode(&args);
        prop_assert_eq!(
            parse_request(&wire, &SMALL),
            Parse::Request { args: args.clone(), used: wire.len() }
        );
        let at = cut.index(wire.len());
        prop_assert_eq!(parse_request(&wire[..at], &SMALL), Parse::Incomplete, "cut at {}", at);
    }
}
