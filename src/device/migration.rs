//! VFIO migration v2, typed: the device's migration state machine with the kernel's own arcs,
//! the data transfer fd as an owned reader/writer, PRE_COPY sizes, and one-call
//! [`save`]/[`load`].
//!
//! # The state machine
//!
//! `include/uapi/linux/vfio.h` (`enum vfio_device_mig_state`):
//!
//! > The device migration Finite State Machine is described by the enum
//! > vfio_device_mig_state. Some of the FSM arcs will create a migration data transfer session
//! > by returning a FD, in this case the migration data will flow over the FD using read() and
//! > write() [...]
//! >
//! > There are 5 states to support VFIO_MIGRATION_STOP_COPY: RUNNING, STOP, STOP_COPY,
//! > RESUMING, ERROR. And optional states to support VFIO_MIGRATION_P2P: RUNNING_P2P. And
//! > VFIO_MIGRATION_PRE_COPY: PRE_COPY. And VFIO_MIGRATION_P2P | VFIO_MIGRATION_PRE_COPY:
//! > PRE_COPY_P2P.
//!
//! Which states a device has comes from `VFIO_DEVICE_FEATURE_MIGRATION`
//! ([`Device::migration_flags`], [`MigrationFlags::supports`]). The arcs between them are the
//! kernel's: [`MigrationFlags::next_state`] is `vfio_mig_get_next_state()` of
//! `drivers/vfio/vfio_main.c` (the same table, the same skipping of unsupported states), so
//! [`MigrationFlags::is_arc`] names exactly the single arcs a migration driver implements, and
//! [`MigrationFlags::path`] the "combination transition" the kernel would walk:
//!
//! > The remaining possible transitions are interpreted as combinations of the above FSM arcs.
//! > As there are multiple paths through the FSM arcs the path should be selected based on the
//! > following rules: Select the shortest path. The path cannot have saving group states as
//! > interior arcs, only starting/end states.
//!
//! [`Migration::step`] takes one arc; [`Migration::set_state`] walks the path one arc (one
//! `VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE` SET) at a time, after reading the device's state
//! (GET). Anything else is refused *before* any SET, with [`Error::MigrationArc`]: a state the device lacks, ERROR as a target ("ERROR
//! cannot be specified as a device state"), the forbidden arcs STOP_COPY → PRE_COPY and
//! STOP_COPY → PRE_COPY_P2P ("These arcs are not permitted and return error if requested"), and
//! any change out of ERROR.
//!
//! # ERROR and reset
//!
//! > any -> ERROR: ERROR cannot be specified as a device state, however any transition request
//! > can be failed with an errno return and may then move the device_state into ERROR. [...] To
//! > recover from ERROR VFIO_DEVICE_RESET must be used to return the device_state back to
//! > RUNNING.
//!
//! > To abort a RESUMING session the device must be reset.
//!
//! [`Migration::recover`] is that reset. It issues `VFIO_DEVICE_RESET` even on a device that
//! does not report `VFIO_DEVICE_FLAGS_RESET`: the kernel's sample `mtty` implements the reset
//! (and migration) but reports only `VFIO_DEVICE_FLAGS_PCI`.
//!
//! # The data fd
//!
//! > If the new_state starts a new data transfer session then the FD associated with that
//! > session is returned in data_fd. [...] The user must consider the migration data stream
//! > carried over the FD to be opaque and must preserve the byte order of the stream. The user
//! > is not required to preserve buffer segmentation when writing the data stream during the
//! > RESUMING operation.
//!
//! [`MigrationData`] owns it and is a [`std::io::Read`] (saving: PRE_COPY, PRE_COPY_P2P,
//! STOP_COPY) and [`std::io::Write`] (RESUMING). In PRE_COPY the stream has a temporary end:
//! `read()` fails with `ENOMSG` ("When read() is done on this temporary end of stream the kernel
//! driver should return ENOMSG") or returns 0; [`MigrationData::read_available`] reads up to
//! either. [`MigrationData::precopy_info`] is `VFIO_MIG_GET_PRECOPY_INFO` (`initial_bytes`,
//! `dirty_bytes`).
//!
//! # References
//!
//! - `include/uapi/linux/vfio.h`: `VFIO_DEVICE_FEATURE_MIGRATION`,
//!   `VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE`, `enum vfio_device_mig_state`,
//!   `VFIO_MIG_GET_PRECOPY_INFO`
//! - `drivers/vfio/vfio_main.c`: `vfio_mig_get_next_state()`
//! - `samples/vfio-mdev/mtty.c`: a migration driver (STOP_COPY, P2P, PRE_COPY) the project's
//!   kernel builds in; the hardware tests migrate one instance into another

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use super::feature::{Feature, MigState, MigrationFlags};
use super::Device;
use crate::error::{Errno, Error, Object, Result};
use crate::uapi::ioctl::{Cause, Failed, MigDataFd};

