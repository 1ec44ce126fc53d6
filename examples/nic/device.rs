//! One NIC: open it through VFIO, reset it, bring the link up, read its MAC address, hand it
//! its rings, set up its interrupts, and stop it again.
//!
//! The sequence follows the 8254x/82574 manuals' "general configuration" chapter, cut down to
//! what a polling or interrupt-driven single-queue driver needs, with the adjustments QEMU's
//! models want (see `../shared/notes/emulated-iommu-host.md` §3.5, summarised in
//! the crate's example docs):
//!
//! - bus mastering must be on before the receiver sees any frame (QEMU checks it per frame);
//! - interrupts are masked through IMC (IMS is write-1-to-*set*; writing 0 to it does nothing);
//! - CTRL.RST is only a partial reset on QEMU's e1000, so every register the driver relies on
//!   is programmed explicitly afterwards, never assumed to hold its reset value;
//! - on the 82574 with MSI-X, queue causes are RXQ0/TXQ0 and everything else (LSC) is OTHER,
//!   which IMS must include and IVAR must route to a valid vector.

use std::fmt;
use std::thread::sleep;
use std::time::{Duration, Instant};

use uvfio::device::{IrqIndex, RegionIndex};
use uvfio::mmio::Region;
use uvfio::pci::config::PciConfig;
use uvfio::pci::PciAddress;
use uvfio::{Device, DmaSpace, Interrupts};

use crate::regs;
use crate::rings::{RxQueue, TxQueue};

/// The NIC families this driver knows, by PCI ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    /// Intel 82540EM (8086:100e), QEMU's `e1000`.
    E1000,
    /// Intel 82574L (8086:10d3), QEMU's `e1000e`.
    E1000e,
}

impl Model {
    /// The model of a device with these PCI IDs, if this driver supports it.
    pub fn from_ids(vendor: u16, device: u16) -> Option<Model> {
        match (vendor, device) {
            (0x8086, 0x100e) => Some(Model::E1000),
            (0x8086, 0x10d3) => Some(Model::E1000e),
            _ => None,
        }
    }

    /// The QEMU device (and Linux driver) name.
    pub fn name(self) -> &'static str {
        match self {
            Model::E1000 => "e1000",
            Model::E1000e => "e1000e",
        }
    }
}

/// A MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mac(pub [u8; 6]);

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

/// What STATUS says about the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    /// STATUS.LU.
    pub up: bool,
    /// 10, 100 or 1000.
    pub mbps: u32,
    /// STATUS.FD.
    pub full_duplex: bool,
}

impl fmt::Display for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.up {
            return f.write_str("down");
        }
        let duplex = if self.full_duplex { "full" } else { "half" };
        write!(f, "up, {} Mb/s {duplex} duplex", self.mbps)
    }
}

/// The NIC's own packet counters (they clear on read; [`Nic::hw_stats`] accumulates them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HwStats {
    /// GPTC: good packets transmitted.
    pub tx_packets: u64,
    /// GPRC: good packets received.
    pub rx_packets: u64,
    /// MPC: packets missed for lack of a receive descriptor.
    pub rx_missed: u64,
    /// RNBC: times the receiver found no free descriptor.
    pub rx_no_buffer: u64,
    /// CRCERRS.
    pub crc_errors: u64,
}

/// Errors of this driver: the library's, plus the device's own misbehaviour.
#[derive(Debug)]
pub enum NicError {
    /// A uvfio call failed.
    Vfio(uvfio::Error),
    /// The device did something the driver cannot work with.
    Device(String),
}

impl fmt::Display for NicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NicError::Vfio(e) => write!(f, "{e}"),
            NicError::Device(s) => f.write_str(s),
        }
    }
}

impl std::error::Error for NicError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            NicError::Vfio(e) => Some(e),
            NicError::Device(_) => None,
        }
    }
}

impl From<uvfio::Error> for NicError {
    fn from(e: uvfio::Error) -> Self {
        NicError::Vfio(e)
    }
}

