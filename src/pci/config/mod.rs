//! PCI configuration space through the VFIO config region.
//!
//! [`PciConfig`] reads and writes a device's config space live (each access is a `pread` or
//! `pwrite` on the device fd, which vfio-pci filters and virtualises); [`ConfigSpace`] is a
//! snapshot of it (or of any captured dump) on which the capability lists are walked without
//! further system calls.
//!
//! ```no_run
//! use uvfio::pci::config::Command;
//! # let device: uvfio::Device = unimplemented!();
//! let config = device.pci_config()?;
//! println!("{:04x}:{:04x}", config.vendor_id()?, config.device_id()?);
//! // A driver that wants DMA turns on memory decoding and bus mastering first.
//! config.update_command(|c| c | Command::MEMORY | Command::BUS_MASTER)?;
//! for bar in config.bars()? {
//!     println!("BAR{}: {:?}, {} bytes", bar.index, bar.kind, bar.size);
//! }
//! if let Some(msix) = config.msix()? {
//!     println!("MSI-X table in BAR{} at {:#x}", msix.table.bar, msix.table.offset);
//! }
//! # Ok::<(), uvfio::Error>(())
//! ```
//!
//! # References
//!
//! - PCI Local Bus Specification 3.0, §6.1 (configuration space), §6.2.5 (base addresses)
//! - Linux `include/uapi/linux/pci_regs.h`
//! - Linux `drivers/vfio/pci/vfio_pci_config.c` (what vfio-pci virtualises)

use super::caps::{CapListError, Capability, ExtCapability, MsiCapability, MsixCapability};
use crate::device::{Device, DeviceFlags, RegionFlags, RegionIndex, RegionInfo};
use crate::error::{Errno, Error, Malformation, Result};
use crate::mmio::{MapOptions, Region};

mod guards;
mod space;

pub use guards::{BusMaster, MemoryDecodingOff};
pub use space::ConfigSpace;

/// Offset of the vendor id (16 bits).
pub const VENDOR_ID: u64 = 0x00;
/// Offset of the device id (16 bits).
pub const DEVICE_ID: u64 = 0x02;
/// Offset of the command register (16 bits).
pub const COMMAND: u64 = 0x04;
/// Offset of the status register (16 bits).
pub const STATUS: u64 = 0x06;
/// Offset of the revision id (8 bits).
pub const REVISION_ID: u64 = 0x08;
/// Offset of the class code (24 bits: programming interface, subclass, base class).
pub const CLASS_PROG: u64 = 0x09;
/// Offset of the header type (8 bits; bit 7 = multi-function).
pub const HEADER_TYPE: u64 = 0x0e;
/// Offset of BAR 0 (32 bits each, 6 of them in a type 0 header).
pub const BASE_ADDRESS_0: u64 = 0x10;
/// Offset of the subsystem vendor id (16 bits, type 0 header).
pub const SUBSYSTEM_VENDOR_ID: u64 = 0x2c;
/// Offset of the subsystem id (16 bits, type 0 header).
pub const SUBSYSTEM_ID: u64 = 0x2e;
/// Offset of the capability list pointer (8 bits).
pub const CAPABILITY_LIST: u64 = 0x34;
/// Offset of the interrupt line (8 bits).
pub const INTERRUPT_LINE: u64 = 0x3c;
/// Offset of the interrupt pin (8 bits; 0 = none, 1..=4 = INTA..INTD).
pub const INTERRUPT_PIN: u64 = 0x3d;

bitflags::bitflags! {
    /// The command register (`PCI_COMMAND`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct Command: u16 {
        /// `PCI_COMMAND_IO`: respond to I/O space accesses.
        const IO = 0x0001;
        /// `PCI_COMMAND_MEMORY`: respond to memory space accesses. vfio-pci blocks access to
        /// the BARs (mapped ones fault) while this is off.
        const MEMORY = 0x0002;
        /// `PCI_COMMAND_MASTER`: the device may master the bus, i.e. do DMA (and send MSIs).
        const BUS_MASTER = 0x0004;
        /// `PCI_COMMAND_SPECIAL`: respond to special cycles.
        const SPECIAL = 0x0008;
        /// `PCI_COMMAND_INVALIDATE`: use memory write and invalidate.
        const INVALIDATE = 0x0010;
        /// `PCI_COMMAND_VGA_PALETTE`: VGA palette snooping.
        const VGA_PALETTE = 0x0020;
        /// `PCI_COMMAND_PARITY`: respond to parity errors.
        const PARITY = 0x0040;
        /// `PCI_COMMAND_WAIT`: address/data stepping.
        const WAIT = 0x0080;
        /// `PCI_COMMAND_SERR`: enable SERR#.
        const SERR = 0x0100;
        /// `PCI_COMMAND_FAST_BACK`: fast back-to-back writes.
        const FAST_BACK = 0x0200;
        /// `PCI_COMMAND_INTX_DISABLE`: INTx emulation disabled.
        const INTX_DISABLE = 0x0400;
        // Reserved bits are kept as read, not dropped.
        const _ = !0;
    }
}

