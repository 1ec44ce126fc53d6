//! The one hook every kernel call of the crate goes through: with the `trace` feature, a `log`
//! record per call (see the crate docs, "Tracing kernel calls"); without it, [`call`] is the
//! call itself and nothing else.
//!
//! A record reads `OP on OBJECT (ARGS) -> RESULT in DURATION`, e.g.
//! `VFIO_IOMMU_MAP_DMA on container fd 5 (iova=0x100000 len=0x1000 vaddr=0x7f3a9c000000
//! flags=0x3) -> ok 0 in 14.2µs`, or `-> ENOTTY in 1.1µs` when the kernel refused it.
#![cfg_attr(not(feature = "trace"), allow(dead_code))]

use std::fmt;
use std::os::fd::{AsRawFd, OwnedFd};

use crate::error::Errno;

/// The `log` target of every record: `RUST_LOG=uvfio::kernel=trace` with `env_logger`.
pub(crate) const TARGET: &str = "uvfio::kernel";

/// How loud a kind of call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    /// Set-up calls a driver makes a handful of times: opens, mmaps, eventfds, sysfs writes.
    Debug,
    /// Everything else: ioctls, region `pread`/`pwrite`.
    Trace,
}

/// Runs `f`, one kernel call named `op` on `object` with the arguments `args` writes, and
/// (with the `trace` feature, when a logger wants `level` records of [`TARGET`]) logs it with
/// its result and duration. `f` must capture its errno itself (it returns it), so nothing done
/// here can clobber it.
#[cfg(feature = "trace")]
#[inline]
pub(crate) fn call<T, E>(
    level: Level,
    op: &str,
    object: impl fmt::Display,
    args: impl Fn(&mut fmt::Formatter<'_>) -> fmt::Result,
    f: impl FnOnce() -> Result<T, E>,
) -> Result<T, E>
where
    Result<T, E>: Outcome,
{
    let level = match level {
        Level::Debug => log::Level::Debug,
        Level::Trace => log::Level::Trace,
    };
    if !log::log_enabled!(target: TARGET, level) {
        return f();
    }
    let start = std::time::Instant::now();
    let result = f();
    let elapsed = start.elapsed();
    log::log!(
        target: TARGET,
        level,
        "{op} on {object}{} -> {} in {elapsed:.1?}",
        Args(&args),
        Shown(&result)
    );
    result
}

/// Without the `trace` feature: the call, nothing else (`object` and `args` are never looked
/// at, so they compile away).
#[cfg(not(feature = "trace"))]
#[inline(always)]
pub(crate) fn call<T, E>(
    _level: Level,
    _op: &str,
    _object: impl fmt::Display,
    _args: impl Fn(&mut fmt::Formatter<'_>) -> fmt::Result,
    f: impl FnOnce() -> Result<T, E>,
) -> Result<T, E>
where
    Result<T, E>: Outcome,
{
    f()
}

/// The `args` of a call without arguments.
pub(crate) fn no_args(_: &mut fmt::Formatter<'_>) -> fmt::Result {
    Ok(())
}

/// ` (ARGS)`, or nothing when the call has none.
struct Args<'a, F>(&'a F);

impl<F: Fn(&mut fmt::Formatter<'_>) -> fmt::Result> fmt::Display for Args<'_, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = String::new();
        fmt::write(&mut text, format_args!("{}", Fmt(self.0)))?;
        if text.is_empty() {
            Ok(())
        } else {
            write!(f, " ({text})")
        }
    }
}

/// A closure as a `Display`.
struct Fmt<'a, F>(&'a F);

impl<F: Fn(&mut fmt::Formatter<'_>) -> fmt::Result> fmt::Display for Fmt<'_, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (self.0)(f)
    }
}

/// A result as a record shows it.
struct Shown<'a, R>(&'a R);

impl<R: Outcome> fmt::Display for Shown<'_, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.outcome(f)
    }
}

/// How a record shows a call's result: `ok VALUE`, or the errno's name.
pub(crate) trait Outcome {
    fn outcome(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result;
}

impl<T: OkValue, E: ErrValue> Outcome for Result<T, E> {
    fn outcome(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ok(value) => {
                f.write_str("ok")?;
                value.ok_value(f)
            }
            Err(e) => e.err_value(f),
        }
    }
}

/// A successful call's value in a record (after `ok`).
pub(crate) trait OkValue {
    fn ok_value(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result;
}

impl OkValue for () {
    fn ok_value(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        Ok(())
    }
}

impl OkValue for libc::c_int {
    fn ok_value(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, " {self}")
    }
}

impl OkValue for usize {
    fn ok_value(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, " {self} bytes")
    }
}

impl OkValue for OwnedFd {
    fn ok_value(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, " fd {}", self.as_raw_fd())
    }
}

impl OkValue for vmm_sys_util::eventfd::EventFd {
    fn ok_value(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, " fd {}", self.as_raw_fd())
    }
}

impl OkValue for memmap2::MmapRaw {
    fn ok_value(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, " at {:p}", self.as_ptr())
    }
}

impl OkValue for *mut libc::c_void {
    fn ok_value(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, " at {self:p}")
    }
}

/// A failed call's error in a record: the errno's name (`ENOTTY`).
pub(crate) trait ErrValue {
    fn err_value(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result;
}

impl ErrValue for Errno {
    fn err_value(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

impl ErrValue for std::io::Error {
    fn err_value(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.raw_os_error() {
            Some(raw) => write!(f, "{:?}", Errno::from_raw(raw)),
            None => write!(f, "error: {self}"),
        }
    }
}

#[cfg(all(test, feature = "trace"))]
mod tests;
