//! Signature verification of a parsed token against a provider's keys.
//!
//! `hmac` checks HMAC tags from keyed states made when the key loads (see
//! [`super::keys::HmacKey`]), and [`super::ed25519`] Ed25519 signatures. RSA
//! signatures are checked here on `rsa`'s key type, so that
//! the public exponent costs a square-and-multiply. Natively, RSA computes
//! in `crypto-bigint`'s 64-bit limbs and ECDSA is verified by `p256`,
//! `p384` and `p521`. On wasm32 both compute in the narrow limbs of
//! [`super::montgomery`] and [`super::weierstrass`] instead, which take
//! fewer instructions there. Keys are decoded once, when they are loaded.
//!
//! Key selection happens here: the key family must accept the token's `alg`,
//! a key's own `alg` must equal it, and a `kid` in the token selects among
//! keys with a `kid`.

use super::error::JwtError;
use super::keys::{Key, Material, RsaKey};
use super::token::{Algorithm, Header, Token};
use super::weierstrass::{self, CurveName};
use signature::Verifier as _;

/// Whether RSA and ECDSA compute in narrow limbs: on wasm32, and with the
/// `narrow-limbs` feature, so that the conformance tests check that
/// arithmetic natively.
const NARROW_LIMBS: bool = cfg!(any(target_arch = "wasm32", feature = "narrow-limbs"));

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
        &token.signature(),
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
            if NARROW_LIMBS {
                let point = verifying_key.to_sec1_point(false);
                return weierstrass::verify(CurveName::P256, point.as_bytes(), message, signature);
            }
            p256::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|parsed| verifying_key.verify(message, &parsed).is_ok())
        }
        Material::P384(verifying_key) if alg == Algorithm::ES384 => {
            if NARROW_LIMBS {
                let point = verifying_key.to_sec1_point(false);
                return weierstrass::verify(CurveName::P384, point.as_bytes(), message, signature);
            }
            p384::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|parsed| verifying_key.verify(message, &parsed).is_ok())
        }
        Material::P521(verifying_key) if alg == Algorithm::ES512 => {
            if NARROW_LIMBS {
                let point = verifying_key.to_sec1_point(false);
                return weierstrass::verify(CurveName::P521, point.as_bytes(), message, signature);
            }
            p521::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|parsed| verifying_key.verify(message, &parsed).is_ok())
        }
        Material::Ed25519(key) if alg == Algorithm::EdDSA => key.verify(message, signature),
        Material::Rsa(public_key) => verify_rsa(alg, public_key, message, signature),
        Material::Hmac(key) => key.verify(alg, message, signature),
        _ => false,
    }
}

/// Checks an RSASSA-PKCS1-v1_5 (`RS*`) or RSASSA-PSS (`PS*`) signature. PSS
/// takes a salt as long as the hash output and MGF1 with the same hash, as
/// RFC 7518, section 3.5 requires.
fn verify_rsa(alg: Algorithm, key: &RsaKey, message: &[u8], signature: &[u8]) -> bool {
    use sha2::{Digest as _, Sha256, Sha384, Sha512};
    match alg {
        Algorithm::RS256 => {
            verify_pkcs1v15(key, &SHA256_PREFIX, &Sha256::digest(message), signature)
        }
        Algorithm::RS384 => {
            verify_pkcs1v15(key, &SHA384_PREFIX, &Sha384::digest(message), signature)
        }
        Algorithm::RS512 => {
            verify_pkcs1v15(key, &SHA512_PREFIX, &Sha512::digest(message), signature)
        }
        Algorithm::PS256 => verify_pss::<Sha256>(key, message, signature),
        Algorithm::PS384 => verify_pss::<Sha384>(key, message, signature),
        Algorithm::PS512 => verify_pss::<Sha512>(key, message, signature),
        _ => false,
    }
}

/// Returns `signature` raised to the key's public exponent, as big-endian
/// bytes as many as the modulus has, or `None` when the signature is not
/// that long or not below the modulus (RFC 8017, section 5.2.2).
///
/// With [`NARROW_LIMBS`] the narrow limbs of [`super::montgomery`] do the
/// arithmetic, elsewhere `crypto-bigint` in 64-bit limbs does.
fn rsa_public_operation(key: &RsaKey, signature: &[u8]) -> Option<Vec<u8>> {
    if NARROW_LIMBS {
        narrow_public_operation(key, signature)
    } else {
        wide_public_operation(&key.public, signature)
    }
}

/// Computes [`rsa_public_operation`] in narrow limbs, or in
/// `crypto-bigint`'s when the modulus is too long for them.
pub(crate) fn narrow_public_operation(key: &RsaKey, signature: &[u8]) -> Option<Vec<u8>> {
    match key.narrow() {
        Some(modulus) => modulus.pow(signature, &key.exponent),
        None => wide_public_operation(&key.public, signature),
    }
}

