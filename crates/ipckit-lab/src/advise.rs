//! Which mechanism for which constraints: the rules as data, a ranking, and this host's bench
//! figures for each candidate.
//!
//! [`RULES`] is the one table. Each [`Rule`] is a mechanism with the calls to use, what it is
//! for, its trade-off, the failure mode to guard against, who cleans up, the lab scenario that
//! shows the risk, and one [`Fit`] per [`Need`]: how well it meets that constraint, and why.
//! [`advise`] adds up the fits of the constraints given and ranks the mechanisms; a `No` fit
//! rules a mechanism out, and two constraints that no mechanism meets together are named as a
//! conflict. Each rule also lists the constraint sets it must win (`wins`), and the tests check
//! every one of them, so a rule added or changed is tested as it stands.
//!
//! ```
//! use ipckit_lab::advise::{Constraints, advise};
//!
//! let c = Constraints { related: Some(true), two_way: Some(false), ..Default::default() };
//! let advice = advise(&c);
//! assert_eq!(advice.candidates[0].rule.mechanism, "anonymous pipe");
//! ```

use serde_json::Value;

/// What the processes need, as `ipckit advise` asks it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Constraints {
    /// `Some(true)`: the processes share a parent (one forks the other); `Some(false)`: they
    /// do not; `None`: not said.
    pub related: Option<bool>,
    /// `Some(true)`: both send; `Some(false)`: one sends, the other receives; `None`: not said.
    pub two_way: Option<bool>,
    /// The receiver must get messages whole, as sent.
    pub boundaries: bool,
    /// Payloads of tens of KiB and more.
    pub large_payloads: bool,
    /// The round trip matters more than anything else.
    pub latency_critical: bool,
    /// Open file descriptors must travel.
    pub fd_passing: bool,
    /// More than one process receives.
    pub many_readers: bool,
    /// More than one process sends.
    pub many_writers: bool,
    /// Some messages must overtake others.
    pub priorities: bool,
    /// A side may restart, and the channel (and what is in it) should still be there.
    pub survive_restart: bool,
    /// The receiver waits in poll/epoll (or an async runtime) with other descriptors.
    pub event_loop: bool,
    /// The processes are on different machines.
    pub remote: bool,
    /// Nothing to carry but "something happened" (a wake-up): only then are eventfd and
    /// signals candidates. `ipckit advise` has no flag for it yet.
    pub notify_only: bool,
}

/// One constraint, as a flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// `--related`
    Related,
    /// `--unrelated`
    Unrelated,
    /// `--one-way`
    OneWay,
    /// `--two-way`
    TwoWay,
    /// `--boundaries`
    Boundaries,
    /// `--large-payloads`
    LargePayloads,
    /// `--latency-critical`
    LatencyCritical,
    /// `--fd-passing`
    FdPassing,
    /// `--many-readers`
    ManyReaders,
    /// `--many-writers`
    ManyWriters,
    /// `--priorities`
    Priorities,
    /// `--survive-restart`
    SurviveRestart,
    /// `--event-loop`
    EventLoop,
    /// `--remote`
    Remote,
    /// [`Constraints::notify_only`]
    NotifyOnly,
}

impl Need {
    /// Every need, in the order the flags are listed.
    pub const ALL: [Need; 15] = [
        Need::Related,
        Need::Unrelated,
        Need::OneWay,
        Need::TwoWay,
        Need::Boundaries,
        Need::LargePayloads,
        Need::LatencyCritical,
        Need::FdPassing,
        Need::ManyReaders,
        Need::ManyWriters,
        Need::Priorities,
        Need::SurviveRestart,
        Need::EventLoop,
        Need::Remote,
        Need::NotifyOnly,
    ];

    /// The flag that asks for it: `--related`, …
    pub fn flag(self) -> &'static str {
        match self {
            Need::Related => "--related",
            Need::Unrelated => "--unrelated",
            Need::OneWay => "--one-way",
            Need::TwoWay => "--two-way",
            Need::Boundaries => "--boundaries",
            Need::LargePayloads => "--large-payloads",
            Need::LatencyCritical => "--latency-critical",
            Need::FdPassing => "--fd-passing",
            Need::ManyReaders => "--many-readers",
            Need::ManyWriters => "--many-writers",
            Need::Priorities => "--priorities",
            Need::SurviveRestart => "--survive-restart",
            Need::EventLoop => "--event-loop",
            Need::Remote => "--remote",
            Need::NotifyOnly => "notification only",
        }
    }

    /// A mechanism that cannot meet a hard need is never a candidate, not even the closest one
    /// when nothing fits: with `--remote`, nothing local is offered.
    pub fn hard(self) -> bool {
        matches!(self, Need::Remote)
    }
}

impl Constraints {
    /// The needs these constraints set, in [`Need::ALL`] order.
    pub fn needs(&self) -> Vec<Need> {
        Need::ALL.into_iter().filter(|n| self.has(*n)).collect()
    }

    /// Whether `need` is set.
    pub fn has(&self, need: Need) -> bool {
        match need {
            Need::Related => self.related == Some(true),
            Need::Unrelated => self.related == Some(false),
            Need::OneWay => self.two_way == Some(false),
            Need::TwoWay => self.two_way == Some(true),
            Need::Boundaries => self.boundaries,
            Need::LargePayloads => self.large_payloads,
            Need::LatencyCritical => self.latency_critical,
            Need::FdPassing => self.fd_passing,
            Need::ManyReaders => self.many_readers,
            Need::ManyWriters => self.many_writers,
            Need::Priorities => self.priorities,
            Need::SurviveRestart => self.survive_restart,
            Need::EventLoop => self.event_loop,
            Need::Remote => self.remote,
            Need::NotifyOnly => self.notify_only,
        }
    }

    /// The constraints that set exactly `needs` (of two opposites, the later one counts).
    pub fn from_needs(needs: &[Need]) -> Constraints {
        let mut c = Constraints::default();
        for n in needs {
            match n {
                Need::Related => c.related = Some(true),
                Need::Unrelated => c.related = Some(false),
                Need::OneWay => c.two_way = Some(false),
                Need::TwoWay => c.two_way = Some(true),
                Need::Boundaries => c.boundaries = true,
                Need::LargePayloads => c.large_payloads = true,
                Need::LatencyCritical => c.latency_critical = true,
                Need::FdPassing => c.fd_passing = true,
                Need::ManyReaders => c.many_readers = true,
                Need::ManyWriters => c.many_writers = true,
                Need::Priorities => c.priorities = true,
                Need::SurviveRestart => c.survive_restart = true,
                Need::EventLoop => c.event_loop = true,
                Need::Remote => c.remote = true,
                Need::NotifyOnly => c.notify_only = true,
            }
        }
        c
    }
}

/// How well a mechanism meets a need.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// What it is made for.
    Best,
    /// Meets it well.
    Good,
    /// Meets it, with work or a cost.
    Ok,
    /// Works against it.
    Poor,
    /// Cannot.
    No,
}

impl Level {
    /// Points towards the ranking; `None` for [`Level::No`], which rules the mechanism out.
    pub fn weight(self) -> Option<i32> {
        match self {
            Level::Best => Some(3),
            Level::Good => Some(2),
            Level::Ok => Some(1),
            Level::Poor => Some(-1),
            Level::No => None,
        }
    }

    /// `best`, `good`, `ok`, `poor`, `no`.
    pub fn name(self) -> &'static str {
        match self {
            Level::Best => "best",
            Level::Good => "good",
            Level::Ok => "ok",
            Level::Poor => "poor",
            Level::No => "no",
        }
    }
}

/// A mechanism against one need: how well, why, and the lab scenario that shows the risk
/// there, if one does.
#[derive(Clone, Copy, Debug)]
pub struct Fit {
    /// The need.
    pub need: Need,
    /// How well.
    pub level: Level,
    /// Why, in one line.
    pub why: &'static str,
    /// `ipckit lab NAME` for this need, when it has its own.
    pub lab: Option<&'static str>,
}

impl Fit {
    const fn lab(self, lab: &'static str) -> Fit {
        Fit {
            need: self.need,
            level: self.level,
            why: self.why,
            lab: Some(lab),
        }
    }
}

const fn fit(need: Need, level: Level, why: &'static str) -> Fit {
    Fit {
        need,
        level,
        why,
        lab: None,
    }
}
const fn best(need: Need, why: &'static str) -> Fit {
    fit(need, Level::Best, why)
}
const fn good(need: Need, why: &'static str) -> Fit {
    fit(need, Level::Good, why)
}
const fn ok(need: Need, why: &'static str) -> Fit {
    fit(need, Level::Ok, why)
}
const fn poor(need: Need, why: &'static str) -> Fit {
    fit(need, Level::Poor, why)
}
const fn no(need: Need, why: &'static str) -> Fit {
    fit(need, Level::No, why)
}

