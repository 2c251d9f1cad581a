//! iceoryx2 0.10 publish-subscribe between the bench and its peer: a `Role::Peer` row, another
//! project's zero-copy IPC measured on the same terms as ipckit's mechanisms.
//!
//! # Shape
//!
//! Two services of `[u8]` slices, `to-peer` (the parent publishes, the peer subscribes) and, for
//! [`Kind::Latency`] only, `to-parent` (the peer answers). Each carries samples of exactly
//! `setup.size` bytes (`initial_max_slice_len(size)`, `loan_slice_uninit(size)` then
//! `write_from_slice`). Receiving copies the sample into the link's own buffer and releases it
//! at once, so [`Link::recv`] can hand out `&[u8]`.
//!
//! Both ends busy-poll `Subscriber::receive`, as iceoryx2's own `benchmarks/publish-subscribe`
//! does; after [`SPIN_POLLS`] empty polls every further poll also yields the CPU, so two
//! processes sharing one CPU still make progress. Every poll checks `setup.stop` (and the flag
//! [`Link::abort`] sets) and gives up with `Error::Peer("stopped")`.
//!
//! # Nothing is lost, nothing is overwritten
//!
//! The services are created with `enable_safe_overflow(false)`: a full subscriber buffer is
//! never overwritten. Each publisher uses `BackpressureStrategy::RetryUntilDelivered` (iceoryx2
//! 0.10's name for "block") together with a backpressure handler that answers `Retry` until the
//! measurement is stopped and `DiscardDataAndFail` after, so a `send` into the buffer of a peer
//! that stopped reading blocks (iceoryx2 spins, yields, then sleeps up to 10 ms between retries)
//! and ends with an error once `stop` is set — it never drops the sample and never hangs. A loan
//! that finds no free sample (which the sizing below rules out) is retried the same way. A
//! `send` that reached no subscriber at all is an error, not a silent loss.
//!
//! The subscriber buffer is 1 sample for latency (ping-pong never has more than one in flight,
//! as in iceoryx2's own benchmark) and `16 MiB / size` samples, between 2 and 64, for
//! throughput. A publisher preallocates `buffer + 1 borrowed + 1 loaned` samples in its data
//! segment; [`Driver::check`] refuses a size whose segments do not fit in the free space of
//! `/dev/shm`.
//!
//! # Order of creation
//!
//! `parent()` creates the node, both services, its publisher on `to-peer` and its subscriber on
//! `to-parent`, then sends the names over the control channel. `peer()` opens the services,
//! creates its subscriber and publisher and only then answers `Ready`; `parent()` waits for that
//! answer. A publisher connects to the subscribers that exist when it sends, so the first
//! message of either side already has its subscriber.
//!
//! # Files, and how they go
//!
//! Every measurement gets its own iceoryx2 domain: a [`Config`] whose root path is a fresh
//! directory `$TMPDIR/ipckit-iox2-XXXXXX/` (made by the parent, sent to the peer) and whose file
//! prefix is `ipckit_iox2_<pid>_<n>_`, so nothing lands in iceoryx2's default `/tmp/iceoryx2/`
//! or under its default prefix `iox2_`, and everything of the measurement can be named. During
//! a run there are (ids are decimal u128, hashes hex):
//!
//! - under the root, `nodes/<prefix><node id>.node_monitor`, `.node_monitor_context` and
//!   `.node_monitor_owner_lock` (the liveness token of each node, held by a file lock, which is
//!   how a node of a killed process is seen as dead), and a directory `nodes/<node id>/` with
//!   `<prefix>node.details`, one `<prefix><service hash>.service_tag` per service the node uses
//!   and one `<prefix><port id>.port_tag` per port;
//! - under the root, `services/<prefix><service hash>.service`: each service's static config;
//! - in `/dev/shm`, `<prefix><hash>_<service id>.dynamic` (each service's dynamic config: its
//!   nodes and ports), `<prefix><hash>_<publisher id>.data` (each publisher's data segment, the
//!   samples themselves), `<prefix><hash>_<publisher id>_<subscriber id>.connection` (each
//!   publisher-subscriber queue) and `<prefix><hash>_node.0_10_0.global_mgmt` (the domain's
//!   node counter, which iceoryx2 never removes by itself).
//!
//! When a link is dropped, its ports, services and node are dropped first: iceoryx2 removes the
//! ports' data segments and connections, the node's token and directory, and a service's files
//! when its last node leaves (the node also cleans up dead nodes on destruction). Then the link
//! lists the domain's nodes with `Node::list`: each dead one (a peer killed with SIGKILL) goes
//! through `DeadNodeView::blocking_remove_stale_resources`, which removes its ports, its service
//! memberships and its node files. If no node is left alive, the link removes what iceoryx2 keeps
//! anyway — the root directory with `nodes/` and `services/`, and every `/dev/shm` entry with the
//! domain's prefix (the `.global_mgmt` counter, and whatever a crash left). Both ends do this,
//! so whichever ends last removes the domain; a domain the parent could not remove because the
//! peer was still alive is remembered and removed by the next `parent()` once the peer is gone.
//! What no drop can cover is the bench process itself being killed: its domains then stay, named
//! by its pid (`$TMPDIR/ipckit-iox2-<pid>-*`, `/dev/shm/ipckit_iox2_<pid>_*`).

