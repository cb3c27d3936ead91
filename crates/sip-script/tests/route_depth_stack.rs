//! Kamailio's 256 route nesting levels must fit a worker's stack. Workers run the script on
//! their main thread (8 MiB by default); this checks a debug build needs less than half of
//! that for a route whose body nests `if`/`switch`/`while` blocks around the `route()` call
//! (measured: about 10 KiB per level in debug, so ~2.5 MiB). Its own test binary: a stack
//! overflow aborts the whole process.

mod common;

use common::*;
use sip_script::Outcome;

#[test]
fn kamailio_route_nesting_limit_fits_half_a_worker_stack_in_debug() {
    let text = "route[R] {\n  if (1) { if ($var(d) >= 0) { switch ($var(x)) { default:\n    \
                while (1) { $var(d) = $var(d) + 1; if (route(R) && 1) { $var(z) = 1; } break; }\n  \
                } } }\n}\nrequest_route { route(R); note(\"d=$var(d)\"); }";
    let notes = std::thread::Builder::new()
        .stack_size(4 << 20)
        .spawn(move || {
            let (r, host) = run(text);
            assert!(matches!(r.outcome, Outcome::Exit { .. }), "{:?}", r.outcome);
            logs(&host)
        })
        .expect("spawn")
        .join()
        .expect("run finished");
    // 255 nested route bodies ran (the top block is level 1); the 256th call was refused.
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(notes[0].contains("too many recursive routing table lookups"));
    assert_eq!(notes[1], "d=255");
}
