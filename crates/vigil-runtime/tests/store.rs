//! Store tests on a real sled directory: round trips, the CRL-number rule
//! under concurrency, reopening, corrupt records, and `kill -9` of a writer.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use rand::Rng;
use vigil_runtime::{
    MemoryStore, PutOutcome, RevocationKey, SledStore, SourceKind, SourceRecord, SourceStatus,
    Store, StoreError, StoredFact,
};

fn crl(url: &str, number: u64, body: Vec<u8>) -> SourceRecord {
    let mut r = SourceRecord::new(url, SourceKind::Crl, body, 1_700_000_000);
    r.crl_number = Some(minimal(number));
    r.this_update = Some(1_700_000_000);
    r.next_update = Some(1_700_086_400);
    r.etag = Some("\"abc\"".into());
    r.last_modified = Some("Tue, 14 Nov 2023 22:13:20 GMT".into());
    r
}

fn minimal(n: u64) -> Vec<u8> {
    let bytes = n.to_be_bytes();
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(7);
    bytes[first..].to_vec()
}

fn number(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0, |acc, &b| (acc << 8) | u64::from(b))
}

fn fact(source: &str, expires_at: i64) -> StoredFact {
    StoredFact {
        revoked_at: 1_700_000_000,
        reason: Some(1),
        source: source.into(),
        expires_at,
    }
}

fn key(serial: u64) -> RevocationKey {
    RevocationKey {
        issuer_key: vec![0xab; 32],
        serial: minimal(serial),
    }
}

#[test]
fn sled_round_trip_status_and_remove() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SledStore::open(dir.path()).expect("open");
    assert_eq!(store.get("http://ca.test/a.crl").expect("get"), None);

    let mut a = crl("http://ca.test/a.crl", 7, vec![0x30, 0x03, 1, 2, 3]);
    a.last_error = Some("earlier failure".into());
    a.last_attempt = Some(5);
    a.next_attempt = Some(6);
    assert_eq!(store.put(&a).expect("put"), PutOutcome::Stored);
    let mut o = SourceRecord::new("http://ocsp.test/", SourceKind::Ocsp, vec![0x30, 0x00], 9);
    o.this_update = Some(8);
    assert_eq!(store.put(&o).expect("put"), PutOutcome::Stored);

    assert_eq!(store.get(&a.url).expect("get"), Some(a.clone()));
    assert_eq!(store.get(&o.url).expect("get"), Some(o.clone()));

    let mut metas: Vec<_> = store
        .list()
        .expect("list")
        .into_iter()
        .map(|m| m.expect("decodes"))
        .collect();
    metas.sort_by(|x, y| x.url.cmp(&y.url));
    assert_eq!(metas, vec![a.meta(), o.meta()]);
    assert_eq!(metas[0].body_len, 5);

    let status = SourceStatus {
        last_error: Some("connect refused".into()),
        last_attempt: Some(100),
        next_attempt: Some(160),
    };
    assert!(store.put_status(&a.url, &status).expect("status"));
    assert!(!store
        .put_status("http://never.test/x.crl", &status)
        .expect("status"));
    let got = store.get(&a.url).expect("get").expect("present");
    assert_eq!(got.status(), status);
    assert_eq!(got.body, a.body);
    assert_eq!(got.validators().etag.as_deref(), Some("\"abc\""));

    assert!(store.remove(&a.url).expect("remove"));
    assert!(!store.remove(&a.url).expect("remove"));
    assert_eq!(store.get(&a.url).expect("get"), None);
    assert_eq!(store.list().expect("list").len(), 1);
}

