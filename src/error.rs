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
    // Authentication and user management (issue 6).
    MechanismUnavailable = 334,
    Location51002 = 51002,
    Location51003 = 51003,
    ConflictingUpdateOperators = 40,
    CursorNotFound = 43,
    NoMatchingDocument = 47,
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
    SnapshotTooOld = 239,
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
    ViewDepthLimitExceeded = 149,
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
    Location13026 = 13026,
    Location13027 = 13027,
    Location5626500 = 5626500,
    Location40603 = 40603,
    Location16606 = 16606,
    Location16764 = 16764,
    Location16766 = 16766,
    Location31303 = 31303,
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
    Location50737 = 50737,
    Location50738 = 50738,
    Location40239 = 40239,
    Location40240 = 40240,
    Location40241 = 40241,
    Location40243 = 40243,
    Location40244 = 40244,
    Location40245 = 40245,
    Location40246 = 40246,
    Location17053 = 17053,
    Location40099 = 40099,
    Location40100 = 40100,
    Location40101 = 40101,
    Location40103 = 40103,
    Location40104 = 40104,
    Location40105 = 40105,
    Location40185 = 40185,
    Location40327 = 40327,
    Location15957 = 15957,
    Location15956 = 15956,
    Location15972 = 15972,
    Location31319 = 31319,
    Location4568 = 4568,
    Location13113 = 13113,
    Location15947 = 15947,
    Location15952 = 15952,
    Location15959 = 15959,
    Location15969 = 15969,
    Location15973 = 15973,
    Location15976 = 15976,
    Location15981 = 15981,
    Location16878 = 16878,
    Location16879 = 16879,
    Location18534 = 18534,
    Location18629 = 18629,
    Location28646 = 28646,
    Location28647 = 28647,
    Location28745 = 28745,
    Location28746 = 28746,
    Location28747 = 28747,
    Location28748 = 28748,
    Location28749 = 28749,
    Location28808 = 28808,
    Location28809 = 28809,
    Location28810 = 28810,
    Location28811 = 28811,
    Location28812 = 28812,
    Location28818 = 28818,
    Location28822 = 28822,
    Location31002 = 31002,
    Location31119 = 31119,
    Location31120 = 31120,
    Location31252 = 31252,
    Location31320 = 31320,
    Location34460 = 34460,
    Location34464 = 34464,
    Location34471 = 34471,
    Location40075 = 40075,
    Location40076 = 40076,
    Location40147 = 40147,
    Location40148 = 40148,
    Location40149 = 40149,
    Location40156 = 40156,
    Location40157 = 40157,
    Location40158 = 40158,
    Location40160 = 40160,
    Location40169 = 40169,
    Location40170 = 40170,
    Location40171 = 40171,
    Location40180 = 40180,
    Location40192 = 40192,
    Location40193 = 40193,
    Location40194 = 40194,
    Location40196 = 40196,
    Location40197 = 40197,
    Location40198 = 40198,
    Location40199 = 40199,
    Location40200 = 40200,
    Location40201 = 40201,
    Location40202 = 40202,
    Location40228 = 40228,
    Location40229 = 40229,
    Location40235 = 40235,
    Location40236 = 40236,
    Location40237 = 40237,
    Location40238 = 40238,
    Location40272 = 40272,
    Location40450 = 40450,
    Location40451 = 40451,
    Location40535 = 40535,
    Location40540 = 40540,
    Location40541 = 40541,
    Location40600 = 40600,
    Location40601 = 40601,
    Location40629 = 40629,
    Location51132 = 51132,
    Location51134 = 51134,
    Location51178 = 51178,
    Location51182 = 51182,
    Location51183 = 51183,
    Location51186 = 51186,
    Location51199 = 51199,
    Location51272 = 51272,
    Location51750 = 51750,
    Location51751 = 51751,
    Location2942500 = 2942500,
    Location2942501 = 2942501,
    Location3041701 = 3041701,
    Location3041702 = 3041702,
    Location4031700 = 4031700,
    Location5166400 = 5166400,
    Location5166401 = 5166401,
    Location5787801 = 5787801,
    Location5787802 = 5787802,
    Location5787901 = 5787901,
    Location5787902 = 5787902,
    Location5788001 = 5788001,
    Location5788002 = 5788002,
    Location5788003 = 5788003,
    Location5788004 = 5788004,
    Location5858203 = 5858203,
    Location6031100 = 6031100,
    ConversionFailure = 241,
    Location10065 = 10065,
    Location15983 = 15983,
    Location16006 = 16006,
    Location16007 = 16007,
    Location16020 = 16020,
    Location16404 = 16404,
    Location16412 = 16412,
    Location16493 = 16493,
    Location16554 = 16554,
    Location16555 = 16555,
    Location16556 = 16556,
    Location16608 = 16608,
    Location16609 = 16609,
    Location16610 = 16610,
    Location16611 = 16611,
    Location16612 = 16612,
    Location16702 = 16702,
    Location16866 = 16866,
    Location16870 = 16870,
    Location16871 = 16871,
    Location16872 = 16872,
    Location16874 = 16874,
    Location16875 = 16875,
    Location16876 = 16876,
    Location16877 = 16877,
    Location16880 = 16880,
    Location16882 = 16882,
    Location16883 = 16883,
    Location17045 = 17045,
    Location17080 = 17080,
    Location17081 = 17081,
    Location17082 = 17082,
    Location17083 = 17083,
    Location17124 = 17124,
    Location18533 = 18533,
    Location18535 = 18535,
    Location18536 = 18536,
    Location18537 = 18537,
    Location18628 = 18628,
    Location28648 = 28648,
    Location28650 = 28650,
    Location28651 = 28651,
    Location28656 = 28656,
    Location28657 = 28657,
    Location28664 = 28664,
    Location28680 = 28680,
    Location28689 = 28689,
    Location28690 = 28690,
    Location28691 = 28691,
    Location28714 = 28714,
    Location28724 = 28724,
    Location28729 = 28729,
    Location28756 = 28756,
    Location28757 = 28757,
    Location28758 = 28758,
    Location28759 = 28759,
    Location28761 = 28761,
    Location28762 = 28762,
    Location28763 = 28763,
    Location28764 = 28764,
    Location28765 = 28765,
    Location28766 = 28766,
    Location31022 = 31022,
    Location31023 = 31023,
    Location31024 = 31024,
    Location31393 = 31393,
    Location34435 = 34435,
    Location34438 = 34438,
    Location34449 = 34449,
    Location34450 = 34450,
    Location34452 = 34452,
    Location34453 = 34453,
    Location34454 = 34454,
    Location34455 = 34455,
    Location34461 = 34461,
    Location34462 = 34462,
    Location34463 = 34463,
    Location34465 = 34465,
    Location34466 = 34466,
    Location34467 = 34467,
    Location34468 = 34468,
    Location40060 = 40060,
    Location40061 = 40061,
    Location40062 = 40062,
    Location40063 = 40063,
    Location40064 = 40064,
    Location40065 = 40065,
    Location40066 = 40066,
    Location40067 = 40067,
    Location40068 = 40068,
    Location40077 = 40077,
    Location40078 = 40078,
    Location40079 = 40079,
    Location40080 = 40080,
    Location40081 = 40081,
    Location40085 = 40085,
    Location40086 = 40086,
    Location40087 = 40087,
    Location40090 = 40090,
    Location40091 = 40091,
    Location40092 = 40092,
    Location40096 = 40096,
    Location40097 = 40097,
    Location40386 = 40386,
    Location40390 = 40390,
    Location40391 = 40391,
    Location40392 = 40392,
    Location40394 = 40394,
    Location40395 = 40395,
    Location40396 = 40396,
    Location40397 = 40397,
    Location40398 = 40398,
    Location40400 = 40400,
    Location40485 = 40485,
    Location40517 = 40517,
    Location40539 = 40539,
    Location40542 = 40542,
    Location50694 = 50694,
    Location50695 = 50695,
    Location50696 = 50696,
    Location50699 = 50699,
    Location50700 = 50700,
    Location50921 = 50921,
    Location50989 = 50989,
    Location51044 = 51044,
    Location51080 = 51080,
    Location51081 = 51081,
    Location51083 = 51083,
    Location51103 = 51103,
    Location51104 = 51104,
    Location51105 = 51105,
    Location51106 = 51106,
    Location51107 = 51107,
    Location51151 = 51151,
    Location51276 = 51276,
    Location51746 = 51746,
    Location51749 = 51749,
    Location327391 = 327391,
    Location327392 = 327392,
    Location1612101 = 1612101,
    Location2942502 = 2942502,
    Location2942503 = 2942503,
    Location2942504 = 2942504,
    Location2942505 = 2942505,
    Location3041703 = 3041703,
    Location3041704 = 3041704,
    Location3041705 = 3041705,
    Location4161102 = 4161102,
    Location4161105 = 4161105,
    Location4161106 = 4161106,
    Location4940400 = 4940400,
    Location5159200 = 5159200,
    Location5166402 = 5166402,
    Location5166403 = 5166403,
    Location5166404 = 5166404,
    Location5166405 = 5166405,
    Location5166406 = 5166406,
    // $setWindowFields
    Location5339901 = 5339901,
    Location5339902 = 5339902,
    Location5339903 = 5339903,
    Location5371602 = 5371602,
    Location5429413 = 5429413,
    Location5429513 = 5429513,
    Location5624900 = 5624900,
    Location5624901 = 5624901,
    // $densify and $fill
    Location5733201 = 5733201,
    Location5733306 = 5733306,
    Location5733401 = 5733401,
    Location5733402 = 5733402,
    Location5733403 = 5733403,
    Location5733408 = 5733408,
    Location5733409 = 5733409,
    Location5733410 = 5733410,
    Location5733501 = 5733501,
    Location5946800 = 5946800,
    Location6050201 = 6050201,
    Location6050202 = 6050202,
    Location6050203 = 6050203,
    Location6050204 = 6050204,
    Location6053600 = 6053600,
    Location6246500 = 6246500,
    Location8993000 = 8993000,
    // $dateDiff, $dateTrunc, $dateToParts, $dateFromParts
    Location5166301 = 5166301,
    Location5166302 = 5166302,
    Location5166303 = 5166303,
    Location5166304 = 5166304,
    Location5166305 = 5166305,
    Location5166307 = 5166307,
    Location5439006 = 5439006,
    Location5439007 = 5439007,
    Location5439008 = 5439008,
    Location5439009 = 5439009,
    Location5439012 = 5439012,
    Location5439013 = 5439013,
    Location5439014 = 5439014,
    Location5439015 = 5439015,
    Location5439016 = 5439016,
    Location5439017 = 5439017,
    Location40515 = 40515,
    Location40516 = 40516,
    Location40518 = 40518,
    Location40519 = 40519,
    Location40520 = 40520,
    Location40521 = 40521,
    Location40522 = 40522,
    Location40523 = 40523,
    Location40524 = 40524,
    Location40489 = 40489,
    Location31034 = 31034,
    Location40684 = 40684,
    // $bucketAuto granularity
    Location40257 = 40257,
    Location40258 = 40258,
    Location40259 = 40259,
    Location40260 = 40260,
    Location40261 = 40261,
    Location5236800 = 5236800,
    Location5654602 = 5654602,
    Location5687301 = 5687301,
    Location5787906 = 5787906,
    Location5787907 = 5787907,
    Location5787908 = 5787908,
    Location5787909 = 5787909,
    // $median/$percentile, $minN/$maxN expressions, $meta
    Location5788200 = 5788200,
    Location7436100 = 7436100,
    Location7750300 = 7750300,
    Location7750301 = 7750301,
    Location7766600 = 7766600,
    Location17307 = 17307,
    Location17308 = 17308,
    Location40218 = 40218,
    Location31138 = 31138,
    Location4341107 = 4341107,
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

    pub fn with_label(mut self, label: &str) -> Self {
        self.labels.push(label.to_string());
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
