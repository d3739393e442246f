//! The error type of the core crate.

use std::fmt;

/// An error raised while parsing or compiling the plugin configuration.
///
/// Each message is lower-case and starts with the JSON path of the failing
/// value, for example `headers.respons: unknown field ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The configuration is not valid JSON, or a field is unknown or has the
    /// wrong type.
    Json {
        /// JSON path of the failing value, `.` for the document itself.
        path: String,
        /// Message from the JSON deserializer.
        message: String,
    },
    /// A field has the right type but a value outside its allowed range or
    /// format.
    InvalidValue {
        /// JSON path of the failing value.
        path: String,
        /// Reason the value is invalid, with the expected form.
        reason: String,
    },
    /// A built-in rule failed to compile, which is a defect in this crate.
    InvalidRule {
        /// Id of the failing rule.
        id: &'static str,
        /// Message from the regex compiler.
        message: String,
    },
}

impl Error {
    pub(crate) fn invalid(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidValue {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Json { path, message } => write!(f, "{path}: {message}"),
            Error::InvalidValue { path, reason } => write!(f, "{path}: {reason}"),
            Error::InvalidRule { id, message } => {
                write!(f, "built-in rule {id} failed to compile: {message}")
            }
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_starts_with_path() {
        let error = Error::invalid(
            "filter.block_status",
            "must be between 400 and 599, got 200",
        );
        assert_eq!(
            error.to_string(),
            "filter.block_status: must be between 400 and 599, got 200"
        );
    }

    #[test]
    fn display_names_failing_rule() {
        let error = Error::InvalidRule {
            id: "sqli-union-select",
            message: "unclosed group".to_string(),
        };
        assert_eq!(
            error.to_string(),
            "built-in rule sqli-union-select failed to compile: unclosed group"
        );
    }
}