/// The driver's result type.
pub type Result<T> = std::result::Result<T, NicError>;

/// Ring and buffer sizes for [`Nic::open`].
#[derive(Debug, Clone, Copy)]
pub struct QueueConfig {
    /// Descriptors per ring (a multiple of 8, 8..=4096).
    pub ring_size: usize,
    /// Packet buffers beyond one per descriptor, per queue.
    pub spare_buffers: usize,
    /// Receive every unicast frame, whatever its destination (RCTL.UPE/MPE).
    pub promiscuous: bool,
}

/// An initialised NIC with one RX and one TX queue, bound through VFIO.
///
/// Dropping it stops the NIC (receiver and transmitter off, interrupts masked, bus mastering
/// off) *before* its rings and buffers are unmapped: the fields drop after [`Drop::drop`],
/// in declaration order.
pub struct Nic {
    /// The receive queue.
    pub rx: RxQueue,
    /// The transmit queue.
    pub tx: TxQueue,
    bar: Region,
    config: PciConfig,
    device: Device,
    address: PciAddress,
    model: Model,
    mac: Mac,
    stats: HwStats,
}

impl fmt::Debug for Nic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Nic")
            .field("address", &self.address.to_string())
            .field("model", &self.model)
            .field("mac", &self.mac.to_string())
            .finish_non_exhaustive()
    }
}

/// How long a reset may take before the driver gives up.
const RESET_TIMEOUT: Duration = Duration::from_millis(100);

impl Nic {
    /// Opens the NIC at `address` in `space`, resets it, and brings it up with fresh
    /// rings: receiver and transmitter enabled, every interrupt cause masked.
    ///
    /// The link may still be coming up when this returns; see [`Nic::wait_link`].
    pub fn open(space: &DmaSpace, address: &PciAddress, queues: QueueConfig) -> Result<Nic> {
        let device = space.open_pci_device(address)?;
        let config = device.pci_config()?;
        let (vendor, device_id) = (config.vendor_id()?, config.device_id()?);
        let model = Model::from_ids(vendor, device_id).ok_or_else(|| {
            NicError::Device(format!(
                "{address} is {vendor:04x}:{device_id:04x}, not an 82540EM (8086:100e) or \
                 82574L (8086:10d3)"
            ))
        })?;
        // Registers first: memory decoding on, BAR0 mapped.
        config.enable_memory_space()?;
        let bar = device.region(RegionIndex::BAR0)?;
        let rx = RxQueue::new(space, queues.ring_size, queues.spare_buffers)?;
        let tx = TxQueue::new(space, queues.ring_size, queues.spare_buffers)?;
        let mut nic = Nic {
            rx,
            tx,
            bar,
            config,
            device,
            address: *address,
            model,
            mac: Mac([0; 6]),
            stats: HwStats::default(),
        };
        nic.reset()?;
        // DMA may start only now that the rings a previous user left behind are forgotten;
        // QEMU drops every received frame while bus mastering is off.
        nic.config.set_bus_master(true)?;
        nic.init(queues.promiscuous)?;
        Ok(nic)
    }

    /// Stops DMA and interrupts, then resets the MAC.
    fn reset(&mut self) -> Result<()> {
        let bar = &self.bar;
        bar.write_u32(regs::IMC, regs::INT_ALL)?;
        bar.write_u32(regs::RCTL, 0)?;
        bar.write_u32(regs::TCTL, regs::TCTL_PSP)?;
        // A read flushes the posted writes; then give DMA in flight time to finish.
        bar.read_u32(regs::STATUS)?;
        sleep(Duration::from_millis(10));

        let ctrl = bar.read_u32(regs::CTRL)?;
        bar.write_u32(regs::CTRL, ctrl | regs::CTRL_RST)?;
        // The manual asks for a 1 us wait before touching registers again.
        sleep(Duration::from_millis(1));
        let start = Instant::now();
        while bar.read_u32(regs::CTRL)? & regs::CTRL_RST != 0 {
            if start.elapsed() > RESET_TIMEOUT {
                return Err(NicError::Device(format!(
                    "{}: CTRL.RST still set {RESET_TIMEOUT:?} after the reset",
                    self.address
                )));
            }
            sleep(Duration::from_millis(1));
        }
        // The reset unmasks nothing, but be explicit, and drop causes raised before it.
        bar.write_u32(regs::IMC, regs::INT_ALL)?;
        bar.read_u32(regs::ICR)?;
        Ok(())
    }

