//! A userspace NVMe driver: brings up the controller, identifies it and its first namespace,
//! creates an I/O queue pair whose completions arrive by MSI-X, writes a pattern to a few
//! blocks, reads it back and checks it, puts the old contents back, and shuts down cleanly.
//!
//! ```text
//! nvme [PCI-ADDRESS] [--iommu MODE] [--repeat N] [--lba N] [--expect-persistent]
//!     PCI-ADDRESS          default: $UVFIO_TEST_NVME
//!     --iommu MODE         the IOMMU backend, by the kernel selftests' names (vfio_type1_iommu,
//!                          vfio_type1v2_iommu, iommufd_compat_type1, iommufd_compat_type1v2,
//!                          iommufd, or noiommu: VFIO's unsafe no-IOMMU mode); default:
//!                          the best the host has
//!     --repeat N           bring up, test and shut down N times on the same open device
//!     --lba N              the first block of the test (default: the middle of the namespace)
//!     --expect-persistent  fail if the drive discards writes (default: report it, see below)
//!
//! tests/vm/cargo-vm run --example nvme                  # in the emulated IOMMU host
//! tests/vm/cargo-vm run --example nvme -- --repeat 2    # two bring-ups and shutdowns
//! tests/vm/nvme-bench.sh [--boots N]                    # against Linux's nvme driver + fio
//! ```
//!
//! `nvme --bench [...]` is the benchmark instead: 4 KiB random reads and writes at several
//! queue depths over one or more I/O queue pairs, this driver (polled) against the kernel's
//! `nvme` driver driven by `fio` on the same controller; its options and method are in
//! `bench.rs`, the Linux half in `fio.rs`.
//!
//! On a real IOMMU host, bind the controller to vfio-pci first (it must not hold a mounted
//! file system). The test blocks are read first and written back at the end, so a run that
//! completes leaves the drive's contents as they were; a run killed in between leaves the
//! test pattern in those blocks.
//!
//! # Design
//!
//! The driver is split as a real one would be:
//!
//! - `regs`: the BAR0 registers, CAP decoding and the doorbell layout;
//! - `queue`: a submission/completion queue pair in [`uvfio::DmaBuffer`]s: `#[repr(C)]`
//!   entries proven plain data by zerocopy's derives, command ids, phase tracking, batched doorbells,
//!   and PRP lists from a [`uvfio::DmaPool`] (no system call per command);
//! - `cmd`: command builders, status codes and the Identify structures;
//! - `ctrl`: bring-up, admin commands, the I/O queue pairs, interrupts, the way down;
//! - `bench` and `fio`: `--bench`, this driver against Linux's.
//!
//! Bring-up is the specification's: enable memory decoding and bus mastering; MSI-X on two
//! vectors (the admin queue always signals vector 0, the I/O completion queue is created on
//! vector 1 so the two can be told apart); CC.EN = 0 and wait for CSTS.RDY = 0 within CAP.TO;
//! admin queues into AQA/ASQ/ACQ; CC.EN = 1 and wait for RDY = 1, failing on CSTS.CFS. Then
//! Identify Controller, the active namespace list, Identify Namespace; Set Features (Number of
//! Queues), Create I/O CQ (interrupts enabled), Create I/O SQ.
//!
//! Each wait for completions looks at the completion queue first and sleeps on the vector's
//! eventfd only when nothing is there, so no interrupt can be missed; the CQ head doorbell is
//! written once per batch, and so is the SQ tail doorbell.
//!
//! The way down deletes the I/O queues, asks for a normal shutdown (CC.SHN, so a drive commits
//! its write cache), disables the controller (CC.EN = 0, RDY = 0) and turns bus mastering
//! off; dropping the controller on an error path still disables it before any queue memory is
//! unmapped. So a second run (or a second bring-up on the same open device, `--repeat`)
//! starts from a controller in the state vfio-pci handed it over.
//!
//! # What the I/O test proves
//!
//! 1. The old contents are read twice, into buffers filled with two different poison bytes:
//!    equal results prove that every byte was written by the controller through the IOMMU.
//! 2. A fresh pattern (block number, a per-run nonce, pseudo-random bytes) is written with
//!    one command (its pages listed in a PRP list), flushed, compared (Compare, if the
//!    controller has it: the controller reads the pattern from host memory and the medium and
//!    reports whether they match), and read back with several commands behind one doorbell.
//! 3. Read-back equal to the pattern: the data made the round trip. Read-back equal to the old
//!    contents (and Compare reporting a mismatch): the drive accepted the write and dropped it,
//!    which is what QEMU's `null-co://` backing does; this is reported as "backing store
//!    discards writes" and accepted unless `--expect-persistent` is given. Anything else is a
//!    failure.
//! 4. The old contents are written back, read back and compared.
//!
//! Interrupts: the I/O vector must fire during the I/O, and the counts of both vectors are
//! printed.