/// The number of states of `enum vfio_device_mig_state` (`VFIO_DEVICE_STATE_NR`).
const NUM_STATES: usize = 8;

// `vfio_from_fsm_table` of vfio_mig_get_next_state(), by state number: ERROR 0, STOP 1,
// RUNNING 2, STOP_COPY 3, RESUMING 4, RUNNING_P2P 5, PRE_COPY 6, PRE_COPY_P2P 7.
// FSM[from][to] = the next state on the way from `from` to `to`.
const E: u8 = 0; // ERROR
const S: u8 = 1; // STOP
const R: u8 = 2; // RUNNING
const SC: u8 = 3; // STOP_COPY
const RE: u8 = 4; // RESUMING
const RP: u8 = 5; // RUNNING_P2P
const PC: u8 = 6; // PRE_COPY
const PP: u8 = 7; // PRE_COPY_P2P
#[rustfmt::skip]
const FSM: [[u8; NUM_STATES]; NUM_STATES] = [
    //     to: E  S   R   SC  RE  RP  PC  PP
    /* E  */ [E, E,  E,  E,  E,  E,  E,  E],
    /* S  */ [E, S,  RP, SC, RE, RP, RP, RP],
    /* R  */ [E, RP, R,  RP, RP, RP, PC, RP],
    /* SC */ [E, S,  S,  SC, S,  S,  E,  E],
    /* RE */ [E, S,  S,  S,  RE, S,  S,  S],
    /* RP */ [E, S,  R,  S,  S,  RP, R,  PP],
    /* PC */ [E, R,  R,  PP, R,  R,  PC, PP],
    /* PP */ [E, RP, RP, SC, RP, RP, PC, PP],
];

impl MigState {
    /// Every state of `enum vfio_device_mig_state`, in number order (ERROR first).
    pub const ALL: [MigState; NUM_STATES] = [
        MigState::ERROR,
        MigState::STOP,
        MigState::RUNNING,
        MigState::STOP_COPY,
        MigState::RESUMING,
        MigState::RUNNING_P2P,
        MigState::PRE_COPY,
        MigState::PRE_COPY_P2P,
    ];

    /// The state's name without the `VFIO_DEVICE_STATE_` prefix, if known.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            MigState::ERROR => "ERROR",
            MigState::STOP => "STOP",
            MigState::RUNNING => "RUNNING",
            MigState::STOP_COPY => "STOP_COPY",
            MigState::RESUMING => "RESUMING",
            MigState::RUNNING_P2P => "RUNNING_P2P",
            MigState::PRE_COPY => "PRE_COPY",
            MigState::PRE_COPY_P2P => "PRE_COPY_P2P",
            _ => return None,
        })
    }

    /// Whether the state is in the "saving group" (PRE_COPY, PRE_COPY_P2P, STOP_COPY), whose
    /// states share one data transfer session.
    pub fn is_saving(self) -> bool {
        matches!(
            self,
            MigState::PRE_COPY | MigState::PRE_COPY_P2P | MigState::STOP_COPY
        )
    }

    /// `state_flags_table` of vfio_mig_get_next_state(): the flags a device needs for the
    /// state; `None` for ERROR and unknown states.
    fn required_flags(self) -> Option<MigrationFlags> {
        let base = MigrationFlags::STOP_COPY;
        Some(match self {
            MigState::STOP | MigState::RUNNING | MigState::STOP_COPY | MigState::RESUMING => base,
            MigState::RUNNING_P2P => base | MigrationFlags::P2P,
            MigState::PRE_COPY => base | MigrationFlags::PRE_COPY,
            MigState::PRE_COPY_P2P => base | MigrationFlags::P2P | MigrationFlags::PRE_COPY,
            _ => return None,
        })
    }

    fn index(self) -> Option<usize> {
        usize::try_from(self.0).ok().filter(|&i| i < NUM_STATES)
    }
}

