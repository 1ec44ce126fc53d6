//! VFIO migration v2 against the kernel's `mtty` sample (full flavour): its capabilities,
//! every arc it implements, illegal arcs refused before the ioctl, PRE_COPY, the abort of a
//! RESUMING session by reset, and the state of instance A carried into instance B through the
//! group path and the cdev path.
//!
//! mtty never enters ERROR (its only failing arc, RESUMING -> STOP with incomplete data,
//! leaves it in RESUMING), so ERROR itself is covered by the unit tests of the state machine;
//! recovery by reset is exercised here on the aborted RESUMING session.
//!
//! mtty keeps its state (migration state, serial registers, FIFO) across opens: every test
//! starts with `ready`, a reset back to RUNNING and an emptied FIFO.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;

use uvfio::device::migration::{self, Migration};
use uvfio::device::{MigState, MigrationFlags, RegionIndex};
use uvfio::{Device, DmaSpace, Error, IommuMode};

use crate::common;
use crate::mdev::mdev_dir;

/// 16550 registers of an mtty port (BAR0 = port 0, BAR1 = port 1).
const TX: u64 = 0;
const FCR: u64 = 2;
const LCR: u64 = 3;
const MCR: u64 = 4;
const LSR: u64 = 5;
const SCR: u64 = 7;
const LSR_DR: u8 = 0x01;

/// The bytes mtty's stream starts with: `MTTY_MAGIC` (native endian), version 1.0.
const MTTY_MAGIC: u64 = 0x7e9d_0989_8c3e_2c4e;
/// `mtty_data` of a two-port instance: a 24-byte header and two 36-byte `serial_port`s.
const MTTY2_STREAM: usize = 24 + 2 * 36;

fn open(mode: IommuMode, dir: &Path) -> (DmaSpace, Device) {
    let space = DmaSpace::open(mode).unwrap_or_else(|e| panic!("{mode}: {e}"));
    let device = space
        .open_device_at(dir)
        .unwrap_or_else(|e| panic!("open {} in {mode}: {e}", dir.display()));
    (space, device)
}

/// Resets the device to RUNNING (whatever an earlier test left) and empties both FIFOs.
fn ready(device: &Device) -> Migration {
    let mig = device.migration().expect("migration");
    assert_eq!(mig.recover().expect("reset"), MigState::RUNNING);
    for bar in [RegionIndex::BAR0, RegionIndex::BAR1] {
        // FIFO on, both FIFOs cleared.
        device.region(bar).unwrap().write_u8(FCR, 0x07).unwrap();
    }
    mig
}

/// Puts state into a port: line and modem control, scratch, and `bytes` into the FIFO.
fn write_port(device: &Device, bar: RegionIndex, regs: (u8, u8, u8), bytes: &[u8]) {
    let r = device.region(bar).unwrap();
    r.write_u8(LCR, regs.0).unwrap();
    r.write_u8(MCR, regs.1).unwrap();
    r.write_u8(SCR, regs.2).unwrap();
    for &b in bytes {
        r.write_u8(TX, b).unwrap();
    }
}

/// Reads a port's `(LCR, MCR, SCR)` and drains its FIFO.
fn read_port(device: &Device, bar: RegionIndex) -> ((u8, u8, u8), Vec<u8>) {
    let r = device.region(bar).unwrap();
    let regs = (
        r.read_u8(LCR).unwrap(),
        r.read_u8(MCR).unwrap(),
        r.read_u8(SCR).unwrap(),
    );
    let mut bytes = Vec::new();
    while r.read_u8(LSR).unwrap() & LSR_DR != 0 && bytes.len() < 64 {
        bytes.push(r.read_u8(TX).unwrap());
    }
    (regs, bytes)
}

