//! `--bench`: TX and RX packet rates, and the CPU time per packet, of this driver against
//! Linux's `e1000`/`e1000e` driver, on the same two NICs, in the same run.
//!
//! # Method
//!
//! NIC A sends [`FRAMES`] frames (`--count`) to NIC B as fast as the driver can, B receives them, and
//! both drivers get **one CPU** for all of it:
//!
//! - this driver: the single-threaded loop of [`crate::traffic`] (a batch of [`BATCH`]
//!   frames, one TDT write; receive up to a batch, one RDT write; repeat), checking the
//!   38-byte header (sequence number, length) of every frame, in two ways:
//!   - **polling**: the loop busy-polls both rings;
//!   - **interrupts**: it sleeps on the NICs' interrupts (eventfds) whenever it cannot send,
//!     and reclaims A's TX ring or drains B's RX ring only when that NIC raised one: INTx on
//!     the e1000 (QEMU's 82540EM has no MSI), MSI-X on the e1000e (RX, TX and other causes
//!     on three vectors). The driver leaves the NICs' ITR at 0: no interrupt moderation.
//! - Linux: the NICs are handed to `e1000`/`e1000e` through sysfs, both interfaces go up (IPv6
//!   off, so nothing else is on the link), `pktgen` sends from A on CPU 0 (`clone_skb`: no
//!   allocation per packet; `burst` 1, and 32 which batches the doorbell as this driver does),
//!   and both NICs' interrupts are pinned to CPU 0, so B's NAPI poll runs there too. Linux
//!   gets its best settings: with `ethtool` (shipped into the VM by `tests/vm/nic-bench.sh`)
//!   both rings are set to this driver's [`RING`] descriptors (the drivers' default already:
//!   read back and printed), and every burst runs with interrupt moderation off (`rx-usecs 0`,
//!   "ITR off") and on (`rx-usecs 3`, the drivers' default `InterruptThrottleRate`, dynamic
//!   moderation: "ITR dyn"), each setting a bind of its own. The e1000 driver refuses
//!   `ethtool -c`/`-C` on the 82540EM that QEMU emulates (`EOPNOTSUPP`): there the setting
//!   comes from `e1000.InterruptThrottleRate`, an array indexed by probe number, which
//!   `nic-bench.sh` puts on the full flavour's kernel command line in the order the bench
//!   binds, and the bench checks it against the probe's kernel log line (a setting it cannot
//!   confirm skips its rows, printed as "-"). Afterwards the NICs go back to vfio-pci.
//!   Linux runs with the NICs' IOMMU groups as the kernel set them up (DMA translation:
//!   every packet is mapped and unmapped, and with the emulated VT-d's caching mode each of
//!   those is a synchronous IOTLB invalidation QEMU emulates), and with the groups switched
//!   to `identity` (passthrough, no per-packet IOMMU work), the fairer comparison with a
//!   driver that maps its buffers once.
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
//! - **CPU per packet**: the guest's busy CPU time, all CPUs (`/proc/stat`: user + nice +
//!   system + irq + softirq, the same reading for both drivers), from the start of the
//!   measurement until the last frame was handed to A, over the frames sent (TX), and until
//!   the last frame arrived at B, over the frames received (RX). Both directions run at once
//!   in one loop (or one pktgen thread plus NAPI), so the RX figure includes the sending: it
//!   is the cost of moving a packet end to end, the TX figure that of the sending half. For
//!   Linux, the CPU time of the thread that samples B's counter is taken off. `/proc/stat`
//!   counts in 10 ms ticks, sampled at the scheduler tick: a measurement of a few tenths of a
//!   second is known to a few per cent. Under TCG a timer tick that arrives late (its vCPU
//!   inside a long device emulation) still counts as one: busy time can come out lower than
//!   the wall time of a CPU that never idled (seen for pktgen, up to about 15 %);
//! - **lost**: sent and never received. QEMU does a NIC's work inside the register write that
//!   asks for it: a TDT write sends the batch and writes the frames into B's ring right away;
//!   a frame that finds B's ring full waits in the hub until B's next RDT write, and on the
//!   e1000 model is dropped then if the ring is full again (an overrun). A receiver slower than
//!   its sender loses frames.
//!
//! Under TCG these ratios measure the emulation's costs more than the drivers': every
//! register access is an exit into QEMU's device model, which also does the NIC's whole work
//! (DMA, the other NIC's receive) inside it, on the CPU time of the vCPU that made the access,
//! and a Linux interrupt is an emulated interrupt (through the emulated VT-d's interrupt
//! remapping) plus the guest's handler, softirq and NAPI work; the emulated IOTLB
//! invalidations dominate Linux's DMA-translated rows.
//!
//! Rings are 256 descriptors on both sides. uvfio and Linux alternate, [`REPS`] times
//! (`--runs`), and each figure is the median, so that a change of load on the host hits both.
//! The "full check" row writes and verifies every byte of every frame. The table's ratios are
//! this driver's figure (polling, and interrupts) over Linux's best of all its rows: the
//! highest rate, the lowest CPU time per packet.

