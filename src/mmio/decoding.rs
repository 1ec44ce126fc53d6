//! Memory decoding, kept on while a mapped BAR region exists.
//!
//! vfio-pci zaps a device's BAR mappings when the command register's memory bit
//! ([`Command::MEMORY`](crate::pci::config::Command::MEMORY)) is cleared, and its fault handler
//! then answers every access through them with `SIGBUS`. A safe accessor must not be able to
//! kill the process, so the crate keeps one invariant per device:
//!
//! > while a [`Region`](super::Region) of the device has a mapped BAR, memory decoding is on.
//!
//! - Creating such a region turns decoding on if it is off (and is refused while a
//!   [`MemoryDecodingOff`](crate::pci::config::MemoryDecodingOff) guard exists).
//! - A config-space write through the crate (any [`Region`](super::Region) of the config
//!   region, which includes every [`PciConfig`](crate::pci::config::PciConfig) accessor) whose
//!   bytes would clear the memory bit is refused with `EBUSY` while mapped BARs exist.
//! - [`PciConfig::memory_decoding_off`](crate::pci::config::PciConfig::memory_decoding_off)
//!   turns decoding off only when no mapped BAR exists, and keeps new ones from being made
//!   until its guard drops.
//!
//! Low power is the same hazard: after `VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY` vfio-pci zaps
//! the BAR mappings and answers accesses through them with `SIGBUS` until
//! `LOW_POWER_EXIT`. So [`Device::low_power_entry`] (and `_with_wakeup`) is refused with
//! `EBUSY` while a mapped BAR exists, and from a successful entry until
//! [`Device::low_power_exit`] no mapped BAR can be made (accesses by `pread`/`pwrite`, which
//! wake the device, still work).
//!
//! The state lives in the device's [`DeviceShared`], so every fd of one device agrees. What
//! stays outside the crate's reach: a raw `pwrite` on the device fd (from [`AsFd`] on a
//! [`Device`]), a write to the device's sysfs `config` file, and the device disappearing
//! (hot-unplug, a surprise removal): vfio-pci then revokes the mappings too.
//!
//! [`AsFd`]: std::os::fd::AsFd

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::device::shared::DeviceShared;
use crate::device::{Device, DeviceFlags, RegionIndex};
use crate::error::{Errno, Error, Object, Result};

/// Offset of the command register's low byte, which holds the memory bit.
const COMMAND: u64 = 0x04;
/// `PCI_COMMAND_MEMORY`, in the low byte.
const MEMORY: u8 = 0x02;

#[derive(Debug, Default)]
struct State {
    /// Live regions with at least one mapped piece of a BAR.
    mapped: usize,
    /// Whether a `MemoryDecodingOff` guard exists.
    off: bool,
    /// Whether low power was entered and not exited through the crate.
    low_power: bool,
}

/// A device's memory-decoding bookkeeping (see the [module documentation](self)).
#[derive(Debug, Default)]
pub(crate) struct Decoding(Mutex<State>);

impl Decoding {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `write`, a config-space write of `buf` at region offset `offset`, unless it would
    /// clear the memory bit while mapped BARs exist; the check and the write happen under the
    /// lock, so no mapping can appear in between.
    pub(crate) fn config_write(
        &self,
        op: &'static str,
        object: &dyn Fn() -> Object,
        offset: u64,
        buf: &[u8],
        write: &mut dyn FnMut() -> Result<()>,
    ) -> Result<()> {
        let Some(at) = COMMAND
            .checked_sub(offset)
            .and_then(|at| usize::try_from(at).ok())
            .filter(|&at| at < buf.len())
        else {
            return write();
        };
        let state = self.lock();
        if buf[at] & MEMORY == 0 && state.mapped > 0 {
            return Err(Error::InvalidArgument {
                op,
                object: object().into(),
                reason: format!(
                    "the write clears memory decoding (Command::MEMORY) while {} region(s) of \
                     the device have mapped BARs, whose accesses would then raise SIGBUS; drop \
                     them first, then use PciConfig::memory_decoding_off",
                    state.mapped
                )
                .into(),
                errno: Errno::EBUSY,
            });
        }
        let result = write();
        drop(state);
        result
    }

