//! `--bench`: TX and RX packet rates of this driver against Linux's `e1000`/`e1000e` driver,
//! on the same two NICs, in the same run.
//!
//! # Method
//!
//! NIC A sends [`FRAMES`] frames (`--count`) to NIC B as fast as the driver can, B receives them, and
//! both drivers get **one CPU** for all of it:
//!
//! - this driver: the single-threaded polling loop of [`crate::traffic`] (a batch of
//!   [`BATCH`] frames, one TDT write; receive up to a batch, one RDT write; repeat), checking
//!   the 38-byte header (sequence number, length) of every frame;
//! - Linux: the NICs are handed to `e1000`/`e1000e` through sysfs, both interfaces go up (IPv6
//!   off, so nothing else is on the link), `pktgen` sends from A on CPU 0 (`clone_skb`: no
//!   allocation per packet; `burst` 1, and 32 which batches the doorbell as this driver does),
//!   and both NICs' interrupts are pinned to CPU 0, so B's NAPI poll runs there too. Afterwards
//!   the NICs go back to vfio-pci. Linux runs twice: with the NICs' IOMMU groups as the kernel
//!   set them up (DMA translation: every packet is mapped and unmapped, and with the emulated
//!   VT-d's caching mode each of those is a synchronous IOTLB invalidation QEMU emulates),
//!   and with the groups switched to `identity` (passthrough, no per-packet IOMMU work), the
//!   fairer comparison with a driver that maps its buffers once.
//!
//! One CPU each, because the emulated host has two vCPUs on a host that may be busy with other
//! work: a measurement spread over two vCPUs would measure the host's scheduler.
//!
//! Figures:
//!
//! - **TX rate**: frames / time to hand them all to NIC A (for Linux: pktgen's own figure);
//! - **RX rate**: frames received / time until the last one arrived (for Linux: B's
//!   `rx_packets`, sampled every millisecond from the other CPU; frames between the first
//!   sample that moved and the last one, over the time between them, which leaves pktgen's
//!   start-up out and favours Linux slightly);
//! - **lost**: sent and never received. QEMU does a NIC's work inside the register write that
//!   asks for it: a TDT write sends the batch and writes the frames into B's ring right away;
//!   a frame that finds B's ring full waits in the hub until B's next RDT write, and on the
//!   e1000 model is dropped then if the ring is full again (an overrun). A receiver slower than
//!   its sender loses frames.
//!
//! Rings are 256 descriptors on both sides (Linux's default for both drivers). uvfio and Linux
//! alternate, [`REPS`] times (`--runs`), and each figure is the median, so that a change of load on the
//! host hits both. The "full check" row writes and verifies every byte of every frame.

use std::error::Error;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

use uvfio::pci::sysfs::Sysfs;
use uvfio::pci::PciAddress;
use uvfio::IommuMode;

use crate::device::{Mac, Model, Nic, QueueConfig};
use crate::packets::{FrameBuilder, FrameChecker, Payload, Sizes};
use crate::regs;
use crate::stats::Rate;
use crate::traffic::{self, Mode, TrafficConfig};

type Res<T> = Result<T, Box<dyn Error>>;

/// Frames per measurement, unless `--count` says otherwise.
pub const FRAMES: u64 = 50_000;
/// Measurements per figure (the median is reported), unless `--runs` says otherwise.
pub const REPS: usize = 3;
/// Frame sizes without FCS: 64 and 1518 bytes on the wire.
pub const SIZES: [usize; 2] = [60, 1514];
/// Descriptors per ring, as Linux's drivers default to.
pub const RING: usize = 256;
/// Frames per doorbell.
pub const BATCH: usize = 32;
/// pktgen's `burst` settings.
pub const BURSTS: [u32; 2] = [1, 32];

/// One measurement.
#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    tx_pps: f64,
    rx_pps: f64,
    /// Frames sent and never received.
    lost: u64,
    /// Frames received twice or damaged: a driver bug, unlike losses.
    damaged: u64,
    /// This driver: share of the loop's time in TDT writes (QEMU sending, and writing the
    /// frames into B's ring).
    tdt_share: f64,
    /// This driver: share of the loop's time in RDT writes.
    rdt_share: f64,
}

/// The samples of one row of the table, per frame size.
#[derive(Debug, Clone)]
struct Row {
    label: String,
    samples: Vec<Vec<Sample>>,
}

