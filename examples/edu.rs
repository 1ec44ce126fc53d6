//! The smallest complete VFIO driver: QEMU's `edu` device (1234:11e8).
//!
//! It shows every part of a driver once:
//!
//! 1. open the device in a DMA space ([`DmaSpace::open_pci_device`]): through its group and a
//!    container, or through its cdev attached to an iommufd IOAS, as `--iommu` says; nothing
//!    below this line depends on the choice;
//! 2. enable memory space and bus mastering in the PCI command register;
//! 3. map BAR0 and use its registers (liveness check);
//! 4. enable MSI on an eventfd and wait for the interrupt that ends a factorial computation;
//! 5. DMA a buffer of fresh random data RAM → device → RAM through the IOMMU and compare.
//!
//! ```text
//! edu [PCI-ADDRESS] [--iommu MODE]   (default: $UVFIO_TEST_EDU, the best mode of the host)
//!     --iommu MODE   vfio_type1_iommu, vfio_type1v2_iommu, iommufd_compat_type1,
//!                    iommufd_compat_type1v2 or iommufd (the kernel selftests' names), or
//!                    noiommu (VFIO's unsafe no-IOMMU mode: DMA to physical addresses)
//! tests/vm/cargo-vm run --example edu                       # in the emulated IOMMU host
//! UVFIO_VM_FLAVOR=full tests/vm/cargo-vm run --example edu -- --iommu iommufd
//! ```
//!
//! The device's registers are described in QEMU's `docs/specs/edu.rst`. Two of its quirks shape
//! this driver: it addresses only 28 bits of IOVA (its default DMA mask), and its DMA engine
//! reads and writes a 4 KiB buffer at device offset 0x40000 (a transfer outside it aborts
//! QEMU 7.2, whose check also refuses one that ends exactly at the buffer's end, so the driver
//! checks every length and moves at most 4095 bytes at a time).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use uvfio::device::{IrqIndex, RegionIndex};
use uvfio::dma::{DmaBuffer, DmaMemory, DmaOptions};
use uvfio::irq::Interrupts;
use uvfio::mmio::Region;
use uvfio::pci::PciAddress;
use uvfio::{DmaSpace, IommuMode};

/// Register offsets and bits of BAR0.
mod reg {
    pub const ID: u64 = 0x00;
    pub const LIVENESS: u64 = 0x04;
    pub const FACTORIAL: u64 = 0x08;
    pub const STATUS: u64 = 0x20;
    pub const IRQ_STATUS: u64 = 0x24;
    pub const IRQ_RAISE: u64 = 0x60;
    pub const IRQ_ACK: u64 = 0x64;
    pub const DMA_SRC: u64 = 0x80;
    pub const DMA_DST: u64 = 0x88;
    pub const DMA_COUNT: u64 = 0x90;
    pub const DMA_CMD: u64 = 0x98;

    pub const STATUS_COMPUTING: u32 = 0x01;
    pub const STATUS_IRQ_ON_FACTORIAL: u32 = 0x80;
    pub const IRQ_FACTORIAL: u32 = 0x001;
    pub const IRQ_DMA: u32 = 0x100;
    pub const DMA_START: u64 = 0x1;
    pub const DMA_TO_RAM: u64 = 0x2;
    pub const DMA_IRQ: u64 = 0x4;

    /// The device's DMA buffer, in its own address space.
    pub const DMA_BUFFER: u64 = 0x40000;
    pub const DMA_BUFFER_SIZE: u64 = 4096;
    /// The longest transfer QEMU 7.2 accepts: its range check wants the transfer's end
    /// strictly inside the buffer, so a full 4096 bytes is refused (with an abort of QEMU).
    pub const DMA_MAX: u64 = DMA_BUFFER_SIZE - 1;
    /// The device's DMA address width.
    pub const DMA_BITS: u32 = 28;
}

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// A running `edu`: its BAR0 and its MSI vector.
struct Edu {
    bar0: Region,
    msi: Interrupts,
}

impl Edu {
    const TIMEOUT: Duration = Duration::from_secs(5);