    /// Marks memory decoding as held off by a guard; refused while mapped BARs exist or another
    /// guard does. The caller then clears the bit (a write `config_write` lets through, since
    /// no mapped BAR can appear now).
    pub(crate) fn hold_off(&self, object: &dyn Fn() -> Object) -> Result<()> {
        let mut state = self.lock();
        let reason = if state.off {
            "memory decoding is already held off by another MemoryDecodingOff guard".to_string()
        } else if state.mapped > 0 {
            format!(
                "{} region(s) of the device have mapped BARs, whose accesses would raise SIGBUS \
                 while memory decoding is off; drop them first",
                state.mapped
            )
        } else {
            state.off = true;
            return Ok(());
        };
        Err(Error::InvalidArgument {
            op: "memory_decoding_off",
            object: object().into(),
            reason: reason.into(),
            errno: Errno::EBUSY,
        })
    }

    /// Ends what [`Decoding::hold_off`] started (the caller has turned the bit on again).
    pub(crate) fn release_off(&self) {
        self.lock().off = false;
    }

    /// Runs `enter`, a low-power entry ioctl, unless mapped BARs exist; the check and the
    /// ioctl happen under the lock, so no mapping can appear in between. On success, no
    /// mapped BAR can be made until [`Decoding::exit_low_power`].
    pub(crate) fn enter_low_power(
        &self,
        op: &'static str,
        object: &dyn Fn() -> Object,
        enter: impl FnOnce() -> Result<()>,
    ) -> Result<()> {
        let mut state = self.lock();
        if state.mapped > 0 {
            return Err(Error::InvalidArgument {
                op,
                object: object().into(),
                reason: format!(
                    "{} region(s) of the device have mapped BARs, whose accesses would raise                      SIGBUS while the device is in low power; drop them first (or use regions                      made with MapOptions::never_map)",
                    state.mapped
                ).into(),
                errno: Errno::EBUSY,
            });
        }
        enter()?;
        state.low_power = true;
        Ok(())
    }

    /// Runs `exit`, the low-power exit ioctl; on success mapped BARs may be made again.
    pub(crate) fn exit_low_power(&self, exit: impl FnOnce() -> Result<()>) -> Result<()> {
        let mut state = self.lock();
        exit()?;
        state.low_power = false;
        Ok(())
    }
}

/// The registration of one region with mapped BAR pieces: memory decoding stays on while it
/// lives.
#[derive(Debug)]
pub(crate) struct MappedBar(Arc<DeviceShared>);

impl MappedBar {
    /// Registers a region of `index` of `device` that has mapped pieces, turning memory
    /// decoding on if it is off. `None` when the invariant does not concern the region (not a
    /// PCI device, not a BAR).
    pub(crate) fn register(
        device: &Device,
        index: RegionIndex,
        object: &dyn Fn() -> Object,
    ) -> Result<Option<MappedBar>> {
        if index.0 > 5 || !device.flags().contains(DeviceFlags::PCI) {
            return Ok(None);
        }
        let shared = device.0.shared.clone();
        let mut state = shared.decoding.lock();
        if state.off || state.low_power {
            let reason = if state.off {
                "memory decoding is held off by a MemoryDecodingOff guard: a mapped BAR access \
                 would raise SIGBUS; drop the guard first"
            } else {
                "the device was let into low power (Device::low_power_entry): a mapped BAR \
                 access would raise SIGBUS; call Device::low_power_exit first"
            };
            return Err(Error::InvalidArgument {
                op: "region",
                object: object().into(),
                reason: reason.into(),
                errno: Errno::EBUSY,
            });
        }
        ensure_memory_on(device, object)?;
        state.mapped += 1;
        drop(state);
        Ok(Some(MappedBar(shared)))
    }
}

impl Drop for MappedBar {
    fn drop(&mut self) {
        let mut state = self.0.decoding.lock();
        state.mapped = state.mapped.saturating_sub(1);
    }
}

