//! The 401 and 403 responses for rejected requests (RFC 6750, section 3).

use super::error::JwtError;
use serde_json::json;

/// A rejection: status, headers and a small JSON body with a stable code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// 401, or 403 for claims that fail a requirement.
    pub status: u32,
    /// Why.
    pub error: JwtError,
    /// Provider whose token failed, when one did.
    pub provider: Option<String>,
    /// Response headers.
    pub headers: Vec<(String, String)>,
    /// Response body.
    pub body: Vec<u8>,
}

impl Rejection {
    /// Builds the response for an error. A request without any token gets a
    /// challenge without an error code, as RFC 6750, section 3.1 asks.
    pub fn new(realm: &str, error: JwtError, provider: Option<String>) -> Self {
        let (status, oauth_error) = if error.is_forbidden() {
            (403, Some("insufficient_scope"))
        } else if error == JwtError::Missing {
            (401, None)
        } else {
            (401, Some("invalid_token"))
        };
        let challenge = match oauth_error {
            Some(code) => format!(
                "Bearer realm=\"{realm}\", error=\"{code}\", error_description=\"{}\"",
                error.description()
            ),
            None => format!("Bearer realm=\"{realm}\""),
        };
        let body = json!({
            "error": oauth_error.unwrap_or("invalid_request"),
            "code": error.code(),
            "message": error.description(),
        });
        Rejection {
            status,
            error,
            provider,
            headers: vec![
                ("www-authenticate".to_string(), challenge),
                ("content-type".to_string(), "application/json".to_string()),
            ],
            body: body.to_string().into_bytes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expired_token_challenge() {
        let rejection = Rejection::new("api", JwtError::Expired, None);
        assert_eq!(rejection.status, 401);
        assert_eq!(
            rejection.headers[0].1,
            "Bearer realm=\"api\", error=\"invalid_token\", error_description=\"Jwt is expired\""
        );
        let body: serde_json::Value = serde_json::from_slice(&rejection.body).unwrap();
        assert_eq!(body["code"], "jwt_expired");
    }

    #[test]
    fn missing_token_has_no_error_code() {
        let rejection = Rejection::new("api", JwtError::Missing, None);
        assert_eq!(rejection.headers[0].1, "Bearer realm=\"api\"");
    }

    #[test]
    fn claim_mismatch_is_forbidden() {
        let rejection = Rejection::new("api", JwtError::ClaimMismatch, None);
        assert_eq!(rejection.status, 403);
        assert!(rejection.headers[0].1.contains("insufficient_scope"));
    }
}
