//! 2,000 datagrams of garbage and truncated or mangled SIP (deterministic PRNG), then calls:
//! all succeed and no worker died.

use super::harness::{Proxy, ProxyCfg};
use super::process::tail;
use super::sipp::{Uas, run_calls};
use super::udp::{Peer, invite_request, options_request};
use std::collections::BTreeMap;
use std::time::Duration;

/// xorshift64*: small, deterministic, good enough to pick cut points and bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn byte(&mut self) -> u8 {
        (self.next() >> 56) as u8
    }
}

/// Datagram number `i`: random bytes, a truncated request, a request with flipped bytes, or
/// SIP-shaped junk. Requests carry a Via back at `client` so any error reply reaches the test.
fn junk(rng: &mut Rng, i: usize, client: &Peer, proxy: std::net::SocketAddr) -> Vec<u8> {
    let call_id = format!("junk-{i}");
    match i % 4 {
        0 => (0..1 + rng.below(1400)).map(|_| rng.byte()).collect(),
        1 => {
            let full = if rng.below(2) == 0 {
                invite_request(client.addr, proxy, &call_id)
            } else {
                options_request(client.addr, proxy, &call_id)
            };
            let cut = rng.below(full.len());
            full[..cut].to_vec()
        }
        2 => {
            // OPTIONS only: a mangled INVITE that still parses would open stray calls on the UAS.
            let mut msg = options_request(client.addr, proxy, &call_id);
            for _ in 0..1 + rng.below(8) {
                let at = rng.below(msg.len());
                msg[at] = rng.byte();
            }
            msg
        }
        _ => {
            let pieces: [&[u8]; 10] = [
                b"INVITE ",
                b"SIP/2.0",
                b"\r\n",
                b"Via: ",
                b"Content-Length: 99999999999999999999",
                b":",
                b";branch=",
                b"sip:",
                b"\r\n\r\n",
                b" ",
            ];
            let mut msg = Vec::new();
            for _ in 0..rng.below(40) {
                msg.extend_from_slice(pieces[rng.below(pieces.len())]);
                if rng.below(3) == 0 {
                    msg.push(rng.byte());
                }
            }
            msg
        }
    }
}

#[test]
fn garbage_and_truncated_datagrams_then_calls_all_succeed_with_no_worker_lost() {
    let mut uas = Uas::start();
    let proxy = match Proxy::start("garbage", ProxyCfg::stateless(4, uas.port)) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    };
    let before: BTreeMap<i64, i32> = proxy.workers().iter().map(|w| (w.rank, w.pid)).collect();
    let handled_before: u64 = proxy.workers().iter().map(|w| w.messages).sum();

    let client = Peer::bind();
    let mut rng = Rng(0x5EED_0F51_9A1B_2026);
    for i in 0..2000 {
        let data = junk(&mut rng, i, &client, proxy.addr());
        if data.is_empty() {
            // A zero-length datagram is legal UDP; send it too.
            client.send_to(b"", proxy.addr());
        } else {
            client.send_to(&data, proxy.addr());
        }
        // Pace the burst so the socket buffer does not simply drop most of it.
        if i % 25 == 24 {
            std::thread::sleep(Duration::from_millis(2));
            client.drain(Duration::from_millis(1));
        }
    }
    client.drain(Duration::from_millis(300));

    let after_junk = proxy.workers();
    let handled: u64 = after_junk.iter().map(|w| w.messages).sum::<u64>() - handled_before;
    assert!(
        handled >= 1000,
        "only {handled} of 2000 datagrams reached the workers: {after_junk:?}"
    );

    let result = run_calls(proxy.addr(), 20, 20);
    uas.assert_running();
    assert_eq!(
        (result.exit_code, result.successful, result.failed),
        (Some(0), 20, 0),
        "calls after the garbage\n{}\n--- siplab log tail\n{}",
        result.diagnostics,
        tail(&proxy.log_text(), 30)
    );
    let after: BTreeMap<i64, i32> = proxy.workers().iter().map(|w| (w.rank, w.pid)).collect();
    assert_eq!(before, after, "a worker died (rank -> pid changed)");
}
