//! The constraints `ipckit advise` asks about: [`Constraints`] as the flags set them, and each
//! one as a [`Need`].

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