    /// Link, address filters, rings, receiver and transmitter.
    ///
    /// Every register the data path depends on is written, none is assumed to hold its reset
    /// value: the reset may not have reset it. QEMU's e1000 ignores CTRL.RST but for the bit;
    /// QEMU 7.2's e1000e reloads only the MAC address on it; neither has a working VFIO reset
    /// (the e1000 offers none, the e1000e's is the PCI power-management one, D3hot to D0,
    /// which QEMU does not turn into a reset). A NIC that Linux's e1000e driver had before is
    /// left with extended RX descriptors, VLAN mode, interrupt throttling and auto-masking.
    fn init(&mut self, promiscuous: bool) -> Result<()> {
        let bar = &self.bar;
        // Link: set link up, let the MAC follow the PHY's speed; no VLAN mode.
        let ctrl = bar.read_u32(regs::CTRL)?;
        bar.write_u32(
            regs::CTRL,
            (ctrl | regs::CTRL_SLU | regs::CTRL_ASDE) & !regs::CTRL_VME,
        )?;
        // Interrupts: no throttling, no offloads in the descriptors.
        bar.write_u32(regs::ITR, 0)?;
        bar.write_u32(regs::RXCSUM, 0)?;
        if self.model == Model::E1000e {
            // Legacy RX descriptors, one queue (no RSS), no interrupt auto-masking or
            // auto-clearing.
            bar.write_u32(regs::RFCTL, 0)?;
            bar.write_u32(regs::MRQC, 0)?;
            let ext = bar.read_u32(regs::CTRL_EXT)?;
            bar.write_u32(
                regs::CTRL_EXT,
                ext & !(regs::CTRL_EXT_IAME | regs::CTRL_EXT_EIAME),
            )?;
            bar.write_u32(regs::IAM, 0)?;
            bar.write_u32(regs::EIAC, 0)?;
        }

        // Address filters: our MAC in receive address 0 (loaded from the EEPROM by the reset,
        // valid bit set), no multicast groups.
        let ral = bar.read_u32(regs::RAL0)?;
        let rah = bar.read_u32(regs::RAH0)?;
        if rah & regs::RAH_AV == 0 {
            return Err(NicError::Device(format!(
                "{}: receive address 0 is not valid after reset (RAH0 = {rah:#010x}); \
                 this driver takes the MAC address from there",
                self.address
            )));
        }
        let [m0, m1, m2, m3] = ral.to_le_bytes();
        let [m4, m5, _, _] = rah.to_le_bytes();
        self.mac = Mac([m0, m1, m2, m3, m4, m5]);
        for i in 0..regs::MTA_LEN {
            bar.write_u32(regs::MTA + 4 * i, 0)?;
        }

        // Clear the statistics (they clear on read).
        self.stats = HwStats::default();
        self.read_hw_stats()?;
        self.stats = HwStats::default();

        // Interrupt moderation off: with interrupts on, every write-back raises one at once.
        self.bar.write_u32(regs::RDTR, 0)?;
        self.bar.write_u32(regs::RADV, 0)?;
        self.bar.write_u32(regs::TIDV, 0)?;
        self.bar.write_u32(regs::TADV, 0)?;

        // Receive: ring, then the receiver (2 KiB buffers, broadcast, CRC stripped).
        self.rx.start(&self.bar)?;
        let mut rctl = regs::RCTL_EN | regs::RCTL_BAM | regs::RCTL_SECRC | regs::RCTL_BSIZE_2048;
        if promiscuous {
            rctl |= regs::RCTL_UPE | regs::RCTL_MPE;
        }
        self.bar.write_u32(regs::RCTL, rctl)?;

        // Transmit: ring, gap, then the transmitter (pad short frames, full duplex).
        self.tx.start(&self.bar)?;
        self.bar.write_u32(regs::TIPG, regs::TIPG_DEFAULT)?;
        self.bar.write_u32(
            regs::TCTL,
            regs::TCTL_EN | regs::TCTL_PSP | regs::TCTL_CT | regs::TCTL_COLD,
        )?;
        Ok(())
    }

