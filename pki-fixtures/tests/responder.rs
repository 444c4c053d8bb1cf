//! The CRL/OCSP responder over real HTTP on 127.0.0.1, checked with Vigil's own
//! verifier and with `openssl ocsp`.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use pki_fixtures::openssl::CertIdHash;
use pki_fixtures::responder::{
    ocsp_get_url, ocsp_request, start_with_fresh_pki, Behaviour, Clock, OcspSigner, Responder,
    ResponderIdKind, ResponderOptions, Target,
};
use pki_fixtures::{CertSpec, KeyAlg, Pki, PkiOptions, Reason};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use vigil_core::revocation::CrlError;
use vigil_core::revocation::{OcspCertStatus, OcspError, ParsedOcsp};
use vigil_core::{
    CertificateDer, CrlLoad, Depth, ReasonCode, TrustStore, Verdict, Verifier, VerifyOptions,
};

// ---------------------------------------------------------------------------------------
// A minimal HTTP/1.1 client: one request per connection, `Connection: close`.

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

const CLIENT_TIMEOUT: Duration = Duration::from_secs(20);

async fn send(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<Reply> {
    tokio::time::timeout(CLIENT_TIMEOUT, async {
        let mut stream = TcpStream::connect(addr).await?;
        let mut head =
            format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if method == "POST" {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        parse_reply(&raw)
    })
    .await
    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no answer in time"))?
}

fn parse_reply(raw: &[u8]) -> io::Result<Reply> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    if raw.is_empty() {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of headers"))?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| bad("non-UTF-8 head"))?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status"))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let reply = Reply {
        status,
        headers,
        body: raw[end + 4..].to_vec(),
    };
    if let Some(len) = reply.header("content-length") {
        assert_eq!(
            len.parse::<usize>().ok(),
            Some(reply.body.len()),
            "truncated body"
        );
    }
    Ok(reply)
}

async fn get(r: &Responder, path: &str, headers: &[(&str, &str)]) -> Reply {
    send(r.local_addr(), "GET", path, headers, &[])
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

async fn post_ocsp(r: &Responder, ca: &str, request: &[u8]) -> Reply {
    send(
        r.local_addr(),
        "POST",
        &format!("/ocsp/{ca}"),
        &[("Content-Type", "application/ocsp-request")],
        request,
    )
    .await
    .unwrap_or_else(|e| panic!("POST /ocsp/{ca}: {e}"))
}

/// Path and query of a URL on the responder.
fn path_of<'a>(r: &Responder, url: &'a str) -> &'a str {
    url.strip_prefix(r.base_url())
        .expect("URL on the responder")
}

// ---------------------------------------------------------------------------------------
// Fixtures and Vigil.

async fn fresh(alg: KeyAlg, opts: ResponderOptions) -> (Responder, Pki) {
    start_with_fresh_pki(
        PkiOptions {
            alg,
            ..PkiOptions::default()
        },
        opts,
    )
    .await
    .expect("responder with a fresh PKI")
}

fn der(bytes: &[u8]) -> CertificateDer<'static> {
    CertificateDer::from(bytes.to_vec())
}

/// A verifier trusting the PKI's root and knowing the intermediate.
fn verifier(pki: &Pki) -> Verifier {
    let mut trust = TrustStore::new();
    trust.add(der(&pki.root.cert.der)).expect("root");
    let mut v = Verifier::new(trust);
    v.add_ca_certificate(&der(&pki.intermediate.cert.der))
        .expect("intermediate");
    v
}

fn verify(v: &Verifier, pki: &Pki, role: &str) -> Verdict {
    let chain: Vec<_> = pki
        .chain(role)
        .expect("role")
        .into_iter()
        .map(|c| der(&c.der))
        .collect();
    v.verify_uncached(&chain, &VerifyOptions::default(), SystemTime::now())
}

/// The root's CRL, fetched from the responder: revocation data for the intermediate.
async fn with_root_crl(r: &Responder, v: &mut Verifier) {
    let root_crl = get(r, "/crl/root.crl", &[]).await;
    assert_eq!(root_crl.status, 200);
    assert!(matches!(
        v.add_crl(&root_crl.body),
        Ok(CrlLoad::Verified { .. })
    ));
}

