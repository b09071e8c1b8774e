//! Transparent huge pages off for the process. mimalloc asks for them on its arenas (the kernel's
//! `madvise` mode), and a 2 MiB page stays resident while any 4 KiB of it is in use, so memory freed
//! after a load was never given back (issue 18: B7 under load, 139 -> 92 MiB at the same request
//! count; docs/benchmarks.md). `stayledger` and the benchmark's in-process `serve` both start with it.

/// Ask the kernel for no transparent huge pages in this process (printed if it refuses).
pub fn turn_off() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::thread::disable_transparent_huge_pages(true) {
        eprintln!("stayledger: could not turn off transparent huge pages: {e}");
    }
}