/// A mechanism and what to know before using it.
#[derive(Debug)]
pub struct Rule {
    /// Its name.
    pub mechanism: &'static str,
    /// The `ipckit bench` rows that measure it, the one to show first.
    pub rows: &'static [&'static str],
    /// The calls to use.
    pub calls: &'static str,
    /// What it is for, in one line.
    pub summary: &'static str,
    /// What it costs.
    pub tradeoff: &'static str,
    /// The failure mode to guard against.
    pub failure_mode: &'static str,
    /// Who removes what, and when.
    pub cleanup: &'static str,
    /// `ipckit lab NAME`: the scenario that shows the risk.
    pub lab: &'static str,
    /// It carries no data (a wake-up only): a candidate only for [`Constraints::notify_only`].
    pub notify_only: bool,
    /// One fit per [`Need`].
    pub fits: &'static [Fit],
    /// Constraint sets for which it must be the first choice (checked by the tests).
    pub wins: &'static [&'static [Need]],
}

impl Rule {
    /// Its fit for `need`.
    pub fn fit(&self, need: Need) -> Option<&Fit> {
        self.fits.iter().find(|f| f.need == need)
    }

    fn level(&self, need: Need) -> Level {
        self.fit(need).map_or(Level::Ok, |f| f.level)
    }
}

const LOCAL: &str = "local to one host: it cannot reach another machine";

use Need::*;

