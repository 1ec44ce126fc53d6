//! Live-migrates the state of one `mtty` serial port device into another with VFIO migration
//! v2, and checks that it arrived.
//!
//! 1. Opens mediated devices A and B (the kernel's `mtty` sample, type `mtty-2`: two 16550
//!    ports, migration with STOP_COPY, P2P and PRE_COPY) into one DMA space, through their
//!    groups or their cdevs as `--iommu` says.
//! 2. Resets both to RUNNING and writes state into A's ports through its I/O BARs: line
//!    control, modem control and scratch registers, and bytes into each loop-back FIFO.
//! 3. Saves A: RUNNING → RUNNING_P2P → STOP → STOP_COPY (one arc per ioctl), reads the data fd
//!    to its end, STOP_COPY → STOP.
//! 4. Loads B: RUNNING → RUNNING_P2P → STOP → RESUMING, writes the stream, RESUMING → STOP
//!    (mtty checks and applies it), then back to RUNNING.
//! 5. Reads B's registers and drains its FIFOs: they must be what was written into A.
//!
//! Exit status 0 only when B carries A's state.
//!
//! ```text
//! migrate [--iommu MODE] [A B]   (default: $UVFIO_TEST_MTTY_A $UVFIO_TEST_MTTY_B)
//!     A, B          an mdev's sysfs directory (/sys/bus/mdev/devices/<uuid>) or its UUID
//!     --iommu MODE  vfio_type1_iommu, vfio_type1v2_iommu, iommufd_compat_type1,
//!                   iommufd_compat_type1v2 or iommufd (default: the best the host has)
//! ```
//!
//! In the emulated host (the full flavour has mtty):
//!
//! ```text
//! UVFIO_VM_FLAVOR=full tests/vm/cargo-vm run --example migrate -- --iommu iommufd
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use uvfio::device::migration;
use uvfio::device::{MigState, RegionIndex};
use uvfio::{Device, DmaSpace, IommuMode};

/// 16550 register offsets in an mtty port's I/O BAR.
const RX_TX: u64 = 0;
const FCR: u64 = 2;
const LCR: u64 = 3;
const MCR: u64 = 4;
const LSR: u64 = 5;
const SCR: u64 = 7;
const LSR_DATA_READY: u8 = 0x01;

/// What one port holds: (LCR, MCR, SCR) and the bytes in its FIFO.
type PortState = ((u8, u8, u8), Vec<u8>);

fn write_port(device: &Device, bar: RegionIndex, state: &PortState) -> uvfio::Result<()> {
    let r = device.region(bar)?;
    r.write_u8(FCR, 0x07)?; // FIFO on, both FIFOs cleared
    r.write_u8(LCR, state.0 .0)?;
    r.write_u8(MCR, state.0 .1)?;
    r.write_u8(SCR, state.0 .2)?;
    for &b in &state.1 {
        r.write_u8(RX_TX, b)?;
    }
    Ok(())
}

fn read_port(device: &Device, bar: RegionIndex) -> uvfio::Result<PortState> {
    let r = device.region(bar)?;
    let regs = (r.read_u8(LCR)?, r.read_u8(MCR)?, r.read_u8(SCR)?);
    let mut bytes = Vec::new();
    while r.read_u8(LSR)? & LSR_DATA_READY != 0 && bytes.len() < 64 {
        bytes.push(r.read_u8(RX_TX)?);
    }
    Ok((regs, bytes))
}

