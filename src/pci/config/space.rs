//! [`ConfigSpace`]: a snapshot of config space, decoded without further system calls.

use std::fmt;

use super::{
    decode_bar, BarKind, Command, Status, BASE_ADDRESS_0, CLASS_PROG, COMMAND, DEVICE_ID,
    HEADER_TYPE, STATUS, VENDOR_ID,
};
use crate::pci::caps::{
    CapListError, Capabilities, Capability, CapabilityId, ExtCapabilities, ExtCapability,
    ExtCapabilityId, MsiCapability, MsixCapability,
};

/// A snapshot of config space (or a captured dump of one), with the header fields and the
/// capability lists decoded from it.
#[derive(Clone, PartialEq, Eq)]
pub struct ConfigSpace {
    bytes: Vec<u8>,
}

impl fmt::Debug for ConfigSpace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigSpace")
            .field("len", &self.bytes.len())
            .field("vendor_id", &self.u16_at(VENDOR_ID))
            .field("device_id", &self.u16_at(DEVICE_ID))
            .finish()
    }
}

impl ConfigSpace {
    /// Wraps bytes read elsewhere (for example sysfs `config`, or a dump in a test). Fields the
    /// bytes do not cover read as `None`.
    pub fn from_bytes(bytes: impl Into<Vec<u8>>) -> Self {
        ConfigSpace {
            bytes: bytes.into(),
        }
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The byte at `offset`.
    pub fn u8_at(&self, offset: u64) -> Option<u8> {
        self.bytes.get(usize::try_from(offset).ok()?).copied()
    }

    /// The little-endian `u16` at `offset`.
    pub fn u16_at(&self, offset: u64) -> Option<u16> {
        let o = usize::try_from(offset).ok()?;
        Some(u16::from_le_bytes(
            self.bytes.get(o..o.checked_add(2)?)?.try_into().ok()?,
        ))
    }

    /// The little-endian `u32` at `offset`.
    pub fn u32_at(&self, offset: u64) -> Option<u32> {
        let o = usize::try_from(offset).ok()?;
        Some(u32::from_le_bytes(
            self.bytes.get(o..o.checked_add(4)?)?.try_into().ok()?,
        ))
    }

    /// The vendor id.
    pub fn vendor_id(&self) -> Option<u16> {
        self.u16_at(VENDOR_ID)
    }

    /// The device id.
    pub fn device_id(&self) -> Option<u16> {
        self.u16_at(DEVICE_ID)
    }

    /// The command register.
    pub fn command(&self) -> Option<Command> {
        self.u16_at(COMMAND).map(Command::from_bits_retain)
    }

    /// The status register.
    pub fn status(&self) -> Option<Status> {
        self.u16_at(STATUS).map(Status::from_bits_retain)
    }

    /// The class code as `(base class, subclass, programming interface)`.
    pub fn class(&self) -> Option<(u8, u8, u8)> {
        Some((
            self.u8_at(CLASS_PROG + 2)?,
            self.u8_at(CLASS_PROG + 1)?,
            self.u8_at(CLASS_PROG)?,
        ))
    }

    /// The header type without the multi-function bit (0 = endpoint, 1 = PCI bridge, 2 =
    /// CardBus bridge).
    pub fn header_type(&self) -> Option<u8> {
        self.u8_at(HEADER_TYPE).map(|h| h & 0x7f)
    }

    /// The standard capability list.
    pub fn capabilities(&self) -> Capabilities<'_> {
        Capabilities::new(&self.bytes)
    }

    /// The extended (PCI Express) capability list; empty for 256-byte config spaces.
    pub fn ext_capabilities(&self) -> ExtCapabilities<'_> {
        ExtCapabilities::new(&self.bytes)
    }

    /// The first standard capability with `id`.
    ///
    /// # Errors
    ///
    /// The list's [`CapListError`] when it is broken before `id` is found.
    pub fn find_capability(
        &self,
        id: CapabilityId,
    ) -> std::result::Result<Option<Capability>, CapListError> {
        for cap in self.capabilities() {
            let cap = cap?;
            if cap.id == id {
                return Ok(Some(cap));
            }
        }
        Ok(None)
    }

    /// The first extended capability with `id`.
    ///
    /// # Errors
    ///
    /// The list's [`CapListError`] when it is broken before `id` is found.
    pub fn find_ext_capability(
        &self,
        id: ExtCapabilityId,
    ) -> std::result::Result<Option<ExtCapability>, CapListError> {
        for cap in self.ext_capabilities() {
            let cap = cap?;
            if cap.id == id {
                return Ok(Some(cap));
            }
        }
        Ok(None)
    }

    /// The MSI-X capability, decoded, if the function has one.
    ///
    /// # Errors
    ///
    /// A broken capability list or MSI-X structure.
    pub fn msix(&self) -> std::result::Result<Option<MsixCapability>, CapListError> {
        match self.find_capability(CapabilityId::MSIX)? {
            Some(c) => MsixCapability::decode(&self.bytes, c.offset).map(Some),
            None => Ok(None),
        }
    }

    /// The MSI capability, decoded, if the function has one.
    ///
    /// # Errors
    ///
    /// A broken capability list or MSI structure.
    pub fn msi(&self) -> std::result::Result<Option<MsiCapability>, CapListError> {
        match self.find_capability(CapabilityId::MSI)? {
            Some(c) => MsiCapability::decode(&self.bytes, c.offset).map(Some),
            None => Ok(None),
        }
    }

    /// BAR `n`'s kind, prefetchability and address bits, from the registers (`None` for
    /// `n > 5` or when the registers are not in the snapshot). For the upper half of a 64-bit
    /// BAR this decodes garbage: use [`PciConfig::bar`](super::PciConfig::bar), which knows.
    pub fn bar_register(&self, n: u8) -> Option<(BarKind, bool, u64)> {
        if n > 5 {
            return None;
        }
        let at = BASE_ADDRESS_0 + 4 * u64::from(n);
        let low = self.u32_at(at)?;
        let high = if n < 5 {
            self.u32_at(at + 4).unwrap_or(0)
        } else {
            0
        };
        Some(decode_bar(low, high))
    }
}
