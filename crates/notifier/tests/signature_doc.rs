//! docs/api.md's example of verifying a webhook signature (Python), run against what `signature`
//! signs: a receiver who copies it accepts a delivery as sent and refuses a changed body, another
//! secret or a stale time; and the example's worked value is the HMAC this crate computes.

use std::process::Command;

use notifier::signature;

const API_DOC: &str = include_str!("../../../docs/api.md");

/// The `python` block of the "Webhooks" section.
fn example() -> &'static str {
    let section = &API_DOC[API_DOC.find("\n## Webhooks").expect("a Webhooks section")..];
    let start = section.find("```python\n").expect("a python example") + "```python\n".len();
    let end = section[start..].find("```").expect("the example ends");
    &section[start..start + end]
}

#[test]
fn the_worked_value_in_the_example_is_what_a_delivery_carries() {
    let line = example()
        .lines()
        .find(|line| line.contains("=="))
        .expect("a worked value");
    let expected = line.split('"').nth(1).expect("the worked value in quotes");
    assert_eq!(
        signature::sign("whsec_test", 1_700_000_000, b"{}"),
        format!("t=1700000000,v1={expected}")
    );
}

#[test]
fn the_example_accepts_a_signed_delivery_and_refuses_a_changed_one() {
    let secret = signature::new_secret();
    let body = r#"{"id":"e1","type":"reservation.confirmed","status":"confirmed","position":4711}"#;
    let now = chrono::Utc::now().timestamp();
    let header = signature::sign(&secret, now, body.as_bytes());
    let stale = signature::sign(&secret, now - 3_600, body.as_bytes());
    let driver = r#"
import sys
secret, header, stale, body = sys.argv[1:5]
print(verify(secret, header, body.encode()),
      verify(secret, header, body.replace("confirmed", "cancelled").encode()),
      verify("whsec_other", header, body.encode()),
      verify(secret, stale, body.encode()))
"#;
    let output = Command::new("python3")
        .arg("-c")
        .arg(format!("{}{driver}", example()))
        .args([&secret, &header, &stale, body])
        .output()
        .expect("python3 runs (CI installs it)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "True False False False"
    );
}
