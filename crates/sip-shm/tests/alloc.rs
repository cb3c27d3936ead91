//! Allocator behaviour, run against both the `MAP_SHARED` region and the heap twin.

use sip_shm::{MAX_SMALL_BLOCK, Region, ShmError, ShmOff, shm_struct};
use std::sync::atomic::AtomicU64;

const REGION: usize = 1 << 20;

fn both(test: impl Fn(&Region)) {
    test(&Region::shared(REGION).expect("shared region"));
    test(&Region::heap(REGION).expect("heap region"));
}

/// Allocates `len`-byte blocks until the allocator says Exhausted; returns the offsets.
fn fill(region: &Region, len: usize) -> Vec<ShmOff<u8>> {
    let mut offs = Vec::new();
    loop {
        match region.alloc(len) {
            Ok(off) => offs.push(off),
            Err(ShmError::Exhausted { requested, .. }) => {
                assert_eq!(requested, len);
                return offs;
            }
            Err(e) => panic!("unexpected error {e}"),
        }
    }
}

/// Writes a per-block pattern into every block, then checks all of them: overlapping
/// blocks would overwrite each other's pattern.
fn assert_disjoint(region: &Region, offs: &[ShmOff<u8>], len: usize) {
    for (i, off) in offs.iter().enumerate() {
        region.bytes(*off, len).unwrap().fill(i as u8);
    }
    for (i, off) in offs.iter().enumerate() {
        let v = region.bytes(*off, len).unwrap().to_vec();
        assert!(
            v.iter().all(|&b| b == i as u8),
            "block {i} at {off:?} was overwritten"
        );
    }
}

#[test]
fn exhaustion_is_an_error_and_freed_capacity_is_reused() {
    both(|region| {
        for len in [16usize, 200, 4000, 100_000] {
            let first = fill(region, len);
            assert!(!first.is_empty(), "nothing allocated for {len}");
            assert_disjoint(region, &first, len);
            for off in &first {
                region.free(*off).unwrap();
            }
            assert_eq!(region.stats().used, 0, "everything freed for {len}");
            let second = fill(region, len);
            assert_eq!(
                second.len(),
                first.len(),
                "capacity for {len}-byte blocks changed"
            );
            for off in &second {
                region.free(*off).unwrap();
            }
        }
    });
}

#[test]
fn mixed_sizes_freed_in_any_order_are_reused() {
    both(|region| {
        let sizes = [10usize, 100, 1000, 5000, 70_000, 200, 33, 2047];
        let run = |region: &Region| {
            let mut offs = Vec::new();
            for len in sizes.iter().cycle() {
                match region.alloc(*len) {
                    Ok(off) => offs.push((off, *len)),
                    Err(ShmError::Exhausted { .. }) => break,
                    Err(e) => panic!("unexpected error {e}"),
                }
            }
            offs
        };
        let first = run(region);
        assert!(first.len() > sizes.len());
        for (i, (off, len)) in first.iter().enumerate() {
            region.bytes(*off, *len).unwrap().fill(i as u8);
        }
        for (i, (off, len)) in first.iter().enumerate() {
            assert!(
                region
                    .bytes(*off, *len)
                    .unwrap()
                    .to_vec()
                    .iter()
                    .all(|&b| b == i as u8)
            );
        }
        // Free odd indices first, then even ones, so neighbours are freed apart.
        for (off, _) in first
            .iter()
            .skip(1)
            .step_by(2)
            .chain(first.iter().step_by(2))
        {
            region.free(*off).unwrap();
        }
        assert_eq!(region.stats().used, 0);
        let second = run(region);
        assert!(
            second.len() >= first.len(),
            "{} < {}",
            second.len(),
            first.len()
        );
    });
}

#[test]
fn freed_big_blocks_are_split_for_small_requests() {
    both(|region| {
        let big = fill(region, 4080); // 4096-byte class
        for off in &big {
            region.free(*off).unwrap();
        }
        let small = fill(region, 16); // 32-byte class: 128 per big block
        assert!(
            small.len() >= big.len() * 128,
            "{} small from {} big",
            small.len(),
            big.len()
        );
        assert_disjoint(region, &small, 16);
    });
}

#[test]
fn freed_large_blocks_serve_smaller_large_and_small_requests() {
    both(|region| {
        let large = fill(region, 200_000);
        assert!(large.len() >= 3);
        // Free one in the middle: it is not next to the bump range, so it goes on the list.
        region.free(large[1]).unwrap();
        let a = region
            .alloc(90_000)
            .expect("first fit from the freed large block");
        let b = region
            .alloc(1000)
            .expect("small carved from the large remainder");
        assert_disjoint(region, &[a], 90_000);
        assert!(region.block_capacity(a).unwrap() >= 90_000);
        assert!(region.block_capacity(b).unwrap() >= 1000);
        assert!(region.alloc(200_000).is_err(), "no room for another 200k");
    });
}

