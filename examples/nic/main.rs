//! A userspace driver for Intel 8254x (e1000) and 82574 (e1000e) NICs that moves real
//! packets: NIC A sends a burst of numbered frames, NIC B receives them, and every payload is
//! checked.
//!
//! ```text
//! nic [OPTIONS] [NIC_A NIC_B]
//!
//!   NIC_A NIC_B        PCI addresses (default: $UVFIO_TEST_NIC_A and $UVFIO_TEST_NIC_B, or with
//!                      --pair e1000e $UVFIO_TEST_E1000E_A and $UVFIO_TEST_E1000E_B)
//!   --pair e1000|e1000e  which pair of the emulated IOMMU host to use (default e1000)
//!   --iommu MODE       the IOMMU backend, by the kernel selftests' names (vfio_type1_iommu,
//!                      vfio_type1v2_iommu, iommufd_compat_type1, iommufd_compat_type1v2,
//!                      iommufd, or noiommu: VFIO's unsafe no-IOMMU mode); default: the
//!                      best the host has
//!   --count N          frames to send (default 10000; with --bench, per measurement: 50000)
//!   --size N|MIN-MAX   frame size in bytes without the 4-byte FCS, 60..=1514; a range spreads
//!                      the sizes over it (default 60-1514)
//!   --irq              interrupt mode: INTx on the e1000, MSI-X on the e1000e (default polling)
//!   --batch N          frames per TX doorbell / RX tail write (default 32)
//!   --ring N           descriptors per ring, a multiple of 8 in 8..=4096 (default 512)
//!   --window N         frames in flight at most, 0 = no limit (default: the ring size - 1,
//!                      what B's ring holds, so that no frame depends on the hub's queue)
//!   --runs N           open, test and close the pair N times in a row (default 1; with --bench,
//!                      measurements per figure: 3)
//!   --promisc          receive in promiscuous mode instead of filtering on B's MAC address
//!   --header-only      write and check only the 38-byte header, not the whole payload
//!   --bench            benchmark mode: see below
//!   --quiet            no progress lines
//! ```
//!
//! In the emulated IOMMU host (QEMU/TCG with an intel-iommu, two NICs per hub):
//!
//! ```text
//! tests/vm/cargo-vm run --release --example nic -- --count 10000
//! tests/vm/cargo-vm run --release --example nic -- --pair e1000e --irq
//! tests/vm/nic-bench.sh              # this driver against Linux's e1000/e1000e, same VM
//! ```
//!
//! On a real host, bind two ports (cabled to each other) to vfio-pci and pass their
//! addresses: the driver uses the same code.
//!
//! The exit status is 0 when every frame arrived exactly once and intact, 1 when a frame was
//! lost, duplicated or corrupted (or a NIC reported a receive error), or when the driver
//! failed; 2 for bad arguments.
//!
//! # Design
//!
//! The example is laid out as a real single-queue driver would be:
//!
//! - `regs`: register offsets and bits of both families (they share the legacy layout);
//! - `device`: `device::Nic`, one NIC: open through VFIO (config space, BAR0), reset,
//!   link, MAC address from receive address 0, hand over the rings, interrupt setup, and stop
//!   on drop, before the rings' memory is unmapped;
//! - `rings`: the RX and TX descriptor rings in a [`uvfio::dma::DmaBuffer`], packet buffers
//!   from a [`uvfio::dma::DmaPool`] (taking and returning one makes no system call), and one
//!   tail-register write per batch: the only device access per batch besides the descriptors
//!   themselves, which live in ordinary (DMA) memory;
//! - `packets`: building and checking the test frames (sequence number, length, a body
//!   computed from the sequence number, and a checksum over all of it);
//! - `stats`: which sequence numbers arrived, how often and in which order;
//! - `traffic`: the send/receive loop, polling or interrupt driven;
//! - `bench`: the benchmark against Linux's drivers on the same NICs.
//!
//! No `unsafe` in the driver: the registers are reached through [`uvfio::mmio::Region`]'s
//! checked volatile accessors, and DMA memory through [`uvfio::dma::DmaMemory`]'s volatile
//! copies. Descriptors are `#[repr(C)]` structs that zerocopy's derives (`FromBytes`,
//! `IntoBytes`, `Immutable`, `KnownLayout`) prove to be plain data without padding, with no
//! `unsafe` here: the crate is `#![deny(unsafe_code)]`, and its one exception is opening VFIO's
//! no-IOMMU mode (`--iommu noiommu`), which no library can make safe.
//!
//! Where ixy.rs, the reference Rust userspace NIC driver, took shortcuts, this one does not:
//! no `&[u8]`/`&mut [u8]` over memory the NIC writes (ixy's packet buffers deref to slices,
//! undefined behaviour while DMA is possible); IOVAs from the space's allocator, not
//! IOVA = virtual address; interrupts masked with IMC (ixy writes 0 to IMS, which masks
//! nothing); RDLEN in bytes of the ring (ixy's e1000 writes `sizeof` a pointer, which QEMU
//! rounds down to 0); DMA memory unmapped only after the NIC is stopped.
//!
//! # What QEMU's models need (and real hardware does not mind)
//!
//! - Bus mastering must be on before a frame arrives: QEMU's receiver drops every frame while
//!   it is off. The driver turns it on after the reset, before programming the rings.
//! - RDLEN/TDLEN are multiples of 128 bytes (QEMU masks the low bits): rings of 8n descriptors.
//! - The e1000 model holds its receiver off for one second after RCTL is written (frames wait
//!   in the hub meanwhile). The driver sends probe frames until one arrives, so that second
//!   is reported ("receiver ready after ...") but kept out of the measurements.
//! - Interrupts are masked with IMC; IMS is write-1-to-set, so writing 0 to it does nothing.
//! - e1000e with MSI-X signals queue causes as RXQ0/TXQ0 and the rest (LSC) as OTHER: IMS
//!   includes OTHER, and IVAR routes RX queue 0, TX queue 0 and OTHER to vectors 0, 1, 2.
//! - Neither model really resets: CTRL.RST only clears itself on QEMU's e1000 and only reloads
//!   the MAC address on QEMU 7.2's e1000e, and VFIO's reset is missing (e1000) or the PCI
//!   power-management one that QEMU ignores (e1000e). After Linux's e1000e driver, the NIC
//!   still writes *extended* RX descriptors (RFCTL.EXTEN), in which this driver would never
//!   see DD. So every register the data path depends on is programmed explicitly.
//! - Frames shorter than 60 bytes would be padded to 60 on receive, so the smallest test
//!   frame is 60 bytes (64 with the FCS).
//! - Unicast frames pass the receive filter only with a receive-address match (or UPE);
//!   frames go to B's MAC address, which the driver reads back from RAL0/RAH0.
//!
//! # Benchmark mode
//!
//! `--bench` measures TX and RX packet rates and the guest CPU time per packet for 60-byte
//! (64 on the wire) and 1514-byte frames, alternately with this driver (polling, and on
//! interrupts) and with Linux's `e1000`/`e1000e` driver on the same two NICs (handed to the
//! kernel through sysfs; `pktgen` sends, the interface counters count; with the IOMMU
//! translating and in passthrough, interrupt moderation off and on). That needs the NIC drivers and
//! pktgen in the VM: `tests/vm/nic-bench.sh` provides them; without them only this driver is
//! measured. See `bench` for the method.