impl fmt::Display for MigState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "migration state {}", self.0),
        }
    }
}

impl MigrationFlags {
    /// Whether a device with these flags has `state` (and may be asked for it). ERROR is never
    /// asked for; every other state needs [`MigrationFlags::STOP_COPY`], RUNNING_P2P also
    /// [`MigrationFlags::P2P`], PRE_COPY also [`MigrationFlags::PRE_COPY`], PRE_COPY_P2P all
    /// three.
    pub fn supports(self, state: MigState) -> bool {
        state.required_flags().is_some_and(|f| self.contains(f))
    }

    /// The next state on the way from `from` to `to`, as the kernel's
    /// `vfio_mig_get_next_state()` computes it for a device with these flags (states the
    /// device lacks are skipped over); `None` where the kernel answers `EINVAL`: a state the
    /// device lacks, ERROR on either side, STOP_COPY → PRE_COPY(_P2P). `from` itself when
    /// `from == to`.
    pub fn next_state(self, from: MigState, to: MigState) -> Option<MigState> {
        if !self.supports(from) || !self.supports(to) {
            return None;
        }
        let (f, t) = (from.index()?, to.index()?);
        let mut next = FSM[f][t];
        while next != E && !self.supports(MigState(u32::from(next))) {
            next = FSM[usize::from(next)][t];
        }
        (next != E).then_some(MigState(u32::from(next)))
    }

    /// Whether `from` → `to` is one arc of the device's state machine: a transition its
    /// migration driver implements directly.
    pub fn is_arc(self, from: MigState, to: MigState) -> bool {
        from != to && self.next_state(from, to) == Some(to)
    }

    /// Every arc of the device's state machine, `(from, to)`, in state number order.
    pub fn arcs(self) -> Vec<(MigState, MigState)> {
        let mut out = Vec::new();
        for from in MigState::ALL {
            for to in MigState::ALL {
                if self.is_arc(from, to) {
                    out.push((from, to));
                }
            }
        }
        out
    }

    /// The states the kernel's combination transition from `from` to `to` passes through,
    /// ending with `to` (empty when `from == to`); `None` when there is no such transition
    /// (see [`MigrationFlags::next_state`]).
    pub fn path(self, from: MigState, to: MigState) -> Option<Vec<MigState>> {
        let mut path = Vec::new();
        let mut at = from;
        while at != to {
            at = self.next_state(at, to)?;
            path.push(at);
            if path.len() > NUM_STATES {
                return None;
            }
        }
        if from == to {
            self.next_state(from, to)?;
        }
        Some(path)
    }
}

/// `struct vfio_precopy_info`: how much PRE_COPY data the device has for the data fd now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PrecopyInfo {
    /// `initial_bytes`: initial state still to read ("It is recommended to leave PRE_COPY for
    /// STOP_COPY only after this field reaches zero").
    pub initial_bytes: u64,
    /// `dirty_bytes`: state changed since it was read.
    pub dirty_bytes: u64,
}

/// The migration interface of a device: its capabilities and its state machine.
///
/// A cheap handle (it holds a [`Device`] clone and the flags read when it was made).
#[derive(Debug, Clone)]
pub struct Migration {
    device: Device,
    flags: MigrationFlags,
}

impl Device {
    /// The device's migration interface ([`Migration::new`]).
    ///
    /// # Errors
    ///
    /// As [`Migration::new`].
    pub fn migration(&self) -> Result<Migration> {
        Migration::new(self)
    }
}

