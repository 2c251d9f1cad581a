//! The event loop: listeners (Unix sockets, loopback TCP, inherited systemd sockets), clients
//! and their buffers, one epoll set, one thread (see the crate docs for why).
//!
//! (Helper K3 fills this in.)
