//! Index upkeep: which connections depend on which certificate, issuer,
//! serial and anchor, kept in step as connections come and go.

use super::*;

impl Inner {
    /// The validated path (minus anchor) as parsed certificates, its
    /// anchor, and the presented certificates that are neither.
    #[allow(clippy::type_complexity)]
    pub(super) fn resolve_path(
        &mut self,
        chain: &[CertificateDer<'static>],
        accepted: &AcceptedPath,
    ) -> Option<(
        Vec<Arc<CertInfo>>,
        Arc<Anchor>,
        Box<[CertificateDer<'static>]>,
    )> {
        let (anchor, below) = accepted.path().split_last()?;
        let anchor_sha = anchor.sha256;
        let presented: Vec<([u8; 32], &CertificateDer<'static>)> =
            chain.iter().map(|c| (sha256(c), c)).collect();
        // The connection is the one whose verification this proves.
        if presented.first().map(|(d, _)| d) != below.first().map(|c| &c.sha256) {
            return None;
        }
        let mut path = Vec::with_capacity(below.len());
        for cert in below {
            let info = match self.parsed.get(&cert.sha256) {
                Some((info, _)) => info.clone(),
                None => Arc::new(self.share(CertInfo::clone(cert))),
            };
            path.push(info);
        }
        let extras = presented
            .iter()
            .filter(|(d, _)| *d != anchor_sha && !path.iter().any(|c| c.sha256 == *d))
            .map(|(_, der)| (*der).clone())
            .collect();
        // Held from here on: counted until the connection is removed.
        for cert in &path {
            self.parsed
                .entry(cert.sha256)
                .or_insert_with(|| (cert.clone(), 0))
                .1 += 1;
        }
        let (anchor, holders) = self.anchors.entry(anchor_sha).or_insert_with(|| {
            let anchor = Anchor {
                sha256: anchor_sha,
                subject: anchor.subject.clone(),
                serial: anchor.serial().to_vec(),
            };
            (Arc::new(anchor), 0)
        });
        *holders += 1;
        Some((path, anchor.clone(), extras))
    }

    /// `info` with its issuer's name key, name and CRL distribution points
    /// shared with the certificates of the same issuer already tracked,
    /// where they are the same.
    pub(super) fn share(&mut self, mut info: CertInfo) -> CertInfo {
        match self.issuers.get_key_value(&*info.issuer_key) {
            Some((key, shared)) => {
                info.issuer_key = key.clone();
                if shared.name == info.issuer {
                    info.issuer = shared.name.clone();
                }
                if let (Some(mine), Some(theirs)) = (&info.crl_dps, &shared.dps) {
                    if **mine == **theirs {
                        info.crl_dps = Some(theirs.clone());
                    }
                }
            }
            None => {
                let shared = IssuerShared {
                    name: info.issuer.clone(),
                    dps: info.crl_dps.clone(),
                };
                self.issuers.insert(info.issuer_key.clone(), shared);
            }
        }
        info
    }

    pub(super) fn candidates(&self, ids: Vec<u64>) -> Vec<Candidate> {
        ids.into_iter()
            .filter_map(|id| {
                let conn = self.conns.get(&id)?;
                Some(Candidate {
                    id,
                    path: conn.path.clone(),
                    anchor: conn.anchor.sha256,
                    extras: conn.extras.clone(),
                })
            })
            .collect()
    }

    /// The paths of the given connections, for a revocation re-check (the
    /// chains are not needed, so not copied).
    pub(super) fn path_candidates(&self, ids: Vec<u64>) -> Vec<PathCandidate> {
        ids.into_iter()
            .filter_map(|id| {
                let conn = self.conns.get(&id)?;
                Some((id, conn.path.clone(), conn.anchor.sha256))
            })
            .collect()
    }

    /// Appends to `ids` the connections with a certificate `crl` lists,
    /// iterating the smaller side: the CRL's entries, looked up in the
    /// index, or the tracked serials, looked up in the CRL's hash index.
    pub(super) fn listed_in(&self, crl: &VerifiedCrl, ids: &mut Vec<u64>) {
        if crl.is_indirect() {
            // Entries of several certificate issuers.
            let tracked: usize = self.by_cert.values().map(HashMap::len).sum();
            if crl.len() <= tracked {
                for (issuer, serial, _) in crl.entries() {
                    if let Some(set) = self.by_cert.get(issuer).and_then(|s| s.get(serial)) {
                        ids.extend(set.iter());
                    }
                }
            } else {
                for (issuer, serials) in &self.by_cert {
                    for (serial, set) in serials {
                        if crl.lookup_cert(issuer, serial).is_some() {
                            ids.extend(set.iter());
                        }
                    }
                }
            }
            return;
        }
        let Some(serials) = self.by_cert.get(crl.issuer_key()) else {
            return;
        };
        if crl.len() <= serials.len() {
            for (_, serial, _) in crl.entries() {
                if let Some(set) = serials.get(serial) {
                    ids.extend(set.iter());
                }
            }
        } else {
            for (serial, set) in serials {
                if crl.lookup(serial).is_some() {
                    ids.extend(set.iter());
                }
            }
        }
    }

    pub(super) fn renew(&mut self, id: u64, until: i64) {
        if let Some(conn) = self.conns.get_mut(&id) {
            self.deadlines.remove(&(conn.valid_until, id));
            conn.valid_until = until;
            self.deadlines.insert((until, id));
        }
    }

    /// Removes every trace of the connection.
    pub(super) fn remove(&mut self, id: u64) -> Option<Conn> {
        let conn = self.conns.remove(&id)?;
        self.deadlines.remove(&(conn.valid_until, id));
        for cert in &conn.path {
            if let Some(serials) = self.by_cert.get_mut(&cert.issuer_key) {
                if let Some(ids) = serials.get_mut(cert.serial()) {
                    ids.remove(id);
                    if ids.is_empty() {
                        serials.remove(cert.serial());
                    }
                }
                if serials.is_empty() {
                    self.by_cert.remove(&cert.issuer_key);
                    self.issuers.remove(&cert.issuer_key);
                    self.issuer_keys.retain(|_, key| *key != cert.issuer_key);
                }
            }
        }
        for ca in conn
            .path
            .iter()
            .skip(1)
            .map(|c| c.sha256)
            .chain([conn.anchor.sha256])
        {
            if let Some(ids) = self.by_ca.get_mut(&ca) {
                ids.remove(&id);
                if ids.is_empty() {
                    self.by_ca.remove(&ca);
                }
            }
        }
        for cert in &conn.path {
            release(&mut self.parsed, &cert.sha256);
        }
        release(&mut self.anchors, &conn.anchor.sha256);
        Some(conn)
    }

    pub(super) fn stats(&self) -> RegistryStats {
        use std::mem::size_of;
        let set = |s: &HashSet<u64>| s.capacity() * (size_of::<u64>() + 1);
        let mut bytes = self.conns.capacity() * (size_of::<(u64, Conn)>() + 1);
        for conn in self.conns.values() {
            bytes += conn.extras.len() * size_of::<CertificateDer<'static>>()
                + conn.path.capacity() * size_of::<Arc<CertInfo>>()
                + conn
                    .labels
                    .iter()
                    .map(|(k, v)| k.capacity() + v.capacity() + 2 * size_of::<String>())
                    .sum::<usize>()
                + size_of::<Mutex<SignalState>>()
                + 2 * size_of::<usize>();
        }
        bytes += self.by_cert.capacity() * (size_of::<(Arc<[u8]>, Serials)>() + 1);
        let mut certificates = 0;
        for (issuer, serials) in &self.by_cert {
            certificates += serials.len();
            bytes += issuer.len() + serials.capacity() * (size_of::<(Box<[u8]>, Ids)>() + 1);
            for (serial, ids) in serials {
                bytes += serial.len() + ids.heap_bytes();
            }
        }
        bytes += self.issuer_keys.capacity() * (size_of::<(Vec<u8>, Arc<[u8]>)>() + 1);
        bytes += self
            .issuer_keys
            .iter()
            .map(|(der, key)| der.capacity() + key.len())
            .sum::<usize>();
        bytes += self.by_ca.capacity() * (size_of::<([u8; 32], HashSet<u64>)>() + 1);
        bytes += self.by_ca.values().map(set).sum::<usize>();
        // A B-tree node holds up to 11 keys; count ~1.5x per key for slack.
        bytes += self.deadlines.len() * size_of::<(i64, u64)>() * 3 / 2;
        bytes += self.parsed.capacity() * (size_of::<([u8; 32], (Arc<CertInfo>, usize))>() + 1);
        bytes += self.anchors.capacity() * (size_of::<([u8; 32], (Arc<Anchor>, usize))>() + 1);
        RegistryStats {
            connections: self.conns.len(),
            issuers: self.by_cert.len(),
            certificates,
            cas: self.by_ca.len(),
            deadlines: self.deadlines.len(),
            parsed: self.parsed.len(),
            shared: self.anchors.len() + self.issuers.len(),
            index_bytes: bytes,
        }
    }
}

/// One connection less holds the shared entry `key`; the last one frees it.
pub(super) fn release<T>(map: &mut HashMap<[u8; 32], (T, usize)>, key: &[u8; 32]) {
    if let Some((_, holders)) = map.get_mut(key) {
        *holders = holders.saturating_sub(1);
        if *holders == 0 {
            map.remove(key);
        }
    }
}