/// Computes [`rsa_public_operation`] with `crypto-bigint`.
///
/// The exponent is applied by square-and-multiply in variable time, which
/// is safe because the signature, the key and the result are all public:
/// 16 squarings and one multiplication for e = 65537, where the
/// constant-time windowed power of `rsa` spends about 35 multiplications.
pub(crate) fn wide_public_operation(key: &rsa::PublicKey, signature: &[u8]) -> Option<Vec<u8>> {
    use crypto_bigint::modular::BoxedMontyForm;
    use rsa::traits::PublicKeyParts as _;
    use rsa::BoxedUint;

    let size = key.size();
    if signature.len() != size {
        return None;
    }
    let s = BoxedUint::from_be_slice(signature, key.n_bits_precision()).ok()?;
    if s >= *key.n().as_ref() {
        return None;
    }
    let base = BoxedMontyForm::new(s, key.n_params());
    let exponent = key.e();
    let mut power = base.clone();
    for bit in (0..exponent.bit_width().saturating_sub(1)).rev() {
        power = power.square();
        if exponent.bit_vartime(bit) {
            power = power.mul(&base);
        }
    }
    let encoded = power.retrieve().to_be_bytes();
    let (high, low) = encoded.split_at(encoded.len().checked_sub(size)?);
    high.iter().all(|&byte| byte == 0).then(|| low.to_vec())
}

/// Checks an RSASSA-PSS signature with MGF1 over the same hash and a salt
/// as long as the hash output, as RFC 7518, section 3.5 requires, following
/// EMSA-PSS-VERIFY (RFC 8017, section 9.1.2).
fn verify_pss<D: sha2::Digest>(key: &RsaKey, message: &[u8], signature: &[u8]) -> bool {
    use rsa::traits::PublicKeyParts as _;

    let Some(encoded) = rsa_public_operation(key, signature) else {
        return false;
    };
    let hash_len = <D as sha2::Digest>::output_size();
    let salt_len = hash_len;
    let em_bits = key.public.n().as_ref().bit_width() as usize - 1;
    let em_len = em_bits.div_ceil(8);
    // The message representative has `em_len` bytes: any byte before them
    // must be zero.
    let Some(extra) = encoded.len().checked_sub(em_len) else {
        return false;
    };
    let (high, em) = encoded.split_at(extra);
    if high.iter().any(|&byte| byte != 0)
        || em_len < hash_len + salt_len + 2
        || em.last() != Some(&0xbc)
    {
        return false;
    }
    let db_len = em_len - hash_len - 1;
    let (masked_db, rest) = em.split_at(db_len);
    let hash = &rest[..hash_len];
    let unused_bits = 8 * em_len - em_bits;
    let top_mask = 0xffu8.checked_shr(unused_bits as u32).unwrap_or(0);
    if masked_db
        .first()
        .is_some_and(|&first| first & !top_mask != 0)
    {
        return false;
    }
    let mut db = mgf1::<D>(hash, db_len);
    for (byte, masked) in db.iter_mut().zip(masked_db) {
        *byte ^= masked;
    }
    if let Some(first) = db.first_mut() {
        *first &= top_mask;
    }
    let zeros = db_len - salt_len - 1;
    if db[..zeros].iter().any(|&byte| byte != 0) || db[zeros] != 0x01 {
        return false;
    }
    let salt = &db[zeros + 1..];
    let mut digest = D::new();
    digest.update([0u8; 8]);
    digest.update(D::digest(message));
    digest.update(salt);
    digest.finalize().as_slice() == hash
}

/// Returns the first `length` bytes of MGF1 over `seed` (RFC 8017,
/// appendix B.2.1).
fn mgf1<D: sha2::Digest>(seed: &[u8], length: usize) -> Vec<u8> {
    let mut output = Vec::with_capacity(length + <D as sha2::Digest>::output_size());
    let mut counter: u32 = 0;
    while output.len() < length {
        let mut digest = D::new();
        digest.update(seed);
        digest.update(counter.to_be_bytes());
        output.extend_from_slice(&digest.finalize());
        counter = counter.wrapping_add(1);
    }
    output.truncate(length);
    output
}

/// DER `DigestInfo` headers of SHA-256, SHA-384 and SHA-512 digests, with
/// NULL algorithm parameters.
const SHA256_PREFIX: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];
const SHA384_PREFIX: [u8; 19] = [
    0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05,
    0x00, 0x04, 0x30,
];
const SHA512_PREFIX: [u8; 19] = [
    0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05,
    0x00, 0x04, 0x40,
];

/// Checks an RSASSA-PKCS1-v1_5 signature as RFC 8017, section 8.2.2 does:
/// the signature, raised to the public exponent, must equal the encoding
/// `00 01 FF..FF 00 || prefix || hashed` byte for byte, so no padding is
/// parsed.
fn verify_pkcs1v15(key: &RsaKey, prefix: &[u8], hashed: &[u8], signature: &[u8]) -> bool {
    use rsa::traits::PublicKeyParts as _;

    let size = key.public.size();
    // RFC 8017 requires at least 8 bytes of 0xFF.
    let Some(padding) = size
        .checked_sub(3 + prefix.len() + hashed.len())
        .filter(|&padding| padding >= 8)
    else {
        return false;
    };
    let Some(em) = rsa_public_operation(key, signature) else {
        return false;
    };
    let mut expected = Vec::with_capacity(size);
    expected.extend_from_slice(&[0x00, 0x01]);
    expected.resize(2 + padding, 0xff);
    expected.push(0x00);
    expected.extend_from_slice(prefix);
    expected.extend_from_slice(hashed);
    em == expected
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
