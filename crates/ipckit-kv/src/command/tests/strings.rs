use super::T;

#[test]
fn set_get_and_their_errors() {
    let mut t = T::new();
    assert_eq!(t.r2("SET k v"), "+OK\r\n");
    assert_eq!(t.r2("get k"), "$1\r\nv\r\n");
    assert_eq!(
        t.r2("get"),
        "-ERR wrong number of arguments for 'get' command\r\n"
    );
    assert_eq!(t.r2("set k v nx xx"), "-ERR syntax error\r\n");
    assert_eq!(t.r2("set k v keepttl ex 10"), "-ERR syntax error\r\n");
    assert_eq!(t.r2("set k v ex 10 px 10"), "-ERR syntax error\r\n");
    assert_eq!(
        t.r2("set k v EX 10 ex 20"),
        "+OK\r\n",
        "the same unit twice is allowed"
    );
    assert_eq!(
        t.r2("set k v ex 0"),
        "-ERR invalid expire time in 'set' command\r\n"
    );
    assert_eq!(
        t.r2("set k v ex abc"),
        "-ERR value is not an integer or out of range\r\n"
    );
    assert_eq!(
        t.r2("set k v px 9223372036854775807"),
        "-ERR invalid expire time in 'set' command\r\n",
        "now + PX overflows"
    );
    assert_eq!(t.r2("set k v2 get"), "$1\r\nv\r\n");
    assert_eq!(
        t.r2("set k v3 nx get"),
        "$2\r\nv2\r\n",
        "NX refused, GET still replies"
    );
    assert_eq!(t.r2("get k"), "$2\r\nv2\r\n");
    assert_eq!(t.r2("set nk v xx"), "$-1\r\n");
    assert_eq!(t.r3("set nk v xx"), "_\r\n");
    t.quiet("rpush l a");
    assert_eq!(
        t.r2("set l v get"),
        "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
    );
    assert_eq!(
        t.r2("type l"),
        "+list\r\n",
        "a refused SET GET changes nothing"
    );
    assert_eq!(
        t.r2("get l"),
        "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
    );
}

#[test]
fn expiry_options_and_keepttl() {
    let mut t = T::new();
    t.quiet("set k v ex 10");
    assert_eq!(t.r2("ttl k"), ":10\r\n");
    t.quiet("set k w keepttl");
    assert_eq!(t.r2("ttl k"), ":10\r\n");
    t.quiet("set k w");
    assert_eq!(
        t.r2("ttl k"),
        ":-1\r\n",
        "a plain SET clears the time to live"
    );
    let at = (t.now + 5_000).to_string();
    t.quiet(&format!("set k v pxat {at}"));
    assert_eq!(t.r2("pttl k"), ":5000\r\n");
    t.advance(4_999);
    assert_eq!(t.r2("get k"), "$1\r\nv\r\n");
    t.advance(1);
    assert_eq!(t.r2("get k"), "$-1\r\n", "gone at its time");
    assert_eq!(t.r2("set k v exat 1"), "+OK\r\n");
    assert_eq!(
        t.r2("exists k"),
        ":0\r\n",
        "a time in the past: gone at once"
    );
}

#[test]
fn propagation_is_absolute_and_replayable() {
    let mut t = T::new();
    let at = t.now + 10_000;
    assert_eq!(t.prop("set k v ex 10"), vec![format!("SET k v PXAT {at}")]);
    assert_eq!(t.prop("set k v keepttl"), vec!["SET k v KEEPTTL"]);
    assert_eq!(t.prop("set k v get"), vec!["SET k v"]);
    assert!(
        t.prop("set k v nx").is_empty(),
        "a refused write logs nothing"
    );
    assert_eq!(t.prop("set k v exat 1"), vec!["DEL k"]);
    assert_eq!(t.prop("incr n"), vec!["INCRBY n 1"]);
    assert_eq!(t.prop("decrby n 5"), vec!["INCRBY n -5"]);
    assert!(t.prop("get n").is_empty());
    assert_eq!(t.prop("getdel n"), vec!["DEL n"]);
    assert!(t.prop("getdel n").is_empty());
    assert_eq!(
        t.prop("setex s 5 v"),
        vec![format!("SET s v PXAT {}", t.now + 5_000)]
    );
    t.store.set_propagate(false);
    assert!(
        t.prop("set k v").is_empty(),
        "propagation off: nothing built"
    );
}

#[test]
fn counters() {
    let mut t = T::new();
    assert_eq!(t.r2("incr n"), ":1\r\n");
    assert_eq!(t.r2("incrby n -11"), ":-10\r\n");
    assert_eq!(t.r2("decr n"), ":-11\r\n");
    assert_eq!(
        t.r2("incrby n 1.5"),
        "-ERR value is not an integer or out of range\r\n"
    );
    t.quiet("set n 9223372036854775807");
    assert_eq!(
        t.r2("incr n"),
        "-ERR increment or decrement would overflow\r\n"
    );
    assert_eq!(
        t.r2("decrby n -9223372036854775808"),
        "-ERR decrement would overflow\r\n"
    );
    for bad in ["01", " 1", "+1", "-0", "1 ", ""] {
        t.quiet(&format!("set b \"{bad}\""));
        assert_eq!(
            t.r2("incr b"),
            "-ERR value is not an integer or out of range\r\n",
            "{bad:?} is not an integer to Redis"
        );
    }
    t.quiet("set e 5 ex 100");
    t.quiet("incr e");
    assert_eq!(t.r2("ttl e"), ":100\r\n", "INCR keeps the time to live");
    assert_eq!(
        t.store.used_memory(),
        t.store.recount(),
        "in-place writes are counted"
    );
}

#[test]
fn multi_key_and_append() {
    let mut t = T::new();
    assert_eq!(
        t.r2("mset a 1 b"),
        "-ERR wrong number of arguments for 'mset' command\r\n"
    );
    assert_eq!(t.r2("mset a 1 b 2"), "+OK\r\n");
    t.quiet("rpush l x");
    assert_eq!(
        t.r2("mget a b c l"),
        "*4\r\n$1\r\n1\r\n$1\r\n2\r\n$-1\r\n$-1\r\n"
    );
    assert_eq!(t.r2("append a bc"), ":3\r\n");
    assert_eq!(t.r2("append new xy"), ":2\r\n");
    assert_eq!(t.r2("strlen a"), ":3\r\n");
    assert_eq!(t.r2("strlen none"), ":0\r\n");
    assert_eq!(
        t.r2("append l x"),
        "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
    );
    assert_eq!(t.r2("setnx a z"), ":0\r\n");
    assert_eq!(t.r2("setnx z z"), ":1\r\n");
    assert_eq!(t.r2("getset z y"), "$1\r\nz\r\n");
    assert_eq!(t.store.used_memory(), t.store.recount());
}