use std::path::{Path as StdPath, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use iceoryx2::port::publisher::Publisher;
use iceoryx2::port::subscriber::Subscriber;
use iceoryx2::port::{BackpressureAction, BackpressureInfo, LoanError, SendError};
use iceoryx2::prelude::*;
use iceoryx2::service::port_factory::publish_subscribe::PortFactory;
use serde::{Deserialize, Serialize};

use crate::control::Control;
use crate::driver::{Abort, Driver, Kind, Link, Role, Setup};
use crate::error::{Error, Result};

/// Empty polls before every further poll also yields the CPU.
pub const SPIN_POLLS: u32 = 1 << 12;

/// What the subscriber buffer of a throughput run may take, in bytes.
const BUFFER_BUDGET: usize = 16 << 20;
/// The deepest subscriber buffer.
const MAX_DEPTH: usize = 64;
/// The shallowest subscriber buffer of a throughput run.
const MIN_THROUGHPUT_DEPTH: usize = 2;
/// Samples a subscriber holds at once (one, copied out and released before the next).
const BORROWED: usize = 1;
/// Samples a publisher loans at once.
const LOANED: usize = 1;
/// iceoryx2's per-sample header and alignment, an upper bound, for [`Driver::check`].
const SAMPLE_OVERHEAD: usize = 256;
/// Where POSIX shared memory lives on Linux.
const SHM_DIR: &str = "/dev/shm";
/// How long a cleanup waits for another process that is already removing a dead node.
const DEAD_NODE_TIMEOUT: Duration = Duration::from_secs(1);

type Pub = Publisher<ipc::Service, [u8], ()>;
type Sub = Subscriber<ipc::Service, [u8], ()>;
type Factory = PortFactory<ipc::Service, [u8], ()>;

/// Distinguishes the domains of one bench process.
static NEXT: AtomicU64 = AtomicU64::new(0);

/// Domains the parent left behind because the peer was still alive, removed later.
static PENDING: Mutex<Vec<Place>> = Mutex::new(Vec::new());

/// iceoryx2 0.10 publish-subscribe over `ipc::Service`.
pub struct Iceoryx2;

/// What the parent tells the peer.
#[derive(Serialize, Deserialize)]
struct Open {
    root: PathBuf,
    prefix: String,
    to_peer: String,
    to_parent: Option<String>,
    size: usize,
    depth: usize,
}

/// The peer's answer, once its ports exist.
#[derive(Serialize, Deserialize)]
struct Ready {
    error: Option<String>,
}

impl Driver for Iceoryx2 {
    fn name(&self) -> crate::rows::Row {
        crate::rows::Row::Iceoryx2
    }

    fn role(&self) -> Role {
        Role::Peer
    }

    fn check(&self, size: usize, kind: Kind) -> std::result::Result<(), String> {
        let samples = depth(size, kind) + BORROWED + LOANED;
        let segments = match kind {
            Kind::Latency => 2,
            Kind::Throughput => 1,
        };
        let need = size
            .checked_add(SAMPLE_OVERHEAD)
            .and_then(|s| s.checked_mul(samples * segments))
            .filter(|&n| n <= isize::MAX as usize)
            .ok_or_else(|| format!("{size} B samples overflow iceoryx2's data segment size"))?;
        if let Some(free) = shm_free()
            && need > free
        {
            return Err(format!(
                "iceoryx2 preallocates {samples} samples of {size} B per direction, {} MiB in \
                 all, in {SHM_DIR}, which has {} MiB free",
                need.div_ceil(1 << 20),
                free >> 20
            ));
        }
        Ok(())
    }

    fn parent(&self, setup: &Setup, ctl: &Control) -> Result<Box<dyn Link>> {
        quiet();
        retry_pending();
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let domain = Domain::create(pid, n)?;
        let depth = depth(setup.size, setup.kind);
        let to_peer = format!("ipckit/bench/{pid}/{n}/to-peer");
        let to_parent =
            (setup.kind == Kind::Latency).then(|| format!("ipckit/bench/{pid}/{n}/to-parent"));

        let node = node(&domain.place.config, "ipckit-bench-parent")?;
        let mut services = vec![create_service(&node, &to_peer, depth)?];
        if let Some(name) = &to_parent {
            services.push(create_service(&node, name, depth)?);
        }
        let aborted = Arc::new(AtomicBool::new(false));
        let tx = publisher(&services[0], setup, &aborted)?;
        let rx = match services.get(1) {
            Some(s) => Some(subscriber(s, depth)?),
            None => None,
        };
        let ports = Ports {
            tx: Some(tx),
            rx,
            _services: services,
            _node: node,
        };

        ctl.send(&Open {
            root: domain.place.root.clone(),
            prefix: domain.place.prefix.clone(),
            to_peer,
            to_parent,
            size: setup.size,
            depth,
        })?;
        let ready: Ready = ctl.recv()?;
        if let Some(e) = ready.error {
            return Err(Error::Peer(format!(
                "could not set up its iceoryx2 end: {e}"
            )));
        }
        Ok(Box::new(IceLink::new(ports, domain, setup, aborted)))
    }

    fn peer(&self, setup: &Setup, ctl: &Control) -> Result<Box<dyn Link>> {
        quiet();
        let open: Open = ctl.recv()?;
        match open_peer(setup, &open) {
            Ok(link) => {
                ctl.send(&Ready { error: None })?;
                Ok(Box::new(link))
            }
            Err(e) => {
                // The parent waits for this answer: tell it why rather than let it time out.
                let _ = ctl.send(&Ready {
                    error: Some(e.to_string()),
                });
                Err(e)
            }
        }
    }
}

/// The peer's end, from the parent's [`Open`].
fn open_peer(setup: &Setup, open: &Open) -> Result<IceLink> {
    if open.size != setup.size {
        return Err(Error::Usage(format!(
            "the parent sends {} B messages, the peer expects {} B",
            open.size, setup.size
        )));
    }
    let domain = Domain::join(&open.root, &open.prefix)?;
    let node = node(&domain.place.config, "ipckit-bench-peer")?;
    let mut services = vec![open_service(&node, &open.to_peer)?];
    if let Some(name) = &open.to_parent {
        services.push(open_service(&node, name)?);
    }
    let aborted = Arc::new(AtomicBool::new(false));
    let rx = subscriber(&services[0], open.depth)?;
    let tx = match services.get(1) {
        Some(s) => Some(publisher(s, setup, &aborted)?),
        None => None,
    };
    let ports = Ports {
        tx,
        rx: Some(rx),
        _services: services,
        _node: node,
    };
    Ok(IceLink::new(ports, domain, setup, aborted))
}

/// iceoryx2 prints only errors.
fn quiet() {
    set_log_level(LogLevel::Error);
}

/// The subscriber buffer for `size`-byte messages measured for `kind`.
fn depth(size: usize, kind: Kind) -> usize {
    match kind {
        Kind::Latency => 1,
        Kind::Throughput => (BUFFER_BUDGET / size.max(1)).clamp(MIN_THROUGHPUT_DEPTH, MAX_DEPTH),
    }
}

/// Bytes free in `/dev/shm`, if it can be told.
fn shm_free() -> Option<usize> {
    let path = std::ffi::CString::new(SHM_DIR).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `path` is a NUL-terminated string and `st` is written by statvfs on success.
    let rc = unsafe { libc::statvfs(path.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: statvfs succeeded, so it filled `st`.
    let st = unsafe { st.assume_init() };
    (st.f_bavail as u128 * st.f_frsize as u128)
        .try_into()
        .ok()
        .or(Some(usize::MAX))
}

/// An iceoryx2 failure, with what was being done.
fn ice(what: &str, e: impl std::fmt::Debug) -> Error {
    Error::Io(std::io::Error::other(format!("iceoryx2: {what}: {e:?}")))
}

fn stopped() -> Error {
    Error::Peer(crate::error::STOPPED.into())
}

fn node(config: &Config, name: &str) -> Result<Node<ipc::Service>> {
    let name = NodeName::new(name).map_err(|e| ice("naming the node", e))?;
    NodeBuilder::new()
        .name(&name)
        .config(config)
        // The bench handles its own signals; iceoryx2 must not install handlers.
        .signal_handling_mode(SignalHandlingMode::Disabled)
        .create::<ipc::Service>()
        .map_err(|e| ice("creating the node", e))
}

fn service_name(name: &str) -> Result<ServiceName> {
    ServiceName::new(name).map_err(|e| ice(&format!("service name {name:?}"), e))
}

fn create_service(node: &Node<ipc::Service>, name: &str, depth: usize) -> Result<Factory> {
    node.service_builder(&service_name(name)?)
        .publish_subscribe::<[u8]>()
        .enable_safe_overflow(false)
        .subscriber_max_buffer_size(depth)
        .subscriber_max_borrowed_samples(BORROWED)
        .history_size(0)
        .max_publishers(1)
        .max_subscribers(1)
        .max_nodes(2)
        .create()
        .map_err(|e| ice(&format!("creating service {name}"), e))
}

fn open_service(node: &Node<ipc::Service>, name: &str) -> Result<Factory> {
    node.service_builder(&service_name(name)?)
        .publish_subscribe::<[u8]>()
        .enable_safe_overflow(false)
        .open()
        .map_err(|e| ice(&format!("opening service {name}"), e))
}

/// A publisher that blocks on a full subscriber buffer until the measurement is stopped.
fn publisher(factory: &Factory, setup: &Setup, aborted: &Arc<AtomicBool>) -> Result<Pub> {
    let stop = setup.stop.clone();
    let aborted = aborted.clone();
    factory
        .publisher_builder()
        .initial_max_slice_len(setup.size)
        .max_loaned_samples(LOANED)
        .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
        .set_backpressure_handler(move |_: &BackpressureInfo| {
            if stop.load(Ordering::Relaxed) || aborted.load(Ordering::Relaxed) {
                BackpressureAction::DiscardDataAndFail
            } else {
                BackpressureAction::Retry
            }
        })
        .create()
        .map_err(|e| ice("creating the publisher", e))
}

fn subscriber(factory: &Factory, depth: usize) -> Result<Sub> {
    factory
        .subscriber_builder()
        .buffer_size(depth)
        .create()
        .map_err(|e| ice("creating the subscriber", e))
}

/// One end's iceoryx2 objects, in the order they must go: ports, services, node.
struct Ports {
    tx: Option<Pub>,
    rx: Option<Sub>,
    _services: Vec<Factory>,
    _node: Node<ipc::Service>,
}

/// One end of the iceoryx2 row.
struct IceLink {
    // Dropped before `domain`: the domain is cleaned after this end's objects are gone.
    ports: Ports,
    _domain: Domain,
    buf: Vec<u8>,
    stop: Arc<AtomicBool>,
    aborted: Arc<AtomicBool>,
}

impl IceLink {
    fn new(ports: Ports, domain: Domain, setup: &Setup, aborted: Arc<AtomicBool>) -> IceLink {
        IceLink {
            ports,
            _domain: domain,
            buf: vec![0; setup.size],
            stop: setup.stop.clone(),
            aborted,
        }
    }
}

/// Whether the measurement is abandoned.
fn halted(stop: &AtomicBool, aborted: &AtomicBool) -> bool {
    stop.load(Ordering::Relaxed) || aborted.load(Ordering::Relaxed)
}

/// One empty poll: spin, or yield once the spinning has gone on long enough.
fn idle(polls: &mut u32) {
    if *polls < SPIN_POLLS {
        *polls += 1;
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

impl Link for IceLink {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        let tx = self
            .ports
            .tx
            .as_ref()
            .ok_or_else(|| Error::Usage("this end of the iceoryx2 row only receives".into()))?;
        let mut polls = 0;
        let sample = loop {
            match tx.loan_slice_uninit(msg.len()) {
                Ok(s) => break s,
                Err(LoanError::OutOfMemory) | Err(LoanError::ExceedsMaxLoans) => {
                    if halted(&self.stop, &self.aborted) {
                        return Err(stopped());
                    }
                    idle(&mut polls);
                }
                Err(e) => return Err(ice("loaning a sample", e)),
            }
        };
        match sample.write_from_slice(msg).send() {
            Ok(0) => Err(Error::Peer(
                "iceoryx2: the sample reached no subscriber (the peer's is gone)".into(),
            )),
            Ok(_) => Ok(()),
            Err(SendError::UnableToDeliver) if halted(&self.stop, &self.aborted) => Err(stopped()),
            Err(e) => Err(ice("sending a sample", e)),
        }
    }

    fn recv(&mut self) -> Result<&[u8]> {
        let rx = self
            .ports
            .rx
            .as_ref()
            .ok_or_else(|| Error::Usage("this end of the iceoryx2 row only sends".into()))?;
        let mut polls = 0;
        loop {
            match rx.receive() {
                Ok(Some(sample)) => {
                    let payload = sample.payload();
                    if payload.len() != self.buf.len() {
                        return Err(Error::Corrupt(format!(
                            "iceoryx2 delivered {} B, expected {} B",
                            payload.len(),
                            self.buf.len()
                        )));
                    }
                    self.buf.copy_from_slice(payload);
                    return Ok(&self.buf);
                }
                Ok(None) => {}
                Err(e) => return Err(ice("receiving a sample", e)),
            }
            if halted(&self.stop, &self.aborted) {
                return Err(stopped());
            }
            idle(&mut polls);
        }
    }

    fn abort(&self) -> Option<Abort> {
        let aborted = self.aborted.clone();
        Some(Box::new(move || aborted.store(true, Ordering::Relaxed)))
    }
}

/// One measurement's iceoryx2 domain: its root directory, its file prefix, its config.
#[derive(Clone)]
struct Place {
    root: PathBuf,
    prefix: String,
    config: Config,
}

impl Place {
    fn new(root: &StdPath, prefix: &str) -> Result<Place> {
        let mut root_str = root
            .to_str()
            .ok_or_else(|| Error::Usage(format!("{} is not UTF-8", root.display())))?
            .to_owned();
        if !root_str.ends_with('/') {
            root_str.push('/');
        }
        let mut config = Config::default();
        config.global.set_root_path(
            &Path::new(root_str.as_bytes()).map_err(|e| ice(&format!("root {root_str}"), e))?,
        );
        config.global.prefix =
            FileName::new(prefix.as_bytes()).map_err(|e| ice(&format!("prefix {prefix}"), e))?;
        Ok(Place {
            root: root.to_owned(),
            prefix: prefix.to_owned(),
            config,
        })
    }

    /// Removes the stale resources of the domain's dead nodes and, once no node of it is
    /// alive, the whole domain. Whether the domain is gone.
    fn clean(&self) -> bool {
        if self.root.exists() {
            let mut alive = false;
            let listed = Node::<ipc::Service>::list(&self.config, |state| {
                match state {
                    NodeState::Alive(_) => alive = true,
                    NodeState::Dead(view) => {
                        let _ = view.blocking_remove_stale_resources(DEAD_NODE_TIMEOUT);
                    }
                    // Half made or half removed: nobody owns it any more.
                    NodeState::Inaccessible(_) | NodeState::Undefined(_) => {}
                }
                CallbackProgression::Continue
            });
            if alive || (listed.is_err() && self.root.exists()) {
                return false;
            }
            let _ = std::fs::remove_dir_all(&self.root);
        }
        if let Ok(dir) = std::fs::read_dir(SHM_DIR) {
            for entry in dir.flatten() {
                if entry
                    .file_name()
                    .as_encoded_bytes()
                    .starts_with(self.prefix.as_bytes())
                {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        !self.root.exists()
    }
}

/// A [`Place`] in use by one end; cleaned when that end is dropped.
struct Domain {
    place: Place,
    /// The parent's: remembered in [`PENDING`] if it cannot be removed yet.
    owner: bool,
}

impl Domain {
    /// A new domain, for the parent.
    fn create(pid: u32, n: u64) -> Result<Domain> {
        let root = tempfile::Builder::new()
            .prefix(&format!("ipckit-iox2-{pid}-{n}-"))
            .tempdir()?
            .keep();
        let prefix = format!("ipckit_iox2_{pid}_{n}_");
        match Place::new(&root, &prefix) {
            Ok(place) => Ok(Domain { place, owner: true }),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&root);
                Err(e)
            }
        }
    }

    /// The parent's domain, for the peer.
    fn join(root: &StdPath, prefix: &str) -> Result<Domain> {
        Ok(Domain {
            place: Place::new(root, prefix)?,
            owner: false,
        })
    }
}

impl Drop for Domain {
    fn drop(&mut self) {
        if !self.place.clean()
            && self.owner
            && let Ok(mut pending) = PENDING.lock()
        {
            pending.push(self.place.clone());
        }
    }
}

/// Removes the domains earlier measurements left to peers that have ended since.
fn retry_pending() {
    if let Ok(mut pending) = PENDING.lock() {
        pending.retain(|place| !place.clean());
    }
}
