//! The server in-process, through its library API: bind, serve on a thread, stop with the
//! Stopper; the socket file is gone once the server is.

use std::time::Duration;

use ipckit_kv::client::Client;
use ipckit_kv::resp::Reply;
use ipckit_kv::server::{Config, Endpoint, Server, Stopped};

const T: Duration = Duration::from_secs(30);

#[test]
fn serves_on_a_thread_and_stops_when_asked() {
    let dir = tempfile::Builder::new()
        .prefix("ipckit-kv-server-")
        .tempdir()
        .unwrap();
    let path = dir.path().join("s.sock");
    let server = Server::bind(Config {
        listen: vec![Endpoint::Unix(path.clone())],
        log: false,
        ..Config::default()
    })
    .unwrap();
    assert_eq!(server.local_names(), [format!("unix:{}", path.display())]);
    let stopper = server.stopper().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let _ = tx.send(server.run());
    });
    let mut c = Client::connect_timeout(&format!("unix:{}", path.display()), T).unwrap();
    let cmds: Vec<Vec<Vec<u8>>> = (0..50)
        .flat_map(|i| {
            let k = format!("k{i}").into_bytes();
            [
                vec![b"SET".to_vec(), k.clone(), i.to_string().into_bytes()],
                vec![b"GET".to_vec(), k],
            ]
        })
        .collect();
    let replies = c.pipeline(&cmds).unwrap();
    for (i, pair) in replies.chunks(2).enumerate() {
        assert_eq!(pair[0], Reply::OK);
        assert_eq!(pair[1], Reply::bulk(i.to_string()));
    }
    assert_eq!(c.command(&[b"DBSIZE"]).unwrap(), Reply::Int(50));
    stopper.stop().unwrap();
    let stopped = rx.recv_timeout(T).expect("the loop stops within the bound");
    assert_eq!(stopped.unwrap(), Stopped::Stopper);
    thread.join().unwrap();
    // run() consumed the server: its listener is dropped, and the file with it.
    assert!(!path.exists());
}
