//! `--bench`: 4 KiB random reads and writes through this driver against Linux's `nvme` driver
//! driven by `fio`, on the same controller, in the same boot.
//!
//! ```text
//! nvme --bench [PCI-ADDRESS] [--iommu MODE] [--queues 1,2] [--qd 1,8,32,128]
//!              [--rw randread,randwrite] [--seconds 1] [--reps 3] [--span-mib 64] [--no-linux]
//! ```
//!
//! # Method
//!
//! A *cell* is one kind of I/O (4 KiB random read or random write, over the first
//! `--span-mib` MiB of the first namespace), a number of I/O queue pairs and a queue depth per
//! pair. Each cell runs for `--seconds` on every *side*:
//!
//! - **uvfio, polled**: this driver. One thread drives all the cell's queue pairs round-robin
//!   (a pair's completions are taken, then as many new commands pushed behind one SQ doorbell
//!   and one CQ doorbell, then the next pair), keeping `qd` commands in flight on each. The
//!   completion queues are created without interrupts: the thread polls them. One thread
//!   and not one per pair, because the emulated host has two vCPUs that QEMU's own threads
//!   share: a second polling thread would compete with the emulated controller it waits for.
//!   The CPU time per I/O below shows what the other side spends for the same work.
//! - **Linux**: the controller is handed to the kernel's `nvme` driver through sysfs
//!   (`driver_override`, `unbind`, `drivers_probe`), and `fio` runs every cell on
//!   `/dev/nvmeXnY` with `direct=1`, `iodepth=qd`, `numjobs=queues` (threads), once with
//!   `io_uring`, once with `libaio` (both completing by interrupt), and, when the driver has
//!   poll queues (`nvme.poll_queues=N` on the kernel command line), with `io_uring` and
//!   `hipri` (polled completions). These run with the controller's IOMMU group as the kernel
//!   set it up (DMA translation: every I/O is mapped and unmapped, and under the emulated
//!   VT-d's caching mode each invalidation is emulated work); `io_uring` runs once more with
//!   the group switched to `identity` (passthrough, no IOMMU work per I/O), the fairer
//!   match for a driver that maps its buffers once. Then the controller goes back to vfio-pci.
//!
//! The two sides alternate: repetition 1 runs this driver first, repetition 2 Linux first,
//! and so on (`--reps`); each figure is the median of the repetitions. Before the first
//! measurement this driver writes the whole span once, so that no side pays for QEMU's
//! copy-on-write overlay (`snapshot=on`) allocating clusters on a first write.
//!
//! Figures per cell and side:
//!
//! - **IOPS**: I/Os completed while submitting, over that time;
//! - **latency p50 / p99 / p99.9**: from just before the command is written to the SQ until
//!   its completion is seen (this driver: one timestamp per batch of submissions and one per
//!   batch of completions taken; fio: its total latency `lat`, which also starts before
//!   submission);
//! - **CPU per I/O**: user + system time of the process (this driver: `getrusage` over the
//!   cell; fio: its `usr_cpu` + `sys_cpu` over the job runtime) over the I/Os done. Interrupt
//!   handling is charged to whatever task the interrupt hits, which may be the idle task:
//!   Linux's interrupt-driven figures may leave some of it out.
//!
//! The row `ratio uvfio / best Linux` divides this driver's figure by the best Linux side's
//! (highest IOPS, lowest latency, lowest CPU): above 1 is better for IOPS, below 1 is better
//! for latency and CPU.
//!
//! Under QEMU/TCG (the emulated IOMMU host) every doorbell write is an exit into QEMU's
//! emulation and the controller is code running on the same two host CPUs: the ratios
//! measure the costs of emulation as much as the drivers, not what either would do on
//! hardware.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use uvfio::dma::{DmaBuffer, DmaMemory};
use uvfio::mmio::Region;
use uvfio::pci::PciAddress;
use uvfio::{Device, DmaSpace, IommuMode};

use crate::cmd::{Command, Transfer};
use crate::ctrl::Controller;
use crate::fio::{self, Engine, Kernel};
use crate::queue::QueuePair;
use crate::Res;

