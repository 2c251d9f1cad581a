//! `ipckit sem create|post|wait|value|rm URI`, for `sem:/NAME` (POSIX named semaphores) and
//! `sysv-sem:KEY[#INDEX]` (one semaphore of a System V set; index 0 by default).
//!
//! The command line's operations never use SEM_UNDO: the command exits at once, and an undo
//! would give back at exit what `wait` just took.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Result, bail};
use ipckit::name::SysvKey;
use ipckit::sync::sem_posix::{self, PosixSem};
use ipckit::sync::sem_sysv::{self, SemOp, SysvSemSet};

use crate::args::parse_mode;
use crate::endpoint;
use crate::output::sem::ValueJson;
use crate::usage_bail;

/// The most a POSIX semaphore holds (glibc's `SEM_VALUE_MAX`, `INT_MAX`).
const SEM_VALUE_MAX: u32 = i32::MAX as u32;

/// The most a System V semaphore holds (the kernel's `SEMVMX`).
const SEMVMX: u16 = 32767;

/// Semaphores: sem:/NAME (POSIX) and sysv-sem:KEY[#INDEX] (System V).
#[derive(clap::Args, Debug)]
pub struct SemArgs {
    #[command(subcommand)]
    pub action: SemCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum SemCommand {
    /// Create a semaphore (and keep it until `ipckit sem rm`).
    Create {
        uri: SemUri,
        /// Initial value.
        #[arg(long, default_value_t = 0)]
        value: u32,
        /// System V: how many semaphores in the set.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=32000))]
        nsems: u64,
        /// Mode, in octal.
        #[arg(long, default_value = "600", value_parser = parse_mode)]
        mode: u32,
    },
    /// Add one (sem_post; semop +1).
    Post { uri: SemUri },
    /// Take one, waiting while the value is 0 (sem_wait; semop -1).
    Wait {
        uri: SemUri,
        /// Give up (exit 1) after this long (e.g. 5s, 200ms).
        #[arg(long, value_parser = humantime::parse_duration)]
        timeout: Option<Duration>,
    },
    /// Print the value.
    Value {
        uri: SemUri,
        /// As JSON: {"uri": ..., "value": N}.
        #[arg(long)]
        json: bool,
    },
    /// Remove it (sem_unlink; IPC_RMID of the whole set).
    Rm { uri: SemUri },
}

pub fn run(args: SemArgs) -> Result<()> {
    let (uri, action) = match args.action {
        SemCommand::Create {
            uri,
            value,
            nsems,
            mode,
        } => (
            uri,
            SemAction::Create {
                value,
                nsems: nsems as usize,
                mode,
            },
        ),
        SemCommand::Post { uri } => (uri, SemAction::Post),
        SemCommand::Wait { uri, timeout } => (uri, SemAction::Wait { timeout }),
        SemCommand::Value { uri, json } => (uri, SemAction::Value { json }),
        SemCommand::Rm { uri } => (uri, SemAction::Rm),
    };
    act(&uri, action)
}

/// A semaphore URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SemUri {
    Posix(String),
    Sysv(SysvKey, usize),
}

impl FromStr for SemUri {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(name) = s.strip_prefix("sem:") {
            ipckit::name::check_posix_name(name).map_err(|e| format!("'{s}': {e}"))?;
            return Ok(SemUri::Posix(name.to_string()));
        }
        if let Some(rest) = s.strip_prefix("sysv-sem:") {
            let (key, index) = match rest.split_once('#') {
                Some((k, i)) => {
                    let i = i
                        .parse::<usize>()
                        .map_err(|_| format!("'{s}': '{i}' is not a semaphore index"))?;
                    (k, i)
                }
                None => (rest, 0),
            };
            return Ok(SemUri::Sysv(endpoint::sysv_key(s, key)?, index));
        }
        Err(format!(
            "'{s}' is not a semaphore URI: use sem:/NAME or sysv-sem:KEY[#INDEX]"
        ))
    }
}

impl fmt::Display for SemUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SemUri::Posix(n) => write!(f, "sem:{n}"),
            SemUri::Sysv(k, i) => write!(f, "sysv-sem:{k}#{i}"),
        }
    }
}

/// What `ipckit sem` does.
enum SemAction {
    /// Create with an initial value (and, for System V, `nsems` semaphores), and keep it.
    Create {
        value: u32,
        nsems: usize,
        mode: u32,
    },
    Post,
    Wait {
        timeout: Option<Duration>,
    },
    Value {
        json: bool,
    },
    Rm,
}

