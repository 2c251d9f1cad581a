//! `ipckit rm`: remove named objects by URI (or System V ones by id), refusing one in use
//! unless forced, and saying who uses it.
//!
//! URIs are taken as OS strings: a name that is not UTF-8 can be given as its bytes, or as
//! `ipckit ls` prints it, escaped (`shm:/bad\xff`), which [`ipckit::host::unescape`] reads
//! back; a backslash in a name is written doubled.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use ipckit::host::{self, Kind, Object, State};
use ipckit::name::escape;

use crate::endpoint::Endpoint;
use crate::sem::SemUri;

/// Remove IPC objects by URI (or System V ones by --id), refusing one in use unless
/// --force, and saying who uses it.
#[derive(clap::Args, Debug)]
pub struct RmArgs {
    /// mq:/NAME, shm:/NAME, sem:/NAME, sysv-mq:KEY, sysv-shm:KEY, sysv-sem:KEY (or
    /// sysv-shm:id=ID, as the listing names a private object), unix:PATH (a socket file),
    /// fifo:PATH, channel:/NAME (its shared memory, left by a killed receiver): the URIs
    /// `ipckit ls` shows. A name may be given as ls prints it (`\xff` for a byte that is not
    /// UTF-8, `\u{1b}` for a control character, `\\` for a backslash) or as its raw bytes.
    #[arg(required_unless_present = "ids", value_parser = clap::value_parser!(OsString))]
    pub uris: Vec<OsString>,
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
    Name(Kind, OsString),
    Key(Kind, i32),
    Id(Kind, i32),
    Path(Kind, PathBuf),
}

/// One argument, parsed: what it names, and how to name it in messages (the URI with its
/// name escaped, as `ls` prints it).
#[derive(Debug)]
struct Parsed {
    shown: String,
    target: Target,
    /// `channel:/NAME`: removed by the channel's own check unless forced.
    channel: bool,
}

/// The schemes whose names are taken as bytes (any bytes, escaped or raw).
const NAMED: [&str; 9] = [
    "shm",
    "sem",
    "mq",
    "channel",
    "unix",
    "unix-dgram",
    "unix-seqpacket",
    "fifo",
    "abstract",
];

fn parse_target(arg: &OsStr) -> Result<Parsed, String> {
    let bytes = arg.as_bytes();
    let scheme = bytes
        .iter()
        .position(|&b| b == b':')
        .map(|i| (&bytes[..i], &bytes[i + 1..]))
        .and_then(|(s, rest)| Some((std::str::from_utf8(s).ok()?, rest)))
        .filter(|(s, _)| NAMED.contains(s));
    let Some((scheme, rest)) = scheme else {
        // Keys, ids and addresses are text; their parsers say what is wrong.
        let text = arg.to_str().ok_or_else(|| {
            format!(
                "'{}' is not a URI ipckit rm takes (the scheme is not one of {})",
                escape(arg),
                NAMED.join(", ")
            )
        })?;
        return parse_text_target(text);
    };
    let name = host::unescape(OsStr::from_bytes(rest)).map_err(|e| format!("'{scheme}:…': {e}"))?;
    let shown = format!("{scheme}:{}", escape(&name));
    if name.is_empty() {
        return Err(format!("'{shown}' has no name after '{scheme}:'"));
    }
    if name.as_bytes().contains(&0) {
        return Err(format!("'{shown}': a name cannot hold a NUL byte"));
    }
    let kind = match scheme {
        "shm" | "channel" => Kind::PosixShm,
        "sem" => Kind::PosixSem,
        "mq" => Kind::PosixMq,
        "fifo" => Kind::Fifo,
        _ => Kind::Unix,
    };
    let target = match scheme {
        "shm" | "channel" | "sem" | "mq" => {
            check_posix_name(&name).map_err(|why| format!("'{shown}': {why}"))?;
            Target::Name(kind, name)
        }
        "abstract" => {
            let mut at = b"@".to_vec();
            at.extend_from_slice(name.as_bytes());
            Target::Name(kind, OsString::from_vec(at))
        }
        _ => Target::Path(kind, PathBuf::from(name)),
    };
    Ok(Parsed {
        shown,
        target,
        channel: scheme == "channel",
    })
}

