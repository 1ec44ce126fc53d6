//! PCI capability lists, walked over a config-space snapshot.
//!
//! Both lists are linked lists inside device-provided bytes, so the walkers trust nothing:
//! - the standard list starts at the pointer at `0x34` (`0x14` for a CardBus bridge) when the
//!   status register's capability bit is set; each pointer is masked to a dword (`& 0xfc`) and
//!   must point at or past `0x40`;
//! - the extended list (PCI Express, config space past 256 bytes) starts at `0x100`; a header of
//!   0 means it is empty; each next pointer is masked (`& 0xffc`) and must point at or past
//!   `0x100`;
//! - every offset is range-checked against the snapshot, an offset seen twice is a cycle, and
//!   the walks stop after 48 (standard) and 960 (extended) entries whatever happens.
//!
//! The iterators yield `Result`s: after the first error they are exhausted
//! ([`FusedIterator`]). [`Capability`] and [`ExtCapability`] give the id and where the
//! capability is; [`MsixCapability`] and [`MsiCapability`] decode the two interrupt
//! capabilities.
//!
//! # References
//!
//! - PCI Local Bus Specification 3.0, §6.7 (capabilities list), §6.8 (MSI, MSI-X)
//! - PCI Express Base Specification, §7.6 (extended capabilities)
//! - Linux `include/uapi/linux/pci_regs.h`, `drivers/pci/pci.c` (`__pci_find_next_cap_ttl`,
//!   `pci_find_next_ext_capability`)

use std::fmt;
use std::iter::FusedIterator;
use std::ops::Range;

/// Offset of the status register.
const STATUS: usize = 0x06;
/// Status bit: the capability list exists.
const STATUS_CAP_LIST: u16 = 1 << 4;
/// Offset of the header type register.
const HEADER_TYPE: usize = 0x0e;
/// Offset of the capability pointer (types 0 and 1).
const CAPABILITY_LIST: usize = 0x34;
/// Offset of the capability pointer of a CardBus bridge (type 2).
const CB_CAPABILITY_LIST: usize = 0x14;
/// The first offset past the standard header, where capabilities may live.
const STD_HEADER_END: usize = 0x40;
/// The size of conventional config space; extended capabilities start here.
const CFG_SPACE_SIZE: usize = 0x100;
/// The size of PCI Express config space.
const CFG_SPACE_EXP_SIZE: usize = 0x1000;
/// At most this many standard capabilities fit: (256 - 64) / 4.
const MAX_CAPS: usize = 48;
/// At most this many extended capabilities fit: (4096 - 256) / 4.
const MAX_EXT_CAPS: usize = 960;

fn u8_at(b: &[u8], off: usize) -> Option<u8> {
    b.get(off).copied()
}

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(off..off.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(off..off.checked_add(4)?)?.try_into().ok()?,
    ))
}

