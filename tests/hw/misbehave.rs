//! Hardware tests of a misbehaving device (issue 14, item 5): edu told to DMA to an IOVA that
//! is not mapped (the IOMMU blocks it, the kernel logs a DMAR fault, no buffer changes), memory
//! decoding turned off under the library (typed errors or the bus's answer, never a SIGBUS in
//! safe code), and a reset in the middle of a DMA (no hang, the device works afterwards).
//!
//! Timeouts only turn a hang into a failure.

use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use uvfio::device::RegionIndex;
use uvfio::dma::AddressLimit;
use uvfio::mmio::MapOptions;
use uvfio::pci::config::Command;
use uvfio::{Device, DmaBuffer, DmaMemory, DmaOptions, DmaSpace, Errno, Error};

use crate::common::{self, device, say};
use crate::decoding::in_child;

/// How long a step that must happen may take before the test calls it a hang.
const ARRIVES: Duration = Duration::from_secs(10);

/// edu's DMA registers (BAR0) and its 4 KiB buffer.
const EDU_DMA_CMD: u64 = 0x98;
const EDU_BUF: u64 = 0x40000;

/// The message part of the kernel log records past `from` that contain every one of `words`.
fn log_lines_with(from: usize, words: &[&str]) -> Vec<String> {
    common::kernel_log()
        .into_iter()
        .skip(from)
        .map(|l| l.split_once(';').map_or(l.clone(), |(_, t)| t.to_owned()))
        .filter(|l| words.iter().all(|w| l.contains(w)))
        .collect()
}

/// edu in a fresh space, memory decoding and bus mastering on, no DMA running.
fn edu() -> (DmaSpace, Device) {
    let (space, d) = common::open_in_space(&device("UVFIO_TEST_EDU"));
    enable(&d);
    (space, d)
}

/// The two edus of one IOMMU group behind a bridge, opened in `space` and enabled.
fn shared_edus(space: &DmaSpace) -> (Device, Device) {
    let open = |var: &str| {
        space
            .open_pci_device(&device(var).parse().unwrap())
            .unwrap_or_else(|e| panic!("{var}: {e}"))
    };
    let (a, b) = (open("UVFIO_TEST_SHARED_A"), open("UVFIO_TEST_SHARED_B"));
    enable(&a);
    enable(&b);
    (a, b)
}

fn enable(d: &Device) {
    let config = d.pci_config().unwrap();
    config.enable_memory_space().unwrap();
    config.set_bus_master(true).unwrap();
    wait_dma_idle(d);
}