fn open_sysv(key: SysvKey, index: usize) -> Result<SysvSemSet> {
    let set = SysvSemSet::open(key, ipckit::Access::ReadWrite)?;
    if index >= set.len() {
        bail!(
            "sysv-sem:{key}#{index}: the set has {} semaphores (indexes 0 to {})",
            set.len(),
            set.len() - 1
        );
    }
    Ok(set)
}

fn act(uri: &SemUri, action: SemAction) -> Result<()> {
    match (uri, action) {
        (SemUri::Posix(name), SemAction::Create { value, mode, .. }) => {
            if value > SEM_VALUE_MAX {
                usage_bail!("{uri}: --value {value} is over SEM_VALUE_MAX ({SEM_VALUE_MAX})");
            }
            let opts = sem_posix::Options::new(value).mode(mode);
            drop(PosixSem::create(name, &opts)?.persist());
        }
        (SemUri::Sysv(key, index), SemAction::Create { value, nsems, mode }) => {
            if *index >= nsems {
                usage_bail!("{uri}: index {index} is outside a set of {nsems} (--nsems)");
            }
            // Refused before the set is made: SEMVMX is the most a System V semaphore holds.
            let value = u16::try_from(value)
                .ok()
                .filter(|&v| v <= SEMVMX)
                .ok_or_else(|| {
                    crate::args::usage(format!(
                        "{uri}: --value {value} is over SEMVMX ({SEMVMX}), the most a System V semaphore holds"
                    ))
                })?;
            let set = SysvSemSet::create(*key, &sem_sysv::Options::new(nsems).mode(mode))?;
            set.set(*index, value)?;
            drop(set.persist());
        }
        (SemUri::Posix(name), SemAction::Post) => PosixSem::open(name)?.post()?,
        (SemUri::Sysv(key, index), SemAction::Post) => {
            open_sysv(*key, *index)?.op(&[SemOp::post(*index).no_undo()])?;
        }
        (SemUri::Posix(name), SemAction::Wait { timeout }) => {
            let sem = PosixSem::open(name)?;
            match timeout {
                Some(t) if !sem.wait_timeout(t)? => bail!(
                    "waiting on {uri}: timed out after {}",
                    humantime::format_duration(t)
                ),
                Some(_) => {}
                None => sem.wait()?,
            }
        }
        (SemUri::Sysv(key, index), SemAction::Wait { timeout }) => {
            let set = open_sysv(*key, *index)?;
            let op = [SemOp::wait(*index).no_undo()];
            let done = match timeout {
                Some(t) => set.op_timeout(&op, t)?,
                None => {
                    set.op(&op)?;
                    true
                }
            };
            if !done {
                let t = timeout.unwrap_or_default();
                bail!(
                    "waiting on {uri}: timed out after {}",
                    humantime::format_duration(t)
                );
            }
        }
        (uri, SemAction::Value { json }) => {
            let value = match uri {
                SemUri::Posix(name) => PosixSem::open(name)?.value()?,
                SemUri::Sysv(key, index) => open_sysv(*key, *index)?.get(*index)? as u32,
            };
            if json {
                let line = ValueJson {
                    uri: uri.to_string(),
                    value,
                };
                println!("{}", serde_json::to_string(&line)?);
            } else {
                println!("{value}");
            }
        }
        (SemUri::Posix(name), SemAction::Rm) => sem_posix::remove(name)?,
        (SemUri::Sysv(key, _), SemAction::Rm) => {
            SysvSemSet::open(*key, ipckit::Access::ReadWrite)?.remove()?
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_semaphore_uris() {
        assert_eq!("sem:/s".parse(), Ok(SemUri::Posix("/s".into())));
        assert_eq!(
            "sysv-sem:0x10".parse(),
            Ok(SemUri::Sysv(SysvKey::Key(16), 0))
        );
        assert_eq!(
            "sysv-sem:16#2".parse(),
            Ok(SemUri::Sysv(SysvKey::Key(16), 2))
        );
        for bad in ["sem:s", "sysv-sem:0", "sysv-sem:16#x", "mq:/q", "sysv-sem:"] {
            assert!(bad.parse::<SemUri>().is_err(), "{bad}");
        }
    }
}
