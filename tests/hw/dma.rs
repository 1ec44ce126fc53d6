//! Hardware tests of the DMA layer: QEMU's `edu` device copies through the emulated IOMMU.
//!
//! edu copies between its 4 KiB buffer (device offset 0x40000) and an IOVA, one DMA per
//! command, 100 ms each. Two traps of QEMU 7.2 shape every helper here:
//! - a DMA not wholly inside the buffer kills QEMU, so `Edu::dma` refuses such a request
//!   before touching a register. 7.2's range check is off by one: the end (exclusive) must be
//!   *below* 0x41000, so at most 4095 bytes move per DMA;
//! - edu masks DMA addresses to 28 bits (its default `dma_mask`), so every buffer it uses is
//!   allocated with `address_bits(28)` and `Edu::dma` refuses IOVAs at or above 256 MiB.

use std::collections::BTreeMap;
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use uvfio::device::RegionIndex;
use uvfio::dma::{AddressLimit, DmaAccess, DmaBuffer, DmaMemory, DmaOptions, DmaPool, PageSize};
use uvfio::iommu::DmaRun;
use uvfio::{Container, Device, Errno, Error, Group, IommuType};

use crate::common::{device, fd_count};

const EDU_BUF: u64 = 0x40000;
const EDU_BUF_SIZE: usize = 0x1000;
/// The longest DMA edu 7.2 accepts: its range check wants the *end* strictly inside the
/// buffer, so a DMA of all 4096 bytes is "out of bounds" (and kills QEMU).
const EDU_MAX: usize = EDU_BUF_SIZE - 1;
const EDU_BITS: u32 = 28;
const PAGE: u64 = 4096;

/// The edu device opened in a fresh type1v2 container, with bus mastering on.
struct Edu {
    device: Device,
    container: Container,
    bar0: u64,
}

fn group_of(addr: &str) -> Group {
    Group::open_pci(&addr.parse().expect("PCI address")).expect("open the group")
}

fn open_edu() -> Edu {
    let addr = device("UVFIO_TEST_EDU");
    if let Ok(mask) = std::env::var("UVFIO_TEST_EDU_DMA_MASK") {
        let mask = u64::from_str_radix(mask.trim_start_matches("0x"), 16).expect("hex dma mask");
        assert_eq!(
            mask,
            (1 << EDU_BITS) - 1,
            "the tests assume edu's 28-bit dma_mask"
        );
    }
    let container = Container::new().expect("container");
    let group = group_of(&addr);
    group.set_container(&container).expect("set_container");
    container.set_iommu(IommuType::Type1v2).expect("set_iommu");
    let device = group.open_device(&addr).expect("open edu");
    let bar0 = device.region_info(RegionIndex::BAR0).expect("BAR0").offset;
    let config = device
        .region_info(RegionIndex::CONFIG)
        .expect("config region")
        .offset;
    // PCI command register: set Bus Master (bit 2) so the device may DMA.
    let mut cmd = [0u8; 2];
    pread(&device, &mut cmd, config + 4);
    let value = u16::from_le_bytes(cmd) | 0x4;
    pwrite(&device, &value.to_le_bytes(), config + 4);
    let edu = Edu {
        device,
        container,
        bar0,
    };
    assert_eq!(edu.read32(0) & 0xff, 0xed, "not an edu device");
    // edu has no reset: wait for a DMA a previous test may have left running.
    edu.wait_idle();
    edu
}

fn pread(device: &Device, buf: &mut [u8], offset: u64) {
    let n = nix::sys::uio::pread(device.as_fd(), buf, offset as i64).expect("pread");
    assert_eq!(n, buf.len(), "short pread at {offset:#x}");
}

fn pwrite(device: &Device, buf: &[u8], offset: u64) {
    let n = nix::sys::uio::pwrite(device.as_fd(), buf, offset as i64).expect("pwrite");
    assert_eq!(n, buf.len(), "short pwrite at {offset:#x}");
}

impl Edu {
    fn read32(&self, reg: u64) -> u32 {
        assert!(reg < 0x80 && reg % 4 == 0);
        let mut b = [0u8; 4];
        pread(&self.device, &mut b, self.bar0 + reg);
        u32::from_le_bytes(b)
    }

    fn read64(&self, reg: u64) -> u64 {
        assert!(reg >= 0x80 && reg % 8 == 0);
        let mut b = [0u8; 8];
        pread(&self.device, &mut b, self.bar0 + reg);
        u64::from_le_bytes(b)
    }

    fn write64(&self, reg: u64, value: u64) {
        assert!(reg >= 0x80 && reg % 8 == 0);
        pwrite(&self.device, &value.to_le_bytes(), self.bar0 + reg);
    }

