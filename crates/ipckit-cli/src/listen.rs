//! `ipckit listen URI`: accept peer after peer on an endpoint, until interrupted.

use anyhow::Result;

use crate::endpoint::Endpoint;
use crate::recv::ServeFlags;

/// Accept peers on an endpoint and print what they send, until interrupted.
#[derive(clap::Args, Debug)]
pub struct ListenArgs {
    pub uri: Endpoint,
    #[command(flatten)]
    pub serve: ServeFlags,
}

pub fn run(args: ListenArgs) -> Result<()> {
    crate::recv::serve(args.serve, args.uri, None, None, true)
}
