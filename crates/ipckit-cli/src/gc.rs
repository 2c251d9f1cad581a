//! `ipckit gc` removes orphans and stale socket files; `ipckit rm` removes named objects,
//! refusing one in use unless forced.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Result, bail};
use ipckit::host::{self, Kind, Object, State};
use serde_json::{Value, json};

use crate::endpoint::Endpoint;
use crate::ls::Filter;
use crate::sem::SemUri;

#[derive(clap::Args, Debug)]
pub struct GcArgs {
    #[command(flatten)]
    pub filter: Filter,
    /// Say what would be removed, and remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Only objects untouched for longer than this (e.g. 10m, 2h, 7days): no change, attach,
    /// send, receive or semop the kernel records.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub older_than: Option<Duration>,
    /// One JSON array: each orphan or stale file acted on, with what was done ("removed",
    /// "would-remove", "failed" with the error).
    #[arg(long)]
    pub json: bool,
}

pub fn gc(args: GcArgs) -> Result<()> {
    let (objects, notes) = args.filter.scan(false)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let (mut removed, mut failed, mut young) = (0, 0, 0);
    let mut report = Vec::new();
    let mut out = std::io::stdout().lock();
    for o in objects.iter().filter(|o| o.state.is_garbage()) {
        if let Some(min) = args.older_than {
            let old_enough = o
                .idle_secs(now)
                .is_some_and(|age| age as u64 >= min.as_secs());
            if !old_enough {
                young += 1;
                continue;
            }
        }
        let (action, error) = if args.dry_run {
            ("would-remove", None)
        } else {
            match host::remove(o) {
                Ok(()) => ("removed", None),
                Err(e) => ("failed", Some(e.to_string())),
            }
        };
        match action {
            "failed" => failed += 1,
            _ => removed += 1,
        }
        if args.json {
            let mut v = crate::ls::to_json(o);
            v["action"] = json!(action);
            v["error"] = json!(error);
            report.push(v);
        } else {
            let what = format!("{} ({}: {})", o.uri(), o.state, o.reason);
            match &error {
                None => writeln!(out, "{} {what}", action.replace('-', " "))?,
                Some(e) => writeln!(out, "failed {what}: {e}")?,
            }
        }
    }
    if args.json {
        serde_json::to_writer_pretty(&mut out, &Value::Array(report))?;
        writeln!(out)?;
    }
    let live = objects.iter().filter(|o| o.state == State::Live).count();
    let unknown = objects.iter().filter(|o| o.state == State::Unknown).count();
    let verb = if args.dry_run {
        "would remove"
    } else {
        "removed"
    };
    let mut summary = format!("gc: {verb} {removed}, kept {live} live");
    if unknown > 0 {
        summary.push_str(&format!(", {unknown} unknown"));
    }
    if young > 0 {
        summary.push_str(&format!(", {young} orphans used within --older-than"));
    }
    if failed > 0 {
        summary.push_str(&format!(", {failed} failed"));
    }
    eprintln!("{summary}");
    for note in notes {
        eprintln!("note: {note}");
    }
    if failed > 0 {
        bail!("{failed} removals failed");
    }
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct RmArgs {
    /// mq:/NAME, shm:/NAME, sem:/NAME, sysv-mq:KEY, sysv-shm:KEY, sysv-sem:KEY, unix:PATH
    /// (a socket file), fifo:PATH, channel:/NAME (its shared memory, left by a killed
    /// receiver).
    #[arg(required_unless_present = "ids")]
    pub uris: Vec<String>,
    /// A System V object by id, as ipcs and ipckit ls show it: sysv-shm:ID, sysv-msg:ID,
    /// sysv-sem:ID. May be repeated.
    #[arg(long = "id", value_name = "KIND:ID")]
    pub ids: Vec<String>,
    /// Remove it even while it is in use (its holders keep it, but nobody new can find it).
    /// Without it, an object listed `live` is refused; one listed `unknown` is removed with a
    /// note saying why it may be in use.
    #[arg(long)]
    pub force: bool,
}

/// What `rm` was asked to remove.
#[derive(Debug)]
enum Target {
    Name(Kind, String),
    Key(Kind, i32),
    Id(Kind, i32),
    Path(Kind, PathBuf),
}

fn parse_target(uri: &str) -> Result<Target, String> {
    if uri.starts_with("sem:") || uri.starts_with("sysv-sem:") {
        return Ok(match uri.parse::<SemUri>()? {
            SemUri::Posix(name) => Target::Name(Kind::PosixSem, name),
            SemUri::Sysv(key, _) => Target::Key(Kind::SysvSem, key_raw(key)),
        });
    }
    Ok(match uri.parse::<Endpoint>()? {
        Endpoint::PosixMq(n) => Target::Name(Kind::PosixMq, n),
        // A channel is POSIX shared memory by its name (one a killed receiver left behind).
        Endpoint::PosixShm(n) | Endpoint::Channel(n) => Target::Name(Kind::PosixShm, n),
        Endpoint::SysvMq(k) => Target::Key(Kind::SysvMsg, key_raw(k)),
        Endpoint::SysvShm(k) => Target::Key(Kind::SysvShm, key_raw(k)),
        Endpoint::Unix(p) | Endpoint::UnixDgram(p) | Endpoint::UnixSeqpacket(p) => {
            Target::Path(Kind::Unix, p)
        }
        Endpoint::Abstract(n) => Target::Name(Kind::Unix, format!("@{n}")),
        Endpoint::Fifo(p) => Target::Path(Kind::Fifo, p),
        Endpoint::Tcp(_) => return Err(format!("'{uri}': a TCP port is not an object to remove")),
    })
}

fn parse_id(spec: &str) -> Result<Target, String> {
    let (kind, id) = spec
        .split_once(':')
        .ok_or_else(|| format!("'{spec}': expected KIND:ID, like sysv-shm:32769"))?;
    let kind = match kind {
        "sysv-shm" => Kind::SysvShm,
        "sysv-msg" | "sysv-mq" => Kind::SysvMsg,
        "sysv-sem" => Kind::SysvSem,
        _ => {
            return Err(format!(
                "'{spec}': --id takes sysv-shm, sysv-msg or sysv-sem"
            ));
        }
    };
    let id = id
        .parse::<i32>()
        .ok()
        .filter(|&id| id >= 0)
        .ok_or_else(|| format!("'{spec}': '{id}' is not an id"))?;
    Ok(Target::Id(kind, id))
}

fn key_raw(key: ipckit::name::SysvKey) -> i32 {
    match key {
        ipckit::name::SysvKey::Private => 0,
        ipckit::name::SysvKey::Key(k) => k,
    }
}

pub fn rm(args: RmArgs) -> Result<()> {
    let targets: Vec<(String, Result<Target, String>)> = args
        .uris
        .iter()
        .map(|u| (u.clone(), parse_target(u)))
        .chain(args.ids.iter().map(|s| (s.clone(), parse_id(s))))
        .collect();
    // One scan for them all (reading every process's descriptors is the costly part): the
    // kinds asked for, and the directories of the paths given.
    let mut opts = host::Options::default();
    for (_, t) in &targets {
        let Ok(t) = t else { continue };
        let (Target::Name(k, _) | Target::Key(k, _) | Target::Id(k, _) | Target::Path(k, _)) = t;
        if !opts.kinds.contains(k) {
            opts.kinds.push(*k);
        }
        if let Target::Path(_, p) = t
            && let Some(dir) = absolute(p).parent()
        {
            opts.socket_dirs.push(dir.to_path_buf());
        }
    }
    // No target parsed: nothing to look for (an empty kind list would mean every kind).
    let listing = if opts.kinds.is_empty() {
        host::Listing::default()
    } else {
        host::scan(&opts)
    };
    // Every target is tried; each failure is one line, and the exit status says any failed.
    let mut failed = 0;
    for (given, target) in &targets {
        let result = target
            .as_ref()
            .map_err(|e| anyhow::anyhow!("{e}"))
            .and_then(|t| rm_one(&listing, given, t, args.force));
        if let Err(e) = result {
            eprintln!("ipckit: {e:#}");
            failed += 1;
        }
    }
    if failed > 0 {
        bail!("{failed} of {} removals failed", targets.len());
    }
    Ok(())
}

fn rm_one(listing: &host::Listing, given: &str, target: &Target, force: bool) -> Result<()> {
    let found = listing.objects.iter().find(|o| matches(o, target));
    let Some(o) = found else {
        // A FIFO nobody has open is not listed (nobody uses it): it is just a file.
        if let Target::Path(Kind::Fifo, p) = target
            && std::fs::symlink_metadata(p).is_ok_and(|m| {
                use std::os::unix::fs::FileTypeExt;
                m.file_type().is_fifo()
            })
        {
            std::fs::remove_file(p).map_err(|e| anyhow::anyhow!("removing {given}: {e}"))?;
            return Ok(());
        }
        // Without the mqueue filesystem a queue nobody holds cannot be listed: its name is all
        // there is, and nobody holds it.
        if let Target::Name(Kind::PosixMq, name) = target
            && !ipckit::mq::posix::mqueue_mounted()
        {
            ipckit::mq::posix::PosixMq::unlink(name)?;
            return Ok(());
        }
        bail!("{given}: no such object on this host");
    };
    match o.state {
        State::Live if !force => bail!(
            "{given} is in use: {}; --force removes it anyway (its holders keep it, but nobody new can find it)",
            o.reason
        ),
        // Named by the user, and nobody is seen using it: removed, with what is not known.
        State::Unknown => eprintln!("ipckit: note: {given} may have been in use: {}", o.reason),
        _ => {}
    }
    // A channel's name is removed by the channel, which checks it is one and its receiver gone.
    if let (false, Some(name)) = (force, given.strip_prefix("channel:")) {
        ipckit::channel::remove(name)?;
        return Ok(());
    }
    host::remove(o)?;
    Ok(())
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

fn matches(o: &Object, target: &Target) -> bool {
    match target {
        Target::Name(k, n) => o.kind == *k && o.name.as_deref() == Some(n),
        Target::Key(k, key) => o.kind == *k && o.key == Some(*key),
        Target::Id(k, id) => o.kind == *k && o.id == Some(*id),
        Target::Path(k, p) => {
            let name = o.name.as_deref().map(Path::new);
            o.kind == *k && (name == Some(p.as_path()) || name == Some(absolute(p).as_path()))
        }
    }
}