#![deny(unsafe_code)]

mod bench;
mod device;
mod packets;
mod regs;
mod rings;
mod stats;
mod traffic;

use std::process::ExitCode;
use std::time::Duration;

use uvfio::pci::PciAddress;
use uvfio::{DmaSpace, IommuMode};

use device::{Nic, QueueConfig};
use packets::{FrameBuilder, FrameChecker, Payload, Sizes, MAX_FRAME, MIN_FRAME};
use traffic::{Mode, TrafficConfig};

/// Which pair of the emulated IOMMU host to use when no addresses are given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pair {
    E1000,
    E1000e,
}

impl Pair {
    fn env_vars(self) -> [&'static str; 2] {
        match self {
            Pair::E1000 => ["UVFIO_TEST_NIC_A", "UVFIO_TEST_NIC_B"],
            Pair::E1000e => ["UVFIO_TEST_E1000E_A", "UVFIO_TEST_E1000E_B"],
        }
    }
}

/// The command line.
#[derive(Debug, Clone)]
struct Args {
    addresses: Vec<String>,
    /// `None`: the e1000 pair, or in benchmark mode every pair the environment names.
    pair: Option<Pair>,
    /// `None`: 10 000, or the benchmark's default.
    count: Option<u64>,
    sizes: Sizes,
    irq: bool,
    batch: usize,
    ring: usize,
    window: Option<u64>,
    /// `None`: 1, or the benchmark's default.
    runs: Option<u32>,
    promisc: bool,
    payload: Payload,
    bench: bool,
    quiet: bool,
    /// The IOMMU backend.
    iommu: IommuMode,
}

