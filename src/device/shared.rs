//! [`DeviceShared`]: the state every open fd of one kernel device shares in this process.
//!
//! The kernel hands out several fds for one device (`VFIO_GROUP_GET_DEVICE_FD` twice), and they
//! share the device's interrupt and config state. What the crate tracks about that state lives
//! here, one instance per device and group, reached from each [`Device`](super::Device) opened
//! for it: no process-wide registry. The group holds the [`SharedRegistry`] (a group fd is
//! exclusive to one process and one `Group` handle, so its devices are found there), and each
//! device's entry lives as long as some `Device` of it does.

use std::sync::{Arc, Mutex, PoisonError, Weak};

use crate::irq::claim::IrqClaims;
use crate::mmio::decoding::Decoding;

/// What every open fd of one kernel device shares.
#[derive(Debug, Default)]
pub(crate) struct DeviceShared {
    /// The IRQ indexes enabled through an `Interrupts` handle.
    pub(crate) irq_claims: IrqClaims,
    /// Memory decoding and the mapped BAR regions that need it.
    pub(crate) decoding: Decoding,
}

/// The [`DeviceShared`] of each device of a group that is open, by device name.
#[derive(Debug, Default)]
pub(crate) struct SharedRegistry(Mutex<Vec<(String, Weak<DeviceShared>)>>);

impl SharedRegistry {
    /// The shared state of the device `name` (as opened: a trailing ` vf_token=...` is not part
    /// of the key), made when no open fd of it has one.
    pub(crate) fn for_device(&self, name: &str) -> Arc<DeviceShared> {
        let key = name.split_whitespace().next().unwrap_or_default();
        let mut entries = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        entries.retain(|(_, weak)| weak.strong_count() > 0);
        if let Some(shared) = entries
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, weak)| weak.upgrade())
        {
            return shared;
        }
        let shared = Arc::new(DeviceShared::default());
        entries.push((key.to_string(), Arc::downgrade(&shared)));
        shared
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_state_per_device_while_any_fd_is_open() {
        let registry = SharedRegistry::default();
        let a = registry.for_device("0000:00:03.0");
        let a2 = registry.for_device("0000:00:03.0 vf_token=2ab74924-c335-45f4-9b16-8569e5cb10ac");
        let b = registry.for_device("0000:00:04.0");
        assert!(Arc::ptr_eq(&a, &a2));
        assert!(!Arc::ptr_eq(&a, &b));
        drop((a, a2));
        // Every fd of it closed: a fresh state next time, and the old entry is pruned.
        let a3 = registry.for_device("0000:00:03.0");
        assert_eq!(Arc::strong_count(&a3), 1);
        assert_eq!(registry.0.lock().unwrap().len(), 2);
    }
}