// The one exception: opening VFIO's no-IOMMU mode (`--iommu noiommu`), which no library can
// make safe.
#![deny(unsafe_code)]

mod bench;
mod cmd;
mod ctrl;
mod fio;
mod queue;
mod regs;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use uvfio::dma::{DmaBuffer, DmaMemory};
use uvfio::pci::PciAddress;
use uvfio::{Device, DmaSpace, IommuMode};

use cmd::{Command, ControllerId, NamespaceId, Transfer};
use ctrl::Controller;
use queue::Completion;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// Entries of the I/O queues.
const IO_ENTRIES: u16 = 64;
/// Bytes the I/O test moves: 16 KiB is four pages, so one command needs a PRP list.
const TEST_BYTES: usize = 16 << 10;
/// The read batch: this many Read commands behind one doorbell.
const READS_PER_BATCH: usize = 4;
const POISON: [u8; 2] = [0xa5, 0x5a];

struct Options {
    address: PciAddress,
    iommu: IommuMode,
    repeat: u32,
    lba: Option<u64>,
    expect_persistent: bool,
}

fn parse_args() -> Result<Options, String> {
    let mut address = None;
    let mut repeat = 1;
    let mut lba = None;
    let mut expect_persistent = false;
    let mut iommu = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--iommu" {
            let name = args.next().ok_or("--iommu needs a mode")?;
            iommu = Some(name.parse::<IommuMode>().map_err(|e| e.to_string())?);
            continue;
        }
        let mut value = |name: &str| {
            args.next()
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or(format!("{name} needs a number"))
        };
        match arg.as_str() {
            "--repeat" => {
                repeat = u32::try_from(value("--repeat")?).map_err(|e| e.to_string())?;
            }
            "--lba" => lba = Some(value("--lba")?),
            "--expect-persistent" => expect_persistent = true,
            a if a.starts_with('-') => return Err(format!("unknown option {a}")),
            a => address = Some(a.to_string()),
        }
    }
    let address = address
        .or_else(|| std::env::var("UVFIO_TEST_NVME").ok())
        .ok_or("no PCI address given and UVFIO_TEST_NVME is not set")?;
    Ok(Options {
        address: address.parse().map_err(|e| format!("{address}: {e}"))?,
        iommu: iommu.unwrap_or_else(IommuMode::best_available),
        repeat: repeat.max(1),
        lba,
        expect_persistent,
    })
}

/// What happened to the written data.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Read back as written.
    Kept,
    /// The write completed but the blocks still read as before (null-co).
    Discarded,
}

