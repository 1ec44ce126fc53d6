//! The crate's own errno, [`Errno`]: two bytes, no dependency type in the public API.

use std::fmt;

/// A Linux error number (`EINVAL`, `EBUSY`, ...), as carried by every [`Error`](crate::Error).
///
/// Two bytes (`#[repr(transparent)]` over `u16`: Linux errnos end at 4095), like rustix's
/// `Errno`. The associated constants are the errnos the crate produces or tells apart;
/// [`Errno::from_raw`] makes any other. `Display` gives the C library's description and the
/// name (`Invalid argument (EINVAL)`), `Debug` the name (`EINVAL`).
///
/// ```
/// use uvfio::Errno;
/// assert_eq!(Errno::from_raw(22), Errno::EINVAL);
/// assert_eq!(Errno::EINVAL.raw(), 22);
/// assert_eq!(format!("{:?}", Errno::EBUSY), "EBUSY");
/// assert_eq!(Errno::ENOENT.to_string(), "No such file or directory (ENOENT)");
/// assert_eq!(std::mem::size_of::<Errno>(), 2);
/// ```
#[repr(transparent)]
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Errno(u16);

macro_rules! errnos {
    ($($name:ident),* $(,)?) => {
        impl Errno {
            $(
                #[doc = concat!("`", stringify!($name), "`.")]
                // Linux errnos are below 4096: the cast is lossless.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                pub const $name: Errno = Errno(libc::$name as u16);
            )*
        }
    };
}

errnos!(
    E2BIG, EACCES, EAGAIN, EBADF, EBUSY, EEXIST, EFAULT, EINTR, EINVAL, EIO, EISDIR, EMSGSIZE,
    ENODEV, ENOENT, ENOMEM, ENOSPC, ENOTSUP, ENOTTY, ENXIO, EOPNOTSUPP, EOVERFLOW, EPERM, EPROTO,
    ERANGE, ENOMSG, EUSERS,
);

impl Errno {
    /// The errno of a raw value, as `errno(3)` or an `io::Error` holds it. A value outside
    /// `0..=u16::MAX` (never a Linux errno) becomes `u16::MAX`, an unknown errno.
    pub const fn from_raw(raw: i32) -> Errno {
        if raw >= 0 && raw <= u16::MAX as i32 {
            // In range: checked just above.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Errno(raw as u16)
        } else {
            Errno(u16::MAX)
        }
    }

    /// The raw value, as C's `errno` holds it.
    pub const fn raw(self) -> i32 {
        self.0 as i32
    }

    /// The calling thread's `errno` now (after a failed libc call).
    pub fn last() -> Errno {
        Errno::from_raw(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    }

    /// The C library's description, e.g. `Invalid argument`.
    pub fn desc(self) -> &'static str {
        self.to_nix().desc()
    }

    /// The name (`EINVAL`), or `None` for a value the platform does not name.
    fn name(self, buf: &mut NameBuf) -> Option<&str> {
        use fmt::Write as _;
        let nix = self.to_nix();
        if nix == nix::errno::Errno::UnknownErrno {
            return None;
        }
        buf.len = 0;
        write!(buf, "{nix:?}").ok()?;
        std::str::from_utf8(&buf.bytes[..buf.len]).ok()
    }

    pub(crate) fn to_nix(self) -> nix::errno::Errno {
        nix::errno::Errno::from_raw(self.raw())
    }
}

/// A stack buffer for an errno's name (nix derives it as `Debug`; no allocation).
struct NameBuf {
    bytes: [u8; 24],
    len: usize,
}

impl fmt::Write for NameBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(fmt::Error)?;
        self.bytes
            .get_mut(self.len..end)
            .ok_or(fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = NameBuf {
            bytes: [0; 24],
            len: 0,
        };
        match self.name(&mut buf) {
            Some(name) => f.write_str(name),
            None => write!(f, "Errno({})", self.0),
        }
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({self:?})", self.desc())
    }
}

impl std::error::Error for Errno {}

/// Crate-internal: the errnos of nix's calls. Not a public `From`, so nix stays out of the API.
impl Errno {
    pub(crate) fn from_nix(errno: nix::errno::Errno) -> Errno {
        Errno::from_raw(errno as i32)
    }
}

/// Crate-internal: how many times a teardown (an unmap or unregistration in `Drop`, which
/// cannot report an error) tries a call that failed with a [`Errno::worth_retrying`] errno.
pub(crate) const TEARDOWN_ATTEMPTS: usize = 4;

impl Errno {
    /// Crate-internal: whether a teardown call that failed with this errno is worth trying
    /// again at once: `ENOMEM`, `EAGAIN` and `EINTR` (the kernel could not do it now), and
    /// `EFAULT` from copying the call's own argument, which lives on the caller's stack (only
    /// fault injection makes that fail). Giving up leaks what the call would have released
    /// (a mapping, pinned memory, an IOVA range), so it is worth a few attempts; the kernel's
    /// fault-injection sweep (tests/faults) found the leak this avoids.
    pub(crate) fn worth_retrying(self) -> bool {
        matches!(
            self,
            Errno::ENOMEM | Errno::EAGAIN | Errno::EINTR | Errno::EFAULT
        )
    }
}

/// Crate-internal: an errno of the crate's or of nix's, where a helper takes either.
pub(crate) trait IntoErrno {
    fn into_errno(self) -> Errno;
}

impl IntoErrno for Errno {
    fn into_errno(self) -> Errno {
        self
    }
}

impl IntoErrno for nix::errno::Errno {
    fn into_errno(self) -> Errno {
        Errno::from_nix(self)
    }
}

impl From<Errno> for std::io::Error {
    fn from(errno: Errno) -> Self {
        std::io::Error::from_raw_os_error(errno.raw())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_numbers_names_and_texts_as_nix() {
        for (ours, theirs) in [
            (Errno::EINVAL, nix::errno::Errno::EINVAL),
            (Errno::EBUSY, nix::errno::Errno::EBUSY),
            (Errno::ENOTSUP, nix::errno::Errno::ENOTSUP),
            (Errno::EOPNOTSUPP, nix::errno::Errno::EOPNOTSUPP),
            (Errno::E2BIG, nix::errno::Errno::E2BIG),
        ] {
            assert_eq!(ours.raw(), theirs as i32);
            assert_eq!(Errno::from_nix(theirs), ours);
            assert_eq!(format!("{ours:?}"), format!("{theirs:?}"));
            assert_eq!(ours.to_string(), format!("{} ({theirs:?})", theirs.desc()));
        }
        assert_eq!(std::mem::size_of::<Errno>(), 2);
        assert_eq!(std::mem::size_of::<Option<Errno>>(), 4);
    }

    #[test]
    fn out_of_range_and_unknown_values() {
        assert_eq!(Errno::from_raw(-1).raw(), i32::from(u16::MAX));
        assert_eq!(Errno::from_raw(70_000).raw(), i32::from(u16::MAX));
        assert_eq!(format!("{:?}", Errno::from_raw(4000)), "Errno(4000)");
        let io = std::io::Error::from(Errno::EACCES);
        assert_eq!(io.kind(), std::io::ErrorKind::PermissionDenied);
        assert_eq!(io.raw_os_error(), Some(13));
    }
}