const USAGE: &str =
    "usage: nic [--pair e1000|e1000e] [--iommu MODE] [--count N] [--size N|MIN-MAX] [--irq] \
[--batch N] [--ring N] [--window N] [--runs N] [--promisc] [--header-only] [--bench] [--quiet] \
[NIC_A NIC_B]";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        addresses: Vec::new(),
        pair: None,
        count: None,
        sizes: Sizes {
            min: MIN_FRAME,
            max: MAX_FRAME,
        },
        irq: false,
        batch: 32,
        ring: 512,
        window: None,
        runs: None,
        promisc: false,
        payload: Payload::Full,
        bench: false,
        quiet: false,
        iommu: IommuMode::best_available(),
    };
    let mut it = std::env::args().skip(1);
    fn number<T: std::str::FromStr>(flag: &str, v: Option<String>) -> Result<T, String> {
        let v = v.ok_or_else(|| format!("{flag} needs a value"))?;
        v.parse().map_err(|_| format!("{flag}: bad number {v:?}"))
    }
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--pair" => {
                args.pair = match it.next().as_deref() {
                    Some("e1000") => Some(Pair::E1000),
                    Some("e1000e") => Some(Pair::E1000e),
                    other => return Err(format!("--pair: want e1000 or e1000e, not {other:?}")),
                }
            }
            "--count" => args.count = Some(number("--count", it.next())?),
            "--size" => {
                let v = it.next().ok_or("--size needs a value")?;
                let (min, max) = match v.split_once('-') {
                    Some((a, b)) => (
                        number("--size", Some(a.into()))?,
                        number("--size", Some(b.into()))?,
                    ),
                    None => {
                        let n = number("--size", Some(v.clone()))?;
                        (n, n)
                    }
                };
                if !(MIN_FRAME..=MAX_FRAME).contains(&min) || !(min..=MAX_FRAME).contains(&max) {
                    return Err(format!(
                        "--size {v}: sizes are {MIN_FRAME}..={MAX_FRAME} bytes (without FCS)"
                    ));
                }
                args.sizes = Sizes { min, max };
            }
            "--irq" => args.irq = true,
            "--batch" => args.batch = number("--batch", it.next())?,
            "--ring" => args.ring = number("--ring", it.next())?,
            "--window" => args.window = Some(number("--window", it.next())?),
            "--runs" => args.runs = Some(number("--runs", it.next())?),
            "--promisc" => args.promisc = true,
            "--header-only" => args.payload = Payload::HeaderOnly,
            "--bench" => args.bench = true,
            "--iommu" => {
                let name = it.next().ok_or("--iommu needs a mode")?;
                args.iommu = name
                    .parse()
                    .map_err(|e: uvfio::iommu::ParseIommuModeError| e.to_string())?;
            }
            "--quiet" | "-q" => args.quiet = true,
            "--help" | "-h" => return Err(String::new()),
            a if a.starts_with('-') => return Err(format!("unknown option {a}")),
            a => args.addresses.push(a.to_string()),
        }
    }
    if !rings::valid_ring_size(args.ring) {
        return Err(format!(
            "--ring {}: a multiple of 8 in {}..={}",
            args.ring,
            rings::MIN_RING,
            rings::MAX_RING
        ));
    }
    if args.batch == 0 || args.batch >= args.ring {
        return Err(format!(
            "--batch {}: 1..{} (the ring size)",
            args.batch, args.ring
        ));
    }
    if args.count == Some(0) || args.runs == Some(0) {
        return Err("--count and --runs must be at least 1".into());
    }
    if !matches!(args.addresses.len(), 0 | 2) {
        return Err("give both NIC addresses or none".into());
    }
    Ok(args)
}

impl Args {
    fn count(&self) -> u64 {
        self.count.unwrap_or(10_000)
    }
}

