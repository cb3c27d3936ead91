//! `sipload`: run a UAS/gateway emulator or a basic-call load against a proxy.

use clap::{Parser, Subcommand};
use sipload::{Gateway, GatewayConfig, LoadConfig, Mode, run_load};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(name = "sipload", about = "SIP load generator and peers over UDP")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// A UAS/gateway emulator.
    Uas {
        /// Address to listen on.
        #[arg(short = 'l', long, default_value = "127.0.0.1:5070")]
        listen: SocketAddr,
        /// ring | answer[:MS] | reject:CODE[:MS] | ring-reject:CODE[:MS] | silent |
        /// reject-then-answer:CODE
        #[arg(long, default_value = "answer")]
        mode: Mode,
        /// Status code for OPTIONS.
        #[arg(long, default_value_t = 200)]
        options_code: u16,
        /// Send 100 Trying to every INVITE.
        #[arg(long)]
        send_100: bool,
        /// Retransmit final INVITE replies until ACK (timer G).
        #[arg(long)]
        retransmit: bool,
        /// Fraction of received datagrams to drop (0..1).
        #[arg(long, default_value_t = 0.0)]
        drop_rate: f64,
        /// Stop after this many seconds (default: run until killed).
        #[arg(long)]
        duration: Option<u64>,
    },
    /// Basic calls (INVITE, 200, ACK, BYE) through a proxy.
    Uac {
        /// Where to send every request.
        #[arg(long)]
        proxy: SocketAddr,
        /// Request-URI of the INVITEs.
        #[arg(long)]
        ruri: String,
        #[arg(long, default_value_t = 1)]
        calls: u32,
        /// Calls started per second.
        #[arg(long, default_value_t = 10.0)]
        rate: f64,
        /// Milliseconds between ACK and BYE.
        #[arg(long, default_value_t = 0)]
        hold_ms: u64,
        /// A call not done this many milliseconds after its INVITE fails.
        #[arg(long, default_value_t = 32_000)]
        timeout_ms: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Uas {
            listen,
            mode,
            options_code,
            send_100,
            retransmit,
            drop_rate,
            duration,
        } => {
            let cfg = GatewayConfig {
                mode,
                options_code,
                send_100,
                retransmit_finals: retransmit,
                drop_rate,
                ..GatewayConfig::default()
            };
            let gw = match Gateway::bind(listen, cfg) {
                Ok(gw) => gw,
                Err(e) => {
                    eprintln!("sipload uas: {e}");
                    return ExitCode::from(2);
                }
            };
            eprintln!("sipload uas listening on {}", gw.addr());
            let began = Instant::now();
            let end = duration.map(|s| began + Duration::from_secs(s));
            let mut seen = 0;
            while end.is_none_or(|e| Instant::now() < e) {
                std::thread::sleep(Duration::from_millis(200));
                let received = gw.received();
                for d in received.iter().skip(seen) {
                    println!("{:10.3} {} {}", d.secs_since(began), d.peer, d.first_line());
                }
                seen = received.len();
            }
            ExitCode::SUCCESS
        }
        Cmd::Uac {
            proxy,
            ruri,
            calls,
            rate,
            hold_ms,
            timeout_ms,
        } => {
            let cfg = LoadConfig {
                call_timeout: Duration::from_millis(timeout_ms),
                hold: Duration::from_millis(hold_ms),
                ..LoadConfig::new(proxy, &ruri, calls, rate)
            };
            match run_load(&cfg) {
                Ok(report) => {
                    print!("{report}");
                    if report.all_ok() {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    }
                }
                Err(e) => {
                    eprintln!("sipload uac: {e}");
                    ExitCode::from(2)
                }
            }
        }
    }
}
