//! `ipckit ls`: every IPC object on the host, live or orphan, as a table or JSON.

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use anyhow::Result;
use ipckit::host::{self, Kind, Object};

use crate::output::{self, ls::ObjectJson};

/// Which objects: the filters `ls` and `gc` share.
#[derive(clap::Args, Debug, Clone)]
pub struct Filter {
    /// Only these kinds (comma-separated): sysv-mq, sysv-shm, sysv-sem, posix-shm, posix-sem,
    /// posix-mq, unix, fifo, pipe; lsipc's and ipcrm's msg, shm and sem (and sysv-msg) name
    /// the System V kinds. `ipckit ls --help` has the table of kinds and URIs.
    #[arg(long, value_delimiter = ',')]
    pub kind: Vec<Kind>,
    /// Only objects owned by this user (name or uid).
    #[arg(long)]
    pub user: Option<String>,
    /// Only objects whose name, key (0x…) or URI contains this text. May be repeated: any
    /// one matches. The name's bytes are matched as given, and the escaped form the listing
    /// prints (`\xff`, `\u{1b}`) matches too.
    #[arg(long, value_parser = clap::value_parser!(OsString))]
    pub name: Vec<OsString>,
    /// Also search this directory (four levels deep) for stale socket files; besides /tmp,
    /// /var/tmp, /run, /dev/shm and $XDG_RUNTIME_DIR. May be repeated.
    #[arg(long = "dir", value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
}

impl Filter {
    /// Scans the host and keeps what the filter asks for. Returns the objects and the notes.
    pub fn scan(&self, pipes: bool) -> Result<(Vec<Object>, Vec<String>)> {
        let uid = match &self.user {
            Some(u) => Some(host::user_id(u).ok_or_else(|| {
                crate::args::usage(format!(
                    "--user: no user '{}' (give a user name or a uid)",
                    ipckit::name::escape_str(u)
                ))
            })?),
            None => None,
        };
        let mut kinds = self.kind.clone();
        if pipes && !kinds.is_empty() && !kinds.contains(&Kind::Pipe) {
            kinds.push(Kind::Pipe);
        }
        if pipes && kinds.is_empty() {
            kinds = Kind::ALL.to_vec();
        }
        let listing = host::scan(&host::Options {
            kinds,
            socket_dirs: self.dirs.clone(),
        });
        let objects = listing
            .objects
            .into_iter()
            .filter(|o| uid.is_none() || o.uid == uid)
            .filter(|o| self.name.is_empty() || self.name.iter().any(|n| matches_name(o, n)))
            .collect();
        Ok((objects, listing.notes))
    }
}

fn matches_name(o: &Object, text: &OsString) -> bool {
    let contains = |hay: &[u8], needle: &[u8]| {
        needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
    };
    let needle = text.as_bytes();
    o.name
        .as_deref()
        .is_some_and(|n| contains(n.as_bytes(), needle))
        || contains(o.uri().as_bytes(), needle)
        || o.key
            .is_some_and(|k| contains(format!("{k:#010x}").as_bytes(), needle))
}

/// List every IPC object on the host, and whether it is live, an orphan or stale.
///
/// System V queues, segments and semaphore sets; POSIX shared memory, semaphores and
/// queues; Unix sockets with a name, and stale socket files; FIFOs held open; with
/// --pipes, anonymous pipes. STATE and REASON say who uses each one, or why nobody can.
#[derive(clap::Args, Debug)]
#[command(after_long_help = kinds_table())]
pub struct LsArgs {
    #[command(flatten)]
    pub filter: Filter,
    /// Only orphans and stale socket files (what `ipckit gc` would remove).
    #[arg(long)]
    pub orphans: bool,
    /// Also list anonymous pipes.
    #[arg(long)]
    pub pipes: bool,
    /// Columns to show (comma-separated): KIND KEY ID NAME URI OWNER UID PERMS SIZE NATTCH
    /// MSGS USEDBYTES NSEMS CPID LPID LSPID LRPID CTIME COMMAND PIDS DETAIL STATE REASON.
    #[arg(short = 'o', long = "output", value_delimiter = ',', value_parser = parse_column)]
    pub columns: Vec<Column>,
    /// One JSON array of objects (every field, lower-case names).
    #[arg(long, conflicts_with = "columns")]
    pub json: bool,
}