/// A POSIX name as the system may hold it: `/` and one file name (1 to 255 bytes, any but `/`
/// and NUL, not `.` or `..`). Wider than [`ipckit::name::check_posix_name`], which checks the
/// names ipckit makes: an entry another program planted can still be named to remove it.
fn check_posix_name(name: &OsStr) -> Result<(), String> {
    let Some(file) = name.as_bytes().strip_prefix(b"/") else {
        return Err("a POSIX name starts with /, like /app-queue".into());
    };
    if file.is_empty() {
        return Err("it has nothing after the /".into());
    }
    if file.contains(&b'/') {
        return Err("a POSIX name may contain no / after the first".into());
    }
    if file.len() > 255 {
        return Err("it is longer than a file name (255 bytes)".into());
    }
    if file == b"." || file == b".." {
        return Err("'.' and '..' name a directory, not an object".into());
    }
    Ok(())
}

/// The URIs whose addresses are text: System V keys and ids, and what `send` and `recv` take.
fn parse_text_target(uri: &str) -> Result<Parsed, String> {
    let parsed = |target| {
        Ok(Parsed {
            shown: escape(OsStr::new(uri)),
            target,
            channel: false,
        })
    };
    // The queue's other name (lsipc's `msg`), taken as `ls --kind` takes it.
    if let Some(key) = uri.strip_prefix("sysv-msg:") {
        return parse_text_target(&format!("sysv-mq:{key}"));
    }
    // A private System V object as the listing names it: `sysv-shm:id=ID`.
    if let Some((kind, id)) = uri.split_once(":id=")
        && kind.starts_with("sysv-")
    {
        return parsed(parse_id(&format!("{kind}:{id}"))?);
    }
    if uri.starts_with("sysv-sem:") {
        return match uri.parse::<SemUri>()? {
            SemUri::Sysv(key, _) => parsed(Target::Key(Kind::SysvSem, key_raw(key))),
            SemUri::Posix(_) => Err(format!("'{uri}' is not a System V semaphore URI")),
        };
    }
    match uri.parse::<Endpoint>()? {
        Endpoint::SysvMq(k) => parsed(Target::Key(Kind::SysvMq, key_raw(k))),
        Endpoint::SysvShm(k) => parsed(Target::Key(Kind::SysvShm, key_raw(k))),
        Endpoint::Tcp(_) => Err(format!("'{uri}': a TCP port is not an object to remove")),
        other => Err(format!("'{uri}': {other} is not an object rm removes")),
    }
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
    // Every argument is read before anything is removed: one that cannot be read is a usage
    // error, and then nothing is removed.
    let mut targets = Vec::new();
    let mut bad = Vec::new();
    for uri in &args.uris {
        match parse_target(uri) {
            Ok(t) => targets.push(t),
            Err(e) => bad.push(e),
        }
    }
    for spec in &args.ids {
        match parse_id(spec) {
            Ok(target) => targets.push(Parsed {
                shown: escape(OsStr::new(spec)),
                target,
                channel: false,
            }),
            Err(e) => bad.push(e),
        }
    }
    if !bad.is_empty() {
        crate::usage_bail!("{}; nothing was removed", bad.join("; "));
    }
    // One scan for them all (reading every process's descriptors is the costly part): the
    // kinds asked for, and the directories of the paths given.
    let mut opts = host::Options::default();
    for t in &targets {
        let (Target::Name(k, _) | Target::Key(k, _) | Target::Id(k, _) | Target::Path(k, _)) =
            &t.target;
        if !opts.kinds.contains(k) {
            opts.kinds.push(*k);
        }
        if let Target::Path(_, p) = &t.target
            && let Some(dir) = absolute(p).parent()
        {
            opts.socket_dirs.push(dir.to_path_buf());
        }
    }
    let listing = host::scan(&opts);
    // Every target is tried; each failure is one line, and the exit status says any failed.
    let mut failed = 0;
    for t in &targets {
        if let Err(e) = rm_one(&listing, t, args.force) {
            eprintln!("ipckit: {}", ipckit::name::escape_str(&format!("{e:#}")));
            failed += 1;
        }
    }
    if failed > 0 {
        bail!("{failed} of {} removals failed", targets.len());
    }
    Ok(())
}

