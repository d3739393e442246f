//! Reasons a token is rejected, with the stable codes that responses, events and
//! metrics carry.
//!
//! Descriptions follow the status messages of Google's jwt_verify_lib, which are
//! the bodies Envoy's `jwt_authn` filter answers with, so that clients written
//! against Envoy see the same text.

use std::fmt;

/// Why a token, or the absence of one, failed a requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JwtError {
    /// No token in any configured location.
    Missing,
    /// More than one different token in the locations of one provider.
    MultipleTokens,
    /// Longer than the configured maximum token size.
    TooLarge,
    /// Not three base64url parts separated by two dots.
    BadFormat,
    /// Header part is not strict unpadded base64url.
    HeaderBadBase64,
    /// Header is not a JSON object, or has a duplicate member.
    HeaderBadJson,
    /// `alg` is missing or not a string.
    HeaderBadAlg,
    /// `alg` is `none` in any spelling.
    HeaderAlgNone,
    /// `alg` names an algorithm this module does not verify.
    HeaderUnsupportedAlg,
    /// `kid` is not a string.
    HeaderBadKid,
    /// `crit` is malformed or names an extension this module does not process.
    HeaderUnknownCrit,
    /// Payload part is not strict unpadded base64url.
    PayloadBadBase64,
    /// Payload is not a JSON object, or has a duplicate member.
    PayloadBadJson,
    /// `iss` is not a string.
    IssNotString,
    /// `sub` is not a string.
    SubNotString,
    /// `jti` is not a string.
    JtiNotString,
    /// `aud` is neither a string nor a list of strings.
    AudNotString,
    /// `iat` is not a JSON number. The name and message follow jwt_verify_lib,
    /// which also accepts a number with a fraction.
    IatNotInteger,
    /// `iat` is negative or past year 9999.
    IatOutOfRange,
    /// `nbf` is not a JSON number. The name and message follow jwt_verify_lib,
    /// which also accepts a number with a fraction.
    NbfNotInteger,
    /// `nbf` is negative or past year 9999.
    NbfOutOfRange,
    /// `exp` is not a JSON number. The name and message follow jwt_verify_lib,
    /// which also accepts a number with a fraction.
    ExpNotInteger,
    /// `exp` is negative or past year 9999.
    ExpOutOfRange,
    /// Signature part is not strict unpadded base64url.
    SignatureBadBase64,
    /// `exp` is absent and the provider requires it.
    ExpMissing,
    /// `exp` plus the clock skew is in the past.
    Expired,
    /// `nbf` minus the clock skew is in the future.
    NotYetValid,
    /// `iat` minus the clock skew is in the future.
    IssuedInFuture,
    /// The lifetime of the token is longer than `max_lifetime`.
    LifetimeTooLong,
    /// `iss` differs from the provider's `issuer`.
    UnknownIssuer,
    /// No audience of the token is among the provider's `audiences`.
    AudienceNotAllowed,
    /// No key of the provider matches the token's `kid` and `alg`.
    KeyNotFound,
    /// No key verifies the signature.
    VerificationFailed,
    /// The provider's remote JWKS has not been fetched yet, or fetching failed.
    JwksUnavailable,
    /// A claim fails a requirement of the matched rule.
    ClaimMismatch,
}