/// The kinds, their URIs and the names lsipc, ipcs and ipcrm give them, for `ls --help`.
pub fn kinds_table() -> String {
    let rows: Vec<[String; 3]> = Kind::ALL
        .iter()
        .map(|&k| {
            let uri = match k {
                Kind::SysvMq | Kind::SysvShm | Kind::SysvSem => {
                    format!("{0}:0xKEY, {0}:id=ID", k.scheme())
                }
                Kind::Unix => "unix:PATH, abstract:NAME".into(),
                Kind::Fifo => "fifo:PATH".into(),
                Kind::Pipe => "pipe:[INODE]".into(),
                _ => format!("{}:/NAME", k.scheme()),
            };
            let lsipc = match k {
                Kind::SysvMq => "lsipc -q, ipcs -q, ipcrm msg",
                Kind::SysvShm => "lsipc -m, ipcs -m, ipcrm shm",
                Kind::SysvSem => "lsipc -s, ipcs -s, ipcrm sem",
                _ => "-",
            };
            [k.name().to_string(), uri, lsipc.to_string()]
        })
        .collect();
    let head = ["KIND", "URI", "LSIPC / IPCS / IPCRM"].map(String::from);
    let width = |i: usize| {
        std::iter::once(&head)
            .chain(&rows)
            .map(|r| r[i].len())
            .max()
            .unwrap_or(0)
    };
    let (w0, w1) = (width(0), width(1));
    let mut text = String::from(
        "Kinds: the name --kind takes and KIND shows, the URI the listing gives (the one rm, \
         send and recv take; for System V the key in hex, or id=ID for a private object, which \
         only rm takes), and util-linux's names. --kind and --id also take ipcrm's msg \
         (or sysv-msg), shm and sem for the System V kinds; in URIs, shm: and sem: are the \
         POSIX ones.\n\n",
    );
    for [kind, uri, lsipc] in std::iter::once(&head).chain(&rows) {
        text += &format!("  {kind:<w0$}  {uri:<w1$}  {lsipc}\n");
    }
    text.trim_end().to_string()
}

pub fn run(args: LsArgs) -> Result<()> {
    let (mut objects, notes) = args.filter.scan(args.pipes)?;
    if args.orphans {
        objects.retain(|o| o.state.is_garbage());
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        write_json(&mut out, &objects)?;
    } else {
        let columns = if args.columns.is_empty() {
            DEFAULT.to_vec()
        } else {
            args.columns
        };
        let rows: Vec<Vec<String>> = objects
            .iter()
            .map(|o| columns.iter().map(|c| cell(o, *c)).collect())
            .collect();
        print_table(&mut out, &columns, &rows)?;
    }
    for note in notes {
        eprintln!("note: {}", ipckit::name::escape_str(&note));
    }
    Ok(())
}

/// `--json`: one array, an [`ObjectJson`] per object.
pub fn write_json(out: &mut impl Write, objects: &[Object]) -> Result<()> {
    let all: Vec<ObjectJson> = objects.iter().map(ObjectJson::from).collect();
    output::write_pretty(out, &all)
}

/// A column of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Kind,
    Key,
    Id,
    Name,
    Uri,
    Owner,
    Uid,
    Perms,
    Size,
    Nattch,
    Msgs,
    UsedBytes,
    Nsems,
    Cpid,
    Lpid,
    Lspid,
    Lrpid,
    Ctime,
    Command,
    Pids,
    Detail,
    State,
    Reason,
}

const COLUMNS: [(&str, Column); 23] = [
    ("KIND", Column::Kind),
    ("KEY", Column::Key),
    ("ID", Column::Id),
    ("NAME", Column::Name),
    ("URI", Column::Uri),
    ("OWNER", Column::Owner),
    ("UID", Column::Uid),
    ("PERMS", Column::Perms),
    ("SIZE", Column::Size),
    ("NATTCH", Column::Nattch),
    ("MSGS", Column::Msgs),
    ("USEDBYTES", Column::UsedBytes),
    ("NSEMS", Column::Nsems),
    ("CPID", Column::Cpid),
    ("LPID", Column::Lpid),
    ("LSPID", Column::Lspid),
    ("LRPID", Column::Lrpid),
    ("CTIME", Column::Ctime),
    ("COMMAND", Column::Command),
    ("PIDS", Column::Pids),
    ("DETAIL", Column::Detail),
    ("STATE", Column::State),
    ("REASON", Column::Reason),
];

