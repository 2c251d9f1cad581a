//! `ipckit listen URI`: accept peer after peer on an endpoint, until interrupted.

use anyhow::Result;

use crate::endpoint::Endpoint;
use crate::recv::ServeFlags;

/// Accept peers on an endpoint and print what they send, until interrupted.
///
/// SIGINT, SIGTERM, SIGHUP and every other signal that would end the process (SIGUSR1,
/// SIGALRM, the real-time signals, ...) end it cleanly: the socket file or FIFO it made is
/// removed and it exits 0. A signal ignored when it started (nohup) stays ignored.
#[derive(clap::Args, Debug)]
pub struct ListenArgs {
    pub uri: Endpoint,
    #[command(flatten)]
    pub serve: ServeFlags,
}

pub fn run(args: ListenArgs) -> Result<()> {
    crate::recv::serve(args.serve, args.uri, None, None, true)
}