bitflags::bitflags! {
    /// The status register (`PCI_STATUS`). Bits 11..=15 are write-1-to-clear.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct Status: u16 {
        /// `PCI_STATUS_IMM_READY`: immediate readiness.
        const IMM_READY = 0x0001;
        /// `PCI_STATUS_INTERRUPT`: an INTx interrupt is pending.
        const INTERRUPT = 0x0008;
        /// `PCI_STATUS_CAP_LIST`: the capability list exists.
        const CAP_LIST = 0x0010;
        /// `PCI_STATUS_66MHZ`: 66 MHz capable.
        const MHZ_66 = 0x0020;
        /// `PCI_STATUS_FAST_BACK`: fast back-to-back capable.
        const FAST_BACK = 0x0080;
        /// `PCI_STATUS_PARITY`: master data parity error.
        const PARITY = 0x0100;
        /// `PCI_STATUS_SIG_TARGET_ABORT`: signalled target abort.
        const SIG_TARGET_ABORT = 0x0800;
        /// `PCI_STATUS_REC_TARGET_ABORT`: received target abort.
        const REC_TARGET_ABORT = 0x1000;
        /// `PCI_STATUS_REC_MASTER_ABORT`: received master abort.
        const REC_MASTER_ABORT = 0x2000;
        /// `PCI_STATUS_SIG_SYSTEM_ERROR`: signalled system error.
        const SIG_SYSTEM_ERROR = 0x4000;
        /// `PCI_STATUS_DETECTED_PARITY`: detected parity error.
        const DETECTED_PARITY = 0x8000;
        // Other bits (DEVSEL timing) are kept as read.
        const _ = !0;
    }
}

/// What a BAR decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BarKind {
    /// I/O space.
    Io,
    /// 32-bit memory space.
    Memory32,
    /// Memory space below 1 MiB (legacy type `01`).
    Memory1M,
    /// 64-bit memory space: this BAR and the next one form the address.
    Memory64,
}

/// A decoded base address register.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Bar {
    /// The BAR number (0..=5), which is also its VFIO region index.
    pub index: u8,
    /// What it decodes.
    pub kind: BarKind,
    /// Whether memory space is prefetchable (always `false` for I/O).
    pub prefetchable: bool,
    /// The address bits of the register (both halves for 64-bit), as vfio-pci presents them:
    /// a virtualised value, not necessarily the host's physical address.
    pub address: u64,
    /// The size in bytes, from the VFIO region info (the kernel's sizing, not re-probed).
    pub size: u64,
    /// The region's flags (readable, writable, mmappable).
    pub flags: RegionFlags,
}

/// Decodes a BAR register: its kind, prefetchability and address bits (`high` is the next
/// register, used for 64-bit BARs).
pub fn decode_bar(low: u32, high: u32) -> (BarKind, bool, u64) {
    if low & 1 != 0 {
        return (BarKind::Io, false, u64::from(low & !0x3));
    }
    let prefetchable = low & 0x8 != 0;
    let base = u64::from(low & !0xf);
    match (low >> 1) & 0x3 {
        0b10 => (
            BarKind::Memory64,
            prefetchable,
            base | (u64::from(high) << 32),
        ),
        0b01 => (BarKind::Memory1M, prefetchable, base),
        // 0b00, and the reserved 0b11 read as 32-bit.
        _ => (BarKind::Memory32, prefetchable, base),
    }
}

