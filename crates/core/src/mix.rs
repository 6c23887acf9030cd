//! Small non-cryptographic mixing functions, shared by the simulator's
//! trace hash, the model crypto, the digest memo, the fuzzer's case seeds
//! and the seeded attack plans. None of them is a security boundary.

/// The golden-ratio increment of splitmix64's sequence.
pub const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// splitmix64's finaliser (Steele, Lea and Flood, 2014): a bijection on
/// `u64` in which every input bit affects every output bit.
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One step of splitmix64 from state `x`: the increment, then the
/// finaliser (the generator's first output for seed `x`).
pub fn splitmix64(x: u64) -> u64 {
    mix64(x.wrapping_add(GOLDEN_GAMMA))
}

/// Up to 8 trailing bytes as a little-endian word, zero-padded (what
/// `u64::from_le_bytes` of the bytes followed by zeros gives), without the
/// variable-length copy that compiles to a `memcpy` call in the hash loops
/// that use it.
pub fn tail_word(bytes: &[u8]) -> u64 {
    bytes.iter().rev().fold(0, |w, &b| w << 8 | u64::from(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_the_reference_sequence() {
        // The reference generator seeded with 0 starts 0xe220a8397b1dcdaf,
        // 0x6e789e6aa1b965f4 (its state advances by the gamma each step).
        assert_eq!(splitmix64(0), 0xe220_a839_7b1d_cdaf);
        assert_eq!(splitmix64(GOLDEN_GAMMA), 0x6e78_9e6a_a1b9_65f4);
        assert_eq!(mix64(0), 0);
    }

    #[test]
    fn tail_word_is_the_zero_padded_little_endian_word() {
        let bytes = [1u8, 2, 3, 0xfe, 5, 6, 7, 0xff];
        for len in 0..=8 {
            let mut w = [0u8; 8];
            w[..len].copy_from_slice(&bytes[..len]);
            assert_eq!(tail_word(&bytes[..len]), u64::from_le_bytes(w), "{len}");
        }
    }
}
