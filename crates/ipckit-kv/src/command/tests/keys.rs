use super::T;

#[test]
fn expire_options_as_redis() {
    let mut t = T::new();
    t.quiet("set a 1");
    assert_eq!(
        t.r2("expire a 10 nx xx"),
        "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n"
    );
    assert_eq!(
        t.r2("expire a 10 gt lt"),
        "-ERR GT and LT options at the same time are not compatible\r\n"
    );
    assert_eq!(t.r2("expire a 10 foo"), "-ERR Unsupported option foo\r\n");
    assert_eq!(
        t.r2("expire a abc"),
        "-ERR value is not an integer or out of range\r\n"
    );
    assert_eq!(
        t.r2("expire a 10 gt"),
        ":0\r\n",
        "no expiry is infinite: GT fails"
    );
    assert_eq!(t.r2("expire a 10 xx"), ":0\r\n");
    assert_eq!(
        t.r2("expire a 100 lt"),
        ":1\r\n",
        "no expiry is infinite: LT passes"
    );
    assert_eq!(t.r2("expire a 100 nx"), ":0\r\n");
    assert_eq!(t.r2("expire a 50 gt"), ":0\r\n");
    assert_eq!(t.r2("expire a 200 gt"), ":1\r\n");
    assert_eq!(t.r2("ttl a"), ":200\r\n");
    assert_eq!(t.r2("pexpire a 5000000 lt"), ":0\r\n");
    assert_eq!(
        t.r2("expire a 9223372036854775807"),
        "-ERR invalid expire time in 'expire' command\r\n"
    );
    assert_eq!(t.r2("expire nokey 10"), ":0\r\n");
    assert_eq!(t.r2("persist a"), ":1\r\n");
    assert_eq!(t.r2("persist a"), ":0\r\n");
    assert_eq!(t.r2("ttl a"), ":-1\r\n");
    assert_eq!(t.r2("ttl nokey"), ":-2\r\n");
    assert_eq!(t.r2("pttl nokey"), ":-2\r\n");
}

#[test]
fn expire_propagates_absolute_and_past_times_delete() {
    let mut t = T::new();
    t.quiet("set a 1");
    let at = t.now + 10_000;
    assert_eq!(t.prop("expire a 10"), vec![format!("PEXPIREAT a {at}")]);
    assert_eq!(t.prop("pexpireat a 5"), vec!["DEL a"]);
    assert_eq!(t.r2("exists a"), ":0\r\n");
    assert!(t.prop("expire a 10").is_empty());
    t.quiet("set b 1");
    assert_eq!(t.r2("expireat b -5"), ":1\r\n");
    assert_eq!(t.r2("exists b"), ":0\r\n");
}

#[test]
fn ttl_rounds_as_redis() {
    let mut t = T::new();
    t.quiet("set a 1 px 1499");
    assert_eq!(t.r2("ttl a"), ":1\r\n");
    t.quiet("set a 1 px 1500");
    assert_eq!(t.r2("ttl a"), ":2\r\n");
    assert_eq!(t.r2("pexpiretime a"), format!(":{}\r\n", t.now + 1500));
}

#[test]
fn del_exists_type_counting_duplicates_and_expired() {
    let mut t = T::new();
    t.quiet("mset a 1 b 2");
    t.quiet("set e 1 px 10");
    assert_eq!(t.r2("exists a a b nokey e"), ":4\r\n");
    t.advance(10);
    assert_eq!(t.r2("exists e"), ":0\r\n");
    assert_eq!(t.r2("del a a nokey e"), ":1\r\n");
    assert_eq!(t.prop("del b nokey"), vec!["DEL b"]);
    assert!(t.prop("del b").is_empty());
    assert_eq!(t.r2("type b"), "+none\r\n");
    t.quiet("zadd z 1 m");
    assert_eq!(t.r2("type z"), "+zset\r\n");
}

#[test]
fn keys_and_scan() {
    let mut t = T::new();
    for k in [
        "hello", "hallo", "hxllo", "hllo", "heeeello", "a*b", "", "x",
    ] {
        t.quiet(&format!("set \"{k}\" 1"));
    }
    let mut keys = |p: &str| -> Vec<String> {
        let out = t.run(&format!("keys \"{p}\""));
        let crate::resp::Reply::Array(items) = out.reply else {
            panic!()
        };
        let mut v: Vec<String> = items
            .into_iter()
            .map(|r| match r {
                crate::resp::Reply::Bulk(b) => String::from_utf8(b).unwrap(),
                other => panic!("{other:?}"),
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(keys("h?llo"), ["hallo", "hello", "hxllo"]);
    assert_eq!(
        keys("h*llo"),
        ["hallo", "heeeello", "hello", "hllo", "hxllo"]
    );
    assert_eq!(keys("h[ae]llo"), ["hallo", "hello"]);
    assert_eq!(keys("h[^e]llo"), ["hallo", "hxllo"]);
    assert_eq!(keys("h[a-b]llo"), ["hallo"]);
    assert_eq!(keys("a\\*b"), ["a*b"]);
    assert_eq!(keys("*").len(), 8, "a lone * matches the empty key too");

    assert_eq!(t.r2("scan abc"), "-ERR invalid cursor\r\n");
    assert_eq!(t.r2("scan 0 count 0"), "-ERR syntax error\r\n");
    assert_eq!(t.r2("scan 0 match"), "-ERR syntax error\r\n");
    assert_eq!(
        t.r2("scan 0 count x"),
        "-ERR value is not an integer or out of range\r\n"
    );
    // A whole scan with COUNT 3 sees every key once.
    let mut seen = Vec::new();
    let mut cursor = "0".to_string();
    loop {
        let out = t.run(&format!("scan {cursor} count 3 match h*"));
        let crate::resp::Reply::Array(parts) = out.reply else {
            panic!()
        };
        let crate::resp::Reply::Bulk(c) = &parts[0] else {
            panic!()
        };
        cursor = String::from_utf8(c.clone()).unwrap();
        let crate::resp::Reply::Array(items) = &parts[1] else {
            panic!()
        };
        for i in items {
            let crate::resp::Reply::Bulk(b) = i else {
                panic!()
            };
            seen.push(String::from_utf8(b.clone()).unwrap());
        }
        if cursor == "0" {
            break;
        }
    }
    seen.sort();
    assert_eq!(seen, ["hallo", "heeeello", "hello", "hllo", "hxllo"]);
    t.quiet("rpush l a");
    assert_eq!(
        t.r2("scan 0 type list count 100"),
        "*2\r\n$1\r\n0\r\n*1\r\n$1\r\nl\r\n"
    );
}

#[test]
fn dbsize_flush_select() {
    let mut t = T::new();
    t.quiet("mset a 1 b 2");
    t.quiet("set e 1 px 5");
    assert_eq!(t.r2("dbsize"), ":3\r\n");
    t.advance(5);
    assert_eq!(t.r2("dbsize"), ":2\r\n", "expired keys do not count");
    assert_eq!(t.r2("flushdb foo"), "-ERR syntax error\r\n");
    assert_eq!(t.prop("flushall async"), vec!["FLUSHALL"]);
    assert_eq!(t.r2("dbsize"), ":0\r\n");
    assert_eq!(t.store.used_memory(), 0);
    assert_eq!(t.r2("select 0"), "+OK\r\n");
    assert_eq!(t.r2("select 1"), "-ERR DB index is out of range\r\n");
    assert_eq!(
        t.r2("select x"),
        "-ERR value is not an integer or out of range\r\n"
    );
}