/// A device's PCI config space, accessed live through its VFIO config region.
///
/// Obtained from [`Device::pci_config`]. It holds a [`Region`] (and so keeps the device
/// open). Every access is a `pread`/`pwrite` on the device fd; vfio-pci checks and virtualises
/// them (the BARs, the MSI/MSI-X capabilities, parts of the PCIe capability), so what a driver
/// reads is what vfio-pci presents, and writes to fields it protects are dropped.
#[derive(Debug)]
pub struct PciConfig {
    region: Region,
}

fn cap_error(region: &Region, e: CapListError) -> Error {
    Error::malformed(
        "the PCI capability list",
        region.object(),
        Malformation::Other(e.to_string()),
    )
}

impl PciConfig {
    /// The config region underneath, for raw access.
    pub fn region(&self) -> &Region {
        &self.region
    }

    /// The size of config space: 256 bytes, or 4096 for PCI Express.
    pub fn size(&self) -> u64 {
        self.region.size()
    }

    /// Reads the byte at `offset`.
    ///
    /// # Errors
    ///
    /// As [`Region::read_u8`].
    pub fn read_u8(&self, offset: u64) -> Result<u8> {
        self.region.read_u8(offset)
    }

    /// Reads the little-endian `u16` at `offset` (2-byte aligned).
    ///
    /// # Errors
    ///
    /// As [`Region::read_u16`].
    pub fn read_u16(&self, offset: u64) -> Result<u16> {
        self.region.read_u16(offset)
    }

    /// Reads the little-endian `u32` at `offset` (4-byte aligned).
    ///
    /// # Errors
    ///
    /// As [`Region::read_u32`].
    pub fn read_u32(&self, offset: u64) -> Result<u32> {
        self.region.read_u32(offset)
    }

    /// Writes the byte at `offset`.
    ///
    /// # Errors
    ///
    /// As [`Region::write_u8`].
    pub fn write_u8(&self, offset: u64, value: u8) -> Result<()> {
        self.region.write_u8(offset, value)
    }

    /// Writes the little-endian `u16` at `offset` (2-byte aligned).
    ///
    /// # Errors
    ///
    /// As [`Region::write_u16`].
    pub fn write_u16(&self, offset: u64, value: u16) -> Result<()> {
        self.region.write_u16(offset, value)
    }

    /// Writes the little-endian `u32` at `offset` (4-byte aligned).
    ///
    /// # Errors
    ///
    /// As [`Region::write_u32`].
    pub fn write_u32(&self, offset: u64, value: u32) -> Result<()> {
        self.region.write_u32(offset, value)
    }

    /// Reads all of config space into a [`ConfigSpace`] snapshot.
    ///
    /// # Errors
    ///
    /// As [`Region::read_bytes`].
    pub fn snapshot(&self) -> Result<ConfigSpace> {
        let len = usize::try_from(self.size()).unwrap_or(4096).min(4096);
        let mut bytes = vec![0u8; len];
        self.region.read_bytes(0, &mut bytes)?;
        Ok(ConfigSpace::from_bytes(bytes))
    }

    /// The vendor id.
    ///
    /// # Errors
    ///
    /// As [`Region::read_u16`].
    pub fn vendor_id(&self) -> Result<u16> {
        self.read_u16(VENDOR_ID)
    }

    /// The device id.
    ///
    /// # Errors
    ///
    /// As [`Region::read_u16`].
    pub fn device_id(&self) -> Result<u16> {
        self.read_u16(DEVICE_ID)
    }

    /// The class code as `(base class, subclass, programming interface)`.
    ///
    /// # Errors
    ///
    /// As [`Region::read_u32`].
    pub fn class(&self) -> Result<(u8, u8, u8)> {
        let [_revision, prog_if, subclass, base] = self.read_u32(REVISION_ID)?.to_le_bytes();
        Ok((base, subclass, prog_if))
    }

    /// The revision id.
    ///
    /// # Errors
    ///
    /// As [`Region::read_u8`].
    pub fn revision(&self) -> Result<u8> {
        self.read_u8(REVISION_ID)
    }

    /// The subsystem vendor and subsystem ids (type 0 header).
    ///
    /// # Errors
    ///
    /// As [`Region::read_u32`].
    pub fn subsystem(&self) -> Result<(u16, u16)> {
        let [v0, v1, d0, d1] = self.read_u32(SUBSYSTEM_VENDOR_ID)?.to_le_bytes();
        Ok((u16::from_le_bytes([v0, v1]), u16::from_le_bytes([d0, d1])))
    }

