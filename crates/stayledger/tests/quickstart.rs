//! The docs' shell blocks, run as written against the real binary: `serve` in a child process, then
//! the README's quickstart (tokens, lodging, request, approval) and docs/seeds.md's walk through the
//! five seed systems, with `cargo run ... --` replaced by this build's binary, `./data` by the test's
//! data dir and the address by the one `serve` printed.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

const README: &str = include_str!("../../../README.md");
const SEEDS: &str = include_str!("../../../docs/seeds.md");

/// `serve` as a child process, killed when dropped.
struct Serve {
    child: Child,
    base: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `serve` on a free port over `dir`, with `args` added; returns once it printed its address.
fn serve(dir: &Path, args: &[&str]) -> Serve {
    let mut child = Command::new(env!("CARGO_BIN_EXE_stayledger"))
        .args(["serve", "--addr", "127.0.0.1:0"])
        .args(args)
        .env("STAYLEDGER_DATA_DIR", dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("address line");
    let base = line
        .trim()
        .strip_prefix("stayledger listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    Serve { child, base }
}

/// The `sh` blocks of `text`, in order.
fn sh_blocks(text: &str) -> Vec<&str> {
    text.split("```sh\n")
        .skip(1)
        .map(|rest| &rest[..rest.find("```").expect("block end")])
        .collect()
}

/// Run `script` in `bash -euo pipefail` with the data dir in the environment.
fn bash(script: &str, dir: &Path) -> Output {
    Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .env("STAYLEDGER_DATA_DIR", dir)
        .output()
        .expect("bash runs")
}

fn succeeded(what: &str, output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{what} failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn readme_quickstart_works_as_written() {
    let dir = tempfile::tempdir().expect("temp dir");
    let serve = serve(dir.path(), &[]);
    let start = README
        .find("<!-- quickstart:begin")
        .expect("quickstart begin marker");
    let end = README[start..]
        .find("<!-- quickstart:end")
        .expect("quickstart end marker");
    let blocks = sh_blocks(&README[start..start + end]);
    assert_eq!(blocks.len(), 1, "one sh block between the markers");
    let script = blocks[0]
        .replace(
            "cargo run -q --release -p stayledger --",
            env!("CARGO_BIN_EXE_stayledger"),
        )
        .replace("http://127.0.0.1:8080", &serve.base);
    let stdout = succeeded("quickstart", &bash(&script, dir.path()));
    assert!(
        stdout.contains(r#""status":"registered""#),
        "lodging registered: {stdout}"
    );
    assert_eq!(
        stdout.lines().last().map(str::trim),
        Some(r#""confirmed""#),
        "{stdout}"
    );
}

/// docs/seeds.md's blocks in one shell, as a newcomer would paste them (the `serve` line is this
/// test's own child): every call answers without an error and every awaited status is reached.
#[test]
fn the_seed_systems_guide_runs_as_written() {
    let dir = tempfile::tempdir().expect("temp dir");
    let serve = serve(dir.path(), &["--webhook-allow-private"]);
    let data = dir.path().to_str().expect("a UTF-8 temp path");
    let script: String = sh_blocks(SEEDS)
        .iter()
        .flat_map(|block| block.lines())
        .filter(|line| !line.contains("-- serve"))
        .map(|line| {
            line.replace(
                "cargo run --release -q -p stayledger --",
                env!("CARGO_BIN_EXE_stayledger"),
            )
            .replace("./data", data)
            .replace("http://127.0.0.1:8080", &serve.base)
                + "\n"
        })
        .collect();
    assert!(
        script.matches("await ").count() + script.matches("on_desk ").count() >= 12,
        "the guide waits for its statuses: {script}"
    );
    let stdout = succeeded("docs/seeds.md", &bash(&script, dir.path()));
    for expected in [
        "status: confirmed",
        "refund_status: refunded",
        "status: paid",
        "on the desk: ",
        "payout_status: sent",
        r#"{"gross":30000,"fee":4500,"net":25500,"status":"sent"}"#,
        r#""erased":true"#,
        "event: reservation",
    ] {
        assert!(stdout.contains(expected), "{expected:?} in: {stdout}");
    }
}
