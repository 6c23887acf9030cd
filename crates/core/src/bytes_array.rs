//! Fixed-size byte arrays (digests, signatures, keys) that serialise as exactly
//! N bytes on the wire: postcard writes a tuple of u8 with no length prefix,
//! so the byte counts we report are the sizes a reader expects.

/// Defines `pub struct $name(pub [u8; $len])` with serde as an N-tuple.
#[macro_export]
macro_rules! fixed_bytes {
    ($(#[$doc:meta])* $name:ident, $len:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            pub const LEN: usize = $len;
            pub const ZERO: Self = Self([0u8; $len]);

            pub fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }

            /// Parses exactly `LEN` bytes.
            pub fn from_slice(bytes: &[u8]) -> Option<Self> {
                <[u8; $len]>::try_from(bytes).ok().map(Self)
            }

            /// The first bytes in hex, for logs.
            pub fn short_hex(&self) -> String {
                self.0.iter().take(4).map(|b| format!("{b:02x}")).collect()
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::ZERO
            }
        }

        impl ::std::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                write!(f, concat!(stringify!($name), "({}..)"), self.short_hex())
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use ::serde::ser::SerializeTuple;
                let mut t = s.serialize_tuple($len)?;
                for b in &self.0 {
                    t.serialize_element(b)?;
                }
                t.end()
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> ::serde::de::Visitor<'de> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                        write!(f, "{} bytes", $len)
                    }
                    fn visit_seq<A: ::serde::de::SeqAccess<'de>>(
                        self,
                        mut seq: A,
                    ) -> Result<$name, A::Error> {
                        let mut out = [0u8; $len];
                        for (i, slot) in out.iter_mut().enumerate() {
                            *slot = seq
                                .next_element()?
                                .ok_or_else(|| ::serde::de::Error::invalid_length(i, &self))?;
                        }
                        Ok($name(out))
                    }
                }
                d.deserialize_tuple($len, V)
            }
        }
    };
}

fixed_bytes!(
    /// A 32-byte BLAKE3 digest.
    Digest,
    32
);

impl Digest {
    /// Hashes `parts` with a domain tag; each part is length-prefixed so
    /// `("ab","c")` and `("a","bc")` differ. The domain selects a BLAKE3 key
    /// (derived once per domain and thread), and the parts are hashed in one
    /// shot from a reused buffer: this runs for every signed message, so it
    /// avoids building a streaming hasher each time.
    ///
    /// Recent results are memoised per thread (see `DigestState`): in the
    /// simulator every replica digests the same requests, batches and blocks,
    /// n times over in one process. A memo of a pure function: a hit returns
    /// the very digest BLAKE3 would, so it changes wall time only.
    pub fn of(domain: &str, parts: &[&[u8]]) -> Digest {
        use std::cell::RefCell;
        thread_local! {
            static STATE: RefCell<DigestState> = const { RefCell::new(DigestState::new()) };
        }
        STATE.with(|state| match state.try_borrow_mut() {
            Ok(mut state) => state.digest(domain, parts),
            // Only if BLAKE3 itself digested, which it does not.
            Err(_) => DigestState::new().digest(domain, parts),
        })
    }
}

/// One thread's `Digest::of` state: the BLAKE3 key of each domain seen, the
/// buffer the framed parts are gathered in, and the memo.
///
/// The memo is a small direct-mapped table of recent digests: (domain,
/// framed input) → digest. The slot is chosen by a cheap multiply-fold of
/// the input; a hit needs the stored domain and input to be equal byte for
/// byte, so it can never return another input's digest. Inputs above
/// `MEMO_MAX_INPUT` bytes are not memoised (their comparison would cost a
/// fair share of hashing, and they would pin memory). At most `MEMO_SLOTS`
/// entries per thread.
struct DigestState {
    keys: Vec<(Box<str>, [u8; 32])>,
    buf: Vec<u8>,
    memo: Vec<MemoEntry>,
}

struct MemoEntry {
    domain: usize,
    input: Vec<u8>,
    digest: Digest,
}

