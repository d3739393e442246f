//! The narrow-limb ECDSA verification of wasm32 against the `p256`, `p384`
//! and `p521` crates: both must accept or both reject. The signature is one
//! that a key from the input made, kept, altered by one bit, with `r` and
//! `s` swapped, or replaced by bytes of the input.
//!
//! Input: one byte choosing the curve, a secret scalar as long as the
//! curve's field elements, one byte choosing the alteration, the message.

#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_core::jwt::weierstrass::{self, CurveName};

macro_rules! compare {
    ($krate:ident, $curve:expr, $data:expr) => {{
        use signature::{Signer as _, Verifier as _};
        use $krate::ecdsa::{Signature, SigningKey, VerifyingKey};

        let size = $krate::FieldBytes::default().len();
        if $data.len() <= size {
            return;
        }
        let (secret, rest) = $data.split_at(size);
        let Ok(key) = SigningKey::from_slice(secret) else {
            return;
        };
        let public = VerifyingKey::from(&key);
        let point = public.to_sec1_point(false);
        let Some((&alteration, message)) = rest.split_first() else {
            return;
        };
        let signature: Signature = key.sign(message);
        let mut raw = signature.to_bytes().to_vec();
        match alteration % 4 {
            0 => {}
            1 => {
                let at = usize::from(alteration / 4) * 7 % raw.len();
                raw[at] ^= 1 << (alteration % 8);
            }
            2 => raw.rotate_left(size),
            _ => raw = message.iter().copied().cycle().take(2 * size).collect(),
        }
        let expected =
            Signature::from_slice(&raw).is_ok_and(|parsed| public.verify(message, &parsed).is_ok());
        assert_eq!(
            weierstrass::verify($curve, point.as_bytes(), message, &raw),
            expected
        );
    }};
}

fuzz_target!(|data: &[u8]| {
    let Some((&choice, rest)) = data.split_first() else {
        return;
    };
    match choice % 3 {
        0 => compare!(p256, CurveName::P256, rest),
        1 => compare!(p384, CurveName::P384, rest),
        _ => compare!(p521, CurveName::P521, rest),
    }
});