/// The rules, in the order to reach for them: simplest and most general first. When two
/// mechanisms score the same, the earlier one ranks first (two-way + fd passing: a stream
/// socket and a seqpacket socket do both as well; the stream is the general one; large
/// payloads or latency alone: raw shared memory and the ipckit channel do both as well; raw
/// shared memory works between any programs, the channel only between ipckit ones).
pub const RULES: &[Rule] = &[
    Rule {
        mechanism: "anonymous pipe",
        rows: &["pipe"],
        calls: "pipe2(O_CLOEXEC) before fork(); each side close()s the end it does not use; \
                write() / read() (ipckit::stream::pipe)",
        summary: "the simplest channel: a one-way byte stream to or from a child you fork",
        tradeoff: "one direction, bytes not messages, related processes only; a 64 KiB kernel \
                   buffer (F_SETPIPE_SZ grows it) and two copies of every byte",
        failure_mode: "an end left open: the reader never sees EOF while any copy of the write \
                       end survives (in the writer, or inherited by another child); a write \
                       after the reader is gone raises SIGPIPE (ignore it, handle EPIPE)",
        cleanup: "nothing to remove: the kernel frees the pipe when its last descriptor closes, \
                  a crash included",
        lab: "pipe-forgotten-end",
        notify_only: false,
        fits: &[
            best(
                Related,
                "pipe2() before fork(): the child inherits the ends; no name, nothing to clean up",
            ),
            no(
                Unrelated,
                "a pipe has no name: only processes that inherit its descriptors (or are passed \
                 them over a Unix socket) can use it",
            ),
            best(
                OneWay,
                "one direction by design, and the reader gets EOF when the last writer closes",
            )
            .lab("pipe-eof"),
            poor(
                TwoWay,
                "two pipes, one per direction, and care that both sides never block writing at \
                 once; socketpair() is one call",
            ),
            poor(
                Boundaries,
                "a byte stream: reads merge and split writes, so frame each message (a length \
                 prefix)",
            )
            .lab("message-boundaries"),
            ok(
                LargePayloads,
                "works, but every byte is copied in and out through a 64 KiB buffer, and the \
                 writer blocks while it is full",
            )
            .lab("pipe-capacity"),
            ok(
                LatencyCritical,
                "one write() and one read() per message, but each wakes the peer through the \
                 scheduler",
            ),
            no(
                FdPassing,
                "a pipe carries bytes only: descriptors travel over a Unix socket (SCM_RIGHTS)",
            ),
            poor(
                ManyReaders,
                "readers compete: each byte goes to whichever reads first, and one read can take \
                 half a message",
            ),
            ok(
                ManyWriters,
                "writes of up to PIPE_BUF (4096 B) are atomic, so small records from many writers \
                 never interleave; bigger ones can",
            )
            .lab("pipe-atomic-writes"),
            poor(
                Priorities,
                "first in, first out only: one pipe per priority, polled in order",
            ),
            poor(
                SurviveRestart,
                "it lives only while someone holds an end: a restarted process needs its parent \
                 to hand it the end again, and what was buffered dies with the last holder",
            ),
            good(EventLoop, "a descriptor: set O_NONBLOCK and poll/epoll it"),
            no(Remote, LOCAL),
            ok(
                NotifyOnly,
                "a byte is a wake-up a poll loop sees (the self-pipe trick), but eventfd does it \
                 with one descriptor",
            ),
        ],
        wins: &[&[Related, OneWay], &[Related]],
    },
    Rule {
        mechanism: "FIFO (named pipe)",
        rows: &["fifo"],
        calls: "mkfifo(path, 0600) once; the reader open(O_RDONLY), the writer open(O_WRONLY), \
                each with O_NONBLOCK or a timeout so neither hangs; read() / write() \
                (ipckit::stream::fifo)",
        summary: "a pipe with a name: unrelated processes meet at a path",
        tradeoff: "a pipe's limits (one way, bytes, a 64 KiB buffer) plus a file to create, \
                   protect (0600, no symlinks) and remove",
        failure_mode: "open() blocks until the other side opens too: with no reader a blocking \
                       writer hangs and a non-blocking one gets ENXIO; the file stays after both \
                       sides close",
        cleanup: "whoever mkfifo()ed it unlink()s it: the buffered bytes go when the last side \
                  closes, the file does not",
        lab: "fifo-open-blocks",
        notify_only: false,
        fits: &[
            ok(
                Related,
                "works, but a pipe does the same with no name to create and remove",
            ),
            best(
                Unrelated,
                "a path both sides open: no shared ancestry, no descriptors to pass",
            ),
            best(OneWay, "one direction, and EOF when the last writer closes"),
            poor(
                TwoWay,
                "two FIFOs, one per direction, opened in the same order on both sides or the \
                 opens deadlock",
            )
            .lab("fifo-open-blocks"),
            poor(Boundaries, "a byte stream: frame each message yourself")
                .lab("message-boundaries"),
            ok(
                LargePayloads,
                "works, with two copies through a 64 KiB buffer, like a pipe",
            )
            .lab("pipe-capacity"),
            ok(
                LatencyCritical,
                "a pipe's cost per message once both sides are open",
            ),
            no(
                FdPassing,
                "a FIFO carries bytes only: descriptors travel over a Unix socket (SCM_RIGHTS)",
            ),
            poor(ManyReaders, "readers compete for the bytes, as on a pipe"),
            good(
                ManyWriters,
                "the classic server FIFO: many clients write records of up to PIPE_BUF (4096 B), \
                 each arrives whole",
            )
            .lab("pipe-atomic-writes"),
            poor(Priorities, "first in, first out only"),
            ok(
                SurviveRestart,
                "the path outlives both processes, so a restarted side opens it again; bytes \
                 still buffered are lost when the last side closes",
            )
            .lab("fifo-persists"),
            good(
                EventLoop,
                "a descriptor to poll once open; open with O_NONBLOCK (a writer with no reader \
                 then gets ENXIO); a reader whose last writer closed gets POLLHUP on every \
                 poll (a busy loop) unless it opens the FIFO O_RDWR itself (Linux)",
            )
            .lab("fifo-nonblock-enxio"),
            no(Remote, LOCAL),
            ok(
                NotifyOnly,
                "a byte through a path any process can open wakes a poll loop",
            ),
        ],
        wins: &[&[Unrelated, OneWay]],
    },
    Rule {
        mechanism: "Unix stream socket",
        rows: &["unix-stream"],
        calls: "related: socketpair(AF_UNIX, SOCK_STREAM); unrelated: socket() + bind(path) + \
                listen() + accept() on the server, connect() on the client; send() / recv(), \
                sendmsg() with SCM_RIGHTS for descriptors (ipckit::socket::unix)",
        summary: "the general-purpose local channel: two-way, a connection per peer, \
                  descriptors and credentials on the side",
        tradeoff: "a byte stream (frame messages yourself) and a socket file to manage; more \
                   set-up than a pipe",
        failure_mode: "received descriptors never closed leak, and a control buffer too small \
                       drops them (MSG_CTRUNC); a crashed server leaves its socket file and the \
                       next bind() fails with EADDRINUSE",
        cleanup: "the server unlink()s its socket file on exit; after a crash remove a stale \
                  file only once connect() is refused (nobody listens); an abstract name \
                  leaves nothing behind",
        lab: "fd-passing",
        notify_only: false,
        fits: &[
            good(
                Related,
                "socketpair(): a connected pair before fork(), no name",
            ),
            good(
                Unrelated,
                "bind() a path (mode 0600) or an abstract name; clients connect() to it",
            ),
            ok(
                OneWay,
                "works (shutdown(SHUT_WR) gives EOF), but a pipe or FIFO is simpler for one \
                 direction",
            ),
            best(TwoWay, "full duplex on one descriptor"),
            poor(
                Boundaries,
                "a byte stream: one recv() can hold half a message or two; seqpacket keeps them",
            )
            .lab("message-boundaries"),
            good(
                LargePayloads,
                "no per-message limit and larger buffers than a pipe's 64 KiB (the same two \
                 copies, fewer wake-ups)",
            ),
            ok(
                LatencyCritical,
                "a syscall and a wake-up per message, as for a pipe",
            ),
            best(
                FdPassing,
                "SCM_RIGHTS: send open descriptors with sendmsg(); SO_PEERCRED says who connected",
            )
            .lab("fd-passing"),
            ok(
                ManyReaders,
                "a connection per reader: the writer sends each message to each",
            ),
            good(
                ManyWriters,
                "listen() + accept(): a connection per client, each reply goes back on its own",
            )
            .lab("peer-credentials"),
            poor(Priorities, "in order only: one connection per priority"),
            ok(
                SurviveRestart,
                "clients reconnect to the same path, but what was in flight dies with the \
                 connection, and a stale socket file must go before the server binds again",
            )
            .lab("stale-socket"),
            best(
                EventLoop,
                "every listener and connection is a descriptor to epoll",
            ),
            no(
                Remote,
                "AF_UNIX is local to one host (the same code runs over TCP)",
            ),
            ok(
                NotifyOnly,
                "a byte over a connection wakes a poll loop: more than a wake-up needs",
            ),
        ],
        wins: &[&[TwoWay, FdPassing], &[TwoWay]],
    },
    Rule {
        mechanism: "POSIX message queue",
        rows: &["posix-mq"],
        calls: "mq_open(\"/name\", O_CREAT|O_EXCL, 0600, attr) by the owner, mq_open() by the \
                others; mq_send(msg, prio) / mq_receive(), mq_timedsend() / mq_timedreceive() \
                to bound the waits; mq_unlink() (ipckit::mq::posix)",
        summary: "whole messages with priorities, in a kernel queue that outlives its users",
        tradeoff: "small messages and short queues by default (fs.mqueue.msgsize_max 8 KiB, \
                   msg_max 10); a copy in and out; one direction per queue",
        failure_mode: "a full queue: mq_send() blocks (or fails with EAGAIN when non-blocking) \
                       until a reader makes room, so a dead reader stalls every sender",
        cleanup: "the creator mq_unlink()s it; a crash leaves it and its messages in \
                  /dev/mqueue (ipckit ls shows it, ipckit gc removes orphans)",
        lab: "mq-full",
        notify_only: false,
        fits: &[
            good(Related, "mq_open() before fork(), or by name"),
            good(Unrelated, "a name (/name) every side mq_open()s"),
            good(OneWay, "a queue carries one way, from senders to receivers"),
            ok(
                TwoWay,
                "two queues, one per direction (or a reply queue per client)",
            ),
            best(
                Boundaries,
                "each mq_send() is one message, and mq_receive() returns it whole",
            ),
            poor(
                LargePayloads,
                "a message is at most fs.mqueue.msgsize_max (8 KiB by default): send a reference \
                 to shared memory instead",
            ),
            ok(LatencyCritical, "a syscall each way, and a copy in and out"),
            no(
                FdPassing,
                "a queue carries bytes: descriptors need a Unix socket (SCM_RIGHTS)",
            ),
            good(
                ManyReaders,
                "readers share the work: each message goes to exactly one of them",
            ),
            best(
                ManyWriters,
                "any number of senders, no connection each; the kernel queues them in order",
            ),
            best(
                Priorities,
                "mq_send() takes a priority: the highest is received first, in order within a \
                 priority",
            )
            .lab("mq-priority"),
            best(
                SurviveRestart,
                "the queue and its messages outlive both processes until mq_unlink(): a restarted \
                 reader finds them waiting",
            ),
            good(
                EventLoop,
                "on Linux the queue descriptor can be polled (or mq_notify() signals)",
            ),
            no(Remote, LOCAL),
            ok(
                NotifyOnly,
                "an empty message wakes a receiver: a whole queue for one bit",
            ),
        ],
        wins: &[&[Boundaries, Priorities], &[Priorities], &[Boundaries]],
    },
    Rule {
        mechanism: "Unix seqpacket socket",
        rows: &["unix-seqpacket"],
        calls: "socketpair(AF_UNIX, SOCK_SEQPACKET), or socket(SOCK_SEQPACKET) + bind() + \
                listen() + accept() / connect(); one send() is one recv(); sendmsg() for \
                descriptors (ipckit::socket::unix)",
        summary: "a connection that keeps message boundaries: each send() arrives whole and in \
                  order",
        tradeoff: "each message must fit the socket buffer; a Linux (and BSD) feature, less \
                   known than stream sockets",
        failure_mode: "a recv() buffer smaller than the message drops the rest (MSG_TRUNC says \
                       so); a message larger than the socket buffer fails with EMSGSIZE",
        cleanup: "as for a stream socket: the server unlinks its socket file; a stale one goes \
                  only once connect() is refused",
        lab: "message-boundaries",
        notify_only: false,
        fits: &[
            good(Related, "socketpair(SOCK_SEQPACKET) before fork()"),
            good(
                Unrelated,
                "bind() a path or an abstract name, then listen() / accept()",
            ),
            ok(
                OneWay,
                "works; a pipe is simpler when boundaries do not matter",
            ),
            best(TwoWay, "full duplex on one connection"),
            best(
                Boundaries,
                "one send() is one recv(), whole and in order, and the peer's close shows as EOF",
            )
            .lab("message-boundaries"),
            ok(
                LargePayloads,
                "each message must fit the socket buffer (net.core.wmem_max): cut large data up",
            ),
            ok(LatencyCritical, "a syscall and a wake-up per message"),
            best(
                FdPassing,
                "SCM_RIGHTS rides on the exact message the descriptors belong to",
            )
            .lab("fd-passing"),
            ok(ManyReaders, "a connection per reader"),
            good(ManyWriters, "accept() a connection per client"),
            poor(Priorities, "in order only: one connection per priority"),
            ok(
                SurviveRestart,
                "clients reconnect; a stale socket file must go before the server binds again",
            )
            .lab("stale-socket"),
            best(EventLoop, "descriptors to epoll, listener and connections"),
            no(Remote, LOCAL),
            ok(NotifyOnly, "a message wakes a poll loop"),
        ],
        wins: &[
            &[TwoWay, Boundaries],
            &[Related, TwoWay, Boundaries, FdPassing],
        ],
    },
    Rule {
        mechanism: "Unix datagram socket",
        rows: &["unix-dgram"],
        calls: "the receiver socket(AF_UNIX, SOCK_DGRAM) + bind(path); senders sendto(path) \
                with no connection (or socketpair(SOCK_DGRAM) between relatives); recvfrom(), \
                SO_PASSCRED to learn each sender (ipckit::socket::unix)",
        summary: "many senders to one receiver, message by message, no connections (the \
                  /dev/log pattern)",
        tradeoff: "each datagram must fit the socket buffer; with no connection a sender learns \
                   the receiver is gone only when sendto() fails, and a reply needs the sender \
                   to bind an address too",
        failure_mode: "a slow receiver: senders block (or get EAGAIN) on its full buffer or on \
                       net.unix.max_dgram_qlen queued datagrams (10 by default); a dead one: \
                       sendto() fails with ECONNREFUSED and its socket file stays; anyone who \
                       may write the path can send, so check the sender's credentials",
        cleanup: "the receiver unlinks its socket file; a stale one goes once sendto() is \
                  refused",
        lab: "peer-credentials",
        notify_only: false,
        fits: &[
            good(Related, "socketpair(SOCK_DGRAM) before fork()"),
            good(
                Unrelated,
                "the receiver binds a path; senders need only the path",
            ),
            good(OneWay, "a bound receiver, and senders sendto() it"),
            ok(
                TwoWay,
                "each side binds its own address so it can be answered",
            ),
            best(
                Boundaries,
                "each datagram arrives whole; on a Unix socket reliably and in order, unlike UDP",
            )
            .lab("message-boundaries"),
            poor(
                LargePayloads,
                "a datagram must fit the socket buffer (net.core.wmem_max): big data must be cut \
                 up",
            ),
            ok(LatencyCritical, "a syscall and a wake-up per message"),
            best(
                FdPassing,
                "SCM_RIGHTS rides on the datagram it belongs to, from any sender",
            )
            .lab("fd-passing"),
            poor(
                ManyReaders,
                "one bound receiver per address: each datagram to one reader",
            ),
            best(
                ManyWriters,
                "any number of senders to one address, with no connection or accept() each",
            )
            .lab("peer-credentials"),
            poor(Priorities, "in order only: one socket per priority"),
            ok(
                SurviveRestart,
                "senders keep the path; while the receiver is down they get ECONNREFUSED and must \
                 retry",
            )
            .lab("stale-socket"),
            best(EventLoop, "a descriptor to epoll"),
            no(Remote, LOCAL),
            ok(
                NotifyOnly,
                "a datagram wakes a poll loop, from any sender that knows the path",
            ),
        ],
        wins: &[
            &[ManyWriters, Boundaries, FdPassing],
            &[Unrelated, ManyWriters, Boundaries, EventLoop],
        ],
    },
    Rule {
        mechanism: "shared memory + futex / POSIX semaphore",
        rows: &[
            "shm-futex",
            "posix-shm-sem",
            "mmap-file-futex",
            "sysv-shm-sem",
        ],
        calls: "memfd_create() or shm_open(O_CREAT|O_EXCL, 0600) + ftruncate() + \
                mmap(MAP_SHARED) (ipckit::shm), with a futex wake-up (ipckit::sync::event) or \
                sem_init(pshared=1) / sem_wait() / sem_post() in the mapping \
                (ipckit::sync::sem_posix), or a robust process-shared mutex; for a \
                ready-made ring of whole messages between ipckit programs, see the ipckit \
                channel (ipckit::channel)",
        summary: "the fastest path: both processes read and write the same pages, no copy \
                  through the kernel",
        tradeoff: "you own the synchronisation, the layout and the lifetime; a wake-up still goes \
                   through the kernel (futex) when the peer sleeps, so small round trips gain \
                   less than bandwidth does",
        failure_mode: "missing or wrong synchronisation: two writers lose updates, silently; a \
                       process that dies holding the lock blocks everyone (a robust mutex \
                       reports EOWNERDEAD; System V semaphores have SEM_UNDO; a POSIX semaphore \
                       has no undo: a process killed between sem_wait() and sem_post() leaves it \
                       taken)",
        cleanup: "the creator shm_unlink()s (POSIX) or IPC_RMIDs (System V: the segment stays \
                  until the last detach); a memfd or anonymous mapping goes with its last \
                  holder; a crash leaves named segments behind (ipckit gc)",
        lab: "shm-race",
        notify_only: false,
        fits: &[
            good(
                Related,
                "MAP_SHARED|MAP_ANONYMOUS or a memfd before fork(): nothing named to leak",
            ),
            good(
                Unrelated,
                "shm_open() a name both sides know, or pass a memfd over a Unix socket",
            ),
            good(
                OneWay,
                "a single-producer, single-consumer ring in the mapping",
            ),
            ok(TwoWay, "two rings, one per direction"),
            good(
                Boundaries,
                "a ring of length-prefixed slots carries whole messages: you lay it out",
            ),
            best(
                LargePayloads,
                "no copy through the kernel: write in place, and the reader reads the same pages",
            )
            .lab("shm-semaphore"),
            best(
                LatencyCritical,
                "no syscall on the data path; spin briefly before sleeping on a futex, so a busy \
                 pair makes no syscalls",
            )
            .lab("shm-atomic"),
            no(
                FdPassing,
                "memory holds bytes, not descriptors: pass those over a Unix socket beside it",
            ),
            good(
                ManyReaders,
                "every reader sees the same data; guard it with a rwlock, and mind that a stream \
                 of readers can starve the writer",
            )
            .lab("rwlock-starvation"),
            ok(
                ManyWriters,
                "writers must take a lock (a robust process-shared mutex or a semaphore) or use \
                 atomics; with two locks, one global order",
            )
            .lab("deadlock"),
            poor(
                Priorities,
                "a ring is first in, first out: priorities are yours to build",
            ),
            ok(
                SurviveRestart,
                "a named segment keeps its contents across a restart, but a lock the dead process \
                 held must be recovered (EOWNERDEAD, SEM_UNDO)",
            )
            .lab("robust-mutex"),
            poor(
                EventLoop,
                "no descriptor says data arrived: pair it with an eventfd to wake the loop",
            ),
            no(Remote, LOCAL),
            ok(
                NotifyOnly,
                "a futex word in shared memory wakes a waiter with no descriptor \
                 (ipckit::sync::event)",
            ),
        ],
        wins: &[
            &[LargePayloads, LatencyCritical],
            &[LargePayloads],
            &[LatencyCritical],
            &[ManyReaders, LargePayloads],
        ],
    },
    Rule {
        mechanism: "ipckit channel",
        rows: &["channel", "channel-spin", "channel-blocking"],
        calls: "channel::pair(&Options::default()) before fork() (or an end passed over a Unix \
                socket with send_over()), or channel::create(\"/name\", &opts) by the receiver \
                and channel::open(\"/name\") by each sender; send() or loan() + commit() to \
                write in place, recv() or borrow() to read in place, each with try_ and _timeout \
                forms; Options::wait(Wait::Spin | Wait::Blocking | Wait::Adaptive), \
                .multi_sender(true), .pollable(true) for an eventfd to epoll (ipckit::channel)",
        summary: "ipckit's shared-memory ring: whole messages, read and written in place, no \
                  system call while both sides are busy, and Disconnected when the peer dies",
        tradeoff: "ipckit only: both sides must use ipckit (the ring's layout is its own); one \
                   receiver; a side that spins (Wait::Spin) burns a CPU while it waits, and the \
                   adaptive default spins briefly (ADAPTIVE_SPIN, 20 µs) before it \
                   sleeps on a futex; a message larger than a slot (4080 B by default) costs a \
                   memfd and a socket message",
        failure_mode: "a crashed peer: the survivor gets ErrorKind::Disconnected (at once when an \
                       end is dropped, within 50 ms of a SIGKILL), so handle it; a full ring \
                       blocks send() (try_send() or send_timeout() bound it); with several \
                       senders, one killed between claiming a slot and committing it leaves a \
                       hole, its message lost: the receiver skips it once it sees that process \
                       gone (whenever it checks on its peers), but if the sender died in the \
                       instant between its claim and its pid tag, or its pid was reused, the \
                       receiver stalls at the hole, Disconnected once every sender is gone",
        cleanup: "anonymous (channel::pair): nothing to remove, the memfd and the socket pair go \
                  with their last holder, a crash included; named (channel::create): the \
                  receiver owns the /dev/shm name and removes it when dropped, senders never \
                  do; a receiver killed by SIGKILL leaves it (ipckit gc removes it once nobody \
                  maps it)",
        lab: "shm-race",
        notify_only: false,
        fits: &[
            good(
                Related,
                "channel::pair() before fork(): a memfd and a socket pair, nothing named to leak \
                 (the ends are CLOEXEC: hand them to an exec()ed child with send_over())",
            ),
            good(
                Unrelated,
                "channel::create(\"/name\") by the receiver, channel::open(\"/name\") by senders, \
                 or an anonymous end passed over a Unix socket (send_over())",
            ),
            best(
                OneWay,
                "one way by design: senders to one receiver, and Disconnected when the other \
                 side is gone",
            ),
            ok(TwoWay, "two channels, one per direction"),
            best(
                Boundaries,
                "each send() or committed loan is one message, and recv() / borrow() returns it \
                 whole",
            ),
            best(
                LargePayloads,
                "a message larger than a slot goes by the bulk path: written once into a memfd \
                 of its own, which the receiver maps; no copy through the kernel (or make the \
                 slots big enough, up to 64 MiB)",
            ),
            best(
                LatencyCritical,
                "no system call while both sides are busy: the adaptive wait spins before it \
                 sleeps on a futex (Wait::Spin never sleeps); loan() and borrow() skip the copies",
            )
            .lab("shm-atomic"),
            no(
                FdPassing,
                "it carries bytes: its own bulk memfds ride on its socket, but it does not carry \
                 yours; use a Unix socket (SCM_RIGHTS)",
            ),
            no(
                ManyReaders,
                "one receiver per channel: a channel per reader, or a queue whose readers share \
                 the work",
            ),
            good(
                ManyWriters,
                "Options::multi_sender(true) (a named channel always takes several): senders \
                 claim slots with a compare-and-swap, each end cloned (try_clone()), inherited or \
                 open()ed; first in, first out per sender",
            ),
            no(
                Priorities,
                "first in, first out: no priorities (a channel per priority, drained in order, \
                 is yours to build)",
            ),
            poor(
                SurviveRestart,
                "a restarted sender open()s a named channel again and is received from as \
                 before, but the channel and its unread messages go with the receiver: a \
                 restarted receiver creates a new one (a killed one's name must go first: \
                 ipckit gc)",
            ),
            good(
                EventLoop,
                "Options::pollable(true): the receiver's event_fd() becomes readable when a \
                 message may wait (try_recv() until None); anonymous channels only",
            ),
            no(Remote, LOCAL),
            ok(
                NotifyOnly,
                "a short message wakes the receiver: a whole ring for one bit",
            ),
        ],
        wins: &[
            &[LatencyCritical, Boundaries],
            &[LargePayloads, Boundaries, Related],
            &[LargePayloads, LatencyCritical, OneWay],
            &[Unrelated, LatencyCritical, ManyWriters],
            &[Related, OneWay, Boundaries, EventLoop, LatencyCritical],
        ],
    },
    Rule {
        mechanism: "System V message queue",
        rows: &["sysv-mq"],
        calls: "msgget(key, IPC_CREAT|IPC_EXCL|0600) by the owner, msgget(key, 0) by the \
                others; msgsnd(type, data) / msgrcv(msgtyp): N takes type N only, -N the lowest \
                type up to N; msgctl(IPC_RMID) (ipckit::mq::sysv)",
        summary: "one queue whose messages carry a type receivers filter on: requests and \
                  replies, or routing to many readers, in one kernel object",
        tradeoff: "no descriptor (it cannot be polled), a key namespace shared with every program \
                   on the host, 8 KiB messages by default (kernel.msgmax); POSIX queues are the \
                   modern choice unless you need the type filter",
        failure_mode: "the queue outlives everyone, like every System V object: a crashed owner \
                       leaves an orphan, messages and all, until IPC_RMID; a full queue blocks \
                       msgsnd()",
        cleanup: "the creator msgctl(IPC_RMID)s it; after a crash ipckit gc (or ipcrm -q) \
                  removes the orphan",
        lab: "sysv-orphan",
        notify_only: false,
        fits: &[
            good(Related, "IPC_PRIVATE before fork(): no key to collide with"),
            good(
                Unrelated,
                "a key (agreed, or ftok() of a path) both sides msgget()",
            ),
            good(OneWay, "senders to receivers"),
            good(
                TwoWay,
                "one queue both ways: requests as type 1, each reply typed with its client's pid \
                 (mind kernel.msgmnb, 16 KiB by default: requests can fill the queue and block \
                 the server's replies)",
            )
            .lab("sysv-mq-types"),
            best(
                Boundaries,
                "each msgsnd() is one message, and msgrcv() returns it whole",
            ),
            poor(
                LargePayloads,
                "at most kernel.msgmax (8 KiB by default) per message and kernel.msgmnb per queue",
            ),
            ok(LatencyCritical, "a syscall each way, and a copy in and out"),
            no(
                FdPassing,
                "a queue carries bytes: descriptors need a Unix socket (SCM_RIGHTS)",
            ),
            good(
                ManyReaders,
                "each reader takes the types it asks for: a pool shares type 1, or each reader \
                 has its own",
            )
            .lab("sysv-mq-types"),
            best(ManyWriters, "any number of senders, no connection each"),
            good(
                Priorities,
                "types as priorities: msgrcv() with -N takes the lowest type first",
            ),
            best(
                SurviveRestart,
                "the queue and its messages outlive every process until IPC_RMID",
            ),
            poor(
                EventLoop,
                "no descriptor to poll: a thread has to sit in msgrcv()",
            ),
            no(Remote, LOCAL),
            ok(
                NotifyOnly,
                "an empty message wakes a receiver: a whole queue for one bit",
            ),
        ],
        wins: &[&[TwoWay, ManyReaders, ManyWriters, Boundaries]],
    },
    Rule {
        mechanism: "eventfd (notification only)",
        rows: &["eventfd"],
        calls: "eventfd(0, EFD_CLOEXEC|EFD_NONBLOCK) before fork() (or passed over a Unix \
                socket); write() adds to the counter, read() takes it (EFD_SEMAPHORE: one at a \
                time); poll/epoll it (ipckit::notify::eventfd)",
        summary: "a pollable wake-up counter: one descriptor, no data",
        tradeoff: "it carries a count, not a message: pair it with shared memory or a queue for \
                   the data",
        failure_mode: "wake-ups add up: three write()s read as one 3, so a reader that counts one \
                       event per read() misses some; publish the data before the write(), or \
                       the reader wakes to nothing",
        cleanup: "nothing to remove: it goes with its last descriptor",
        lab: "signal-safe-wakeup",
        notify_only: true,
        fits: &[
            best(Related, "created before fork(), the child inherits it"),
            poor(
                Unrelated,
                "no name: the descriptor must be passed over a Unix socket (SCM_RIGHTS)",
            ),
            good(OneWay, "one side write()s, the other read()s"),
            ok(TwoWay, "one eventfd per direction"),
            poor(
                Boundaries,
                "wake-ups add up into one count (EFD_SEMAPHORE hands them out one by one)",
            ),
            no(LargePayloads, "a 64-bit counter, no payload"),
            good(
                LatencyCritical,
                "one write() and one read(), nothing copied",
            ),
            no(FdPassing, "a counter carries no descriptors"),
            poor(
                ManyReaders,
                "one read() takes the whole count (EFD_SEMAPHORE shares it out)",
            ),
            good(ManyWriters, "every write() adds to the count: none is lost"),
            poor(Priorities, "one counter per priority"),
            poor(SurviveRestart, "it goes with its last descriptor"),
            best(EventLoop, "made for it: poll/epoll it beside your sockets")
                .lab("signal-safe-wakeup"),
            no(Remote, LOCAL),
            best(
                NotifyOnly,
                "exactly a wake-up: a counter behind a descriptor",
            ),
        ],
        wins: &[
            &[NotifyOnly, Related],
            &[NotifyOnly, EventLoop],
            &[NotifyOnly],
        ],
    },
    Rule {
        mechanism: "signals (notification only)",
        rows: &["signal"],
        calls: "kill(pid, SIGUSR1) or sigqueue(pid, SIGRTMIN+n, value); the receiver blocks them \
                and reads a signalfd() (or a handler that only writes to a self-pipe) \
                (ipckit::notify::signal)",
        summary: "poke a process by pid: no shared object to create or clean up",
        tradeoff: "standard signals coalesce and carry nothing; a handler may call only \
                   async-signal-safe functions; SIGKILL and SIGSTOP cannot be caught; pids are \
                   reused",
        failure_mode: "two SIGUSR1 sent before the receiver runs arrive as one (real-time \
                       signals queue); work done inside a handler (malloc, locks) deadlocks or \
                       corrupts state: hand off to a self-pipe or a signalfd",
        cleanup: "nothing to remove",
        lab: "signal-coalescing",
        notify_only: true,
        fits: &[
            good(
                Related,
                "the parent knows its children's pids (and gets SIGCHLD)",
            ),
            best(
                Unrelated,
                "only a pid is needed, and permission to signal it (the same user)",
            ),
            good(OneWay, "the sender pokes, the receiver handles"),
            ok(TwoWay, "each side signals the other's pid"),
            poor(
                Boundaries,
                "standard signals coalesce: two sent before delivery arrive as one; real-time \
                 signals queue",
            )
            .lab("signal-coalescing"),
            no(
                LargePayloads,
                "a signal number and, with sigqueue(), one int",
            ),
            ok(
                LatencyCritical,
                "delivery goes through the scheduler, then a handler or a signalfd read",
            ),
            no(FdPassing, "a signal carries no descriptors"),
            poor(
                ManyReaders,
                "a signal goes to one process (or a whole process group with kill(-pgid))",
            ),
            ok(
                ManyWriters,
                "anyone allowed can signal, and si_pid says who did; identical standard signals \
                 merge",
            ),
            ok(
                Priorities,
                "real-time signals are delivered lowest number first, each one queued",
            ),
            poor(
                SurviveRestart,
                "a restarted process has a new pid, and the old one can be reused: signal through \
                 a pidfd",
            ),
            good(
                EventLoop,
                "signalfd() makes them readable on a descriptor (or the self-pipe trick)",
            )
            .lab("signal-safe-wakeup"),
            no(Remote, LOCAL),
            good(NotifyOnly, "a poke with no object behind it"),
        ],
        wins: &[&[NotifyOnly, Unrelated]],
    },
    Rule {
        mechanism: "TCP",
        rows: &["tcp-loopback"],
        calls: "socket(AF_INET6 or AF_INET, SOCK_STREAM) + bind() + listen() + accept() on the \
                server, connect() on the client; TCP_NODELAY for request and reply; TLS when it \
                crosses a network you do not own (ipckit::socket::tcp)",
        summary: "the one that leaves the host",
        tradeoff: "the network stack on every message (on one host a Unix socket is cheaper and \
                   has file permissions); a byte stream; no descriptors; anyone who reaches the \
                   port can connect (the figures here are loopback: a network only adds)",
        failure_mode: "a peer that vanishes without a FIN (its host crashed, the network split) \
                       looks alive until a write fails or keep-alive fires: put timeouts on \
                       everything; reads and writes can be partial: frame messages",
        cleanup: "nothing on disk; a restarted server needs SO_REUSEADDR to bind while old \
                  connections sit in TIME_WAIT",
        lab: "message-boundaries",
        notify_only: false,
        fits: &[
            no(
                Related,
                "a fork()ed child runs on your host: for it socketpair() does what TCP does, \
                 cheaper",
            ),
            ok(
                Unrelated,
                "a port on 127.0.0.1 works, but any local user can connect: a Unix socket has \
                 file permissions",
            ),
            ok(OneWay, "works; shutdown(SHUT_WR) gives EOF"),
            best(TwoWay, "full duplex"),
            poor(Boundaries, "a byte stream: frame each message").lab("message-boundaries"),
            good(
                LargePayloads,
                "streams any size; the network's bandwidth is the limit",
            ),
            poor(
                LatencyCritical,
                "the network stack on every message, and Nagle's delay without TCP_NODELAY",
            ),
            no(
                FdPassing,
                "file descriptors do not cross machines: SCM_RIGHTS needs a Unix socket, which is \
                 local",
            ),
            ok(ManyReaders, "a connection per reader"),
            good(ManyWriters, "accept() a connection per client"),
            poor(Priorities, "in order only: one connection per priority"),
            ok(
                SurviveRestart,
                "clients reconnect; SO_REUSEADDR lets the server bind again at once",
            ),
            best(EventLoop, "descriptors to epoll, as everywhere"),
            best(Remote, "the only mechanism here that crosses machines"),
            ok(NotifyOnly, "a byte over a connection wakes a poll loop"),
        ],
        wins: &[
            &[Remote],
            &[Remote, TwoWay, ManyWriters],
            &[Remote, LatencyCritical],
        ],
    },
];