    /// The interrupt pin: 0 = none, 1..=4 = INTA#..INTD#.
    ///
    /// # Errors
    ///
    /// As [`Region::read_u8`].
    pub fn interrupt_pin(&self) -> Result<u8> {
        self.read_u8(INTERRUPT_PIN)
    }

    /// The command register.
    ///
    /// # Errors
    ///
    /// As [`Region::read_u16`].
    #[doc(alias = "PCI_COMMAND")]
    pub fn command(&self) -> Result<Command> {
        self.read_u16(COMMAND).map(Command::from_bits_retain)
    }

    /// Writes the command register.
    ///
    /// Turning [`Command::MEMORY`] off makes vfio-pci block the BARs: `pread`/`pwrite` fail
    /// with `EIO` until it is on again, and an access through a mapping would raise `SIGBUS`.
    /// So a write that clears it is refused while a [`Region`] of the device has a mapped BAR;
    /// [`PciConfig::memory_decoding_off`] is the guarded way to turn it off.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] (`EBUSY`) for a value without [`Command::MEMORY`] while a
    /// region of the device has a mapped BAR; otherwise as [`Region::write_u16`].
    pub fn set_command(&self, command: Command) -> Result<()> {
        self.write_u16(COMMAND, command.bits())
    }

    /// Reads the command register, applies `f`, writes the result back (if it changed), and
    /// returns it.
    ///
    /// # Errors
    ///
    /// As [`Region::read_u16`] and [`Region::write_u16`].
    pub fn update_command(&self, f: impl FnOnce(Command) -> Command) -> Result<Command> {
        let old = self.command()?;
        let new = f(old);
        if new != old {
            self.set_command(new)?;
        }
        Ok(new)
    }

    /// Turns memory space decoding on (needed before BAR accesses if it is off).
    ///
    /// # Errors
    ///
    /// As [`PciConfig::update_command`].
    pub fn enable_memory_space(&self) -> Result<()> {
        self.update_command(|c| c | Command::MEMORY).map(drop)
    }

    /// Turns bus mastering (DMA, and MSI/MSI-X delivery) on or off.
    ///
    /// # Errors
    ///
    /// As [`PciConfig::update_command`].
    pub fn set_bus_master(&self, enable: bool) -> Result<()> {
        self.update_command(|c| {
            if enable {
                c | Command::BUS_MASTER
            } else {
                c - Command::BUS_MASTER
            }
        })
        .map(drop)
    }

    /// The status register.
    ///
    /// # Errors
    ///
    /// As [`Region::read_u16`].
    #[doc(alias = "PCI_STATUS")]
    pub fn status(&self) -> Result<Status> {
        self.read_u16(STATUS).map(Status::from_bits_retain)
    }