    /// The PCI address.
    pub fn address(&self) -> &PciAddress {
        &self.address
    }

    /// The model.
    pub fn model(&self) -> Model {
        self.model
    }

    /// The MAC address (receive address 0).
    pub fn mac(&self) -> Mac {
        self.mac
    }

    /// BAR0, for the queues' tail writes.
    pub fn bar(&self) -> &Region {
        &self.bar
    }

    /// The link state now.
    pub fn link(&self) -> Result<Link> {
        let status = self.bar.read_u32(regs::STATUS)?;
        let mbps = match (status >> regs::STATUS_SPEED_SHIFT) & regs::STATUS_SPEED_MASK {
            0 => 10,
            1 => 100,
            _ => 1000,
        };
        Ok(Link {
            up: status & regs::STATUS_LU != 0,
            mbps,
            full_duplex: status & regs::STATUS_FD != 0,
        })
    }

    /// Waits up to `timeout` for the link to come up; returns the last state seen.
    pub fn wait_link(&self, timeout: Duration) -> Result<Link> {
        let start = Instant::now();
        loop {
            let link = self.link()?;
            if link.up || start.elapsed() >= timeout {
                return Ok(link);
            }
            sleep(Duration::from_millis(10));
        }
    }

    /// Reads the NIC's packet counters and adds them to the totals since [`Nic::open`].
    pub fn read_hw_stats(&mut self) -> Result<HwStats> {
        let bar = &self.bar;
        let s = &mut self.stats;
        s.tx_packets += u64::from(bar.read_u32(regs::GPTC)?);
        s.rx_packets += u64::from(bar.read_u32(regs::GPRC)?);
        s.rx_missed += u64::from(bar.read_u32(regs::MPC)?);
        s.rx_no_buffer += u64::from(bar.read_u32(regs::RNBC)?);
        s.crc_errors += u64::from(bar.read_u32(regs::CRCERRS)?);
        Ok(*s)
    }

    /// The registers that tell why frames do not flow, for error messages.
    pub fn diagnostics(&self) -> String {
        let r = |off| {
            self.bar
                .read_u32(off)
                .map_or_else(|e| format!("({e})"), |v| format!("{v:#x}"))
        };
        format!(
            "STATUS {} CTRL {} CTRL_EXT {} RFCTL {} MRQC {} RCTL {} TCTL {} RDH/RDT {}/{} TDH/TDT {}/{} ICR {}",
            r(regs::STATUS),
            r(regs::CTRL),
            r(regs::CTRL_EXT),
            r(regs::RFCTL),
            r(regs::MRQC),
            r(regs::RCTL),
            r(regs::TCTL),
            r(regs::RDH),
            r(regs::RDT),
            r(regs::TDH),
            r(regs::TDT),
            r(regs::ICR)
        )
    }

    /// Sends what was pushed to the TX queue: one doorbell write.
    #[inline]
    pub fn flush_tx(&mut self) -> Result<usize> {
        Ok(self.tx.flush(&self.bar)?)
    }

    /// Polls the RX queue (see [`RxQueue::poll`]).
    #[inline]
    pub fn poll_rx(
        &mut self,
        budget: usize,
        deliver: impl FnMut(crate::rings::RxFrame),
    ) -> Result<usize> {
        Ok(self.rx.poll(&self.bar, budget, deliver)?)
    }