impl Row {
    fn new(label: String) -> Row {
        Row {
            label,
            samples: vec![Vec::new(); SIZES.len()],
        }
    }

    /// The median of each figure, per size.
    fn medians(&self) -> Vec<Sample> {
        fn median(mut v: Vec<f64>) -> f64 {
            v.sort_by(f64::total_cmp);
            v.get(v.len() / 2).copied().unwrap_or(0.0)
        }
        self.samples
            .iter()
            .map(|s| Sample {
                tx_pps: median(s.iter().map(|x| x.tx_pps).collect()),
                rx_pps: median(s.iter().map(|x| x.rx_pps).collect()),
                lost: s.iter().map(|x| x.lost).sum(),
                damaged: s.iter().map(|x| x.damaged).sum(),
                tdt_share: median(s.iter().map(|x| x.tdt_share).collect()),
                rdt_share: median(s.iter().map(|x| x.rdt_share).collect()),
            })
            .collect()
    }
}

/// How much to measure.
#[derive(Debug, Clone, Copy)]
pub struct BenchConfig {
    /// Frames per measurement.
    pub frames: u64,
    /// Measurements per figure.
    pub reps: usize,
    /// The IOMMU backend of this driver's side.
    pub iommu: IommuMode,
}

/// Runs the benchmark on each pair; returns whether no frame was damaged or duplicated
/// (losses under overload are reported, not failures).
pub fn run(pairs: &[[PciAddress; 2]], cfg: BenchConfig) -> Res<bool> {
    let BenchConfig { frames, reps, .. } = cfg;
    println!(
        "nic bench: {frames} frames A -> B per measurement, one CPU per driver, rings of \
         {RING}, uvfio and Linux alternating {reps} times (medians)"
    );
    let kernel = kernel_available();
    if let Err(why) = &kernel {
        println!("  the Linux half is skipped: {why}");
    }
    let mut ok = true;
    for addrs in pairs {
        let mut user = Row::new("uvfio, polling, header check".into());
        let mut full = Row::new("uvfio, polling, full check".into());
        let mut linux_rows: Vec<Row> = Vec::new();
        let mut model = None;
        for rep in 0..reps {
            let (m, macs) = userspace(addrs, rep, cfg, &mut user, &mut full)?;
            model = Some(m);
            if kernel.is_ok() {
                if linux_rows.is_empty() {
                    for domain in ["IOMMU", "passthrough"] {
                        linux_rows.extend(
                            BURSTS.iter().map(|b| {
                                Row::new(format!("Linux {}, {domain}, burst {b}", m.name()))
                            }),
                        );
                    }
                }
                let (translated, passthrough) = linux_rows.split_at_mut(BURSTS.len());
                linux(addrs, m, macs, frames, None, translated)?;
                linux(addrs, m, macs, frames, Some("identity"), passthrough)?;
            }
        }
        let model = model.ok_or("no measurement (--runs 0?)")?;
        let mut rows = vec![user, full];
        rows.extend(linux_rows);
        ok &= rows
            .iter()
            .all(|r| r.medians().iter().all(|c| c.damaged == 0));
        print_table(model, &rows, cfg);
    }
    Ok(ok)
}

fn print_table(model: Model, rows: &[Row], cfg: BenchConfig) {
    let cell = |s: String| format!("{s:>12}");
    println!();
    println!(
        "{} pair, packets per second (sizes without the 4-byte FCS):",
        model.name()
    );
    print!("  {:<38}", "");
    for s in SIZES {
        print!("{}{}", cell(format!("{s} B TX")), cell(format!("{s} B RX")));
    }
    println!();
    let medians: Vec<Vec<Sample>> = rows.iter().map(Row::medians).collect();
    for (r, m) in rows.iter().zip(&medians) {
        print!("  {:<38}", r.label);
        for c in m {
            print!(
                "{}{}",
                cell(Rate(c.tx_pps).to_string()),
                cell(Rate(c.rx_pps).to_string())
            );
        }
        let lost: u64 = m.iter().map(|c| c.lost).sum();
        let damaged: u64 = m.iter().map(|c| c.damaged).sum();
        let total = cfg.frames * (cfg.reps * SIZES.len()) as u64;
        if lost > 0 {
            print!("  lost {lost} of {total}");
        }
        if damaged > 0 {
            print!("  DAMAGED {damaged}");
        }
        println!();
    }
    let linux: Vec<&Vec<Sample>> = rows
        .iter()
        .zip(&medians)
        .filter(|(r, _)| r.label.starts_with("Linux"))
        .map(|(_, m)| m)
        .collect();
    let user = &medians[0];
    if !linux.is_empty() {
        print!("  {:<38}", "ratio uvfio / best Linux");
        for (i, c) in user.iter().enumerate() {
            let best_tx = linux.iter().map(|m| m[i].tx_pps).fold(0.0, f64::max);
            let best_rx = linux.iter().map(|m| m[i].rx_pps).fold(0.0, f64::max);
            print!(
                "{}{}",
                cell(format!("{:.2}", c.tx_pps / best_tx)),
                cell(format!("{:.2}", c.rx_pps / best_rx))
            );
        }
        println!();
    }
    print!("  {:<38}", "uvfio: time in TDT / RDT writes");
    for c in user {
        print!(
            "{}{}",
            cell(format!("{:.0} %", 100.0 * c.tdt_share)),
            cell(format!("{:.0} %", 100.0 * c.rdt_share))
        );
    }
    println!();
}

