//! The database layer's error type, which the client library shares: one type from the first
//! statement to the `sisyctl` message.

use sisyphus_model::spec::InvalidJob;
use sisyphus_model::{JobRef, RunId};

/// Everything the database layer and the client can fail with. Each message says what is wrong and, where there is one,
/// what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot connect to PostgreSQL at {url}: {source}")]
    Connect { url: String, source: sqlx::Error },
    /// The server could not be reached at all: `connection refused at 127.0.0.1:5432`.
    #[error("cannot connect to PostgreSQL: {cause} at {address}")]
    Unreachable { address: String, cause: String },
    /// TLS was asked for (`sslmode` in the URL) and the handshake failed: the server's
    /// certificate could not be verified (the cause names why: `UnknownIssuer`, a name it is not
    /// valid for, expiry), the root certificate file cannot be used, or the server has TLS off.
    #[error("cannot connect to PostgreSQL at {url}: TLS: {cause}")]
    Tls { url: String, cause: String },
    #[error("the database has no Sisyphus schema yet; run `sisyctl migrate` first")]
    SchemaMissing,
    #[error("the database schema is at version {found}, but this program needs version {expected}; run `sisyctl migrate`")]
    SchemaOutdated { found: i64, expected: i64 },
    #[error("the database schema (version {found}) is newer than this program (version {expected}); upgrade this program")]
    SchemaNewer { found: i64, expected: i64 },
    #[error("{}", join_invalid(.0))]
    Invalid(Vec<InvalidJob>),
    #[error("{path}: {message}")]
    JobsFile { path: String, message: String },
    #[error("job {0} does not exist")]
    NoSuchJob(JobRef),
    #[error("run {0} does not exist")]
    NoSuchRun(RunId),
    /// An action refused before it reached the database, for the reason given.
    #[error("{0}")]
    Refused(String),
    /// Input that is wrong in itself (a run's parameter unknown, missing or not one of its
    /// choices), said by the database or the client: like a bad key of a definition, `sisyctl`
    /// exits 2 and nothing is written.
    #[error("{0}")]
    BadInput(String),
    /// The database refused an action for a reason it explained (e.g. removing a job that
    /// runs): one of the SQLSTATEs our SQL functions raise on purpose.
    #[error("{message}")]
    Declined { code: String, message: String },
    /// Resource locks that could not be had: an input never written, or busy past the wait.
    #[error("cannot lock resources: {0}")]
    LockRefused(String),
    /// A lock's lease lapsed and another holder took the resource over.
    #[error("resource lock lost: {0}")]
    LockLost(String),
    #[error("migrating the schema failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Db(sqlx::Error),
}

fn join_invalid(jobs: &[InvalidJob]) -> String {
    jobs.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// SQLSTATEs our SQL functions raise on purpose, with messages meant for people. 42501
/// (insufficient privilege) is the access checks' refusal, naming who, what and the grant that
/// is missing ("alice (operator of ACME.*) may not remove jobs of ACME.FooBar: needs editor");
/// PostgreSQL's own "permission denied for table …" shares the code and reads as well. 42704
/// (undefined object): a grant for a login that does not exist.
const REFUSALS: &[&str] = &[
    "P0002", "55000", "55006", "P0001", "22023", "55P03", "42501", "42704",
];

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Error {
        if let sqlx::Error::Database(db) = &e {
            if let Some(code) = db.code().filter(|c| REFUSALS.contains(&c.as_ref())) {
                return Error::Declined {
                    code: code.into_owned(),
                    message: db.message().to_string(),
                };
            }
        }
        Error::Db(e)
    }
}

impl Error {
    /// The SQLSTATE of an error the database raised, if it was one.
    pub fn sqlstate(&self) -> Option<String> {
        match self {
            Error::Declined { code, .. } => Some(code.clone()),
            Error::Db(sqlx::Error::Database(db)) => db.code().map(|c| c.into_owned()),
            _ => None,
        }
    }

    /// A value read back that does not decode into its Rust type (a column changed by hand).
    pub fn is_decode(&self) -> bool {
        matches!(
            self,
            Error::Db(sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_))
        )
    }

    /// A value that could not be sent as a parameter.
    pub fn is_encode(&self) -> bool {
        matches!(self, Error::Db(sqlx::Error::Encode(_)))
    }

    /// The connection or pool failed (the database is unreachable, restarting, or the pool is
    /// closed), as opposed to a statement the database refused.
    pub fn is_connection(&self) -> bool {
        matches!(
            self,
            Error::Unreachable { .. }
                | Error::Connect { .. }
                | Error::Tls { .. }
                | Error::Db(
                    sqlx::Error::Io(_)
                        | sqlx::Error::PoolTimedOut
                        | sqlx::Error::PoolClosed
                        | sqlx::Error::Tls(_)
                        | sqlx::Error::Protocol(_)
                        | sqlx::Error::WorkerCrashed
                )
        )
    }
}

impl From<InvalidJob> for Error {
    fn from(e: InvalidJob) -> Error {
        Error::Invalid(vec![e])
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
