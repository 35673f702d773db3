//! Signals and sockets, straight from the C library (libc is linked into every Rust program on
//! Linux; the test crate has no `libc` dependency).

use super::*;

extern "C" {
    pub(super) fn kill(pid: i32, sig: i32) -> i32;
    fn socket(domain: i32, ty: i32, protocol: i32) -> i32;
    fn setsockopt(fd: i32, level: i32, name: i32, value: *const std::ffi::c_void, len: u32) -> i32;
    fn connect(fd: i32, addr: *const SockAddrIn, len: u32) -> i32;
    fn close(fd: i32) -> i32;
}

pub const SIGKILL: i32 = 9;
pub const SIGTERM: i32 = 15;
pub const SIGSTOP: i32 = 19;
pub const SIGCONT: i32 = 18;

#[repr(C)]
struct SockAddrIn {
    family: u16,
    port: u16,
    addr: u32,
    zero: [u8; 8],
}

/// Sends `sig` to process `pid`.
pub fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) with a pid we started and a valid signal number.
    let r = unsafe { kill(pid as i32, sig) };
    assert_eq!(r, 0, "kill({pid}, {sig}) failed");
}

/// A TCP connection to `addr` whose receive buffer is set (before connecting, so that the
/// window it advertises is small from the start) to `rcvbuf` bytes.
pub fn connect_small(addr: SocketAddr, rcvbuf: i32) -> TcpStream {
    use std::os::fd::FromRawFd;
    let SocketAddr::V4(v4) = addr else {
        panic!("IPv4 only: {addr}")
    };
    // SAFETY: plain socket calls on a descriptor we own; on success it is handed to TcpStream,
    // which closes it.
    unsafe {
        let fd = socket(2 /* AF_INET */, 1 /* SOCK_STREAM */, 0);
        assert!(fd >= 0, "socket() failed");
        let r = setsockopt(
            fd,
            1, /* SOL_SOCKET */
            8, /* SO_RCVBUF */
            (&rcvbuf as *const i32).cast(),
            4,
        );
        assert_eq!(r, 0, "setsockopt(SO_RCVBUF) failed");
        let sa = SockAddrIn {
            family: 2,
            port: v4.port().to_be(),
            addr: u32::from(*v4.ip()).to_be(),
            zero: [0; 8],
        };
        if connect(fd, &sa, std::mem::size_of::<SockAddrIn>() as u32) != 0 {
            close(fd);
            panic!(
                "connect to {addr} failed: {}",
                std::io::Error::last_os_error()
            );
        }
        TcpStream::from_raw_fd(fd)
    }
}

/// `http://127.0.0.1:PORT` → the socket address.
pub fn addr_of(base: &str) -> SocketAddr {
    base.trim_start_matches("http://").parse().unwrap()
}

/// An SSE client that asks for everything after `last_event_id` and then never reads: its
/// tiny receive buffer fills at once and the server's writes to it block.
pub fn idle_sse_client(base: &str, last_event_id: &str) -> TcpStream {
    let mut s = connect_small(addr_of(base), 4096);
    write!(
        s,
        "GET /beacon/2.0/stream HTTP/1.1\r\nHost: faults\r\nAccept: text/event-stream\r\nLast-Event-ID: {last_event_id}\r\n\r\n"
    )
    .unwrap();
    s
}

/// An SSE client that reads every event on a thread; the thread ends when the stream does.
/// Returns the count of `id:` lines read so far.
pub fn reading_sse_client(base: &str) -> Arc<AtomicU64> {
    let events = Arc::new(AtomicU64::new(0));
    let mut s = TcpStream::connect(addr_of(base)).unwrap();
    write!(
        s,
        "GET /beacon/2.0/stream HTTP/1.1\r\nHost: faults\r\nAccept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    let counted = events.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(s).lines() {
            let Ok(line) = line else { return };
            if line.starts_with("id: ") {
                counted.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    events
}

/// An SSE client that records each event it reads as it arrives: (chain, index, time ms).
pub fn recording_sse_client(base: &str) -> Arc<Mutex<Vec<(u64, u64, i64)>>> {
    let got = Arc::new(Mutex::new(Vec::new()));
    let mut s = TcpStream::connect(addr_of(base)).unwrap();
    write!(
        s,
        "GET /beacon/2.0/stream HTTP/1.1\r\nHost: faults\r\nAccept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    let rec = got.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(s).lines() {
            let Ok(line) = line else { return };
            let Some((c, i)) = line.strip_prefix("id: ").and_then(|id| id.split_once('-')) else {
                continue;
            };
            if let (Ok(c), Ok(i)) = (c.trim().parse(), i.trim().parse()) {
                rec.lock().unwrap().push((c, i, now_ms()));
            }
        }
    });
    got
}
