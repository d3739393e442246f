//! Plugin configuration: parsing, checking and compiling the JSON document
//! that the host passes to `on_configure`.
//!
//! ```json
//! {
//!   "headers": {
//!     "enabled": true,
//!     "response": {"x-frame-options": {"mode": "set", "value": "SAMEORIGIN"}},
//!     "remove_response": ["server", "x-envoy-*"],
//!     "strip_request": ["x-portcullis-*"]
//!   },
//!   "filter": {
//!     "enabled": true,
//!     "mode": "block",
//!     "max_body_bytes": 65536,
//!     "on_body_too_large": "reject",
//!     "block_status": 403
//!   }
//! }
//! ```
//!
//! Every field is optional. Unknown fields are rejected with their JSON path.

use crate::cors::{CorsObject, CorsPolicy};
use crate::error::Error;
use crate::export::{EventsPolicy, EventsSection};
use crate::filter::{Filter, FilterSection};
use crate::headers::{HeaderPolicy, HeadersSection};
use crate::jwt::config::JwtSection;
use crate::jwt::policy::JwtPolicy;
use crate::limits::section::LimitsSection;
use crate::limits::Limits;
use serde::de::value::MapAccessDeserializer;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use std::fmt;
use std::marker::PhantomData;

/// Portcullis plugin configuration: a JSON object whose sections are all
/// optional. `{}` turns on header hardening and request filtering in
/// blocking mode.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(title = "Portcullis plugin configuration")
)]
#[serde(deny_unknown_fields, default)]
struct ConfigDocument {
    /// Response header hardening and the request-side header controls: host
    /// allowlist, stripped request headers, client address, cookies.
    headers: Object<HeadersSection>,
    /// Request filter: built-in and custom rules with anomaly scoring, and
    /// protocol limits.
    filter: Object<FilterSection>,
    /// Cross-origin resource sharing; off by default.
    cors: CorsObject,
    /// Token validation: the JSON form of Envoy's `jwt_authn`
    /// `JwtAuthentication` message. Without rules no request is checked.
    jwt: Object<JwtSection>,
    /// Per-key attempt counting: rate limits and lockouts. Without policies
    /// nothing is counted.
    limits: Object<LimitsSection>,
    /// Security event log rate limit and export to an HTTP collector.
    events: Object<EventsSection>,
}

/// A `T` that deserializes from a JSON object only.
///
/// Derived `Deserialize` impls for structs also accept a JSON array with the
/// fields by position, which would let `[true]` pass as a section.
#[derive(Debug, Clone, Default)]
pub(crate) struct Object<T>(pub(crate) T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
            type Value = T;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map))
            }
        }

        deserializer
            .deserialize_map(ObjectVisitor(PhantomData))
            .map(Object)
    }
}

/// Deserializes a `T` from a JSON object only, for a field declared as `T`
/// with `#[serde(deserialize_with = "crate::config::object")]`.
pub(crate) fn object<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Object::<T>::deserialize(deserializer).map(|object| object.0)
}

/// Deserializes a list whose items are JSON objects only, for a field
/// declared as `Vec<T>` with
/// `#[serde(deserialize_with = "crate::config::objects")]`.
pub(crate) fn objects<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    let items = Vec::<Object<T>>::deserialize(deserializer)?;
    Ok(items.into_iter().map(|object| object.0).collect())
}

/// The schema of `T`, whose derived schema already requires a JSON object.
#[cfg(feature = "schema")]
impl<T: schemars::JsonSchema> schemars::JsonSchema for Object<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }

    fn schema_id() -> std::borrow::Cow<'static, str> {
        T::schema_id()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }
}

/// Generates the JSON Schema (draft 2020-12) of the configuration document
/// that [`Config::from_json`] reads.
///
/// The schema checks types, enumerations, required fields, unknown fields,
/// numeric ranges and the syntax of ids, names and path prefixes. Rules that
/// involve several fields, such as "exactly one of", and values that need
/// parsing, such as regexes, CIDR blocks and durations, are checked by the
/// parser alone.
#[cfg(feature = "schema")]
pub fn json_schema() -> schemars::Schema {
    schemars::generate::SchemaSettings::draft2020_12()
        .with_transform(schemars::transform::RecursiveTransform(unwrap_description))
        .into_generator()
        .into_root_schema_for::<ConfigDocument>()
}

