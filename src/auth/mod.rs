//! Authentication (SCRAM) and role-based authorization (issue 6). Until that lands every
//! connection runs unauthenticated with full rights, as a mongod without `--auth` does.
