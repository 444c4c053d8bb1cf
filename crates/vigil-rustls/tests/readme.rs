//! The README's vigil-rustls example is `examples/live_connections.rs`,
//! byte for byte: the example is compiled (and run, as the crate's
//! front-page doctest) with the tests, so the README cannot drift from code
//! that works.
#![allow(clippy::unwrap_used, missing_docs)]

const README: &str = include_str!("../../../README.md");
const EXAMPLE: &str = include_str!("../examples/live_connections.rs");

/// The body of the first ```rust block after `heading`.
fn rust_block_after(text: &str, heading: &str) -> Option<String> {
    let section = &text[text.find(heading)?..];
    let start = section.find("\n```rust\n")? + "\n```rust\n".len();
    let end = section[start..].find("\n```\n")?;
    Some(format!("{}\n", &section[start..start + end]))
}

#[test]
fn the_readme_live_connections_example_is_the_compiled_example() {
    let block = rust_block_after(README, "## Live connections: `vigil-rustls`")
        .expect("README has a ```rust block under \"## Live connections\"");
    assert!(
        block == EXAMPLE,
        "README.md's vigil-rustls example differs from \
         crates/vigil-rustls/examples/live_connections.rs; copy the example into the README"
    );
}

#[test]
fn every_rust_block_of_the_readme_is_compiled_code() {
    // `ignore`d or untagged-but-Rust blocks would not be checked by anything.
    for line in README.lines() {
        let fence = line.trim_start();
        if let Some(info) = fence.strip_prefix("```") {
            assert!(
                !info.starts_with("rust") || info == "rust",
                "README block ```{info} is not compiled: make it ```rust and tie it to a test"
            );
        }
    }
    let rust_blocks = README.lines().filter(|l| l.trim() == "```rust").count();
    assert_eq!(
        rust_blocks, 1,
        "each ```rust block of the README needs a test tying it to compiled code"
    );
}