const DEFAULT: [Column; 10] = [
    Column::Kind,
    Column::Key,
    Column::Id,
    Column::Name,
    Column::Owner,
    Column::Perms,
    Column::Size,
    Column::State,
    Column::Pids,
    Column::Reason,
];

fn parse_column(s: &str) -> Result<Column, String> {
    let upper = s.trim().to_ascii_uppercase();
    COLUMNS
        .iter()
        .find(|(name, _)| *name == upper)
        .map(|(_, c)| *c)
        .ok_or_else(|| {
            let names: Vec<&str> = COLUMNS.iter().map(|(n, _)| *n).collect();
            format!("unknown column '{s}' (columns: {})", names.join(" "))
        })
}

fn header(c: Column) -> &'static str {
    COLUMNS
        .iter()
        .find(|(_, col)| *col == c)
        .map_or("?", |(n, _)| n)
}

/// `rw-r-----` from permission bits, as lsipc shows them.
pub fn perms_string(mode: u32) -> String {
    (0..9)
        .map(|i| {
            let bit = 0o400 >> i;
            if mode & bit == 0 {
                '-'
            } else {
                ['r', 'w', 'x'][i % 3]
            }
        })
        .collect()
}

fn time_string(secs: i64) -> String {
    // humantime formats years 1970 to 9999 only.
    let Ok(secs) = u64::try_from(secs) else {
        return "-".into();
    };
    if secs > 253_402_300_799 {
        return secs.to_string();
    }
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
        .to_string()
}

/// As lsipc: the creator's command while it runs; else the commands of its holders.
pub fn command(o: &Object) -> Option<String> {
    if let Some(c) = &o.creator_command {
        return Some(c.clone());
    }
    let mut names: Vec<&str> = o.holders.iter().map(|h| h.command.as_str()).collect();
    names.dedup();
    (!names.is_empty()).then(|| names.join(","))
}

fn cell(o: &Object, c: Column) -> String {
    let num = |v: Option<u64>| v.map_or("-".into(), |v| v.to_string());
    let pid = |v: Option<u32>| v.map_or("-".into(), |v| v.to_string());
    match c {
        Column::Kind => o.kind.to_string(),
        Column::Key => o.key.map_or("-".into(), |k| format!("{k:#010x}")),
        Column::Id => o.id.map_or("-".into(), |v| v.to_string()),
        Column::Name => o
            .name
            .as_deref()
            .map_or_else(|| "-".into(), ipckit::name::escape),
        Column::Uri => o.uri(),
        Column::Owner => o
            .owner
            .clone()
            .or(o.uid.map(|u| u.to_string()))
            .unwrap_or_else(|| "-".into()),
        Column::Uid => pid(o.uid),
        Column::Perms => o.perms.map_or("-".into(), perms_string),
        Column::Size => o.size.map_or("-".into(), crate::limits::human_bytes),
        Column::Nattch => num(o.nattch),
        Column::Msgs => num(o.msgs),
        Column::UsedBytes => num(o.used_bytes),
        Column::Nsems => num(o.nsems),
        Column::Cpid => pid(o.cpid),
        Column::Lpid => pid(o.lpid),
        Column::Lspid => pid(o.lspid),
        Column::Lrpid => pid(o.lrpid),
        Column::Ctime => o.ctime.map_or("-".into(), time_string),
        Column::Command => command(o).unwrap_or_else(|| "-".into()),
        Column::Pids => {
            let pids: Vec<String> = o.pids().iter().map(u32::to_string).collect();
            if pids.is_empty() {
                "-".into()
            } else {
                pids.join(",")
            }
        }
        Column::Detail => o.detail.clone().unwrap_or_else(|| "-".into()),
        Column::State => o.state.to_string(),
        Column::Reason => o.reason.clone(),
    }
}

/// Left-aligned columns two spaces apart, like lsipc; the last column is not padded.
pub fn print_table(out: &mut impl Write, columns: &[Column], rows: &[Vec<String>]) -> Result<()> {
    let heads: Vec<String> = columns.iter().map(|c| header(*c).to_string()).collect();
    // Names are escaped already; a command or a reason from the host may still hold a newline
    // or a control character: never let it break the table or reach the terminal.
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|c| ipckit::name::escape_str(c).into_owned())
                .collect()
        })
        .collect();
    let mut widths: Vec<usize> = heads.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&heads).chain(&rows) {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  "));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}
