//! The owned guards of config space: [`BusMaster`] and [`MemoryDecodingOff`].

use super::{Command, PciConfig};
use crate::error::Result;
#[cfg(doc)]
use crate::{error::Error, mmio::Region};

impl Clone for PciConfig {
    /// Another handle on the same config space (the config region is never mapped, so this
    /// costs no system call).
    fn clone(&self) -> Self {
        PciConfig {
            region: self.region.unmapped_clone(),
        }
    }
}

/// Bus mastering turned on by [`PciConfig::bus_master`]; dropping it turns it off.
///
/// The guard owns its handle on config space (and so keeps the device open): it can live in a
/// driver's struct beside the DMA memory the device uses. Declare it after that memory, so it
/// drops (and stops the device's DMA) first.
#[derive(Debug)]
#[must_use = "bus mastering is turned off again when the guard is dropped"]
pub struct BusMaster {
    config: PciConfig,
    released: bool,
}

impl BusMaster {
    /// The config space the guard controls.
    pub fn config(&self) -> &PciConfig {
        &self.config
    }

    /// Turns bus mastering off now, reporting an error that dropping would ignore.
    ///
    /// # Errors
    ///
    /// As [`PciConfig::set_bus_master`].
    pub fn release(mut self) -> Result<()> {
        self.released = true;
        self.config.set_bus_master(false)
    }
}

impl Drop for BusMaster {
    fn drop(&mut self) {
        if !self.released {
            // A failed config write cannot be reported from drop; vfio-pci also clears bus
            // mastering when the device is closed, so the device stops either way.
            let _ = self.config.set_bus_master(false);
        }
    }
}

/// Memory decoding held off by [`PciConfig::memory_decoding_off`]; dropping it turns decoding
/// back on.
///
/// While the guard lives the device does not respond to memory accesses, `pread`/`pwrite`
/// accesses of its BARs fail with `EIO`, and no region with a mapped BAR can be made (that is
/// refused with `EBUSY`): vfio-pci would answer an access through such a mapping with
/// `SIGBUS`. The guard owns its handle on config space, so it can be kept in a driver's state.
#[derive(Debug)]
#[must_use = "memory decoding is turned on again when the guard is dropped"]
pub struct MemoryDecodingOff {
    config: PciConfig,
    released: bool,
}

impl MemoryDecodingOff {
    /// The config space the guard controls.
    pub fn config(&self) -> &PciConfig {
        &self.config
    }

    /// Turns memory decoding on again now, reporting an error that dropping would ignore.
    ///
    /// # Errors
    ///
    /// As [`PciConfig::enable_memory_space`] (the guard is released either way).
    pub fn release(mut self) -> Result<()> {
        self.restore()
    }

    fn restore(&mut self) -> Result<()> {
        if std::mem::replace(&mut self.released, true) {
            return Ok(());
        }
        let result = self.config.enable_memory_space();
        self.config.shared().decoding.release_off();
        result
    }
}

impl Drop for MemoryDecodingOff {
    fn drop(&mut self) {
        // Errors cannot be reported from drop; `release` reports them.
        let _ = self.restore();
    }
}

impl PciConfig {
    /// Turns bus mastering on and returns a guard that turns it back off when dropped: the
    /// device can DMA and send MSIs exactly while the guard lives. Declare the guard after the
    /// DMA memory the device uses, so it drops (and stops the device's DMA) first.
    ///
    /// # Errors
    ///
    /// As [`PciConfig::set_bus_master`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # let device: uvfio::Device = unimplemented!();
    /// let config = device.pci_config()?;
    /// let _dma_on = config.bus_master()?;
    /// // ... program and run the device ...
    /// // `_dma_on` drops here: bus mastering off, even on an early return or a panic.
    /// # Ok::<(), uvfio::Error>(())
    /// ```
    pub fn bus_master(&self) -> Result<BusMaster> {
        self.set_bus_master(true)?;
        Ok(BusMaster {
            config: self.clone(),
            released: false,
        })
    }

    /// Turns memory decoding off and returns a guard that turns it back on when dropped.
    ///
    /// vfio-pci answers an access through a BAR mapping with `SIGBUS` while decoding is off, so
    /// the crate allows this only while no [`Region`] of the device has a mapped BAR, and
    /// refuses to map one until the guard drops (see [`crate::mmio`], "Memory decoding").
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] (`EBUSY`) while a region of the device has a mapped BAR or
    /// another such guard exists; otherwise as [`PciConfig::update_command`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # let device: uvfio::Device = unimplemented!();
    /// let config = device.pci_config()?;
    /// let off = config.memory_decoding_off()?;
    /// // ... the device ignores memory accesses (reprogram BARs, for example) ...
    /// drop(off); // decoding is on again; BARs can be mapped
    /// let bar0 = device.region(uvfio::device::RegionIndex::BAR0)?;
    /// # Ok::<(), uvfio::Error>(())
    /// ```
    pub fn memory_decoding_off(&self) -> Result<MemoryDecodingOff> {
        let decoding = &self.shared().decoding;
        decoding.hold_off(&|| self.region.object())?;
        let mut guard = MemoryDecodingOff {
            config: self.clone(),
            released: true,
        };
        match self.update_command(|c| c - Command::MEMORY) {
            Ok(_) => {
                guard.released = false;
                Ok(guard)
            }
            Err(e) => {
                decoding.release_off();
                Err(e)
            }
        }
    }

    fn shared(&self) -> &crate::device::shared::DeviceShared {
        &self.region.device().0.shared
    }
}
