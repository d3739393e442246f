//! Signature verification of a parsed token against a provider's keys.
//!
//! `jsonwebtoken` verifies HMAC tags. Signatures are verified by the
//! RustCrypto crates it builds on (`rsa`, `p256`, `p384`, `ed25519-dalek`) and
//! by `p521`, with keys decoded once, when the keys are loaded.
//!
//! Key selection happens here: the key family must accept the token's `alg`,
//! a key's own `alg` must equal it, and a `kid` in the token selects among
//! keys with a `kid`.

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
    if !signature_length_fits(alg, signature.len()) {
        return false;
    }
    match &key.material {
        // JWS carries ECDSA signatures as raw r || s (RFC 7518, section
        // 3.4); `from_slice` rejects zero or out-of-range scalars.
        Material::P256(verifying_key) if alg == Algorithm::ES256 => {
            p256::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|parsed| verifying_key.verify(message, &parsed).is_ok())
        }
        Material::P384(verifying_key) if alg == Algorithm::ES384 => {
            p384::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|parsed| verifying_key.verify(message, &parsed).is_ok())
        }
        Material::P521(verifying_key) if alg == Algorithm::ES512 => {
            p521::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|parsed| verifying_key.verify(message, &parsed).is_ok())
        }
        Material::Ed25519(verifying_key) if alg == Algorithm::EdDSA => {
            ed25519_dalek::Signature::from_slice(signature)
                .is_ok_and(|parsed| verifying_key.verify(message, &parsed).is_ok())
        }
        Material::Rsa(public_key) => verify_rsa(alg, public_key, message, signature),
        Material::Standard(decoding_key) => {
            let Some(standard) = hmac_algorithm(alg) else {
                return false;
            };
            let Some(provider) = CryptoProvider::try_get_default() else {
                return false;
            };
            let Ok(verifier) = (provider.verifier_factory)(&standard, decoding_key) else {
                return false;
            };
            verifier.verify(message, &signature.to_vec()).is_ok()
        }
        _ => false,
    }
}

/// Checks an RSASSA-PKCS1-v1_5 (`RS*`) or RSASSA-PSS (`PS*`) signature. PSS
/// takes a salt as long as the hash output and MGF1 with the same hash, as
/// RFC 7518, section 3.5 requires.
fn verify_rsa(alg: Algorithm, key: &rsa::PublicKey, message: &[u8], signature: &[u8]) -> bool {
    use rsa::sha2::{Digest as _, Sha256, Sha384, Sha512};
    use rsa::{Pkcs1v15Sign, Pss};
    let outcome = match alg {
        Algorithm::RS256 => key.verify(
            Pkcs1v15Sign::new::<Sha256>(),
            &Sha256::digest(message),
            signature,
        ),
        Algorithm::RS384 => key.verify(
            Pkcs1v15Sign::new::<Sha384>(),
            &Sha384::digest(message),
            signature,
        ),
        Algorithm::RS512 => key.verify(
            Pkcs1v15Sign::new::<Sha512>(),
            &Sha512::digest(message),
            signature,
        ),
        Algorithm::PS256 => key.verify(Pss::<Sha256>::new(), &Sha256::digest(message), signature),
        Algorithm::PS384 => key.verify(Pss::<Sha384>::new(), &Sha384::digest(message), signature),
        Algorithm::PS512 => key.verify(Pss::<Sha512>::new(), &Sha512::digest(message), signature),
        _ => return false,
    };
    outcome.is_ok()
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

fn hmac_algorithm(alg: Algorithm) -> Option<jsonwebtoken::Algorithm> {
    match alg {
        Algorithm::HS256 => Some(jsonwebtoken::Algorithm::HS256),
        Algorithm::HS384 => Some(jsonwebtoken::Algorithm::HS384),
        Algorithm::HS512 => Some(jsonwebtoken::Algorithm::HS512),
        _ => None,
    }
}