/// The rule shared by every store: CRL numbers never go backwards.
fn refuses_older_crl(store: &dyn Store) {
    let url = "http://ca.test/r.crl";
    assert_eq!(
        store.put(&crl(url, 5, b"five".to_vec())).expect("put"),
        PutOutcome::Stored
    );
    assert_eq!(
        store.put(&crl(url, 4, b"four".to_vec())).expect("put"),
        PutOutcome::RefusedOlder {
            stored: vec![5],
            offered: Some(vec![4]),
        }
    );
    assert_eq!(
        &store.get(url).expect("get").expect("present").body[..],
        b"five"
    );

    // Same number, non-minimal encoding: allowed (a metadata rewrite).
    let mut same = crl(url, 5, b"five".to_vec());
    same.crl_number = Some(vec![0x00, 0x05]);
    same.last_error = Some("x".into());
    assert_eq!(store.put(&same).expect("put"), PutOutcome::Stored);

    // A CRL without a number cannot prove it is newer.
    let mut unnumbered = crl(url, 0, b"none".to_vec());
    unnumbered.crl_number = None;
    assert_eq!(
        store.put(&unnumbered).expect("put"),
        PutOutcome::RefusedOlder {
            stored: vec![0x00, 0x05],
            offered: None,
        }
    );

    // 0x0100 > 0xff: compared as integers, not as byte strings.
    assert_eq!(
        store.put(&crl(url, 0x100, b"256".to_vec())).expect("put"),
        PutOutcome::Stored
    );
    assert!(matches!(
        store.put(&crl(url, 0xff, b"255".to_vec())).expect("put"),
        PutOutcome::RefusedOlder { .. }
    ));
    assert_eq!(
        &store.get(url).expect("get").expect("present").body[..],
        b"256"
    );

    // OCSP answers carry no CRL number and are not constrained.
    let ocsp = "http://ocsp.test/";
    for body in [b"new".to_vec(), b"old".to_vec()] {
        let r = SourceRecord::new(ocsp, SourceKind::Ocsp, body, 1);
        assert_eq!(store.put(&r).expect("put"), PutOutcome::Stored);
    }
}

#[test]
fn sled_refuses_older_crl_number() {
    let dir = tempfile::tempdir().expect("tempdir");
    refuses_older_crl(&SledStore::open(dir.path()).expect("open"));
}

#[test]
fn memory_store_refuses_older_crl_number() {
    refuses_older_crl(&MemoryStore::new());
}

