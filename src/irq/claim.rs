//! The claim a live [`Interrupts`](super::Interrupts) handle holds on its IRQ index.
//!
//! The claims of a device live in its [`DeviceShared`] state, which every open fd of that
//! device shares (the kernel's interrupt state is per device, not per fd). A claim is released
//! when the handle holding it drops; nothing is process-wide, so a claim can never outlive the
//! device, and two devices never collide.

use std::sync::{Arc, Mutex, PoisonError};

use super::interrupts::Target;
use crate::device::irq::IrqIndex;
use crate::device::shared::DeviceShared;
use crate::error::{Errno, Error, Result};

/// The IRQ indexes of one device enabled through an `Interrupts` handle.
#[derive(Debug, Default)]
pub(crate) struct IrqClaims(Mutex<Vec<u32>>);

/// A claim on one index of one device; released on drop.
#[derive(Debug)]
pub(crate) struct Claim {
    shared: Arc<DeviceShared>,
    index: u32,
}

impl Claim {
    pub(crate) fn take(target: &dyn Target, index: IrqIndex) -> Result<Claim> {
        let shared = target.shared();
        let mut claims = shared
            .irq_claims
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for &i in claims.iter() {
            let reason = if i == index.0 {
                "the index is already enabled by another Interrupts handle of this device; use \
                 that handle (dropping it disables the index)"
                    .to_string()
            } else if target.is_pci() && i <= 2 && index.0 <= 2 {
                format!(
                    "vfio-pci enables one of INTx, MSI and MSI-X at a time, and {} is enabled by \
                     another Interrupts handle; drop it first",
                    IrqIndex(i).pci_name().unwrap_or("another index")
                )
            } else {
                continue;
            };
            return Err(Error::InvalidArgument {
                op: "enable_irqs",
                object: target.object(index).into(),
                reason: reason.into(),
                errno: Errno::EBUSY,
            });
        }
        claims.push(index.0);
        drop(claims);
        Ok(Claim {
            shared,
            index: index.0,
        })
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut claims = self
            .shared
            .irq_claims
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(pos) = claims.iter().position(|&i| i == self.index) {
            claims.swap_remove(pos);
        }
    }
}
