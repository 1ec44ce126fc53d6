//! The claim a live [`Interrupts`](super::Interrupts) handle holds on its IRQ index.

use std::sync::{Mutex, PoisonError};

use super::interrupts::Target;
use crate::device::irq::IrqIndex;
use crate::error::{Errno, Error, Result};

/// The IRQ indexes enabled through a handle in this process, by device.
static CLAIMS: Mutex<Vec<(String, u32)>> = Mutex::new(Vec::new());

/// A registered claim on one index of one device; released on drop.
#[derive(Debug)]
pub(crate) struct Claim {
    key: String,
    index: u32,
}

impl Claim {
    pub(crate) fn take(target: &dyn Target, index: IrqIndex) -> Result<Claim> {
        let key = target.claim_key();
        let mut claims = CLAIMS.lock().unwrap_or_else(PoisonError::into_inner);
        for &(ref k, i) in claims.iter() {
            if *k != key {
                continue;
            }
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
                object: target.object(index),
                reason,
                errno: Errno::EBUSY,
            });
        }
        claims.push((key.clone(), index.0));
        Ok(Claim {
            key,
            index: index.0,
        })
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut claims = CLAIMS.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(pos) = claims
            .iter()
            .position(|(k, i)| *k == self.key && *i == self.index)
        {
            claims.swap_remove(pos);
        }
    }
}