impl JwtError {
    /// Returns the stable code in response bodies, events and logs.
    pub const fn code(self) -> &'static str {
        match self {
            JwtError::Missing => "jwt_missing",
            JwtError::MultipleTokens => "jwt_multiple_tokens",
            JwtError::TooLarge => "jwt_too_large",
            JwtError::BadFormat => "jwt_bad_format",
            JwtError::HeaderBadBase64 => "jwt_header_bad_base64",
            JwtError::HeaderBadJson => "jwt_header_bad_json",
            JwtError::HeaderBadAlg => "jwt_header_bad_alg",
            JwtError::HeaderAlgNone => "jwt_alg_none",
            JwtError::HeaderUnsupportedAlg => "jwt_alg_unsupported",
            JwtError::HeaderBadKid => "jwt_header_bad_kid",
            JwtError::HeaderUnknownCrit => "jwt_header_unknown_crit",
            JwtError::PayloadBadBase64 => "jwt_payload_bad_base64",
            JwtError::PayloadBadJson => "jwt_payload_bad_json",
            JwtError::IssNotString => "jwt_iss_not_string",
            JwtError::SubNotString => "jwt_sub_not_string",
            JwtError::JtiNotString => "jwt_jti_not_string",
            JwtError::AudNotString => "jwt_aud_not_string",
            JwtError::IatNotInteger => "jwt_iat_not_integer",
            JwtError::IatOutOfRange => "jwt_iat_out_of_range",
            JwtError::NbfNotInteger => "jwt_nbf_not_integer",
            JwtError::NbfOutOfRange => "jwt_nbf_out_of_range",
            JwtError::ExpNotInteger => "jwt_exp_not_integer",
            JwtError::ExpOutOfRange => "jwt_exp_out_of_range",
            JwtError::SignatureBadBase64 => "jwt_signature_bad_base64",
            JwtError::ExpMissing => "jwt_exp_missing",
            JwtError::Expired => "jwt_expired",
            JwtError::NotYetValid => "jwt_not_yet_valid",
            JwtError::IssuedInFuture => "jwt_issued_in_future",
            JwtError::LifetimeTooLong => "jwt_lifetime_too_long",
            JwtError::UnknownIssuer => "jwt_unknown_issuer",
            JwtError::AudienceNotAllowed => "jwt_audience_not_allowed",
            JwtError::KeyNotFound => "jwt_key_not_found",
            JwtError::VerificationFailed => "jwt_verification_failed",
            JwtError::JwksUnavailable => "jwks_unavailable",
            JwtError::ClaimMismatch => "jwt_claim_mismatch",
        }
    }

    /// Returns the human-readable description in `error_description`.
    pub const fn description(self) -> &'static str {
        match self {
            JwtError::Missing => "Jwt is missing",
            JwtError::MultipleTokens => "Found multiple Jwt tokens",
            JwtError::TooLarge => "Jwt is longer than the maximum token size",
            JwtError::BadFormat => {
                "Jwt is not in the form of Header.Payload.Signature with two dots"
            }
            JwtError::HeaderBadBase64 => "Jwt header is an invalid Base64url encoded",
            JwtError::HeaderBadJson => "Jwt header is an invalid JSON",
            JwtError::HeaderBadAlg => "Jwt header [alg] field is required and must be a string",
            JwtError::HeaderAlgNone => "Jwt header [alg] none is not allowed",
            JwtError::HeaderUnsupportedAlg => "Jwt header [alg] is not supported",
            JwtError::HeaderBadKid => "Jwt header [kid] field is not a string",
            JwtError::HeaderUnknownCrit => "Jwt header [crit] names an unsupported extension",
            JwtError::PayloadBadBase64 => "Jwt payload is an invalid Base64url encoded",
            JwtError::PayloadBadJson => "Jwt payload is an invalid JSON",
            JwtError::IssNotString => "Jwt payload [iss] field is not a string",
            JwtError::SubNotString => "Jwt payload [sub] field is not a string",
            JwtError::JtiNotString => "Jwt payload [jti] field is not a string",
            JwtError::AudNotString => "Jwt payload [aud] field is not a string or string list",
            JwtError::IatNotInteger => "Jwt payload [iat] field is not an integer",
            JwtError::IatOutOfRange => "Jwt payload [iat] field is out of range",
            JwtError::NbfNotInteger => "Jwt payload [nbf] field is not an integer",
            JwtError::NbfOutOfRange => "Jwt payload [nbf] field is out of range",
            JwtError::ExpNotInteger => "Jwt payload [exp] field is not an integer",
            JwtError::ExpOutOfRange => "Jwt payload [exp] field is out of range",
            JwtError::SignatureBadBase64 => "Jwt signature is an invalid Base64url encoded",
            JwtError::ExpMissing => "Jwt payload [exp] field is required",
            JwtError::Expired => "Jwt is expired",
            JwtError::NotYetValid => "Jwt not yet valid",
            JwtError::IssuedInFuture => "Jwt is issued in the future",
            JwtError::LifetimeTooLong => "Jwt lifetime is longer than allowed",
            JwtError::UnknownIssuer => "Jwt issuer is not configured",
            JwtError::AudienceNotAllowed => "Audiences in Jwt are not allowed",
            JwtError::KeyNotFound => "Jwks doesn't have key to match kid or alg from Jwt",
            JwtError::VerificationFailed => "Jwt verification fails",
            JwtError::JwksUnavailable => "Jwks remote fetch is failed",
            JwtError::ClaimMismatch => "Jwt claims do not meet the requirement of this route",
        }
    }

    /// Tells whether the failure is about permissions rather than
    /// authentication: a valid token whose claims fail a rule gets 403.
    pub const fn is_forbidden(self) -> bool {
        matches!(self, JwtError::ClaimMismatch)
    }
}

impl fmt::Display for JwtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())
    }
}

impl std::error::Error for JwtError {}
