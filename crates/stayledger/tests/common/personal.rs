//! Personal data in tests: recording a profile, and looking for plaintext in a data dir's files.
//! Include with `#[path = "common/personal.rs"] mod personal;` beside `mod common;`.
#![allow(dead_code)]

use std::path::Path;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::common::TestPlatform;

/// `PUT /me/profile` as the customer of `token`.
pub async fn put_profile(t: &TestPlatform, token: &str, body: Value) -> (StatusCode, Value) {
    t.call(Method::PUT, "/me/profile", Some(token), Some(body))
        .await
}

/// The files directly in `dir` (the log, its WAL, the views, the keys) that hold `needle`.
pub fn files_holding(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).expect("data dir") {
        let path = entry.expect("entry").path();
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        if bytes.windows(needle.len()).any(|w| w == needle) {
            found.push(path.display().to_string());
        }
    }
    found
}