const MEMO_SLOTS: usize = 512;
const MEMO_MAX_INPUT: usize = 1024;

impl DigestState {
    const fn new() -> DigestState {
        DigestState {
            keys: Vec::new(),
            buf: Vec::new(),
            memo: Vec::new(),
        }
    }

    fn digest(&mut self, domain: &str, parts: &[&[u8]]) -> Digest {
        let domain = match self.keys.iter().position(|(d, _)| &**d == domain) {
            Some(i) => i,
            None => {
                let k = blake3::derive_key(domain, b"bftbench digest key");
                self.keys.push((domain.into(), k));
                self.keys.len() - 1
            }
        };
        let buf = &mut self.buf;
        buf.clear();
        for p in parts {
            buf.extend_from_slice(&(p.len() as u64).to_le_bytes());
            buf.extend_from_slice(p);
        }
        let keys = &self.keys;
        let hash = |input: &[u8]| match keys.get(domain) {
            Some((_, key)) => Digest(*blake3::keyed_hash(key, input).as_bytes()),
            None => Digest::ZERO, // unreachable: `domain` indexes `keys`
        };
        if buf.len() > MEMO_MAX_INPUT {
            return hash(buf);
        }
        if self.memo.is_empty() {
            self.memo = (0..MEMO_SLOTS)
                .map(|_| MemoEntry {
                    domain: usize::MAX,
                    input: Vec::new(),
                    digest: Digest::ZERO,
                })
                .collect();
        }
        let index = (fold(domain, buf) as usize) % MEMO_SLOTS;
        let Some(entry) = self.memo.get_mut(index) else {
            return hash(buf);
        };
        if entry.domain == domain && entry.input == *buf {
            return entry.digest;
        }
        let digest = hash(buf);
        entry.domain = domain;
        entry.input.clear();
        entry.input.extend_from_slice(buf);
        entry.digest = digest;
        digest
    }
}

/// A fast non-cryptographic fold of `input` (a word at a time, one multiply
/// each), only for picking a memo slot.
fn fold(domain: usize, input: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = (input.len() as u64 ^ (domain as u64) << 32).wrapping_mul(K);
    let mut chunks = input.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = (h ^ u64::from_le_bytes(w)).wrapping_mul(K).rotate_left(29);
    }
    h = (h ^ crate::mix::tail_word(chunks.remainder())).wrapping_mul(K);
    h ^ (h >> 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_separates_domains_and_part_boundaries() {
        let a = Digest::of("d1", &[b"ab", b"c"]);
        assert_eq!(a, Digest::of("d1", &[b"ab", b"c"]));
        assert_ne!(a, Digest::of("d1", &[b"a", b"bc"]));
        assert_ne!(a, Digest::of("d2", &[b"ab", b"c"]));
        assert_ne!(a, Digest::of("d1", &[b"abc"]));
    }

    #[test]
    fn memoised_digests_equal_fresh_blake3() {
        let fresh = |domain: &str, parts: &[&[u8]]| {
            let key = blake3::derive_key(domain, b"bftbench digest key");
            let mut buf = Vec::new();
            for p in parts {
                buf.extend_from_slice(&(p.len() as u64).to_le_bytes());
                buf.extend_from_slice(p);
            }
            Digest(*blake3::keyed_hash(&key, &buf).as_bytes())
        };
        let big = vec![7u8; MEMO_MAX_INPUT + 1];
        // Many inputs, so slots are reused and evicted; each asked twice in
        // a row (a miss, then a hit), in two domains.
        for i in 0..(3 * MEMO_SLOTS as u64) {
            for domain in ["m1", "m2"] {
                let tail: &[u8] = if i % 97 == 0 { &big } else { b"x" };
                let parts: [&[u8]; 2] = [&i.to_le_bytes(), tail];
                let expected = fresh(domain, &parts);
                assert_eq!(Digest::of(domain, &parts), expected, "{i} {domain}");
                assert_eq!(Digest::of(domain, &parts), expected, "{i} {domain} again");
            }
        }
    }
}
