//! Fault injection for tests: with the `test-hooks` feature, makes the writer's `write` fail,
//! write only part of its bytes, or report a full disk, or its `fdatasync` fail, at a chosen
//! call ([`crate::hooks`]), to show what a failing disk does to waiting appends. Without the
//! feature [`Faults`] is empty and its calls are the plain I/O.

use crate::error::Result;
use crate::fs::segment::Segment;
use crate::options::Options;

/// The writer's I/O calls so far, and which of them fail (with `test-hooks`).
#[derive(Debug, Default)]
pub(crate) struct Faults {
    #[cfg(feature = "test-hooks")]
    injected: injected::Injected,
}

impl Faults {
    /// The faults `options` asks for.
    #[cfg_attr(not(feature = "test-hooks"), allow(unused_variables))]
    pub fn new(options: &Options) -> Self {
        Faults {
            #[cfg(feature = "test-hooks")]
            injected: injected::Injected::new(options.hooks.fault_plan),
        }
    }

    /// Writes `bytes` at `offset` of `segment`, unless this call is to fail.
    #[inline]
    pub fn write(&mut self, segment: &Segment, offset: usize, bytes: &[u8]) -> Result<()> {
        #[cfg(feature = "test-hooks")]
        return self.injected.write(segment, offset, bytes);
        #[cfg(not(feature = "test-hooks"))]
        segment.write_at(offset, bytes)
    }

    /// `fdatasync` of `segment`, unless this call is to fail.
    #[inline]
    pub fn sync(&mut self, segment: &Segment) -> Result<()> {
        #[cfg(feature = "test-hooks")]
        self.injected.before_sync(segment)?;
        segment.sync_data()
    }
}

#[cfg(feature = "test-hooks")]
mod injected {
    use std::io;

    use crate::error::{Error, Result};
    use crate::fs::segment::Segment;
    use crate::hooks::FaultPlan;

    /// A [`FaultPlan`] and the calls made so far.
    #[derive(Debug, Default)]
    pub(super) struct Injected {
        plan: FaultPlan,
        writes: u64,
        syncs: u64,
    }

    impl Injected {
        pub fn new(plan: FaultPlan) -> Self {
            Injected {
                plan,
                ..Injected::default()
            }
        }

        /// Writes as planned: the whole, half then an error, or an error.
        pub fn write(&mut self, segment: &Segment, offset: usize, bytes: &[u8]) -> Result<()> {
            self.writes += 1;
            let call = self.writes;
            assert!(
                self.plan.panic_on_write != Some(call),
                "injected panic (write call {call})"
            );
            let fail = |e: io::Error| Err(Error::io("write", segment.path(), e));
            if self.plan.disk_full == Some(call) {
                return fail(io::Error::from_raw_os_error(28));
            }
            if self.plan.short_write == Some(call) {
                segment.write_at(offset, &bytes[..bytes.len() / 2])?;
                return fail(io::Error::other(format!(
                    "injected short write (call {call})"
                )));
            }
            if self.plan.fail_write == Some(call) {
                return fail(io::Error::other(format!(
                    "injected write failure (call {call})"
                )));
            }
            segment.write_at(offset, bytes)
        }

        /// Fails the `fdatasync` if this call is planned to fail.
        pub fn before_sync(&mut self, segment: &Segment) -> Result<()> {
            self.syncs += 1;
            let call = self.syncs;
            if self.plan.fail_sync == Some(call) {
                let e = io::Error::other(format!("injected fdatasync failure (call {call})"));
                return Err(Error::io("fdatasync", segment.path(), e));
            }
            Ok(())
        }
    }
}
