//! Helpers shared by the end-to-end tests in `tests/` (`mod support;`, or
//! `#[path = "../support/mod.rs"] mod support;` from a `tests/NAME/main.rs`).

#![allow(dead_code, unreachable_pub)]

pub mod mutate;
