//! Message queues keep message boundaries and hold a bounded number of messages. A POSIX queue
//! that is full refuses a non-blocking send (EAGAIN) and makes a timed one time out until a
//! receiver takes a message (`mq-full`); it hands out the highest priority first, in order of
//! sending within one priority (`mq-priority`). A System V queue lets the receiver choose by
//! message type: any, exactly N, the lowest up to N, or any but N (`sysv-mq-types`).

use std::time::{Duration, Instant};

use ipckit::Access;
use ipckit::mq::posix::{self, PosixMq};
use ipckit::mq::sysv::{self, SysvMq, TypeFilter};
use ipckit::name::SysvKey;

use crate::child::{self, Args, Role};
use crate::{Lab, Result, Scenario, Verdict};

pub(crate) const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "mq-full",
        lesson: "a full POSIX queue refuses a non-blocking send (EAGAIN) and times out a timed one until a receiver makes room",
        run: full,
    },
    Scenario {
        name: "mq-priority",
        lesson: "a POSIX queue delivers the highest priority first, and in order of sending within one priority",
        run: priority,
    },
    Scenario {
        name: "sysv-mq-types",
        lesson: "a System V receiver picks messages by type: 0 the first, N only type N, -N the lowest type up to N, MSG_EXCEPT all but N",
        run: sysv_types,
    },
];

pub(crate) const ROLES: &[Role] = &[
    ("mq-receiver", posix_receiver),
    ("sysv-mq-receiver", sysv_receiver),
];

const MAX_MSGS: usize = 4;
const MSG_SIZE: usize = 64;
/// How long the timed send waits on the full queue.
const SEND_TIMEOUT: Duration = Duration::from_millis(200);

/// A new POSIX queue of [`MAX_MSGS`] messages of [`MSG_SIZE`] bytes, with a unique name, removed
/// when dropped.
fn small_queue(purpose: &str) -> Result<(String, PosixMq)> {
    let name = ipckit::name::unique_posix(purpose);
    let opts = posix::Options::default()
        .max_msgs(MAX_MSGS)
        .msg_size(MSG_SIZE);
    let q = PosixMq::create(&name, &opts)?;
    Ok((name, q))
}

fn full(lab: &mut Lab) -> Result<Verdict> {
    let (name, q) = small_queue("lab-mq-full")?;
    lab.say(
        "parent",
        format!("mq_open({name}, O_CREAT, maxmsg {MAX_MSGS}, msgsize {MSG_SIZE})"),
    );
    let mut accepted = 0;
    for i in 1..=MAX_MSGS {
        if q.try_send(format!("msg-{i}").as_bytes(), 0)? {
            accepted += 1;
        }
    }
    lab.say(
        "parent",
        format!("sends msg-1..msg-{MAX_MSGS} non-blocking: {accepted} accepted"),
    );
    let extra = format!("msg-{}", MAX_MSGS + 1);
    let refused = !q.try_send(extra.as_bytes(), 0)?;
    lab.kernel(if refused {
        format!("mq_send({extra}, O_NONBLOCK) -> EAGAIN (queue full: {MAX_MSGS} of {MAX_MSGS})")
    } else {
        format!("mq_send({extra}, O_NONBLOCK) -> accepted")
    });
    let start = Instant::now();
    let sent = q.send_timeout(extra.as_bytes(), 0, SEND_TIMEOUT)?;
    let waited = start.elapsed();
    lab.say(
        "parent",
        if sent {
            format!(
                "send_timeout({extra}, {} ms) -> sent after {} ms",
                SEND_TIMEOUT.as_millis(),
                waited.as_millis()
            )
        } else {
            format!(
                "send_timeout({extra}, {} ms) -> timed out after {} ms, still full",
                SEND_TIMEOUT.as_millis(),
                waited.as_millis()
            )
        },
    );
    let timed_out = !sent && waited >= SEND_TIMEOUT;

    let mut c = child::spawn("mq-receiver")
        .arg("NAME", &name)
        .arg("COUNT", 1)
        .start()?;
    let who = format!("child {}", c.pid());
    let line = c.line()?;
    lab.say(&who, &line);
    let received = line.starts_with("received 'msg-1'");
    c.success()?;
    let after = q.try_send(extra.as_bytes(), 0)?;
    let now = q.stat()?.msgs;
    lab.kernel(if after {
        format!("mq_send({extra}, O_NONBLOCK) -> ok, {now} messages queued")
    } else {
        format!("mq_send({extra}, O_NONBLOCK) -> EAGAIN again")
    });
    Verdict::check(
        accepted == MAX_MSGS && refused && timed_out && received && after && now == MAX_MSGS,
        format!(
            "{accepted} of max {MAX_MSGS} fit; the next send: {}; a {} ms timed send: {}; after the child took one: {}",
            if refused { "EAGAIN" } else { "accepted" },
            SEND_TIMEOUT.as_millis(),
            if timed_out {
                "timed out"
            } else {
                "did not time out"
            },
            if after { "sent" } else { "still refused" },
        ),
    )
}

