//! annals errors as cqrs-es sees them.

use cqrs_es::AggregateError;

/// `AggregateConflict` for a wrong expected version (another command on the same aggregate
/// committed first), `DeserializationError` for an event or snapshot that does not read
/// as the aggregate's types, `DatabaseConnectionError` for every other failure of the store.
pub(crate) fn aggregate_error<E: std::error::Error>(e: annals::Error) -> AggregateError<E> {
    match e {
        annals::Error::WrongExpectedVersion { .. } => AggregateError::AggregateConflict,
        e @ annals::Error::Json { .. } => AggregateError::DeserializationError(Box::new(e)),
        e => AggregateError::DatabaseConnectionError(Box::new(e)),
    }
}