// ---- This driver ---------------------------------------------------------------------------

/// Measures this driver once per size, header check and full check, adding to the rows;
/// returns the model and the MACs (A, B).
fn userspace(
    addrs: &[PciAddress; 2],
    rep: usize,
    cfg: BenchConfig,
    user: &mut Row,
    full: &mut Row,
) -> Res<(Model, [Mac; 2])> {
    let space = super::open_space(cfg.iommu)?;
    let queues = QueueConfig {
        ring_size: RING,
        spare_buffers: 2 * BATCH,
        promiscuous: false,
    };
    let mut a = Nic::open(&space, &addrs[0], queues)?;
    let mut b = Nic::open(&space, &addrs[1], queues)?;
    for nic in [&a, &b] {
        if !nic.wait_link(Duration::from_secs(3))?.up {
            return Err(format!("{}: link down", nic.address()).into());
        }
    }
    let base = crate::run_id();
    {
        let sizes = Sizes { min: 60, max: 60 };
        let mut builder = FrameBuilder::new(b.mac(), a.mac(), base, sizes, Payload::HeaderOnly);
        let mut checker = FrameChecker::new(b.mac(), a.mac(), base, Payload::HeaderOnly);
        let timeout = Duration::from_secs(5);
        traffic::wait_until_ready(&mut a, &mut b, &mut builder, &mut checker, timeout)?;
    }
    if rep == 0 {
        mmio_costs(&a)?;
    }
    for (row, payload) in [(user, Payload::HeaderOnly), (full, Payload::Full)] {
        for (si, &size) in SIZES.iter().enumerate() {
            let run = base.wrapping_add((si + 1) as u32 * 2 + (payload == Payload::Full) as u32);
            let sizes = Sizes {
                min: size,
                max: size,
            };
            let mut builder = FrameBuilder::new(b.mac(), a.mac(), run, sizes, payload);
            let mut checker = FrameChecker::new(b.mac(), a.mac(), run, payload);
            let s = measure_userspace(&mut a, &mut b, cfg.frames, &mut builder, &mut checker)?;
            println!(
                "  [{}] {:<38} {size:>4} B: TX {:>10}  RX {:>10}  lost {}  ({:.0} % of the time in TDT writes, {:.0} % in RDT writes)",
                rep + 1,
                format!("{} {}", a.model().name(), row.label),
                Rate(s.tx_pps).to_string(),
                Rate(s.rx_pps).to_string(),
                s.lost,
                100.0 * s.tdt_share,
                100.0 * s.rdt_share,
            );
            row.samples[si].push(s);
        }
    }
    Ok((a.model(), [a.mac(), b.mac()]))
}

/// What one register access costs: the floor under every doorbell.
fn mmio_costs(nic: &Nic) -> Res<()> {
    const N: u32 = 2000;
    let bar = nic.bar();
    let t = Instant::now();
    for _ in 0..N {
        bar.read_u32(regs::STATUS)?;
    }
    let read = t.elapsed() / N;
    let t = Instant::now();
    for _ in 0..N {
        // Writing 0 to IMC masks nothing: a register write with no effect.
        bar.write_u32(regs::IMC, 0)?;
    }
    let write = t.elapsed() / N;
    println!(
        "  {} register access: read (STATUS) {:.2} us, write (IMC, no effect) {:.2} us",
        nic.model().name(),
        read.as_secs_f64() * 1e6,
        write.as_secs_f64() * 1e6
    );
    Ok(())
}