/// Bytes of one I/O.
pub const IO_BYTES: usize = 4096;
/// How long the driver waits for progress before it gives up on the controller.
const STALL: Duration = Duration::from_secs(10);
/// Empty polling passes between two looks at the clock for [`STALL`].
const STALL_CHECK: u32 = 4096;
/// Commands in flight while the span is written once before the first measurement.
const PREFILL_DEPTH: usize = 32;

/// Random read or random write.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Rw {
    /// 4 KiB random reads.
    Read,
    /// 4 KiB random writes.
    Write,
}

impl Rw {
    /// fio's name for it (`rw=`).
    pub fn fio_name(self) -> &'static str {
        match self {
            Rw::Read => "randread",
            Rw::Write => "randwrite",
        }
    }

    /// The section of fio's JSON that holds its figures.
    pub fn fio_section(self) -> &'static str {
        match self {
            Rw::Read => "read",
            Rw::Write => "write",
        }
    }
}

/// One measurement's settings.
#[derive(Clone, Copy, Debug)]
pub struct Cell {
    /// I/O queue pairs (fio: jobs).
    pub queues: u16,
    /// Commands in flight per queue pair (fio: iodepth).
    pub qd: u16,
    /// What the I/Os do.
    pub rw: Rw,
}

impl Cell {
    fn label(&self) -> String {
        format!("{} q{} qd{}", self.rw.fio_name(), self.queues, self.qd)
    }
}

/// One measurement's figures.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sample {
    /// I/Os per second.
    pub iops: f64,
    /// Latency percentiles in nanoseconds.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// CPU time (user + system) per I/O in nanoseconds.
    pub cpu: f64,
}

/// The benchmark's options.
pub struct BenchOptions {
    /// Set by [`parse_args`] (`None` only while it parses).
    address: Option<PciAddress>,
    iommu: IommuMode,
    queues: Vec<u16>,
    qds: Vec<u16>,
    rws: Vec<Rw>,
    seconds: f64,
    reps: usize,
    span_mib: u64,
    linux: bool,
}

fn list<T: std::str::FromStr>(name: &str, value: Option<String>) -> Result<Vec<T>, String> {
    let value = value.ok_or(format!("{name} needs a value"))?;
    let items: Result<Vec<T>, _> = value.split(',').map(str::parse).collect();
    match items {
        Ok(v) if !v.is_empty() => Ok(v),
        _ => Err(format!("{name}: cannot parse '{value}'")),
    }
}

/// Parses the arguments after `--bench`.
pub fn parse_args(args: impl Iterator<Item = String>) -> Result<BenchOptions, String> {
    let mut args = args;
    let mut address = None;
    let mut opts = BenchOptions {
        address: None,
        iommu: IommuMode::best_available(),
        queues: vec![1, 2],
        qds: vec![1, 8, 32, 128],
        rws: vec![Rw::Read, Rw::Write],
        seconds: 1.0,
        reps: 3,
        span_mib: 64,
        linux: true,
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--iommu" => {
                let name = args.next().ok_or("--iommu needs a mode")?;
                opts.iommu = name.parse::<IommuMode>().map_err(|e| e.to_string())?;
            }
            "--queues" => opts.queues = list("--queues", args.next())?,
            "--qd" => opts.qds = list("--qd", args.next())?,
            "--rw" => {
                let names: Vec<String> = list("--rw", args.next())?;
                opts.rws = names
                    .iter()
                    .map(|n| match n.as_str() {
                        "randread" | "read" => Ok(Rw::Read),
                        "randwrite" | "write" => Ok(Rw::Write),
                        _ => Err(format!("--rw: {n}: want randread or randwrite")),
                    })
                    .collect::<Result<_, _>>()?;
            }
            "--seconds" => opts.seconds = list::<f64>("--seconds", args.next())?[0],
            "--reps" => opts.reps = list::<usize>("--reps", args.next())?[0],
            "--span-mib" => opts.span_mib = list::<u64>("--span-mib", args.next())?[0],
            "--no-linux" => opts.linux = false,
            a if a.starts_with('-') => return Err(format!("unknown option {a}")),
            a => address = Some(a.to_string()),
        }
    }
    if opts.queues.contains(&0) || opts.qds.contains(&0) {
        return Err("--queues and --qd want numbers from 1".into());
    }
    if !(opts.seconds > 0.0 && opts.seconds <= 3600.0) || opts.reps == 0 || opts.span_mib == 0 {
        return Err("--seconds, --reps and --span-mib want positive numbers".into());
    }
    let address = address
        .or_else(|| std::env::var("UVFIO_TEST_NVME").ok())
        .ok_or("no PCI address given and UVFIO_TEST_NVME is not set")?;
    opts.address = Some(address.parse().map_err(|e| format!("{address}: {e}"))?);
    Ok(opts)
}

