//! The one error type of the engine: a stable `AERO_` code with its
//! severity, a message, the invariant it guards (if any) and details.

use std::fmt;

use serde_json::{Map, Value};

/// How bad an error is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// The request was refused; nothing changed.
    Reject,
    /// The request failed; the database keeps serving.
    Error,
    /// The process must stop.
    Fatal,
    /// An internal assertion failed: a bug; the process stops.
    Bug,
}

impl Severity {
    /// The name in responses (`REJECT`, `ERROR`, `FATAL`, `BUG`).
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Reject => "REJECT",
            Severity::Error => "ERROR",
            Severity::Fatal => "FATAL",
            Severity::Bug => "BUG",
        }
    }
}

macro_rules! error_codes {
    ($($variant:ident => $code:literal, $severity:ident;)*) => {
        /// Every error code AeroDB answers with (docs/ERRORS.md).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum ErrorCode { $(#[doc = concat!("`", $code, "`")] $variant,)* }

        impl ErrorCode {
            /// Every code, in the order of docs/ERRORS.md.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The code as it appears in responses (`AERO_…`).
            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $code,)* }
            }

            /// The code's fixed severity (schema errors are FATAL at boot and
            /// REJECT from `schema add`: see [`AeroError::with_severity`]).
            pub fn severity(self) -> Severity {
                match self { $(ErrorCode::$variant => Severity::$severity,)* }
            }
        }
    };
}

error_codes! {
    ConfigInvalid => "AERO_CONFIG_INVALID", Fatal;
    ConfigUnsafe => "AERO_CONFIG_UNSAFE", Fatal;
    ConfigImmutable => "AERO_CONFIG_IMMUTABLE", Fatal;
    SchemaInvalid => "AERO_SCHEMA_INVALID", Fatal;
    SchemaImmutable => "AERO_SCHEMA_IMMUTABLE", Fatal;
    SchemaRequired => "AERO_SCHEMA_REQUIRED", Reject;
    UnknownSchema => "AERO_UNKNOWN_SCHEMA", Reject;
    UnknownSchemaVersion => "AERO_UNKNOWN_SCHEMA_VERSION", Reject;
    SchemaValidationFailed => "AERO_SCHEMA_VALIDATION_FAILED", Reject;
    QueryInvalid => "AERO_QUERY_INVALID", Reject;
    QueryUnbounded => "AERO_QUERY_UNBOUNDED", Reject;
    QueryUnindexedField => "AERO_QUERY_UNINDEXED_FIELD", Reject;
    QueryLimitRequired => "AERO_QUERY_LIMIT_REQUIRED", Reject;
    QuerySortNotIndexed => "AERO_QUERY_SORT_NOT_INDEXED", Reject;
    WriteDuplicateId => "AERO_WRITE_DUPLICATE_ID", Reject;
    WriteNotFound => "AERO_WRITE_NOT_FOUND", Reject;
    WalAppendFailed => "AERO_WAL_APPEND_FAILED", Error;
    WalFsyncFailed => "AERO_WAL_FSYNC_FAILED", Fatal;
    WalCorruption => "AERO_WAL_CORRUPTION", Fatal;
    StorageIoError => "AERO_STORAGE_IO_ERROR", Error;
    StorageLocked => "AERO_STORAGE_LOCKED", Fatal;
    StorageUninitialized => "AERO_STORAGE_UNINITIALIZED", Fatal;
    StorageExists => "AERO_STORAGE_EXISTS", Fatal;
    DataCorruption => "AERO_DATA_CORRUPTION", Fatal;
    IndexCorruption => "AERO_INDEX_CORRUPTION", Fatal;
    MetadataCorruption => "AERO_METADATA_CORRUPTION", Fatal;
    RecoverySchemaMissing => "AERO_RECOVERY_SCHEMA_MISSING", Fatal;
    RecoveryFailed => "AERO_RECOVERY_FAILED", Fatal;
    InternalInvariant => "AERO_INTERNAL_INVARIANT", Bug;
}