fn measure_userspace(
    a: &mut Nic,
    b: &mut Nic,
    frames: u64,
    builder: &mut FrameBuilder,
    checker: &mut FrameChecker,
) -> Res<Sample> {
    let cfg = TrafficConfig {
        count: frames,
        batch: BATCH,
        window: 0,
        mode: Mode::Polling,
        idle_timeout: Duration::from_millis(500),
        progress: false,
    };
    let (tdt0, rdt0) = (a.tx.doorbells.time, b.rx.doorbells.time);
    let o = traffic::run(a, b, None, &cfg, builder, checker)?;
    let total = o.total_time.as_secs_f64().max(1e-9);
    let t = &o.tally;
    Ok(Sample {
        tx_pps: o.tx_rate().0,
        rx_pps: o.rx_rate().0,
        lost: t.lost(o.sent),
        damaged: t.duplicated + t.corrupted + t.rx_errors,
        tdt_share: (a.tx.doorbells.time - tdt0).as_secs_f64() / total,
        rdt_share: (b.rx.doorbells.time - rdt0).as_secs_f64() / total,
    })
}

// ---- Linux's driver ------------------------------------------------------------------------

const PKTGEN: &str = "/proc/net/pktgen";

/// Whether the kernel half can run: NIC drivers and pktgen loaded.
fn kernel_available() -> Result<(), String> {
    let hint = "run tests/vm/nic-bench.sh, which loads e1000, e1000e and pktgen in the VM";
    for d in ["e1000", "e1000e"] {
        if !Path::new("/sys/bus/pci/drivers").join(d).exists() {
            return Err(format!("the {d} driver is not loaded ({hint})"));
        }
    }
    if !Path::new(PKTGEN).join("pgctrl").exists() {
        return Err(format!("pktgen is not loaded ({hint})"));
    }
    Ok(())
}

fn write(path: impl AsRef<Path>, value: &str) -> Res<()> {
    let path = path.as_ref();
    fs::write(path, value)
        .map_err(|e| format!("writing {value:?} to {}: {e}", path.display()).into())
}

fn read(path: impl AsRef<Path>) -> Res<String> {
    let path = path.as_ref();
    fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()).into())
}

/// A NIC on its kernel driver.
struct KernelNic {
    address: PciAddress,
    ifname: String,
    /// The group's type file and the type to put back.
    restore: Option<(PathBuf, String)>,
}

impl KernelNic {
    /// Moves the NIC from vfio-pci to its kernel driver and finds its interface. With
    /// `domain` (`"identity"`), the NIC's IOMMU group is switched to that default-domain type
    /// while no driver holds it, and switched back by [`KernelNic::release`].
    fn bind(address: PciAddress, driver: &str, domain: Option<&str>) -> Res<KernelNic> {
        let dev = PathBuf::from(format!("/sys/bus/pci/devices/{address}"));
        write(dev.join("driver_override"), "\n")?;
        if dev.join("driver").exists() {
            write(dev.join("driver/unbind"), &address.to_string())?;
        }
        let group = Sysfs::new().iommu_group(&address)?;
        let type_file = PathBuf::from(format!("/sys/kernel/iommu_groups/{group}/type"));
        let mut restore = None;
        if let Some(domain) = domain {
            let old = read(&type_file)?.trim().to_string();
            write(&type_file, domain)?;
            restore = Some((type_file, old));
        }
        write("/sys/bus/pci/drivers_probe", &address.to_string())?;
        let nic = KernelNic {
            address,
            ifname: String::new(),
            restore,
        };
        let bound = fs::read_link(dev.join("driver")).ok();
        if bound.as_ref().and_then(|p| p.file_name()) != Some(driver.as_ref()) {
            let _ = nic.release();
            return Err(format!("{address}: {driver} did not take the device").into());
        }
        let ifname = fs::read_dir(dev.join("net"))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .next()
            .ok_or_else(|| format!("{address}: no network interface"))?;
        // No IPv6 chatter (router solicitations, MLD) on the link.
        let _ = write(
            format!("/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6"),
            "1",
        );
        Ok(KernelNic { ifname, ..nic })
    }

    /// The NIC's IOMMU domain type now (`DMA`, `DMA-FQ`, `identity`).
    fn domain(&self) -> String {
        Sysfs::new()
            .iommu_group(&self.address)
            .ok()
            .and_then(|g| read(format!("/sys/kernel/iommu_groups/{g}/type")).ok())
            .map_or_else(|| "?".into(), |t| t.trim().to_string())
    }