    /// The standard capability list, walked over a fresh snapshot of the first 256 bytes.
    ///
    /// # Errors
    ///
    /// A failed read, or [`Error::Malformed`] for a broken list (bad pointer, cycle).
    pub fn capabilities(&self) -> Result<Vec<Capability>> {
        let snap = self.header_snapshot()?;
        snap.capabilities()
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| cap_error(&self.region, e))
    }

    /// The extended capability list, walked over a fresh snapshot of all of config space.
    ///
    /// # Errors
    ///
    /// A failed read, or [`Error::Malformed`] for a broken list.
    pub fn ext_capabilities(&self) -> Result<Vec<ExtCapability>> {
        let snap = self.snapshot()?;
        snap.ext_capabilities()
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| cap_error(&self.region, e))
    }

    /// The MSI-X capability: vector count, and the BAR and offset of its table and PBA.
    ///
    /// # Errors
    ///
    /// A failed read, or [`Error::Malformed`] for a broken list or MSI-X structure.
    pub fn msix(&self) -> Result<Option<MsixCapability>> {
        self.header_snapshot()?
            .msix()
            .map_err(|e| cap_error(&self.region, e))
    }

    /// The MSI capability.
    ///
    /// # Errors
    ///
    /// A failed read, or [`Error::Malformed`] for a broken list or MSI structure.
    pub fn msi(&self) -> Result<Option<MsiCapability>> {
        self.header_snapshot()?
            .msi()
            .map_err(|e| cap_error(&self.region, e))
    }

    fn header_snapshot(&self) -> Result<ConfigSpace> {
        let len = usize::try_from(self.size()).unwrap_or(256).min(256);
        let mut bytes = vec![0u8; len];
        self.region.read_bytes(0, &mut bytes)?;
        Ok(ConfigSpace::from_bytes(bytes))
    }

    /// BAR `n` decoded: its kind and flags from the register, its size from the VFIO region
    /// info. `None` when the BAR is not implemented (size 0), which includes the upper half of
    /// a 64-bit BAR.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] (`ERANGE`) for `n > 5`; a failed read or region-info query.
    pub fn bar(&self, n: u8) -> Result<Option<Bar>> {
        let device = self.region.device();
        let Some(index) = RegionIndex::bar(u32::from(n)) else {
            return Err(Error::out_of_range(
                "bar",
                device.object(),
                format!("BAR {n} does not exist: a PCI function has BARs 0 to 5"),
            ));
        };
        let info = device.region_info(index)?;
        self.decode(n, &info)
    }

    fn decode(&self, n: u8, info: &RegionInfo) -> Result<Option<Bar>> {
        if info.size == 0 {
            return Ok(None);
        }
        let at = BASE_ADDRESS_0 + 4 * u64::from(n);
        let low = self.read_u32(at)?;
        let is_64 = low & 1 == 0 && (low >> 1) & 0x3 == 0b10;
        let high = if is_64 && n < 5 {
            self.read_u32(at + 4)?
        } else {
            0
        };
        let (kind, prefetchable, address) = decode_bar(low, high);
        Ok(Some(Bar {
            index: n,
            kind,
            prefetchable,
            address,
            size: info.size,
            flags: info.flags,
        }))
    }

    /// Every implemented BAR, in order (upper halves of 64-bit BARs and absent BARs skipped).
    ///
    /// # Errors
    ///
    /// A failed read or region-info query.
    pub fn bars(&self) -> Result<Vec<Bar>> {
        let mut out = Vec::new();
        let mut n = 0u8;
        while n <= 5 {
            let bar = self.bar(n)?;
            let skip_next = bar.is_some_and(|b| b.kind == BarKind::Memory64);
            out.extend(bar);
            n += if skip_next { 2 } else { 1 };
        }
        Ok(out)
    }
}

impl Device {
    /// The device's PCI config space (the `VFIO_PCI_CONFIG_REGION_INDEX` region), accessed with
    /// `pread`/`pwrite`.
    ///
    /// # Errors
    ///
    /// [`Error::NotSupported`] for a device that is not PCI; otherwise as [`Device::region`].
    #[doc(alias = "VFIO_PCI_CONFIG_REGION_INDEX")]
    pub fn pci_config(&self) -> Result<PciConfig> {
        if !self.flags().contains(DeviceFlags::PCI) {
            return Err(Error::NotSupported {
                op: "pci_config",
                object: self.object().into(),
                reason: "the device is not a vfio-pci device (no VFIO_DEVICE_FLAGS_PCI)".into(),
                errno: Errno::ENODEV,
            });
        }
        let region = self.region_with(RegionIndex::CONFIG, MapOptions::new().never_map())?;
        Ok(PciConfig { region })
    }

    /// Reads the whole expansion ROM (the `VFIO_PCI_ROM_REGION_INDEX` region).
    ///
    /// A valid image starts with the bytes `0x55 0xaa`.
    ///
    /// # Errors
    ///
    /// [`Error::NotSupported`] (`ENXIO`) when the device has no ROM (a zero-size region);
    /// [`Error::OutOfMemory`] when its size cannot be allocated;
    /// [`Error::Syscall`] when the kernel cannot read it (vfio-pci fails with `EIO`/`ENOMEM`
    /// when the ROM BAR holds no readable image).
    #[doc(alias = "VFIO_PCI_ROM_REGION_INDEX")]
    pub fn read_rom(&self) -> Result<Vec<u8>> {
        let rom = self.region_with(RegionIndex::ROM, MapOptions::new().never_map())?;
        let len = usize::try_from(rom.size()).map_err(|_| {
            Error::out_of_range("read_rom", rom.object(), "the ROM does not fit in memory")
        })?;
        // The size is the kernel's: an impossible one is an error, not an abort.
        let mut bytes = crate::error::try_vec(len, 0u8, "read_rom", rom.object())?;
        rom.read_bytes(0, &mut bytes)?;
        Ok(bytes)
    }