/// The two PCI addresses: from the command line, else from the environment.
fn addresses(args: &Args, pair: Pair) -> Result<[PciAddress; 2], String> {
    let names: [String; 2] = if args.addresses.len() == 2 {
        [args.addresses[0].clone(), args.addresses[1].clone()]
    } else {
        let [va, vb] = pair.env_vars();
        let get = |v: &str| {
            std::env::var(v).map_err(|_| {
                format!(
                    "no NIC addresses given and ${v} is not set (in the emulated IOMMU host: \
                     tests/vm/cargo-vm run --example nic)"
                )
            })
        };
        [get(va)?, get(vb)?]
    };
    let parse = |s: &str| {
        s.parse::<PciAddress>()
            .map_err(|e| format!("bad PCI address {s:?}: {e}"))
    };
    Ok([parse(&names[0])?, parse(&names[1])?])
}

/// The pairs to benchmark: the one asked for, else every pair the environment names.
fn bench_pairs(args: &Args) -> Result<Vec<[PciAddress; 2]>, String> {
    if !args.addresses.is_empty() || args.pair.is_some() {
        return Ok(vec![addresses(args, args.pair.unwrap_or(Pair::E1000))?]);
    }
    let pairs: Vec<_> = [Pair::E1000, Pair::E1000e]
        .into_iter()
        .filter_map(|p| addresses(args, p).ok())
        .collect();
    if pairs.is_empty() {
        return Err("no NIC pair in the environment; give two PCI addresses".into());
    }
    Ok(pairs)
}

/// A number that differs from run to run, to tell this run's frames from an earlier one's.
fn run_id() -> u32 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    t.subsec_nanos() ^ (t.as_secs() as u32).rotate_left(16) ^ std::process::id()
}

fn queue_config(args: &Args) -> QueueConfig {
    QueueConfig {
        ring_size: args.ring,
        spare_buffers: args.batch * 2,
        promiscuous: args.promisc,
    }
}

/// Opens both NICs and prints what a user wants to know about them.
fn open_pair(space: &DmaSpace, args: &Args, addrs: &[PciAddress; 2]) -> device::Result<(Nic, Nic)> {
    let a = Nic::open(space, &addrs[0], queue_config(args))?;
    let b = Nic::open(space, &addrs[1], queue_config(args))?;
    for (name, nic) in [("A", &a), ("B", &b)] {
        let link = nic.wait_link(Duration::from_secs(3))?;
        println!(
            "  {name} {}  {:<6}  MAC {}  link {link}",
            nic.address(),
            nic.model().name(),
            nic.mac()
        );
        if !link.up {
            return Err(device::NicError::Device(format!(
                "{}: the link did not come up within 3 s",
                nic.address()
            )));
        }
    }
    Ok((a, b))
}

