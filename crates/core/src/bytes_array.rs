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
    pub fn of(domain: &str, parts: &[&[u8]]) -> Digest {
        use std::cell::RefCell;
        thread_local! {
            static KEYS: RefCell<Vec<(Box<str>, [u8; 32])>> = const { RefCell::new(Vec::new()) };
            static BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
        }
        let key = KEYS.with(|keys| {
            let mut keys = keys.borrow_mut();
            if let Some((_, k)) = keys.iter().find(|(d, _)| &**d == domain) {
                return *k;
            }
            let k = blake3::derive_key(domain, b"bftbench digest key");
            keys.push((domain.into(), k));
            k
        });
        BUF.with(|buf| {
            let mut buf = buf.borrow_mut();
            buf.clear();
            for p in parts {
                buf.extend_from_slice(&(p.len() as u64).to_le_bytes());
                buf.extend_from_slice(p);
            }
            Digest(*blake3::keyed_hash(&key, &buf).as_bytes())
        })
    }
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
}
