//! annals errors as cqrs-es sees them.

use cqrs_es::AggregateError;

/// `AggregateConflict` for a wrong expected version (another command on the same aggregate
/// committed first), `DeserializationError` for an event that does not read as the
/// aggregate's (an upcaster that failed included), `UnexpectedError` for what the caller
/// asked that cannot be (an id too long for a stream name, a read-only store), and
/// `DatabaseConnectionError` for a failure of the store itself (I/O, damage).
pub(crate) fn aggregate_error<E: std::error::Error>(e: annals::Error) -> AggregateError<E> {
    match e {
        annals::Error::WrongExpectedVersion { .. } => AggregateError::AggregateConflict,
        e @ (annals::Error::Json { .. } | annals::Error::Upcast { .. }) => {
            AggregateError::DeserializationError(Box::new(e))
        }
        e @ (annals::Error::InvalidInput(_) | annals::Error::ReadOnly { .. }) => {
            AggregateError::UnexpectedError(Box::new(e))
        }
        e => AggregateError::DatabaseConnectionError(Box::new(e)),
    }
}
