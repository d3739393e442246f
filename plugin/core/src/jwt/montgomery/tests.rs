use super::*;
use crypto_bigint::modular::{BoxedMontyForm, BoxedMontyParams};
use crypto_bigint::{BoxedUint, Odd};

/// A xorshift generator, so that failures repeat.
pub(crate) struct Random(pub(crate) u64);

impl Random {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub(crate) fn bytes(&mut self, length: usize) -> Vec<u8> {
        (0..length).map(|_| self.next() as u8).collect()
    }

    /// Returns an odd number of exactly `bits` bits, big-endian.
    fn odd_modulus(&mut self, bits: usize) -> Vec<u8> {
        let mut bytes = self.bytes(bits.div_ceil(8));
        let unused = bytes.len() * 8 - bits;
        bytes[0] &= 0xff >> unused;
        bytes[0] |= 0x80 >> unused;
        if let Some(last) = bytes.last_mut() {
            *last |= 1;
        }
        bytes
    }

    /// Returns a number below `modulus`, with as many bytes.
    fn below(&mut self, modulus: &[u8]) -> Vec<u8> {
        loop {
            let mut bytes = self.bytes(modulus.len());
            bytes[0] &= 0xff >> modulus[0].leading_zeros();
            if bytes.as_slice() < modulus {
                return bytes;
            }
        }
    }
}

fn reference_pow(base: &[u8], exponent: &[u8], modulus: &[u8]) -> Vec<u8> {
    let modulus_int = BoxedUint::from_be_slice_vartime(modulus);
    let precision = modulus_int.bits_precision();
    let odd = Odd::new(modulus_int).into_option().unwrap();
    let params = BoxedMontyParams::new_vartime(odd);
    let base = BoxedUint::from_be_slice(base, precision).unwrap();
    let exponent = BoxedUint::from_be_slice_vartime(exponent);
    let result = BoxedMontyForm::new(base, &params).pow(&exponent).retrieve();
    let bytes = result.to_be_bytes();
    bytes[bytes.len() - modulus.len()..].to_vec()
}

fn small_pow(base: u64, exponent: u64, modulus: u64) -> u64 {
    let mut result = 1u128 % u128::from(modulus);
    let mut square = u128::from(base) % u128::from(modulus);
    let mut rest = exponent;
    while rest > 0 {
        if rest & 1 == 1 {
            result = result * square % u128::from(modulus);
        }
        square = square * square % u128::from(modulus);
        rest >>= 1;
    }
    result as u64
}

fn trimmed(value: u64) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    let start = bytes.iter().position(|&byte| byte != 0).unwrap_or(7);
    bytes[start..].to_vec()
}

#[test]
fn small_moduli_match_u128() {
    let mut random = Random(0x9e37_79b9_7f4a_7c15);
    for _ in 0..4000 {
        let bits = 2 + (random.next() % 62) as u32;
        let modulus = (random.next() >> (64 - bits)) | (1 << (bits - 1)) | 1;
        if modulus < 3 {
            continue;
        }
        let modulus_bytes = trimmed(modulus);
        let prepared = Modulus::new(&modulus_bytes).unwrap();
        let base = random.next() % modulus;
        let mut base_bytes = vec![0u8; modulus_bytes.len()];
        let full = base.to_be_bytes();
        base_bytes.copy_from_slice(&full[8 - modulus_bytes.len()..]);
        let exponent = random.next() >> (random.next() % 64);
        let expected = small_pow(base, exponent, modulus);
        let result = prepared.pow(&base_bytes, &exponent.to_be_bytes()).unwrap();
        let mut expected_bytes = vec![0u8; modulus_bytes.len()];
        expected_bytes.copy_from_slice(&expected.to_be_bytes()[8 - modulus_bytes.len()..]);
        assert_eq!(result, expected_bytes, "{base}^{exponent} mod {modulus}");
    }
}