    fn wait_idle(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.read64(0x98) & 1 != 0 {
            assert!(Instant::now() < deadline, "edu DMA did not finish in 10 s");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// One edu DMA of `len` bytes between IOVA `iova` and edu buffer offset `edu_off`.
    /// Refuses anything that would crash QEMU or hit a masked address.
    fn dma(&self, iova: u64, edu_off: usize, len: usize, to_ram: bool) {
        assert!(
            len > 0 && edu_off + len <= EDU_MAX,
            "edu DMA of {len} bytes at buffer offset {edu_off:#x} would end outside \
             [0x40000, 0x40fff) (edu 7.2 kills QEMU then)"
        );
        assert!(
            iova + len as u64 <= 1 << EDU_BITS,
            "IOVA {iova:#x} is beyond edu's 28-bit DMA mask"
        );
        self.wait_idle();
        let edu = EDU_BUF + edu_off as u64;
        let (src, dst) = if to_ram { (edu, iova) } else { (iova, edu) };
        self.write64(0x80, src);
        self.write64(0x88, dst);
        self.write64(0x90, len as u64);
        self.write64(0x98, 1 | (u64::from(to_ram) << 1));
        self.wait_idle();
    }

    fn ram_to_edu(&self, iova: u64, edu_off: usize, len: usize) {
        self.dma(iova, edu_off, len, false);
    }

    fn edu_to_ram(&self, edu_off: usize, iova: u64, len: usize) {
        self.dma(iova, edu_off, len, true);
    }

    fn dma_avail(&self) -> Option<u32> {
        self.container.iommu_info().expect("iommu_info").dma_avail()
    }
}

/// Fresh random bytes (xorshift seeded from the process's hasher keys and the clock).
fn random_bytes(len: usize) -> Vec<u8> {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    let mut x = h.finish() | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn edu_options() -> DmaOptions {
    DmaOptions::new().address_bits(EDU_BITS)
}

/// RAM -> edu -> RAM: `src` bytes at `src_off` go to the edu buffer and back into `dst` at
/// `dst_off`; the bytes must arrive unchanged.
fn round_trip(
    edu: &Edu,
    src: &mut impl DmaMemory,
    src_off: usize,
    dst: &mut impl DmaMemory,
    dst_off: usize,
    len: usize,
    edu_off: usize,
) {
    let data = random_bytes(len);
    src.write_slice(src_off, &data).unwrap();
    dst.fill(dst_off, len, 0).unwrap();
    edu.ram_to_edu(src.iova_at(src_off, len).unwrap(), edu_off, len);
    edu.edu_to_ram(edu_off, dst.iova_at(dst_off, len).unwrap(), len);
    assert_eq!(
        dst.read_to_vec(dst_off, len).unwrap(),
        data,
        "{len} bytes via IOVA {:#x} -> edu {edu_off:#x} -> IOVA {:#x}",
        src.iova_at(src_off, len).unwrap(),
        dst.iova_at(dst_off, len).unwrap()
    );
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn dma_round_trip_with_buffers_at_several_iovas_and_sizes() {
    let edu = open_edu();
    // Allocator-chosen IOVAs (a spacer keeps them apart), then fixed ones including the last
    // page below 256 MiB.
    let mut a = DmaBuffer::with_options(&edu.container, 4096, edu_options()).unwrap();
    let _spacer = DmaBuffer::with_options(&edu.container, 3 << 20, edu_options()).unwrap();
    let mut b = DmaBuffer::with_options(&edu.container, 64 << 10, edu_options()).unwrap();
    let mut c =
        DmaBuffer::with_options(&edu.container, 4096, edu_options().iova(0x10_0000)).unwrap();
    let mut d = DmaBuffer::with_options(&edu.container, 4096, edu_options().iova((1 << 28) - PAGE))
        .unwrap();
    for buf in [&a, &b, &c, &d] {
        assert_ne!(buf.iova(), 0);
        assert!(AddressLimit::bits(EDU_BITS).allows(buf.iova(), buf.len() as u64));
        assert_eq!(buf.iova() % (buf.len() as u64).next_power_of_two(), 0);
    }
    assert_eq!(c.iova(), 0x10_0000);
    assert_eq!(d.iova(), 0x0fff_f000);
    round_trip(&edu, &mut a, 0, &mut b, 0, EDU_MAX, 0);
    round_trip(&edu, &mut b, 60 << 10, &mut a, 100, 1, EDU_MAX - 1);
    round_trip(&edu, &mut c, 7, &mut d, 9, 1000, 3000);
    round_trip(&edu, &mut d, 0, &mut c, 0, EDU_MAX, 0);
    round_trip(&edu, &mut b, 12345, &mut c, 2000, 2048, 1024);
    println!(
        "IOVAs used: {:#x} {:#x} {:#x} {:#x}",
        a.iova(),
        b.iova(),
        c.iova(),
        d.iova()
    );
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn dma_round_trip_with_pool_buffers() {
    let edu = open_edu();
    let stats = edu.container.dma_stats();
    let pool = DmaPool::new(&edu.container, 2048, 64, edu_options()).unwrap();
    let maps = edu.container.dma_stats().map_ioctls;
    assert_eq!(maps, stats.map_ioctls + 1, "the pool maps once");
    let mut x = pool.alloc().unwrap();
    let mut y = pool.alloc().unwrap();
    let spare: Vec<_> = (0..10).map(|_| pool.alloc().unwrap()).collect();
    let mut z = pool.alloc().unwrap();
    assert_eq!(pool.available(), 64 - 13);
    for p in [&x, &y, &z] {
        assert_eq!(p.iova() % 2048, 0);
        assert_eq!(pool.index_of_iova(p.iova() + 2047), Some(p.index()));
    }
    round_trip(&edu, &mut x, 0, &mut y, 0, 2048, 2047);
    round_trip(&edu, &mut y, 100, &mut z, 1000, 1000, 17);
    round_trip(&edu, &mut z, 2047, &mut x, 0, 1, EDU_MAX - 1);
    drop(spare);
    drop((x, y, z));
    assert_eq!(pool.available(), 64);
    assert_eq!(
        edu.container.dma_stats().map_ioctls,
        maps,
        "pool allocations made no map ioctl"
    );
}

/// Reads the guest kernel's log (root in the VM): `None` when it cannot be read.
fn kernel_log() -> Option<String> {
    use std::io::Read;
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/kmsg")
        .ok()?;
    let mut log = String::new();
    let mut buf = vec![0u8; 8192];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => log.push_str(&String::from_utf8_lossy(&buf[..n])),
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
            Err(_) => break,
        }
    }
    Some(log)
}

fn dmar_faults() -> usize {
    kernel_log()
        .map(|l| {
            l.lines()
                .filter(|l| l.contains("DMAR") && l.contains("fault"))
                .count()
        })
        .unwrap_or(0)
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn dma_after_unmap_does_not_touch_memory() {
    let edu = open_edu();
    let mut staging = DmaBuffer::with_options(&edu.container, 4096, edu_options()).unwrap();
    let mut victim = DmaBuffer::with_options(&edu.container, 4096, edu_options()).unwrap();
    let kept = random_bytes(EDU_MAX);
    victim.write_slice(0, &kept).unwrap();
    // Put other data into edu's buffer.
    staging.write_slice(0, &random_bytes(EDU_MAX)).unwrap();
    edu.ram_to_edu(staging.iova(), 0, EDU_MAX);
    let iova = victim.iova();
    assert_eq!(edu.container.unmap_dma(iova, 4096).unwrap(), 4096);
    let faults = dmar_faults();
    edu.edu_to_ram(0, iova, EDU_MAX);
    assert_eq!(
        victim.read_to_vec(0, EDU_MAX).unwrap(),
        kept,
        "a DMA to the unmapped IOVA {iova:#x} changed the memory"
    );
    // The fault is reported by an interrupt: give the guest kernel a moment to log it.
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut after = dmar_faults();
    while after <= faults && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        after = dmar_faults();
    }
    println!("DMAR fault lines in the kernel log: {faults} before, {after} after");
    if kernel_log().is_some() {
        assert!(
            after > faults,
            "the IOMMU logged no DMAR fault for IOVA {iova:#x}"
        );
    }
    // The buffer's own unmap now finds nothing; dropping it must still free everything.
    drop(victim);
    let stats = edu.container.dma_stats();
    assert_eq!((stats.buffers, stats.leaked_bytes), (1, 0));
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn read_only_is_enforced_and_write_only_lets_the_device_write() {
    let edu = open_edu();
    let mut check = DmaBuffer::with_options(&edu.container, 4096, edu_options()).unwrap();
    let mut ro = DmaBuffer::with_options(
        &edu.container,
        4096,
        edu_options().access(DmaAccess::ReadOnly),
    )
    .unwrap();
    let mut wo = DmaBuffer::with_options(
        &edu.container,
        4096,
        edu_options().access(DmaAccess::WriteOnly),
    )
    .unwrap();
    assert_eq!(ro.access(), DmaAccess::ReadOnly);

    // Read-only: the device reads it...
    let data = random_bytes(EDU_MAX);
    ro.write_slice(0, &data).unwrap();
    edu.ram_to_edu(ro.iova(), 0, EDU_MAX);
    edu.edu_to_ram(0, check.iova(), EDU_MAX);
    assert_eq!(check.read_to_vec(0, EDU_MAX).unwrap(), data);
    // ...but cannot write it.
    check.write_slice(0, &random_bytes(EDU_MAX)).unwrap();
    edu.ram_to_edu(check.iova(), 0, EDU_MAX);
    edu.edu_to_ram(0, ro.iova(), EDU_MAX);
    assert_eq!(
        ro.read_to_vec(0, EDU_MAX).unwrap(),
        data,
        "a device wrote read-only memory"
    );

    // Write-only: the device writes it...
    let fresh = check.read_to_vec(0, EDU_MAX).unwrap();
    edu.edu_to_ram(0, wo.iova(), EDU_MAX);
    assert_eq!(wo.read_to_vec(0, EDU_MAX).unwrap(), fresh);
    // Reading it is not reliably refused: the emulated VT-d with Linux 6.1 lets the device
    // read write-only memory (DmaAccess::WriteOnly documents this). Report what happens.
    let secret = random_bytes(EDU_MAX);
    wo.write_slice(0, &secret).unwrap();
    edu.ram_to_edu(wo.iova(), 0, EDU_MAX);
    check.fill(0, EDU_MAX, 0).unwrap();
    edu.edu_to_ram(0, check.iova(), EDU_MAX);
    let leaked = check.read_to_vec(0, EDU_MAX).unwrap() == secret;
    println!(
        "write-only mapping: device reads are {}",
        if leaked {
            "allowed (not enforced by this IOMMU)"
        } else {
            "refused"
        }
    );
}

/// A page of anonymous memory owned by a test, for the raw mapping calls.
struct TestPages {
    ptr: *mut u8,
    len: usize,
}

impl TestPages {
    fn new(len: usize) -> TestPages {
        // SAFETY: a fresh private anonymous mapping.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        assert_ne!(ptr, libc::MAP_FAILED);
        TestPages {
            ptr: ptr.cast(),
            len,
        }
    }
}

impl Drop for TestPages {
    fn drop(&mut self) {
        // SAFETY: the test's own mapping; every test unmaps its IOMMU mappings before the
        // pages go (asserted by the dma_avail checks).
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

fn errno_of<T: std::fmt::Debug>(r: uvfio::Result<T>) -> Errno {
    r.expect_err("expected an error").errno()
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn mapping_errors_are_typed_and_leave_nothing_mapped() {
    let edu = open_edu();
    let c = &edu.container;
    let avail = edu.dma_avail();
    println!(
        "dma_avail {avail:?}, ranges {:x?}",
        c.refresh_iova_ranges().unwrap()
    );
    let ranges = c.refresh_iova_ranges().unwrap();
    let pages = TestPages::new(2 * PAGE as usize);

    let a = DmaBuffer::with_options(c, 8192, edu_options()).unwrap();
    // Overlap: the allocator refuses before the kernel sees it...
    let e = DmaBuffer::with_options(c, 4096, edu_options().iova(a.iova() + PAGE)).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument { .. }), "{e}");
    assert_eq!(e.errno(), Errno::EEXIST, "{e}");
    // ...and the kernel refuses a raw overlapping map.
    // SAFETY: if the map succeeded, it is unmapped below before `pages` goes; it fails.
    let raw = unsafe { c.map_dma_raw(pages.ptr, a.iova() + PAGE, PAGE, DmaAccess::ReadWrite) };
    assert_eq!(errno_of(raw), Errno::EEXIST);

    // Unaligned.
    let free = c
        .allocate_iova(2 * PAGE, AddressLimit::bits(EDU_BITS))
        .unwrap();
    assert_eq!(
        errno_of(DmaBuffer::with_options(
            c,
            4096,
            edu_options().iova(0x20_0800)
        )),
        Errno::EINVAL
    );
    // SAFETY: as above (fails).
    let raw = unsafe { c.map_dma_raw(pages.ptr, free.start() + 0x800, PAGE, DmaAccess::ReadWrite) };
    assert_eq!(errno_of(raw), Errno::EINVAL);
    // SAFETY: as above (fails).
    let raw = unsafe { c.map_dma_raw(pages.ptr, free.start(), 100, DmaAccess::ReadWrite) };
    assert_eq!(errno_of(raw), Errno::EINVAL);
    // SAFETY: as above (fails: the vaddr is unaligned).
    let raw = unsafe {
        c.map_dma_raw(
            pages.ptr.wrapping_add(8),
            free.start(),
            PAGE,
            DmaAccess::ReadWrite,
        )
    };
    assert_eq!(errno_of(raw), Errno::EINVAL);
    // Past 2^64.
    // SAFETY: as above (refused before the ioctl).
    let raw = unsafe { c.map_dma_raw(pages.ptr, !0xfff_u64, 2 * PAGE, DmaAccess::ReadWrite) };
    assert_eq!(errno_of(raw), Errno::EOVERFLOW);

    // Outside the valid ranges: the x86 MSI window, and past the IOMMU's aperture.
    let msi = 0xfee0_0000u64;
    assert!(!ranges.iter().any(|r| r.contains(msi)), "{ranges:x?}");
    assert_eq!(
        errno_of(DmaBuffer::with_options(
            c,
            4096,
            DmaOptions::new().iova(msi)
        )),
        Errno::ERANGE
    );
    // SAFETY: as above (fails).
    let raw = unsafe { c.map_dma_raw(pages.ptr, msi, PAGE, DmaAccess::ReadWrite) };
    assert_eq!(errno_of(raw), Errno::EINVAL);
    let top = ranges.iter().map(|r| r.end).max().unwrap();
    if top < u64::MAX - PAGE {
        let beyond = (top + 1).next_multiple_of(PAGE);
        assert_eq!(
            errno_of(DmaBuffer::with_options(
                c,
                4096,
                DmaOptions::new().iova(beyond)
            )),
            Errno::ERANGE
        );
        // SAFETY: as above (fails).
        let raw = unsafe { c.map_dma_raw(pages.ptr, beyond, PAGE, DmaAccess::ReadWrite) };
        assert_eq!(errno_of(raw), Errno::EINVAL);
    }

    // Past the device's address limit.
    assert_eq!(
        errno_of(DmaBuffer::with_options(
            c,
            4096,
            edu_options().iova(1 << EDU_BITS)
        )),
        Errno::ERANGE
    );
    assert_eq!(
        errno_of(DmaBuffer::with_options(
            c,
            8192,
            DmaOptions::new().address_bits(13)
        )),
        Errno::ENOSPC
    );
    assert_eq!(
        errno_of(DmaBuffer::with_options(c, 512 << 20, edu_options())),
        Errno::ENOSPC
    );

    // Double unmap, and an unmap that cuts a mapping in two (type1v2 refuses it).
    // SAFETY: `pages` outlives the mapping: it is unmapped below.
    unsafe { c.map_dma_raw(pages.ptr, free.start(), 2 * PAGE, DmaAccess::ReadWrite) }.unwrap();
    assert_eq!(errno_of(c.unmap_dma(free.start(), PAGE)), Errno::EINVAL);
    assert_eq!(c.unmap_dma(free.start(), 2 * PAGE).unwrap(), 2 * PAGE);
    let e = c.unmap_dma(free.start(), 2 * PAGE).unwrap_err();
    assert_eq!(e.errno(), Errno::ENOENT, "{e}");

    drop(a);
    drop(free);
    let stats = c.dma_stats();
    assert_eq!(
        (stats.buffers, stats.mapped_bytes, stats.leaked_bytes),
        (0, 0, 0)
    );
    assert_eq!(stats.iova.unwrap().allocations, 0);
    assert_eq!(edu.dma_avail(), avail, "a mapping was left behind");
}

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

#[derive(Debug, PartialEq)]
struct Footprint {
    fds: usize,
    vm_lck: u64,
    vm_pin: u64,
    dma_avail: Option<u32>,
    buffers: u64,
    iova_allocations: usize,
}

fn footprint(edu: &Edu) -> Footprint {
    let stats = edu.container.dma_stats();
    Footprint {
        fds: fd_count(),
        vm_lck: status_kib("VmLck:"),
        vm_pin: status_kib("VmPin:"),
        dma_avail: edu.dma_avail(),
        buffers: stats.buffers,
        iova_allocations: stats.iova.map_or(0, |i| i.allocations),
    }
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn cycles_leave_the_process_where_it_started() {
    let edu = open_edu();
    let pool = DmaPool::new(&edu.container, 2048, 256, edu_options()).unwrap();
    let before = footprint(&edu);
    let ioctls = edu.container.dma_stats();

    // 100,000 allocate/free cycles of pool buffers and of IOVA blocks.
    let start = Instant::now();
    for i in 0..100_000u32 {
        let a = pool.alloc().unwrap();
        let b = pool.alloc().unwrap();
        assert_ne!(a.iova(), b.iova());
        drop(a);
        let iova = edu
            .container
            .allocate_iova(PAGE << (i % 5), AddressLimit::bits(EDU_BITS))
            .unwrap();
        assert!(iova.start() != 0);
    }
    let allocs = start.elapsed();
    let after_allocs = edu.container.dma_stats();
    assert_eq!(
        (after_allocs.map_ioctls, after_allocs.unmap_ioctls),
        (ioctls.map_ioctls, ioctls.unmap_ioctls),
        "allocations made ioctls"
    );

    // 10,000 map/unmap cycles.
    let start = Instant::now();
    for i in 0..10_000usize {
        let mut buf =
            DmaBuffer::with_options(&edu.container, (PAGE as usize) << (i % 3), edu_options())
                .unwrap();
        buf.write::<u64>(0, i as u64).unwrap();
    }
    let maps = start.elapsed();
    let after = footprint(&edu);
    println!(
        "100000 alloc/free cycles: {allocs:?}; 10000 map/unmap cycles: {maps:?}; footprint \
         {after:?}"
    );
    assert_eq!(before, after);
    let stats = edu.container.dma_stats();
    assert_eq!(stats.map_ioctls - after_allocs.map_ioctls, 10_000);
    assert_eq!(stats.unmap_ioctls - after_allocs.unmap_ioctls, 10_000);
    assert_eq!(stats.leaked_bytes, 0);
    drop(pool);
    let last = edu.container.dma_stats();
    assert_eq!((last.buffers, last.mapped_bytes), (0, 0));
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn many_threads_allocate_and_free_at_once() {
    let edu = open_edu();
    let before = footprint(&edu);
    let pool = DmaPool::new(&edu.container, 512, 1024, edu_options()).unwrap();
    let live: Mutex<BTreeMap<u64, u64>> = Mutex::new(BTreeMap::new());
    let claim = |start: u64, len: u64| {
        let mut live = live.lock().unwrap();
        if let Some((&s, &l)) = live.range(..start + len).next_back() {
            assert!(
                s + l <= start,
                "IOVA {start:#x}+{len:#x} overlaps {s:#x}+{l:#x}"
            );
        }
        live.insert(start, len);
    };
    let release = |start: u64| {
        live.lock().unwrap().remove(&start);
    };
    std::thread::scope(|s| {
        for t in 0..8u64 {
            let (pool, edu, claim, release) = (&pool, &edu, &claim, &release);
            s.spawn(move || {
                let mut held: Vec<DmaBuffer> = Vec::new();
                let mut chunks = Vec::new();
                for i in 0..400u64 {
                    let size = 4096usize << ((t + i) % 4);
                    let mut b =
                        DmaBuffer::with_options(&edu.container, size, edu_options()).unwrap();
                    claim(b.iova(), b.len() as u64);
                    b.write::<u64>(0, t << 32 | i).unwrap();
                    held.push(b);
                    if let Some(mut c) = pool.alloc() {
                        c.write::<u64>(0, t).unwrap();
                        chunks.push(c);
                    }
                    if held.len() > 3 {
                        let old = held.remove(0);
                        assert_eq!(old.read::<u64>(0).unwrap() >> 32, t);
                        release(old.iova());
                    }
                    if chunks.len() > 8 {
                        let c = chunks.remove(0);
                        assert_eq!(c.read::<u64>(0).unwrap(), t, "a pool chunk was shared");
                    }
                }
                for b in held {
                    release(b.iova());
                }
            });
        }
    });
    assert_eq!(pool.available(), 1024);
    drop(pool);
    assert_eq!(footprint(&edu), before);
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn iova_ranges_are_reread_when_a_group_joins() {
    let edu = open_edu();
    let first = edu.container.refresh_iova_ranges().unwrap();
    assert!(
        first.iter().all(|r| r.start >= PAGE),
        "IOVA 0 is usable: {first:x?}"
    );
    let a = DmaBuffer::new(&edu.container, 4096).unwrap();
    let reads = edu.container.dma_stats().range_reads;
    // A second group joins: the next allocation reads the ranges again (intel-iommu gives the
    // same answer; what matters is that the kernel is asked).
    let other = group_of(&device("UVFIO_TEST_TESTDEV"));
    other.set_container(&edu.container).unwrap();
    let b = DmaBuffer::new(&edu.container, 4096).unwrap();
    assert_eq!(edu.container.dma_stats().range_reads, reads + 1);
    let c = DmaBuffer::new(&edu.container, 4096).unwrap();
    assert_eq!(
        edu.container.dma_stats().range_reads,
        reads + 1,
        "read again without cause"
    );
    assert_ne!(a.iova(), b.iova());
    assert_eq!(edu.container.refresh_iova_ranges().unwrap(), first);
    // And when it leaves.
    other.unset_container().unwrap();
    let d = DmaBuffer::new(&edu.container, 4096).unwrap();
    assert_eq!(edu.container.dma_stats().range_reads, reads + 3);
    drop((a, b, c, d));
    drop(other);
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn dirty_tracking_reports_device_writable_pages() {
    let edu = open_edu();
    let c = &edu.container;
    let info = c.iommu_info().unwrap();
    let page = info.min_page_size().unwrap();
    println!("IOMMU caps: {:?}", info.caps);
    let buf = DmaBuffer::with_options(c, 16 * page as usize, edu_options()).unwrap();
    c.start_dirty_tracking().unwrap();
    let bitmap = c.dirty_bitmap(buf.iova(), buf.len() as u64, page).unwrap();
    // Without hardware dirty bits type1 reports every pinned writable page.
    assert_eq!(bitmap.pages(), 16);
    assert_eq!(bitmap.dirty_count(), 16, "{:x?}", bitmap.words());
    assert!(bitmap.is_dirty(buf.iova() + 5 * page));
    // Wrong page size: refused.
    assert_eq!(
        errno_of(c.dirty_bitmap(buf.iova(), buf.len() as u64, page * 2)),
        Errno::EINVAL
    );
    // Unmap with the final bitmap.
    let pages = TestPages::new(4 * page as usize);
    let spot = c
        .allocate_iova(4 * page, AddressLimit::bits(EDU_BITS))
        .unwrap();
    // SAFETY: `pages` outlives the mapping, which is removed by unmap_dma_dirty below.
    unsafe { c.map_dma_raw(pages.ptr, spot.start(), 4 * page, DmaAccess::ReadWrite) }.unwrap();
    let (unmapped, last) = c.unmap_dma_dirty(spot.start(), 4 * page, page).unwrap();
    assert_eq!(unmapped, 4 * page);
    assert_eq!(last.dirty_count(), 4);
    c.stop_dirty_tracking().unwrap();
    drop(buf);
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn unmap_all_runs_and_vaddr_update() {
    let edu = open_edu();
    let c = &edu.container;
    let avail = edu.dma_avail();
    let exts = c.extensions().unwrap();
    println!("extensions: {:?}", exts.iter().collect::<Vec<_>>());
    let pages = TestPages::new(8 * PAGE as usize);
    let spot = c
        .allocate_iova(8 * PAGE, AddressLimit::bits(EDU_BITS))
        .unwrap();
    // Four contiguous pages and one apart: two mappings, not five.
    let runs: Vec<DmaRun> = (0..4)
        .map(|i| DmaRun {
            vaddr: pages.ptr as usize + i * PAGE as usize,
            iova: spot.start() + i as u64 * PAGE,
            size: PAGE,
        })
        .chain([DmaRun {
            vaddr: pages.ptr as usize + 6 * PAGE as usize,
            iova: spot.start() + 5 * PAGE,
            size: PAGE,
        }])
        .collect();
    // SAFETY: `pages` outlives the mappings: unmap_all_dma removes them below.
    let n = unsafe { c.map_dma_runs(&runs, DmaAccess::ReadWrite) }.unwrap();
    assert_eq!(n, 2);
    if let (Some(a), Some(now)) = (avail, edu.dma_avail()) {
        assert_eq!(a - now, 2);
    }
    // A DmaBuffer's mapping goes too; its own unmap later finds nothing.
    let buf = DmaBuffer::with_options(c, 4096, edu_options()).unwrap();
    assert_eq!(c.unmap_all_dma().unwrap(), 5 * PAGE + 4096);
    assert_eq!(c.unmap_all_dma().unwrap(), 0);
    drop(buf);

    // A run that fails rolls back the ones before it.
    let bad = [
        runs[0],
        DmaRun {
            vaddr: pages.ptr as usize + 5 * PAGE as usize,
            iova: 0xfee0_0000,
            size: PAGE,
        },
    ];
    // SAFETY: as above; the failed call leaves nothing mapped (asserted).
    assert_eq!(
        errno_of(unsafe { c.map_dma_runs(&bad, DmaAccess::ReadWrite) }),
        Errno::EINVAL
    );
    assert_eq!(edu.dma_avail(), avail);

    if exts.contains(uvfio::Extension::UpdateVaddr) {
        // SAFETY: as above; unmapped below.
        unsafe { c.map_dma_raw(pages.ptr, spot.start(), PAGE, DmaAccess::ReadWrite) }.unwrap();
        // SAFETY: nothing maps, pins or joins the container before the update just below.
        let invalidated = unsafe { c.invalidate_dma_vaddr(spot.start(), PAGE) };
        assert_eq!(invalidated.unwrap(), PAGE);
        // SAFETY: the new address is another page of `pages`, which outlives the mapping.
        unsafe { c.update_dma_vaddr(pages.ptr.wrapping_add(PAGE as usize), spot.start(), PAGE) }
            .unwrap();
        assert_eq!(c.unmap_dma(spot.start(), PAGE).unwrap(), PAGE);
    }
    assert_eq!(edu.dma_avail(), avail);
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn the_mapping_budget_runs_out_with_a_typed_error_and_a_rollback() {
    let edu = open_edu();
    let c = &edu.container;
    let avail = u64::from(edu.dma_avail().expect("DMA_AVAIL is reported"));
    // Use up the budget: one page mapped at `avail` IOVAs (type1 allows a page at many IOVAs).
    let page = TestPages::new(PAGE as usize);
    let area = c.allocate_iova(avail * PAGE, AddressLimit::NONE).unwrap();
    let start = Instant::now();
    for i in 0..avail {
        // SAFETY: `page` outlives the mappings: they are all unmapped below.
        unsafe {
            c.map_dma_raw(
                page.ptr,
                area.start() + i * PAGE,
                PAGE,
                DmaAccess::ReadWrite,
            )
        }
        .unwrap();
    }
    println!("{avail} mappings in {:?}", start.elapsed());
    assert_eq!(edu.dma_avail(), Some(0));
    let before = c.dma_stats();
    let e = DmaBuffer::with_options(c, 4096, edu_options()).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Ioctl {
                ioctl: "VFIO_IOMMU_MAP_DMA",
                errno: Errno::ENOSPC,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("dma_entry_limit"), "{e}");
    // Rolled back: the IOVA went back to the allocator, no buffer exists.
    let after = c.dma_stats();
    assert_eq!(
        after.iova.unwrap().allocations,
        before.iova.unwrap().allocations
    );
    assert_eq!(
        (after.buffers, after.mapped_bytes),
        (before.buffers, before.mapped_bytes)
    );
    // One unmap covering them all gives the budget back.
    assert_eq!(
        c.unmap_dma(area.start(), avail * PAGE).unwrap(),
        avail * PAGE
    );
    assert_eq!(edu.dma_avail(), Some(avail as u32));
    drop(area);
    let ok = DmaBuffer::with_options(c, 4096, edu_options()).unwrap();
    drop(ok);
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn bad_parameters_are_refused_before_anything_is_taken() {
    // No IOMMU type yet: buffers are refused without touching the kernel.
    let bare = Container::new().unwrap();
    let e = DmaBuffer::new(&bare, 4096).unwrap_err();
    assert!(matches!(e, Error::NotSupported { .. }), "{e}");
    assert!(matches!(
        DmaPool::new(&bare, 2048, 8, DmaOptions::new()).unwrap_err(),
        Error::NotSupported { .. }
    ));
    let edu = open_edu();
    let c = &edu.container;
    assert_eq!(errno_of(DmaBuffer::new(c, 0)), Errno::EINVAL);
    assert_eq!(
        errno_of(DmaBuffer::with_options(
            c,
            4096,
            DmaOptions::new().align(3 << 12)
        )),
        Errno::EINVAL
    );
    assert_eq!(
        errno_of(DmaPool::new(c, 0, 8, DmaOptions::new())),
        Errno::EINVAL
    );
    assert_eq!(
        errno_of(DmaPool::new(c, 2048, 0, DmaOptions::new())),
        Errno::EINVAL
    );
    assert_eq!(
        errno_of(DmaPool::new(c, 2048, 8, DmaOptions::new().align(100))),
        Errno::EINVAL
    );
    assert_eq!(
        errno_of(DmaPool::new(c, usize::MAX / 2, 8, DmaOptions::new())),
        Errno::EINVAL
    );
    // An explicit alignment is honoured by the buffer and the pool's chunks.
    let aligned = DmaBuffer::with_options(c, 4096, DmaOptions::new().align(1 << 20)).unwrap();
    assert_eq!(aligned.iova() % (1 << 20), 0);
    let pool = DmaPool::new(c, 100, 8, DmaOptions::new().align(256)).unwrap();
    assert_eq!((pool.stride(), pool.chunk_size()), (256, 100));
    let chunk = pool.alloc_zeroed().unwrap();
    assert_eq!(chunk.len(), 100);
    assert_eq!(chunk.iova() % 256, 0);
    assert_eq!(
        pool.index_of_iova(chunk.iova() + 100),
        None,
        "in the gap between chunks"
    );
    let stats = c.dma_stats();
    assert_eq!(stats.buffers, 2);
    drop((aligned, chunk, pool));
    assert_eq!(c.dma_stats().buffers, 0);
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn spapr_calls_are_refused_on_a_type1_container() {
    let edu = open_edu();
    let c = &edu.container;
    let before = c.dma_stats();
    for e in [
        c.spapr_tce_info().map(drop).unwrap_err(),
        c.spapr_enable().unwrap_err(),
        c.spapr_remove_window(0).unwrap_err(),
        c.eeh_pe_state().map(drop).unwrap_err(),
        c.eeh_pe_op(uvfio::iommu::EehPeOp::Enable).unwrap_err(),
    ] {
        assert!(matches!(e, Error::NotSupported { .. }), "{e}");
    }
    assert_eq!(c.dma_stats(), before);
}

fn huge_pages_free() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("HugePages_Free:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn huge_page_buffers_or_a_clear_error() {
    let edu = open_edu();
    let opts = edu_options().page_size(PageSize::Huge2M);
    if huge_pages_free() >= 2 {
        let mut big = DmaBuffer::with_options(&edu.container, 4 << 20, opts).unwrap();
        assert_eq!(big.page_size(), PageSize::Huge2M);
        assert_eq!(big.iova() % (4 << 20), 0);
        let mut small = DmaBuffer::with_options(&edu.container, 4096, edu_options()).unwrap();
        round_trip(&edu, &mut big, (2 << 20) - 100, &mut small, 0, 200, 0);
        round_trip(
            &edu,
            &mut small,
            0,
            &mut big,
            (4 << 20) - EDU_MAX,
            EDU_MAX,
            0,
        );
    } else {
        let e = DmaBuffer::with_options(&edu.container, 4 << 20, opts).unwrap_err();
        assert!(e.to_string().contains("vm.nr_hugepages"), "{e}");
        assert_eq!(edu.container.dma_stats().iova.unwrap().allocations, 0);
        let fallback =
            DmaBuffer::with_options(&edu.container, 4 << 20, opts.huge_page_fallback(true))
                .unwrap();
        assert_eq!(fallback.page_size(), PageSize::Base);
        println!("no huge pages reserved: {e}");
    }
}
