//! The README's quickstart, run as written against the real binary: `serve` in a child process, then
//! the README's shell block (tokens, lodging, request, approval) with `cargo run ... --` replaced by
//! this build's binary and the address by the one `serve` printed.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

const README: &str = include_str!("../../../README.md");

struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn quickstart_block() -> String {
    let start = README
        .find("<!-- quickstart:begin")
        .expect("quickstart begin marker");
    let rest = &README[start..];
    let end = rest
        .find("<!-- quickstart:end")
        .expect("quickstart end marker");
    let block = &rest[..end];
    let body_start = block.find("```sh\n").expect("sh block") + "```sh\n".len();
    let body_end = block[body_start..].find("```").expect("block end") + body_start;
    block[body_start..body_end].to_string()
}

#[test]
fn readme_quickstart_works_as_written() {
    let binary = env!("CARGO_BIN_EXE_stayledger");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(binary)
        .args(["serve", "--addr", "127.0.0.1:0"])
        .env("STAYLEDGER_DATA_DIR", dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve starts");
    let stdout = child.stdout.take().expect("stdout");
    let serve = Serve(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("address line");
    let base = line
        .trim()
        .strip_prefix("stayledger listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();

    let script = quickstart_block()
        .replace("cargo run -q --release -p stayledger --", binary)
        .replace("http://127.0.0.1:8080", &base);
    let output = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .env("STAYLEDGER_DATA_DIR", dir.path())
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "quickstart failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains(r#""status":"registered""#),
        "lodging registered: {stdout}"
    );
    assert_eq!(
        stdout.lines().last().map(str::trim),
        Some(r#""confirmed""#),
        "{stdout}"
    );
    drop(serve);
}
