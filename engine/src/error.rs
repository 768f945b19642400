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
        pub enum ErrorCode { $($variant,)* }

        impl ErrorCode {
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

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
    pub code: ErrorCode,
    pub severity: Severity,
    pub message: String,
    /// The invariant this error guards, e.g. "Q1" (docs/ERRORS.md).
    pub invariant: Option<&'static str>,
    pub details: Map<String, Value>,
}

pub type Result<T, E = AeroError> = std::result::Result<T, E>;

impl AeroError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> AeroError {
        AeroError { code, severity: code.severity(), message: message.into(), invariant: None, details: Map::new() }
    }

    pub fn detail(mut self, key: &str, value: impl Into<Value>) -> AeroError {
        self.details.insert(key.to_string(), value.into());
        self
    }

    pub fn invariant(mut self, name: &'static str) -> AeroError {
        self.invariant = Some(name);
        self
    }

    pub fn with_severity(mut self, severity: Severity) -> AeroError {
        self.severity = severity;
        self
    }

    pub fn is_fatal(&self) -> bool {
        matches!(self.severity, Severity::Fatal | Severity::Bug)
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