    /// The NIC's interrupt numbers (INTx, or MSI/MSI-X as allocated once the interface is
    /// up).
    fn irqs(&self) -> Res<Vec<String>> {
        let dev = PathBuf::from(format!("/sys/bus/pci/devices/{}", self.address));
        let mut irqs: Vec<String> = fs::read_dir(dev.join("msi_irqs"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        if irqs.is_empty() {
            irqs.push(read(dev.join("irq"))?.trim().to_string());
        }
        Ok(irqs)
    }

    /// Pins the NIC's interrupts to CPU 0.
    fn pin_irqs(&self) -> Res<()> {
        for irq in self.irqs()? {
            write(format!("/proc/irq/{irq}/smp_affinity_list"), "0")?;
        }
        Ok(())
    }

    /// Interrupts the NIC raised so far, on all CPUs (from /proc/interrupts).
    fn interrupts(&self) -> Res<u64> {
        let irqs = self.irqs()?;
        let table = read("/proc/interrupts")?;
        let mut total = 0;
        for line in table.lines() {
            let mut words = line.split_whitespace();
            let Some(irq) = words.next().and_then(|w| w.strip_suffix(':')) else {
                continue;
            };
            if irqs.iter().any(|i| i == irq) {
                total += words.map_while(|w| w.parse::<u64>().ok()).sum::<u64>();
            }
        }
        Ok(total)
    }

    fn class(&self, file: &str) -> PathBuf {
        Path::new("/sys/class/net").join(&self.ifname).join(file)
    }

    /// Sets or clears IFF_UP through sysfs (what `ip link set up/down` does).
    fn set_up(&self, up: bool) -> Res<()> {
        let flags = read(self.class("flags"))?;
        let flags = u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16)?;
        let flags = if up { flags | 1 } else { flags & !1 };
        write(self.class("flags"), &format!("{flags:#x}"))
    }

    fn wait_carrier(&self, timeout: Duration) -> Res<()> {
        let t = Instant::now();
        while !read(self.class("carrier")).is_ok_and(|c| c.trim() == "1") {
            if t.elapsed() > timeout {
                return Err(format!("{}: no carrier after {timeout:?}", self.ifname).into());
            }
            sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    fn counter(&self, name: &str) -> Res<u64> {
        Ok(read(self.class(&format!("statistics/{name}")))?
            .trim()
            .parse()?)
    }

    /// Gives the NIC back to vfio-pci (with the library's sysfs binding, kept), after putting
    /// its IOMMU group's type back.
    fn release(self) -> Res<()> {
        if !self.ifname.is_empty() {
            let _ = self.set_up(false);
        }
        if let Some((file, old)) = &self.restore {
            let dev = PathBuf::from(format!("/sys/bus/pci/devices/{}", self.address));
            if dev.join("driver").exists() {
                write(dev.join("driver/unbind"), &self.address.to_string())?;
            }
            write(file, old)?;
        }
        Sysfs::new().bind_vfio_pci(&self.address)?.keep();
        Ok(())
    }
}

/// pktgen's control files take one command per write, and drop the last byte of it (meant to
/// be the newline).
fn pktgen_cmd(file: impl AsRef<Path>, cmd: &str) -> Res<()> {
    write(file, &format!("{cmd}\n"))
}

/// Sends `frames` frames of `size` bytes from `a` to `dst` with pktgen on CPU 0; returns the
/// rate pktgen reports.
fn pktgen(a: &KernelNic, dst: Mac, frames: u64, size: usize, burst: u32) -> Res<f64> {
    let thread = Path::new(PKTGEN).join("kpktgend_0");
    pktgen_cmd(&thread, "rem_device_all")?;
    pktgen_cmd(&thread, &format!("add_device {}", a.ifname))?;
    let dev = Path::new(PKTGEN).join(&a.ifname);
    for cmd in [
        format!("count {frames}"),
        format!("pkt_size {size}"),
        "clone_skb 1000000".to_string(),
        format!("burst {burst}"),
        "delay 0".to_string(),
        "dst 10.99.0.2".to_string(),
        format!("dst_mac {dst}"),
    ] {
        pktgen_cmd(&dev, &cmd)?;
    }
    pktgen_cmd(Path::new(PKTGEN).join("pgctrl"), "start")?;
    let result = read(&dev)?;
    // "Result: OK: 81234(c80000+d1234) usec, 8000 (60byte,0frags)\n  98481pps 47Mb/sec ..."
    if !result.contains("Result: OK") {
        return Err(format!("pktgen: {result}").into());
    }
    let pps = result
        .split_whitespace()
        .find_map(|w| w.strip_suffix("pps").and_then(|n| n.parse::<f64>().ok()))
        .ok_or_else(|| format!("no rate in pktgen's result: {result}"))?;
    Ok(pps)
}

/// Samples B's `rx_packets` every millisecond until `expected` more arrived, or the sender
/// is done and the counter stood still for 200 ms; returns the rate and the frames counted.
fn count_rx(b: &KernelNic, expected: u64, sending: &AtomicBool) -> Result<(f64, u64), String> {
    let counter = || b.counter("rx_packets").map_err(|e| e.to_string());
    let base = counter()?;
    let mut first: Option<(Instant, u64)> = None;
    let mut last = (Instant::now(), 0);
    loop {
        sleep(Duration::from_millis(1));
        let n = counter()? - base;
        let now = Instant::now();
        if n != last.1 {
            last = (now, n);
            if first.is_none() {
                first = Some((now, n));
            }
        }
        if n >= expected
            || (!sending.load(Ordering::Acquire)
                && now.duration_since(last.0) > Duration::from_millis(200))
        {
            break;
        }
    }
    let (t0, n0) = first.ok_or("B received nothing")?;
    Ok((Rate::of(last.1 - n0, last.0.duration_since(t0)).0, last.1))
}

/// Measures Linux's driver on the pair once per burst setting and size, adding to `rows`.
fn linux(
    addrs: &[PciAddress; 2],
    model: Model,
    macs: [Mac; 2],
    frames: u64,
    domain: Option<&str>,
    rows: &mut [Row],
) -> Res<()> {
    let driver = model.name();
    let _ = write("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1");
    let a = KernelNic::bind(addrs[0], driver, domain)?;
    let b = match KernelNic::bind(addrs[1], driver, domain) {
        Ok(b) => b,
        Err(e) => {
            let _ = a.release();
            return Err(e);
        }
    };
    println!(
        "      Linux: A is {}, B is {}, IOMMU domains {} and {}",
        a.ifname,
        b.ifname,
        a.domain(),
        b.domain()
    );
    let result = (|| -> Res<()> {
        a.set_up(true)?;
        b.set_up(true)?;
        a.pin_irqs()?;
        b.pin_irqs()?;
        a.wait_carrier(Duration::from_secs(10))?;
        b.wait_carrier(Duration::from_secs(10))?;
        for (row, &burst) in rows.iter_mut().zip(&BURSTS) {
            for (si, &size) in SIZES.iter().enumerate() {
                let tx_before = a.counter("tx_packets")?;
                let irqs_before = a.interrupts()? + b.interrupts()?;
                let sending = AtomicBool::new(true);
                let (tx, rx) = std::thread::scope(|s| {
                    let rx = s.spawn(|| count_rx(&b, frames, &sending));
                    let tx = pktgen(&a, macs[1], frames, size, burst);
                    sending.store(false, Ordering::Release);
                    (tx, rx.join())
                });
                let tx_pps = tx?;
                let (rx_pps, received) = rx.map_err(|_| "the sampling thread panicked")??;
                let tx_sent = a.counter("tx_packets")? - tx_before;
                let irqs = a.interrupts()? + b.interrupts()? - irqs_before;
                let s = Sample {
                    tx_pps,
                    rx_pps,
                    lost: frames.saturating_sub(received),
                    ..Sample::default()
                };
                println!(
                    "      {:<38} {size:>4} B: TX {:>10}  RX {:>10}  lost {}  ({:.0} interrupts per 1000 frames){}",
                    row.label,
                    Rate(s.tx_pps).to_string(),
                    Rate(s.rx_pps).to_string(),
                    s.lost,
                    irqs as f64 * 1000.0 / frames as f64,
                    if tx_sent < frames {
                        format!(" ({} counted only {tx_sent} sent)", a.ifname)
                    } else {
                        String::new()
                    }
                );
                row.samples[si].push(s);
            }
        }
        Ok(())
    })();
    let _ = pktgen_cmd(Path::new(PKTGEN).join("kpktgend_0"), "rem_device_all");
    let released = (a.release(), b.release());
    result?;
    released.0?;
    released.1
}
