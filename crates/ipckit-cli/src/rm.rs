//! `ipckit rm`: remove named objects by URI (or System V ones by id), refusing one in use
//! unless forced, and saying who uses it.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use ipckit::host::{self, Kind, Object, State};

use crate::endpoint::Endpoint;
use crate::sem::SemUri;

/// Remove IPC objects by URI (or System V ones by --id), refusing one in use unless
/// --force, and saying who uses it.
#[derive(clap::Args, Debug)]
pub struct RmArgs {
    /// mq:/NAME, shm:/NAME, sem:/NAME, sysv-mq:KEY, sysv-shm:KEY, sysv-sem:KEY (or
    /// sysv-shm:id=ID, as the listing names a private object), unix:PATH (a socket file),
    /// fifo:PATH, channel:/NAME (its shared memory, left by a killed receiver): the URIs
    /// `ipckit ls` shows.
    #[arg(required_unless_present = "ids")]
    pub uris: Vec<String>,
    /// A System V object by id, as ipcs and ipckit ls show it: sysv-mq:ID, sysv-shm:ID,
    /// sysv-sem:ID (or with ipcrm's names: msg:ID, shm:ID, sem:ID; sysv-msg:ID). May be
    /// repeated.
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
    // The queue's other name (lsipc's `msg`), taken as `ls --kind` takes it.
    if let Some(key) = uri.strip_prefix("sysv-msg:") {
        return parse_target(&format!("sysv-mq:{key}"));
    }
    // A private System V object as the listing names it: `sysv-shm:id=ID`.
    if let Some((kind, id)) = uri.split_once(":id=")
        && kind.starts_with("sysv-")
    {
        return parse_id(&format!("{kind}:{id}"));
    }
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
        Endpoint::SysvMq(k) => Target::Key(Kind::SysvMq, key_raw(k)),
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
    let kind = kind
        .parse::<Kind>()
        .ok()
        .filter(|k| matches!(k, Kind::SysvMq | Kind::SysvShm | Kind::SysvSem))
        .ok_or_else(|| {
            format!("'{spec}': --id takes sysv-mq, sysv-shm or sysv-sem (or msg, shm, sem)")
        })?;
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

pub fn run(args: RmArgs) -> Result<()> {
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
            ipckit::mq::posix::remove(name)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_uris_take_every_name_of_a_kind() {
        for (spec, kind) in [
            ("sysv-mq:5", Kind::SysvMq),
            ("sysv-msg:5", Kind::SysvMq),
            ("msg:5", Kind::SysvMq),
            ("sysv-shm:5", Kind::SysvShm),
            ("shm:5", Kind::SysvShm),
            ("sysv-sem:5", Kind::SysvSem),
            ("sem:5", Kind::SysvSem),
        ] {
            assert!(
                matches!(parse_id(spec), Ok(Target::Id(k, 5)) if k == kind),
                "{spec}"
            );
        }
        for bad in ["posix-shm:5", "unix:5", "sysv-mq:x", "sysv-mq:-1", "5"] {
            assert!(parse_id(bad).is_err(), "{bad}");
        }
        assert!(matches!(
            parse_target("sysv-msg:0x10"),
            Ok(Target::Key(Kind::SysvMq, 16))
        ));
        assert!(matches!(
            parse_target("sysv-mq:16"),
            Ok(Target::Key(Kind::SysvMq, 16))
        ));
        assert!(matches!(
            parse_target("sem:/s"),
            Ok(Target::Name(Kind::PosixSem, ref n)) if n == "/s"
        ));
    }
}
