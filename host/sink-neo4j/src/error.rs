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

/// Codes (or words in a server's message) that mean "try again": Neo4j's whole
/// `TransientError` class, a cluster member that is no longer the leader, and the
/// optimistic-concurrency conflicts other Bolt servers report in their own words.
///
/// A uniqueness violation is one of those here: every write this sink makes MERGEs on the
/// constrained key, which Neo4j serialises with locks, but a server that checks
/// uniqueness only at commit (ArcadeDB) lets two writers both create the node and fails
/// the second COMMIT. Run again, that batch's MERGE finds the node the other created.
///
/// So is an unexplained server error: ArcadeDB reports a relationship MERGE that read a
/// page another writer was committing ("broken chunk chain") as
/// `Neo.DatabaseError.General.UnknownError`. Every statement here is idempotent, so a
/// bounded number of attempts is safe; an error that is not transient fails the same
/// way each time and is returned after them.
const TRANSIENT_MARKS: &[&str] = &[
    "Neo.TransientError.",
    "Neo.ClientError.Schema.ConstraintValidationFailed",
    "Neo.DatabaseError.General.UnknownError",
    "Neo.ClientError.Cluster.NotALeader",
    "Neo.ClientError.General.ForbiddenOnReadOnlyDatabase",
    "DeadlockDetected",
    "ConcurrentModification",
];

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
        // The driver reports a failure to COMMIT as an unexpected message carrying the
        // server's failure; its code is in the text.
        other => {
            let text = format!("{other:?}");
            by_code(&text, &text)
        }
    }
}

fn by_code(code: &str, message: &str) -> ErrorKind {
    if code.contains("Neo.ClientError.Security.") {
        ErrorKind::Auth
    } else if code.contains("Neo.ClientError.Database.DatabaseNotFound") {
        ErrorKind::NoDatabase
    } else if TRANSIENT_MARKS
        .iter()
        .any(|m| code.contains(m) || message.contains(m))
    {
        ErrorKind::Transient
    } else {
        ErrorKind::Query
    }
}

impl From<Error> for SinkError {
    fn from(e: Error) -> SinkError {
        if e.is_transient() {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_codes_are_classified() {
        assert_eq!(
            by_code("Neo.TransientError.Transaction.DeadlockDetected", ""),
            ErrorKind::Transient
        );
        assert_eq!(
            by_code("Neo.ClientError.Security.Unauthorized", ""),
            ErrorKind::Auth
        );
        assert_eq!(
            by_code(
                "Neo.ClientError.Schema.ConstraintValidationFailed",
                "Duplicated key"
            ),
            ErrorKind::Transient
        );
        assert_eq!(
            by_code(
                "Neo.DatabaseError.General.UnknownError",
                "Error executing Cypher command"
            ),
            ErrorKind::Transient
        );
        assert_eq!(
            by_code("Neo.ClientError.Statement.SyntaxError", "bad"),
            ErrorKind::Query
        );
        assert_eq!(
            by_code(
                "Neo.DatabaseError.General.UnknownError",
                "ConcurrentModificationException"
            ),
            ErrorKind::Transient
        );
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
