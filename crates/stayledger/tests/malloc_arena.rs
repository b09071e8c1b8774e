//! `stayledger` runs with SQLite's allocations in one glibc arena
//! (`stayledger::malloc_arena`): started without `MALLOC_ARENA_MAX`, a process runs itself again
//! with it set, keeping its process id; an operator's own value is left as it is.

#[path = "common/process.rs"]
mod process;

use process::Process;

/// The environment of a running process, as the kernel has it.
fn environment_of(pid: u32) -> Vec<String> {
    let raw = std::fs::read(format!("/proc/{pid}/environ")).expect("environ");
    raw.split(|b| *b == 0)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_runs_with_one_malloc_arena_and_keeps_its_id() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().to_str().expect("utf-8");
    let sandbox = Process::sandbox(data).await;
    // The id the test spawned is the one serving: the new image replaced the old in place.
    let environment = environment_of(sandbox.pid());
    assert!(
        environment.iter().any(|v| v == "MALLOC_ARENA_MAX=1"),
        "{environment:?}"
    );
    sandbox.api();
    sandbox.stop().await;
}