impl Migration {
    /// Reads the device's migration capabilities (`VFIO_DEVICE_FEATURE_MIGRATION`).
    ///
    /// # Errors
    ///
    /// [`Error::NotSupported`] for a device without migration support (`ENOTTY`), or one whose
    /// flags lack [`MigrationFlags::STOP_COPY`], which every defined combination includes.
    pub fn new(device: &Device) -> Result<Migration> {
        let flags = device.migration_flags()?;
        if !flags.contains(MigrationFlags::STOP_COPY) {
            return Err(Error::NotSupported {
                op: "migration",
                object: device.object().into(),
                reason: format!(
                    "the device's migration flags {flags:?} lack VFIO_MIGRATION_STOP_COPY, which \
                     every combination vfio.h defines has"
                )
                .into(),
                errno: Errno::ENOTSUP,
            });
        }
        Ok(Migration {
            device: device.clone(),
            flags,
        })
    }

    /// The device.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The device's migration capabilities (`VFIO_DEVICE_FEATURE_MIGRATION`).
    pub fn flags(&self) -> MigrationFlags {
        self.flags
    }

    /// The device's state now (`VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE` GET).
    ///
    /// # Errors
    ///
    /// [`Error::Ioctl`] when the kernel refuses.
    pub fn state(&self) -> Result<MigState> {
        self.device.mig_state()
    }

    /// The estimated size of the STOP_COPY data (`VFIO_DEVICE_FEATURE_MIG_DATA_SIZE`).
    ///
    /// # Errors
    ///
    /// [`Error::NotSupported`] on kernels before 6.2.
    pub fn data_size(&self) -> Result<u64> {
        self.device.mig_data_size()
    }

    /// The arcs [`Migration::set_state`] would take from the device's state now to `to`.
    ///
    /// # Errors
    ///
    /// [`Error::MigrationArc`] when the kernel's state machine has no way there.
    pub fn path_to(&self, to: MigState) -> Result<Vec<MigState>> {
        let from = self.state()?;
        self.check_path(from, to)
    }

    fn refuse(&self, from: MigState, to: MigState, reason: impl Into<String>) -> Error {
        Error::MigrationArc {
            object: self.device.object().into(),
            from,
            to,
            reason: reason.into().into(),
            errno: Errno::EINVAL,
        }
    }

    fn check_path(&self, from: MigState, to: MigState) -> Result<Vec<MigState>> {
        if from == MigState::ERROR {
            return Err(self.refuse(
                from,
                to,
                "the device is in ERROR; only VFIO_DEVICE_RESET (Migration::recover) leaves it",
            ));
        }
        if to == MigState::ERROR {
            return Err(self.refuse(from, to, "ERROR cannot be asked for"));
        }
        if !self.flags.supports(to) {
            return Err(self.refuse(
                from,
                to,
                format!("the device does not support {to} (flags {:?})", self.flags),
            ));
        }
        self.flags.path(from, to).ok_or_else(|| {
            self.refuse(
                from,
                to,
                "the kernel's state machine has no such transition (STOP_COPY cannot go back to \
                 PRE_COPY or PRE_COPY_P2P)",
            )
        })
    }

    /// Takes the single arc from the device's state now to `to`; returns the data transfer fd
    /// when the arc opens a session (STOP → STOP_COPY, STOP → RESUMING, RUNNING → PRE_COPY,
    /// RUNNING_P2P → PRE_COPY_P2P). Asking for the state the device is in does nothing.
    ///
    /// # Errors
    ///
    /// [`Error::MigrationArc`], before any SET, when `to` is not one arc away (the reason
    /// names the path [`Migration::set_state`] would take), not supported, or the device is in
    /// ERROR; [`Error::Ioctl`] when the migration driver fails the arc (the device may then be
    /// in ERROR: see [`Migration::recover`]).
    pub fn step(&self, to: MigState) -> Result<Option<MigrationData>> {
        let from = self.state()?;
        let path = self.check_path(from, to)?;
        match path.len() {
            0 => Ok(None),
            1 => self.arc(to),
            _ => Err(self.refuse(
                from,
                to,
                format!(
                    "not a single arc of the device's state machine; the kernel's path is {}",
                    show_path(from, &path)
                ),
            )),
        }
    }

