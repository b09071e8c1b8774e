//! Who may read a data dir and mint tokens for it: the dir is its owner's alone (0700, every file
//! 0600, SQLite's -wal and -shm included, whatever the umask), and `stayledger token` refuses a data
//! dir with no secret instead of minting tokens no server would take.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{test_config, TestPlatform};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

fn token_command(data_dir: &Path, extra: &[&str]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_stayledger"));
    for (key, _) in std::env::vars() {
        if key.starts_with("STAYLEDGER_") {
            command.env_remove(key);
        }
    }
    command
        .args([
            "token",
            "--role",
            "admin",
            "--sub",
            "root",
            "--lodging",
            "*",
        ])
        .arg("--data-dir")
        .arg(data_dir)
        .args(extra)
        .output()
        .expect("stayledger runs")
}

#[test]
fn token_refuses_a_data_dir_without_a_secret_unless_asked_to_create_one() {
    let parent = tempfile::tempdir().expect("dir");
    let missing = parent.path().join("not-yet");
    let refused = token_command(&missing, &[]);
    assert!(!refused.status.success(), "{refused:?}");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains(&missing.display().to_string()), "{stderr}");
    assert!(refused.stdout.is_empty(), "no token printed");
    assert!(!missing.exists(), "nothing created");
    let created = token_command(&missing, &["--create-secret"]);
    assert!(created.status.success(), "{created:?}");
    assert_eq!(
        String::from_utf8_lossy(&created.stdout).split('.').count(),
        3
    );
    assert_eq!(mode(&missing), 0o700);
    assert_eq!(mode(&missing.join("jwt-secret")), 0o600);
    let again = token_command(&missing, &[]);
    assert!(again.status.success(), "the secret is there now: {again:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_served_data_dir_is_its_owners_alone() {
    let parent = tempfile::tempdir().expect("dir");
    let data_dir = parent.path().join("data");
    let config = test_config(&data_dir);
    let t = TestPlatform::start_in(parent, config).await;
    t.register_lodging("private", 1, "instant").await;
    let (id, _) = t.request("alice", "private", 10, 1).await;
    t.wait_for(&id, "status", "confirmed", Duration::from_secs(15))
        .await;
    assert_eq!(mode(&data_dir), 0o700, "the data dir");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&data_dir).expect("list") {
        let path = entry.expect("entry").path();
        names.push(
            path.file_name()
                .expect("name")
                .to_string_lossy()
                .to_string(),
        );
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
    for expected in [
        "events.db",
        "events.db-wal",
        "sandbox-gateway.db",
        "payment-gateway-key",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
    t.stop().await;
}