/// A mechanism ranked for a set of constraints.
#[derive(Clone, Debug)]
pub struct Candidate {
    /// The rule.
    pub rule: &'static Rule,
    /// The sum of the fits' weights ([`Level::weight`]; a `No` counts nothing).
    pub score: i32,
    /// The fit for each constraint given, in flag order.
    pub reasons: Vec<Fit>,
}

impl Candidate {
    /// It meets every constraint given (no `No` fit).
    pub fn fits_all(&self) -> bool {
        self.cannot().next().is_none()
    }

    /// The fits that speak for it (best, good, ok).
    pub fn speaks_for(&self) -> impl Iterator<Item = &Fit> {
        self.reasons.iter().filter(|f| f.level <= Level::Ok)
    }

    /// The fits that work against it.
    pub fn against(&self) -> impl Iterator<Item = &Fit> {
        self.reasons.iter().filter(|f| f.level == Level::Poor)
    }

    /// The constraints it cannot meet.
    pub fn cannot(&self) -> impl Iterator<Item = &Fit> {
        self.reasons.iter().filter(|f| f.level == Level::No)
    }

    /// Why it fits, in one line: each constraint given and its reason, or what the mechanism
    /// is for when none was given.
    pub fn why(&self) -> String {
        let parts: Vec<String> = self
            .speaks_for()
            .map(|f| format!("{}: {}", f.need.flag(), f.why))
            .collect();
        if parts.is_empty() {
            self.rule.summary.to_string()
        } else {
            parts.join("; ")
        }
    }

