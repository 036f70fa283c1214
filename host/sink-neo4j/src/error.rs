use infragraph_core::{SinkError, StateError};

/// What went wrong talking to the graph server. The message names the server and, where
/// the operator can act, says what to do.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

/// The kind of an [`Error`], for callers that react differently (hints, retries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The URI is malformed or uses a scheme the driver does not speak.
    Config,
    /// Nothing answers Bolt at the address, or the connection dropped.
    Unreachable,
    /// The server refused the user name or password.
    Auth,
    /// The server has no database of that name.
    NoDatabase,
    /// A deadlock, a leader change, a dropped connection: trying again may succeed.
    Transient,
    /// A statement failed for good.
    Query,
    /// A label, type or property name that is not declared or not an identifier; or a
    /// malformed record to push.
    Invalid,
    /// Reading what to push failed.
    Io,
    /// A plugin wrote a record, or declared a label, that belongs to another plugin.
    NotOwner,
    /// Another run of the same plugin and scope holds the lease.
    Leased,
}

impl Error {
    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Whether trying again may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self.kind, ErrorKind::Transient | ErrorKind::Unreachable)
    }

    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
        }
    }

    /// A driver error while doing `what` on the server at `uri`, classified.
    pub(crate) fn driver(uri: &str, what: &str, e: neo4rs::Error) -> Error {
        let kind = classify(&e);
        let hint = match kind {
            ErrorKind::Unreachable => {
                " (is the server running and is the address right? check --neo4j / [sink.neo4j] uri)"
            }
            ErrorKind::Auth => {
                " (wrong user or password: check --neo4j-user and the NEO4J_PASSWORD environment variable)"
            }
            ErrorKind::NoDatabase => {
                " (no such database on the server: check --neo4j-database / [sink.neo4j] database)"
            }
            _ => "",
        };
        Error::new(kind, format!("neo4j {uri}: {what}: {}{hint}", describe(&e)))
    }
}

/// The driver's error in words: the server's code and message when it sent one.
fn describe(e: &neo4rs::Error) -> String {
    match e {
        neo4rs::Error::Neo4j(e) => format!("{}: {}", e.code(), e.message()),
        neo4rs::Error::ConnectionError => "the connection failed".into(),
        neo4rs::Error::UnexpectedMessage(text) => match failure_parts(text) {
            Some((code, message)) => format!("{code}: {message}"),
            None => text.clone(),
        },
        other => other.to_string(),
    }
}

/// The code and message of a server failure the driver passed on as an unexpected
/// message (it does so for failures answering BEGIN and COMMIT), from its debug text.
fn failure_parts(text: &str) -> Option<(String, String)> {
    let value_after = |key: &str| {
        let at = text.find(&format!("\"{key}\" }}: String(BoltString {{ value: \""))?;
        let rest = &text[at..];
        let start = rest.find("value: \"")? + "value: \"".len();
        let rest = &rest[start..];
        // The value ends at the first quote not escaped by Debug.
        let mut end = None;
        let mut escaped = false;
        for (i, c) in rest.char_indices() {
            match c {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => {
                    end = Some(i);
                    break;
                }
                _ => escaped = false,
            }
        }
        Some(rest[..end?].replace("\\\"", "\""))
    };
    Some((value_after("code")?, value_after("message")?))
}

/// Reads the kind of failure from what the driver says. The server's status code
/// decides when it sent one (`by_code`); a dropped connection is transient; nothing is
/// read from an error's debug text but a server failure the driver passed on whole.
fn classify(e: &neo4rs::Error) -> ErrorKind {
    use neo4rs::Error as E;
    match e {
        E::IOError { detail } => match detail.kind() {
            std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::HostUnreachable
            | std::io::ErrorKind::NetworkUnreachable
            | std::io::ErrorKind::AddrNotAvailable
            | std::io::ErrorKind::NotFound => ErrorKind::Unreachable,
            // A reset, an early EOF, a broken pipe: the connection dropped mid-way.
            _ => ErrorKind::Transient,
        },
        E::ConnectionError => ErrorKind::Transient,
        E::UrlParseError(_) | E::UnsupportedScheme(_) | E::InvalidDnsName(_) | E::InvalidConfig => {
            ErrorKind::Config
        }
        E::AuthenticationError(_) => ErrorKind::Auth,
        E::Neo4j(n) => by_code(n.code(), n.message()),
        // The driver reports a server's failure to BEGIN or COMMIT as an unexpected
        // message carrying that failure, code and all.
        E::UnexpectedMessage(text) => match failure_parts(text) {
            Some((code, message)) => by_code(&code, &message),
            None => ErrorKind::Query,
        },
        _ => ErrorKind::Query,
    }
}

