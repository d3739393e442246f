//! Detection of RSA moduli made by the Infineon RSALib key generator, whose
//! keys can be factored (CVE-2017-15361, "ROCA"; Nemec et al., "The Return of
//! Coppersmith's Attack", ACM CCS 2017).
//!
//! RSALib builds each prime as `k * M + (65537^a mod M)`, where `M` is the
//! product of the first small primes. The modulus is then, for every small
//! prime `p` that divides `M`, congruent modulo `p` to a power of 65537. The
//! test below is the fingerprint the authors published: the modulus passes
//! it when every residue lies in the subgroup that 65537 generates. A random
//! modulus passes with a probability of about 2^-28, the product of the
//! subgroup sizes divided by `p - 1`.

/// The small primes of the published fingerprint, 3 to 167.
const PRIMES: [u32; 38] = [
    3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97,
    101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167,
];

const GENERATOR: u32 = 65537;

/// Tells whether a big-endian RSA modulus has the RSALib fingerprint.
pub fn has_fingerprint(modulus: &[u8]) -> bool {
    PRIMES
        .iter()
        .all(|&prime| in_subgroup(residue(modulus, prime), prime))
}

/// Returns `modulus mod prime` for a big-endian modulus.
fn residue(modulus: &[u8], prime: u32) -> u32 {
    modulus
        .iter()
        .fold(0, |rest, &byte| (rest * 256 + u32::from(byte)) % prime)
}

/// Tells whether `value` is a power of 65537 modulo `prime`.
fn in_subgroup(value: u32, prime: u32) -> bool {
    let step = GENERATOR % prime;
    let mut power = 1;
    // The subgroup has at most `prime - 1` elements, so the walk ends within
    // that many steps, back at 1.
    for _ in 0..prime {
        if power == value {
            return true;
        }
        power = power * step % prime;
        if power == 1 {
            return false;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subgroup_of_small_primes() {
        // 65537 is 2 modulo 3 and 5, so it generates every non-zero residue.
        assert!(in_subgroup(1, 3));
        assert!(in_subgroup(2, 3));
        assert!(!in_subgroup(0, 3));
        assert!((1..5).all(|value| in_subgroup(value, 5)));
        // 65537 is 10 modulo 11, whose subgroup is {1, 10}.
        assert!(in_subgroup(10, 11));
        assert!(!in_subgroup(2, 11));
    }

    #[test]
    fn residue_of_big_endian_bytes() {
        assert_eq!(residue(&[0x01, 0x00], 7), 256 % 7);
        assert_eq!(residue(&[0xff, 0xff, 0xff], 167), 0xff_ffff % 167);
    }

    #[test]
    fn powers_of_generator_have_fingerprint() {
        // 1 and 65537 are powers of 65537 modulo every prime.
        assert!(has_fingerprint(&[0x01]));
        assert!(has_fingerprint(&[0x01, 0x00, 0x01]));
    }

    #[test]
    fn ordinary_modulus_has_no_fingerprint() {
        // 2^2048 - 1 is divisible by 3, and 0 is outside every subgroup.
        assert!(!has_fingerprint(&[0xff; 256]));
    }
}