/// `nvme --bench ...`: runs the benchmark and prints its table.
pub fn main(args: impl Iterator<Item = String>) -> ExitCode {
    let opts = match parse_args(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("nvme --bench: {e}");
            eprintln!(
                "usage: nvme --bench [PCI-ADDRESS] [--iommu MODE] [--queues 1,2] [--qd 1,8,32,128] \
                 [--rw randread,randwrite] [--seconds S] [--reps N] [--span-mib N] [--no-linux]"
            );
            return ExitCode::from(2);
        }
    };
    match run(&opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nvme --bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The samples of one side, per cell.
struct Side {
    label: String,
    samples: Vec<Vec<Sample>>,
}

fn run(opts: &BenchOptions) -> Res<()> {
    let address = opts.address.ok_or("no PCI address")?;
    let cells: Vec<Cell> = opts
        .rws
        .iter()
        .flat_map(|&rw| {
            opts.queues
                .iter()
                .flat_map(move |&queues| opts.qds.iter().map(move |&qd| Cell { queues, qd, rw }))
        })
        .collect();
    let duration = Duration::from_secs_f64(opts.seconds);
    let kernel = if opts.linux {
        fio::available()
    } else {
        Err("--no-linux".to_string())
    };
    println!(
        "nvme bench: {} cells of 4 KiB random I/O over the first {} MiB, {:?} each, {} \
         repetitions{} (medians); clock source {}",
        cells.len(),
        opts.span_mib,
        duration,
        opts.reps,
        if kernel.is_ok() {
            " alternating uvfio and Linux"
        } else {
            ""
        },
        fio::clocksource()
    );
    let mut sides = vec![Side {
        label: "uvfio, polled, 1 thread".into(),
        samples: vec![Vec::new(); cells.len()],
    }];
    let engines = match &kernel {
        Ok(fio_path) => {
            let engines = fio::engines(fio::poll_queues());
            println!(
                "  Linux: nvme driver, {} ({}), poll queues: {}",
                fio_path.display(),
                fio::version(fio_path),
                fio::poll_queues()
            );
            for e in &engines {
                sides.push(Side {
                    label: e.label.to_string(),
                    samples: vec![Vec::new(); cells.len()],
                });
            }
            engines
        }
        Err(why) => {
            println!("  the Linux half is skipped: {why}");
            Vec::new()
        }
    };
    let mut prefilled = false;
    for rep in 0..opts.reps {
        let linux_first = rep % 2 == 1;
        for half in 0..2 {
            if (half == 0) != linux_first {
                let samples = userspace(opts, &cells, duration, !prefilled)?;
                prefilled = true;
                for (c, s) in samples.into_iter().enumerate() {
                    sides[0].samples[c].push(s);
                }
            } else if let Ok(fio_path) = &kernel {
                // One binding per IOMMU domain type, the engines of that type run in it.
                let mut domains: Vec<Option<&str>> = engines.iter().map(|e| e.domain).collect();
                domains.dedup();
                for domain in domains {
                    let linux = Kernel::bind(address, domain)?;
                    let span = opts.span_mib << 20;
                    let results: Res<Vec<(usize, Vec<Sample>)>> = engines
                        .iter()
                        .enumerate()
                        .filter(|(_, e)| e.domain == domain)
                        .map(|(i, e)| Ok((i, linux.run(fio_path, e, &cells, opts.seconds, span)?)))
                        .collect();
                    let released = linux.release();
                    let results = results?;
                    released?;
                    for (e, samples) in results {
                        for (c, s) in samples.into_iter().enumerate() {
                            sides[1 + e].samples[c].push(s);
                        }
                    }
                }
            }
        }
        println!("  repetition {} of {} done", rep + 1, opts.reps);
    }
    print_table(&cells, &sides, &engines);
    Ok(())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn medians(samples: &[Sample]) -> Sample {
    let m = |f: fn(&Sample) -> f64| median(samples.iter().map(f).collect());
    Sample {
        iops: m(|s| s.iops),
        p50: m(|s| s.p50),
        p99: m(|s| s.p99),
        p999: m(|s| s.p999),
        cpu: m(|s| s.cpu),
    }
}

/// The table: one line per cell and side, `|`-separated (tests/vm/nvme-bench.sh reads it),
/// and per cell the ratio to the best Linux side.
fn print_table(cells: &[Cell], sides: &[Side], engines: &[Engine]) {
    let us = |ns: f64| format!("{:.1}", ns / 1000.0);
    println!();
    println!("nvme bench table: 4 KiB random I/O, median of the repetitions; latency in us");
    println!(
        "  {:<20} | {:<38} | {:>9} | {:>8} | {:>8} | {:>8} | {:>10}",
        "cell", "side", "IOPS", "p50", "p99", "p99.9", "CPU us/IO"
    );
    let (mut iops_won, mut p50_won, mut qd1) = (0, 0, 0);
    for (c, cell) in cells.iter().enumerate() {
        let m: Vec<Sample> = sides.iter().map(|s| medians(&s.samples[c])).collect();
        for (side, s) in sides.iter().zip(&m) {
            println!(
                "  {:<20} | {:<38} | {:>9.0} | {:>8} | {:>8} | {:>8} | {:>10}",
                cell.label(),
                side.label,
                s.iops,
                us(s.p50),
                us(s.p99),
                us(s.p999),
                us(s.cpu)
            );
        }
        if m.len() > 1 {
            let linux = &m[1..];
            let best = |f: fn(&Sample) -> f64, most: bool| {
                let v = linux.iter().map(f);
                if most {
                    v.fold(f64::NEG_INFINITY, f64::max)
                } else {
                    v.fold(f64::INFINITY, f64::min)
                }
            };
            let r = Sample {
                iops: m[0].iops / best(|s| s.iops, true),
                p50: m[0].p50 / best(|s| s.p50, false),
                p99: m[0].p99 / best(|s| s.p99, false),
                p999: m[0].p999 / best(|s| s.p999, false),
                cpu: m[0].cpu / best(|s| s.cpu, false),
            };
            println!(
                "  {:<20} | {:<38} | {:>9.2} | {:>8.2} | {:>8.2} | {:>8.2} | {:>10.2}",
                cell.label(),
                "ratio uvfio / best Linux",
                r.iops,
                r.p50,
                r.p99,
                r.p999,
                r.cpu
            );
            iops_won += usize::from(r.iops > 1.0);
            if cell.qd == 1 {
                qd1 += 1;
                p50_won += usize::from(r.p50 < 1.0);
            }
        }
    }
    println!("nvme bench table end");
    if !engines.is_empty() {
        println!(
            "goal: more IOPS than the best Linux side in {iops_won} of {} cells; lower p50 at \
             QD1 in {p50_won} of {qd1}",
            cells.len()
        );
    }
    println!(
        "(QEMU/TCG: every doorbell is an exit into the emulated controller, which shares the \
         host CPUs with both drivers; the ratios measure emulation costs, not hardware)"
    );
}

/// Where the cells' I/O goes.
struct Target {
    nsid: u32,
    /// Logical blocks per 4 KiB.
    lbas_per_io: u64,
    /// 4 KiB units in the span.
    ios_in_span: u64,
}

impl Target {
    fn command(&self, rw: Rw, buf: &DmaBuffer, slot: usize, index: u64) -> Command {
        let data = Transfer {
            iova: buf.iova() + (slot * IO_BYTES) as u64,
            len: IO_BYTES,
        };
        let (slba, n) = (index * self.lbas_per_io, self.lbas_per_io as u32);
        match rw {
            Rw::Read => Command::read(self.nsid, slba, n, data),
            Rw::Write => Command::write(self.nsid, slba, n, data),
        }
    }
}

/// xorshift64*: the random 4 KiB units of the span.
struct Random(u64);

impl Random {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) % n
    }
}