/// The kind of a failure the server reported, from its Neo4j status code
/// (`Neo.<classification>.<category>.<title>`), as Neo4j's own drivers read it:
///
/// - `TransientError`: try again (a deadlock, a lock timeout, a database unavailable
///   for a moment), except a transaction terminated or whose lock client was stopped on
///   purpose (Neo4j 5 files those under `ClientError`).
/// - `ClientError`: the request is wrong and fails the same way every time; the
///   exceptions are a cluster member that is not (or no longer) the leader, or a
///   database read-only for now, which a retry reaches anew. Security codes are
///   authentication; `Database.DatabaseNotFound` a missing database.
/// - `DatabaseError`: the server failed. Permanent, except the one ArcadeDB sends for
///   a write that read a page another writer was committing (below).
///
/// ArcadeDB (the tests' server) sends Neo4j codes too: its optimistic-concurrency
/// conflicts as `Neo.TransientError.Transaction.DeadlockDetected`, and two races of
/// concurrent writers under codes that say otherwise ([`arcadedb_race`]).
fn by_code(code: &str, message: &str) -> ErrorKind {
    let mut parts = code.split('.');
    let (Some("Neo"), Some(class), Some(category), Some(title)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return ErrorKind::Query;
    };
    match (class, category, title) {
        ("TransientError", "Transaction", "Terminated" | "LockClientStopped") => ErrorKind::Query,
        ("TransientError", _, _) => ErrorKind::Transient,
        ("ClientError", "Security", _) => ErrorKind::Auth,
        ("ClientError", "Database", "DatabaseNotFound") => ErrorKind::NoDatabase,
        ("ClientError", "Cluster", "NotALeader")
        | ("ClientError", "General", "ForbiddenOnReadOnlyDatabase") => ErrorKind::Transient,
        _ if arcadedb_race(code, message) => ErrorKind::Transient,
        _ => ErrorKind::Query,
    }
}

/// The races between concurrent writers that ArcadeDB (26.10, the version the tests
/// run) reports under a code that does not say so, both seen with the whole test suite
/// writing in parallel. Each statement this sink runs is idempotent, so running the
/// transaction again resolves them:
///
/// - Two writers creating the same node: ArcadeDB checks uniqueness against other
///   transactions only at commit, so both MERGEs create it and the second COMMIT is
///   answered with its `DuplicatedKeyException` ("Duplicated key [..] found on index
///   'Label\[id\]' ...") as `Neo.ClientError.Schema.ConstraintValidationFailed`. Run
///   again, the MERGE finds the node. Only the index on `id` qualifies, the key every
///   MERGE here matches on. A duplicate on any other index (a constraint the operator
///   added), a statement that breaks a constraint itself (ArcadeDB then says "Error
///   executing Cypher command: ..."), and every Neo4j constraint violation (Neo4j's
///   MERGE takes locks, so it never races this way) are permanent.
/// - A relationship MERGE that read a page another writer was committing (its log says
///   `BrokenChunkChainException`), reported as `Neo.DatabaseError.General.UnknownError`
///   with no more detail. An error of unknown cause is retried, boundedly.
/// - Two writers creating the first node of a label, or of a set of labels, in a
///   database (two sharded jobs starting on a new server): ArcadeDB creates the type as
///   the statement runs, and the second fails with its `TypeAlreadyExistsException`
///   ("Cannot create type 'AcmeUser~UserAccount' because already exists", in its log
///   only), reported as `Neo.ClientError.Statement.SemanticError` "Error executing Cypher
///   command: <the statement>". Run again, the type exists. Neo4j never words an error
///   so, and a statement of this sink that ArcadeDB cannot run fails the same way each
///   time, so the bounded retries cost a few seconds once.
fn arcadedb_race(code: &str, message: &str) -> bool {
    match code {
        "Neo.ClientError.Schema.ConstraintValidationFailed" => {
            message.contains("Duplicated key") && message.contains("[id]'")
        }
        "Neo.DatabaseError.General.UnknownError" => true,
        "Neo.ClientError.Statement.SemanticError" => {
            message.starts_with("Error executing Cypher command")
        }
        _ => false,
    }
}

impl From<Error> for SinkError {
    fn from(e: Error) -> SinkError {
        if e.kind == ErrorKind::Leased {
            SinkError::held(e.message)
        } else if e.is_transient() {
            SinkError::transient(e.message)
        } else {
            SinkError::new(e.message)
        }
    }
}

impl From<Error> for StateError {
    fn from(e: Error) -> StateError {
        StateError(e.message)
    }
}