macro_rules! id_consts {
    ($ty:ident: $($(#[$m:meta])* $name:ident = $v:expr, $c:literal;)*) => {
        impl $ty {
            $(
                $(#[$m])*
                #[doc = concat!("`", $c, "`")]
                #[doc(alias = $c)]
                pub const $name: $ty = $ty($v);
            )*

            /// The constant's name without the `PCI_CAP_ID_`/`PCI_EXT_CAP_ID_` prefix, for ids
            /// this crate knows.
            pub fn name(self) -> Option<&'static str> {
                match self {
                    $($ty::$name => Some(stringify!($name)),)*
                    _ => None,
                }
            }
        }
    };
}

/// A standard capability id (`PCI_CAP_ID_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CapabilityId(pub u8);

id_consts!(CapabilityId:
    /// Power management.
    PM = 0x01, "PCI_CAP_ID_PM";
    /// AGP.
    AGP = 0x02, "PCI_CAP_ID_AGP";
    /// Vital product data.
    VPD = 0x03, "PCI_CAP_ID_VPD";
    /// Slot identification.
    SLOTID = 0x04, "PCI_CAP_ID_SLOTID";
    /// Message signalled interrupts.
    MSI = 0x05, "PCI_CAP_ID_MSI";
    /// CompactPCI hot swap.
    CHSWP = 0x06, "PCI_CAP_ID_CHSWP";
    /// PCI-X.
    PCIX = 0x07, "PCI_CAP_ID_PCIX";
    /// HyperTransport.
    HT = 0x08, "PCI_CAP_ID_HT";
    /// Vendor specific.
    VNDR = 0x09, "PCI_CAP_ID_VNDR";
    /// Debug port.
    DBG = 0x0a, "PCI_CAP_ID_DBG";
    /// CompactPCI central resource control.
    CCRC = 0x0b, "PCI_CAP_ID_CCRC";
    /// PCI standard hot-plug controller.
    SHPC = 0x0c, "PCI_CAP_ID_SHPC";
    /// Bridge subsystem vendor/device id.
    SSVID = 0x0d, "PCI_CAP_ID_SSVID";
    /// AGP target PCI-PCI bridge.
    AGP3 = 0x0e, "PCI_CAP_ID_AGP3";
    /// Secure device.
    SECDEV = 0x0f, "PCI_CAP_ID_SECDEV";
    /// PCI Express.
    EXP = 0x10, "PCI_CAP_ID_EXP";
    /// MSI-X.
    MSIX = 0x11, "PCI_CAP_ID_MSIX";
    /// SATA data/index configuration.
    SATA = 0x12, "PCI_CAP_ID_SATA";
    /// PCI advanced features.
    AF = 0x13, "PCI_CAP_ID_AF";
    /// PCI enhanced allocation.
    EA = 0x14, "PCI_CAP_ID_EA";
);

impl fmt::Display for CapabilityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{n} ({:#04x})", self.0),
            None => write!(f, "{:#04x}", self.0),
        }
    }
}

/// An extended (PCI Express) capability id (`PCI_EXT_CAP_ID_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ExtCapabilityId(pub u16);

id_consts!(ExtCapabilityId:
    /// The null capability: a list entry with no function (vfio-pci writes one at `0x100` when
    /// it hides the first extended capability).
    NULL = 0x00, "PCI_EXT_CAP_ID_NULL";
    /// Advanced error reporting.
    ERR = 0x01, "PCI_EXT_CAP_ID_ERR";
    /// Virtual channel.
    VC = 0x02, "PCI_EXT_CAP_ID_VC";
    /// Device serial number.
    DSN = 0x03, "PCI_EXT_CAP_ID_DSN";
    /// Power budgeting.
    PWR = 0x04, "PCI_EXT_CAP_ID_PWR";
    /// Root complex link declaration.
    RCLD = 0x05, "PCI_EXT_CAP_ID_RCLD";
    /// Root complex internal link control.
    RCILC = 0x06, "PCI_EXT_CAP_ID_RCILC";
    /// Root complex event collector endpoint association.
    RCEC = 0x07, "PCI_EXT_CAP_ID_RCEC";
    /// Multi-function virtual channel.
    MFVC = 0x08, "PCI_EXT_CAP_ID_MFVC";
    /// Virtual channel (with MFVC present).
    VC9 = 0x09, "PCI_EXT_CAP_ID_VC9";
    /// Root complex register block.
    RCRB = 0x0a, "PCI_EXT_CAP_ID_RCRB";
    /// Vendor specific.
    VNDR = 0x0b, "PCI_EXT_CAP_ID_VNDR";
    /// Access control services.
    ACS = 0x0d, "PCI_EXT_CAP_ID_ACS";
    /// Alternate routing id.
    ARI = 0x0e, "PCI_EXT_CAP_ID_ARI";
    /// Address translation services.
    ATS = 0x0f, "PCI_EXT_CAP_ID_ATS";
    /// Single root I/O virtualisation.
    SRIOV = 0x10, "PCI_EXT_CAP_ID_SRIOV";
    /// Multi root I/O virtualisation.
    MRIOV = 0x11, "PCI_EXT_CAP_ID_MRIOV";
    /// Multicast.
    MCAST = 0x12, "PCI_EXT_CAP_ID_MCAST";
    /// Page request interface.
    PRI = 0x13, "PCI_EXT_CAP_ID_PRI";
    /// Resizable BAR.
    REBAR = 0x15, "PCI_EXT_CAP_ID_REBAR";
    /// Dynamic power allocation.
    DPA = 0x16, "PCI_EXT_CAP_ID_DPA";
    /// TPH requester.
    TPH = 0x17, "PCI_EXT_CAP_ID_TPH";
    /// Latency tolerance reporting.
    LTR = 0x18, "PCI_EXT_CAP_ID_LTR";
    /// Secondary PCI Express.
    SECPCI = 0x19, "PCI_EXT_CAP_ID_SECPCI";
    /// Protocol multiplexing.
    PMUX = 0x1a, "PCI_EXT_CAP_ID_PMUX";
    /// Process address space id.
    PASID = 0x1b, "PCI_EXT_CAP_ID_PASID";
    /// Downstream port containment.
    DPC = 0x1d, "PCI_EXT_CAP_ID_DPC";
    /// L1 PM substates.
    L1SS = 0x1e, "PCI_EXT_CAP_ID_L1SS";
    /// Precision time measurement.
    PTM = 0x1f, "PCI_EXT_CAP_ID_PTM";
    /// Designated vendor-specific.
    DVSEC = 0x23, "PCI_EXT_CAP_ID_DVSEC";
    /// Data link feature.
    DLF = 0x25, "PCI_EXT_CAP_ID_DLF";
    /// Physical layer 16.0 GT/s.
    PL_16GT = 0x26, "PCI_EXT_CAP_ID_PL_16GT";
    /// Data object exchange.
    DOE = 0x2e, "PCI_EXT_CAP_ID_DOE";
);

impl fmt::Display for ExtCapabilityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{n} ({:#06x})", self.0),
            None => write!(f, "{:#06x}", self.0),
        }
    }
}