    /// Waits for the MSI, then acknowledges the interrupt causes it reports.
    fn wait_irq(&self, expect: u32) -> Res<u32> {
        let start = Instant::now();
        loop {
            self.msi
                .wait(0, Some(Self::TIMEOUT))?
                .ok_or("no MSI within 5 s")?;
            let status = self.bar0.read_u32(reg::IRQ_STATUS)?;
            self.bar0.write_u32(reg::IRQ_ACK, status)?;
            if status & expect == expect {
                return Ok(status);
            }
            if start.elapsed() > Self::TIMEOUT {
                return Err(format!("interrupt status {status:#x}, expected {expect:#x}").into());
            }
        }
    }

    fn liveness(&self) -> Res<()> {
        for value in [0x1234_5678u32, 0, u32::MAX, 0xa5a5_5a5a] {
            self.bar0.write_u32(reg::LIVENESS, value)?;
            let back = self.bar0.read_u32(reg::LIVENESS)?;
            if back != !value {
                return Err(format!("liveness: wrote {value:#x}, read {back:#x}").into());
            }
        }
        Ok(())
    }

    fn factorial(&self, n: u32) -> Res<u32> {
        self.bar0
            .write_u32(reg::STATUS, reg::STATUS_IRQ_ON_FACTORIAL)?;
        self.bar0.write_u32(reg::FACTORIAL, n)?;
        self.wait_irq(reg::IRQ_FACTORIAL)?;
        let status = self.bar0.read_u32(reg::STATUS)?;
        if status & reg::STATUS_COMPUTING != 0 {
            return Err("factorial interrupt while still computing".into());
        }
        Ok(self.bar0.read_u32(reg::FACTORIAL)?)
    }

    /// One DMA transfer of `len` bytes between `iova` and the device's buffer.
    fn dma(&self, iova: u64, len: usize, to_ram: bool) -> Res<()> {
        let len = len as u64;
        if len == 0 || len > reg::DMA_MAX {
            return Err(format!(
                "edu DMA of {len} bytes: at most {} per transfer",
                reg::DMA_MAX
            )
            .into());
        }
        let (src, dst) = if to_ram {
            (reg::DMA_BUFFER, iova)
        } else {
            (iova, reg::DMA_BUFFER)
        };
        self.bar0.write_u64(reg::DMA_SRC, src)?;
        self.bar0.write_u64(reg::DMA_DST, dst)?;
        self.bar0.write_u64(reg::DMA_COUNT, len)?;
        let direction = if to_ram { reg::DMA_TO_RAM } else { 0 };
        self.bar0
            .write_u64(reg::DMA_CMD, reg::DMA_START | direction | reg::DMA_IRQ)?;
        self.wait_irq(reg::IRQ_DMA)?;
        if self.bar0.read_u64(reg::DMA_CMD)? & reg::DMA_START != 0 {
            return Err("DMA interrupt while the transfer still runs".into());
        }
        Ok(())
    }
}

/// xorshift64*: fresh data for every run without a dependency.
fn random_bytes(len: usize) -> Vec<u8> {
    let mut x = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0x9e37_79b9_7f4a_7c15, |d| d.as_nanos() as u64)
        | 1;
    (0..len)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
        })
        .collect()
}

