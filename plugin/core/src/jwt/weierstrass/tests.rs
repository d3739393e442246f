use super::*;
use crate::jwt::montgomery::tests::Random;
use signature::{Signer as _, Verifier as _};

/// Signs random messages with random keys of each curve and checks that
/// this module and the curve's crate agree on the signature, on a copy
/// with one bit flipped, and on another message.
macro_rules! agreement_test {
    ($test:ident, $krate:ident, $curve:expr) => {
        #[test]
        fn $test() {
            let mut random = Random(0x9e37_79b9_7f4a_7c15);
            for round in 0..12 {
                let secret = loop {
                    let size = $krate::FieldBytes::default().len();
                    let bytes = random.bytes(size);
                    if let Ok(key) = $krate::ecdsa::SigningKey::from_slice(&bytes) {
                        break key;
                    }
                };
                let public = $krate::ecdsa::VerifyingKey::from(&secret);
                let point = public.to_sec1_point(false);
                let message = random.bytes(1 + round * 7);
                let signature: $krate::ecdsa::Signature = secret.sign(&message);
                let raw = signature.to_bytes().to_vec();
                assert!(
                    verify($curve, point.as_bytes(), &message, &raw),
                    "round {round}"
                );

                let mut flipped = raw.clone();
                let at = (random.next() as usize) % flipped.len();
                flipped[at] ^= 1 << (random.next() % 8);
                let expected = $krate::ecdsa::Signature::from_slice(&flipped)
                    .is_ok_and(|parsed| public.verify(&message, &parsed).is_ok());
                assert_eq!(
                    verify($curve, point.as_bytes(), &message, &flipped),
                    expected,
                    "round {round}"
                );

                let other = random.bytes(message.len());
                assert!(
                    !verify($curve, point.as_bytes(), &other, &raw),
                    "round {round}"
                );
            }
        }
    };
}

agreement_test!(p256_agrees_with_crate, p256, CurveName::P256);
agreement_test!(p384_agrees_with_crate, p384, CurveName::P384);
agreement_test!(p521_agrees_with_crate, p521, CurveName::P521);

#[test]
fn generator_multiples_match_crate() {
    use p256::elliptic_curve::sec1::ToSec1Point as _;
    let Some(curve) = p256_curve() else {
        panic!("P-256 parameters did not load");
    };
    let field = &curve.field;
    let mut expected = p256::ProjectivePoint::GENERATOR;
    for k in 1..16 {
        let point = curve.generator_multiples[k - 1];
        let affine = p256::AffinePoint::from(expected).to_sec1_point(false);
        let (Some(x), Some(y)) = (affine.x(), affine.y()) else {
            panic!("{k} G is the identity");
        };
        assert!(field.form(x) == point.x, "x of {k} G");
        assert!(field.form(y) == point.y, "y of {k} G");
        expected += p256::ProjectivePoint::GENERATOR;
    }
}

/// Checks products, squares, sums and differences of random numbers of
/// `size` bytes, the first masked with `top`, in `field` against
/// [`Modulus::pow`]. The mask keeps them and their sums below the modulus.
fn check_field<const N: usize, const W: usize>(
    field: &Field<N, W>,
    size: usize,
    top: u8,
    seed: u64,
) {
    let Some(reference) = Modulus::new(&field.bytes) else {
        panic!("modulus rejected");
    };
    let mut random = Random(seed);
    for _ in 0..200 {
        let mut a = random.bytes(size);
        let mut b = random.bytes(size);
        a[0] &= top;
        b[0] &= top;
        // The Montgomery product of a plain number and a Montgomery form is
        // the plain product, so a * b comes out of both operand orders.
        let product = field.multiply(&field.plain(&a), &field.form(&b));
        let swapped = field.multiply(&field.form(&a), &field.plain(&b));
        assert!(product == swapped);
        let a_squared = field.multiply(&field.plain(&a), &field.form(&a));
        let squared = field.to_bytes(&field.to_form(&field.square(&field.plain(&a))), size);
        let Some(expected_square) = reference.pow(&a, &[2]) else {
            panic!("reference power failed");
        };
        assert_eq!(squared, expected_square);
        let sum = field.to_bytes(&field.add(&field.plain(&a), &field.plain(&b)), size);
        let difference =
            field.to_bytes(&field.subtract(&field.plain(&sum), &field.plain(&b)), size);
        assert_eq!(difference, a);
        assert_eq!(field.to_bytes(&a_squared, size), expected_square);
    }
}

#[test]
fn field_arithmetic_matches_modulus() {
    let Some(curve) = p384_curve() else {
        panic!("P-384 parameters did not load");
    };
    assert!(curve.field.ones_below_top.is_none());
    check_field(&curve.field, 48, 0x7f, 0x2545_f491_4f6c_dd1d);
}

#[test]
fn p521_field_uses_ones_below_top() {
    let Some(curve) = p521_curve() else {
        panic!("P-521 parameters did not load");
    };
    assert_eq!(curve.field.ones_below_top, Some(1 << 17));
    assert!(curve.order.ones_below_top.is_none());
    check_field(&curve.field, 66, 0x00, 0x9e37_79b9_7f4a_7c15);
    // Values near the modulus: 2^521 - 1 - k.
    let modulus = curve.field.bytes.clone();
    for k in [1u8, 2, 255] {
        let mut near = modulus.clone();
        let last = near.len() - 1;
        near[last] -= k;
        let field = &curve.field;
        let squared = field.to_bytes(&field.to_form(&field.square(&field.plain(&near))), 66);
        let expected = Modulus::new(&modulus).and_then(|m| m.pow(&near, &[2]));
        assert_eq!(Some(squared), expected, "k = {k}");
    }
}

