//! Lists, hashes, sets and sorted sets.

use super::T;

const WT: &str = "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";

#[test]
fn lists() {
    let mut t = T::new();
    assert_eq!(t.r2("lpush l a b"), ":2\r\n");
    assert_eq!(t.r2("rpush l c"), ":3\r\n");
    assert_eq!(
        t.r2("lrange l 0 -1"),
        "*3\r\n$1\r\nb\r\n$1\r\na\r\n$1\r\nc\r\n"
    );
    assert_eq!(
        t.r2("lrange l -100 100"),
        "*3\r\n$1\r\nb\r\n$1\r\na\r\n$1\r\nc\r\n"
    );
    assert_eq!(t.r2("lrange l 2 1"), "*0\r\n");
    assert_eq!(t.r2("lindex l -1"), "$1\r\nc\r\n");
    assert_eq!(t.r2("lindex l 3"), "$-1\r\n");
    assert_eq!(t.r2("lpop l 0"), "*0\r\n");
    assert_eq!(
        t.r2("lpop l -1"),
        "-ERR value is out of range, must be positive\r\n"
    );
    assert_eq!(
        t.r2("lpop l 1 2"),
        "-ERR wrong number of arguments for 'lpop' command\r\n"
    );
    assert_eq!(t.r2("rpop l 2"), "*2\r\n$1\r\nc\r\n$1\r\na\r\n");
    assert_eq!(t.r2("lpop l"), "$1\r\nb\r\n");
    assert_eq!(t.r2("exists l"), ":0\r\n", "an emptied list is deleted");
    assert_eq!(t.r2("lpop l"), "$-1\r\n");
    assert_eq!(t.r2("lpop l 2"), "*-1\r\n");
    assert_eq!(t.r3("lpop l 2"), "_\r\n");
    assert_eq!(t.r2("lpushx l a"), ":0\r\n");
    t.quiet("set s v");
    assert_eq!(t.r2("lpush s a"), WT);
    assert_eq!(t.r2("llen s"), WT);
    assert_eq!(t.r2("llen l"), ":0\r\n");
    assert_eq!(t.store.used_memory(), t.store.recount());
}

#[test]
fn hashes() {
    let mut t = T::new();
    assert_eq!(
        t.r2("hset h f v g"),
        "-ERR wrong number of arguments for 'hset' command\r\n"
    );
    assert_eq!(t.r2("hset h f v g w"), ":2\r\n");
    assert_eq!(t.r2("hset h f v2"), ":0\r\n");
    assert_eq!(t.r2("hget h f"), "$2\r\nv2\r\n");
    assert_eq!(t.r2("hmget h f nof"), "*2\r\n$2\r\nv2\r\n$-1\r\n");
    assert_eq!(t.r2("hincrby h n 5"), ":5\r\n");
    assert_eq!(
        t.r2("hincrby h f 1"),
        "-ERR hash value is not an integer\r\n"
    );
    assert_eq!(
        t.r2("hincrby h n x"),
        "-ERR value is not an integer or out of range\r\n"
    );
    t.quiet("hset h big 9223372036854775807");
    assert_eq!(
        t.r2("hincrby h big 1"),
        "-ERR increment or decrement would overflow\r\n"
    );
    assert_eq!(t.r2("hlen h"), ":4\r\n");
    assert_eq!(t.r2("hexists h g"), ":1\r\n");
    assert_eq!(t.r2("hdel h f g n nof"), ":3\r\n");
    assert_eq!(
        t.r3("hgetall h"),
        "%1\r\n$3\r\nbig\r\n$19\r\n9223372036854775807\r\n"
    );
    assert_eq!(
        t.r2("hgetall h"),
        "*2\r\n$3\r\nbig\r\n$19\r\n9223372036854775807\r\n"
    );
    assert_eq!(t.r3("hgetall none"), "%0\r\n");
    assert_eq!(t.r2("hdel h big"), ":1\r\n");
    assert_eq!(t.r2("exists h"), ":0\r\n");
    assert_eq!(t.r2("hmset h a 1"), "+OK\r\n");
    t.quiet("set s v");
    assert_eq!(t.r2("hset s a 1"), WT);
    assert_eq!(t.r2("hget s a"), WT);
    assert_eq!(t.store.used_memory(), t.store.recount());
}

#[test]
fn sets_and_spop_propagates_srem() {
    let mut t = T::new();
    assert_eq!(t.r2("sadd s a b a"), ":2\r\n");
    assert!(
        t.prop("sadd s a").is_empty(),
        "nothing added: nothing logged"
    );
    assert_eq!(t.r2("sismember s a"), ":1\r\n");
    assert_eq!(t.r2("smismember s a z"), "*2\r\n:1\r\n:0\r\n");
    assert_eq!(t.r2("scard s"), ":2\r\n");
    assert_eq!(t.r2("srem s a zz"), ":1\r\n");
    assert_eq!(t.r3("smembers s"), "~1\r\n$1\r\nb\r\n");
    assert_eq!(
        t.r2("spop s -1"),
        "-ERR value is out of range, must be positive\r\n"
    );
    assert_eq!(t.r2("spop s 1 2"), "-ERR syntax error\r\n");
    assert_eq!(t.prop("spop s"), vec!["SREM s b"]);
    assert_eq!(t.r2("exists s"), ":0\r\n");
    assert_eq!(t.r2("spop s"), "$-1\r\n");
    assert_eq!(t.r3("spop s 2"), "~0\r\n");
    t.quiet("sadd s a b c");
    assert_eq!(t.r3("spop s 0"), "~0\r\n");
    let out = t.run("spop s 5");
    let crate::resp::Reply::Set(items) = out.reply else {
        panic!()
    };
    assert_eq!(items.len(), 3);
    assert_eq!(out.propagate[0].len(), 5, "SREM s and the three members");
    t.quiet("set str v");
    assert_eq!(t.r2("sadd str a"), WT);
    assert_eq!(t.store.used_memory(), t.store.recount());
}

