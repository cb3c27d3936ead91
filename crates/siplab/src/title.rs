//! Process titles as `ps` shows them (`siplab: udp receiver child=0 sock=127.0.0.1:5060`),
//! like Kamailio. The title is written over this process's own argv area through
//! `/proc/self/mem` (no `unsafe`): `/proc/self/stat` gives the area's bounds, so the title is
//! cut to the length of the original command line.

use std::io::{Seek, SeekFrom, Write};

/// `arg_start` and `arg_end` (fields 48 and 49 of `/proc/self/stat`, see proc(5)).
fn argv_area() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may contain spaces; fields after it start past the last ')'.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3, so field N is at index N - 3.
    let start = fields.get(48 - 3)?.parse().ok()?;
    let end = fields.get(49 - 3)?.parse().ok()?;
    (end > start).then_some((start, end))
}

/// Sets the title shown by `ps` and the 15-byte kernel name shown by `top`.
pub fn set(title: &str) {
    if let Ok(name) = std::ffi::CString::new(
        title
            .trim_start_matches("siplab: ")
            .chars()
            .take(15)
            .collect::<String>(),
    ) {
        let _ = nix::sys::prctl::set_name(&name);
    }
    let Some((start, end)) = argv_area() else {
        return;
    };
    let cap = (end - start) as usize;
    let mut bytes = vec![0u8; cap];
    let n = title.len().min(cap.saturating_sub(1));
    if let (Some(dst), Some(src)) = (bytes.get_mut(..n), title.as_bytes().get(..n)) {
        dst.copy_from_slice(src);
    }
    let Ok(mut mem) = std::fs::OpenOptions::new()
        .write(true)
        .open("/proc/self/mem")
    else {
        return;
    };
    if mem.seek(SeekFrom::Start(start)).is_ok() {
        let _ = mem.write_all(&bytes);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn argv_area_is_found_and_holds_our_command_line() {
        let (start, end) = super::argv_area().expect("/proc/self/stat has arg_start/arg_end");
        let cmdline = std::fs::read("/proc/self/cmdline").expect("cmdline");
        assert_eq!((end - start) as usize, cmdline.len());
    }
}