/// One bring-up, test and shutdown; returns the summary line.
fn run_once(space: &DmaSpace, device: &Device, opts: &Options, run: u32) -> Res<String> {
    let (mut ctrl, start) = Controller::start(space, device)?;
    let cap = start.cap;
    println!(
        "nvme {} ({}): NVMe {}, {cap}; {} MSI-X vectors, using vector 0 for admin and {} for I/O",
        opts.address,
        space.mode(),
        regs::version(start.version),
        start.msix_vectors,
        ctrl.io_vector()
    );
    println!(
        "bring-up: found CC {:#x} CSTS {:#x} ({}); RDY 0 after {:?}; admin queues of {} \
         entries at IOVA {:#x} (SQ) and {:#x} (CQ); enabled, RDY 1 after {:?}",
        start.found_cc,
        start.found_csts,
        if start.found_cc & regs::CC_EN != 0 {
            "enabled: left running by a previous user"
        } else {
            "disabled"
        },
        start.disable_time,
        ctrl::ADMIN_ENTRIES,
        start.admin_queues.0,
        start.admin_queues.1,
        start.enable_time
    );

    let id = ctrl.identify_controller()?;
    println!(
        "controller: model \"{}\", serial \"{}\", firmware \"{}\", PCI vendor {:04x}, id {}, \
         NVMe {}",
        id.model,
        id.serial,
        id.firmware,
        id.vendor,
        id.controller_id,
        regs::version(id.version)
    );
    println!(
        "  max transfer {}, volatile write cache {}, {} namespace(s), optional commands: {}",
        id.max_transfer(cap.page_sizes().0)
            .map_or("unlimited".to_string(), |b| human(b as u64)),
        if id.volatile_write_cache() {
            "present"
        } else {
            "absent"
        },
        id.namespaces,
        id.optional_commands().join(", ")
    );

    let active = ctrl.active_namespaces()?;
    let nsid = *active.first().ok_or("no active namespace")?;
    let ns = ctrl.identify_namespace(nsid)?;
    println!(
        "namespace {nsid} (active: {active:?}): {} blocks of {} B = {} (capacity {} blocks, {} in \
         use), format {} of {}",
        ns.blocks,
        ns.block_size,
        human(ns.bytes()),
        ns.capacity,
        ns.used,
        ns.format.0,
        ns.format.1
    );
    if ns.metadata != 0 {
        return Err(format!(
            "namespace {nsid} has {} metadata bytes per block; this driver handles none",
            ns.metadata
        )
        .into());
    }

    let (sqs, cqs) = ctrl.create_io_queues(IO_ENTRIES)?;
    println!(
        "I/O queue pair 1: {IO_ENTRIES} entries each, completions on MSI-X vector {} \
         (the controller allows {sqs} SQs and {cqs} CQs)",
        ctrl.io_vector()
    );

    let (admin_irqs, admin_commands) = ctrl.settle_admin_irqs()?;
    let before = ctrl.irq_counts()?;
    let io_before = ctrl.io_commands();
    let (outcome, io_line) = io_test(&mut ctrl, space, &id, &ns, nsid, opts, run)?;
    let mut after = ctrl.irq_counts()?;
    let io_vector = ctrl.io_vector() as usize;
    if after[io_vector] == before[io_vector] {
        // The last completion can be seen before its interrupt has made it to the eventfd.
        ctrl.wait_irq(io_vector as u32, Duration::from_secs(1))?;
        after = ctrl.irq_counts()?;
    }
    let during: Vec<u64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    let io = ctrl.io_commands();
    println!(
        "interrupts: {admin_irqs} signals of vector 0 for {admin_commands} admin commands; \
         during the I/O ({} commands in {} batches): {} (signals close together merge)",
        io.0 - io_before.0,
        io.1 - io_before.1,
        counts(&during, io_vector)
    );
    if during[io_vector] == 0 {
        return Err(format!("no interrupt on the I/O vector {io_vector} during the I/O").into());
    }

    let down = ctrl.shutdown()?;
    println!(
        "shutdown: {}normal shutdown complete after {:?}, disabled (RDY 0) after {:?}, bus \
         mastering off",
        if down.deleted_io_queues {
            "I/O queues deleted, "
        } else {
            ""
        },
        down.shutdown_time,
        down.disable_time
    );
    if outcome == Outcome::Discarded && opts.expect_persistent {
        return Err("the drive discards writes (--expect-persistent)".into());
    }
    Ok(format!(
        "model \"{}\", serial \"{}\", firmware \"{}\", namespace {nsid}: {} ({} x {} B); {io_line}",
        id.model,
        id.serial,
        id.firmware,
        human(ns.bytes()),
        ns.blocks,
        ns.block_size
    ))
}

