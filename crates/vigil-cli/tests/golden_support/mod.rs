//! Golden-file support for `tests/golden.rs`: an order-preserving JSON
//! tree, a redaction step that checks the format of every volatile value
//! before it replaces it, a pretty printer, and a comparison that names the
//! first differing value.
//!
//! Order matters because clients diff the output: serde_json's `Value`
//! sorts object keys (the `preserve_order` feature would change that for
//! the whole workspace through feature unification), so this module parses
//! the raw text itself, keeping keys in the order they were emitted and
//! numbers as the exact text emitted.
//!
//! Redaction works on tokens inside every string, so a time, digest, id or
//! port embedded in a `detail` sentence is handled like a whole value:
//! - `YYYY-MM-DDTHH:MM:SSZ` (RFC 3339, UTC, whole seconds, as emitted
//!   today) becomes `<rfc3339>`;
//! - a word of 16 or more lowercase hex digits becomes `<hex:LEN>`;
//! - `127.0.0.1:PORT` becomes `127.0.0.1:<port>`;
//! - the last path segment of an OCSP GET URL `.../ocsp/NAME/REQUEST`
//!   becomes `<ocsp-request>` when it is the URL-encoded base64 of a DER
//!   SEQUENCE (RFC 6960 Appendix A.1).
//!
//! Anything that does not match its format exactly (a time that gains
//! fractional seconds or an offset, hex that turns uppercase) is left as it
//! is, and so differs from the golden file, which holds the placeholder.
//! Numbers below a key named as timing-dependent become `0` (integers) or
//! `0.0` (floats), keeping their JSON type and integer/float form.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::fmt::Write as _;
use std::path::PathBuf;

/// Set to rewrite the golden files from the current output.
pub const UPDATE_ENV: &str = "VIGIL_UPDATE_GOLDEN";

/// A JSON value with object keys in emitted order and numbers as text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Json {
    Null,
    Bool(bool),
    /// The number's text exactly as emitted.
    Num(String),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    /// The member `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string value, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "boolean",
            Json::Num(_) => "number",
            Json::Str(_) => "string",
            Json::Arr(_) => "array",
            Json::Obj(_) => "object",
        }
    }
}

// ---------------------------------------------------------------- parsing

/// Parses one JSON text (surrounding whitespace allowed), keeping order.
pub fn parse(text: &str) -> Result<Json, String> {
    let mut p = Parser {
        text,
        bytes: text.as_bytes(),
        pos: 0,
    };
    p.ws();
    let value = p.value()?;
    p.ws();
    if p.pos != p.bytes.len() {
        return Err(p.error("trailing characters after the JSON value"));
    }
    Ok(value)
}

/// [`parse`], panicking with the text on failure.
#[track_caller]
pub fn parse_or_panic(text: &str, what: &str) -> Json {
    parse(text).unwrap_or_else(|e| panic!("{what} is not one JSON value ({e}): {text:?}"))
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn error(&self, what: &str) -> String {
        format!("{what} at byte {}", self.pos)
    }

    fn ws(&mut self) {
        while matches!(self.bytes.get(self.pos), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Result<(), String> {
        if self.bytes.get(self.pos) == Some(&byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(&format!("expected {:?}", byte as char)))
        }
    }

    fn literal(&mut self, word: &str, value: Json) -> Result<Json, String> {
        if self.text[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(self.error("unexpected literal"))
        }
    }

    fn value(&mut self) -> Result<Json, String> {
        match self.bytes.get(self.pos) {
            Some(b'{') => self.object(),
            Some(b'[') => self.array(),
            Some(b'"') => self.string().map(Json::Str),
            Some(b't') => self.literal("true", Json::Bool(true)),
            Some(b'f') => self.literal("false", Json::Bool(false)),
            Some(b'n') => self.literal("null", Json::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(self.error("expected a JSON value")),
        }
    }

    fn object(&mut self) -> Result<Json, String> {
        self.expect(b'{')?;
        let mut members = Vec::new();
        self.ws();
        if self.bytes.get(self.pos) == Some(&b'}') {
            self.pos += 1;
            return Ok(Json::Obj(members));
        }
        loop {
            self.ws();
            let key = self.string()?;
            if members.iter().any(|(k, _)| *k == key) {
                return Err(self.error(&format!("duplicate key {key:?}")));
            }
            self.ws();
            self.expect(b':')?;
            self.ws();
            let value = self.value()?;
            members.push((key, value));
            self.ws();
            match self.bytes.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Json::Obj(members));
                }
                _ => return Err(self.error("expected ',' or '}'")),
            }
        }
    }

    fn array(&mut self) -> Result<Json, String> {
        self.expect(b'[')?;
        let mut items = Vec::new();
        self.ws();
        if self.bytes.get(self.pos) == Some(&b']') {
            self.pos += 1;
            return Ok(Json::Arr(items));
        }
        loop {
            self.ws();
            items.push(self.value()?);
            self.ws();
            match self.bytes.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Json::Arr(items));
                }
                _ => return Err(self.error("expected ',' or ']'")),
            }
        }
    }

    /// A string token; its escapes are decoded by serde_json.
    fn string(&mut self) -> Result<String, String> {
        let start = self.pos;
        self.expect(b'"')?;
        loop {
            match self.bytes.get(self.pos) {
                Some(b'\\') => self.pos += 2,
                Some(b'"') => {
                    self.pos += 1;
                    break;
                }
                Some(_) => self.pos += 1,
                None => return Err(self.error("unterminated string")),
            }
        }
        serde_json::from_str(&self.text[start..self.pos]).map_err(|e| self.error(&e.to_string()))
    }

    /// A number token, kept as its text after serde_json accepts it.
    fn number(&mut self) -> Result<Json, String> {
        let start = self.pos;
        while matches!(
            self.bytes.get(self.pos),
            Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
        ) {
            self.pos += 1;
        }
        let text = &self.text[start..self.pos];
        serde_json::from_str::<serde_json::Number>(text)
            .map_err(|e| self.error(&format!("bad number {text:?}: {e}")))?;
        Ok(Json::Num(text.to_owned()))
    }
}