#[test]
fn concurrent_puts_keep_the_highest_crl_number() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(SledStore::open(dir.path()).expect("open"));
    let url = "http://ca.test/race.crl";
    let mut numbers: Vec<u64> = (1..=200).collect();
    numbers.shuffle(&mut rand::thread_rng());
    let threads: Vec<_> = numbers
        .chunks(25)
        .map(|chunk| {
            let (store, chunk) = (store.clone(), chunk.to_vec());
            std::thread::spawn(move || {
                for n in chunk {
                    let outcome = store
                        .put(&crl(url, n, n.to_be_bytes().to_vec()))
                        .expect("put");
                    if let PutOutcome::RefusedOlder { stored, offered } = outcome {
                        assert!(number(&stored) > n);
                        assert_eq!(offered, Some(minimal(n)));
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    let stored = store.get(url).expect("get").expect("present");
    assert_eq!(stored.crl_number, Some(minimal(200)));
    assert_eq!(stored.body, 200u64.to_be_bytes().to_vec());
}

#[test]
fn reopened_store_has_everything() {
    let dir = tempfile::tempdir().expect("tempdir");
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let records = vec![
        crl("http://ca.test/big.crl", 9, big),
        crl("http://ca.test/small.crl", 1, vec![0x30, 0x00]),
    ];
    {
        let store = SledStore::open(dir.path()).expect("open");
        for r in &records {
            assert_eq!(store.put(r).expect("put"), PutOutcome::Stored);
        }
        store
            .put_revocation(&key(42), &fact("http://ca.test/small.crl", 2_000_000_000))
            .expect("revocation");
        // The second open of a live store fails (sled locks the directory).
        assert!(SledStore::open(dir.path()).is_err());
    }
    let store = SledStore::open(dir.path()).expect("reopen");
    for r in &records {
        assert_eq!(store.get(&r.url).expect("get").as_ref(), Some(r));
    }
    let facts: Vec<_> = store
        .revocations()
        .expect("revocations")
        .into_iter()
        .map(|f| f.expect("decodes"))
        .collect();
    assert_eq!(
        facts,
        vec![(key(42), fact("http://ca.test/small.crl", 2_000_000_000))]
    );
}

#[test]
fn revocation_facts_persist_until_the_certificate_expires() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SledStore::open(dir.path()).expect("open");
    store
        .put_revocation(&key(1), &fact("a", 1_000))
        .expect("put");
    store
        .put_revocation(&key(2), &fact("b", 5_000))
        .expect("put");
    store
        .put_revocation(&key(3), &fact("c", 2_000))
        .expect("put");
    // Replacing a fact keeps one entry per certificate.
    store
        .put_revocation(&key(3), &fact("c2", 3_000))
        .expect("put");
    assert_eq!(store.revocations().expect("list").len(), 3);

    assert_eq!(store.prune_revocations(2_500).expect("prune"), 1);
    let mut left: Vec<_> = store
        .revocations()
        .expect("list")
        .into_iter()
        .map(|f| f.expect("decodes"))
        .collect();
    left.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        left,
        vec![(key(2), fact("b", 5_000)), (key(3), fact("c2", 3_000))]
    );
    // notAfter itself is still inside the validity period.
    assert_eq!(store.prune_revocations(3_000).expect("prune"), 0);

    let memory = MemoryStore::new();
    memory
        .put_revocation(&key(1), &fact("a", 1_000))
        .expect("put");
    memory
        .put_revocation(&key(2), &fact("b", 5_000))
        .expect("put");
    assert_eq!(memory.prune_revocations(2_500).expect("prune"), 1);
    assert_eq!(memory.revocations().expect("list").len(), 1);
}

/// sled opened directly. The flusher thread of a handle this process just
/// dropped may hold the directory lock for a moment (as `SledStore::open`
/// knows): retried for up to 2 s.
fn raw_open(dir: &std::path::Path) -> sled::Db {
    let mut attempts = 0;
    loop {
        match sled::open(dir) {
            Ok(db) => return db,
            Err(sled::Error::Io(_)) if attempts < 40 => {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(e) => panic!("raw open: {e:?}"),
        }
    }
}

#[test]
fn corrupt_records_are_reported_not_used() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = crl("http://ca.test/good.crl", 3, vec![0x30, 0x00]);
    {
        let store = SledStore::open(dir.path()).expect("open");
        store.put(&good).expect("put");
        store
            .put(&crl("http://ca.test/bad.crl", 4, vec![0x30, 0x00]))
            .expect("put");
        store
            .put_revocation(&key(7), &fact("x", 9_999))
            .expect("put");
    }
    {
        // Damage two values behind the store's back.
        let db = raw_open(dir.path());
        let sources = db.open_tree("sources").expect("tree");
        let mut value = sources
            .get("http://ca.test/bad.crl")
            .expect("get")
            .expect("present")
            .to_vec();
        value.truncate(value.len() - 1);
        sources
            .insert("http://ca.test/bad.crl", value)
            .expect("insert");
        let revocations = db.open_tree("revocations").expect("tree");
        let (k, _) = revocations.first().expect("first").expect("present");
        revocations
            .insert(k, b"{not json".to_vec())
            .expect("insert");
        db.flush().expect("flush");
    }
    let store = SledStore::open(dir.path()).expect("reopen");
    match store.get("http://ca.test/bad.crl") {
        Err(StoreError::Corrupt { key, .. }) => assert_eq!(key, "http://ca.test/bad.crl"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert_eq!(store.get(&good.url).expect("get"), Some(good.clone()));
    let listed = store.list().expect("list");
    assert_eq!(listed.len(), 2);
    assert_eq!(listed.iter().filter(|m| m.is_ok()).count(), 1);
    let facts = store.revocations().expect("revocations");
    assert!(matches!(
        facts.as_slice(),
        [Err(StoreError::Corrupt { .. })]
    ));
    // Pruning never deletes what it cannot read.
    assert_eq!(store.prune_revocations(i64::MAX).expect("prune"), 0);
    assert_eq!(store.revocations().expect("revocations").len(), 1);
    // A fresh record may replace the damaged one.
    let fixed = crl("http://ca.test/bad.crl", 1, vec![0x30, 0x00]);
    assert_eq!(store.put(&fixed).expect("put"), PutOutcome::Stored);
    assert_eq!(store.get(&fixed.url).expect("get"), Some(fixed));
}

const CRASH_DIR: &str = "VIGIL_STORE_CRASH_DIR";
const CRASH_URLS: u64 = 5;

fn crash_url(n: u64) -> String {
    format!("http://crash.test/{}.crl", n % CRASH_URLS)
}

/// Body for CRL number `n`: the number, then a pattern derived from it, of
/// a size that varies up to 2 MiB (large values take sled's blob path).
fn crash_body(n: u64) -> Vec<u8> {
    let len = if n.is_multiple_of(11) {
        2 * 1024 * 1024
    } else {
        (n as usize * 7919) % 200_000
    };
    let mut body = n.to_be_bytes().to_vec();
    body.extend((0..len).map(|j| (n as usize + j) as u8));
    body
}

/// The writer killed by `kill_9_never_corrupts_or_rolls_back`; does nothing
/// unless started by it.
#[test]
fn crash_writer() {
    let Ok(dir) = std::env::var(CRASH_DIR) else {
        return;
    };
    let store = SledStore::open(&dir).expect("open");
    let mut n = store
        .list()
        .expect("list")
        .into_iter()
        .filter_map(|m| m.ok()?.crl_number)
        .map(|c| number(&c))
        .max()
        .unwrap_or(0);
    loop {
        n += 1;
        let url = crash_url(n);
        let outcome = store.put(&crl(&url, n, crash_body(n))).expect("put");
        assert_eq!(outcome, PutOutcome::Stored);
        println!("ACK {n}");
        if n.is_multiple_of(3) {
            store
                .put_revocation(&key(n), &fact(&url, 2_000_000_000))
                .expect("revocation");
            println!("REV {n}");
        }
    }
}

#[test]
fn kill_9_never_corrupts_or_rolls_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("test binary");
    let started = Instant::now();
    let mut rng = rand::thread_rng();
    // Highest CRL number per URL seen after the previous crash.
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut acked_total = 0;
    let mut revoked: Vec<u64> = Vec::new();
    for round in 0..6 {
        let mut child = Command::new(&exe)
            .args(["crash_writer", "--exact", "--nocapture", "--test-threads=1"])
            .env(CRASH_DIR, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn writer");
        let stdout = child.stdout.take().expect("stdout");
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<_>>()
        });
        std::thread::sleep(Duration::from_millis(rng.gen_range(150..700)));
        child.kill().expect("kill -9");
        child.wait().expect("wait");
        let lines = reader.join().expect("reader");

        // Every put that returned is on disk.
        let mut acked: HashMap<String, u64> = HashMap::new();
        for line in &lines {
            if let Some(n) = line.strip_prefix("ACK ") {
                let n: u64 = n.parse().expect("number");
                let e = acked.entry(crash_url(n)).or_default();
                *e = (*e).max(n);
                acked_total += 1;
            } else if let Some(n) = line.strip_prefix("REV ") {
                revoked.push(n.parse().expect("number"));
            }
        }

        eprintln!(
            "round {round}: killed after {} acknowledged writes",
            lines.iter().filter(|l| l.starts_with("ACK ")).count()
        );
        let store = SledStore::open(dir.path()).expect("reopen after kill -9");
        for meta in store.list().expect("list") {
            let meta = meta.unwrap_or_else(|e| panic!("round {round}: {e}"));
            let record = store
                .get(&meta.url)
                .expect("decodes")
                .expect("listed record exists");
            let n = number(record.crl_number.as_deref().expect("numbered"));
            assert_eq!(record.body, crash_body(n), "round {round}: body of CRL {n}");
            assert_eq!(record.url, crash_url(n));
            let before = seen.insert(meta.url.clone(), n).unwrap_or(0);
            assert!(
                n >= before,
                "round {round}: {} went back from {before} to {n}",
                meta.url
            );
        }
        for (url, n) in &acked {
            let have = seen.get(url).copied().unwrap_or(0);
            assert!(
                have >= *n,
                "round {round}: acknowledged CRL {n} of {url} lost (have {have})"
            );
        }
        let facts: Vec<u64> = store
            .revocations()
            .expect("revocations")
            .into_iter()
            .map(|f| number(&f.expect("fact decodes").0.serial))
            .collect();
        for n in &revoked {
            assert!(
                facts.contains(n),
                "round {round}: acknowledged revocation {n} lost"
            );
        }
    }
    assert!(acked_total > 0, "the writer never got to write");
    assert!(started.elapsed() < Duration::from_secs(20));
}