/// Joins the lines of each paragraph of a description taken from a doc
/// comment, so that a viewer that does not read Markdown shows no line
/// breaks at the comment's wrapping width.
#[cfg(feature = "schema")]
fn unwrap_description(schema: &mut schemars::Schema) {
    if let Some(serde_json::Value::String(text)) = schema.get_mut("description") {
        *text = text
            .split("\n\n")
            .map(|paragraph| paragraph.split('\n').collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
            .join("\n\n");
    }
}

/// The compiled configuration: every value checked and every regex compiled.
#[derive(Debug, Clone)]
pub struct Config {
    /// Header hardening policy.
    pub headers: HeaderPolicy,
    /// Request filter.
    pub filter: Filter,
    /// Cross-origin resource sharing policy.
    pub cors: CorsPolicy,
    /// Token validation.
    pub jwt: JwtPolicy,
    /// Per-key attempt counting and lockouts.
    pub limits: Limits,
    /// Log rate limit and export of security events.
    pub events: EventsPolicy,
}

impl Config {
    /// Parses, checks and compiles a configuration document.
    ///
    /// An empty or all-whitespace document means the defaults, the same as
    /// `{}`. Either the whole document is valid and compiled or an error
    /// names the first failing value by its JSON path.
    pub fn from_json(document: &[u8]) -> Result<Self, Error> {
        let parsed = if document.trim_ascii().is_empty() {
            ConfigDocument::default()
        } else {
            let mut deserializer = serde_json::Deserializer::from_slice(document);
            let parsed: Object<ConfigDocument> =
                serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
                    // The path tracker writes `?` when a syntax error leaves
                    // the position unknown.
                    let path = match error.path().to_string() {
                        unknown if unknown == "?" => ".".to_string(),
                        known => known,
                    };
                    Error::Json {
                        path,
                        message: error.inner().to_string(),
                    }
                })?;
            deserializer.end().map_err(|error| Error::Json {
                path: ".".to_string(),
                message: error.to_string(),
            })?;
            parsed.0
        };
        let headers = HeaderPolicy::compile(&parsed.headers.0)?;
        let cors = CorsPolicy::compile(&parsed.cors.0)?;
        // CORS writes `Vary` and the `Access-Control-*` headers itself, and a
        // response rule for one of them would override them. It could drop
        // `Vary: Origin`, or allow credentials for origins outside the list.
        if cors.enabled() {
            let owned = headers
                .rule_names()
                .find(|name| *name == "vary" || name.starts_with("access-control-"));
            if let Some(name) = owned {
                return Err(Error::invalid(
                    "headers",
                    format!("the response rule for {name} conflicts with cors, which sets that header; remove the rule or configure the header in cors"),
                ));
            }
        }
        Ok(Config {
            headers,
            filter: Filter::compile(&parsed.filter.0)?,
            cors,
            jwt: JwtPolicy::compile(&parsed.jwt.0)?,
            limits: Limits::compile(&parsed.limits.0)?,
            events: EventsPolicy::compile(&parsed.events.0)?,
        })
    }

    /// Compiles the default configuration.
    pub fn defaults() -> Result<Self, Error> {
        Config::from_json(b"{}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::{BodyTooLarge, FilterMode};
    use crate::headers::DEFAULT_RESPONSE_HEADERS;

    fn parse(json: &str) -> Config {
        match Config::from_json(json.as_bytes()) {
            Ok(config) => config,
            Err(error) => panic!("{json}: {error}"),
        }
    }

    fn parse_error(json: &str) -> String {
        match Config::from_json(json.as_bytes()) {
            Ok(_) => panic!("{json} was accepted"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn cors_owned_rules_rejected() {
        for rule in [
            r#""vary": {"mode": "default", "value": "Accept-Encoding"}"#,
            r#""access-control-allow-credentials": {"mode": "set", "value": "true"}"#,
        ] {
            let document = format!(
                r#"{{"cors": {{"enabled": true, "allowed_origins": ["https://app.example"]}}, "headers": {{"response": {{{rule}}}}}}}"#
            );
            assert!(
                parse_error(&document).contains("conflicts with cors"),
                "{document}"
            );
            parse(&format!(r#"{{"headers": {{"response": {{{rule}}}}}}}"#));
        }
    }

    #[test]
    fn empty_document_means_defaults() {
        for document in ["", "  \n", "{}"] {
            let config = parse(document);
            assert!(config.headers.enabled());
            assert!(config.filter.enabled());
            assert_eq!(config.filter.mode(), FilterMode::Block);
            assert_eq!(config.filter.max_body_bytes(), 65536);
            assert_eq!(config.filter.on_body_too_large(), BodyTooLarge::Reject);
            assert_eq!(
                config.headers.response_rules().len(),
                DEFAULT_RESPONSE_HEADERS.len()
            );
        }
    }

    #[test]
    fn full_document_parses() {
        let config = parse(
            r#"{
                "headers": {
                    "enabled": true,
                    "response": {"x-frame-options": {"mode": "set", "value": "SAMEORIGIN"}},
                    "remove_response": ["server", "x-envoy-*"],
                    "strip_request": ["x-portcullis-*", "x-internal"]
                },
                "filter": {
                    "enabled": true,
                    "mode": "monitor",
                    "max_body_bytes": 1024,
                    "on_body_too_large": "pass",
                    "block_status": 406
                }
            }"#,
        );
        assert_eq!(config.filter.mode(), FilterMode::Monitor);
        assert_eq!(config.filter.max_body_bytes(), 1024);
        assert_eq!(config.filter.on_body_too_large(), BodyTooLarge::Pass);
        assert_eq!(config.headers.strip_request().len(), 2);
    }

    #[test]
    fn unknown_field_names_its_path() {
        let message = parse_error(r#"{"headers": {"respons": {}}}"#);
        assert!(
            message.starts_with("headers.respons: unknown field `respons`"),
            "{message}"
        );
    }

    #[test]
    fn wrong_types_name_their_path() {
        let cases = [
            (
                r#"{"filter": {"enabled": "yes"}}"#,
                "filter.enabled: invalid type",
            ),
            (
                r#"{"filter": {"mode": "deny"}}"#,
                "filter.mode: unknown variant `deny`",
            ),
            (
                r#"{"filter": {"max_body_bytes": -1}}"#,
                "filter.max_body_bytes: invalid value",
            ),
            (
                r#"{"filter": {"block_status": 70000}}"#,
                "filter.block_status: invalid value",
            ),
            (
                r#"{"headers": {"remove_response": ["server", 7]}}"#,
                "headers.remove_response[1]: invalid type",
            ),
            (
                r#"{"headers": {"response": {"x-a": {"mode": "set", "value": 1}}}}"#,
                "headers.response.x-a.value: invalid type",
            ),
            (
                r#"{"headers": {"response": {"x-a": {"mode": "set", "valu": "1"}}}}"#,
                "headers.response.x-a.valu: unknown field",
            ),
            (
                r#"{"headers": {"response": []}}"#,
                "headers.response: invalid type",
            ),
            (
                r#"{"filter": [true]}"#,
                "filter: invalid type: sequence, expected a JSON object",
            ),
            (
                r#"{"headers": {"response": {"x-a": ["set", "1"]}}}"#,
                "headers.response.x-a: invalid type: sequence",
            ),
            (
                r#"{"filter": {"limits": [["GET"]]}}"#,
                "filter.limits: invalid type: sequence, expected a JSON object",
            ),
            (
                r#"{"filter": {"exclusions": [[["sqli-*"]]]}}"#,
                "filter.exclusions[0]: invalid type: sequence, expected a JSON object",
            ),
            (
                r#"{"filter": {"rules": [["a", null, "low", 1, ["path"], [], [], "x", []]]}}"#,
                "filter.rules[0]: invalid type: sequence, expected a JSON object",
            ),
            ("null", ".: invalid type: null"),
            ("[]", ".: invalid type: sequence"),
        ];
        for (json, expected) in cases {
            let message = parse_error(json);
            assert!(message.starts_with(expected), "{json}: {message}");
        }
    }

    #[test]
    fn syntax_errors_are_rejected() {
        let message = parse_error("{");
        assert!(message.starts_with(".: EOF while parsing"), "{message}");
        assert!(Config::from_json(b"{} {}").is_err());
        assert!(Config::from_json(b"\xff").is_err());
    }

    #[test]
    fn semantic_errors_are_rejected() {
        let message = parse_error(r#"{"filter": {"block_status": 200}}"#);
        assert!(message.starts_with("filter.block_status: "), "{message}");
        let message = parse_error(r#"{"headers": {"remove_response": ["*"]}}"#);
        assert!(
            message.starts_with("headers.remove_response[0]: "),
            "{message}"
        );
    }

    #[test]
    fn defaults_compile() {
        assert!(Config::defaults().is_ok());
    }
}
