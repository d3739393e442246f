//! Signature verification of a parsed token against a provider's keys.
//!
//! `jsonwebtoken` verifies every algorithm but ES512, which the `p521` crate
//! verifies. `jsonwebtoken` leaves key selection to its caller; it happens
//! here: the key family must accept the token's `alg`, a key's own `alg` must
//! equal it, and a `kid` in the token selects among keys with a `kid`.

use super::error::JwtError;
use super::keys::{Key, Material};
use super::token::{Algorithm, Header, Token};
use jsonwebtoken::crypto::CryptoProvider;
use signature::Verifier as _;

/// Most keys tried for one token, so a JWKS of many keys without `kid` cannot
/// multiply the cost of a forged token.
pub const MAX_KEYS_TRIED: usize = 8;

/// Verifies the token's signature with the first matching key that accepts
/// it and returns that key. Returns [`JwtError::KeyNotFound`] when no key
/// matches, [`JwtError::VerificationFailed`] when none verifies.
pub fn verify<'k>(token: &Token<'_>, keys: &'k [Key]) -> Result<&'k Key, JwtError> {
    verify_signature(
        &token.header,
        token.signing_input.as_bytes(),
        &token.signature,
        keys,
    )
}

/// Verifies a signature over `message` made with the `alg` and `kid` of
/// `header`, as [`verify`] does for a whole token.
pub fn verify_signature<'k>(
    header: &Header,
    message: &[u8],
    signature: &[u8],
    keys: &'k [Key],
) -> Result<&'k Key, JwtError> {
    let alg = header.alg;
    let kid = header.kid.as_deref();
    let mut tried = 0;
    for key in keys.iter().filter(|key| key.matches(alg, kid)) {
        if tried == MAX_KEYS_TRIED {
            break;
        }
        tried += 1;
        if verify_with(alg, key, message, signature) {
            return Ok(key);
        }
    }
    if tried == 0 {
        Err(JwtError::KeyNotFound)
    } else {
        Err(JwtError::VerificationFailed)
    }
}

/// Checks one signature over `message` with one key. The caller has checked
/// that the key's family accepts `alg`.
pub fn verify_with(alg: Algorithm, key: &Key, message: &[u8], signature: &[u8]) -> bool {
    match &key.material {
        Material::P521(verifying_key) => {
            // JWS carries ECDSA signatures as raw r || s of 66 bytes each
            // (RFC 7518, section 3.4); `from_slice` rejects any other length
            // (so DER), and zero or out-of-range scalars.
            if alg != Algorithm::ES512 || signature.len() != 132 {
                return false;
            }
            let Ok(parsed) = p521::ecdsa::Signature::from_slice(signature) else {
                return false;
            };
            verifying_key.verify(message, &parsed).is_ok()
        }
        Material::Standard(decoding_key) => {
            let Some(standard) = standard_algorithm(alg) else {
                return false;
            };
            if !signature_length_fits(alg, signature.len()) {
                return false;
            }
            let Some(provider) = CryptoProvider::try_get_default() else {
                return false;
            };
            let Ok(verifier) = (provider.verifier_factory)(&standard, decoding_key) else {
                return false;
            };
            verifier.verify(message, &signature.to_vec()).is_ok()
        }
    }
}

/// Rejects signature lengths that no valid signature has, before any
/// arithmetic: raw r || s for ECDSA (so DER is refused), 64 bytes for
/// Ed25519, and at least 2048 bits for RSA. HMAC tags are compared in full by
/// the MAC check.
fn signature_length_fits(alg: Algorithm, length: usize) -> bool {
    match alg {
        Algorithm::ES256 => length == 64,
        Algorithm::ES384 => length == 96,
        Algorithm::ES512 => length == 132,
        Algorithm::EdDSA => length == 64,
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512 => length >= 256,
        Algorithm::HS256 => length == 32,
        Algorithm::HS384 => length == 48,
        Algorithm::HS512 => length == 64,
    }
}

fn standard_algorithm(alg: Algorithm) -> Option<jsonwebtoken::Algorithm> {
    use jsonwebtoken::Algorithm as J;
    Some(match alg {
        Algorithm::HS256 => J::HS256,
        Algorithm::HS384 => J::HS384,
        Algorithm::HS512 => J::HS512,
        Algorithm::RS256 => J::RS256,
        Algorithm::RS384 => J::RS384,
        Algorithm::RS512 => J::RS512,
        Algorithm::PS256 => J::PS256,
        Algorithm::PS384 => J::PS384,
        Algorithm::PS512 => J::PS512,
        Algorithm::ES256 => J::ES256,
        Algorithm::ES384 => J::ES384,
        Algorithm::EdDSA => J::EdDSA,
        Algorithm::ES512 => return None,
    })
}
