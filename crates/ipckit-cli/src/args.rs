//! Flags and value parsers that several subcommands share.

/// Flags shared by the endpoint commands (send, recv, listen).
#[derive(clap::Args, Debug)]
pub struct Common {
    /// Allow tcp: addresses that are not loopback.
    #[arg(long)]
    pub allow_remote: bool,
}

/// A file mode in octal (`600`, `0o640`), at most `7777`.
pub fn parse_mode(s: &str) -> Result<u32, String> {
    let m = u32::from_str_radix(s.trim_start_matches("0o"), 8)
        .map_err(|_| format!("'{s}' is not an octal mode"))?;
    if m > 0o7777 {
        return Err(format!("'{s}' is not a file mode (at most 7777)"));
    }
    Ok(m)
}

/// A usage error found after parsing (flags that contradict each other, a value out of range
/// for this endpoint): `main` prints it and exits 2, as clap does for the errors it finds.
#[derive(Debug)]
pub struct Usage(pub String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// A [`Usage`] error, for `return Err(usage(...))`.
pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Usage(msg.into()))
}

/// `bail!` for usage errors: exit 2.
#[macro_export]
macro_rules! usage_bail {
    ($($t:tt)*) => {
        return Err($crate::args::usage(format!($($t)*)))
    };
}