/// One test: open, send, check, report, close. Returns whether every frame arrived intact.
fn test_once(args: &Args, addrs: &[PciAddress; 2]) -> device::Result<bool> {
    // The one backend-specific line of the driver.
    let space = open_space(args.iommu)?;
    let (mut a, mut b) = open_pair(&space, args, addrs)?;
    let run = run_id();
    let mut builder = FrameBuilder::new(b.mac(), a.mac(), run, args.sizes, args.payload);
    let mut checker = FrameChecker::new(b.mac(), a.mac(), run, args.payload);
    let ready = traffic::wait_until_ready(
        &mut a,
        &mut b,
        &mut builder,
        &mut checker,
        Duration::from_secs(5),
    )?;
    println!(
        "  receiver ready after {:.3} s (probe frame A -> B)",
        ready.as_secs_f64()
    );

    let irqs = if args.irq {
        Some((a.enable_interrupts()?, b.enable_interrupts()?))
    } else {
        None
    };
    let cfg = TrafficConfig {
        count: args.count(),
        batch: args.batch,
        window: args.window.unwrap_or(args.ring as u64 - 1),
        mode: if args.irq {
            Mode::Interrupts
        } else {
            Mode::Polling
        },
        idle_timeout: Duration::from_secs(3),
        progress: !args.quiet,
        cpu: false,
    };
    let o = traffic::run(
        &mut a,
        &mut b,
        irqs.as_ref().map(|(x, y)| (x, y)),
        &cfg,
        &mut builder,
        &mut checker,
    )?;
    let sa = a.read_hw_stats()?;
    let sb = b.read_hw_stats()?;

    let t = &o.tally;
    println!(
        "result: sent {}, received {} good frames in {:.3} s{}",
        o.sent,
        t.unique,
        o.total_time.as_secs_f64(),
        if o.timed_out {
            format!(" (gave up after {:?} without a frame)", cfg.idle_timeout)
        } else {
            String::new()
        }
    );
    println!(
        "  TX {} ({} doorbells, {:.1} frames each)   RX {}  {:.1} Mb/s ({} RDT writes)",
        o.tx_rate(),
        o.tx_doorbells,
        o.sent as f64 / o.tx_doorbells.max(1) as f64,
        o.rx_rate(),
        o.rx_mbps(),
        o.rx_doorbells
    );
    println!(
        "  lost {}  duplicated {}  out of order {}  corrupted {}  rx errors {}  ignored {}",
        t.lost(o.sent),
        t.duplicated,
        t.out_of_order,
        t.corrupted,
        t.rx_errors,
        t.ignored
    );
    for d in &t.first_damages {
        println!("    damaged frame: {d:?}");
    }
    println!(
        "  NIC counters: A transmitted {} (GPTC), B received {} (GPRC), missed {} (MPC), \
         CRC errors {}",
        sa.tx_packets, sb.rx_packets, sb.rx_missed, sb.crc_errors
    );
    if let Some((ia, ib)) = &irqs {
        println!(
            "  interrupts: A {} ({}), B {} ({})",
            o.irqs.0,
            ia.kind(),
            o.irqs.1,
            ib.kind()
        );
    }
    // `irqs`, then `b` and `a` drop here: interrupts off, NICs stopped, rings unmapped.
    Ok(t.perfect(o.sent))
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("nic: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    if args.bench {
        let pairs = match bench_pairs(&args) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("nic: {e}");
                return ExitCode::from(2);
            }
        };
        let cfg = bench::BenchConfig {
            frames: args.count.unwrap_or(bench::FRAMES),
            reps: args.runs.map_or(bench::REPS, |r| r as usize),
            iommu: args.iommu,
        };
        return match bench::run(&pairs, cfg) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(e) => {
                eprintln!("nic: bench: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let addrs = match addresses(&args, args.pair.unwrap_or(Pair::E1000)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("nic: {e}");
            return ExitCode::from(2);
        }
    };
    let size = if args.sizes.min == args.sizes.max {
        format!("{} bytes", args.sizes.min)
    } else {
        format!("{}-{} bytes", args.sizes.min, args.sizes.max)
    };
    println!(
        "nic: {} frames of {size} A -> B, {} mode, batch {}, rings of {}, {} payload check",
        args.count(),
        if args.irq { "interrupt" } else { "polling" },
        args.batch,
        args.ring,
        match args.payload {
            Payload::Full => "full",
            Payload::HeaderOnly => "header-only",
        }
    );
    let mut all_good = true;
    let runs = args.runs.unwrap_or(1);
    for i in 1..=runs {
        if runs > 1 {
            println!("run {i} of {runs}");
        }
        match test_once(&args, &addrs) {
            Ok(good) => {
                println!("{}", if good { "PASS" } else { "FAIL" });
                all_good &= good;
            }
            Err(e) => {
                eprintln!("nic: {e}");
                let mut source = std::error::Error::source(&e);
                while let Some(s) = source {
                    eprintln!("  caused by: {s}");
                    source = s.source();
                }
                return ExitCode::FAILURE;
            }
        }
    }
    if all_good {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The DMA space of `mode`. `noiommu` (VFIO's no-IOMMU mode) needs the `unsafe` constructor.
#[allow(unsafe_code)] // VFIO's no-IOMMU mode cannot be made safe.
pub(crate) fn open_space(mode: IommuMode) -> uvfio::Result<DmaSpace> {
    if mode == IommuMode::NoIommu {
        // SAFETY: this driver gives its devices only the addresses of its own DMA buffers and
        // pools, each while it lives, and stops them (its DMA finished, or the device reset or
        // disabled) before those are dropped.
        unsafe { DmaSpace::open_noiommu() }
    } else {
        DmaSpace::open(mode)
    }
}