    /// The lab scenarios that show its risks here: the rule's own first, then those of the
    /// constraints given.
    pub fn labs(&self) -> Vec<&'static str> {
        let mut labs = vec![self.rule.lab];
        for lab in self.reasons.iter().filter_map(|f| f.lab) {
            if !labs.contains(&lab) {
                labs.push(lab);
            }
        }
        labs
    }
}

/// The ranked recommendation for a set of constraints.
#[derive(Clone, Debug)]
pub struct Advice {
    /// Best first. Only mechanisms that meet every constraint given, unless none does: then
    /// the ones that miss the fewest (never one that misses a [`Need::hard`] one).
    pub candidates: Vec<Candidate>,
    /// Constraints that cannot all hold, each with why.
    pub conflicts: Vec<String>,
    /// What a constraint did to the field (`--remote` rules out every local mechanism).
    pub notes: Vec<String>,
}

fn names(rules: &[&Rule]) -> String {
    rules
        .iter()
        .map(|r| r.mechanism)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Ranks the mechanisms of [`RULES`] for `c`: by the sum of their fits' weights, ties to the
/// simpler (earlier) rule.
pub fn advise(c: &Constraints) -> Advice {
    let needs = c.needs();
    let field: Vec<&'static Rule> = RULES
        .iter()
        .filter(|r| !r.notify_only || c.notify_only)
        .collect();

    let mut notes = Vec::new();
    for hard in needs.iter().filter(|n| n.hard()) {
        let out: Vec<&Rule> = field
            .iter()
            .copied()
            .filter(|r| r.level(*hard) == Level::No)
            .collect();
        let left: Vec<&Rule> = field
            .iter()
            .copied()
            .filter(|r| r.level(*hard) != Level::No)
            .collect();
        if !out.is_empty() {
            notes.push(format!(
                "{} rules out every mechanism {}: {}; {} is what is left",
                hard.flag(),
                if *hard == Need::Remote {
                    "that is local to one host"
                } else {
                    "that cannot meet it"
                },
                names(&out),
                if left.is_empty() {
                    "nothing".to_string()
                } else {
                    names(&left)
                }
            ));
        }
    }

    let mut conflicts = Vec::new();
    for (i, a) in needs.iter().enumerate() {
        for b in &needs[i + 1..] {
            let both = field
                .iter()
                .any(|r| r.level(*a) != Level::No && r.level(*b) != Level::No);
            if both {
                continue;
            }
            // Explain from the narrower side: what it leaves, and why that cannot do the other.
            let for_a: Vec<&Rule> = field
                .iter()
                .copied()
                .filter(|r| r.level(*a) != Level::No)
                .collect();
            let for_b: Vec<&Rule> = field
                .iter()
                .copied()
                .filter(|r| r.level(*b) != Level::No)
                .collect();
            let (narrow, left, other) = if for_a.len() <= for_b.len() {
                (a, for_a, b)
            } else {
                (b, for_b, a)
            };
            let mut whys: Vec<&str> = Vec::new();
            for r in &left {
                if let Some(f) = r.fit(*other)
                    && !whys.contains(&f.why)
                {
                    whys.push(f.why);
                }
            }
            conflicts.push(if left.is_empty() {
                format!(
                    "{} and {} cannot both hold: no mechanism meets {}",
                    a.flag(),
                    b.flag(),
                    narrow.flag()
                )
            } else {
                format!(
                    "{} and {} cannot both hold: {} leaves only {}, which cannot do {}: {}",
                    a.flag(),
                    b.flag(),
                    narrow.flag(),
                    names(&left),
                    other.flag(),
                    whys.join("; ")
                )
            });
        }
    }

    let mut all: Vec<(usize, Candidate)> = field
        .iter()
        .enumerate()
        .filter(|(_, r)| !needs.iter().any(|n| n.hard() && r.level(*n) == Level::No))
        .map(|(i, r)| {
            let reasons: Vec<Fit> = needs
                .iter()
                .map(|n| {
                    r.fit(*n)
                        .copied()
                        .unwrap_or_else(|| ok(*n, "no rule says otherwise"))
                })
                .collect();
            // --latency-critical "matters more than anything else": its fit counts twice.
            let score: i32 = reasons
                .iter()
                .filter_map(|f| {
                    let w = f.level.weight()?;
                    Some(if f.need == Need::LatencyCritical {
                        2 * w
                    } else {
                        w
                    })
                })
                .sum();
            // On one host TCP only adds the network stack to what a Unix socket does: it ranks
            // below every local mechanism unless --remote asks for it.
            let score = if r.mechanism == "TCP" && !c.remote {
                score - 3
            } else {
                score
            };
            (
                i,
                Candidate {
                    rule: r,
                    score,
                    reasons,
                },
            )
        })
        .collect();
    let fewest = all
        .iter()
        .map(|(_, c)| c.cannot().count())
        .min()
        .unwrap_or(0);
    all.retain(|(_, c)| c.cannot().count() == fewest);
    all.sort_by(|(i, x), (j, y)| y.score.cmp(&x.score).then(i.cmp(j)));
    if fewest > 0 && conflicts.is_empty() {
        conflicts.push(format!(
            "{} cannot all hold at once: no one mechanism meets them all; the closest miss {} each",
            needs.iter().map(|n| n.flag()).collect::<Vec<_>>().join(" "),
            fewest
        ));
    }
    Advice {
        candidates: all.into_iter().map(|(_, c)| c).collect(),
        conflicts,
        notes,
    }
}

/// One mechanism's figures in a bench report, at one message size.
#[derive(Clone, Debug, PartialEq)]
pub struct Measured {
    /// The bench row they come from (`shm-futex`, …).
    pub row: String,
    /// Bytes per message of the round trip (or of the throughput when there is no round trip).
    pub size: u64,
    /// Median round trip, nanoseconds (a latency row at `size`).
    pub p50_rtt_ns: Option<u64>,
    /// Bytes per message of the throughput figures: `size`, or for large payloads the largest
    /// size the throughput was measured at (the bench measures round trips at fewer sizes).
    pub throughput_size: u64,
    /// Messages per second one way (a throughput row at `throughput_size`).
    pub msgs_per_sec: Option<f64>,
    /// Payload bytes per second one way (a throughput row at `throughput_size`).
    pub bytes_per_sec: Option<f64>,
}

/// `Ok` when `report` looks like what `ipckit bench` writes (`version` and a `runs` list);
/// otherwise what is missing.
pub fn check_report(report: &Value) -> Result<(), String> {
    let Some(obj) = report.as_object() else {
        return Err("not an ipckit bench report: not a JSON object".into());
    };
    if !obj.get("version").is_some_and(Value::is_u64) {
        return Err("not an ipckit bench report: no \"version\" number".into());
    }
    if !obj.get("runs").is_some_and(Value::is_array) {
        return Err("not an ipckit bench report: no \"runs\" list".into());
    }
    Ok(())
}

/// The figures of the first of `rows` that `report` measured, at the smallest message size
/// with both a round trip and a throughput (or, failing that, any measured size).
pub fn measured(report: &Value, rows: &[&str]) -> Option<Measured> {
    pick(report, rows, false)
}

/// [`measured`] for a candidate under `c`: at the largest such size when payloads are large.
pub fn measured_for(report: &Value, rule: &Rule, c: &Constraints) -> Option<Measured> {
    pick(report, rule.rows, c.large_payloads)
}

fn pick(report: &Value, rows: &[&str], largest: bool) -> Option<Measured> {
    let runs = report.get("runs")?.as_array()?;
    for row in rows {
        // size -> p50; size -> (msgs/s, bytes/s)
        let mut lat: Vec<(u64, u64)> = Vec::new();
        let mut thr: Vec<(u64, Option<f64>, Option<f64>)> = Vec::new();
        for r in runs {
            let usable = r.get("mechanism").and_then(Value::as_str) == Some(row)
                && r.get("skipped").is_none_or(Value::is_null)
                && r.get("error").is_none_or(Value::is_null)
                && r.get("verified").and_then(Value::as_bool) != Some(false);
            let Some(size) = r.get("size").and_then(Value::as_u64) else {
                continue;
            };
            if !usable {
                continue;
            }
            match r.get("kind").and_then(Value::as_str) {
                Some("latency") => {
                    if let Some(p50) = r.pointer("/rtt_ns/p50").and_then(Value::as_u64) {
                        lat.push((size, p50));
                    }
                }
                Some("throughput") => {
                    let m = r.get("msgs_per_s").and_then(Value::as_f64);
                    let b = r.get("bytes_per_s").and_then(Value::as_f64);
                    if m.is_some() || b.is_some() {
                        thr.push((size, m, b));
                    }
                }
                _ => {}
            }
        }
        let both: Vec<u64> = lat
            .iter()
            .map(|(s, _)| *s)
            .filter(|s| thr.iter().any(|(t, _, _)| t == s))
            .collect();
        let sizes: Vec<u64> = if both.is_empty() {
            lat.iter()
                .map(|(s, _)| *s)
                .chain(thr.iter().map(|(s, _, _)| *s))
                .collect()
        } else {
            both
        };
        let size = if largest {
            sizes.iter().max()
        } else {
            sizes.iter().min()
        };
        let Some(&size) = size else { continue };
        // For large payloads each figure at the largest size it was measured at: the bench
        // measures throughput at larger sizes than round trips.
        let (size, throughput_size) = if largest {
            let lat_max = lat.iter().map(|(s, _)| *s).max();
            let thr_max = thr.iter().map(|(s, _, _)| *s).max();
            (lat_max.unwrap_or(size), thr_max.unwrap_or(size))
        } else {
            (size, size)
        };
        let t = thr.iter().find(|(s, _, _)| *s == throughput_size);
        return Some(Measured {
            row: row.to_string(),
            size,
            p50_rtt_ns: lat.iter().find(|(s, _)| *s == size).map(|(_, p)| *p),
            throughput_size,
            msgs_per_sec: t.and_then(|t| t.1),
            bytes_per_sec: t.and_then(|t| t.2),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rows `ipckit bench` writes (crates/ipckit-bench/src/drivers).
    const BENCH_ROWS: &[&str] = &[
        "pipe",
        "fifo",
        "unix-stream",
        "unix-dgram",
        "unix-seqpacket",
        "tcp-loopback",
        "posix-mq",
        "sysv-mq",
        "posix-shm-sem",
        "sysv-shm-sem",
        "shm-futex",
        "mmap-file-futex",
        "channel",
        "channel-spin",
        "channel-blocking",
        "eventfd",
        "signal",
    ];

    fn first(needs: &[Need]) -> &'static str {
        let advice = advise(&Constraints::from_needs(needs));
        advice.candidates[0].rule.mechanism
    }

    #[test]
    fn every_rule_wins_its_own_constraints() {
        for rule in RULES {
            assert!(
                !rule.wins.is_empty(),
                "{} has no winning case",
                rule.mechanism
            );
            for needs in rule.wins {
                let advice = advise(&Constraints::from_needs(needs));
                let top = &advice.candidates[0];
                assert_eq!(
                    top.rule.mechanism,
                    rule.mechanism,
                    "for {:?}: ranked {:?}",
                    needs,
                    advice
                        .candidates
                        .iter()
                        .map(|c| (c.rule.mechanism, c.score))
                        .collect::<Vec<_>>()
                );
                assert!(
                    top.fits_all(),
                    "{}: wins {needs:?} but cannot do it all",
                    rule.mechanism
                );
                assert!(
                    advice.conflicts.is_empty(),
                    "{needs:?}: {:?}",
                    advice.conflicts
                );
            }
        }
    }

    #[test]
    fn every_rule_says_how_it_fits_every_need_once() {
        for rule in RULES {
            for need in Need::ALL {
                let n = rule.fits.iter().filter(|f| f.need == need).count();
                assert_eq!(n, 1, "{}: {} fits for {:?}", rule.mechanism, n, need);
            }
            for f in rule.fits {
                assert!(
                    !f.why.is_empty(),
                    "{}: {:?} has no reason",
                    rule.mechanism,
                    f.need
                );
            }
            for text in [
                rule.calls,
                rule.summary,
                rule.tradeoff,
                rule.failure_mode,
                rule.cleanup,
            ] {
                assert!(!text.is_empty(), "{}: an empty field", rule.mechanism);
                assert!(!text.contains("  "), "{}: {text:?}", rule.mechanism);
            }
        }
    }

    #[test]
    fn every_lab_and_bench_row_named_exists() {
        for rule in RULES {
            let labs = std::iter::once(rule.lab).chain(rule.fits.iter().filter_map(|f| f.lab));
            for lab in labs {
                assert!(
                    crate::find(lab).is_some(),
                    "{}: no lab scenario {lab}",
                    rule.mechanism
                );
            }
            assert!(!rule.rows.is_empty(), "{}", rule.mechanism);
            for row in rule.rows {
                assert!(
                    BENCH_ROWS.contains(row),
                    "{}: no bench row {row}",
                    rule.mechanism
                );
            }
        }
    }

    #[test]
    fn the_five_combinations() {
        assert_eq!(first(&[Related, OneWay]), "anonymous pipe");
        assert_eq!(first(&[Unrelated, OneWay]), "FIFO (named pipe)");
        assert_eq!(first(&[TwoWay, FdPassing]), "Unix stream socket");
        assert_eq!(first(&[Boundaries, Priorities]), "POSIX message queue");
        let shm = first(&[LargePayloads, LatencyCritical]);
        assert!(shm.starts_with("shared memory"), "{shm}");
        assert!(shm.contains("futex") && shm.contains("semaphore"), "{shm}");
    }

    #[test]
    fn the_channel_beside_raw_shared_memory() {
        const CHANNEL: &str = "ipckit channel";
        // A tie goes to the general one (any program can map shared memory); the channel
        // comes next, meeting everything too.
        for needs in [&[LargePayloads, LatencyCritical][..], &[LatencyCritical]] {
            let advice = advise(&Constraints::from_needs(needs));
            let top: Vec<_> = advice.candidates[..2].iter().collect();
            assert!(
                top[0].rule.mechanism.starts_with("shared memory"),
                "{needs:?}"
            );
            assert_eq!(top[1].rule.mechanism, CHANNEL, "{needs:?}");
            assert_eq!(top[0].score, top[1].score, "{needs:?}");
            assert!(top[1].fits_all());
        }
        // Whole messages tip it to the channel; several readers rule it out.
        assert_eq!(
            first(&[LargePayloads, LatencyCritical, Boundaries]),
            CHANNEL
        );
        let advice = advise(&Constraints::from_needs(&[ManyReaders, LargePayloads]));
        assert!(
            advice
                .candidates
                .iter()
                .all(|c| c.rule.mechanism != CHANNEL)
        );
        // Its figures: the adaptive row first, the others when it is missing.
        let rule = RULES.iter().find(|r| r.mechanism == CHANNEL).unwrap();
        let run = |row: &str, p50: u64| {
            format!(
                r#"{{"mechanism": "{row}", "kind": "latency", "size": 64,
                    "rtt_ns": {{"p50": {p50}}}, "verified": true}}"#
            )
        };
        let both = format!(
            r#"{{"version": 1, "runs": [{}, {}]}}"#,
            run("channel-spin", 300),
            run("channel", 900)
        );
        let report: Value = serde_json::from_str(&both).unwrap();
        let m = measured_for(&report, rule, &Constraints::default()).unwrap();
        assert_eq!((m.row.as_str(), m.p50_rtt_ns), ("channel", Some(900)));
        let spin = format!(
            r#"{{"version": 1, "runs": [{}]}}"#,
            run("channel-spin", 300)
        );
        let report: Value = serde_json::from_str(&spin).unwrap();
        let m = measured_for(&report, rule, &Constraints::default()).unwrap();
        assert_eq!(m.row, "channel-spin");
    }

    #[test]
    fn remote_leaves_only_tcp_and_says_so() {
        let advice = advise(&Constraints::from_needs(&[Remote, OneWay, Boundaries]));
        assert_eq!(advice.candidates.len(), 1);
        assert_eq!(advice.candidates[0].rule.mechanism, "TCP");
        assert!(advice.conflicts.is_empty(), "{:?}", advice.conflicts);
        assert_eq!(advice.notes.len(), 1);
        let note = &advice.notes[0];
        assert!(
            note.starts_with("--remote rules out every mechanism that is local"),
            "{note}"
        );
        assert!(
            note.contains("anonymous pipe") && note.contains("shared memory"),
            "{note}"
        );
        assert!(note.ends_with("TCP is what is left"), "{note}");
    }

    #[test]
    fn remote_and_fd_passing_conflict() {
        let advice = advise(&Constraints::from_needs(&[Remote, FdPassing, TwoWay]));
        assert_eq!(advice.conflicts.len(), 1, "{:?}", advice.conflicts);
        let c = &advice.conflicts[0];
        assert!(
            c.starts_with("--fd-passing and --remote cannot both hold"),
            "{c}"
        );
        assert!(
            c.contains("leaves only TCP") && c.contains("Unix socket"),
            "{c}"
        );
        // Still an answer: TCP, with what it cannot do named.
        let top = &advice.candidates[0];
        assert_eq!(top.rule.mechanism, "TCP");
        assert!(!top.fits_all());
        assert_eq!(top.cannot().next().unwrap().need, FdPassing);
        assert!(advice.candidates.iter().all(|c| c.rule.mechanism == "TCP"));
    }

    #[test]
    fn fd_passing_needs_a_unix_socket() {
        let advice = advise(&Constraints::from_needs(&[FdPassing, Priorities]));
        assert!(advice.conflicts.is_empty());
        for c in &advice.candidates {
            assert!(
                c.rule.mechanism.starts_with("Unix "),
                "{}",
                c.rule.mechanism
            );
        }
        let advice = advise(&Constraints::from_needs(&[Related, Remote]));
        assert_eq!(advice.conflicts.len(), 1, "{:?}", advice.conflicts);
        assert!(advice.conflicts[0].starts_with("--related and --remote"));
    }

    #[test]
    fn a_wake_up_with_descriptors_is_a_unix_socket() {
        let advice = advise(&Constraints::from_needs(&[NotifyOnly, FdPassing]));
        assert!(advice.conflicts.is_empty(), "{:?}", advice.conflicts);
        assert!(advice.candidates[0].fits_all());
        assert!(advice.candidates[0].rule.mechanism.starts_with("Unix "));
    }

    #[test]
    fn notification_mechanisms_only_when_asked_for() {
        for needs in [&[][..], &[Related, EventLoop], &[LatencyCritical]] {
            let advice = advise(&Constraints::from_needs(needs));
            assert!(
                advice.candidates.iter().all(|c| !c.rule.notify_only),
                "{needs:?}"
            );
        }
    }

    #[test]
    fn reasons_and_labs_follow_the_constraints() {
        let advice = advise(&Constraints::from_needs(&[Related, OneWay, ManyWriters]));
        let pipe = &advice.candidates[0];
        assert_eq!(pipe.rule.mechanism, "anonymous pipe");
        assert_eq!(pipe.reasons.len(), 3);
        assert!(pipe.why().starts_with("--related: pipe2() before fork()"));
        assert_eq!(
            pipe.labs(),
            ["pipe-forgotten-end", "pipe-eof", "pipe-atomic-writes"]
        );
        let none = advise(&Constraints::default());
        assert_eq!(none.candidates[0].why(), RULES[0].summary);
        assert!(none.conflicts.is_empty() && none.notes.is_empty());
    }

    #[test]
    fn constraints_round_trip_through_needs() {
        let c = Constraints {
            related: Some(false),
            two_way: Some(true),
            fd_passing: true,
            remote: true,
            ..Default::default()
        };
        assert_eq!(c.needs(), [Unrelated, TwoWay, FdPassing, Remote]);
        assert_eq!(Constraints::from_needs(&c.needs()), c);
    }

    const REPORT: &str = r#"{
      "version": 1, "tool": "ipckit 0.1.0", "profile": "quick", "duration_ms": 400,
      "host": {"cpus": 2, "kernel": "6.1", "cpu_model": "x", "pinned": true, "pinned_cpus": [0, 1]},
      "runs": [
        {"mechanism": "pipe", "role": "mechanism", "kind": "latency", "size": 64, "messages": 10,
         "rtt_ns": {"p50": 21000, "p90": 1, "p99": 1, "p999": 1, "max": 1},
         "msgs_per_s": 47000.0, "bytes_per_s": null, "cpu_ns_per_msg": 1.0, "verified": true,
         "skipped": null, "error": null, "repeats": 1},
        {"mechanism": "pipe", "role": "mechanism", "kind": "latency", "size": 4096, "messages": 10,
         "rtt_ns": {"p50": 25000, "p90": 1, "p99": 1, "p999": 1, "max": 1},
         "msgs_per_s": 40000.0, "bytes_per_s": null, "cpu_ns_per_msg": 1.0, "verified": true,
         "skipped": null, "error": null, "repeats": 1},
        {"mechanism": "pipe", "role": "mechanism", "kind": "throughput", "size": 64, "messages": 10,
         "rtt_ns": null, "msgs_per_s": 200000.0, "bytes_per_s": 12800000.0, "cpu_ns_per_msg": 1.0,
         "verified": true, "skipped": null, "error": null, "repeats": 3},
        {"mechanism": "pipe", "role": "mechanism", "kind": "throughput", "size": 4096,
         "messages": 10,
         "rtt_ns": null, "msgs_per_s": 60000.0, "bytes_per_s": 245760000.0, "cpu_ns_per_msg": 1.0,
         "verified": true, "skipped": null, "error": null, "repeats": 3},
        {"mechanism": "pipe", "role": "mechanism", "kind": "throughput", "size": 1048576,
         "messages": 10,
         "rtt_ns": null, "msgs_per_s": 100.0, "bytes_per_s": 104857600.0, "cpu_ns_per_msg": 1.0,
         "verified": true, "skipped": null, "error": null, "repeats": 3},
        {"mechanism": "shm-futex", "role": "mechanism", "kind": "latency", "size": 64,
         "messages": 0,
         "rtt_ns": null, "msgs_per_s": null, "bytes_per_s": null, "cpu_ns_per_msg": null,
         "verified": false, "skipped": null, "error": "peer died", "repeats": 0},
        {"mechanism": "posix-shm-sem", "role": "mechanism", "kind": "latency", "size": 64,
         "messages": 10,
         "rtt_ns": {"p50": 9000, "p90": 1, "p99": 1, "p999": 1, "max": 1},
         "msgs_per_s": 1.0, "bytes_per_s": null, "cpu_ns_per_msg": 1.0, "verified": true,
         "skipped": null, "error": null, "repeats": 1},
        {"mechanism": "posix-mq", "role": "mechanism", "kind": "throughput", "size": 65536,
         "messages": 0,
         "rtt_ns": null, "msgs_per_s": null, "bytes_per_s": null, "cpu_ns_per_msg": null,
         "verified": false, "skipped": "over the limit", "error": null, "repeats": 0},
        {"mechanism": "eventfd", "role": "mechanism", "kind": "latency", "size": 8, "messages": 10,
         "rtt_ns": {"p50": 30000, "p90": 1, "p99": 1, "p999": 1, "max": 1},
         "msgs_per_s": 33000.0, "bytes_per_s": null, "cpu_ns_per_msg": 1.0, "verified": true,
         "skipped": null, "error": null, "repeats": 1}
      ],
      "claims": [], "overhead": [], "interrupted": false
    }"#;

    #[test]
    fn reads_the_bench_report() {
        let report: Value = serde_json::from_str(REPORT).unwrap();
        check_report(&report).unwrap();
        let pipe = measured(&report, &["pipe"]).unwrap();
        assert_eq!(
            pipe,
            Measured {
                row: "pipe".into(),
                size: 64,
                p50_rtt_ns: Some(21000),
                throughput_size: 64,
                msgs_per_sec: Some(200000.0),
                bytes_per_sec: Some(12800000.0),
            }
        );
        // Large payloads: each figure at the largest size it was measured at (the round trip at
        // 4 KiB; the throughput at 1 MiB, where only throughput was measured).
        let pipe_rule = RULES.iter().find(|r| r.rows == ["pipe"]).unwrap();
        let large = Constraints::from_needs(&[LargePayloads]);
        let big = measured_for(&report, pipe_rule, &large).unwrap();
        assert_eq!((big.size, big.p50_rtt_ns), (4096, Some(25000)));
        assert_eq!(big.throughput_size, 1 << 20);
        assert!(big.msgs_per_sec.is_some());
        // A failed row is passed over for the next row the rule names.
        let shm = measured(&report, &["shm-futex", "posix-shm-sem"]).unwrap();
        assert_eq!(shm.row, "posix-shm-sem");
        assert_eq!(
            (shm.size, shm.p50_rtt_ns, shm.msgs_per_sec),
            (64, Some(9000), None)
        );
        // Only a latency row: no throughput (notification only).
        let efd = measured(&report, &["eventfd"]).unwrap();
        assert_eq!((efd.size, efd.msgs_per_sec), (8, None));
        // Skipped rows and absent rows give nothing.
        assert_eq!(measured(&report, &["posix-mq"]), None);
        assert_eq!(measured(&report, &["unix-stream"]), None);
    }

    #[test]
    fn knows_a_report_from_other_json() {
        for bad in [
            r#"[1, 2]"#,
            r#"{"runs": []}"#,
            r#"{"version": 1, "runs": 3}"#,
        ] {
            let v: Value = serde_json::from_str(bad).unwrap();
            assert!(check_report(&v).is_err(), "{bad}");
            assert_eq!(measured(&v, &["pipe"]), None);
        }
    }
}