/// An entry of the standard capability list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Capability {
    /// Its id.
    pub id: CapabilityId,
    /// Where it starts in config space (its id byte; the next pointer follows).
    pub offset: u8,
}

/// An entry of the extended capability list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExtCapability {
    /// Its id.
    pub id: ExtCapabilityId,
    /// Its version (4 bits).
    pub version: u8,
    /// Where its header starts in config space (`0x100..0x1000`).
    pub offset: u16,
}

/// Why a capability list walk stopped early.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CapListError {
    /// A pointer points into the header (below `0x40`), or an extended pointer below `0x100`.
    #[error("capability pointer at {from:#x} points to {to:#x}, inside the header")]
    BadPointer {
        /// Where the pointer is.
        from: usize,
        /// Where it points (masked).
        to: usize,
    },
    /// A pointer points past the end of the config space read.
    #[error("capability at {at:#x} is past the {len:#x} bytes of config space")]
    OutOfRange {
        /// The capability's offset.
        at: usize,
        /// The config space's length.
        len: usize,
    },
    /// The list comes back to an entry already visited.
    #[error("capability list cycles back to {at:#x}")]
    Cycle {
        /// The offset visited twice.
        at: usize,
    },
    /// More entries than fit in config space.
    #[error("capability list has more than {limit} entries")]
    TooLong {
        /// The entry limit.
        limit: usize,
    },
    /// An entry reads as all ones: the device did not answer (surprise removal, reset, or a
    /// function that is not there).
    #[error("capability at {at:#x} reads as all ones: the device is not answering")]
    AllOnes {
        /// The offset.
        at: usize,
    },
    /// A capability is shorter than its structure in the bytes read.
    #[error("capability {id:#x} at {at:#x} is truncated")]
    Truncated {
        /// The capability id.
        id: u16,
        /// Its offset.
        at: usize,
    },
    /// A field of a capability holds a reserved value.
    #[error("capability {id:#x} at {at:#x}: {what}")]
    Reserved {
        /// The capability id.
        id: u16,
        /// Its offset.
        at: usize,
        /// What was wrong.
        what: &'static str,
    },
}

/// A visited-offset set for dword-aligned offsets below 4096.
struct Visited([u64; CFG_SPACE_EXP_SIZE / 4 / 64]);

impl Visited {
    fn new() -> Self {
        Visited([0; CFG_SPACE_EXP_SIZE / 4 / 64])
    }

    /// Marks `off`; `false` when it was already marked.
    fn insert(&mut self, off: usize) -> bool {
        let bit = off / 4;
        let (word, mask) = (bit / 64, 1u64 << (bit % 64));
        match self.0.get_mut(word) {
            Some(w) if *w & mask == 0 => {
                *w |= mask;
                true
            }
            _ => false,
        }
    }
}

/// The standard capability list of a config-space snapshot: a bounded, fused iterator.
pub struct Capabilities<'a> {
    bytes: &'a [u8],
    /// The offset of the pointer to follow next, `None` when done.
    pointer_at: Option<usize>,
    visited: Visited,
    count: usize,
}

impl fmt::Debug for Capabilities<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Capabilities")
            .field("pointer_at", &self.pointer_at)
            .field("count", &self.count)
            .finish()
    }
}

impl<'a> Capabilities<'a> {
    /// Walks the list in `config` (at least the 64-byte header; a short snapshot ends the walk
    /// with [`CapListError::OutOfRange`] when a pointer leaves it).
    pub fn new(config: &'a [u8]) -> Self {
        let has_list = u16_at(config, STATUS).is_some_and(|s| s & STATUS_CAP_LIST != 0);
        let pointer_at = match u8_at(config, HEADER_TYPE).map(|h| h & 0x7f) {
            _ if !has_list => None,
            Some(2) => Some(CB_CAPABILITY_LIST),
            Some(_) => Some(CAPABILITY_LIST),
            None => None,
        };
        Capabilities {
            bytes: config,
            pointer_at,
            visited: Visited::new(),
            count: 0,
        }
    }