    /// Enables interrupts: INTx on the 82540EM, MSI-X on the 82574L (RX queue 0 on vector 0,
    /// TX queue 0 on vector 1, other causes on vector 2), and unmasks the RX, TX and link
    /// causes. The returned handle owns the eventfds; dropping it disables them again.
    pub fn enable_interrupts(&self) -> Result<NicIrq> {
        match self.model {
            Model::E1000 => {
                let intx = self.device.enable_irqs(IrqIndex::INTX, 1)?;
                self.bar.read_u32(regs::ICR)?;
                self.bar.write_u32(
                    regs::IMS,
                    regs::INT_RXT0 | regs::INT_RXO | regs::INT_TXDW | regs::INT_LSC,
                )?;
                Ok(NicIrq {
                    interrupts: intx,
                    intx: true,
                    vectors: vec![0],
                })
            }
            Model::E1000e => {
                let msix = self.device.enable_irqs(IrqIndex::MSIX, 3)?;
                // Each IVAR entry is "valid | vector".
                let ivar = (regs::IVAR_VALID << regs::IVAR_RXQ0_SHIFT)
                    | ((regs::IVAR_VALID | 1) << regs::IVAR_TXQ0_SHIFT)
                    | ((regs::IVAR_VALID | 2) << regs::IVAR_OTHER_SHIFT);
                self.bar.write_u32(regs::IVAR, ivar)?;
                let icr = self.bar.read_u32(regs::ICR)?;
                self.bar.write_u32(regs::ICR, icr)?;
                self.bar.write_u32(
                    regs::IMS,
                    regs::INT_RXQ0 | regs::INT_TXQ0 | regs::INT_OTHER | regs::INT_LSC,
                )?;
                Ok(NicIrq {
                    interrupts: msix,
                    intx: false,
                    vectors: vec![0, 1, 2],
                })
            }
        }
    }

    /// Reads and clears the interrupt causes, for an interrupt handler to call *before* it
    /// processes the rings: a frame that arrives after this raises a new interrupt.
    pub fn take_interrupt_causes(&self) -> Result<u32> {
        let icr = self.bar.read_u32(regs::ICR)?;
        if self.model == Model::E1000e && icr != 0 {
            // With MSI-X, reading ICR does not clear it on the 82574: write the bits back.
            self.bar.write_u32(regs::ICR, icr)?;
        }
        Ok(icr)
    }

    /// Stops the NIC: interrupts masked, receiver and transmitter off, bus mastering off. The
    /// rings stay allocated (they are freed when the `Nic` drops, after this has run).
    pub fn stop(&self) -> Result<()> {
        self.bar.write_u32(regs::IMC, regs::INT_ALL)?;
        self.bar.write_u32(regs::RCTL, 0)?;
        self.bar.write_u32(regs::TCTL, 0)?;
        self.bar.read_u32(regs::STATUS)?;
        self.bar.read_u32(regs::ICR)?;
        self.config.set_bus_master(false)?;
        Ok(())
    }
}

impl Drop for Nic {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("nic: stopping {} failed: {e}", self.address);
        }
    }
}

/// A NIC's interrupt vectors, as [`Nic::enable_interrupts`] set them up.
#[derive(Debug)]
pub struct NicIrq {
    interrupts: Interrupts,
    intx: bool,
    vectors: Vec<u32>,
}

impl NicIrq {
    /// The eventfd-backed handle, to wait on.
    pub fn interrupts(&self) -> &Interrupts {
        &self.interrupts
    }

    /// The vectors in use.
    pub fn vectors(&self) -> &[u32] {
        &self.vectors
    }

    /// "INTx" or "MSI-X".
    pub fn kind(&self) -> &'static str {
        if self.intx {
            "INTx"
        } else {
            "MSI-X"
        }
    }

    /// Re-enables `vector` after it was handled: vfio-pci masks level-triggered INTx each time
    /// it fires (the line stays asserted until the device's causes are cleared), so it is
    /// unmasked here; MSI-X needs nothing.
    pub fn rearm(&self, vector: u32) -> Result<()> {
        if self.intx {
            self.interrupts.unmask(vector)?;
        }
        Ok(())
    }
}
