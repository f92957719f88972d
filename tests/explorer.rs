//! The explorer answers: `serve` on a free loopback port, then its state API returns the initial
//! state of the RSL and KV models.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use ironfleet::model::kv::{kv_model, KvModelCfg};
use ironfleet::model::rsl::{rsl_model, RslModelCfg};
use stateright::Model;

fn get(addr: &str, path: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut body = String::new();
    s.read_to_string(&mut body)?;
    Ok(body)
}

/// Runs `serve` (a model's explorer) on a free loopback port from a background thread; returns
/// the address once its state API answers, with that first answer.
fn serve(serve: impl FnOnce(&str) + Send + 'static) -> (String, String) {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let serve_addr = addr.clone();
    std::thread::spawn(move || serve(serve_addr.as_str()));
    let deadline = Instant::now() + Duration::from_secs(30);
    let response = loop {
        match get(&addr, "/.states") {
            Ok(r) if r.starts_with("HTTP/1.1 200") => break r,
            _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            other => panic!("explorer did not answer: {other:?}"),
        }
    };
    (addr, response)
}

#[test]
fn explorer_serves_the_initial_state() {
    let (addr, response) = serve(|addr| {
        let _ = rsl_model(RslModelCfg::counter(3, 1, 1))
            .checker()
            .threads(1)
            .serve(addr);
    });
    // The initial state lists every actor: three replicas and one client.
    assert!(response.contains("ReplicaState"), "{response}");
    assert!(response.contains("ClientState"), "{response}");
    let status = get(&addr, "/.status").unwrap();
    assert!(status.contains("\"properties\""), "{status}");
    assert!(status.contains("agreement"), "{status}");
}

#[test]
fn explorer_serves_the_kv_model() {
    let (addr, response) = serve(|addr| {
        let _ = kv_model(KvModelCfg::small())
            .checker()
            .threads(1)
            .serve(addr);
    });
    // Hosts and clients, and the first steps: the client's Set and the admin's Shard in flight.
    assert!(response.contains("HostState"), "{response}");
    assert!(response.contains("KvClientState"), "{response}");
    assert!(response.contains("Shard"), "{response}");
    let status = get(&addr, "/.status").unwrap();
    assert!(status.contains("one hash table"), "{status}");
    assert!(status.contains("every key owned once"), "{status}");
}