#[test]
fn double_free_and_foreign_offsets_are_rejected() {
    both(|region| {
        let off = region.alloc(100).unwrap();
        region.bytes(off, 100).unwrap().fill(0);
        assert_eq!(
            region.free(ShmOff::<u8>::from_raw(off.raw() + 16)),
            Err(ShmError::NotABlock {
                off: off.raw() + 16
            })
        );
        assert_eq!(
            region.free(ShmOff::<u8>::from_raw(off.raw() + 3)),
            Err(ShmError::NotABlock { off: off.raw() + 3 })
        );
        assert!(region.free(ShmOff::<u8>::from_raw(0xFFFF_FFF0)).is_err());
        assert!(region.free(ShmOff::<u8>::NULL).is_err());
        region.free(off).unwrap();
        assert_eq!(
            region.free(off),
            Err(ShmError::DoubleFree { off: off.raw() })
        );
        let large = region.alloc(MAX_SMALL_BLOCK as usize * 2).unwrap();
        region.free(large).unwrap();
        assert!(region.free(large).is_err());
    });
}

shm_struct! {
    #[repr(align(64))]
    struct Row {
        hits: AtomicU64,
        misses: u64,
    }
}

#[test]
fn over_aligned_arrays_are_aligned_and_freeable_once() {
    both(|region| {
        let mut offs = Vec::new();
        for n in [1usize, 3, 100] {
            let off = region.alloc_array::<Row>(n).unwrap();
            assert_eq!(off.raw() % 64, 0);
            let rows = region.get_slice(off, n).unwrap();
            assert!(rows.iter().all(|r| r.misses == 0));
            offs.push(off);
        }
        for off in offs {
            region.free(off).unwrap();
            assert!(region.free(off).is_err(), "second free of {off:?} accepted");
        }
        assert_eq!(region.stats().used, 0);
    });
}

#[test]
fn stats_track_use_and_peak() {
    both(|region| {
        let before = region.stats();
        assert_eq!(before.total, REGION as u64);
        assert_eq!(before.used, 0);
        assert_eq!(before.free + before.real_used, before.total);
        let offs: Vec<_> = (0..10).map(|_| region.alloc(1000).unwrap()).collect();
        let during = region.stats();
        assert_eq!(during.used, 10 * (1024 - 16));
        assert_eq!(during.real_used, before.real_used + 10 * 1024);
        for off in offs {
            region.free(off).unwrap();
        }
        let after = region.stats();
        assert_eq!(after.used, 0);
        assert!(after.max_used >= during.real_used);
        assert_eq!(after.free + after.real_used, after.total);
    });
}

#[test]
fn typed_access_checks_bounds_and_alignment() {
    both(|region| {
        assert!(matches!(
            region.get(ShmOff::<u64>::NULL),
            Err(ShmError::OutOfBounds { .. })
        ));
        let off = region.alloc_value::<u64>().unwrap();
        assert_eq!(*region.get(off).unwrap(), 0);
        assert!(matches!(
            region.get(ShmOff::<u64>::from_raw(off.raw() + 4)),
            Err(ShmError::Misaligned { .. })
        ));
        assert!(matches!(
            region.get(ShmOff::<u64>::from_raw(REGION as u32 - 4)),
            Err(ShmError::OutOfBounds { .. })
        ));
        assert!(region.bytes(off.cast(), REGION).is_err());
        let v = region
            .alloc_with::<[u32; 4]>(|a| *a = [1, 2, 3, 4])
            .unwrap();
        assert_eq!(*region.get(v).unwrap(), [1, 2, 3, 4]);
        assert!(matches!(
            region.alloc(usize::MAX),
            Err(ShmError::Exhausted { .. })
        ));
        assert!(matches!(
            region.alloc(REGION),
            Err(ShmError::Exhausted { .. })
        ));
        assert!(region.alloc_array::<u64>(usize::MAX / 4).is_err());
        assert!(region.alloc_array::<Row>(usize::MAX / 64).is_err());
    });
}

#[test]
fn byte_buffers_round_trip_at_any_offset() {
    both(|region| {
        let msg = b"INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1\r\n\r\n";
        let off = region.alloc_bytes(msg).unwrap();
        let view = region.bytes(off, msg.len()).unwrap();
        assert!(view.eq_slice(msg));
        assert_eq!(view.to_vec(), msg.to_vec());
        let sub = view.slice(3, 20).unwrap();
        assert_eq!(sub.to_vec(), msg[3..23].to_vec());
        sub.write_from(b"abcdefghijklmnopqrstuvwxyz");
        let mut out = vec![0u8; msg.len()];
        assert_eq!(view.read_into(&mut out), msg.len());
        assert_eq!(&out[3..23], b"abcdefghijklmnopqrst");
        assert_eq!(&out[..3], &msg[..3]);
        assert_eq!(&out[23..], &msg[23..]);
        assert!(view.slice(60, 100).is_none());
    });
}

#[test]
fn region_size_limits_and_directory() {
    assert!(matches!(
        Region::heap(100),
        Err(ShmError::BadRegionSize { .. })
    ));
    assert!(matches!(
        Region::shared(usize::MAX),
        Err(ShmError::BadRegionSize { .. })
    ));
    both(|region| {
        assert!(region.header_valid());
        let slot = sip_shm::DirSlot::TM_TABLE;
        assert_eq!(region.dir::<u64>(slot).unwrap(), None);
        let off = region.alloc_value::<u64>().unwrap();
        region.set_dir(slot, off).unwrap();
        assert_eq!(region.dir::<u64>(slot).unwrap(), Some(off));
        assert!(region.set_dir(sip_shm::DirSlot(200), off).is_err());
    });
}