use std::error::Error;
use std::time::{Duration, Instant};

use uvfio::pci::PciAddress;
use uvfio::IommuMode;

use crate::device::{Mac, Model, Nic, NicIrq, QueueConfig};
use crate::packets::{FrameBuilder, FrameChecker, Payload, Sizes};
use crate::regs;
use crate::stats::{ns_per_packet, Rate};
use crate::traffic::{self, Mode, TrafficConfig};

mod linux;

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
/// Linux's interrupt moderation settings (`ethtool -C rx-usecs`): off, and the drivers'
/// default dynamic moderation.
const MODERATIONS: [Option<u32>; 2] = [Some(0), Some(3)];
/// Without ethtool: the driver's default only.
const DEFAULT_MODERATION: [Option<u32>; 1] = [None];
/// Width of the tables' label column.
const LABEL: usize = 38;

/// One measurement.
#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    tx_pps: f64,
    rx_pps: f64,
    /// Guest CPU nanoseconds per frame sent, until the last one was sent.
    tx_cpu_ns: f64,
    /// Guest CPU nanoseconds per frame received, until the last one arrived.
    rx_cpu_ns: f64,
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
                tx_cpu_ns: median(s.iter().map(|x| x.tx_cpu_ns).collect()),
                rx_cpu_ns: median(s.iter().map(|x| x.rx_cpu_ns).collect()),
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

/// This driver's rows, in table order.
struct UserRows {
    polling: Row,
    full: Row,
    irq: Row,
}

/// Runs the benchmark on each pair; returns whether no frame was damaged or duplicated
/// (losses under overload are reported, not failures).
pub fn run(pairs: &[[PciAddress; 2]], cfg: BenchConfig) -> Res<bool> {
    let BenchConfig { frames, reps, .. } = cfg;
    println!(
        "nic bench: {frames} frames A -> B per measurement, one CPU per driver, rings of \
         {RING}, uvfio and Linux alternating {reps} times (medians)"
    );
    let kernel = linux::kernel_available();
    if let Err(why) = &kernel {
        println!("  the Linux half is skipped: {why}");
    }
    let ethtool = linux::Ethtool::find();
    let moderations: &'static [Option<u32>] = if ethtool.is_some() {
        &MODERATIONS
    } else {
        if kernel.is_ok() {
            println!(
                "  no ethtool (tests/vm/nic-bench.sh ships it): Linux runs with its default \
                 ring size and interrupt moderation only"
            );
        }
        &DEFAULT_MODERATION
    };
    // Moderation off first, on both domains, right after this driver's turn, which leaves
    // ITR at 0: the e1000 driver with moderation off does not write ITR at all, and neither
    // QEMU model resets it, so it would keep what the last moderated run wrote.
    let settings: Vec<linux::Setting> = moderations
        .iter()
        .flat_map(|&moderation| {
            [None, Some("identity")].map(|domain| linux::Setting { domain, moderation })
        })
        .collect();
    let mut ok = true;
    for addrs in pairs {
        let mut user = UserRows {
            polling: Row::new("uvfio, polling, header check".into()),
            full: Row::new("uvfio, polling, full check".into()),
            irq: Row::new("uvfio, interrupts, header check".into()),
        };
        let mut linux_rows: Vec<Row> = Vec::new();
        let mut model = None;
        for rep in 0..reps {
            let (m, macs, irq_kind) = userspace(addrs, rep, cfg, &mut user)?;
            model = Some((m, irq_kind));
            if kernel.is_err() {
                continue;
            }
            if linux_rows.is_empty() {
                for s in &settings {
                    let domain = if s.domain.is_some() {
                        "passthrough"
                    } else {
                        "IOMMU"
                    };
                    let itr = match s.moderation {
                        Some(0) => "ITR off".to_string(),
                        Some(3) => "ITR dyn".to_string(),
                        Some(u) => format!("rx-usecs {u}"),
                        None => "ITR default".to_string(),
                    };
                    linux_rows.extend(
                        BURSTS
                            .iter()
                            .map(|b| Row::new(format!("Linux, {domain}, burst {b}, {itr}"))),
                    );
                }
            }
            for (s, these) in settings.iter().zip(linux_rows.chunks_mut(BURSTS.len())) {
                linux::measure(addrs, m, macs, frames, *s, ethtool.as_ref(), these)?;
            }
        }
        let (model, irq_kind) = model.ok_or("no measurement (--runs 0?)")?;
        let mut rows = vec![user.polling, user.full, user.irq];
        rows.extend(linux_rows);
        ok &= rows
            .iter()
            .all(|r| r.medians().iter().all(|c| c.damaged == 0));
        print_tables(model, irq_kind, &rows, cfg);
    }
    Ok(ok)
}