    fn step(&mut self, from: usize) -> Result<Option<Capability>, CapListError> {
        let len = self.bytes.len();
        let to = usize::from(
            u8_at(self.bytes, from).ok_or(CapListError::OutOfRange { at: from, len })? & 0xfc,
        );
        if to == 0 {
            return Ok(None);
        }
        if to < STD_HEADER_END {
            return Err(CapListError::BadPointer { from, to });
        }
        if self.count >= MAX_CAPS {
            return Err(CapListError::TooLong { limit: MAX_CAPS });
        }
        if !self.visited.insert(to) {
            return Err(CapListError::Cycle { at: to });
        }
        let header = u16_at(self.bytes, to).ok_or(CapListError::OutOfRange { at: to, len })?;
        if header == 0xffff {
            return Err(CapListError::AllOnes { at: to });
        }
        self.count += 1;
        self.pointer_at = Some(to + 1);
        // The id is the header's low byte; `to` came from a one-byte pointer.
        let [id, _next] = header.to_le_bytes();
        let offset = u8::try_from(to).map_err(|_| CapListError::OutOfRange { at: to, len })?;
        Ok(Some(Capability {
            id: CapabilityId(id),
            offset,
        }))
    }
}

impl Iterator for Capabilities<'_> {
    type Item = Result<Capability, CapListError>;

    fn next(&mut self) -> Option<Self::Item> {
        let from = self.pointer_at.take()?;
        self.step(from).transpose()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self.pointer_at {
            None => (0, Some(0)),
            Some(_) => (0, Some(MAX_CAPS - self.count.min(MAX_CAPS) + 1)),
        }
    }
}

impl FusedIterator for Capabilities<'_> {}

/// The extended capability list of a config-space snapshot: a bounded, fused iterator.
pub struct ExtCapabilities<'a> {
    bytes: &'a [u8],
    /// The offset of the next header, `None` when done.
    at: Option<usize>,
    visited: Visited,
    count: usize,
}

impl fmt::Debug for ExtCapabilities<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExtCapabilities")
            .field("at", &self.at)
            .field("count", &self.count)
            .finish()
    }
}

impl<'a> ExtCapabilities<'a> {
    /// Walks the extended list in `config`; empty when `config` is conventional (256 bytes or
    /// less) or its header at `0x100` is zero.
    pub fn new(config: &'a [u8]) -> Self {
        let at = match u32_at(config, CFG_SPACE_SIZE) {
            Some(0) | None => None,
            Some(_) => Some(CFG_SPACE_SIZE),
        };
        ExtCapabilities {
            bytes: config,
            at,
            visited: Visited::new(),
            count: 0,
        }
    }

    fn step(&mut self, at: usize) -> Result<ExtCapability, CapListError> {
        let len = self.bytes.len();
        if self.count >= MAX_EXT_CAPS {
            return Err(CapListError::TooLong {
                limit: MAX_EXT_CAPS,
            });
        }
        if !self.visited.insert(at) {
            return Err(CapListError::Cycle { at });
        }
        let header = u32_at(self.bytes, at).ok_or(CapListError::OutOfRange { at, len })?;
        if header == u32::MAX {
            return Err(CapListError::AllOnes { at });
        }
        let next = ((header >> 20) & 0xffc) as usize;
        match next {
            0 => {}
            n if n < CFG_SPACE_SIZE => return Err(CapListError::BadPointer { from: at, to: n }),
            n => self.at = Some(n),
        }
        self.count += 1;
        // Bits 0..16 are the id, 16..20 the version; `at` is below 4096 (a 12-bit pointer).
        let [id0, id1, version, _next] = header.to_le_bytes();
        let offset = u16::try_from(at).map_err(|_| CapListError::OutOfRange { at, len })?;
        Ok(ExtCapability {
            id: ExtCapabilityId(u16::from_le_bytes([id0, id1])),
            version: version & 0xf,
            offset,
        })
    }
}

impl Iterator for ExtCapabilities<'_> {
    type Item = Result<ExtCapability, CapListError>;

    fn next(&mut self) -> Option<Self::Item> {
        let at = self.at.take()?;
        Some(self.step(at))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self.at {
            None => (0, Some(0)),
            Some(_) => (1, Some(MAX_EXT_CAPS - self.count.min(MAX_EXT_CAPS) + 1)),
        }
    }
}