/// The I/O test (see the module docs); returns the outcome and its summary.
fn io_test(
    ctrl: &mut Controller,
    space: &DmaSpace,
    id: &ControllerId,
    ns: &NamespaceId,
    nsid: u32,
    opts: &Options,
    run: u32,
) -> Res<(Outcome, String)> {
    let bs = ns.block_size as usize;
    let blocks = (TEST_BYTES / bs).max(4);
    let bytes = blocks * bs;
    let slba = opts.lba.unwrap_or(ns.blocks / 2);
    if slba
        .checked_add(blocks as u64)
        .is_none_or(|end| end > ns.blocks)
    {
        return Err(format!(
            "blocks {slba}..{} are beyond the namespace's {}",
            slba.saturating_add(blocks as u64),
            ns.blocks
        )
        .into());
    }
    // One command moves at most MDTS and 65536 blocks.
    let max_blocks = id
        .max_transfer(regs::PAGE_SIZE)
        .map_or(usize::MAX, |b| b / bs)
        .min(1 << 16);
    if max_blocks == 0 {
        return Err(format!("the maximum transfer is less than one {bs}-byte block").into());
    }
    let per_write = blocks.min(max_blocks);
    let per_read = (blocks / READS_PER_BATCH).clamp(1, max_blocks);
    let io = Io {
        nsid,
        slba,
        blocks,
        bs,
    };
    println!(
        "I/O test: {blocks} blocks ({}) from LBA {slba}; writes of {per_write} blocks per \
         command, reads of {per_read}",
        human(bytes as u64)
    );
    let started = Instant::now();
    let mut to_dev = DmaBuffer::new(space, bytes)?;
    let mut from_dev = DmaBuffer::new(space, bytes)?;

    // 1. The old contents, twice, into differently poisoned buffers.
    let old = io.read(ctrl, &mut from_dev, per_read, POISON[0])?;
    let again = io.read(ctrl, &mut from_dev, per_read, POISON[1])?;
    if let Some(at) = first_difference(&old, &again) {
        return Err(format!(
            "two reads of the same blocks differ at {}: data not written by the device, or \
             the blocks changed meanwhile",
            io.position(at)
        )
        .into());
    }
    let zero = old.iter().all(|&b| b == 0);
    println!(
        "  read the old contents twice (buffers poisoned with {:#04x} and {:#04x}): identical, \
         every byte came from the controller{}",
        POISON[0],
        POISON[1],
        if zero { "; all zeros" } else { "" }
    );

    // 2. Write the pattern, flush, compare, read back.
    let pattern = pattern(slba, blocks, bs, nonce(run));
    to_dev.write_slice(0, &pattern)?;
    let done = io.transfer(ctrl, Command::write, &to_dev, per_write)?;
    success("Write", &done)?;
    println!(
        "  wrote the pattern: {} Write command(s){}: success",
        done.len(),
        if bytes > 2 * regs::PAGE_SIZE {
            " with a PRP list"
        } else {
            ""
        }
    );
    success("Flush", &ctrl.io(&[Command::flush(nsid)])?)?;
    let compared = if id.supports_compare() {
        let done = io.transfer(ctrl, Command::compare, &to_dev, per_write)?;
        let status = done
            .iter()
            .map(|c| c.status)
            .find(|s| !s.is_success())
            .unwrap_or(done[0].status);
        if !status.is_success() && !status.is_compare_failure() {
            return Err(format!("Compare: {status}").into());
        }
        println!("  flushed; Compare with the pattern: {status}");
        Some(status.is_success())
    } else {
        println!("  flushed; the controller has no Compare command");
        None
    };
    let back = io.read(ctrl, &mut from_dev, per_read, POISON[0])?;
    let outcome = if back == pattern {
        Outcome::Kept
    } else if back == old {
        Outcome::Discarded
    } else {
        let at = first_difference(&back, &pattern).unwrap_or(0);
        return Err(format!(
            "read-back differs from the pattern at {} (wrote {:#04x}, read {:#04x}), and from \
             the old contents",
            io.position(at),
            pattern[at],
            back[at]
        )
        .into());
    };
    match (outcome, compared) {
        (Outcome::Kept, Some(false)) => {
            return Err("the blocks read back as written, but Compare reported a mismatch".into())
        }
        (Outcome::Discarded, Some(true)) => {
            return Err("Compare matched the pattern, but the blocks read back unchanged".into())
        }
        _ => {}
    }
    println!(
        "  read back with {} Read commands behind one doorbell: {}",
        blocks.div_ceil(per_read),
        match outcome {
            Outcome::Kept => "matches the pattern",
            Outcome::Discarded =>
                "the old contents, not the pattern: backing store discards writes (null-co?)",
        }
    );

    // 3. Put the old contents back, and check.
    to_dev.write_slice(0, &old)?;
    success(
        "Write",
        &io.transfer(ctrl, Command::write, &to_dev, per_write)?,
    )?;
    success("Flush", &ctrl.io(&[Command::flush(nsid)])?)?;
    let restored = io.read(ctrl, &mut from_dev, per_read, POISON[1])?;
    if let Some(at) = first_difference(&restored, &old) {
        return Err(format!("the restored blocks differ at {}", io.position(at)).into());
    }
    if id.supports_compare() {
        success(
            "Compare with the old contents",
            &io.transfer(ctrl, Command::compare, &to_dev, per_write)?,
        )?;
    }
    println!(
        "  wrote the old contents back: read back{} match, in {:?} for the whole test",
        if id.supports_compare() {
            " and Compare"
        } else {
            ""
        },
        started.elapsed()
    );

    let line = match outcome {
        Outcome::Kept => format!(
            "I/O: {blocks} blocks at LBA {slba} written, read back and verified{}, then restored",
            match compared {
                Some(_) => " (and by Compare)",
                None => "",
            }
        ),
        Outcome::Discarded => format!(
            "I/O: {blocks} blocks at LBA {slba}: writes complete but backing store discards \
             writes (null-co): reads return the old contents ({}), DMA both ways checked{}",
            if zero { "zeros" } else { "unchanged" },
            match compared {
                Some(_) => " (Compare: pattern differs, old contents match)",
                None => "",
            }
        ),
    };
    Ok((outcome, line))
}