/// An error with its code, message and context.
#[derive(Clone, Debug, PartialEq)]
pub struct AeroError {
    /// The stable code: match on it.
    pub code: ErrorCode,
    /// How bad it is (usually the code's own severity).
    pub severity: Severity,
    /// A human-readable explanation (not stable: do not match on it).
    pub message: String,
    /// The invariant this error guards, e.g. "Q1" (docs/ERRORS.md).
    pub invariant: Option<&'static str>,
    /// Machine-readable context (docs/ERRORS.md names each code's keys);
    /// read it with [`AeroError::detail_str`] and [`AeroError::detail_u64`].
    pub details: Map<String, Value>,
}

/// The result of every fallible engine call.
pub type Result<T, E = AeroError> = std::result::Result<T, E>;

impl AeroError {
    /// A new error with the code's own severity and no details.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> AeroError {
        AeroError { code, severity: code.severity(), message: message.into(), invariant: None, details: Map::new() }
    }

    /// Adds a detail.
    pub fn detail(mut self, key: &str, value: impl Into<Value>) -> AeroError {
        self.details.insert(key.to_string(), value.into());
        self
    }

    /// Names the invariant the error guards.
    pub fn invariant(mut self, name: &'static str) -> AeroError {
        self.invariant = Some(name);
        self
    }

    /// The same error with another severity.
    pub fn with_severity(mut self, severity: Severity) -> AeroError {
        self.severity = severity;
        self
    }

    /// Whether the database stops serving after this error.
    pub fn is_fatal(&self) -> bool {
        matches!(self.severity, Severity::Fatal | Severity::Bug)
    }

    /// A string detail (`"field"`, `"path"`, `"file"`, …), if present.
    pub fn detail_str(&self, key: &str) -> Option<&str> {
        self.details.get(key).and_then(Value::as_str)
    }

    /// An integer detail (`"page"`, `"offset"`, `"seq"`, …), if present.
    pub fn detail_u64(&self, key: &str) -> Option<u64> {
        self.details.get(key).and_then(Value::as_u64)
    }

    /// The detail as JSON text (`"_id"` may be a string or a number), if present.
    pub fn detail_text(&self, key: &str) -> Option<String> {
        self.details.get(key).map(|value| value.to_string())
    }

    /// An internal assertion failed.
    pub fn invariant_broken(message: impl Into<String>) -> AeroError {
        AeroError::new(ErrorCode::InternalInvariant, message)
    }

    /// The response object of SPEC section 6.
    pub fn to_json(&self) -> Value {
        let mut object = Map::new();
        object.insert("status".into(), Value::from("error"));
        object.insert("code".into(), Value::from(self.code.as_str()));
        object.insert("severity".into(), Value::from(self.severity.as_str()));
        object.insert("message".into(), Value::from(self.message.clone()));
        if let Some(invariant) = self.invariant {
            object.insert("invariant".into(), Value::from(invariant));
        }
        if !self.details.is_empty() {
            object.insert("details".into(), Value::Object(self.details.clone()));
        }
        Value::Object(object)
    }
}

impl fmt::Display for AeroError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for AeroError {}

/// Shorthand: a storage I/O error on `path`.
pub fn io_error(code: ErrorCode, action: &str, path: &std::path::Path, error: &std::io::Error) -> AeroError {
    AeroError::new(code, format!("{action} {}: {error}", path.display())).detail("file", path.display().to_string())
}

/// Shorthand: a decode failure inside a file, as a corruption error.
pub fn corruption(code: ErrorCode, path: &std::path::Path, page: Option<u64>, error: &aerodb_format::DecodeError) -> AeroError {
    let mut out = AeroError::new(code, format!("{}: {}", path.display(), error))
        .detail("file", path.display().to_string())
        .detail("offset", error.offset as u64)
        .detail("field", error.field);
    if let Some(page) = page {
        out = out.detail("page", page);
    }
    out
}
