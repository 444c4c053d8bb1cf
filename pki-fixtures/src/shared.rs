//! Fixture PKIs generated once per process and shared.

use std::sync::{Arc, Mutex, PoisonError};

use crate::ca::normalize_time;
use crate::{generate, FixtureError, Pki, PkiOptions};

/// One cache slot: the PKI for one set of options, once generated.
type Slot = Arc<Mutex<Option<&'static Pki>>>;

/// [`generate`], once per process for each distinct `opts` (compared after the
/// normalisation `generate` applies: `now` in UTC whole seconds, no trailing `/` on
/// `base_url`); later calls with the same options return the same PKI. Meant for tests
/// and benchmarks that share a fixture PKI at a fixed `now` (with
/// [`PkiOptions::default`], whose `now` is the current time, every call is likely to
/// generate anew). The PKIs are never freed. A failed generation is not remembered: the
/// next call tries again.
///
/// ```
/// use pki_fixtures::{generate_shared, KeyAlg, PkiOptions};
/// let opts = PkiOptions {
///     alg: KeyAlg::Ed25519,
///     now: time::macros::datetime!(2026-01-15 12:00:00 UTC),
///     ..PkiOptions::default()
/// };
/// let first = generate_shared(&opts)?;
/// assert!(std::ptr::eq(first, generate_shared(&opts)?));
/// # Ok::<(), pki_fixtures::FixtureError>(())
/// ```
pub fn generate_shared(opts: &PkiOptions) -> Result<&'static Pki, FixtureError> {
    static SLOTS: Mutex<Vec<(PkiOptions, Slot)>> = Mutex::new(Vec::new());
    let key = PkiOptions {
        alg: opts.alg,
        base_url: opts.base_url.trim_end_matches('/').to_string(),
        now: normalize_time(opts.now),
    };
    let slot = {
        let mut slots = SLOTS.lock().unwrap_or_else(PoisonError::into_inner);
        match slots.iter().find(|(k, _)| *k == key) {
            Some((_, slot)) => Arc::clone(slot),
            None => {
                let slot = Slot::default();
                slots.push((key.clone(), Arc::clone(&slot)));
                slot
            }
        }
    };
    // Only callers with the same options wait for each other here.
    let mut pki = slot.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(pki) = *pki {
        return Ok(pki);
    }
    let generated: &'static Pki = Box::leak(Box::new(generate(&key)?));
    *pki = Some(generated);
    Ok(generated)
}