fn unix(t: time::OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

// ---------------------------------------------------------------------------------------
// CRLs.

#[tokio::test]
async fn serves_the_pki_crls_and_they_verify_with_vigil() {
    let (r, pki) = fresh(KeyAlg::EcdsaP256, ResponderOptions::default()).await;
    assert!(r.base_url().starts_with("http://127.0.0.1:"));
    // The certificates point here.
    assert_eq!(pki.options.base_url, r.base_url());

    let crl = get(&r, path_of(&r, &r.crl_url("intermediate")), &[]).await;
    assert_eq!(crl.status, 200);
    assert_eq!(crl.header("content-type"), Some("application/pkix-crl"));
    assert_eq!(crl.body, pki.intermediate_crl.der, "served byte for byte");
    assert!(crl.header("etag").is_some_and(|t| t.starts_with('"')));
    assert!(crl
        .header("last-modified")
        .is_some_and(|t| t.ends_with(" GMT")));

    let pem = get(&r, "/crl/intermediate.crl?pem", &[]).await;
    assert_eq!(pem.header("content-type"), Some("application/x-pem-file"));
    assert_eq!(pem.body, pki.intermediate_crl.pem.as_bytes());
    assert_ne!(pem.header("etag"), crl.header("etag"));

    let mut v = verifier(&pki);
    assert_eq!(
        v.add_crl(&crl.body).expect("parses"),
        CrlLoad::Verified { entries: 1 }
    );
    with_root_crl(&r, &mut v).await;
    assert!(verify(&v, &pki, "client").is_accepted());
    let revoked = verify(&v, &pki, "revoked-client");
    assert_eq!(revoked.reason, ReasonCode::Revoked);
    let revoked_ca = verify(&v, &pki, "leaf-of-revoked-intermediate");
    assert!(!revoked_ca.is_accepted());

    for path in [
        "/crl/nope.crl",
        "/crl/intermediate",
        "/nothing",
        "/ocsp/nope/MA==",
    ] {
        assert_eq!(get(&r, path, &[]).await.status, 404, "{path}");
    }
    let counts = r.counts();
    assert_eq!(counts.crl, 3);
    assert_eq!(counts.not_found, 4);
    assert_eq!(r.counts_for("intermediate").crl, 2);
    assert_eq!(r.counts_for("root").crl, 1);
    r.shutdown().await;
}

#[tokio::test]
async fn conditional_get_answers_304_until_the_crl_changes() {
    let (r, pki) = fresh(KeyAlg::EcdsaP256, ResponderOptions::default()).await;
    let first = get(&r, "/crl/intermediate.crl", &[]).await;
    let tag = first.header("etag").expect("etag").to_string();
    let modified = first.header("last-modified").expect("lm").to_string();

    let by_tag = get(&r, "/crl/intermediate.crl", &[("If-None-Match", &tag)]).await;
    assert_eq!(by_tag.status, 304);
    assert!(by_tag.body.is_empty());
    assert_eq!(by_tag.header("etag"), Some(tag.as_str()));
    let by_date = get(
        &r,
        "/crl/intermediate.crl",
        &[("If-Modified-Since", &modified)],
    )
    .await;
    assert_eq!(by_date.status, 304);
    // If-None-Match decides when present, even with a matching date.
    let other_tag = get(
        &r,
        "/crl/intermediate.crl",
        &[
            ("If-None-Match", "\"other\""),
            ("If-Modified-Since", &modified),
        ],
    )
    .await;
    assert_eq!(other_tag.status, 200);
    let counts = r.counts_for("intermediate");
    assert_eq!((counts.crl, counts.crl_not_modified), (4, 2));

    // A revocation in the same second still changes both validators.
    r.revoke(&pki.client, Reason::Superseded).expect("revoke");
    for (name, value) in [("If-None-Match", &tag), ("If-Modified-Since", &modified)] {
        let after = get(&r, "/crl/intermediate.crl", &[(name, value)]).await;
        assert_eq!(after.status, 200, "{name}");
        assert_ne!(after.header("etag"), Some(tag.as_str()));
    }
    r.shutdown().await;
}

#[tokio::test]
async fn revocations_at_run_time_move_the_crl_and_ocsp() {
    let (r, pki) = fresh(KeyAlg::EcdsaP256, ResponderOptions::default()).await;
    let request = ocsp_request(
        &pki.intermediate.cert,
        &[&pki.client],
        CertIdHash::Sha1,
        None,
    )
    .expect("request");
    let before = post_ocsp(&r, "intermediate", &request).await;
    let parsed = ParsedOcsp::from_der(&before.body).expect("parses");
    assert_eq!(parsed.responses()[0].status, OcspCertStatus::Good);

    let published = r
        .revoke(&pki.client, Reason::KeyCompromise)
        .expect("revoke");
    assert_eq!(published.ca, "intermediate");
    assert_eq!(published.crl_number, pki.intermediate_crl.number + 1);
    assert!(published.at <= Instant::now());
    assert_eq!(r.publication("intermediate"), Some(published.clone()));

    let crl = get(&r, "/crl/intermediate.crl", &[]).await;
    let current = r.current_crl("intermediate").expect("crl");
    assert_eq!(crl.body, current.der);
    assert_eq!(current.number, published.crl_number);
    assert!(current.revoked_serials.contains(&pki.client.serial));
    assert!(current.revoked_serials.contains(&pki.revoked_client.serial));
    let mut v = verifier(&pki);
    assert_eq!(
        v.add_crl(&crl.body).expect("parses"),
        CrlLoad::Verified { entries: 2 }
    );
    with_root_crl(&r, &mut v).await;
    assert_eq!(verify(&v, &pki, "client").reason, ReasonCode::Revoked);
    assert!(verify(&v, &pki, "server").is_accepted());

    let after = post_ocsp(&r, "intermediate", &request).await;
    let parsed = ParsedOcsp::from_der(&after.body).expect("parses");
    match parsed.responses()[0].status {
        OcspCertStatus::Revoked { at, reason } => {
            assert_eq!(at, unix(published.this_update));
            assert_eq!(reason, Some(vigil_core::revocation::Reason::KeyCompromise));
        }
        other => panic!("expected revoked, got {other:?}"),
    }
    // OCSP alone (plus the root's CRL for the intermediate) is enough for Vigil.
    let mut v = verifier(&pki);
    with_root_crl(&r, &mut v).await;
    v.add_ocsp_response(&after.body).expect("loads");
    assert_eq!(verify(&v, &pki, "client").reason, ReasonCode::Revoked);

    // Unrevoking and plain publishing move the number on too.
    let back = r.unrevoke(&pki.client).expect("unrevoke");
    assert_eq!(back.crl_number, published.crl_number + 1);
    assert!(r.unrevoke(&pki.client).is_err());
    let again = r.publish("intermediate").expect("publish");
    assert_eq!(again.crl_number, back.crl_number + 1);
    let many = r
        .revoke_many(
            &[&pki.client, &pki.server, &pki.intermediate.cert],
            Reason::Superseded,
        )
        .expect("revoke many");
    let cas: Vec<_> = many.iter().map(|p| (p.ca.as_str(), p.crl_number)).collect();
    assert_eq!(
        cas,
        [
            ("intermediate", again.crl_number + 1),
            ("root", pki.root_crl.number + 1)
        ]
    );
    assert!(r.revoke_serial("nope", &[1], Reason::Superseded).is_err());
    r.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// OCSP.

#[tokio::test]
async fn ocsp_get_post_nonce_and_statuses() {
    let (r, pki) = fresh(KeyAlg::EcdsaP256, ResponderOptions::default()).await;
    let nonce = [0x5a; 16];
    let request = ocsp_request(
        &pki.intermediate.cert,
        &[&pki.client, &pki.revoked_client],
        CertIdHash::Sha1,
        Some(&nonce),
    )
    .expect("request");

    let url = ocsp_get_url(&r.ocsp_url("intermediate"), &request);
    let by_get = get(&r, path_of(&r, &url), &[]).await;
    let by_post = post_ocsp(&r, "intermediate", &request).await;
    for reply in [&by_get, &by_post] {
        assert_eq!(reply.status, 200);
        assert_eq!(
            reply.header("content-type"),
            Some("application/ocsp-response")
        );
        let parsed = ParsedOcsp::from_der(&reply.body).expect("parses");
        let statuses: Vec<_> = parsed.responses().iter().map(|s| s.status).collect();
        assert_eq!(statuses[0], OcspCertStatus::Good);
        assert!(matches!(
            statuses[1],
            OcspCertStatus::Revoked {
                reason: Some(vigil_core::revocation::Reason::KeyCompromise),
                ..
            }
        ));
        let single = &parsed.responses()[0];
        assert_eq!(single.next_update, Some(single.this_update + 3600));
        assert_eq!(parsed.produced_at(), single.this_update);
        // The nonce extension is echoed: OID, then OCTET STRING { OCTET STRING nonce }.
        let echoed = [&[0x04, 18, 0x04, 16][..], &nonce].concat();
        assert!(reply.body.windows(echoed.len()).any(|w| w == echoed));
    }
    // The same answer through the unencoded and the URL-safe base64 forms.
    let plain = url
        .replace("%2B", "+")
        .replace("%2F", "/")
        .replace("%3D", "=");
    assert_eq!(get(&r, path_of(&r, &plain), &[]).await.status, 200);
    let counts = r.counts_for("intermediate");
    assert_eq!(
        (counts.ocsp_get, counts.ocsp_post, counts.ocsp()),
        (2, 1, 3)
    );

    let mut v = verifier(&pki);
    with_root_crl(&r, &mut v).await;
    assert_eq!(v.add_ocsp_response(&by_post.body).expect("loads"), 2);
    let good = verify(&v, &pki, "client");
    assert!(good.is_accepted(), "{}", good.to_json());
    assert_eq!(good.revocation[0].source, vigil_core::Source::Ocsp);
    assert_eq!(
        verify(&v, &pki, "revoked-client").reason,
        ReasonCode::Revoked
    );

    // SHA-256 CertIDs.
    let sha256 = ocsp_request(
        &pki.intermediate.cert,
        &[&pki.server],
        CertIdHash::Sha256,
        None,
    )
    .expect("request");
    let reply = post_ocsp(&r, "intermediate", &sha256).await;
    v.add_ocsp_response(&reply.body).expect("loads");
    let server = verify(&v, &pki, "server");
    assert!(server.is_accepted(), "{}", server.to_json());
    assert_eq!(server.revocation[0].source, vigil_core::Source::Ocsp);

    // A certificate the CA never issued is unknown until registered.
    let late = pki
        .intermediate
        .issue_leaf(&CertSpec::leaf("late", "late.vigil.test", &pki.options))
        .expect("leaf");
    let ask_late =
        ocsp_request(&pki.intermediate.cert, &[&late], CertIdHash::Sha1, None).expect("request");
    let status = |body: &[u8]| ParsedOcsp::from_der(body).expect("parses").responses()[0].status;
    let unknown = post_ocsp(&r, "intermediate", &ask_late).await;
    assert_eq!(status(&unknown.body), OcspCertStatus::Unknown);
    r.register(&late).expect("register");
    let known = post_ocsp(&r, "intermediate", &ask_late).await;
    assert_eq!(status(&known.body), OcspCertStatus::Good);

    // Another issuer's CertID, or garbage, is refused in OCSP terms.
    let foreign = ocsp_request(
        &pki.root.cert,
        &[&pki.intermediate.cert],
        CertIdHash::Sha1,
        None,
    )
    .expect("request");
    let refused = post_ocsp(&r, "intermediate", &foreign).await;
    assert_eq!(
        ParsedOcsp::from_der(&refused.body).err(),
        Some(OcspError::NotSuccessful {
            status: "unauthorized"
        })
    );
    let at_root = post_ocsp(&r, "root", &foreign).await;
    assert_eq!(status(&at_root.body), OcspCertStatus::Good);
    let malformed = post_ocsp(&r, "intermediate", b"hello").await;
    assert_eq!(malformed.status, 200);
    assert_eq!(
        ParsedOcsp::from_der(&malformed.body).err(),
        Some(OcspError::NotSuccessful {
            status: "malformedRequest"
        })
    );
    let bad_base64 = get(&r, "/ocsp/intermediate/not*base64", &[]).await;
    assert_eq!(bad_base64.body, malformed.body);
    r.shutdown().await;
}

#[tokio::test]
async fn delegated_responder_and_responder_id_by_name_verify() {
    let (r, pki) = fresh(
        KeyAlg::EcdsaP256,
        ResponderOptions {
            signer: OcspSigner::Delegated,
            ..ResponderOptions::default()
        },
    )
    .await;
    let delegate = r.delegate("intermediate").expect("delegate");
    assert_eq!(delegate.issuer, "intermediate");
    let request = ocsp_request(
        &pki.intermediate.cert,
        &[&pki.client],
        CertIdHash::Sha1,
        None,
    )
    .expect("request");
    for id in [ResponderIdKind::ByKey, ResponderIdKind::ByName] {
        r.set_responder_id(id);
        let reply = post_ocsp(&r, "intermediate", &request).await;
        assert!(
            reply
                .body
                .windows(delegate.der.len())
                .any(|w| w == delegate.der.as_slice()),
            "the delegate's certificate is in `certs`"
        );
        let mut v = verifier(&pki);
        with_root_crl(&r, &mut v).await;
        v.add_ocsp_response(&reply.body).expect("loads");
        let verdict = verify(&v, &pki, "client");
        assert!(verdict.is_accepted(), "{id:?}: {}", verdict.to_json());
    }
    // The delegate itself is a known certificate of the CA.
    let about_delegate = ocsp_request(&pki.intermediate.cert, &[&delegate], CertIdHash::Sha1, None)
        .expect("request");
    r.set_ocsp_signer(OcspSigner::Ca);
    let reply = post_ocsp(&r, "intermediate", &about_delegate).await;
    assert!(!reply
        .body
        .windows(delegate.der.len())
        .any(|w| w == delegate.der.as_slice()));
    let parsed = ParsedOcsp::from_der(&reply.body).expect("parses");
    assert_eq!(parsed.responses()[0].status, OcspCertStatus::Good);
    r.shutdown().await;
}

#[tokio::test]
async fn every_key_algorithm_signs_verifiable_answers() {
    for alg in KeyAlg::ALL {
        for signer in [OcspSigner::Ca, OcspSigner::Delegated] {
            let (r, pki) = fresh(
                alg,
                ResponderOptions {
                    signer,
                    ..ResponderOptions::default()
                },
            )
            .await;
            r.revoke(&pki.server, Reason::CessationOfOperation)
                .expect("revoke");
            let request = ocsp_request(
                &pki.intermediate.cert,
                &[&pki.client, &pki.server],
                CertIdHash::Sha256,
                None,
            )
            .expect("request");
            let reply = post_ocsp(&r, "intermediate", &request).await;
            let mut v = verifier(&pki);
            with_root_crl(&r, &mut v).await;
            v.add_ocsp_response(&reply.body).expect("loads");
            let good = verify(&v, &pki, "client");
            assert!(good.is_accepted(), "{alg} {signer:?}: {}", good.to_json());
            assert_eq!(verify(&v, &pki, "server").reason, ReasonCode::Revoked);
            // The re-signed CRL verifies too.
            let crl = get(&r, "/crl/intermediate.crl", &[]).await;
            assert_eq!(
                v.add_crl(&crl.body).expect("parses"),
                CrlLoad::Verified { entries: 2 },
                "{alg}"
            );
            r.shutdown().await;
        }
    }
}

#[tokio::test]
async fn the_clock_stamps_answers_and_crls() {
    let t = time::macros::datetime!(2031-05-06 07:08:09 UTC);
    let clock = Clock::fixed(t);
    let (r, pki) = fresh(
        KeyAlg::EcdsaP256,
        ResponderOptions {
            clock: clock.clone(),
            ocsp_validity: time::Duration::minutes(10),
            crl_validity: time::Duration::hours(2),
            ..ResponderOptions::default()
        },
    )
    .await;
    let request = ocsp_request(
        &pki.intermediate.cert,
        &[&pki.client],
        CertIdHash::Sha1,
        None,
    )
    .expect("request");
    let reply = post_ocsp(&r, "intermediate", &request).await;
    let parsed = ParsedOcsp::from_der(&reply.body).expect("parses");
    assert_eq!(parsed.responses()[0].this_update, unix(t));
    assert_eq!(parsed.responses()[0].next_update, Some(unix(t) + 600));
    clock.advance(time::Duration::hours(1));
    let published = r.publish("intermediate").expect("publish");
    assert_eq!(published.this_update, t + time::Duration::hours(1));
    assert_eq!(published.next_update, t + time::Duration::hours(3));
    assert!(r.clock().now() == t + time::Duration::hours(1));
    r.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// Misbehaviour.

fn ocsp_for_client(pki: &Pki) -> Vec<u8> {
    ocsp_request(
        &pki.intermediate.cert,
        &[&pki.client],
        CertIdHash::Sha1,
        None,
    )
    .expect("request")
}

#[tokio::test]
async fn status_500_garbage_oversized_and_try_later() {
    let (r, pki) = fresh(KeyAlg::EcdsaP256, ResponderOptions::default()).await;
    let request = ocsp_for_client(&pki);

    r.set_behaviour(Target::All, Behaviour::Status500)
        .expect("set");
    assert_eq!(get(&r, "/crl/intermediate.crl", &[]).await.status, 500);
    assert_eq!(post_ocsp(&r, "intermediate", &request).await.status, 500);

    r.set_behaviour(Target::All, Behaviour::Garbage)
        .expect("set");
    let crl = get(&r, "/crl/intermediate.crl", &[]).await;
    assert_eq!(
        (crl.status, crl.header("content-type")),
        (200, Some("application/pkix-crl"))
    );
    assert!(verifier(&pki).add_crl(&crl.body).is_err());
    let ocsp = post_ocsp(&r, "intermediate", &request).await;
    assert_eq!(ocsp.status, 200);
    assert!(matches!(
        ParsedOcsp::from_der(&ocsp.body),
        Err(OcspError::Malformed { .. })
    ));

    r.set_behaviour(Target::Crl, Behaviour::Oversized(3 << 20))
        .expect("set");
    r.set_behaviour(Target::Ocsp, Behaviour::Oversized(70_000))
        .expect("set");
    let crl = get(&r, "/crl/intermediate.crl", &[]).await;
    assert_eq!(crl.header("content-length"), Some("3145728"));
    assert_eq!(crl.body.len(), 3 << 20);
    assert!(crl.body.starts_with(&pki.intermediate_crl.der));
    assert!(crl.header("etag").is_none());
    let ocsp = post_ocsp(&r, "intermediate", &request).await;
    assert_eq!(ocsp.body.len(), 70_000);

    r.set_behaviour(Target::All, Behaviour::TryLater)
        .expect("set");
    let crl = get(&r, "/crl/intermediate.crl", &[]).await;
    assert_eq!((crl.status, crl.header("retry-after")), (503, Some("60")));
    let ocsp = post_ocsp(&r, "intermediate", &request).await;
    assert_eq!(ocsp.status, 200);
    assert_eq!(ocsp.body, [0x30, 0x03, 0x0a, 0x01, 0x03]);
    assert_eq!(
        ParsedOcsp::from_der(&ocsp.body).err(),
        Some(OcspError::NotSuccessful { status: "tryLater" })
    );

    r.set_behaviour(Target::All, Behaviour::Normal)
        .expect("set");
    assert_eq!(
        get(&r, "/crl/intermediate.crl", &[]).await.body,
        pki.intermediate_crl.der
    );
    // Every request was counted, misbehaving or not.
    assert_eq!(r.counts_for("intermediate").crl, 5);
    assert_eq!(r.counts_for("intermediate").ocsp_post, 4);
    r.shutdown().await;
}

#[tokio::test]
async fn slow_answers_arrive_after_the_delay() {
    let (r, pki) = fresh(KeyAlg::EcdsaP256, ResponderOptions::default()).await;
    let delay = Duration::from_millis(400);
    r.set_behaviour(Target::Ocsp, Behaviour::Slow(delay))
        .expect("set");

    let start = Instant::now();
    let reply = post_ocsp(&r, "intermediate", &ocsp_for_client(&pki)).await;
    let took = start.elapsed();
    assert!(took >= delay, "{took:?}");
    assert!(took < delay + Duration::from_secs(3), "{took:?}");
    assert!(ParsedOcsp::from_der(&reply.body).is_ok());

    // CRLs are not slowed.
    let start = Instant::now();
    get(&r, "/crl/intermediate.crl", &[]).await;
    assert!(start.elapsed() < delay);
    r.shutdown().await;
}

#[tokio::test]
async fn stale_and_wrong_signer_data_are_rejected_by_vigil() {
    let (r, pki) = fresh(KeyAlg::EcdsaP256, ResponderOptions::default()).await;
    let request = ocsp_for_client(&pki);
    let now = time::OffsetDateTime::now_utc();

    r.set_behaviour(Target::All, Behaviour::Stale).expect("set");
    let crl = get(&r, "/crl/intermediate.crl", &[]).await;
    let mut v = verifier(&pki);
    assert!(matches!(
        v.add_crl(&crl.body),
        Ok(CrlLoad::Verified { entries: 1 })
    ));
    let ocsp = post_ocsp(&r, "intermediate", &request).await;
    let parsed = ParsedOcsp::from_der(&ocsp.body).expect("parses");
    let next = parsed.responses()[0].next_update.expect("nextUpdate");
    assert!(next < unix(now), "nextUpdate in the past");
    r.set_behaviour(Target::All, Behaviour::Normal)
        .expect("set");
    with_root_crl(&r, &mut v).await;
    assert_eq!(
        verify(&v, &pki, "client").reason,
        ReasonCode::RevocationDataStale
    );
    let mut v = verifier(&pki);
    with_root_crl(&r, &mut v).await;
    v.add_ocsp_response(&ocsp.body).expect("loads");
    assert_eq!(
        verify(&v, &pki, "client").reason,
        ReasonCode::RevocationDataStale
    );

    r.set_behaviour(Target::All, Behaviour::WrongSigner)
        .expect("set");
    let forged = get(&r, "/crl/intermediate.crl", &[]).await;
    let mut v = verifier(&pki);
    assert_eq!(
        v.add_crl(&forged.body).expect("parses"),
        CrlLoad::Rejected(CrlError::BadSignature)
    );
    let ocsp = post_ocsp(&r, "intermediate", &request).await;
    r.set_behaviour(Target::All, Behaviour::Normal)
        .expect("set");
    let mut v = verifier(&pki);
    with_root_crl(&r, &mut v).await;
    v.add_ocsp_response(&ocsp.body).expect("loads");
    assert_eq!(
        verify(&v, &pki, "client").reason,
        ReasonCode::OcspSignatureInvalid
    );
    r.shutdown().await;
}

#[tokio::test]
async fn connection_reset_and_down() {
    let (r, pki) = fresh(KeyAlg::EcdsaP256, ResponderOptions::default()).await;
    let addr = r.local_addr();
    let request = ocsp_for_client(&pki);

    r.set_behaviour(Target::Crl, Behaviour::ConnectionReset)
        .expect("set");
    let err = send(addr, "GET", "/crl/intermediate.crl", &[], &[])
        .await
        .expect_err("reset");
    assert_eq!(err.kind(), io::ErrorKind::ConnectionReset, "{err}");
    // OCSP is unaffected.
    assert_eq!(post_ocsp(&r, "intermediate", &request).await.status, 200);

    r.set_behaviour(Target::Ocsp, Behaviour::Down).expect("set");
    let err = send(addr, "POST", "/ocsp/intermediate", &[], &request)
        .await
        .expect_err("closed");
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{err}");

    // Both down: the port is closed.
    r.set_behaviour(Target::Crl, Behaviour::Down).expect("set");
    let err = TcpStream::connect(addr).await.expect_err("refused");
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
    assert_eq!(r.behaviours().crl, Behaviour::Down);

    // Back up on the same port.
    r.set_behaviour(Target::All, Behaviour::Normal)
        .expect("set");
    assert_eq!(r.local_addr(), addr);
    assert_eq!(get(&r, "/crl/intermediate.crl", &[]).await.status, 200);
    assert_eq!(post_ocsp(&r, "intermediate", &request).await.status, 200);
    let counts = r.counts_for("intermediate");
    assert_eq!((counts.crl, counts.ocsp_post), (2, 3));

    r.shutdown().await;
    let err = TcpStream::connect(addr).await.expect_err("shut down");
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
}

#[tokio::test]
async fn dropping_the_responder_closes_the_port() {
    let (r, _pki) = fresh(KeyAlg::EcdsaP256, ResponderOptions::default()).await;
    let addr = r.local_addr();
    drop(r);
    let err = TcpStream::connect(addr).await.expect_err("closed");
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
}

#[tokio::test]
async fn only_loopback_addresses() {
    let opts = ResponderOptions {
        addr: "0.0.0.0:0".parse().expect("addr"),
        ..ResponderOptions::default()
    };
    assert!(Responder::bind(opts).await.is_err());
}

// ---------------------------------------------------------------------------------------
// OpenSSL reads what the responder writes (and the responder reads what OpenSSL asks).

#[tokio::test]
async fn openssl_parses_and_verifies_answers() {
    let (r, pki) = fresh(KeyAlg::EcdsaP256, ResponderOptions::default()).await;
    r.revoke(&pki.server, Reason::Superseded).expect("revoke");
    let dir = pki_fixtures::PkiDir::new(&pki).expect("dir");
    let file = |name: &str| dir.file(name).display().to_string();
    // openssl builds the request (SHA-1 CertIDs, with a nonce).
    pki_fixtures::openssl::run([
        "ocsp",
        "-issuer",
        &file("intermediate.pem"),
        "-cert",
        &file("client.pem"),
        "-cert",
        &file("server.pem"),
        "-reqout",
        &file("req.der"),
    ])
    .expect("openssl request");
    let request = std::fs::read(dir.file("req.der")).expect("request");
    let reply = post_ocsp(&r, "intermediate", &request).await;
    assert_eq!(reply.status, 200);
    dir.write("resp.der", &reply.body).expect("write");

    let text = pki_fixtures::openssl::run([
        "ocsp",
        "-respin",
        &file("resp.der"),
        "-resp_text",
        "-noverify",
    ])
    .expect("openssl parses the response");
    let text = String::from_utf8_lossy(&text);
    assert!(
        text.contains("OCSP Response Status: successful (0x0)"),
        "{text}"
    );
    assert!(text.contains("Cert Status: good"), "{text}");
    assert!(text.contains("Cert Status: revoked"), "{text}");
    assert!(
        text.contains("Revocation Reason: superseded (0x4)"),
        "{text}"
    );
    assert!(text.contains("OCSP Nonce"), "{text}");

    // And with verification: signature, responder = issuer, nonce matches the request's.
    let out = std::process::Command::new(pki_fixtures::openssl::program().expect("openssl"))
        .args([
            "ocsp",
            "-reqin",
            &file("req.der"),
            "-respin",
            &file("resp.der"),
            "-issuer",
            &file("intermediate.pem"),
            "-CAfile",
            &file("root.pem"),
        ])
        .output()
        .expect("runs");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{all}");
    assert!(all.contains("Response verify OK"), "{all}");
    assert!(!all.contains("WARNING"), "{all}");
    assert!(!all.contains("Nonce Verify error"), "{all}");

    // A tryLater answer is readable too.
    r.set_behaviour(Target::Ocsp, Behaviour::TryLater)
        .expect("set");
    let later = post_ocsp(&r, "intermediate", &request).await;
    dir.write("later.der", &later.body).expect("write");
    let out = std::process::Command::new(pki_fixtures::openssl::program().expect("openssl"))
        .args([
            "ocsp",
            "-respin",
            &file("later.der"),
            "-resp_text",
            "-noverify",
        ])
        .output()
        .expect("runs");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(all.to_lowercase().contains("trylater (3)"), "{all}");
    r.shutdown().await;
}

#[tokio::test]
async fn openssl_as_the_http_client() {
    let (r, pki) = fresh(KeyAlg::EcdsaP256, ResponderOptions::default()).await;
    r.revoke(&pki.client, Reason::AffiliationChanged)
        .expect("revoke");
    let dir = pki_fixtures::PkiDir::new(&pki).expect("dir");
    let file = |name: &str| dir.file(name).display().to_string();
    // The OCSP URL from the certificate itself; openssl POSTs to it (with a nonce).
    let args: Vec<String> = [
        "ocsp",
        "-issuer",
        &file("intermediate.pem"),
        "-cert",
        &file("client.pem"),
        "-cert",
        &file("server.pem"),
        "-url",
        &r.ocsp_url("intermediate"),
        "-CAfile",
        &file("root.pem"),
        "-timeout",
        "10",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // openssl blocks; the server runs on this test's runtime thread.
    let out = tokio::task::spawn_blocking(move || pki_fixtures::openssl::run(&args))
        .await
        .expect("joins")
        .expect("openssl ocsp -url");
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("client.pem: revoked"), "{text}");
    assert!(text.contains("Reason: affiliationChanged"), "{text}");
    assert!(text.contains("server.pem: good"), "{text}");
    assert_eq!(r.counts_for("intermediate").ocsp_post, 1);
    r.shutdown().await;
}

#[tokio::test]
async fn custom_hierarchies_can_be_added() {
    let (r, pki) = fresh(KeyAlg::EcdsaP256, ResponderOptions::default()).await;
    let opts = PkiOptions {
        base_url: r.base_url().to_string(),
        ..pki.options.clone()
    };
    let ca = pki
        .root
        .issue_ca(&CertSpec::ca("team-ca", "Team CA", &opts))
        .expect("ca");
    let leaf = ca
        .issue_leaf(&CertSpec::leaf("team-leaf", "team.vigil.test", &opts))
        .expect("leaf");
    assert_eq!(get(&r, "/crl/team-ca.crl", &[]).await.status, 404);
    r.add_ca(&ca, None).expect("add");
    assert!(r.add_ca(&ca, None).is_err(), "only once");
    let crl = r.current_crl("team-ca").expect("crl");
    assert_eq!((crl.number, crl.revoked_serials.len()), (1, 0));
    assert_eq!(get(&r, "/crl/team-ca.crl", &[]).await.body, crl.der);
    r.register(&leaf).expect("register");
    let request = ocsp_request(&ca.cert, &[&leaf], CertIdHash::Sha1, None).expect("request");
    let reply = post_ocsp(&r, "team-ca", &request).await;
    let parsed = ParsedOcsp::from_der(&reply.body).expect("parses");
    assert_eq!(parsed.responses()[0].status, OcspCertStatus::Good);
    let published = r.revoke(&leaf, Reason::KeyCompromise).expect("revoke");
    assert_eq!(published.crl_number, 2);
    r.shutdown().await;
}

#[tokio::test]
async fn bind_then_serve_a_pki_generated_for_the_address() {
    let binding = Responder::bind(ResponderOptions::default())
        .await
        .expect("bind");
    let pki = pki_fixtures::generate(&PkiOptions {
        base_url: binding.base_url().to_string(),
        ..PkiOptions::default()
    })
    .expect("pki");
    let r = binding.serve(&pki).await.expect("serve");
    // The CRL distribution point written in the client certificate works.
    let url = pki_fixtures::crl_url(&pki.options.base_url, &pki.client.issuer);
    let reply = get(&r, path_of(&r, &url), &[]).await;
    assert_eq!(reply.body, pki.intermediate_crl.der);
    // Depth: with the leaf only, the intermediate CRL suffices.
    let mut v = verifier(&pki);
    v.add_crl(&reply.body).expect("crl");
    let chain = [der(&pki.client.der), der(&pki.intermediate.cert.der)];
    let leaf_only = VerifyOptions::default().with_depth(Depth::Leaf);
    assert!(v
        .verify_uncached(&chain, &leaf_only, SystemTime::now())
        .is_accepted());
    r.shutdown().await;
}