/// The blocks of the I/O test.
struct Io {
    nsid: u32,
    slba: u64,
    blocks: usize,
    bs: usize,
}

impl Io {
    /// All the test blocks from or to `buf`, in commands of `per_command` blocks, submitted
    /// together.
    fn transfer(
        &self,
        ctrl: &mut Controller,
        op: fn(u32, u64, u32, Transfer) -> Command,
        buf: &DmaBuffer,
        per_command: usize,
    ) -> Res<Vec<Completion>> {
        let commands: Vec<Command> = (0..self.blocks)
            .step_by(per_command)
            .map(|first| {
                let n = per_command.min(self.blocks - first);
                let data = Transfer {
                    iova: buf.iova() + (first * self.bs) as u64,
                    len: n * self.bs,
                };
                // n <= 65536: the caller keeps per_command within MDTS and NLB's 16 bits.
                op(self.nsid, self.slba + first as u64, n as u32, data)
            })
            .collect();
        ctrl.io(&commands)
    }

    /// Reads the test blocks into `buf`, first filled with `poison`.
    fn read(
        &self,
        ctrl: &mut Controller,
        buf: &mut DmaBuffer,
        per_command: usize,
        poison: u8,
    ) -> Res<Vec<u8>> {
        let len = self.blocks * self.bs;
        buf.fill(0, len, poison)?;
        success(
            "Read",
            &self.transfer(ctrl, Command::read, buf, per_command)?,
        )?;
        Ok(buf.read_to_vec(0, len)?)
    }

