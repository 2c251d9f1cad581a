use super::T;
use crate::resp::Reply;

#[test]
fn hello_switches_protocol_and_auth_gates() {
    let mut t = T::new();
    assert_eq!(t.r2("hello 4"), "-NOPROTO unsupported protocol version\r\n");
    assert_eq!(
        t.r2("hello x"),
        "-ERR Protocol version is not an integer or out of range\r\n"
    );
    assert_eq!(
        t.r2("hello 3 foo"),
        "-ERR Syntax error in HELLO option 'foo'\r\n"
    );
    let out = t.run("hello 3 setname app");
    let Reply::Map(pairs) = out.reply else {
        panic!()
    };
    let keys: Vec<_> = pairs
        .iter()
        .map(|(k, _)| match k {
            Reply::Bulk(b) => String::from_utf8(b.clone()).unwrap(),
            _ => panic!(),
        })
        .collect();
    assert_eq!(
        keys,
        [
            "server", "version", "proto", "id", "mode", "role", "modules"
        ]
    );
    assert_eq!(t.session.proto, crate::resp::Protocol::Resp3);
    assert_eq!(t.r2("client getname"), "$3\r\napp\r\n");
    assert_eq!(
        t.r2("auth x"),
        "-ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?\r\n"
    );
    assert_eq!(t.r2("auth default anything"), "+OK\r\n");
    assert_eq!(
        t.r2("auth other x"),
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );

    let mut t = T::new();
    t.server.requirepass = Some(b"secret".to_vec());
    assert_eq!(t.r2("get a"), "-NOAUTH Authentication required.\r\n");
    assert_eq!(
        t.r2("nosuch"),
        "-ERR unknown command 'nosuch', with args beginning with: \r\n"
    );
    assert!(t.r2("hello 3").starts_with("-NOAUTH HELLO must be called"));
    assert_eq!(
        t.r2("auth wrong"),
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert_eq!(t.r2("hello 2 auth default secret").as_bytes()[0], b'*');
    assert_eq!(t.r2("get a"), "$-1\r\n");
    t.quiet("reset");
    assert_eq!(t.r2("get a"), "-NOAUTH Authentication required.\r\n");
}

#[test]
fn client_subcommands() {
    let mut t = T::new();
    assert_eq!(
        t.r2("client foo"),
        "-ERR unknown subcommand 'foo'. Try CLIENT HELP.\r\n"
    );
    assert_eq!(
        t.r2("client setname"),
        "-ERR wrong number of arguments for 'client|setname' command\r\n"
    );
    assert_eq!(
        t.r2("client setname \"a b\""),
        "-ERR Client names cannot contain spaces, newlines or special characters.\r\n"
    );
    assert_eq!(t.r2("client getname"), "$-1\r\n");
    assert_eq!(t.r2("client id"), ":7\r\n");
    assert_eq!(t.r2("client setinfo lib-name redis-py"), "+OK\r\n");
    assert_eq!(t.r2("client setinfo lib-ver 5.0.1"), "+OK\r\n");
    assert_eq!(
        t.r2("client setinfo foo bar"),
        "-ERR Unrecognized option 'foo'\r\n"
    );
    assert!(
        t.r2("client info")
            .contains("lib-name=redis-py lib-ver=5.0.1")
    );
    assert!(t.r3("client info").starts_with("="), "verbatim in RESP3");
}

#[test]
fn info_config_command() {
    let mut t = T::new();
    t.server.maxmemory = 1 << 30;
    t.quiet("set e 1 ex 100");
    let info = t.r2("info");
    for field in [
        "# Server\r\n",
        "redis_version:7.0.15\r\n",
        "redis_mode:standalone",
        "process_id:",
        "tcp_port:0",
        "uptime_in_seconds:",
        "# Clients\r\nconnected_clients:0",
        "used_memory:",
        "maxmemory:1073741824",
        "aof_enabled:0",
        "loading:0",
        "rdb_bgsave_in_progress:0",
        "total_commands_processed:0",
        "# Keyspace\r\ndb0:keys=1,expires=1,avg_ttl=0\r\n",
    ] {
        assert!(info.contains(field), "INFO lacks {field:?}");
    }
    let keyspace = t.r2("info keyspace");
    assert!(keyspace.starts_with("$"));
    assert!(!keyspace.contains("# Server"));
    assert_eq!(t.r2("info nosuch"), "$0\r\n\r\n");
    assert_eq!(t.r2("config get save"), "*2\r\n$4\r\nsave\r\n$0\r\n\r\n");
    assert_eq!(
        t.r3("config get appendonly"),
        "%1\r\n$10\r\nappendonly\r\n$2\r\nno\r\n"
    );
    assert_eq!(t.r2("config get nosuch"), "*0\r\n");
    assert_eq!(
        t.r2("config get"),
        "-ERR wrong number of arguments for 'config|get' command\r\n"
    );
    assert_eq!(t.r2("config set appendonly no"), "+OK\r\n");
    assert!(
        t.r2("config set maxmemory 5")
            .starts_with("-ERR CONFIG SET failed")
    );
    assert_eq!(
        t.r2("config set nosuch 1"),
        "-ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'\r\n"
    );
    let count = super::super::specs().count();
    assert_eq!(t.r2("command count"), format!(":{count}\r\n"));
    assert_eq!(
        t.r2("command info get nosuch"),
        "*2\r\n*10\r\n$3\r\nget\r\n:2\r\n*2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n*3\r\n+@read\r\n+@string\r\n+@fast\r\n*0\r\n*1\r\n*6\r\n$5\r\nflags\r\n*2\r\n+RO\r\n+access\r\n$12\r\nbegin_search\r\n*4\r\n$4\r\ntype\r\n$5\r\nindex\r\n$4\r\nspec\r\n*2\r\n$5\r\nindex\r\n:1\r\n$9\r\nfind_keys\r\n*4\r\n$4\r\ntype\r\n$5\r\nrange\r\n$4\r\nspec\r\n*6\r\n$7\r\nlastkey\r\n:0\r\n$7\r\nkeystep\r\n:1\r\n$5\r\nlimit\r\n:0\r\n*0\r\n$-1\r\n",
        "GET's entry byte for byte as redis-server 7.0 gives it"
    );
    assert_eq!(t.r3("command docs"), "%0\r\n");
    let Reply::Array(all) = t.run("command").reply else {
        panic!()
    };
    assert_eq!(all.len(), count);
}

#[test]
fn oom_refuses_denyoom_writes_only() {
    let mut t = T::new();
    t.quiet("set big xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
    t.server.maxmemory = 10;
    let oom = "-OOM command not allowed when used memory > 'maxmemory'.\r\n";
    assert_eq!(t.r2("set a b"), oom);
    assert_eq!(t.r2("lpush l a"), oom);
    assert_eq!(t.r2("get big").as_bytes()[0], b'$');
    assert_eq!(t.r2("del big"), ":1\r\n", "DEL frees memory: never refused");
    assert_eq!(t.r2("set a b"), "+OK\r\n");
}

#[test]
fn quit_shutdown_ping_echo() {
    let mut t = T::new();
    assert_eq!(t.run("quit").after, super::super::After::Close);
    assert_eq!(
        t.run("shutdown nosave").after,
        super::super::After::Shutdown { save: false }
    );
    assert_eq!(
        t.run("shutdown").after,
        super::super::After::Shutdown { save: true }
    );
    assert_eq!(t.r2("shutdown bogus"), "-ERR syntax error\r\n");
    assert_eq!(t.r2("PING"), "+PONG\r\n");
    assert_eq!(t.r2("ping hi"), "$2\r\nhi\r\n");
    assert_eq!(
        t.r2("ping a b"),
        "-ERR wrong number of arguments for 'ping' command\r\n"
    );
    assert_eq!(t.r2("echo \"a b\""), "$3\r\na b\r\n");
    assert_eq!(
        t.r2("foo a b"),
        "-ERR unknown command 'foo', with args beginning with: 'a' 'b' \r\n"
    );
}