    /// Moves the device to `to` along the kernel's path ([`MigrationFlags::path`]), one arc
    /// (one ioctl) at a time; returns the data transfer fd when the last arc opens a session.
    /// Within the saving group the session stays the one already open (PRE_COPY →
    /// PRE_COPY_P2P → STOP_COPY returns `None`: keep reading the PRE_COPY fd).
    ///
    /// # Errors
    ///
    /// [`Error::MigrationArc`], before any SET, when there is no path or the device is in
    /// ERROR; [`Error::Ioctl`] when an arc fails: the device is then in the state before that
    /// arc, or in ERROR ([`Migration::state`] tells which).
    pub fn set_state(&self, to: MigState) -> Result<Option<MigrationData>> {
        let from = self.state()?;
        let mut data = None;
        for next in self.check_path(from, to)? {
            if let Some(d) = self.arc(next)? {
                data = Some(d);
            }
        }
        Ok(data)
    }

    fn arc(&self, to: MigState) -> Result<Option<MigrationData>> {
        match self.device.fd().feature_set_mig_state(to.0) {
            Ok(fd) => Ok(fd.map(|fd| MigrationData {
                fd,
                object: self.device.object(),
                session: to,
            })),
            Err(Failed {
                cause: Cause::Errno(Errno::ENOTTY),
                ..
            }) => Err(Error::NotSupported {
                op: "set_mig_state",
                object: self.device.object().into(),
                reason: format!("the device does not support {}", Feature::MIG_DEVICE_STATE).into(),
                errno: Errno::ENOTTY,
            }),
            Err(f) => Err(f.on(self.device.object())),
        }
    }

    /// Resets the device (`VFIO_DEVICE_RESET`), which returns its migration state to RUNNING:
    /// the way out of ERROR, and the way to abort a RESUMING session. Any open data fd of the
    /// device is then dead. Returns the state after the reset.
    ///
    /// # Errors
    ///
    /// [`Error::Ioctl`] when the reset fails; [`Error::Malformed`] when the device is not
    /// RUNNING after it.
    pub fn recover(&self) -> Result<MigState> {
        self.device
            .fd()
            .reset()
            .map_err(|f| f.on(self.device.object()))?;
        let state = self.state()?;
        if state != MigState::RUNNING {
            return Err(Error::malformed(
                "VFIO_DEVICE_RESET",
                self.device.object(),
                crate::error::Malformation::Other(format!(
                    "the migration state is {state} after a reset, not RUNNING"
                )),
            ));
        }
        Ok(state)
    }

    /// Saves the device's state: from its state now (RUNNING, STOP, ...; not the saving
    /// group) to STOP_COPY, reads the whole stream, then to STOP. The device is left in STOP.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] when the device is already in the saving group (read its
    /// session's fd instead); as [`Migration::set_state`]; [`Error::Syscall`] when reading the
    /// data fd fails.
    pub fn save(&self) -> Result<Vec<u8>> {
        let from = self.state()?;
        if from.is_saving() {
            return Err(Error::invalid(
                "save",
                self.device.object(),
                format!("the device is in {from}, in a session already: read its data fd"),
            ));
        }
        let mut data = self.set_state(MigState::STOP_COPY)?.ok_or_else(|| {
            Error::malformed(
                "VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE",
                self.device.object(),
                crate::error::Malformation::Other(
                    "entering STOP_COPY returned no data fd".to_string(),
                ),
            )
        })?;
        let mut out = Vec::new();
        data.read_available(&mut out)?;
        self.set_state(MigState::STOP)?;
        Ok(out)
    }

    /// Loads a state saved from a compatible device: from the device's state now to
    /// RESUMING, writes `bytes`, then to STOP (where the driver checks and applies them). The
    /// device is left in STOP.
    ///
    /// # Errors
    ///
    /// As [`Migration::set_state`] (the RESUMING → STOP arc fails when the driver rejects the
    /// data; the device stays in RESUMING or goes to ERROR, and [`Migration::recover`] aborts);
    /// [`Error::Syscall`] when the driver refuses a write (mtty: `EFAULT` for a bad header,
    /// `ENOMEM` for too much data).
    pub fn load(&self, bytes: &[u8]) -> Result<()> {
        let mut data = self.set_state(MigState::RESUMING)?.ok_or_else(|| {
            Error::malformed(
                "VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE",
                self.device.object(),
                crate::error::Malformation::Other(
                    "entering RESUMING returned no data fd".to_string(),
                ),
            )
        })?;
        io::Write::write_all(&mut data, bytes).map_err(|e| data.error("write", &e))?;
        self.set_state(MigState::STOP)?;
        drop(data);
        Ok(())
    }
}