fn priority(lab: &mut Lab) -> Result<Verdict> {
    let (name, q) = small_queue("lab-mq-prio")?;
    lab.say("parent", format!("mq_open({name}, O_CREAT)"));
    let sent: [(&str, u32); 4] = [("low", 1), ("high-1", 9), ("medium", 5), ("high-2", 9)];
    for (msg, prio) in sent {
        q.try_send(msg.as_bytes(), prio)?
            .then_some(())
            .ok_or("the queue is unexpectedly full")?;
    }
    let order: Vec<String> = sent.iter().map(|(m, p)| format!("{m}({p})")).collect();
    lab.say("parent", format!("sends {}", order.join(", ")));

    // What the queue should give: by priority, highest first; a stable sort keeps the sending
    // order within one priority.
    let mut expected: Vec<(&str, u32)> = sent.to_vec();
    expected.sort_by_key(|m| std::cmp::Reverse(m.1));
    let expected: Vec<String> = expected.iter().map(|(m, p)| format!("{m}({p})")).collect();

    let mut c = child::spawn("mq-receiver")
        .arg("NAME", &name)
        .arg("COUNT", sent.len())
        .start()?;
    let who = format!("child {}", c.pid());
    let mut got = Vec::new();
    for _ in 0..sent.len() {
        let line = c.line()?;
        lab.say(&who, &line);
        // "received 'MSG' priority P"
        let mut parts = line.split('\'');
        let msg = parts.nth(1).unwrap_or("?");
        let prio = line.rsplit(' ').next().unwrap_or("?");
        got.push(format!("{msg}({prio})"));
    }
    c.success()?;
    lab.say("parent", format!("receive order: {}", got.join(", ")));
    Verdict::check(
        got == expected,
        format!("sent {}; received {}", order.join(", "), got.join(", ")),
    )
}

/// Child: opens the POSIX queue `NAME` for reading and receives `COUNT` messages (each within
/// the bound `child::T`), saying each.
fn posix_receiver(args: &Args) -> Result<()> {
    let name = args.get("NAME")?;
    let count: usize = args.parse("COUNT")?;
    let q = PosixMq::open(&name, Access::ReadOnly)?;
    let mut buf = Vec::new();
    for _ in 0..count {
        let prio = q
            .recv_timeout(&mut buf, child::T)?
            .ok_or("no message within the bound")?;
        child::say(format!(
            "received '{}' priority {prio}",
            String::from_utf8_lossy(&buf)
        ));
    }
    Ok(())
}

fn sysv_types(lab: &mut Lab) -> Result<Verdict> {
    let q = SysvMq::create(SysvKey::Private, &sysv::Options::default())?;
    lab.say("parent", format!("msgget(IPC_PRIVATE) -> id {}", q.id()));
    let sent: [(i64, &str); 6] = [
        (3, "c1"),
        (1, "a1"),
        (2, "b1"),
        (3, "c2"),
        (1, "a2"),
        (2, "b2"),
    ];
    for (t, m) in sent {
        q.send(m.as_bytes(), t)?;
    }
    let listed: Vec<String> = sent.iter().map(|(t, m)| format!("{m}:{t}")).collect();
    lab.say("parent", format!("msgsnd in order {}", listed.join(", ")));

    let mut c = child::spawn("sysv-mq-receiver").arg("ID", q.id()).start()?;
    let who = format!("child {}", c.pid());
    // (what the child is asked, what it must answer): each answer follows from the queue as
    // the previous receives left it.
    let asks: [(&str, &str); 5] = [
        ("0", "type 3 'c1'"),        // the first message, whatever its type
        ("2", "type 2 'b1'"),        // the first of type 2
        ("-3", "type 1 'a1'"),       // the lowest type <= 3 comes first
        ("except 3", "type 1 'a2'"), // left: c2:3, a2:1, b2:2: the first not of type 3
        ("4", "ENOMSG"),             // no message of type 4, and IPC_NOWAIT
    ];
    let mut right = 0;
    for (ask, want) in asks {
        c.tell(ask)?;
        let line = c.line()?;
        lab.say(&who, &line);
        if line.ends_with(&format!("-> {want}")) {
            right += 1;
        }
    }
    c.tell("done")?;
    c.success()?;
    let left = q.stat()?.msgs;
    lab.kernel(format!(
        "msgctl(IPC_STAT) -> {left} messages left (c2:3, b2:2)"
    ));
    Verdict::check(
        right == asks.len() && left == 2,
        format!(
            "{right} of {} receives took the message the type filter picks (0, 2, -3, MSG_EXCEPT 3; type 4 -> ENOMSG)",
            asks.len()
        ),
    )
}

/// Child: opens the System V queue `ID` and, for each line the parent says (`0`, `N`, `-N`,
/// `except N`), receives one message with `IPC_NOWAIT` and says what it got.
fn sysv_receiver(args: &Args) -> Result<()> {
    let q = SysvMq::open_id(args.parse("ID")?, Access::ReadOnly)?;
    let mut buf = [0u8; 64];
    while let Some(ask) = child::hear() {
        if ask == "done" {
            break;
        }
        let (filter, call) = match ask.strip_prefix("except ") {
            Some(n) => {
                let n: i64 = n.parse()?;
                (
                    TypeFilter::Except(n),
                    format!("msgrcv(type {n}, MSG_EXCEPT|IPC_NOWAIT)"),
                )
            }
            None => {
                let t: i64 = ask.parse()?;
                (
                    TypeFilter::from_msgtyp(t, false)?,
                    format!("msgrcv(type {t}, IPC_NOWAIT)"),
                )
            }
        };
        match q.try_recv(&mut buf, filter, false)? {
            Some(m) => child::say(format!(
                "{call} -> type {} '{}'",
                m.mtype,
                String::from_utf8_lossy(&buf[..m.len])
            )),
            None => child::say(format!("{call} -> ENOMSG")),
        }
    }
    Ok(())
}