fn rm_one(listing: &host::Listing, t: &Parsed, force: bool) -> Result<()> {
    let given = &t.shown;
    let target = &t.target;
    let found = listing.objects.iter().find(|o| matches(o, target));
    let Some(o) = found else {
        // A FIFO nobody has open is not listed (nobody uses it): it is just a file.
        if let Target::Path(Kind::Fifo, p) = target
            && std::fs::symlink_metadata(p).is_ok_and(|m| {
                use std::os::unix::fs::FileTypeExt;
                m.file_type().is_fifo()
            })
        {
            host::remove_fifo(p)?;
            return Ok(());
        }
        // Without the mqueue filesystem a queue nobody holds cannot be listed: its name is all
        // there is, and nobody holds it.
        if let Target::Name(Kind::PosixMq, name) = target
            && !ipckit::mq::posix::mqueue_mounted()
        {
            let Some(name) = name.to_str() else {
                bail!(
                    "{given}: not listed, and without the mqueue filesystem mounted only a UTF-8 \
                     name can be removed (mount it: mount -t mqueue none /dev/mqueue)"
                );
            };
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
        State::Unknown => eprintln!(
            "ipckit: note: {}",
            ipckit::name::escape_str(&format!("{given} may have been in use: {}", o.reason))
        ),
        _ => {}
    }
    // A channel's name is removed by the channel, which checks it is one and its receiver gone.
    if t.channel && !force {
        let Target::Name(_, name) = target else {
            unreachable!("a channel is named")
        };
        let Some(name) = name.to_str() else {
            bail!(
                "{given}: a channel's name is UTF-8, so this is no channel; rm shm:{} removes it \
                 as shared memory",
                escape(name)
            );
        };
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
        Target::Name(k, n) => o.kind == *k && o.name.as_deref() == Some(n.as_os_str()),
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
        let target = |s: &str| parse_target(OsStr::new(s)).map(|p| p.target);
        assert!(matches!(
            target("sysv-msg:0x10"),
            Ok(Target::Key(Kind::SysvMq, 16))
        ));
        assert!(matches!(
            target("sysv-mq:16"),
            Ok(Target::Key(Kind::SysvMq, 16))
        ));
        assert!(matches!(
            target("sem:/s"),
            Ok(Target::Name(Kind::PosixSem, ref n)) if n == "/s"
        ));
        assert!(matches!(
            target("sysv-shm:id=7"),
            Ok(Target::Id(Kind::SysvShm, 7))
        ));
    }

    #[test]
    fn a_name_is_read_back_from_the_escaped_form_ls_prints_or_from_its_bytes() {
        let planted = OsStr::from_bytes(b"/bad\xff\x1b[2J\n\\x41");
        let printed = format!("shm:{}", escape(planted));
        assert_eq!(printed, "shm:/bad\\xff\\u{1b}[2J\\n\\\\x41");
        let p = parse_target(OsStr::new(&printed)).unwrap();
        assert!(
            matches!(&p.target, Target::Name(Kind::PosixShm, n) if n == planted),
            "{p:?}"
        );
        assert_eq!(p.shown, printed, "messages name it as ls does");
        // Raw bytes stand for themselves (a backslash always starts an escape, so a name
        // that holds one is given as ls prints it).
        let raw = OsStr::from_bytes(b"shm:/bad\xff\x1b[2J\n");
        let p = parse_target(raw).unwrap();
        assert!(
            matches!(&p.target, Target::Name(Kind::PosixShm, n) if n.as_bytes() == &raw.as_bytes()[4..]),
            "{p:?}"
        );
        assert_eq!(p.shown, "shm:/bad\\xff\\u{1b}[2J\\n");
        // A path, an abstract name.
        let p = parse_target(OsStr::new("unix:/tmp/s\\xfe.sock")).unwrap();
        assert!(
            matches!(&p.target, Target::Path(Kind::Unix, path) if path.as_os_str().as_bytes() == b"/tmp/s\xfe.sock")
        );
        let p = parse_target(OsStr::new("abstract:a\\u{7}")).unwrap();
        assert!(matches!(&p.target, Target::Name(Kind::Unix, n) if n.as_bytes() == b"@a\x07"));
        // Not an escape, not a POSIX name, a NUL: refused.
        for bad in [
            "shm:/a\\b",
            "shm:/a\\xz",
            "shm:/\\x2f",
            "shm:/..",
            "fifo:",
            "unix:/a\\x00",
        ] {
            assert!(parse_target(OsStr::new(bad)).is_err(), "{bad}");
        }
    }
}
