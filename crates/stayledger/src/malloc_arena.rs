//! One glibc malloc arena for the process. SQLite is the only user of the C heap (Rust allocates
//! through mimalloc), and it runs on many threads. glibc gave those threads arenas of their own:
//! under B2's load, six arenas held 48 MiB resident for SQLite's 24 MiB budget. With one arena, B7
//! under B2 peaked at 121-125 MiB instead of 143-150, and B2, B3 and B3 `pay_first` ran at the
//! same speed within the machine's noise (docs/benchmarks.md, 2026-12-06, eighth session;
//! decision 0040).
//!
//! glibc reads the setting (`MALLOC_ARENA_MAX`) from the environment once, at start, and the
//! project allows no `unsafe` code for `mallopt`. So a process started without it runs itself again
//! with it set (`exec`): the same process id, arguments, environment and open files, before
//! anything else has happened. An operator's own `MALLOC_ARENA_MAX` is kept as it is.

/// The variable and the value the process runs with.
pub const VARIABLE: &str = "MALLOC_ARENA_MAX";
pub const ARENAS: &str = "1";

/// Run this program again with [`VARIABLE`] set, unless it is set already. Returns only if it is
/// set already, or if the program could not run itself again (the reason is printed; it then goes
/// on with glibc's default arenas).
pub fn run_with_one_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::process::CommandExt;
        if std::env::var_os(VARIABLE).is_some() {
            return;
        }
        let exe = match std::env::current_exe() {
            Ok(exe) => exe,
            Err(e) => {
                eprintln!("stayledger: could not find its own executable to set {VARIABLE}: {e}");
                return;
            }
        };
        let mut args = std::env::args_os();
        let mut command = std::process::Command::new(exe);
        if let Some(arg0) = args.next() {
            command.arg0(arg0);
        }
        let error = command.args(args).env(VARIABLE, ARENAS).exec();
        eprintln!("stayledger: could not run itself again with {VARIABLE}={ARENAS}: {error}");
    }
}