    /// The MSI-X table and PBA ranges that lie in region `index` (a BAR), from config space;
    /// empty for other regions and for devices without MSI-X.
    pub(crate) fn msix_ranges(&self, index: RegionIndex) -> Result<Vec<std::ops::Range<u64>>> {
        if !self.flags().contains(DeviceFlags::PCI) || index.0 > 5 {
            return Ok(Vec::new());
        }
        let Some(msix) = self.pci_config()?.msix()? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::with_capacity(2);
        if u32::from(msix.table.bar) == index.0 {
            out.push(msix.table_range());
        }
        if u32::from(msix.pba.bar) == index.0 {
            out.push(msix.pba_range());
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bar_registers_decode() {
        assert_eq!(
            decode_bar(0xfebc_0000, 0),
            (BarKind::Memory32, false, 0xfebc_0000)
        );
        assert_eq!(decode_bar(0x0000_c001, 0), (BarKind::Io, false, 0xc000));
        assert_eq!(decode_bar(0x0000_c0a1, 0), (BarKind::Io, false, 0xc0a0));
        assert_eq!(
            decode_bar(0xfe00_000c, 0x0000_0001),
            (BarKind::Memory64, true, 0x1_fe00_0000)
        );
        assert_eq!(
            decode_bar(0xfe00_0004, 0x8000_0000),
            (BarKind::Memory64, false, 0x8000_0000_fe00_0000)
        );
        assert_eq!(
            decode_bar(0x000d_0002, 0xffff),
            (BarKind::Memory1M, false, 0xd_0000)
        );
        assert_eq!(decode_bar(0x0000_0006, 0), (BarKind::Memory32, false, 0));
        assert_eq!(decode_bar(0, 0), (BarKind::Memory32, false, 0));
    }

    #[test]
    fn snapshot_fields_and_bars() {
        let mut b = vec![0u8; 256];
        b[0..4].copy_from_slice(&0x10d3_8086u32.to_le_bytes());
        b[4..6].copy_from_slice(&0x0507u16.to_le_bytes());
        b[6..8].copy_from_slice(&0x0010u16.to_le_bytes());
        b[8..12].copy_from_slice(&0x0200_0000u32.to_le_bytes());
        b[0x10..0x14].copy_from_slice(&0xfeb8_0000u32.to_le_bytes());
        b[0x14..0x18].copy_from_slice(&0xfeb0_000cu32.to_le_bytes());
        b[0x18..0x1c].copy_from_slice(&0x0000_0001u32.to_le_bytes());
        b[0x1c..0x20].copy_from_slice(&0x0000_c041u32.to_le_bytes());
        let c = ConfigSpace::from_bytes(b);
        assert_eq!(c.vendor_id(), Some(0x8086));
        assert_eq!(c.device_id(), Some(0x10d3));
        let cmd = c.command().unwrap();
        assert!(cmd.contains(Command::IO | Command::MEMORY | Command::BUS_MASTER));
        assert!(cmd.contains(Command::INTX_DISABLE));
        assert!(c.status().unwrap().contains(Status::CAP_LIST));
        assert_eq!(c.class(), Some((0x02, 0x00, 0x00)));
        assert_eq!(c.header_type(), Some(0));
        assert_eq!(
            c.bar_register(0),
            Some((BarKind::Memory32, false, 0xfeb8_0000))
        );
        assert_eq!(
            c.bar_register(1),
            Some((BarKind::Memory64, true, 0x1_feb0_0000))
        );
        assert_eq!(c.bar_register(3), Some((BarKind::Io, false, 0xc040)));
        assert_eq!(c.bar_register(6), None);
        // A short dump answers what it covers.
        let short = ConfigSpace::from_bytes(vec![0x86, 0x80, 0xd3]);
        assert_eq!(short.vendor_id(), Some(0x8086));
        assert_eq!(short.device_id(), None);
        assert_eq!(short.u32_at(u64::MAX), None);
        assert!(short.capabilities().next().is_none());
        assert_eq!(short.msix(), Ok(None));
    }

    #[test]
    fn reserved_command_bits_are_kept() {
        let c = Command::from_bits_retain(0x8007);
        assert_eq!(c.bits(), 0x8007);
        assert_eq!((c - Command::BUS_MASTER).bits(), 0x8003);
    }
}