#[test]
fn sorted_sets() {
    let mut t = T::new();
    assert_eq!(t.r2("zadd z 1 a 2"), "-ERR syntax error\r\n");
    assert_eq!(
        t.r2("zadd z nx xx 1 a"),
        "-ERR XX and NX options at the same time are not compatible\r\n"
    );
    assert_eq!(
        t.r2("zadd z nx gt 1 a"),
        "-ERR GT, LT, and/or NX options at the same time are not compatible\r\n"
    );
    assert_eq!(
        t.r2("zadd z incr 1 a 2 b"),
        "-ERR INCR option supports a single increment-element pair\r\n"
    );
    assert_eq!(t.r2("zadd z nan a"), "-ERR value is not a valid float\r\n");
    assert_eq!(
        t.r2("zadd z 1 a x b"),
        "-ERR value is not a valid float\r\n"
    );
    assert_eq!(t.r2("exists z"), ":0\r\n", "a bad score changes nothing");
    assert_eq!(t.r2("zadd z inf a -inf b 1.5 c 2 d 1e3 e"), ":5\r\n");
    assert_eq!(t.r2("zadd z ch 1 a 5 c 9 new"), ":3\r\n");
    assert_eq!(t.r2("zadd z gt ch 0 a"), ":0\r\n");
    assert_eq!(t.r2("zadd z lt ch 0 a"), ":1\r\n");
    assert_eq!(t.r2("zadd z incr 2 a"), "$1\r\n2\r\n");
    assert_eq!(t.r3("zadd z incr 2 a"), ",4\r\n");
    assert_eq!(t.r2("zadd z nx incr 2 a"), "$-1\r\n");
    assert_eq!(t.r2("zadd z incr +inf a"), "$3\r\ninf\r\n");
    assert_eq!(
        t.r2("zadd z incr -inf a"),
        "-ERR resulting score is not a number (NaN)\r\n"
    );
    assert_eq!(t.r2("zadd noz xx 1 m"), ":0\r\n");
    assert_eq!(t.r2("exists noz"), ":0\r\n");
    assert_eq!(
        t.r2("zrange z 0 -1"),
        "*6\r\n$1\r\nb\r\n$1\r\nd\r\n$1\r\nc\r\n$3\r\nnew\r\n$1\r\ne\r\n$1\r\na\r\n"
    );
    assert_eq!(
        t.r2("zrange z -2 -1 withscores"),
        "*4\r\n$1\r\ne\r\n$4\r\n1000\r\n$1\r\na\r\n$3\r\ninf\r\n"
    );
    assert_eq!(
        t.r3("zrange z -2 -1 withscores"),
        "*2\r\n*2\r\n$1\r\ne\r\n,1000\r\n*2\r\n$1\r\na\r\n,inf\r\n"
    );
    assert_eq!(t.r2("zrange z 0 1 rev"), "*2\r\n$1\r\na\r\n$1\r\ne\r\n");
    assert_eq!(
        t.r2("zrange z 0 1 limit 0 1"),
        "-ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX\r\n"
    );
    assert_eq!(
        t.r2("zrange z (1 5 byscore"),
        "*2\r\n$1\r\nd\r\n$1\r\nc\r\n"
    );
    assert_eq!(
        t.r2("zrange z 5 (1 byscore rev"),
        "*2\r\n$1\r\nc\r\n$1\r\nd\r\n"
    );
    assert_eq!(
        t.r2("zrangebyscore z -inf +inf limit 1 2"),
        "*2\r\n$1\r\nd\r\n$1\r\nc\r\n"
    );
    assert_eq!(
        t.r2("zrange z a b byscore"),
        "-ERR min or max is not a float\r\n"
    );
    assert_eq!(t.r2("zscore z c"), "$1\r\n5\r\n");
    assert_eq!(t.r3("zscore z c"), ",5\r\n");
    assert_eq!(t.r2("zscore z nope"), "$-1\r\n");
    assert_eq!(t.r2("zincrby z 1.5 c"), "$3\r\n6.5\r\n");
    assert_eq!(t.r2("zcard z"), ":6\r\n");
    assert_eq!(t.r2("zpopmin z"), "*2\r\n$1\r\nb\r\n$4\r\n-inf\r\n");
    assert_eq!(t.r3("zpopmin z"), "*2\r\n$1\r\nd\r\n,2\r\n");
    assert_eq!(t.r3("zpopmin z 1"), "*1\r\n*2\r\n$1\r\nc\r\n,6.5\r\n");
    assert_eq!(
        t.r2("zpopmax z 2"),
        "*4\r\n$1\r\na\r\n$3\r\ninf\r\n$1\r\ne\r\n$4\r\n1000\r\n"
    );
    assert_eq!(
        t.r2("zpopmin z -1"),
        "-ERR value is out of range, must be positive\r\n"
    );
    assert_eq!(t.r2("zpopmin noz"), "*0\r\n");
    assert_eq!(t.r2("zrem z new nope"), ":1\r\n");
    assert_eq!(t.r2("exists z"), ":0\r\n");
    t.quiet("set s v");
    assert_eq!(t.r2("zadd s 1 a"), WT);
    assert_eq!(t.r2("zscore s a"), WT);
    assert_eq!(t.store.used_memory(), t.store.recount());
}
