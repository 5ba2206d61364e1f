//! Upcasters ([`Options::upcaster`](crate::Options::upcaster)): functions that turn an event
//! of an old shape into its new shape as it is read. Applied wherever a read yields a
//! [`RecordedEvent`]; the stored bytes never change.

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::event::{EventData, RecordedEvent};
use crate::format::{RecordView, MAX_NAME_LEN};

/// An upcaster: `None` leaves the event as it is.
pub(crate) type Upcast = dyn Fn(&RecordedEvent) -> Option<EventData> + Send + Sync;

/// The upcasters of a store, in the order they were registered.
#[derive(Clone, Default)]
pub(crate) struct Upcasters(Arc<Vec<(String, Arc<Upcast>)>>);

impl fmt::Debug for Upcasters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(t, _)| t))
            .finish()
    }
}

/// More upcasts than this on one event is a cycle.
const MAX_STEPS: usize = 64;

impl Upcasters {
    /// Adds an upcaster for `event_type`, after the others.
    pub fn push(&mut self, event_type: String, upcast: Arc<Upcast>) {
        Arc::make_mut(&mut self.0).push((event_type, upcast));
    }

    /// Whether no upcaster is registered.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The event `view` as readers get it: copied, then upcast. Upcasters run in the order
    /// they were registered, each at most once on an event; when one returns a new shape,
    /// those (not run yet) registered for its new type run on it, so `v1 → v2` then
    /// `v2 → v3` chain. Position, stream, version, id and timestamp stay the stored ones.
    pub fn record(&self, view: &RecordView<'_>) -> Result<RecordedEvent> {
        let mut ev = RecordedEvent::from_view(view);
        if self.0.is_empty() || !self.0.iter().any(|(t, _)| t == view.event_type) {
            return Ok(ev);
        }
        let mut ran = vec![false; self.0.len()];
        let mut steps = 0;
        'again: loop {
            for (i, (event_type, upcast)) in self.0.iter().enumerate() {
                if ran[i] || event_type != ev.event_type() {
                    continue;
                }
                ran[i] = true;
                steps += 1;
                let fail = |reason: String| Error::Upcast {
                    position: ev.position(),
                    stream: ev.stream().to_string(),
                    event_type: ev.event_type().to_string(),
                    reason,
                };
                if steps > MAX_STEPS {
                    return Err(fail(format!("more than {MAX_STEPS} upcasts")));
                }
                match catch_unwind(AssertUnwindSafe(|| upcast(&ev))) {
                    Ok(None) => {}
                    Ok(Some(data)) => {
                        let new_type = data.event_type();
                        if new_type.is_empty() || new_type.len() > MAX_NAME_LEN {
                            let reason = format!(
                                "the upcaster returned the type {new_type:?}, which must have \
                                 1 to {MAX_NAME_LEN} bytes"
                            );
                            return Err(fail(reason));
                        }
                        ev = ev.reshaped(&data);
                        continue 'again;
                    }
                    Err(panic) => {
                        let message = panic
                            .downcast_ref::<&str>()
                            .map(|s| s.to_string())
                            .or_else(|| panic.downcast_ref::<String>().cloned())
                            .unwrap_or_else(|| "no message".into());
                        return Err(fail(format!("the upcaster panicked: {message}")));
                    }
                }
            }
            return Ok(ev);
        }
    }
}