    /// "LBA n byte m" for a byte offset into the test blocks.
    fn position(&self, offset: usize) -> String {
        format!(
            "LBA {} byte {}",
            self.slba + (offset / self.bs) as u64,
            offset % self.bs
        )
    }
}

fn success(what: &str, done: &[Completion]) -> Res<()> {
    match done.iter().find(|c| !c.status.is_success()) {
        None => Ok(()),
        Some(c) => Err(format!("{what}: {}", c.status).into()),
    }
}

fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    a.iter().zip(b).position(|(x, y)| x != y)
}

/// Fresh for every run and process: the time, and the run number.
fn nonce(run: u32) -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    t ^ u64::from(run) << 56 | 1
}

/// Each block starts with its LBA and the nonce, then pseudo-random bytes (xorshift64*) from
/// both: no two blocks, and no two runs, write the same data.
fn pattern(slba: u64, blocks: usize, bs: usize, nonce: u64) -> Vec<u8> {
    let mut data = Vec::with_capacity(blocks * bs);
    for b in 0..blocks as u64 {
        let lba = slba + b;
        data.extend_from_slice(&lba.to_le_bytes());
        data.extend_from_slice(&nonce.to_le_bytes());
        let mut x = nonce ^ lba.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        for _ in 16..bs {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            data.push((x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8);
        }
    }
    data
}

fn counts(counts: &[u64], io_vector: usize) -> String {
    counts
        .iter()
        .enumerate()
        .map(|(v, n)| {
            let role = match (v == 0, v == io_vector) {
                (true, true) => "admin and I/O",
                (true, false) => "admin",
                _ => "I/O",
            };
            format!("vector {v} ({role}) {n}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn human(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.2} GiB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.2} MiB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{} KiB", b >> 10),
        b => format!("{b} B"),
    }
}

fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some("--bench") {
        return bench::main(std::env::args().skip(2));
    }
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("nvme: {e}");
            eprintln!(
                "usage: nvme [PCI-ADDRESS] [--iommu MODE] [--repeat N] [--lba N] [--expect-persistent] \
                 (address default: $UVFIO_TEST_NVME)"
            );
            return ExitCode::from(2);
        }
    };
    let result = (|| -> Res<Vec<String>> {
        // The one backend-specific line of the driver.
        let space = open_space(opts.iommu)?;
        let device = space.open_pci_device(&opts.address)?;
        let mut lines = Vec::new();
        for run in 1..=opts.repeat {
            if opts.repeat > 1 {
                println!("--- run {run} of {}", opts.repeat);
            }
            lines.push(run_once(&space, &device, &opts, run)?);
        }
        Ok(lines)
    })();
    match result {
        Ok(lines) => {
            for (i, line) in lines.iter().enumerate() {
                println!("nvme: run {}: {line}", i + 1);
            }
            println!("nvme: all checks passed");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("nvme: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The DMA space of `mode`. `noiommu` (VFIO's no-IOMMU mode) needs the `unsafe` constructor.
#[allow(unsafe_code)] // VFIO's no-IOMMU mode cannot be made safe.
pub(crate) fn open_space(mode: IommuMode) -> uvfio::Result<DmaSpace> {
    if mode == IommuMode::NoIommu {
        // SAFETY: this driver gives its device only the addresses of its own DMA buffers and
        // pools, each while it lives, and stops it (its DMA finished, or the device reset or
        // disabled) before those are dropped.
        unsafe { DmaSpace::open_noiommu() }
    } else {
        DmaSpace::open(mode)
    }
}