fn wait_dma_idle(d: &Device) {
    let bar0 = d.region(RegionIndex::BAR0).unwrap();
    let t0 = Instant::now();
    while bar0.read_u64(EDU_DMA_CMD).unwrap() & 1 != 0 {
        assert!(t0.elapsed() < ARRIVES, "edu's DMA never finished");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A 4 KiB buffer edu can reach (below 2^28) filled with `byte`.
fn filled(space: &DmaSpace, byte: u8) -> DmaBuffer {
    let mut b = DmaBuffer::with_options(space, 4096, DmaOptions::new().address_bits(28)).unwrap();
    b.fill(0, 4096, byte).unwrap();
    b
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn dma_to_an_unmapped_iova_faults_and_touches_no_buffer() {
    const TEST: &str = "dma_to_an_unmapped_iova_faults_and_touches_no_buffer";
    if !common::needs_iommu(
        TEST,
        "a DMA the IOMMU blocks; without one it would reach RAM",
    ) {
        return;
    }
    let (space, d) = edu();
    // Buffers on both sides of the hole, and edu's buffer loaded with a known pattern.
    let mut src = filled(&space, 0);
    let pattern: Vec<u8> = (0..1024u32).map(|i| (i * 13 + 7) as u8).collect();
    src.write_slice(0, &pattern).unwrap();
    common::edu_dma(&d, src.iova(), 1024, false);
    let guard_a = filled(&space, 0x5a);
    // An IOVA range that is reserved in the space's allocator but never mapped: no buffer
    // can be placed there while the reservation lives.
    let hole = space.allocate_iova(0x2000, AddressLimit::bits(28)).unwrap();
    let guard_b = filled(&space, 0xa5);
    let from = common::kernel_log().len();

    // Device to RAM (a DMA write) and RAM to device (a DMA read) at the hole: every call
    // returns, and edu finishes the command (its engine ignores the failed access).
    common::edu_dma(&d, hole.start(), 1024, true);
    common::edu_dma(&d, hole.start() + 0x1000, 1024, false);

    // The IOMMU logged both faults, at the hole's addresses. Faults are reported by an
    // interrupt of the IOMMU, so the records may come a moment after the DMA finished.
    let write_fault = format!("fault addr {:#x}", hole.start());
    let read_fault = format!("fault addr {:#x}", hole.start() + 0x1000);
    let t0 = Instant::now();
    let (writes, reads) = loop {
        let w = log_lines_with(from, &["DMAR", "DMA Write", &write_fault]);
        let r = log_lines_with(from, &["DMAR", "DMA Read", &read_fault]);
        if (!w.is_empty() && !r.is_empty()) || t0.elapsed() > ARRIVES {
            break (w, r);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let all = log_lines_with(from, &["DMAR"]);
    for line in &all {
        say(&format!("{TEST}: kernel: {line}"));
    }
    assert!(
        !writes.is_empty(),
        "no DMAR write fault logged; DMAR lines: {all:?}"
    );
    assert!(
        !reads.is_empty(),
        "no DMAR read fault logged; DMAR lines: {all:?}"
    );

    // Nothing the space maps changed: the neighbours keep their fill, the source its data.
    assert!(guard_a
        .read_to_vec(0, 4096)
        .unwrap()
        .iter()
        .all(|&b| b == 0x5a));
    assert!(guard_b
        .read_to_vec(0, 4096)
        .unwrap()
        .iter()
        .all(|&b| b == 0xa5));
    assert_eq!(src.read_to_vec(0, 1024).unwrap(), pattern);

    // The device still works: its buffer, read back to RAM. What the blocked read left in
    // edu's buffer is QEMU's business (it reports the failed access, not the data).
    let mut back = filled(&space, 0);
    common::edu_dma(&d, back.iova(), 1024, true);
    let got = back.read_to_vec(0, 1024).unwrap();
    say(&format!(
        "{TEST}: edu's buffer after the blocked read: {}",
        if got == pattern {
            "unchanged"
        } else if got.iter().all(|&b| b == 0xff) {
            "all-ones"
        } else if got.iter().all(|&b| b == 0) {
            "zeros"
        } else {
            "other bytes"
        }
    ));
    back.write_slice(0, &pattern).unwrap();
    common::edu_dma(&d, back.iova(), 1024, false);
    back.fill(0, 1024, 0).unwrap();
    common::edu_dma(&d, back.iova(), 1024, true);
    assert_eq!(back.read_to_vec(0, 1024).unwrap(), pattern);
    drop(hole);
    assert_eq!(space.dma_stats().leaked_bytes, 0);
    d.pci_config().unwrap().set_bus_master(false).unwrap();
}

/// The PCI command register written behind the library's back, through sysfs (as `setpci`
/// would): vfio-pci neither sees nor zaps anything then.
fn sysfs_command(addr: &str, set: Option<u16>) -> u16 {
    let path = common::sysfs_path(addr).join("config");
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    if let Some(v) = set {
        f.write_all_at(&v.to_le_bytes(), 4).unwrap();
    }
    let mut b = [0u8; 2];
    f.read_exact_at(&mut b, 4).unwrap();
    u16::from_le_bytes(b)
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn memory_decoding_off_gives_typed_errors_or_the_bus_answer_never_sigbus() {
    const TEST: &str = "memory_decoding_off_gives_typed_errors_or_the_bus_answer_never_sigbus";
    let addr = device("UVFIO_TEST_EDU");
    let (_space, d) = edu();
    let config = d.pci_config().unwrap();
    let slow = d
        .region_with(RegionIndex::BAR0, MapOptions::new().never_map())
        .unwrap();
    let id = slow.read_u32(0).unwrap();
    assert_eq!(id & 0xff, 0xed);

    // Through the library, with no BAR mapped: the guard turns decoding off, a read of BAR0
    // is the kernel's EIO (vfio-pci checks the command register on every pread/pwrite), a
    // write too, and no mapping can be made while it lives.
    let off = config.memory_decoding_off().unwrap();
    assert!(!config.command().unwrap().contains(Command::MEMORY));
    let err = slow.read_u32(0).unwrap_err();
    assert_eq!(err.errno(), Errno::EIO, "{err}");
    let err = slow.write_u32(0x04, 1).unwrap_err();
    assert_eq!(err.errno(), Errno::EIO, "{err}");
    let err = d.region(RegionIndex::BAR0).unwrap_err();
    assert_eq!(err.errno(), Errno::EBUSY, "{err}");
    // Dropping the guard turns decoding back on.
    drop(off);
    assert_eq!(slow.read_u32(0).unwrap(), id);

    // With a mapped BAR the library refuses to clear the bit (tests/hw/decoding.rs), so the
    // one way left is from outside: root writing the command register through sysfs, as
    // `setpci` does. vfio-pci judges "memory enabled" by its *virtual* command register
    // (`__vfio_pci_memory_enabled` reads `vconfig`), which such a write does not change: it
    // neither zaps the mapping nor refuses pread, so both reach the bus, which answers for
    // the absent BAR (0 from QEMU's unassigned memory; all-ones on real hardware). A SIGBUS
    // would kill the child, not the test binary.
    let bar0 = d.region(RegionIndex::BAR0).unwrap();
    assert!(bar0.is_mapped(0), "{bar0:?}");
    let cmd = sysfs_command(&addr, None);
    assert_ne!(cmd & 0x2, 0);
    let ended = in_child(|| {
        let off = sysfs_command(&addr, Some(cmd & !0x2));
        if off & 0x2 != 0 {
            return 3;
        }
        let mapped = bar0.read_u32(0);
        let pread = slow.read_u32(0);
        sysfs_command(&addr, Some(cmd));
        say(&format!(
            "{TEST}: decoding off behind vfio-pci: mapped read {mapped:?}, pread {pread:?}"
        ));
        match (mapped, pread) {
            (Ok(m), Ok(p)) if m == p && (m == 0 || m == u32::MAX) => 0,
            _ => 1,
        }
    });
    sysfs_command(&addr, Some(cmd));
    assert_eq!(
        ended,
        Ok(0),
        "the child ended with {ended:?} (Err(7): killed by SIGBUS; Ok(1): see the line above)"
    );
    assert!(config.command().unwrap().contains(Command::MEMORY));
    assert_eq!(bar0.read_u32(0).unwrap(), id);
    assert_eq!(slow.read_u32(0).unwrap(), id);
}

/// Starts an edu DMA of `len` bytes from edu's buffer to `iova` and returns at once: edu runs
/// it 100 ms (virtual time) later.
fn start_dma_to_ram(d: &Device, iova: u64, len: u64) {
    let bar0 = d.region(RegionIndex::BAR0).unwrap();
    bar0.write_u64(0x80, EDU_BUF).unwrap();
    bar0.write_u64(0x88, iova).unwrap();
    bar0.write_u64(0x90, len).unwrap();
    bar0.write_u64(EDU_DMA_CMD, 1 | 2).unwrap();
}

/// A round trip through edu's buffer: RAM to edu, then edu to another buffer.
fn round_trip(space: &DmaSpace, d: &Device, seed: u32) {
    let mut src = filled(space, 0);
    let dst = filled(space, 0);
    let data: Vec<u8> = (0..512u32).map(|i| (i * 31 + seed) as u8).collect();
    src.write_slice(0, &data).unwrap();
    common::edu_dma(d, src.iova(), 512, false);
    common::edu_dma(d, dst.iova(), 512, true);
    assert_eq!(dst.read_to_vec(0, 512).unwrap(), data);
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn reset_in_the_middle_of_a_dma_does_not_hang_and_the_device_works_after() {
    const TEST: &str = "reset_in_the_middle_of_a_dma_does_not_hang_and_the_device_works_after";
    // edu on the root bus has no reset at all: the call says so at once, mid-transfer too.
    let (space, d) = edu();
    let dst = filled(&space, 0x11);
    start_dma_to_ram(&d, dst.iova(), 256);
    let err = d.reset().unwrap_err();
    assert!(matches!(err, Error::NotSupported { .. }), "{err}");
    wait_dma_idle(&d);
    round_trip(&space, &d, 1);
    drop((dst, d, space));

    // The two edus behind a bridge can be reset together, by a bus (hot) reset: start a DMA
    // on one, reset the bus under it.
    if !common::needs_iommu(TEST, "the shared-group edus exist only with an IOMMU") {
        return;
    }
    let space = common::space();
    let (a, b) = shared_edus(&space);
    round_trip(&space, &a, 2);
    let mut dst = filled(&space, 0x22);
    start_dma_to_ram(&a, dst.iova(), 256);
    let groups: Vec<_> = a.group().into_iter().collect();
    let t0 = Instant::now();
    let reset = a.pci_hot_reset(&groups);
    say(&format!("{TEST}: hot reset mid-DMA: {reset:?}"));
    reset.unwrap_or_else(|e| panic!("hot reset of the shared edus: {e}"));
    assert!(
        t0.elapsed() < ARRIVES,
        "the hot reset took past the timeout"
    );
    // vfio-pci restored config space: decoding back on, mappings fault back in.
    for dev in [&a, &b] {
        let cmd = dev.pci_config().unwrap().command().unwrap();
        assert!(cmd.contains(Command::MEMORY), "{cmd:?}");
        let bar0 = dev.region(RegionIndex::BAR0).unwrap();
        assert_eq!(bar0.read_u32(0).unwrap() & 0xff, 0xed);
    }
    // The interrupted DMA finishes (or was dropped); either way the engine goes idle.
    wait_dma_idle(&a);
    let landed = dst.read_to_vec(0, 256).unwrap();
    say(&format!(
        "{TEST}: the DMA started before the reset {}",
        if landed.iter().all(|&x| x == 0x22) {
            "left the buffer untouched"
        } else {
            "wrote the buffer"
        }
    ));
    dst.fill(0, 4096, 0).unwrap();
    enable(&a);
    enable(&b);
    round_trip(&space, &a, 3);
    round_trip(&space, &b, 4);
    for dev in [&a, &b] {
        dev.pci_config().unwrap().set_bus_master(false).unwrap();
    }
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn mapped_reads_racing_a_hot_reset_get_values_never_sigbus() {
    const TEST: &str = "mapped_reads_racing_a_hot_reset_get_values_never_sigbus";
    if !common::needs_iommu(TEST, "the shared-group edus exist only with an IOMMU") {
        return;
    }
    let space = common::space();
    let (a, b) = shared_edus(&space);
    let bar0 = a.region(RegionIndex::BAR0).unwrap();
    assert!(bar0.is_mapped(0), "{bar0:?}");
    let id = bar0.read_u32(0).unwrap();
    // vfio-pci zaps the mappings and holds its memory lock across the reset; a fault in that
    // window waits for the lock and maps again once config space is restored. The hot reset
    // only *tries* each device's lock (`vfio_pci_dev_set_hot_reset`: "Locking multiple
    // devices is prone to deadlock, runaway and unwind if we hit contention"), so while this
    // process's own threads fault the mapping in (or pread/pwrite) it may fail with EBUSY:
    // a typed error, and the next try once the readers stop succeeds. Readers on two threads
    // hammer the mapping while the bus is reset three times; in a forked child, so that a
    // SIGBUS fails the test instead of killing the binary.
    let ended = in_child(|| {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = AtomicBool::new(false);
        let groups: Vec<_> = a.group().into_iter().collect();
        let (resets, reads) = std::thread::scope(|s| {
            let readers: Vec<_> = (0..2)
                .map(|_| {
                    s.spawn(|| {
                        // Reads that gave the ID, and every other outcome with its count.
                        let mut good = 0u64;
                        let mut other = std::collections::BTreeMap::<String, u64>::new();
                        while !stop.load(Ordering::Relaxed) {
                            match bar0.read_u32(0) {
                                Ok(v) if v == id => good += 1,
                                r => *other.entry(format!("{r:?}")).or_default() += 1,
                            }
                        }
                        (good, other)
                    })
                })
                .collect();
            let resets: Vec<_> = (0..3)
                .map(|_| a.pci_hot_reset(&groups).map_err(|e| e.errno()))
                .collect();
            stop.store(true, Ordering::Relaxed);
            let reads: Vec<_> = readers.into_iter().map(|r| r.join().unwrap()).collect();
            (resets, reads)
        });
        let quiet = a.pci_hot_reset(&groups);
        say(&format!(
            "{TEST}: resets under reads {resets:?}, reads per thread {reads:?}, reset after {quiet:?}"
        ));
        let typed = resets
            .iter()
            .all(|r| matches!(r, Ok(()) | Err(Errno::EBUSY)));
        // A read that lands while the bus is in reset gets what the bus answers for an
        // absent device (see the report line); what matters is that it returns. How many
        // reads land before, inside or after the resets is up to the scheduler (under TCG a
        // thread may see nothing but the reset window), so no count is asserted; the read
        // after the child checks the device answers again.
        let answered = reads.iter().all(|(_good, other)| {
            other
                .keys()
                .all(|k| k == "Ok(0)" || k == &format!("Ok({})", u32::MAX))
        });
        match (typed, answered, quiet) {
            (true, true, Ok(())) => 0,
            _ => 1,
        }
    });
    assert_eq!(
        ended,
        Ok(0),
        "the child ended with {ended:?} (Err(7): killed by SIGBUS; Ok(1): see the line above)"
    );
    assert_eq!(bar0.read_u32(0).unwrap(), id);
    for dev in [&a, &b] {
        dev.pci_config().unwrap().set_bus_master(false).unwrap();
    }
}