fn cell(s: String) -> String {
    format!("{s:>12}")
}

/// `text`, or "-" for a row that measured nothing (a Linux setting that could not be made).
fn or_dash(value: f64, text: impl FnOnce() -> String) -> String {
    if value > 0.0 {
        text()
    } else {
        "-".to_string()
    }
}

/// Prints a row: the label, then two figures per size.
fn print_row(label: &str, medians: &[Sample], figures: impl Fn(&Sample, usize) -> [String; 2]) {
    print!("  {label:<LABEL$}");
    for (i, c) in medians.iter().enumerate() {
        let [x, y] = figures(c, i);
        print!("{}{}", cell(x), cell(y));
    }
}

fn print_header(title: &str) {
    println!("{title}");
    print!("  {:<LABEL$}", "");
    for s in SIZES {
        print!("{}{}", cell(format!("{s} B TX")), cell(format!("{s} B RX")));
    }
    println!();
}

/// The two tables of a pair: packets per second, CPU time per packet. Rows 0 and 2 are this
/// driver's polling and interrupt rows (header check), the Linux rows are labelled "Linux".
fn print_tables(model: Model, irq_kind: &str, rows: &[Row], cfg: BenchConfig) {
    let medians: Vec<Vec<Sample>> = rows.iter().map(Row::medians).collect();
    let linux: Vec<&Vec<Sample>> = rows
        .iter()
        .zip(&medians)
        .filter(|(r, _)| r.label.starts_with("Linux"))
        .map(|(_, m)| m)
        .collect();
    let ours = [("polling", &medians[0]), ("irq", &medians[2])];
    let best = |i: usize, f: fn(&Sample) -> f64, max: bool| {
        let v = linux.iter().map(|m| f(&m[i])).filter(|x| *x > 0.0);
        if max {
            v.fold(0.0, f64::max)
        } else {
            v.fold(f64::INFINITY, f64::min)
        }
    };
    let ratio = |x: f64, best: f64| {
        if best > 0.0 && best.is_finite() {
            format!("{:.2}", x / best)
        } else {
            "-".to_string()
        }
    };

    println!();
    print_header(&format!(
        "{} pair, packets per second (sizes without the 4-byte FCS; uvfio interrupts: {irq_kind}):",
        model.name()
    ));
    for (r, m) in rows.iter().zip(&medians) {
        print_row(&r.label, m, |c, _| {
            [
                or_dash(c.tx_pps, || Rate(c.tx_pps).to_string()),
                or_dash(c.rx_pps, || Rate(c.rx_pps).to_string()),
            ]
        });
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
    if !linux.is_empty() {
        for (name, m) in ours {
            print_row(&format!("ratio uvfio {name} / best Linux"), m, |c, i| {
                [
                    ratio(c.tx_pps, best(i, |s| s.tx_pps, true)),
                    ratio(c.rx_pps, best(i, |s| s.rx_pps, true)),
                ]
            });
            println!();
        }
    }
    print_row("uvfio: time in TDT / RDT writes", &medians[0], |c, _| {
        [
            format!("{:.0} %", 100.0 * c.tdt_share),
            format!("{:.0} %", 100.0 * c.rdt_share),
        ]
    });
    println!();
    println!();

    print_header(&format!(
        "{} pair, CPU ns per packet (guest CPU time, all CPUs: TX until the last frame was \
         sent / frames sent, RX until the last one arrived / frames received):",
        model.name()
    ));
    for (r, m) in rows.iter().zip(&medians) {
        print_row(&r.label, m, |c, _| {
            [
                or_dash(c.tx_cpu_ns, || format!("{:.0} ns", c.tx_cpu_ns)),
                or_dash(c.rx_cpu_ns, || format!("{:.0} ns", c.rx_cpu_ns)),
            ]
        });
        println!();
    }
    if !linux.is_empty() {
        for (name, m) in ours {
            print_row(&format!("ratio uvfio {name} / best Linux"), m, |c, i| {
                [
                    ratio(c.tx_cpu_ns, best(i, |s| s.tx_cpu_ns, false)),
                    ratio(c.rx_cpu_ns, best(i, |s| s.rx_cpu_ns, false)),
                ]
            });
            println!();
        }
    }
    println!();
}

// ---- This driver ---------------------------------------------------------------------------

/// Measures this driver once per size: polling with the header check and with the full
/// check, then on interrupts with the header check, adding to the rows; returns the model,
/// the MACs (A, B) and the kind of interrupt.
fn userspace(
    addrs: &[PciAddress; 2],
    rep: usize,
    cfg: BenchConfig,
    rows: &mut UserRows,
) -> Res<(Model, [Mac; 2], &'static str)> {
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
    let mut run = base;
    let mut measure = |row: &mut Row,
                       payload,
                       irqs: Option<(&NicIrq, &NicIrq)>,
                       a: &mut Nic,
                       b: &mut Nic|
     -> Res<()> {
        for (si, &size) in SIZES.iter().enumerate() {
            run = run.wrapping_add(1);
            let sizes = Sizes {
                min: size,
                max: size,
            };
            let mut builder = FrameBuilder::new(b.mac(), a.mac(), run, sizes, payload);
            let mut checker = FrameChecker::new(b.mac(), a.mac(), run, payload);
            let (s, irq_count) =
                measure_userspace(a, b, irqs, cfg.frames, &mut builder, &mut checker)?;
            println!(
                "  [{}] {:<45} {size:>4} B: TX {:>10}  RX {:>10}  lost {}  CPU/packet TX {:.0} ns RX {:.0} ns  ({:.0} % of the time in TDT writes, {:.0} % in RDT writes{})",
                rep + 1,
                format!("{} {}", a.model().name(), row.label),
                Rate(s.tx_pps).to_string(),
                Rate(s.rx_pps).to_string(),
                s.lost,
                s.tx_cpu_ns,
                s.rx_cpu_ns,
                100.0 * s.tdt_share,
                100.0 * s.rdt_share,
                match irq_count {
                    Some(n) => format!(", {:.0} interrupts per 1000 frames", n as f64 * 1000.0 / cfg.frames as f64),
                    None => String::new(),
                }
            );
            row.samples[si].push(s);
        }
        Ok(())
    };
    measure(&mut rows.polling, Payload::HeaderOnly, None, &mut a, &mut b)?;
    measure(&mut rows.full, Payload::Full, None, &mut a, &mut b)?;
    let irqs = (a.enable_interrupts()?, b.enable_interrupts()?);
    let kind = irqs.0.kind();
    measure(
        &mut rows.irq,
        Payload::HeaderOnly,
        Some((&irqs.0, &irqs.1)),
        &mut a,
        &mut b,
    )?;
    drop(irqs);
    Ok((a.model(), [a.mac(), b.mac()], kind))
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

/// One measurement of this driver, polling or (with `irqs`) on interrupts; returns the
/// sample and, on interrupts, how many were handled.
fn measure_userspace(
    a: &mut Nic,
    b: &mut Nic,
    irqs: Option<(&NicIrq, &NicIrq)>,
    frames: u64,
    builder: &mut FrameBuilder,
    checker: &mut FrameChecker,
) -> Res<(Sample, Option<u64>)> {
    let cfg = TrafficConfig {
        count: frames,
        batch: BATCH,
        window: 0,
        mode: if irqs.is_some() {
            Mode::Interrupts
        } else {
            Mode::Polling
        },
        idle_timeout: Duration::from_millis(500),
        progress: false,
        cpu: true,
    };
    let (tdt0, rdt0) = (a.tx.doorbells.time, b.rx.doorbells.time);
    let o = traffic::run(a, b, irqs, &cfg, builder, checker)?;
    let total = o.total_time.as_secs_f64().max(1e-9);
    let t = &o.tally;
    let (tx_cpu_ns, rx_cpu_ns) = o.cpu.map_or((0.0, 0.0), |c| {
        (ns_per_packet(c.tx, o.sent), ns_per_packet(c.rx, t.unique))
    });
    let sample = Sample {
        tx_pps: o.tx_rate().0,
        rx_pps: o.rx_rate().0,
        tx_cpu_ns,
        rx_cpu_ns,
        lost: t.lost(o.sent),
        damaged: t.duplicated + t.corrupted + t.rx_errors,
        tdt_share: (a.tx.doorbells.time - tdt0).as_secs_f64() / total,
        rdt_share: (b.rx.doorbells.time - rdt0).as_secs_f64() / total,
    };
    Ok((sample, irqs.map(|_| o.irqs.0 + o.irqs.1)))
}
