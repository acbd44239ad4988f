//! The baseline for `/_matrix/client/versions`: the least an HTTP/1.1 server
//! on the same runtime can do. One shard built exactly as Tessera builds its
//! shards (io_uring, COOP_TASKRUN, pinned), parsing each request with
//! httparse and answering a fixed 200 with keep-alive and pipelining, and
//! nothing else: no routing, limits, metrics or CORS.
//!
//! `bare-hello <port> <cpu>`; see `benches/http-ceiling.sh`.

use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::{ListenerOpts, TcpListener, TcpStream};

const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, world!";

fn main() {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().and_then(|p| p.parse().ok()).expect("usage: bare-hello <port> <cpu>");
    let cpu: usize = args.next().and_then(|c| c.parse().ok()).expect("usage: bare-hello <port> <cpu>");
    // SAFETY: a plain CPU bitmask with one bit set, of its real size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        assert_eq!(libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set), 0, "cannot pin");
    }
    let mut runtime = tessera_net::runtime::build_shard_runtime().expect("io_uring runtime");
    runtime.block_on(async move {
        let opts = ListenerOpts::new().reuse_port(true).backlog(4096);
        let listener = TcpListener::bind_with_config(("127.0.0.1", port), &opts).expect("bind");
        loop {
            if let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                monoio::spawn(serve(stream));
            }
        }
    });
}

async fn serve(mut stream: TcpStream) {
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    let mut out: Vec<u8> = Vec::with_capacity(8192);
    loop {
        // Answer every complete request in the buffer, then write once.
        let mut used = 0;
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut req = httparse::Request::new(&mut headers);
            match req.parse(&buf[used..]) {
                Ok(httparse::Status::Complete(n)) => {
                    used += n;
                    out.extend_from_slice(RESPONSE);
                }
                Ok(httparse::Status::Partial) => break,
                Err(_) => return,
            }
        }
        buf.drain(..used);
        if !out.is_empty() {
            let (res, o) = stream.write_all(out).await;
            if res.is_err() {
                return;
            }
            out = o;
            out.clear();
        }
        if buf.len() == buf.capacity() {
            buf.reserve(8192);
        }
        let len = buf.len();
        let cap = buf.capacity();
        let (res, slice) = stream.read(buf.slice_mut(len..cap)).await;
        buf = slice.into_inner();
        match res {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}
