//! Harnesses shared by the whole-flow test files (each file uses a part of them).
#![allow(dead_code)]

pub mod world;