/// A server's failure as the driver passes it on when it answers COMMIT (or BEGIN).
#[cfg(test)]
pub(crate) fn server_failure(code: &str, message: &str) -> neo4rs::Error {
    neo4rs::Error::UnexpectedMessage(format!(
        "unexpected response for COMMIT: Failure(Failure {{ metadata: BoltMap {{ value: {{\
         BoltString {{ value: \"message\" }}: String(BoltString {{ value: {message:?} }}), \
         BoltString {{ value: \"code\" }}: String(BoltString {{ value: {code:?} }})}} }} }})"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_codes_are_classified() {
        let cases = [
            // Neo4j's transient class, but not a transaction killed on purpose.
            (
                "Neo.TransientError.Transaction.DeadlockDetected",
                "",
                ErrorKind::Transient,
            ),
            (
                "Neo.TransientError.General.DatabaseUnavailable",
                "",
                ErrorKind::Transient,
            ),
            (
                "Neo.TransientError.Transaction.Terminated",
                "",
                ErrorKind::Query,
            ),
            (
                "Neo.TransientError.Transaction.LockClientStopped",
                "",
                ErrorKind::Query,
            ),
            // Client errors are permanent, but for a leader change.
            (
                "Neo.ClientError.Cluster.NotALeader",
                "",
                ErrorKind::Transient,
            ),
            (
                "Neo.ClientError.General.ForbiddenOnReadOnlyDatabase",
                "",
                ErrorKind::Transient,
            ),
            ("Neo.ClientError.Security.Unauthorized", "", ErrorKind::Auth),
            (
                "Neo.ClientError.Database.DatabaseNotFound",
                "",
                ErrorKind::NoDatabase,
            ),
            (
                "Neo.ClientError.Statement.SyntaxError",
                "bad",
                ErrorKind::Query,
            ),
            // Neo4j's words for a uniqueness violation: permanent.
            (
                "Neo.ClientError.Schema.ConstraintValidationFailed",
                "Node(12) already exists with label `FaultNode` and property `id` = 'n7'",
                ErrorKind::Query,
            ),
            // ArcadeDB's commit-time duplicate on the MERGE key (as it answered COMMIT
            // after two transactions MERGEd one new id): a race.
            (
                "Neo.ClientError.Schema.ConstraintValidationFailed",
                "Duplicated key [n7] found on index 'FaultNode[id]' already assigned to record #5:12",
                ErrorKind::Transient,
            ),
            // ... but on another index, or as it reports a statement that broke a
            // constraint: permanent.
            (
                "Neo.ClientError.Schema.ConstraintValidationFailed",
                "Duplicated key [a@b] found on index 'FaultNode[email]' already assigned to record #5:12",
                ErrorKind::Query,
            ),
            (
                "Neo.ClientError.Schema.ConstraintValidationFailed",
                "Error executing Cypher command: UNWIND $rows AS row MERGE (n:`FaultNode` {`id`: row.id})",
                ErrorKind::Query,
            ),
            // ArcadeDB's torn read of a page being committed.
            (
                "Neo.DatabaseError.General.UnknownError",
                "Error executing Cypher command",
                ErrorKind::Transient,
            ),
            (
                "Neo.DatabaseError.Statement.ExecutionFailed",
                "",
                ErrorKind::Query,
            ),
            // ArcadeDB's race to create a type; Neo4j's semantic errors are permanent.
            (
                "Neo.ClientError.Statement.SemanticError",
                "Error executing Cypher command: UNWIND $ids AS i OPTIONAL MATCH (e:`AcmeUser` {`id`: i}) WITH i, e WHERE e IS NULL CREATE (n:`AcmeUser`:`UserAccount` {`id`: i})",
                ErrorKind::Transient,
            ),
            (
                "Neo.ClientError.Statement.SemanticError",
                "Variable `n` not defined (line 1, column 8 (offset: 7))",
                ErrorKind::Query,
            ),
            // Words in a message do not make an error transient; the code does.
            (
                "Neo.ClientError.Statement.ArgumentError",
                "DeadlockDetected ConcurrentModification Neo.TransientError.",
                ErrorKind::Query,
            ),
            ("not a status code", "", ErrorKind::Query),
        ];
        for (code, message, kind) in cases {
            assert_eq!(by_code(code, message), kind, "{code}: {message}");
        }
    }

    #[test]
    fn a_failure_passed_on_as_an_unexpected_message_is_read() {
        let text = r#"unexpected response for BEGIN: Failure(Failure { metadata: BoltMap { value: {BoltString { value: "message" }: String(BoltString { value: "Cannot open database: \"nope\"" }), BoltString { value: "code" }: String(BoltString { value: "Neo.ClientError.Database.DatabaseNotFound" })} } })"#;
        assert_eq!(
            failure_parts(text),
            Some((
                "Neo.ClientError.Database.DatabaseNotFound".into(),
                "Cannot open database: \"nope\"".into()
            ))
        );
        let e = neo4rs::Error::UnexpectedMessage(text.into());
        assert_eq!(classify(&e), ErrorKind::NoDatabase);
    }

    #[test]
    fn an_unexpected_message_without_a_server_failure_is_permanent() {
        let e = neo4rs::Error::UnexpectedMessage("unexpected response for COMMIT: Ignored".into());
        assert_eq!(classify(&e), ErrorKind::Query);
        let e = server_failure("Neo.TransientError.Transaction.DeadlockDetected", "retry");
        assert_eq!(classify(&e), ErrorKind::Transient);
    }

    #[test]
    fn a_refused_connection_is_unreachable_and_a_reset_transient() {
        let io = |k| neo4rs::Error::IOError {
            detail: std::io::Error::from(k),
        };
        assert_eq!(
            classify(&io(std::io::ErrorKind::ConnectionRefused)),
            ErrorKind::Unreachable
        );
        assert_eq!(
            classify(&io(std::io::ErrorKind::ConnectionReset)),
            ErrorKind::Transient
        );
    }
}
