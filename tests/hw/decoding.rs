//! Hardware tests of memory decoding and mapped BARs: vfio-pci zaps a device's BAR mappings
//! when the command register's memory bit is cleared and answers accesses through them with
//! SIGBUS, so the crate refuses to clear it under a mapped BAR (`uvfio::mmio`, "Memory
//! decoding"), and likewise refuses low-power entry under one. The dangerous sequences run in a forked child, so that a SIGBUS fails the test
//! instead of killing the test binary.

use std::panic::AssertUnwindSafe;

use uvfio::device::RegionIndex;
use uvfio::mmio::MapOptions;
use uvfio::pci::config::{BusMaster, Command, MemoryDecodingOff, COMMAND};
use uvfio::{Device, Errno};

use crate::common::device;
use crate::regions::open;

/// A second fd of `d`'s device, from its group. A device opened through its cdev has none: the
/// kernel lets the cdev path open a device once (`vfio_df_open`: "The device cdev path doesn't
/// have a secure way for it"), so the second bind fails with `EINVAL`, which is checked here.
fn second_fd(d: &Device) -> Option<Device> {
    if let Some(group) = d.group() {
        let d2 = group.open_device(d.name()).unwrap();
        assert!(!d2.same_as(d));
        return Some(d2);
    }
    let (iommufd, _) = d.iommufd().expect("a cdev device is bound to an iommufd");
    let err = iommufd
        .open_pci_device(&d.name().parse().unwrap())
        .unwrap_err();
    assert_eq!(err.errno(), Errno::EINVAL, "a second cdev open: {err}");
    None
}

/// The low byte of edu's identification register (BAR0 offset 0).
const EDU_ID: u32 = 0xed;

