//! Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH, with Redis's semantics.
//!
//! Queueing happens in [`super::execute`] (a command refused there dooms the transaction:
//! EXEC replies EXECABORT). EXEC runs the queue with nothing in between (the server runs one
//! command at a time), each command's error its own reply. A WATCHed key changed by anyone
//! (a write, a delete, an expiry, a flush) since WATCH makes EXEC reply a null array.

use super::{Ctx, OOM, Outcome, Spec, err, find, is_denyoom};
use crate::resp::Reply;
use crate::store::Store;

const TX: &[&str] = &["noscript", "loading", "stale", "fast", "allow_busy"];

/// This family's entries in the command table.
pub(super) const SPECS: &[Spec] = &[
    Spec {
        name: "multi",
        arity: 1,
        flags: TX,
        keys: (0, 0, 0),
        run: multi,
    },
    Spec {
        name: "exec",
        arity: 1,
        flags: &["noscript", "loading", "stale", "skip_slowlog"],
        keys: (0, 0, 0),
        run: exec,
    },
    Spec {
        name: "discard",
        arity: 1,
        flags: TX,
        keys: (0, 0, 0),
        run: discard,
    },
    Spec {
        name: "watch",
        arity: -2,
        flags: TX,
        keys: (1, -1, 1),
        run: watch,
    },
    Spec {
        name: "unwatch",
        arity: 1,
        flags: TX,
        keys: (0, 0, 0),
        run: unwatch,
    },
];

/// Releases what a client held in the store (its WATCHes): the server calls it when a
/// connection closes, or the store keeps watching those keys for nobody.
pub fn end_session(store: &mut Store, session: &mut super::Session) {
    for (k, _) in session.watched.drain(..) {
        store.unwatch(&k);
    }
    session.multi = None;
    session.multi_failed = false;
}

fn unwatch_all(ctx: &mut Ctx<'_>) {
    for (k, _) in ctx.session.watched.drain(..) {
        ctx.store.unwatch(&k);
    }
}

fn multi(ctx: &mut Ctx<'_>, _args: &[Vec<u8>]) -> Outcome {
    if ctx.session.multi.is_some() {
        return err("ERR MULTI calls can not be nested");
    }
    ctx.session.multi = Some(Vec::new());
    ctx.session.multi_failed = false;
    Outcome::reply(Reply::OK)
}

fn discard(ctx: &mut Ctx<'_>, _args: &[Vec<u8>]) -> Outcome {
    if ctx.session.multi.take().is_none() {
        return err("ERR DISCARD without MULTI");
    }
    ctx.session.multi_failed = false;
    unwatch_all(ctx);
    Outcome::reply(Reply::OK)
}

fn watch(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> Outcome {
    if ctx.session.multi.is_some() {
        return err("ERR WATCH inside MULTI is not allowed");
    }
    for k in &args[1..] {
        if ctx.session.watched.iter().any(|(w, _)| w == k) {
            continue;
        }
        let token = ctx.store.watch(k, ctx.now_ms);
        ctx.session.watched.push((k.clone(), token));
    }
    Outcome::reply(Reply::OK)
}

fn unwatch(ctx: &mut Ctx<'_>, _args: &[Vec<u8>]) -> Outcome {
    unwatch_all(ctx);
    Outcome::reply(Reply::OK)
}

fn exec(ctx: &mut Ctx<'_>, _args: &[Vec<u8>]) -> Outcome {
    let Some(queue) = ctx.session.multi.as_ref() else {
        return err("ERR EXEC without MULTI");
    };
    // Redis refuses EXEC itself (the transaction stays open, doomed) when memory is over
    // the limit and the queue holds a command flagged denyoom.
    if ctx.server.maxmemory > 0
        && ctx.store.used_memory() > ctx.server.maxmemory
        && queue.iter().any(|c| is_denyoom(&c[0]))
    {
        ctx.session.multi_failed = true;
        return err(OOM);
    }
    let queue = ctx.session.multi.take().unwrap_or_default();
    let failed = std::mem::take(&mut ctx.session.multi_failed);
    let now = ctx.now_ms;
    let dirty = ctx
        .session
        .watched
        .iter()
        .any(|(k, token)| ctx.store.watch_token(k, now) != *token);
    unwatch_all(ctx);
    if failed {
        return err("EXECABORT Transaction discarded because of previous errors.");
    }
    if dirty {
        return Outcome::reply(Reply::NilArray);
    }
    let mut replies = Vec::with_capacity(queue.len());
    let mut propagate = Vec::new();
    let mut after = super::After::Continue;
    for args in &queue {
        let Some(entry) = find(&args[0]) else {
            replies.push(super::unknown_command(args));
            continue;
        };
        let out = (entry.spec.run)(ctx, args);
        replies.push(out.reply);
        propagate.extend(out.propagate);
        if out.after != super::After::Continue {
            after = out.after;
        }
    }
    if propagate.len() > 1 {
        propagate.insert(0, vec![b"MULTI".to_vec()]);
        propagate.push(vec![b"EXEC".to_vec()]);
    }
    Outcome {
        reply: Reply::Array(replies),
        after,
        propagate,
    }
}
