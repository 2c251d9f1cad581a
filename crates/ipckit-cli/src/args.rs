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
