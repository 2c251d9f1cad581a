use super::T;

#[test]
fn multi_exec_discard() {
    let mut t = T::new();
    assert_eq!(t.r2("exec"), "-ERR EXEC without MULTI\r\n");
    assert_eq!(t.r2("discard"), "-ERR DISCARD without MULTI\r\n");
    assert_eq!(t.r2("multi"), "+OK\r\n");
    assert_eq!(t.r2("multi"), "-ERR MULTI calls can not be nested\r\n");
    assert_eq!(t.r2("set a 1"), "+QUEUED\r\n");
    assert_eq!(t.r2("incr a"), "+QUEUED\r\n");
    assert_eq!(t.r2("lpush a x"), "+QUEUED\r\n");
    assert_eq!(
        t.r2("watch a"),
        "-ERR WATCH inside MULTI is not allowed\r\n"
    );
    assert_eq!(
        t.r2("exec"),
        "*3\r\n+OK\r\n:2\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
        "nested MULTI and WATCH inside MULTI do not doom it; errors inside EXEC are per command"
    );
    t.quiet("multi");
    t.quiet("set b 1");
    assert_eq!(t.r2("discard"), "+OK\r\n");
    assert_eq!(t.r2("exists b"), ":0\r\n");
}

#[test]
fn a_refused_command_dooms_the_transaction() {
    let mut t = T::new();
    t.quiet("multi");
    t.quiet("set a 1");
    assert_eq!(
        t.r2("get"),
        "-ERR wrong number of arguments for 'get' command\r\n"
    );
    assert_eq!(
        t.r2("exec"),
        "-EXECABORT Transaction discarded because of previous errors.\r\n"
    );
    assert_eq!(t.r2("exists a"), ":0\r\n");
    t.quiet("multi");
    t.quiet("nosuch x");
    assert_eq!(
        t.r2("exec"),
        "-EXECABORT Transaction discarded because of previous errors.\r\n"
    );
    t.quiet("multi");
    assert_eq!(
        t.r2("shutdown"),
        "-ERR Command not allowed inside a transaction\r\n"
    );
    assert_eq!(
        t.r2("exec"),
        "-EXECABORT Transaction discarded because of previous errors.\r\n"
    );
    assert_eq!(t.r2("exec"), "-ERR EXEC without MULTI\r\n");
}

#[test]
fn watch_sees_other_clients_expiry_and_flush() {
    let mut t = T::new();
    t.quiet("set k 1");
    // Unchanged: EXEC runs.
    t.quiet("watch k");
    t.quiet("multi");
    t.quiet("incr k");
    assert_eq!(t.r2("exec"), "*1\r\n:2\r\n");
    // Changed by another client.
    t.quiet("watch k");
    t.run_other("set k 5");
    t.quiet("multi");
    t.quiet("incr k");
    assert_eq!(t.r2("exec"), "*-1\r\n");
    assert_eq!(t.r3("get k"), "$1\r\n5\r\n");
    // A missing key created and deleted again is a change.
    t.quiet("watch nk");
    t.run_other("set nk 1");
    t.run_other("del nk");
    t.quiet("multi");
    t.quiet("ping");
    assert_eq!(t.r3("exec"), "_\r\n");
    // Expiry between WATCH and EXEC.
    t.quiet("set e 1 px 100");
    t.quiet("watch e");
    t.advance(100);
    t.quiet("multi");
    t.quiet("ping");
    assert_eq!(t.r2("exec"), "*-1\r\n");
    // A flush.
    t.quiet("watch k");
    t.run_other("flushall");
    t.quiet("multi");
    assert_eq!(t.r2("exec"), "*-1\r\n");
    // UNWATCH forgets; EXEC and DISCARD unwatch.
    t.quiet("set k 1");
    t.quiet("watch k");
    t.quiet("unwatch");
    t.run_other("set k 2");
    t.quiet("multi");
    assert_eq!(t.r2("exec"), "*0\r\n");
    assert!(t.session.watched.is_empty());
    t.quiet("watch k");
    t.quiet("watch k");
    super::super::end_session(&mut t.store, &mut t.session);
    assert_eq!(t.store.watch_token(b"k", t.now), u64::MAX, "released");
}

#[test]
fn exec_propagates_as_a_transaction() {
    let mut t = T::new();
    t.quiet("multi");
    t.quiet("set a 1");
    t.quiet("get a");
    t.quiet("incr a");
    assert_eq!(
        t.prop("exec"),
        vec!["MULTI", "set a 1", "INCRBY a 1", "EXEC"]
    );
    t.quiet("multi");
    t.quiet("incr a");
    assert_eq!(t.prop("exec"), vec!["INCRBY a 1"]);
}