/// Reads the command register's low byte straight from the config region and sets the memory
/// bit if it is clear (called under the decoding lock, so not through `Region`).
fn ensure_memory_on(device: &Device, object: &dyn Fn() -> Object) -> Result<()> {
    let config = device.region_info(RegionIndex::CONFIG)?;
    let at = config.offset.saturating_add(COMMAND);
    let syscall = |op, errno| Error::Syscall {
        op,
        object: object().into(),
        errno,
    };
    let mut byte = [0u8; 1];
    match device.fd().read_at(&mut byte, at) {
        Ok(1) => {}
        Ok(_) => return Err(syscall("pread", Errno::EIO)),
        Err(errno) => return Err(syscall("pread", errno)),
    }
    if byte[0] & MEMORY == 0 {
        match device.fd().write_at(&[byte[0] | MEMORY], at) {
            Ok(1) => {}
            Ok(_) => return Err(syscall("pwrite", Errno::EIO)),
            Err(errno) => return Err(syscall("pwrite", errno)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object() -> Object {
        Object::Device("test".into())
    }

    fn write_ok(d: &Decoding, offset: u64, buf: &[u8]) -> Result<bool> {
        let mut wrote = false;
        d.config_write("write", &object, offset, buf, &mut || {
            wrote = true;
            Ok(())
        })
        .map(|()| wrote)
    }

    #[test]
    fn clearing_memory_is_refused_only_while_bars_are_mapped() {
        let d = Decoding::default();
        // Nothing mapped: any write goes through.
        assert!(write_ok(&d, 4, &[0x00, 0x00]).unwrap());
        d.lock().mapped = 1;
        // Clearing the bit, by any width that covers byte 4.
        for (offset, buf) in [
            (4, &[0x04u8, 0x00][..]),
            (4, &[0x00][..]),
            (0, &[0, 0, 0, 0, 0x05, 0, 0, 0][..]),
            (2, &[0, 0, 0x01, 0][..]),
        ] {
            let err = write_ok(&d, offset, buf).unwrap_err();
            assert_eq!(err.errno(), Errno::EBUSY, "{err}");
        }
        // Keeping it set, or not touching byte 4, goes through.
        assert!(write_ok(&d, 4, &[0x06, 0x00]).unwrap());
        assert!(write_ok(&d, 5, &[0x00]).unwrap());
        assert!(write_ok(&d, 0, &[0, 0, 0, 0]).unwrap());
        assert!(write_ok(&d, 6, &[0, 0]).unwrap());
    }

    #[test]
    fn a_guard_needs_no_mapped_bar_and_is_exclusive() {
        let d = Decoding::default();
        d.lock().mapped = 2;
        assert_eq!(d.hold_off(&object).unwrap_err().errno(), Errno::EBUSY);
        d.lock().mapped = 0;
        d.hold_off(&object).unwrap();
        assert_eq!(d.hold_off(&object).unwrap_err().errno(), Errno::EBUSY);
        d.release_off();
        d.hold_off(&object).unwrap();
    }

    #[test]
    fn low_power_needs_no_mapped_bar_and_only_a_successful_entry_counts() {
        let d = Decoding::default();
        d.lock().mapped = 1;
        let mut called = false;
        let err = d
            .enter_low_power("low_power_entry", &object, || {
                called = true;
                Ok(())
            })
            .unwrap_err();
        assert_eq!(err.errno(), Errno::EBUSY);
        assert!(!called, "the ioctl ran under a mapped BAR");
        d.lock().mapped = 0;
        let failed = d.enter_low_power("low_power_entry", &object, || {
            Err(Error::invalid("low_power_entry", object(), "refused"))
        });
        assert!(failed.is_err() && !d.lock().low_power);
        d.enter_low_power("low_power_entry", &object, || Ok(()))
            .unwrap();
        assert!(d.lock().low_power);
        d.exit_low_power(|| Ok(())).unwrap();
        assert!(!d.lock().low_power);
    }
}