fn show_path(from: MigState, path: &[MigState]) -> String {
    let mut s = from.to_string();
    for p in path {
        s.push_str(" -> ");
        s.push_str(&p.to_string());
    }
    s
}

/// Saves `device`'s state ([`Migration::save`]): the stream of bytes to [`load`] into a
/// compatible device. The device is left in STOP.
///
/// # Errors
///
/// As [`Migration::new`] and [`Migration::save`].
pub fn save(device: &Device) -> Result<Vec<u8>> {
    Migration::new(device)?.save()
}

/// Loads `bytes` from [`save`] into `device` ([`Migration::load`]). The device is left in
/// STOP; [`Migration::set_state`] to RUNNING resumes it.
///
/// # Errors
///
/// As [`Migration::new`] and [`Migration::load`].
pub fn load(device: &Device, bytes: &[u8]) -> Result<()> {
    Migration::new(device)?.load(bytes)
}

/// A migration data transfer session's fd, owned: read it in the saving states, write it in
/// RESUMING. Closing it (dropping) ends nothing by itself; the state machine's arcs end
/// sessions.
#[derive(Debug)]
pub struct MigrationData {
    fd: MigDataFd,
    object: Object,
    session: MigState,
}

impl MigrationData {
    /// The state whose arc opened this session (PRE_COPY, PRE_COPY_P2P, STOP_COPY or
    /// RESUMING).
    pub fn session(&self) -> MigState {
        self.session
    }

    /// `VFIO_MIG_GET_PRECOPY_INFO`: the PRE_COPY data available now.
    ///
    /// # Errors
    ///
    /// [`Error::Ioctl`]: `EINVAL` outside PRE_COPY and PRE_COPY_P2P, `ENOTTY` on a RESUMING
    /// session's fd, `ENODEV` once the session ended.
    #[doc(alias = "VFIO_MIG_GET_PRECOPY_INFO")]
    pub fn precopy_info(&self) -> Result<PrecopyInfo> {
        let (initial_bytes, dirty_bytes) = self
            .fd
            .precopy_info()
            .map_err(|f| f.on(self.object.clone()))?;
        Ok(PrecopyInfo {
            initial_bytes,
            dirty_bytes,
        })
    }

    /// Reads what the device has now, appending to `out`: to the end of the stream in
    /// STOP_COPY, to the temporary end (`ENOMSG`, or a 0-byte read) in PRE_COPY. Returns the
    /// bytes read.
    ///
    /// # Errors
    ///
    /// [`Error::Syscall`] (`read`) with the kernel's errno (`ENODEV` once the session ended).
    pub fn read_available(&mut self, out: &mut Vec<u8>) -> Result<usize> {
        let start = out.len();
        let mut chunk = [0u8; 4096];
        loop {
            match nix::unistd::read(self.fd.as_fd(), &mut chunk).map_err(Errno::from_nix) {
                Ok(0) | Err(Errno::ENOMSG) => return Ok(out.len() - start),
                Ok(n) => out.extend_from_slice(&chunk[..n]),
                Err(Errno::EINTR) => {}
                Err(e) => return Err(self.error("read", &io::Error::from(e))),
            }
        }
    }

    fn error(&self, op: &'static str, e: &io::Error) -> Error {
        Error::Syscall {
            op,
            object: self.object.clone().into(),
            errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        }
    }

    /// The fd, for a caller that moves the stream itself (e.g. `splice` to a socket).
    pub fn into_owned_fd(self) -> OwnedFd {
        self.fd.into()
    }
}

impl io::Read for MigrationData {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        nix::unistd::read(self.fd.as_fd(), buf).map_err(io::Error::from)
    }
}

impl io::Write for MigrationData {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        nix::unistd::write(self.fd.as_fd(), buf).map_err(io::Error::from)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsFd for MigrationData {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for MigrationData {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
#[path = "migration_tests.rs"]
mod tests;
