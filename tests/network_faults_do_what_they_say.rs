//! The test kit's private networks and their faults, each measured doing what it claims:
//! a cut connection hangs (it is not refused), a one-way cut passes the other way, an
//! isolated host is lost to everyone, a frozen host takes connections and answers
//! nothing, a slow link adds its delay, a lossy link drops its share, a throttled link
//! moves at its rate; and `heal` undoes each.

use backpack_testkit::network::throttle_burst;
use backpack_testkit::{Host, RedisServer, Sandbox};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

const ECHO_PORT: u16 = 7;
const SINK_PORT: u16 = 9;

/// On `host`: a TCP echo server on port 7, and a server on port 9 that reads everything
/// and answers with the number of bytes it read when the sender ends its side.
fn serve(host: &Host) {
    host.spawn_thread(|| {
        let listener = TcpListener::bind(("0.0.0.0", ECHO_PORT)).expect("bind echo");
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut buffer = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buffer) {
                    if n == 0 || stream.write_all(&buffer[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    })
    .expect("echo thread");
    host.spawn_thread(|| {
        let listener = TcpListener::bind(("0.0.0.0", SINK_PORT)).expect("bind sink");
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut all = Vec::new();
                if stream.read_to_end(&mut all).is_ok() {
                    let _ = stream.write_all(all.len().to_string().as_bytes());
                }
            });
        }
    })
    .expect("sink thread");
    // The listeners are up once the lab can connect.
    let echo = host.socket(ECHO_PORT);
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect_timeout(&echo, Duration::from_millis(100)).is_err() {
        assert!(
            Instant::now() < deadline,
            "echo server on {host:?} did not start"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `work` on `host` and returns its result.
fn on<T: Send + 'static>(host: &Host, work: impl FnOnce() -> T + Send + 'static) -> T {
    host.spawn_thread(work)
        .expect("spawn on host")
        .join()
        .expect("thread on host")
        .expect("enter host")
}

/// How a connection from `from` to `to`'s echo server goes: Ok(round trip of one byte
/// on a new connection) or the kind of error, within `patience`.
fn echo_from(from: &Host, to: &Host, patience: Duration) -> Result<Duration, ErrorKind> {
    let target = to.socket(ECHO_PORT);
    on(from, move || echo(target, patience))
}

fn echo(target: SocketAddr, patience: Duration) -> Result<Duration, ErrorKind> {
    let started = Instant::now();
    let mut stream = TcpStream::connect_timeout(&target, patience).map_err(|e| e.kind())?;
    stream
        .set_read_timeout(Some(patience))
        .map_err(|e| e.kind())?;
    stream.write_all(b"x").map_err(|e| e.kind())?;
    let mut byte = [0u8; 1];
    stream.read_exact(&mut byte).map_err(|e| e.kind())?;
    Ok(started.elapsed())
}

fn hangs(result: Result<Duration, ErrorKind>) -> bool {
    matches!(result, Err(ErrorKind::TimedOut | ErrorKind::WouldBlock))
}

/// A network with hosts `a` and `b`, each serving echo and sink.
fn two_hosts(label: &str) -> (Sandbox, Host, Host) {
    let sandbox = Sandbox::with_network(label).expect("make a private network");
    let a = sandbox.host("a").expect("host a");
    let b = sandbox.host("b").expect("host b");
    serve(&a);
    serve(&b);
    (sandbox, a, b)
}

#[test]
fn hosts_reach_each_other_by_address_and_name() {
    let (sandbox, a, b) = two_hosts("reach");
    assert_ne!(a.ip, b.ip);
    assert!(echo_from(&a, &b, Duration::from_secs(2)).is_ok());
    assert!(
        echo(b.socket(ECHO_PORT), Duration::from_secs(2)).is_ok(),
        "lab to b"
    );
    // Processes on hosts resolve the hosts' names.
    let output = a
        .command("getent")
        .expect("command on a")
        .args(["hosts", "b"])
        .output()
        .expect("getent");
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(
        said.starts_with(&b.ip.to_string()),
        "getent hosts b: {said:?}"
    );
    // And nothing of it is the machine's: its own /etc/hosts does not know them.
    let machine = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    assert!(!machine.contains(&b.ip.to_string()));
    drop(sandbox);
}

#[test]
fn a_cut_hangs_both_ways_and_heals() {
    let (sandbox, a, b) = two_hosts("cut");
    let network = sandbox.network().expect("network");
    network.cut(&a, &b).expect("cut");
    let patience = Duration::from_secs(1);
    assert!(hangs(echo_from(&a, &b, patience)), "a to b is not silent");
    assert!(hangs(echo_from(&b, &a, patience)), "b to a is not silent");
    // Only that link: the lab still reaches both.
    assert!(echo(a.socket(ECHO_PORT), patience).is_ok());
    assert!(echo(b.socket(ECHO_PORT), patience).is_ok());
    network.heal();
    assert!(echo_from(&a, &b, patience).is_ok(), "heal");
}

#[test]
fn an_isolated_host_is_lost_to_everyone_until_healed() {
    let (sandbox, a, b) = two_hosts("isolate");
    let network = sandbox.network().expect("network");
    // A connection open before the fault goes silent too.
    let mut open = TcpStream::connect(b.socket(ECHO_PORT)).expect("connect");
    open.set_read_timeout(Some(Duration::from_secs(1))).ok();
    network.isolate(&b).expect("isolate");
    let patience = Duration::from_secs(1);
    assert!(hangs(echo_from(&a, &b, patience)));
    assert!(hangs(echo(b.socket(ECHO_PORT), patience)));
    open.write_all(b"x").expect("the write is buffered");
    let mut byte = [0u8; 1];
    let read = open.read(&mut byte).map_err(|e| e.kind());
    assert!(
        hangs(read.map(|_| Duration::ZERO)),
        "an open connection answered: {read:?}"
    );
    network.heal();
    assert!(echo_from(&a, &b, patience).is_ok());
    // The byte sent into the silence arrives once it heals (TCP retransmits it).
    open.set_read_timeout(Some(Duration::from_secs(5))).ok();
    assert_eq!(open.read(&mut byte).ok(), Some(1));
}

/// Sends `count` numbered datagrams from `from` to `to`; how many arrived.
fn datagrams(from: &Host, to: &Host, count: u32) -> u32 {
    let target = SocketAddr::from((to.ip, 5000));
    let receiver = to
        .spawn_thread(move || {
            let socket = UdpSocket::bind(("0.0.0.0", 5000)).expect("bind udp");
            socket
                .set_read_timeout(Some(Duration::from_millis(700)))
                .ok();
            let mut got = 0u32;
            let mut buffer = [0u8; 64];
            while socket.recv(&mut buffer).is_ok() {
                got += 1;
            }
            got
        })
        .expect("receiver");
    std::thread::sleep(Duration::from_millis(100));
    on(from, move || {
        let socket = UdpSocket::bind("0.0.0.0:0").expect("bind sender");
        for i in 0..count {
            let _ = socket.send_to(&i.to_be_bytes(), target);
            if i % 50 == 49 {
                // Paced, so that no socket buffer drops what the network let through.
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    });
    receiver.join().expect("receiver").expect("enter host")
}

#[test]
fn a_one_way_cut_passes_the_other_way() {
    let (sandbox, a, b) = two_hosts("one-way");
    let network = sandbox.network().expect("network");
    network.cut_one_way(&a, &b).expect("cut one way");
    assert_eq!(datagrams(&a, &b, 200), 0, "a to b passed");
    assert_eq!(datagrams(&b, &a, 200), 200, "b to a was cut");
    // A TCP request arrives, and its answer does not: the connect hangs.
    assert!(hangs(echo_from(&b, &a, Duration::from_secs(1))));
    network.heal();
    assert_eq!(datagrams(&a, &b, 200), 200);
}

#[test]
fn a_lossy_link_drops_its_share() {
    let (sandbox, a, b) = two_hosts("lossy");
    let network = sandbox.network().expect("network");
    let sent = 4000;
    assert_eq!(datagrams(&a, &b, sent), sent, "loss before the fault");
    network.lossy(&a, &b, 0.3).expect("lossy");
    let lost = 1.0 - f64::from(datagrams(&a, &b, sent)) / f64::from(sent);
    println!("asked 30 % loss, measured {:.1} %", lost * 100.0);
    assert!((0.24..=0.36).contains(&lost), "measured loss {lost}");
    network.heal();
    assert_eq!(datagrams(&a, &b, sent), sent, "loss after the heal");
}

/// Sends `bytes` from `from` to `to`'s sink; how long until the sink said it had them.
fn transfer(from: &Host, to: &Host, bytes: usize) -> Duration {
    let target = to.socket(SINK_PORT);
    on(from, move || {
        let started = Instant::now();
        let mut stream = TcpStream::connect(target).expect("connect sink");
        stream.write_all(&vec![7u8; bytes]).expect("send");
        stream.shutdown(std::net::Shutdown::Write).expect("end");
        let mut said = String::new();
        stream.read_to_string(&mut said).expect("answer");
        assert_eq!(said, bytes.to_string(), "the sink got another length");
        started.elapsed()
    })
}

#[test]
fn a_throttled_link_moves_at_its_rate() {
    let (sandbox, a, b) = two_hosts("throttle");
    let network = sandbox.network().expect("network");
    let bytes = 2 << 20;
    let free = transfer(&a, &b, bytes);
    let rate = 512 * 1024;
    network.throttle(&a, &b, rate).expect("throttle");
    let throttled = transfer(&a, &b, bytes);
    // What passes at once (a second's worth and the burst), then the rate.
    let at_once = rate + throttle_burst(rate);
    let expected = Duration::from_secs_f64((bytes as u64 - at_once) as f64 / rate as f64);
    println!("2 MiB: {free:?} free, {throttled:?} at 512 KiB/s (the rate says {expected:?})");
    assert!(
        throttled >= expected.mul_f64(0.8),
        "too fast: {throttled:?}"
    );
    assert!(
        throttled <= expected.mul_f64(2.0),
        "too slow: {throttled:?}"
    );
    network.heal();
    assert!(transfer(&a, &b, bytes) < expected / 4);
}

#[test]
fn a_slow_link_adds_its_delay_to_new_connections() {
    let (sandbox, a, b) = two_hosts("slow");
    let network = sandbox.network().expect("network");
    let patience = Duration::from_secs(3);
    let before = echo_from(&a, &b, patience).expect("echo before");
    network
        .slow(&a, &b, Duration::from_millis(150))
        .expect("slow");
    let there = echo_from(&a, &b, patience).expect("echo a to b");
    let back = echo_from(&b, &a, patience).expect("echo b to a");
    // A reply from the lab is not on that link.
    let lab = echo(b.socket(ECHO_PORT), patience).expect("echo lab to b");
    println!("round trip {before:?} before, {there:?} a to b, {back:?} b to a, lab {lab:?}");
    for slowed in [there, back] {
        assert!(slowed >= Duration::from_millis(300), "{slowed:?}");
        assert!(slowed < Duration::from_millis(900), "{slowed:?}");
    }
    assert!(lab < Duration::from_millis(100));
    // Bytes are delayed, not limited: 2 MiB still go at once, 150 ms late.
    assert!(transfer(&a, &b, 2 << 20) < Duration::from_millis(1500));
    network.heal();
    assert!(echo_from(&a, &b, patience).expect("echo after") < Duration::from_millis(100));
}

#[test]
fn a_frozen_host_takes_connections_and_answers_nothing() {
    let sandbox = Sandbox::with_network("freeze").expect("make a private network");
    let host = sandbox.host("redis").expect("host");
    let redis = RedisServer::start_on(&sandbox, &host, "redis").expect("redis on a host");
    let ping = || {
        let mut stream = TcpStream::connect_timeout(&redis.addr(), Duration::from_secs(1))?;
        stream.set_read_timeout(Some(Duration::from_secs(1)))?;
        stream.write_all(b"PING\r\n")?;
        let mut answer = [0u8; 7];
        stream.read_exact(&mut answer)?;
        Ok::<_, std::io::Error>(answer)
    };
    assert_eq!(&ping().expect("ping"), b"+PONG\r\n");
    let network = sandbox.network().expect("network");
    network.freeze(&host).expect("freeze");
    let frozen = ping().map_err(|e| e.kind());
    assert!(
        matches!(frozen, Err(ErrorKind::WouldBlock | ErrorKind::TimedOut)),
        "a frozen Redis: {frozen:?}"
    );
    network.thaw(&host);
    assert_eq!(&ping().expect("ping after the thaw"), b"+PONG\r\n");
}