impl FusedIterator for ExtCapabilities<'_> {}

/// Where a structure lives in a BAR: the BAR Indicator Register (BIR) and the offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BarLocation {
    /// The BAR (0..=5).
    pub bar: u8,
    /// The byte offset inside the BAR (8-byte aligned).
    pub offset: u32,
}

impl BarLocation {
    fn decode(word: u32, id: u16, at: usize) -> Result<Self, CapListError> {
        let bar = (word & 0x7) as u8;
        if bar > 5 {
            return Err(CapListError::Reserved {
                id,
                at,
                what: "BAR indicator 6 or 7 is reserved",
            });
        }
        Ok(BarLocation {
            bar,
            offset: word & !0x7,
        })
    }
}

/// The MSI-X capability: how many vectors, and where the table and the pending-bit array are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MsixCapability {
    /// The capability's offset in config space.
    pub offset: u8,
    /// The number of table entries (vectors), 1..=2048.
    pub table_size: u16,
    /// MSI-X Enable (message control bit 15).
    pub enabled: bool,
    /// Function Mask (message control bit 14).
    pub function_mask: bool,
    /// Where the vector table is.
    pub table: BarLocation,
    /// Where the pending bit array is.
    pub pba: BarLocation,
}

impl MsixCapability {
    /// Decodes the MSI-X capability at `offset` of `config`.
    ///
    /// # Errors
    ///
    /// [`CapListError::Truncated`] when the 12 bytes of the structure are not all in `config`,
    /// [`CapListError::Reserved`] for a reserved BAR indicator.
    pub fn decode(config: &[u8], offset: u8) -> Result<Self, CapListError> {
        let at = usize::from(offset);
        let id = u16::from(CapabilityId::MSIX.0);
        let truncated = CapListError::Truncated { id, at };
        let control = u16_at(config, at + 2).ok_or(truncated.clone())?;
        let table = u32_at(config, at + 4).ok_or(truncated.clone())?;
        let pba = u32_at(config, at + 8).ok_or(truncated)?;
        Ok(MsixCapability {
            offset,
            table_size: (control & 0x7ff) + 1,
            enabled: control & (1 << 15) != 0,
            function_mask: control & (1 << 14) != 0,
            table: BarLocation::decode(table, id, at)?,
            pba: BarLocation::decode(pba, id, at)?,
        })
    }

    /// The table's byte range inside its BAR (16 bytes per vector).
    pub fn table_range(&self) -> Range<u64> {
        let start = u64::from(self.table.offset);
        start..start + 16 * u64::from(self.table_size)
    }

    /// The pending bit array's byte range inside its BAR (one bit per vector, in 64-bit words).
    pub fn pba_range(&self) -> Range<u64> {
        let start = u64::from(self.pba.offset);
        start..start + 8 * u64::from(self.table_size).div_ceil(64)
    }
}

/// The MSI capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MsiCapability {
    /// The capability's offset in config space.
    pub offset: u8,
    /// MSI Enable (message control bit 0).
    pub enabled: bool,
    /// How many vectors the function can request (1, 2, 4, ..., 32).
    pub vectors_capable: u8,
    /// How many vectors are enabled (1, 2, 4, ..., 32).
    pub vectors_enabled: u8,
    /// Whether the message address is 64-bit.
    pub is_64bit: bool,
    /// Whether the function supports per-vector masking.
    pub per_vector_masking: bool,
}

impl MsiCapability {
    /// Decodes the MSI capability at `offset` of `config`.
    ///
    /// # Errors
    ///
    /// [`CapListError::Truncated`] when the message control register is not in `config`,
    /// [`CapListError::Reserved`] for a reserved multiple-message encoding.
    pub fn decode(config: &[u8], offset: u8) -> Result<Self, CapListError> {
        let at = usize::from(offset);
        let id = u16::from(CapabilityId::MSI.0);
        let control = u16_at(config, at + 2).ok_or(CapListError::Truncated { id, at })?;
        let mmc = (control >> 1) & 0x7;
        let mme = (control >> 4) & 0x7;
        if mmc > 5 || mme > 5 {
            return Err(CapListError::Reserved {
                id,
                at,
                what: "multiple message encodings 6 and 7 are reserved",
            });
        }
        Ok(MsiCapability {
            offset,
            enabled: control & 1 != 0,
            vectors_capable: 1 << mmc,
            vectors_enabled: 1 << mme,
            is_64bit: control & (1 << 7) != 0,
            per_vector_masking: control & (1 << 8) != 0,
        })
    }
}

#[cfg(test)]
#[path = "caps_tests.rs"]
mod tests;
