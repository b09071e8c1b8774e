//! A command's answer on stdout. A reader that went away (`stayledger verify | head -c 1`) is not a
//! failure of the command: `println!` would panic on the broken pipe, [`line`] ends the output
//! quietly, and [`is_broken_pipe`] lets `main` treat a writer's broken pipe the same way.

use std::io::{ErrorKind, Write};

/// Write `text` and a newline to stdout; a closed reader is not an error.
pub fn line(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Err(e) if e.kind() == ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Whether `error` is, at its root, a write to a reader that went away (also through serde_json).
#[must_use]
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == ErrorKind::BrokenPipe)
            || cause
                .downcast_ref::<serde_json::Error>()
                .and_then(serde_json::Error::io_error_kind)
                == Some(ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_pipe_is_recognised_through_its_wrappers() {
        let pipe = std::io::Error::new(ErrorKind::BrokenPipe, "gone");
        assert!(is_broken_pipe(&anyhow::Error::new(pipe).context("export")));
        let json = serde_json::Error::io(std::io::Error::new(ErrorKind::BrokenPipe, "gone"));
        assert!(is_broken_pipe(&anyhow::Error::new(json)));
        let other = std::io::Error::new(ErrorKind::PermissionDenied, "no");
        assert!(!is_broken_pipe(&anyhow::Error::new(other)));
        assert!(!is_broken_pipe(&anyhow::anyhow!(
            "broken pipe, said in words"
        )));
    }
}
