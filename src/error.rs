//! mongod's error codes as one table, and the error type every command returns.
//!
//! Handlers never write a bare number: they name an `ErrorCode`. Lower layers have their own
//! narrow error enums (`store::StoreError`, `net::WireError`) that are mapped to a `MongoError`
//! at the command boundary.

use bson::{doc, Document};
use std::fmt;

macro_rules! error_codes {
    ($($name:ident = $num:expr),* $(,)?) => {
        /// mongod's numeric error codes with their codeNames.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode { $($name),* }

        impl ErrorCode {
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$name),*];

            pub fn code(self) -> i32 {
                match self { $(ErrorCode::$name => $num),* }
            }

            pub fn name(self) -> &'static str {
                match self { $(ErrorCode::$name => stringify!($name)),* }
            }

            pub fn from_code(code: i32) -> Option<ErrorCode> {
                match code { $($num => Some(ErrorCode::$name),)* _ => None }
            }
        }
    };
}

error_codes! {
    InternalError = 1,
    BadValue = 2,
    NoSuchKey = 4,
    GraphContainsCycle = 5,
    HostUnreachable = 6,
    HostNotFound = 7,
    UnknownError = 8,
    FailedToParse = 9,
    CannotMutateObject = 10,
    UserNotFound = 11,
    UnsupportedFormat = 12,
    Unauthorized = 13,
    TypeMismatch = 14,
    Overflow = 15,
    InvalidLength = 16,
    ProtocolError = 17,
    AuthenticationFailed = 18,
    IllegalOperation = 20,
    EmptyArrayOperation = 21,
    InvalidBSON = 22,
    LockTimeout = 24,
    NamespaceNotFound = 26,
    IndexNotFound = 27,
    PathNotViable = 28,
    NonExistentPath = 29,
    InvalidPath = 30,
    RoleNotFound = 31,
    ConflictingUpdateOperators = 40,
    CursorNotFound = 43,
    UserDataInconsistent = 45,
    NamespaceExists = 48,
    InvalidRoleModification = 49,
    MaxTimeMSExpired = 50,
    DollarPrefixedFieldName = 52,
    InvalidIdField = 53,
    NotSingleValueField = 54,
    InvalidDBRef = 55,
    EmptyFieldName = 56,
    DottedFieldName = 57,
    CommandNotFound = 59,
    ImmutableField = 66,
    CannotCreateIndex = 67,
    CannotIndexParallelArrays = 171,
    KeyTooLong = 17280,
    IndexAlreadyExists = 68,
    InvalidOptions = 72,
    InvalidNamespace = 73,
    IndexOptionsConflict = 85,
    IndexKeySpecsConflict = 86,
    NetworkTimeout = 89,
    OperationFailed = 96,
    ConflictingOperationInProgress = 117,
    WriteConflict = 112,
    CommandNotSupported = 115,
    NamespaceNotSharded = 118,
    InvalidSyncSource = 119,
    OplogOperationUnsupported = 120,
    DocumentValidationFailure = 121,
    NotImplemented = 238,
    CommandFailed = 125,
    CappedPositionLost = 136,
    IncompatibleServerVersion = 143,
    InvalidIndexSpecificationOption = 197,
    InterruptedAtShutdown = 11600,
    Interrupted = 11601,
    OperationNotSupportedInTransaction = 263,
    TransactionTooOld = 225,
    NoSuchSession = 206,
    NoSuchTransaction = 251,
    PreparedTransactionInProgress = 267,
    TransactionCommitted = 256,
    TransactionTooLarge = 257,
    UnsatisfiableWriteConcern = 100,
    UnknownReplWriteConcern = 79,
    WriteConcernFailed = 64,
    BSONObjectTooLarge = 10334,
    DuplicateKey = 11000,
    NotWritablePrimary = 10107,
    CommandNotSupportedOnView = 166,
    OptionNotSupportedOnView = 167,
    InvalidPipelineOperator = 168,
    CannotImplicitlyCreateCollection = 227,
    QueryExceededMemoryLimitNoDiskUseAllowed = 292,
    ChangeStreamHistoryLost = 286,
    ChangeStreamFatalError = 280,
    APIStrictError = 323,
    APIVersionError = 322,
    InvalidResumeToken = 260,
    Location16755 = 16755,
    Location17276 = 17276,
    Location31249 = 31249,
    Location31250 = 31250,
    Location31253 = 31253,
    Location31254 = 31254,
    Location40352 = 40352,
    Location51024 = 51024,
    NoQueryExecutionPlans = 291,
    TooManyFilesOpen = 264,
    ExceededMemoryLimit = 146,
    InvalidViewDefinition = 182,
    MaxSubPipelineDepthExceeded = 232,
    ObjectIsBusy = 314,
    ExceededTimeLimit = 262,
    QueryFeatureNotAllowed = 224,
    Location15974 = 15974,
    Location40414 = 40414,
    Location40415 = 40415,
    Location40602 = 40602,
    Location40674 = 40674,
    Location4886600 = 4886600,
    Location15975 = 15975,
    Location17312 = 17312,
    Location15998 = 15998,
    Location51091 = 51091,
    Location51074 = 51074,
    Location51075 = 51075,
    Location51246 = 51246,
    Location51270 = 51270,
    Location51050 = 51050,
    Location31255 = 31255,
    Location31256 = 31256,
    Location31257 = 31257,
    Location31258 = 31258,
    Location31259 = 31259,
    Location31271 = 31271,
    Location31272 = 31272,
    Location31273 = 31273,
    Location31274 = 31274,
    Location31275 = 31275,
    Location31276 = 31276,
    Location31277 = 31277,
    Location31308 = 31308,
    Location31394 = 31394,
    Location17217 = 17217,
    Location17419 = 17419,
    Location15958 = 15958,
    Location15955 = 15955,
    Location40234 = 40234,
    Location40323 = 40323,
    Location40324 = 40324,
    Location40571 = 40571,
    UnsupportedOpQueryCommand = 352,
    ClientMetadataCannotBeMutated = 186,
    QueryPlanKilled = 175,
    Location16410 = 16410,
    Location51108 = 51108,
    ShutdownInProgress = 91,
    PrimarySteppedDown = 189,
    SocketException = 9001,
    InterruptedDueToReplStateChange = 11602,
    NotPrimaryNoSecondaryOk = 13435,
    NotPrimaryOrSecondary = 13436,
    FailPointSetFailed = 266,
    TooManyLogicalSessions = 261,
    Location50768 = 50768,
    Location50889 = 50889,
    Location50911 = 50911,
}