// -------------------------------------------------------------- redaction

/// Redacts `value`: every string token by format (see the module comment),
/// and every number below an object key named in `timing_keys` to zero.
pub fn redact(value: &Json, timing_keys: &[&str]) -> Json {
    redact_in(value, timing_keys, false)
}

fn redact_in(value: &Json, timing_keys: &[&str], timing: bool) -> Json {
    match value {
        Json::Num(n) if timing => {
            assert!(
                !n.starts_with('-'),
                "a timing-dependent number is negative: {n}"
            );
            let float = n.contains(['.', 'e', 'E']);
            Json::Num(if float { "0.0" } else { "0" }.to_owned())
        }
        Json::Str(s) => Json::Str(redact_text(s)),
        Json::Arr(items) => Json::Arr(
            items
                .iter()
                .map(|v| redact_in(v, timing_keys, timing))
                .collect(),
        ),
        Json::Obj(members) => Json::Obj(
            members
                .iter()
                .map(|(k, v)| {
                    let timing = timing || timing_keys.contains(&k.as_str());
                    (k.clone(), redact_in(v, timing_keys, timing))
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Replaces the volatile tokens of one string (see the module comment).
pub fn redact_text(s: &str) -> String {
    const LOOPBACK: &str = "127.0.0.1:";
    let s = &redact_ocsp_requests(s);
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < bytes.len() {
        let at_boundary = i == 0 || !is_word(bytes[i - 1]);
        if at_boundary && is_rfc3339_at(bytes, i) {
            out.push_str("<rfc3339>");
            i += 20;
            continue;
        }
        if at_boundary && s[i..].starts_with(LOOPBACK) {
            let digits = bytes[i + LOOPBACK.len()..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            let end = i + LOOPBACK.len() + digits;
            if digits > 0 && bytes.get(end).is_none_or(|b| !is_word(*b)) {
                out.push_str("127.0.0.1:<port>");
                i = end;
                continue;
            }
        }
        if at_boundary && is_word(bytes[i]) {
            let len = bytes[i..].iter().take_while(|b| is_word(**b)).count();
            let word = &s[i..i + len];
            if len >= 16 && word.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                let _ = write!(out, "<hex:{len}>");
            } else {
                out.push_str(word);
            }
            i += len;
            continue;
        }
        // Copy one character (which may be several bytes).
        let ch = s[i..].chars().next().unwrap();
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// Replaces `REQUEST` in `/ocsp/NAME/REQUEST` when it decodes (percent,
/// then base64) to DER that starts with a SEQUENCE tag.
fn redact_ocsp_requests(s: &str) -> String {
    const MARK: &str = "/ocsp/";
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find(MARK) {
        let (head, tail) = rest.split_at(at + MARK.len());
        out.push_str(head);
        let name_len = tail
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            .count();
        let after_name = &tail[name_len..];
        let Some(segment_text) = after_name.strip_prefix('/') else {
            rest = tail;
            continue;
        };
        let len = segment_text
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'%')
            .count();
        let segment = &segment_text[..len];
        if name_len > 0 && is_ocsp_get_request(segment) {
            out.push_str(&tail[..name_len]);
            out.push_str("/<ocsp-request>");
            rest = &segment_text[len..];
        } else {
            rest = tail;
        }
    }
    out.push_str(rest);
    out
}

fn is_ocsp_get_request(segment: &str) -> bool {
    use base64::Engine as _;
    let decoded = segment
        .replace("%2B", "+")
        .replace("%2F", "/")
        .replace("%3D", "=");
    !decoded.contains('%')
        && base64::engine::general_purpose::STANDARD
            .decode(decoded)
            .is_ok_and(|der| der.first() == Some(&0x30))
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// `YYYY-MM-DDTHH:MM:SSZ` at `i`, not followed by a word character.
fn is_rfc3339_at(bytes: &[u8], i: usize) -> bool {
    const SHAPE: &[u8; 20] = b"dddd-dd-ddTdd:dd:ddZ";
    let Some(candidate) = bytes.get(i..i + 20) else {
        return false;
    };
    let shaped = candidate.iter().zip(SHAPE).all(|(b, s)| match s {
        b'd' => b.is_ascii_digit(),
        other => b == other,
    });
    shaped && bytes.get(i + 20).is_none_or(|b| !is_word(*b))
}

// --------------------------------------------------------------- printing

/// Pretty-printed JSON, two spaces per level, keys in the tree's order.
pub fn pretty(value: &Json) -> String {
    let mut out = String::new();
    write_pretty(value, 0, &mut out);
    out.push('\n');
    out
}

fn write_pretty(value: &Json, depth: usize, out: &mut String) {
    let indent = |out: &mut String, depth: usize| out.push_str(&"  ".repeat(depth));
    match value {
        Json::Null => out.push_str("null"),
        Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Json::Num(n) => out.push_str(n),
        Json::Str(s) => out.push_str(&quote(s)),
        Json::Arr(items) if items.is_empty() => out.push_str("[]"),
        Json::Obj(members) if members.is_empty() => out.push_str("{}"),
        Json::Arr(items) => {
            out.push_str("[\n");
            for (n, item) in items.iter().enumerate() {
                indent(out, depth + 1);
                write_pretty(item, depth + 1, out);
                out.push_str(if n + 1 < items.len() { ",\n" } else { "\n" });
            }
            indent(out, depth);
            out.push(']');
        }
        Json::Obj(members) => {
            out.push_str("{\n");
            for (n, (key, item)) in members.iter().enumerate() {
                indent(out, depth + 1);
                out.push_str(&quote(key));
                out.push_str(": ");
                write_pretty(item, depth + 1, out);
                out.push_str(if n + 1 < members.len() { ",\n" } else { "\n" });
            }
            indent(out, depth);
            out.push('}');
        }
    }
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// One line of JSON, keys in the tree's order (for messages).
pub fn compact(value: &Json) -> String {
    match value {
        Json::Null | Json::Bool(_) | Json::Num(_) | Json::Str(_) => {
            let mut out = String::new();
            write_pretty(value, 0, &mut out);
            out
        }
        Json::Arr(items) => {
            let inner: Vec<String> = items.iter().map(compact).collect();
            format!("[{}]", inner.join(","))
        }
        Json::Obj(members) => {
            let inner: Vec<String> = members
                .iter()
                .map(|(k, v)| format!("{}:{}", quote(k), compact(v)))
                .collect();
            format!("{{{}}}", inner.join(","))
        }
    }
}

// -------------------------------------------------------------- comparing

/// The first difference between `expected` and `actual`, as a sentence
/// naming its path (`$.chain[0].serial`); `None` when they are equal,
/// key order included.
pub fn first_difference(expected: &Json, actual: &Json) -> Option<String> {
    diff_at("$", expected, actual)
}

fn diff_at(path: &str, expected: &Json, actual: &Json) -> Option<String> {
    match (expected, actual) {
        (Json::Arr(e), Json::Arr(a)) => {
            for (n, (ev, av)) in e.iter().zip(a).enumerate() {
                if let Some(d) = diff_at(&format!("{path}[{n}]"), ev, av) {
                    return Some(d);
                }
            }
            (e.len() != a.len()).then(|| {
                format!(
                    "{path}: expected {} items, got {}\n  expected: {}\n  actual:   {}",
                    e.len(),
                    a.len(),
                    compact(expected),
                    compact(actual)
                )
            })
        }
        (Json::Obj(e), Json::Obj(a)) => {
            let ekeys: Vec<&str> = e.iter().map(|(k, _)| k.as_str()).collect();
            let akeys: Vec<&str> = a.iter().map(|(k, _)| k.as_str()).collect();
            if ekeys != akeys {
                return Some(format!(
                    "{path}: keys (in order) differ\n  expected: {ekeys:?}\n  actual:   {akeys:?}"
                ));
            }
            e.iter()
                .zip(a)
                .find_map(|((k, ev), (_, av))| diff_at(&format!("{path}.{k}"), ev, av))
        }
        _ if expected == actual => None,
        _ => Some(format!(
            "{path}: expected {} {}, got {} {}",
            expected.kind(),
            compact(expected),
            actual.kind(),
            compact(actual)
        )),
    }
}

// ----------------------------------------------------------- golden files

/// `tests/golden/NAME.json` of this crate.
pub fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("golden")
        .join(format!("{name}.json"))
}

/// Compares `actual` (already redacted) with the golden file `name`, or
/// rewrites the file when `VIGIL_UPDATE_GOLDEN` is set.
#[track_caller]
pub fn assert_golden(name: &str, actual: &Json) {
    let path = golden_path(name);
    let text = pretty(actual);
    if std::env::var_os(UPDATE_ENV).is_some_and(|v| !v.is_empty()) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let stored = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "golden file {} unreadable ({e}); create it with {UPDATE_ENV}=1 and review it",
            path.display()
        )
    });
    let expected = parse(&stored)
        .unwrap_or_else(|e| panic!("golden file {} is not JSON: {e}", path.display()));
    if let Some(difference) = first_difference(&expected, actual) {
        panic!(
            "output differs from golden file {}:\n{difference}\n\
             If the change is intended (contract changes only by extension), \
             rerun with {UPDATE_ENV}=1 and review the diff.\nfull actual output:\n{text}",
            path.display()
        );
    }
}

/// Parses raw output, redacts it and compares it with golden file `name`.
#[track_caller]
pub fn assert_golden_text(name: &str, raw: &str, timing_keys: &[&str]) {
    let parsed = parse_or_panic(raw, name);
    assert_golden(name, &redact(&parsed, timing_keys));
}

// ------------------------------------------------------------------ tests
// Self-checks of the helpers, so a bug here cannot make every golden test
// pass vacuously.

/// Runs the helper self-checks (called by one test of `golden.rs`).
pub fn self_check() {
    // Order and number text survive a round trip.
    let raw = r#"{"b":1,"a":[1.0,true,null,"x\"y"],"c":{}}"#;
    let v = parse(raw).unwrap();
    assert_eq!(compact(&v), raw);
    assert_eq!(parse(&pretty(&v)).unwrap(), v);
    assert!(parse(r#"{"a":1,"a":2}"#).is_err());
    assert!(parse(r#"{"a":1} x"#).is_err());

    // Key order is a difference.
    let swapped = parse(r#"{"a":[1.0,true,null,"x\"y"],"b":1,"c":{}}"#).unwrap();
    let d = first_difference(&v, &swapped).unwrap();
    assert!(d.contains("keys (in order) differ"), "{d}");
    // A scalar difference names its path.
    let other = parse(r#"{"b":1,"a":[1,true,null,"x\"y"],"c":{}}"#).unwrap();
    let d = first_difference(&v, &other).unwrap();
    assert!(
        d.starts_with("$.a[0]: expected number 1.0, got number 1"),
        "{d}"
    );

    // Formats are checked before a value is replaced.
    for (input, output) in [
        ("2026-01-15T12:00:00Z", "<rfc3339>"),
        ("2026-01-15T12:00:00.5Z", "2026-01-15T12:00:00.5Z"),
        ("2026-01-15T12:00:00+00:00", "2026-01-15T12:00:00+00:00"),
        ("at 2026-01-15T12:00:00Z (x)", "at <rfc3339> (x)"),
        ("59e6da430fe385ef8bbc37e5cc3fad3f", "<hex:32>"),
        (
            "59E6DA430FE385EF8BBC37E5CC3FAD3F",
            "59E6DA430FE385EF8BBC37E5CC3FAD3F",
        ),
        ("(serial 59e6da430fe385ef)", "(serial <hex:16>)"),
        ("0123456789abcde", "0123456789abcde"),
        (
            "http://127.0.0.1:41234/crl/x.crl",
            "http://127.0.0.1:<port>/crl/x.crl",
        ),
        ("naïve 2026-01-15T12:00:00Z", "naïve <rfc3339>"),
        (
            "http://127.0.0.1:9/ocsp/intermediate/MAMCAQE%3D: x",
            "http://127.0.0.1:<port>/ocsp/intermediate/<ocsp-request>: x",
        ),
        (
            "/ocsp/intermediate/MAMCAQE%3d",
            "/ocsp/intermediate/MAMCAQE%3d",
        ),
        ("/ocsp/intermediate#00ab", "/ocsp/intermediate#00ab"),
    ] {
        assert_eq!(redact_text(input), output, "{input}");
    }
    let timed = parse(r#"{"ms":{"p50":20.9,"n":[3]},"count":4}"#).unwrap();
    assert_eq!(
        compact(&redact(&timed, &["ms"])),
        r#"{"ms":{"p50":0.0,"n":[0]},"count":4}"#
    );
}
