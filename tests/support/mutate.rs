//! Deterministic mutation of DER (and any) bytes: a tiny xorshift PRNG and
//! mutators that flip bits, write special bytes, truncate, insert, delete,
//! duplicate ranges and rewrite tags and lengths found by a lenient TLV walk.

use pki_fixtures::der::read_header;

/// xorshift64* (Marsaglia / Vigna): small, fast, and good enough to pick
/// mutations. Deterministic for a given seed.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        // Never zero: xorshift has an all-zero fixed point.
        Self(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform-ish in `0..n`; `n` must be non-zero.
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub(crate) fn byte(&mut self) -> u8 {
        (self.next_u64() >> 56) as u8
    }

    pub(crate) fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

/// Bytes that tend to matter in DER: zero, all ones, the long-form and
/// indefinite length marker, common tags.
pub(crate) const INTERESTING: &[u8] = &[
    0x00, 0xff, 0x80, 0x7f, 0x81, 0x82, 0x84, 0x01, 0x30, 0x31, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0a,
    0x17, 0x18, 0xa0, 0xa3, 0x1f,
];

/// Tags to swap in for an element's tag.
pub(crate) const TAGS: &[u8] = &[
    0x30, 0x31, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0a, 0x0c, 0x13, 0x17, 0x18, 0x80, 0x81, 0x82,
    0x86, 0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0x1f, 0x3f, 0xbf, 0xff, 0x00,
];

/// Where one TLV header sits in a buffer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Header {
    pub(crate) tag_at: usize,
    /// Offset of the first length octet.
    pub(crate) len_at: usize,
    /// Number of length octets (1 for the short form).
    pub(crate) len_octets: usize,
    /// Content length.
    pub(crate) len: usize,
}

/// Every TLV header found by a lenient walk (descending into constructed
/// elements, BIT STRINGs and OCTET STRINGs that happen to hold DER).
pub(crate) fn headers(data: &[u8]) -> Vec<Header> {
    fn walk(data: &[u8], base: usize, depth: u32, out: &mut Vec<Header>) {
        let mut i = 0;
        while i < data.len() && out.len() < 2048 {
            // Definite lengths of up to 4 octets only.
            let Some((_, hlen, len)) = read_header(&data[i..]).filter(|(_, h, _)| *h <= 6) else {
                return;
            };
            let start = i + hlen;
            let Some(end) = start.checked_add(len).filter(|e| *e <= data.len()) else {
                return;
            };
            out.push(Header {
                tag_at: base + i,
                len_at: base + i + 1,
                len_octets: hlen - 1,
                len,
            });
            let tag = data[i];
            if depth < 24 {
                let content = &data[start..end];
                if tag & 0x20 != 0 || tag == 0x04 {
                    walk(content, base + start, depth + 1, out);
                } else if tag == 0x03 && content.len() > 1 {
                    walk(&content[1..], base + start + 1, depth + 1, out);
                }
            }
            i = end;
        }
    }
    let mut out = Vec::new();
    walk(data, 0, 0, &mut out);
    out
}

/// DER length octets for `len`.
pub(crate) fn der_len(len: usize) -> Vec<u8> {
    if len < 0x80 {
        return vec![len as u8];
    }
    let bytes: Vec<u8> = len
        .to_be_bytes()
        .into_iter()
        .skip_while(|b| *b == 0)
        .collect();
    let mut out = vec![0x80 | bytes.len() as u8];
    out.extend(bytes);
    out
}

/// Replaces an element's length octets with something else: off by one,
/// zero, indefinite, non-minimal, oversized, or random.
pub(crate) fn mutate_length(rng: &mut Rng, data: &mut Vec<u8>, h: Header) {
    let new: Vec<u8> = match rng.below(9) {
        0 => der_len(h.len + 1),
        1 => der_len(h.len.saturating_sub(1)),
        2 => vec![0x00],
        3 => vec![0x80],
        4 => {
            // Non-minimal long form of the same length.
            let mut v = vec![0x82];
            v.extend((h.len as u16).to_be_bytes());
            v
        }
        5 => vec![0x84, 0xff, 0xff, 0xff, 0xff],
        6 => vec![0x85, 0x01, 0x00, 0x00, 0x00, 0x00],
        7 => der_len(h.len + 1 + rng.below(300)),
        _ => vec![rng.byte()],
    };
    data.splice(h.len_at..h.len_at + h.len_octets, new);
}

/// One random mutation of `data`.
pub(crate) fn mutate_once(rng: &mut Rng, data: &mut Vec<u8>) {
    if data.is_empty() {
        data.push(rng.byte());
        return;
    }
    let len = data.len();
    match rng.below(12) {
        0 | 1 => {
            let i = rng.below(len);
            data[i] ^= 1 << rng.below(8);
        }
        2 => {
            let i = rng.below(len);
            data[i] = rng.pick(INTERESTING);
        }
        3 => {
            let i = rng.below(len);
            data[i] = rng.byte();
        }
        4 => data.truncate(rng.below(len)),
        5 => {
            let at = rng.below(len + 1);
            let n = 1 + rng.below(4);
            let bytes: Vec<u8> = (0..n)
                .map(|_| {
                    if rng.below(2) == 0 {
                        rng.pick(INTERESTING)
                    } else {
                        rng.byte()
                    }
                })
                .collect();
            data.splice(at..at, bytes);
        }
        6 => {
            let at = rng.below(len);
            let n = 1 + rng.below(16.min(len - at));
            data.drain(at..at + n);
        }
        7 => {
            // Duplicate a range somewhere (repeated elements, extensions).
            let from = rng.below(len);
            let n = 1 + rng.below(64.min(len - from));
            let copy = data[from..from + n].to_vec();
            let at = rng.below(len + 1);
            data.splice(at..at, copy);
        }
        8 | 9 => {
            let hs = headers(data);
            if hs.is_empty() {
                let i = rng.below(len);
                data[i] = rng.pick(INTERESTING);
            } else {
                let h = hs[rng.below(hs.len())];
                mutate_length(rng, data, h);
            }
        }
        10 => {
            let hs = headers(data);
            if hs.is_empty() {
                data.truncate(rng.below(len));
            } else {
                let h = hs[rng.below(hs.len())];
                data[h.tag_at] = rng.pick(TAGS);
            }
        }
        _ => {
            // Delete a whole element, or swap two adjacent ones.
            let hs = headers(data);
            if let Some(h) = (!hs.is_empty()).then(|| hs[rng.below(hs.len())]) {
                let end = (h.len_at + h.len_octets + h.len).min(len);
                data.drain(h.tag_at..end);
            } else {
                let a = rng.below(len);
                let b = rng.below(len);
                data.swap(a, b);
            }
        }
    }
}

/// 1 to 3 mutations (mostly 1) of `original`.
pub(crate) fn mutate(rng: &mut Rng, original: &[u8]) -> Vec<u8> {
    let mut data = original.to_vec();
    let rounds = match rng.below(8) {
        0..=4 => 1,
        5 | 6 => 2,
        _ => 3,
    };
    for _ in 0..rounds {
        mutate_once(rng, &mut data);
    }
    data
}