/// The codes the retryable-writes specification calls retryable: mongod labels an error with
/// one of them `RetryableWriteError` when it ends a retryable write.
pub fn is_retryable_write_code(code: i32) -> bool {
    matches!(code, 6 | 7 | 89 | 91 | 189 | 262 | 9001 | 10107 | 11600 | 11602 | 13435 | 13436)
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.name(), self.code())
    }
}

/// The error every command returns; turned into mongod's `{ok: 0, errmsg, code, codeName}`.
#[derive(Debug, Clone, PartialEq)]
pub struct MongoError {
    pub code: ErrorCode,
    pub message: String,
    /// Extra reply fields some errors carry (`keyPattern`, `keyValue` for DuplicateKey ...).
    /// Boxed so the error stays small in every `Result`.
    pub info: Option<Box<Document>>,
    pub labels: Vec<String>,
}

impl MongoError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        MongoError { code, message: message.into(), info: None, labels: Vec::new() }
    }

    pub fn with_info(mut self, info: Document) -> Self {
        self.info = Some(Box::new(info));
        self
    }

    pub fn bad_value(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadValue, message)
    }

    pub fn type_mismatch(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::TypeMismatch, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InternalError, message)
    }

    /// The command-reply shape: `{ok: 0.0, errmsg, code, codeName, ...info}`.
    pub fn to_reply(&self) -> Document {
        let mut d = doc! {
            "ok": 0.0,
            "errmsg": self.message.clone(),
            "code": self.code.code(),
            "codeName": self.code.name(),
        };
        if let Some(info) = &self.info {
            for (k, v) in info.iter() {
                d.insert(k.clone(), v.clone());
            }
        }
        if !self.labels.is_empty() {
            d.insert("errorLabels", self.labels.clone());
        }
        d
    }

    /// The shape of one entry in a write command's `writeErrors` array.
    pub fn to_write_error(&self, index: usize) -> Document {
        let mut d = doc! {
            "index": index as i32,
            "code": self.code.code(),
        };
        if let Some(info) = &self.info {
            for (k, v) in info.iter() {
                d.insert(k.clone(), v.clone());
            }
        }
        d.insert("errmsg", self.message.clone());
        d
    }
}

impl fmt::Display for MongoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for MongoError {}

pub type Result<T, E = MongoError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for c in ErrorCode::ALL {
            assert!(seen.insert(c.code()), "duplicate code {}", c.code());
            assert_eq!(ErrorCode::from_code(c.code()), Some(*c));
        }
    }

    #[test]
    fn reply_shape() {
        let r = MongoError::new(ErrorCode::CommandNotFound, "no such command: 'x'").to_reply();
        assert_eq!(r.get_f64("ok").unwrap(), 0.0);
        assert_eq!(r.get_i32("code").unwrap(), 59);
        assert_eq!(r.get_str("codeName").unwrap(), "CommandNotFound");
    }
}
