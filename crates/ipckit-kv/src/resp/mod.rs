//! RESP, Redis's wire protocol: requests in ([`parse_request`]), replies out ([`Reply::encode`]).
//!
//! A request is an array of bulk strings (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`, what every client
//! sends) or an inline line (`PING\r\n`, what a person types into `nc`), split on spaces with
//! Redis's quoting rules. A reply is encoded for the protocol the client chose with `HELLO`:
//! RESP2 (the default) or RESP3, whose maps, sets, doubles and one null RESP2 spells as arrays,
//! bulk strings and `$-1` / `*-1`.
//!
//! Limits keep a hostile or broken client from growing the server: a bulk string longer than
//! [`Limits::max_bulk`], an inline line longer than [`Limits::max_inline`], or more than
//! [`Limits::max_args`] arguments is a protocol error, worded as Redis words it; the server
//! replies with it and closes the connection, as Redis does.
//!
//! ```
//! use ipckit_kv::resp::{parse_request, Limits, Parse};
//! let limits = Limits::default();
//! match parse_request(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\n", &limits) {
//!     Parse::Request { args, used } => {
//!         assert_eq!(args, vec![b"GET".to_vec(), b"k".to_vec()]);
//!         assert_eq!(used, 20);
//!     }
//!     other => panic!("{other:?}"),
//! }
//! assert!(matches!(parse_request(b"*2\r\n$3\r\nGE", &limits), Parse::Incomplete));
//! ```

mod parse;
mod reply;

pub use parse::{
    Limits, Parse, Parsed, Progress, parse_request, parse_request_into, parse_request_resume,
};
pub use reply::{Protocol, Reply};
pub(crate) use reply::{decimal, fmt_i64};