fn run(address: PciAddress, mode: IommuMode) -> Res<()> {
    // The one backend-specific line of the driver.
    let space = open_space(mode)?;
    let device = space.open_pci_device(&address)?;
    let config = device.pci_config()?;
    let (vendor, id) = (config.vendor_id()?, config.device_id()?);
    if (vendor, id) != (0x1234, 0x11e8) {
        return Err(format!("{address} is {vendor:04x}:{id:04x}, not an edu (1234:11e8)").into());
    }
    // vfio-pci leaves both off; without bus mastering the device can neither DMA nor send MSI.
    config.enable_memory_space()?;
    // On until released below; on any early return the guard turns it off.
    let bus_master = config.bus_master()?;

    let edu = Edu {
        bar0: device.region(RegionIndex::BAR0)?,
        msi: device.enable_irqs(IrqIndex::MSI, 1)?,
    };
    let version = edu.bar0.read_u32(reg::ID)?;
    println!(
        "edu {address} ({mode}): version {}.{}, BAR0 {} KiB (mapped: {:?})",
        version >> 24,
        (version >> 16) & 0xff,
        edu.bar0.size() >> 10,
        edu.bar0.mapped_ranges()
    );

    edu.liveness()?;
    println!("liveness: ok");

    let n = 10;
    let started = Instant::now();
    let f = edu.factorial(n)?;
    let expected: u32 = (1..=n).product();
    println!("factorial({n}) = {f} by MSI in {:?}", started.elapsed());
    if f != expected {
        return Err(format!("factorial({n}) = {f}, expected {expected}").into());
    }

    // Raising an interrupt by hand reaches the same eventfd.
    edu.bar0.write_u32(reg::IRQ_RAISE, 0x40)?;
    edu.wait_irq(0x40)?;
    println!("raised interrupt: ok");

    let len = reg::DMA_MAX as usize;
    let options = DmaOptions::new().address_bits(reg::DMA_BITS);
    let mut src = DmaBuffer::with_options(&space, len, options)?;
    let mut dst = DmaBuffer::with_options(&space, len, options)?;
    let data = random_bytes(len);
    src.write_slice(0, &data)?;
    dst.fill(0, len, 0)?;
    let started = Instant::now();
    edu.dma(src.iova(), len, false)?;
    edu.dma(dst.iova(), len, true)?;
    let back = dst.read_to_vec(0, len)?;
    if back != data {
        let first = back
            .iter()
            .zip(&data)
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        return Err(format!("DMA round trip differs from byte {first} on").into());
    }
    println!(
        "DMA round trip: {len} random bytes RAM (IOVA {:#x}) -> device -> RAM (IOVA {:#x}) match, in {:?}",
        src.iova(),
        dst.iova(),
        started.elapsed()
    );

    // The device keeps no state across runs but its registers: leave bus mastering off.
    bus_master.release()?;
    Ok(())
    // Drops, in reverse order: the DMA buffers (unmapped, then freed), the MSI (disabled,
    // then its eventfd closed), BAR0 (unmapped), then the device, and the group and container
    // or the IOAS and iommufd.
}

/// `[PCI-ADDRESS] [--iommu MODE]`.
fn parse_args() -> Result<(PciAddress, IommuMode), String> {
    let mut address = None;
    let mut mode = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--iommu" => {
                let name = args.next().ok_or("--iommu needs a mode")?;
                mode = Some(name.parse::<IommuMode>().map_err(|e| e.to_string())?);
            }
            a if address.is_none() && !a.starts_with('-') => address = Some(a.to_owned()),
            a => return Err(format!("unexpected argument {a:?}")),
        }
    }
    let address = address
        .or_else(|| std::env::var("UVFIO_TEST_EDU").ok())
        .ok_or("no PCI address given and UVFIO_TEST_EDU is not set")?;
    let address = address.parse::<PciAddress>().map_err(|e| e.to_string())?;
    Ok((address, mode.unwrap_or_else(IommuMode::best_available)))
}

fn main() -> ExitCode {
    let (address, mode) = match parse_args() {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("edu: {e}");
            eprintln!("usage: edu [PCI-ADDRESS] [--iommu MODE] (address default: $UVFIO_TEST_EDU)");
            return ExitCode::from(2);
        }
    };
    match run(address, mode) {
        Ok(()) => {
            println!("edu: all checks passed");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("edu: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The DMA space of `mode`. `noiommu` (VFIO's no-IOMMU mode) needs the `unsafe` constructor.
#[allow(unsafe_code)] // VFIO's no-IOMMU mode cannot be made safe.
fn open_space(mode: IommuMode) -> uvfio::Result<DmaSpace> {
    if mode == IommuMode::NoIommu {
        // SAFETY: this driver gives its device only the addresses of its own DMA buffers and
        // pools, each while it lives, and stops it (its DMA finished, or the device reset or
        // disabled) before those are dropped.
        unsafe { DmaSpace::open_noiommu() }
    } else {
        DmaSpace::open(mode)
    }
}