#[test]
fn rsa_sizes_match_crypto_bigint() {
    let mut random = Random(0x2545_f491_4f6c_dd1d);
    let sizes = [
        512, 1021, 1024, 2041, 2047, 2048, 2049, 2056, 3071, 3072, 3500, 3600, 4095, 4096, 6144,
        8191, 8192,
    ];
    let exponents: [&[u8]; 5] = [
        &[3],
        &[1, 0, 1],
        &[0xff, 0xff, 0xff, 0xff],
        &[1, 0xff, 0xff, 0xff, 0xff],
        &[],
    ];
    for bits in sizes {
        let modulus = random.odd_modulus(bits);
        let prepared = Modulus::new(&modulus).unwrap();
        for exponent in exponents {
            let random_exponent;
            let exponent = if exponent.is_empty() {
                random_exponent = random.bytes(8);
                random_exponent.as_slice()
            } else {
                exponent
            };
            let base = random.below(&modulus);
            assert_eq!(
                prepared.pow(&base, exponent),
                Some(reference_pow(&base, exponent, &modulus)),
                "{bits}-bit modulus, exponent {exponent:?}"
            );
        }
    }
}

#[test]
fn edge_bases_match_crypto_bigint() {
    let mut random = Random(0x1234_5678_9abc_def1);
    for bits in [2048, 2049, 4096, 8192] {
        let modulus = random.odd_modulus(bits);
        let prepared = Modulus::new(&modulus).unwrap();
        let mut minus_one = modulus.clone();
        *minus_one.last_mut().unwrap() -= 1;
        let mut one = vec![0u8; modulus.len()];
        *one.last_mut().unwrap() = 1;
        let zero = vec![0u8; modulus.len()];
        for base in [zero, one, minus_one] {
            assert_eq!(
                prepared.pow(&base, &[1, 0, 1]),
                Some(reference_pow(&base, &[1, 0, 1], &modulus)),
                "{bits}-bit modulus"
            );
        }
    }
}

#[test]
fn bases_not_below_the_modulus_are_rejected() {
    let mut random = Random(0xdead_beef_cafe_f00d);
    for bits in [2041, 2048, 4096] {
        let modulus = random.odd_modulus(bits);
        let prepared = Modulus::new(&modulus).unwrap();
        assert_eq!(prepared.pow(&modulus, &[1, 0, 1]), None);
        let mut above = modulus.clone();
        *above.last_mut().unwrap() = above.last().unwrap().wrapping_add(2);
        if above > modulus {
            assert_eq!(prepared.pow(&above, &[1, 0, 1]), None);
        }
        let mut top_bit = vec![0u8; modulus.len()];
        top_bit[0] = 0x80;
        top_bit[modulus.len() - 1] = 5;
        // Above a 2041-bit modulus, in bits that its limbs do not span.
        if bits % 8 != 0 {
            assert_eq!(prepared.pow(&top_bit, &[1, 0, 1]), None);
        }
        let all_ones = vec![0xff; modulus.len()];
        assert_eq!(prepared.pow(&all_ones, &[1, 0, 1]), None);
        assert_eq!(prepared.pow(&modulus[1..], &[1, 0, 1]), None);
        let mut longer = vec![0u8];
        longer.extend_from_slice(&random.below(&modulus));
        assert_eq!(prepared.pow(&longer, &[1, 0, 1]), None);
    }
}

#[test]
fn unusable_moduli_are_rejected() {
    assert_eq!(Modulus::new(&[]), None);
    assert_eq!(Modulus::new(&[0, 0]), None);
    assert_eq!(Modulus::new(&[1]), None);
    assert_eq!(Modulus::new(&[0x10, 0x00]), None);
    assert!(Modulus::new(&[3]).is_some());
    assert!(Modulus::new(&[0, 0, 0x10, 0x01]).is_some());
}

#[test]
fn limb_width_narrows_with_the_modulus() {
    let mut random = Random(7);
    assert_eq!(Modulus::new(&random.odd_modulus(2048)).unwrap().bits, 28);
    assert_eq!(Modulus::new(&random.odd_modulus(4096)).unwrap().bits, 27);
    assert_eq!(Modulus::new(&random.odd_modulus(8192)).unwrap().bits, 27);
}