fn run(mode: IommuMode, a: PathBuf, b: PathBuf) -> Result<bool, Box<dyn std::error::Error>> {
    let space = DmaSpace::open(mode)?;
    let dev_a = space.open_device_at(&a)?;
    let dev_b = space.open_device_at(&b)?;
    let (mig_a, mig_b) = (dev_a.migration()?, dev_b.migration()?);
    println!(
        "migrate: A {} -> B {} through {mode}; migration flags {:?}, {} bytes expected",
        dev_a.name(),
        dev_b.name(),
        mig_a.flags(),
        mig_a.data_size()?
    );
    // Whatever an earlier user left: back to RUNNING.
    mig_a.recover()?;
    mig_b.recover()?;

    let ports = [
        (
            RegionIndex::BAR0,
            ((0x03, 0x0b, 0x5a), b"hello from A".to_vec()),
        ),
        (RegionIndex::BAR1, ((0x1b, 0x03, 0xc3), b"port 2".to_vec())),
    ];
    for (bar, state) in &ports {
        write_port(&dev_a, *bar, state)?;
    }
    // B starts out different.
    write_port(&dev_b, RegionIndex::BAR0, &((0, 0, 0x11), b"old".to_vec()))?;

    println!("migrate: A {} -> STOP_COPY", mig_a.state()?);
    let saved = migration::save(&dev_a)?;
    println!(
        "migrate: saved {} bytes from A (A is {} now)",
        saved.len(),
        mig_a.state()?
    );
    migration::load(&dev_b, &saved)?;
    mig_b.set_state(MigState::RUNNING)?;
    println!("migrate: loaded into B, B is {}", mig_b.state()?);

    let mut ok = true;
    for (i, (bar, want)) in ports.iter().enumerate() {
        let got = read_port(&dev_b, *bar)?;
        let same = &got == want;
        ok &= same;
        println!(
            "migrate: port {i}: LCR {:#04x} MCR {:#04x} SCR {:#04x} FIFO {:?} {}",
            got.0 .0,
            got.0 .1,
            got.0 .2,
            String::from_utf8_lossy(&got.1),
            if same {
                "= A's".to_string()
            } else {
                format!(
                    "!= A's (LCR {:#04x} MCR {:#04x} SCR {:#04x} FIFO {:?})",
                    want.0 .0,
                    want.0 .1,
                    want.0 .2,
                    String::from_utf8_lossy(&want.1)
                )
            }
        );
    }
    // A was left stopped by the save; a reset makes it usable again.
    mig_a.recover()?;
    Ok(ok)
}

/// An mdev given as its sysfs directory or its UUID.
fn mdev_path(s: String) -> PathBuf {
    if s.contains('/') {
        PathBuf::from(s)
    } else {
        PathBuf::from("/sys/bus/mdev/devices").join(s)
    }
}

/// `[--iommu MODE] [A B]`.
fn parse_args() -> Result<(IommuMode, PathBuf, PathBuf), String> {
    let mut mode = None;
    let mut devices = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--iommu" => {
                let name = args.next().ok_or("--iommu needs a mode")?;
                mode = Some(name.parse::<IommuMode>().map_err(|e| e.to_string())?);
            }
            a if !a.starts_with('-') && devices.len() < 2 => devices.push(a.to_owned()),
            a => return Err(format!("unexpected argument {a:?}")),
        }
    }
    let (a, b) = match devices.len() {
        2 => (devices.remove(0), devices.remove(0)),
        0 => (
            std::env::var("UVFIO_TEST_MTTY_A")
                .map_err(|_| "no devices given and UVFIO_TEST_MTTY_A is not set")?,
            std::env::var("UVFIO_TEST_MTTY_B")
                .map_err(|_| "no devices given and UVFIO_TEST_MTTY_B is not set")?,
        ),
        _ => return Err("give both A and B, or neither".into()),
    };
    Ok((
        mode.unwrap_or_else(IommuMode::best_available),
        mdev_path(a),
        mdev_path(b),
    ))
}

fn main() -> ExitCode {
    let (mode, a, b) = match parse_args() {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("migrate: {e}");
            eprintln!(
                "usage: migrate [--iommu MODE] [A B] (default: $UVFIO_TEST_MTTY_A $UVFIO_TEST_MTTY_B)"
            );
            return ExitCode::from(2);
        }
    };
    match run(mode, a, b) {
        Ok(true) => {
            println!("migrate: B carries A's state");
            ExitCode::SUCCESS
        }
        Ok(false) => {
            eprintln!("migrate: B does not carry A's state");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("migrate: {e}");
            ExitCode::FAILURE
        }
    }
}