#[test]
fn out_of_range_scalars_are_rejected() {
    let secret = p256::ecdsa::SigningKey::from_slice(&[7; 32]).unwrap();
    let public = p256::ecdsa::VerifyingKey::from(&secret);
    let point = public.to_sec1_point(false);
    let message = b"header.payload";
    let signature: p256::ecdsa::Signature = secret.sign(message);
    let raw = signature.to_bytes().to_vec();
    let Some(curve) = p256_curve() else {
        panic!("P-256 parameters did not load");
    };
    let order = curve.order.bytes.clone();
    let (r, s) = raw.split_at(32);

    let zero = [0u8; 32];
    for (label, candidate) in [
        ("r = 0", [&zero[..], s].concat()),
        ("s = 0", [r, &zero[..]].concat()),
        ("r = n", [&order[..], s].concat()),
        ("s = n", [r, &order[..]].concat()),
        ("r = 2^256 - 1", [&[0xff; 32][..], s].concat()),
    ] {
        assert!(
            !verify(CurveName::P256, point.as_bytes(), message, &candidate),
            "{label}"
        );
    }
}

#[test]
fn malformed_inputs_are_rejected() {
    let secret = p256::ecdsa::SigningKey::from_slice(&[9; 32]).unwrap();
    let public = p256::ecdsa::VerifyingKey::from(&secret);
    let point = public.to_sec1_point(false);
    let compressed = public.to_sec1_point(true);
    let message = b"header.payload";
    let signature: p256::ecdsa::Signature = secret.sign(message);
    let raw = signature.to_bytes().to_vec();

    assert!(verify(CurveName::P256, point.as_bytes(), message, &raw));

    let uncompressed = point.as_bytes();
    let longer = [raw.clone(), vec![0]].concat();
    for (label, curve, key, signature) in [
        (
            "compressed key",
            CurveName::P256,
            compressed.as_bytes(),
            &raw[..],
        ),
        (
            "key without tag",
            CurveName::P256,
            &uncompressed[1..],
            &raw[..],
        ),
        ("short signature", CurveName::P256, uncompressed, &raw[..63]),
        ("long signature", CurveName::P256, uncompressed, &longer[..]),
        ("empty signature", CurveName::P256, uncompressed, &[][..]),
        ("other curve", CurveName::P384, uncompressed, &raw[..]),
    ] {
        assert!(!verify(curve, key, message, signature), "{label}");
    }
}

#[test]
fn digest_is_cut_to_order_length() {
    let Some(curve) = p256_curve() else {
        panic!("P-256 parameters did not load");
    };
    let digest: Vec<u8> = (0..64).collect();
    assert_eq!(curve.truncate(&digest), digest[..32].to_vec());
    assert_eq!(
        curve.truncate(&digest[..20]),
        [vec![0; 12], digest[..20].to_vec()].concat()
    );
    let Some(p521) = p521_curve() else {
        panic!("P-521 parameters did not load");
    };
    assert_eq!(
        p521.truncate(&digest),
        [vec![0, 0], digest.clone()].concat()
    );
    let long = vec![0xff; 80];
    let mut cut = vec![0xff; 66];
    cut[0] = 0x01;
    assert_eq!(p521.truncate(&long), cut);
}

#[test]
fn byte_helpers_carry() {
    assert_eq!(minus_two(&[1, 0, 1]), Some(vec![0, 0xff, 0xff]));
    assert_eq!(minus_two(&[1]), None);
    assert_eq!(plus_one(&[0, 0xff]), vec![1, 0]);
    assert_eq!(add_bytes(&[0x80, 1], &[0x7f, 0xff]), None);
    assert_eq!(add_bytes(&[0, 0xff], &[0, 1]), Some(vec![1, 0]));
    let mut value = vec![0x12, 0x34];
    shift_right(&mut value, 4);
    assert_eq!(value, vec![0x01, 0x23]);
    let mut value = vec![0x12, 0x34, 0x56];
    shift_right(&mut value, 12);
    assert_eq!(value, vec![0x01, 0x23]);
}

/// Checks that `invert` gives the inverse of random scalars and of 1, 2 and
/// `order - 1` in the scalar field of `curve`.
fn check_inverses<const N: usize, const W: usize>(curve: &Curve<N, W>, seed: u64) {
    let scalars = &curve.order;
    let mut one = [0u32; N];
    one[0] = 1;
    let mut random = Random(seed);
    let mut values: Vec<Vec<u8>> = (0..50)
        .map(|_| {
            let mut bytes = random.bytes(curve.size);
            bytes[0] &= 0x7f;
            bytes
        })
        .collect();
    let mut small = vec![0u8; curve.size];
    small[curve.size - 1] = 1;
    values.push(small.clone());
    small[curve.size - 1] = 2;
    values.push(small);
    let mut last = scalars.bytes.clone();
    let end = last.len() - 1;
    last[end] -= 1;
    values.push(last);
    for value in values {
        let plain = scalars.plain(&value);
        let inverse = scalars.invert(&plain);
        assert!(scalars.multiply(&plain, &scalars.to_form(&inverse)) == one);
    }
}

#[test]
fn scalar_inverses_are_inverses() {
    let (Some(p256), Some(p384), Some(p521)) = (p256_curve(), p384_curve(), p521_curve()) else {
        panic!("curve parameters did not load");
    };
    check_inverses(p256, 1);
    check_inverses(p384, 2);
    check_inverses(p521, 3);
}