/// One pass of this driver over all cells: opens the device, brings the controller up with
/// polled queue pairs, measures, shuts down and closes everything (so Linux can have it).
fn userspace(
    opts: &BenchOptions,
    cells: &[Cell],
    duration: Duration,
    prefill: bool,
) -> Res<Vec<Sample>> {
    let address = opts.address.ok_or("no PCI address")?;
    let space = crate::open_space(opts.iommu)?;
    let device: Device = space.open_pci_device(&address)?;
    let samples = measure_all(&space, &device, opts, cells, duration, prefill)?;
    Ok(samples)
}

fn measure_all(
    space: &DmaSpace,
    device: &Device,
    opts: &BenchOptions,
    cells: &[Cell],
    duration: Duration,
    prefill: bool,
) -> Res<Vec<Sample>> {
    let (mut ctrl, start) = Controller::start(space, device)?;
    ctrl.identify_controller()?;
    let nsid = *ctrl
        .active_namespaces()?
        .first()
        .ok_or("no active namespace")?;
    let ns = ctrl.identify_namespace(nsid)?;
    let bs = u64::from(ns.block_size);
    if ns.metadata != 0 || bs > IO_BYTES as u64 {
        return Err(format!(
            "namespace {nsid}: {bs}-byte blocks with {} metadata bytes: not for 4 KiB I/O",
            ns.metadata
        )
        .into());
    }
    let span = opts.span_mib << 20;
    if span > ns.bytes() {
        return Err(format!("--span-mib {}: the namespace is smaller", opts.span_mib).into());
    }
    let target = Target {
        nsid,
        lbas_per_io: IO_BYTES as u64 / bs,
        ios_in_span: span / IO_BYTES as u64,
    };
    let max_qd = cells.iter().map(|c| c.qd).max().unwrap_or(1);
    let max_queues = cells.iter().map(|c| c.queues).max().unwrap_or(1);
    // An SQ of N entries holds N - 1 commands; CAP.MQES is checked by the queue.
    let entries = max_qd
        .max(PREFILL_DEPTH as u16)
        .checked_add(1)
        .ok_or("--qd too large")?;
    if u32::from(entries) > start.cap.max_queue_entries() {
        return Err(format!(
            "queue depth {max_qd} needs {entries} entries, the controller's queues have at most {}",
            start.cap.max_queue_entries()
        )
        .into());
    }
    ctrl.create_queue_pairs(max_queues, entries, false)?;
    let bufs: Vec<DmaBuffer> = (0..max_queues)
        .map(|_| DmaBuffer::new(space, usize::from(entries) * IO_BYTES))
        .collect::<Result<_, _>>()?;
    let (bar0, queues) = ctrl.queue_pairs();
    if prefill {
        let t = Instant::now();
        write_span(bar0, &mut queues[0], &bufs[0], &target)?;
        println!(
            "  wrote the span once ({} MiB) in {:?}",
            opts.span_mib,
            t.elapsed()
        );
    }
    let mut random = Random(0x9e37_79b9_7f4a_7c15 ^ u64::from(std::process::id()));
    let mut samples = Vec::with_capacity(cells.len());
    for cell in cells {
        let q = usize::from(cell.queues);
        samples.push(measure(
            bar0,
            &mut queues[..q],
            &bufs,
            &target,
            *cell,
            duration,
            &mut random,
        )?);
    }
    ctrl.shutdown()?;
    Ok(samples)
}

