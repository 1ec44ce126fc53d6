//! PCI on the host: addresses and sysfs.
