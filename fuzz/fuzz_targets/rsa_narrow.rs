//! The narrow-limb modular power of wasm32's RSA verification against
//! `crypto-bigint`: both must give the same power, or both reject a base
//! that is not below the modulus.
//!
//! Input: one byte giving the modulus length (1 to 64 bytes), the modulus
//! (made odd, then stripped of leading zero bytes), a base as long as what
//! is left of it, and up to 8 bytes of exponent.

#![no_main]

use crypto_bigint::modular::{BoxedMontyForm, BoxedMontyParams};
use crypto_bigint::{BoxedUint, Odd};
use libfuzzer_sys::fuzz_target;
use portcullis_core::jwt::montgomery::Modulus;

fuzz_target!(|data: &[u8]| {
    let Some((&length, rest)) = data.split_first() else {
        return;
    };
    let length = usize::from(length % 64) + 1;
    if rest.len() < 2 * length {
        return;
    }
    let (modulus, rest) = rest.split_at(length);
    let mut modulus = modulus.to_vec();
    modulus[length - 1] |= 1;
    let start = modulus.iter().position(|&byte| byte != 0).unwrap_or(length - 1);
    let modulus = modulus.split_off(start);
    let length = modulus.len();
    let (base, exponent) = rest.split_at(length);
    let exponent = &exponent[..exponent.len().min(8)];

    let Some(prepared) = Modulus::new(&modulus) else {
        // Only a modulus below 3 is rejected at these lengths.
        assert_eq!(modulus, [1]);
        return;
    };
    let result = prepared.pow(base, exponent);

    let modulus_int = BoxedUint::from_be_slice_vartime(&modulus);
    let base_int = BoxedUint::from_be_slice_vartime(base);
    if base_int >= modulus_int {
        assert_eq!(result, None);
        return;
    }
    let precision = modulus_int.bits_precision();
    let params = BoxedMontyParams::new_vartime(Odd::new(modulus_int).into_option().unwrap());
    let start = base.iter().position(|&byte| byte != 0).unwrap_or(base.len());
    let base_int = BoxedUint::from_be_slice(&base[start..], precision).unwrap();
    let expected = BoxedMontyForm::new(base_int, &params)
        .pow(&BoxedUint::from_be_slice_vartime(exponent))
        .retrieve()
        .to_be_bytes();
    let expected = expected[expected.len() - length..].to_vec();
    assert_eq!(result, Some(expected));
});