fn assert_refused(r: uvfio::Result<Option<migration::MigrationData>>, what: &str) -> String {
    match r {
        Err(e @ Error::MigrationArc { .. }) => e.to_string(),
        Err(e) => panic!("{what}: refused with the wrong error: {e}"),
        Ok(_) => panic!("{what}: not refused"),
    }
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn mtty_reports_its_migration_capabilities() {
    let Some(a) = mdev_dir(
        "mtty_reports_its_migration_capabilities",
        "UVFIO_TEST_MTTY_A",
    ) else {
        return;
    };
    let (_space, device) = open(common::mode(), &a);
    let mig = ready(&device);
    assert_eq!(
        mig.flags(),
        MigrationFlags::STOP_COPY | MigrationFlags::P2P | MigrationFlags::PRE_COPY
    );
    for s in MigState::ALL {
        assert_eq!(mig.flags().supports(s), s != MigState::ERROR, "{s}");
    }
    assert_eq!(mig.state().unwrap(), MigState::RUNNING);
    assert_eq!(mig.data_size().unwrap(), MTTY2_STREAM as u64);
    assert_eq!(mig.flags().arcs().len(), 15);
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn mtty_takes_every_arc_it_supports() {
    let Some(a) = mdev_dir("mtty_takes_every_arc_it_supports", "UVFIO_TEST_MTTY_A") else {
        return;
    };
    let (_space, device) = open(common::mode(), &a);
    let mig = ready(&device);
    use MigState as M;
    // A walk over every arc; `true` where the arc opens a data session.
    let walk = [
        (M::RUNNING_P2P, false),
        (M::RUNNING, false),
        (M::RUNNING_P2P, false),
        (M::STOP, false),
        (M::RUNNING_P2P, false),
        (M::STOP, false),
        (M::STOP_COPY, true),
        (M::STOP, false),
        (M::RESUMING, true),
        (M::STOP, false),
        (M::RUNNING_P2P, false),
        (M::PRE_COPY_P2P, true),
        (M::PRE_COPY, false),
        (M::RUNNING, false),
        (M::PRE_COPY, true),
        (M::PRE_COPY_P2P, false),
        (M::RUNNING_P2P, false),
        (M::PRE_COPY_P2P, true),
        (M::STOP_COPY, false),
        (M::STOP, false),
        (M::RUNNING_P2P, false),
        (M::RUNNING, false),
    ];
    let mut taken = BTreeSet::new();
    let mut saved = Vec::new();
    let mut at = mig.state().unwrap();
    let mut session = None;
    for (to, opens) in walk {
        let data = mig.step(to).unwrap_or_else(|e| panic!("{at} -> {to}: {e}"));
        assert_eq!(data.is_some(), opens, "{at} -> {to}: data fd");
        assert_eq!(mig.state().unwrap(), to, "{at} -> {to}");
        if let Some(d) = data {
            assert_eq!(d.session(), to);
            session = Some(d);
        }
        match (at, to) {
            (M::STOP, M::STOP_COPY) => {
                session
                    .as_mut()
                    .unwrap()
                    .read_available(&mut saved)
                    .unwrap();
                assert_eq!(saved.len(), MTTY2_STREAM);
                assert_eq!(saved[..8], MTTY_MAGIC.to_ne_bytes());
            }
            (M::STOP, M::RESUMING) => session.as_mut().unwrap().write_all(&saved).unwrap(),
            _ => {}
        }
        taken.insert((at.0, to.0));
        at = to;
    }
    let all: BTreeSet<(u32, u32)> = mig
        .flags()
        .arcs()
        .into_iter()
        .map(|(f, t)| (f.0, t.0))
        .collect();
    assert_eq!(taken, all, "every arc of the device taken");
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn mtty_illegal_arcs_are_refused_before_the_ioctl() {
    let Some(a) = mdev_dir(
        "mtty_illegal_arcs_are_refused_before_the_ioctl",
        "UVFIO_TEST_MTTY_A",
    ) else {
        return;
    };
    let (_space, device) = open(common::mode(), &a);
    let mig = ready(&device);
    // Not one arc: refused, naming the kernel's path; nothing moved.
    let msg = assert_refused(mig.step(MigState::STOP_COPY), "RUNNING -> STOP_COPY");
    assert!(
        msg.contains("RUNNING -> RUNNING_P2P -> STOP -> STOP_COPY"),
        "{msg}"
    );
    assert_eq!(mig.state().unwrap(), MigState::RUNNING);
    assert_refused(mig.step(MigState::ERROR), "-> ERROR");
    assert_refused(mig.set_state(MigState::ERROR), "-> ERROR");
    assert_refused(mig.set_state(MigState(42)), "an unknown state");
    assert_eq!(mig.state().unwrap(), MigState::RUNNING);

    // STOP_COPY -> PRE_COPY(_P2P): forbidden by the kernel; refused here, and the kernel
    // itself says EINVAL when asked directly.
    let _data = mig
        .set_state(MigState::STOP_COPY)
        .unwrap()
        .expect("data fd");
    for to in [MigState::PRE_COPY, MigState::PRE_COPY_P2P] {
        assert_refused(mig.set_state(to), "STOP_COPY -> PRE_COPY");
        assert_eq!(mig.state().unwrap(), MigState::STOP_COPY);
        let raw = device
            .set_mig_state(to)
            .expect_err("the kernel refuses too");
        assert_eq!(raw.errno(), uvfio::Errno::EINVAL, "{raw}");
    }
    // The path the library walks is the kernel's combination transition.
    assert_eq!(
        mig.path_to(MigState::RUNNING).unwrap(),
        [MigState::STOP, MigState::RUNNING_P2P, MigState::RUNNING]
    );
    assert!(mig.set_state(MigState::RUNNING).unwrap().is_none());
    assert_eq!(mig.state().unwrap(), MigState::RUNNING);
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn mtty_precopy_info_and_stream() {
    let Some(a) = mdev_dir("mtty_precopy_info_and_stream", "UVFIO_TEST_MTTY_A") else {
        return;
    };
    let Some(b) = mdev_dir("mtty_precopy_info_and_stream", "UVFIO_TEST_MTTY_B") else {
        return;
    };
    let (_space, device) = open(common::mode(), &a);
    let (_space_b, device_b) = open(common::mode(), &b);
    let mig = ready(&device);
    let mig_b = ready(&device_b);
    write_port(&device, RegionIndex::BAR1, (0x03, 0x08, 0x42), b"pre");

    let mut data = mig.set_state(MigState::PRE_COPY).unwrap().expect("data fd");
    assert_eq!(data.session(), MigState::PRE_COPY);
    let info = data.precopy_info().unwrap();
    common::say(&format!("mtty PRE_COPY info: {info:?}"));
    assert_eq!(
        (info.initial_bytes, info.dirty_bytes),
        (24, 0),
        "the header"
    );
    let mut stream = Vec::new();
    assert_eq!(data.read_available(&mut stream).unwrap(), 24);
    assert_eq!(data.precopy_info().unwrap().initial_bytes, 0);
    // On to STOP_COPY within the session: no new fd, the rest on the same one.
    assert!(mig.set_state(MigState::STOP_COPY).unwrap().is_none());
    let e = data.precopy_info().expect_err("not in PRE_COPY");
    assert_eq!(e.errno(), uvfio::Errno::EINVAL, "{e}");
    assert_eq!(data.read_available(&mut stream).unwrap(), MTTY2_STREAM - 24);
    mig.set_state(MigState::STOP).unwrap();
    // The session ended with STOP_COPY -> STOP.
    let e = data.read_available(&mut Vec::new()).expect_err("ended");
    assert_eq!(e.errno(), uvfio::Errno::ENODEV, "{e}");

    mig_b.load(&stream).unwrap();
    mig_b.set_state(MigState::RUNNING).unwrap();
    assert_eq!(
        read_port(&device_b, RegionIndex::BAR1),
        ((0x03, 0x08, 0x42), b"pre".to_vec())
    );
    mig.set_state(MigState::RUNNING).unwrap();
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn mtty_resuming_is_aborted_by_reset() {
    let Some(b) = mdev_dir("mtty_resuming_is_aborted_by_reset", "UVFIO_TEST_MTTY_B") else {
        return;
    };
    let (_space, device) = open(common::mode(), &b);
    let mig = ready(&device);
    let mut data = mig.set_state(MigState::RESUMING).unwrap().expect("data fd");
    // Half a header, then RESUMING -> STOP: mtty rejects the incomplete state and stays in
    // RESUMING.
    data.write_all(&MTTY_MAGIC.to_ne_bytes()).unwrap();
    let e = mig.set_state(MigState::STOP).expect_err("incomplete state");
    assert_eq!(e.errno(), uvfio::Errno::EINVAL, "{e}");
    assert_eq!(mig.state().unwrap(), MigState::RESUMING);
    // A bad header is refused by the write itself.
    let e = data.write_all(&[0xffu8; 24]).expect_err("a bad header");
    assert_eq!(e.raw_os_error(), Some(libc::EFAULT), "{e}");
    // "To abort a RESUMING session the device must be reset."
    assert_eq!(mig.recover().unwrap(), MigState::RUNNING);
    assert!(data.write_all(&[0u8; 4]).is_err(), "the session is dead");
    // The device migrates normally afterwards.
    let saved = mig.save().unwrap();
    assert_eq!(saved.len(), MTTY2_STREAM);
    assert_eq!(mig.state().unwrap(), MigState::STOP);
    mig.set_state(MigState::RUNNING).unwrap();
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn mtty_state_moves_from_a_to_b_through_group_and_cdev() {
    const TEST: &str = "mtty_state_moves_from_a_to_b_through_group_and_cdev";
    let Some(a) = mdev_dir(TEST, "UVFIO_TEST_MTTY_A") else {
        return;
    };
    let Some(b) = mdev_dir(TEST, "UVFIO_TEST_MTTY_B") else {
        return;
    };
    for (i, mode) in [IommuMode::VfioType1v2, IommuMode::Iommufd]
        .into_iter()
        .enumerate()
    {
        let (_sa, dev_a) = open(mode, &a);
        let (_sb, dev_b) = open(mode, &b);
        ready(&dev_a);
        let mig_b = ready(&dev_b);
        let i = i as u8;
        let port0 = ((0x03, 0x0b, 0x5a + i), format!("hello B {i}").into_bytes());
        let port1 = ((0x1b, 0x03, 0xc3 + i), b"second port".to_vec());
        write_port(&dev_a, RegionIndex::BAR0, port0.0, &port0.1);
        write_port(&dev_a, RegionIndex::BAR1, port1.0, &port1.1);
        // B holds something else before.
        write_port(&dev_b, RegionIndex::BAR0, (0, 0, 0x11), b"old");

        let saved = migration::save(&dev_a).unwrap_or_else(|e| panic!("{mode}: save: {e}"));
        assert_eq!(saved.len(), MTTY2_STREAM, "{mode}");
        assert_eq!(dev_a.mig_state().unwrap(), MigState::STOP);
        migration::load(&dev_b, &saved).unwrap_or_else(|e| panic!("{mode}: load: {e}"));
        assert_eq!(mig_b.state().unwrap(), MigState::STOP);
        mig_b.set_state(MigState::RUNNING).unwrap();

        assert_eq!(
            read_port(&dev_b, RegionIndex::BAR0),
            port0,
            "{mode}: port 0"
        );
        assert_eq!(
            read_port(&dev_b, RegionIndex::BAR1),
            port1,
            "{mode}: port 1"
        );
        common::say(&format!(
            "{TEST}: {mode}: moved {} bytes of state, port 0 {:?}",
            saved.len(),
            String::from_utf8_lossy(&port0.1)
        ));
        dev_a.migration().unwrap().recover().unwrap();
    }
}