/// Writes the whole span once, in order, `PREFILL_DEPTH` commands at a time.
fn write_span(bar0: &Region, queue: &mut QueuePair, buf: &DmaBuffer, target: &Target) -> Res<()> {
    let mut next = 0;
    while next < target.ios_in_span {
        let n = (target.ios_in_span - next).min(PREFILL_DEPTH as u64);
        for k in 0..n {
            queue.push(&target.command(Rw::Write, buf, k as usize, next + k))?;
        }
        queue.ring_sq(bar0)?;
        let mut done = 0;
        let since = Instant::now();
        while done < n {
            match queue.pop()? {
                Some(c) if c.status.is_success() => done += 1,
                Some(c) => return Err(format!("Write: {}", c.status).into()),
                None if since.elapsed() > STALL => {
                    return Err(format!("writing the span: no completion for {STALL:?}").into())
                }
                None => std::hint::spin_loop(),
            }
        }
        queue.ring_cq(bar0)?;
        next += n;
    }
    Ok(())
}

/// One cell on this driver: `cell.qd` commands in flight on each queue pair for `duration`,
/// completions polled, each completed command replaced by a new one at a random place.
fn measure(
    bar0: &Region,
    queues: &mut [QueuePair],
    bufs: &[DmaBuffer],
    target: &Target,
    cell: Cell,
    duration: Duration,
    random: &mut Random,
) -> Res<Sample> {
    let qd = usize::from(cell.qd);
    // Per queue, by command id: when it was submitted, and the buffer slot it uses.
    let mut started: Vec<Vec<Instant>> = Vec::with_capacity(queues.len());
    let mut slot_of: Vec<Vec<usize>> = Vec::with_capacity(queues.len());
    let mut lat: Vec<u64> = Vec::with_capacity(1 << 16);
    let mut free: Vec<usize> = Vec::with_capacity(qd);
    let cpu_before = fio::cpu_time();
    let t0 = Instant::now();
    for (i, q) in queues.iter_mut().enumerate() {
        started.push(vec![t0; usize::from(q.entries())]);
        slot_of.push(vec![0; usize::from(q.entries())]);
        let now = Instant::now();
        for slot in 0..qd {
            let cmd = target.command(cell.rw, &bufs[i], slot, random.below(target.ios_in_span));
            let cid = usize::from(q.push(&cmd)?);
            started[i][cid] = now;
            slot_of[i][cid] = slot;
        }
        q.ring_sq(bar0)?;
    }
    let deadline = t0 + duration;
    let mut in_flight = qd * queues.len();
    let mut end = None;
    let mut cpu_after = cpu_before;
    let mut progress = Instant::now();
    // Passes over the queues without a completion: the clock is read for the stall check
    // only every STALL_CHECK of them (a clock read is a system call and an HPET access
    // where the guest has no usable TSC, as on Debian's 6.1 under TCG).
    let mut idle: u32 = 0;
    while in_flight > 0 {
        idle = idle.wrapping_add(1);
        for (i, q) in queues.iter_mut().enumerate() {
            let mut seen = None;
            free.clear();
            while let Some(c) = q.pop()? {
                let now = *seen.get_or_insert_with(Instant::now);
                if !c.status.is_success() {
                    return Err(format!("{}: {}", cell.label(), c.status).into());
                }
                let cid = usize::from(c.cid);
                in_flight -= 1;
                if end.is_none() {
                    lat.push((now - started[i][cid]).as_nanos() as u64);
                    free.push(slot_of[i][cid]);
                }
            }
            let Some(now) = seen else { continue };
            progress = now;
            idle = 0;
            q.ring_cq(bar0)?;
            if end.is_none() && now >= deadline {
                end = Some(now);
                cpu_after = fio::cpu_time();
            }
            if end.is_some() {
                continue;
            }
            let now = Instant::now();
            for &slot in &free {
                let cmd = target.command(cell.rw, &bufs[i], slot, random.below(target.ios_in_span));
                let cid = usize::from(q.push(&cmd)?);
                started[i][cid] = now;
                slot_of[i][cid] = slot;
                in_flight += 1;
            }
            q.ring_sq(bar0)?;
        }
        if idle % STALL_CHECK == 0 && progress.elapsed() > STALL {
            return Err(format!(
                "{}: {in_flight} commands, no completion for {STALL:?}",
                cell.label()
            )
            .into());
        }
    }
    let elapsed = end.unwrap_or_else(Instant::now) - t0;
    let done = lat.len() as f64;
    lat.sort_unstable();
    Ok(Sample {
        iops: done / elapsed.as_secs_f64(),
        p50: percentile(&lat, 50.0),
        p99: percentile(&lat, 99.0),
        p999: percentile(&lat, 99.9),
        cpu: (cpu_after - cpu_before).as_nanos() as f64 / done.max(1.0),
    })
}

/// The `p`th percentile of `sorted` by the nearest-rank method (the smallest value with at
/// least `p` % of the samples at or below it); NaN when there are none.
pub fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64
}
