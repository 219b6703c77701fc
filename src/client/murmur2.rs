//! Kafka's default partitioner for keyed records: `toPositive(murmur2(key)) % partitions`,
//! murmur2 being the 32-bit MurmurHash2 with Kafka's seed (Java client `Utils.murmur2`).

/// MurmurHash2, 32 bits, seed 0x9747b28c, as the Java client computes it (little-endian
/// 4-byte blocks, the tail mixed in from its highest byte down).
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;

    let length = data.len() as u32;
    let mut h: u32 = SEED ^ length;
    let mut blocks = data.chunks_exact(4);
    for block in &mut blocks {
        let mut k = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = blocks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition Kafka's default partitioner picks for a key.
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    assert!(partitions > 0, "a topic has at least one partition");
    (murmur2(key) & 0x7fff_ffff) % partitions
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Java client's own vectors (`UtilsTest.testMurmur2` in apache/kafka).
    #[test]
    fn java_client_vectors() {
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973932308),
            (b"foobar", -790332482),
            (b"a-little-bit-long-string", -985981536),
            (b"a-little-bit-longer-string", -1486304829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58897971,
            ),
            (b"abc", 479470107),
        ];
        for (key, expected) in cases {
            assert_eq!(
                murmur2(key),
                expected,
                "murmur2({:?})",
                String::from_utf8_lossy(key)
            );
        }
    }

    /// The empty key: h = seed, then only the final mix. Worked by hand from the algorithm:
    /// 0x9747b28c ^ (>>13) = 0x974308b1; * 0x5bd1e995 = 0x106e2805 (mod 2^32);
    /// ^ (>>15) = 0x106e08d9 = 275646681.
    #[test]
    fn empty_key() {
        assert_eq!(murmur2(b""), 275_646_681);
    }

    #[test]
    fn partitions_are_in_range_and_non_negative() {
        // murmur2("21") is negative: the mask, not abs(), makes it positive.
        assert_eq!(
            partition_for_key(b"21", 1_000_000_007),
            (-973932308i32 & 0x7fff_ffff) % 1_000_000_007
        );
        for key in [&b""[..], b"a", b"21", b"foobar", b"abc"] {
            let p = partition_for_key(key, 6);
            assert!((0..6).contains(&p));
        }
    }
}