/// Runs `f` in a forked child; `Ok(exit code)` when it exits, `Err(signal)` when a signal
/// ends it. `f` returns the exit code (a panic is 101).
pub(crate) fn in_child(f: impl FnOnce() -> i32) -> Result<i32, i32> {
    // SAFETY: the child only runs `f` (this test's own accesses, no lock another thread can
    // hold: glibc's malloc is fork-safe) and leaves with `_exit`, running no destructor and
    // no atexit handler of the parent's state.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        let code = std::panic::catch_unwind(AssertUnwindSafe(f)).unwrap_or(101);
        // SAFETY: ends the child without unwinding into the test harness.
        unsafe { libc::_exit(code) }
    }
    let mut status = 0;
    // SAFETY: waits for the child made above; `status` is a valid out pointer.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(r, pid, "waitpid: {}", std::io::Error::last_os_error());
    if libc::WIFSIGNALED(status) {
        Err(libc::WTERMSIG(status))
    } else {
        Ok(libc::WEXITSTATUS(status))
    }
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn clearing_memory_decoding_under_a_mapped_bar_is_a_typed_error_not_sigbus() {
    let d = open(&device("UVFIO_TEST_EDU"));
    let bar0 = d.region(RegionIndex::BAR0).unwrap();
    assert!(bar0.is_mapped(0), "{bar0:?}");
    let config = d.pci_config().unwrap();
    assert_eq!(bar0.read_u32(0).unwrap() & 0xff, EDU_ID);

    // What safe code could do: turn decoding off, then read the mapped BAR. Before the fix the
    // write went through and the read killed the child with SIGBUS.
    let ended = in_child(|| {
        let cleared = config.update_command(|c| c - Command::MEMORY);
        let id = bar0.read_u32(0);
        match (cleared, id) {
            (Err(e), Ok(id)) if e.errno() == Errno::EBUSY && id & 0xff == EDU_ID => 0,
            (Ok(_), _) => 2,
            _ => 1,
        }
    });
    // Put decoding back in case the child did turn it off.
    config.enable_memory_space().unwrap();
    assert_eq!(
        ended,
        Ok(0),
        "the child ended with {ended:?} (Err(7): killed by SIGBUS; Ok(2): the write was let \
         through)"
    );

    // The same from this process, by every way the crate writes config space.
    let err = config.set_command(Command::IO).unwrap_err();
    assert_eq!(err.errno(), Errno::EBUSY, "{err}");
    assert!(err.to_string().contains("SIGBUS"), "{err}");
    let raw = d.region(RegionIndex::CONFIG).unwrap();
    let err = raw.write_u8(COMMAND, 0).unwrap_err();
    assert_eq!(err.errno(), Errno::EBUSY, "{err}");
    let mut header = [0u8; 8];
    raw.read_bytes(0, &mut header).unwrap();
    header[4] &= !0x02;
    let err = raw.write_bytes(0, &header).unwrap_err();
    assert_eq!(err.errno(), Errno::EBUSY, "{err}");
    // Through a second fd of the same device: the state is the device's.
    if let Some(d2) = second_fd(&d) {
        let err = d2
            .pci_config()
            .unwrap()
            .update_command(|c| c - Command::MEMORY)
            .unwrap_err();
        assert_eq!(err.errno(), Errno::EBUSY, "{err}");
    }
    // Writes that keep decoding on, or do not touch it, go through.
    config.set_bus_master(true).unwrap();
    config.set_bus_master(false).unwrap();
    raw.write_u8(COMMAND + 1, config.read_u8(COMMAND + 1).unwrap())
        .unwrap();
    assert!(config.command().unwrap().contains(Command::MEMORY));
    assert_eq!(bar0.read_u32(0).unwrap() & 0xff, EDU_ID);
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn memory_decoding_off_needs_no_mapped_bar_and_blocks_new_ones() {
    let d = open(&device("UVFIO_TEST_EDU"));
    let config = d.pci_config().unwrap();
    let bar0 = d.region(RegionIndex::BAR0).unwrap();
    let err = config.memory_decoding_off().unwrap_err();
    assert_eq!(err.errno(), Errno::EBUSY, "{err}");
    drop(bar0);

    let off: MemoryDecodingOff = config.memory_decoding_off().unwrap();
    assert!(!config.command().unwrap().contains(Command::MEMORY));
    // No mapped BAR while it lives; the pread path reports the kernel's EIO instead.
    let err = d.region(RegionIndex::BAR0).unwrap_err();
    assert_eq!(err.errno(), Errno::EBUSY, "{err}");
    let slow = d
        .region_with(RegionIndex::BAR0, MapOptions::new().never_map())
        .unwrap();
    assert_eq!(slow.read_u32(0).unwrap_err().errno(), Errno::EIO);
    assert_eq!(
        config.memory_decoding_off().unwrap_err().errno(),
        Errno::EBUSY,
        "one guard at a time"
    );
    // The guard is owned: it can move to another thread or into a driver's state.
    let off = std::thread::spawn(move || off).join().unwrap();
    drop(off);
    assert!(config.command().unwrap().contains(Command::MEMORY));
    let bar0 = d.region(RegionIndex::BAR0).unwrap();
    assert_eq!(bar0.read_u32(0).unwrap() & 0xff, EDU_ID);
    assert_eq!(slow.read_u32(0).unwrap() & 0xff, EDU_ID);

    // release() reports what drop ignores.
    drop(bar0);
    config.memory_decoding_off().unwrap().release().unwrap();
    assert!(config.command().unwrap().contains(Command::MEMORY));
}

/// A driver's state holding its guards: no borrow of a `PciConfig` needed.
struct Driver {
    _bus_master: BusMaster,
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn bus_master_guard_is_owned_and_lives_in_a_driver_struct() {
    let d = open(&device("UVFIO_TEST_EDU"));
    let driver = {
        let config = d.pci_config().unwrap();
        Driver {
            _bus_master: config.bus_master().unwrap(),
        }
        // `config` is gone; the guard keeps its own handle.
    };
    let config = d.pci_config().unwrap();
    assert!(config.command().unwrap().contains(Command::BUS_MASTER));
    let driver = std::thread::spawn(move || driver).join().unwrap();
    drop(driver);
    assert!(!config.command().unwrap().contains(Command::BUS_MASTER));
}

/// The e1000e's STATUS register (BAR0 offset 0x8) as the tests' QEMU model shows it.
const E1000E_STATUS: u32 = 0x0008_0283;

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn low_power_under_a_mapped_bar_is_a_typed_error_not_sigbus() {
    let d = open(&device("UVFIO_TEST_E1000E_B"));
    let bar0 = d.region(RegionIndex::BAR0).unwrap();
    assert!(bar0.is_mapped(0), "{bar0:?}");
    assert_eq!(bar0.read_u32(0x8).unwrap(), E1000E_STATUS);

    // What safe code could do: let the device enter low power, then read the mapped BAR.
    // vfio-pci zaps the mappings in low power and answers the access with SIGBUS. Before the
    // fix the child was killed by SIGBUS on `full` (6.12); on `debian` (6.1) the entry went
    // through and the read happened to survive (Ok(2)).
    let ended = in_child(|| {
        let entered = d.low_power_entry();
        let status = bar0.read_u32(0x8);
        match (entered, status) {
            (Err(e), Ok(s)) if e.errno() == Errno::EBUSY && s == E1000E_STATUS => 0,
            (Ok(()), Ok(s)) if s == E1000E_STATUS => 2,
            (Ok(()), _) => 3,
            _ => 1,
        }
    });
    // Wake the device in case the child did put it in low power.
    let _ = d.low_power_exit();
    assert_eq!(
        ended,
        Ok(0),
        "the child ended with {ended:?} (Err(7): killed by SIGBUS; Ok(2) / Ok(3): the entry \
         was let through and the mapped read still worked / gave another value)"
    );
    let err = d.low_power_entry().unwrap_err();
    assert_eq!(err.errno(), Errno::EBUSY, "{err}");
    assert!(err.to_string().contains("SIGBUS"), "{err}");
    let efd = nix::sys::eventfd::EventFd::new().unwrap();
    let err = d
        .low_power_entry_with_wakeup(std::os::fd::AsFd::as_fd(&efd))
        .unwrap_err();
    assert_eq!(err.errno(), Errno::EBUSY, "{err}");
    // Through a second fd of the same device: the state is the device's.
    if let Some(d2) = second_fd(&d) {
        assert_eq!(d2.low_power_entry().unwrap_err().errno(), Errno::EBUSY);
    }

    // Without a mapped BAR, low power is allowed, and no mapped BAR can be made until
    // low_power_exit; unmapped accesses (pread) wake the device and work.
    drop(bar0);
    d.low_power_entry().unwrap();
    let err = d.region(RegionIndex::BAR0).unwrap_err();
    assert_eq!(err.errno(), Errno::EBUSY, "{err}");
    let unmapped = d
        .region_with(RegionIndex::BAR0, MapOptions::new().never_map())
        .unwrap();
    assert!(!unmapped.is_mapped(0));
    d.low_power_exit().unwrap();
    let bar0 = d.region(RegionIndex::BAR0).unwrap();
    assert!(bar0.is_mapped(0));
    assert_eq!(bar0.read_u32(0x8).unwrap(), E1000E_STATUS);
}
