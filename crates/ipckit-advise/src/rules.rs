//! [`RULES`], the one table `ipckit advise` ranks from: a data table, long by nature (one
//! entry per mechanism, one reason per constraint), the one file of the crate that may pass
//! 1,000 lines should it grow there. Its code is in `rule.rs` (the types) and `rank.rs` (the
//! ranking).

use ipckit_bench::Row;

use crate::need::Need;
use crate::rule::{Rule, best, good, no, ok, poor};

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
        rows: &[Row::Pipe],
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
        rows: &[Row::Fifo],
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
        rows: &[Row::UnixStream],
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
        rows: &[Row::PosixMq],
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
        rows: &[Row::UnixSeqpacket],
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
        rows: &[Row::UnixDgram],
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
            Row::ShmFutex,
            Row::PosixShmSem,
            Row::MmapFileFutex,
            Row::SysvShmSem,
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
        rows: &[Row::Channel, Row::ChannelSpin, Row::ChannelBlocking],
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
        rows: &[Row::SysvMq],
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
        rows: &[Row::EventFd],
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
        rows: &[Row::Signal],
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
        rows: &[Row::TcpLoopback],
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
