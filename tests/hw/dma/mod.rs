//! Hardware tests of the DMA layer: QEMU's `edu` device copies through the emulated IOMMU,
//! in the IOMMU mode of the run (`UVFIO_IOMMU_MODE`, see `common::mode`): edu is opened through
//! `common::open_in_space`, and buffers and pools are made in its [`DmaSpace`], so the same
//! code runs on a type1 container, iommufd's compat container and an IOAS.
//!
//! edu copies between its 4 KiB buffer (device offset 0x40000) and an IOVA, one DMA per
//! command, 100 ms each. Two traps of QEMU 7.2 shape every helper here:
//! - a DMA not wholly inside the buffer kills QEMU, so `Edu::dma` refuses such a request
//!   before touching a register. 7.2's range check is off by one: the end (exclusive) must be
//!   *below* 0x41000, so at most 4095 bytes move per DMA;
//! - edu masks DMA addresses to 28 bits (its default `dma_mask`), so every buffer it uses is
//!   allocated with `address_bits(28)` and `Edu::dma` refuses IOVAs at or above 256 MiB.
//!
//! `mapping` has the tests of the mapping calls (errors, unmap-all, budgets, IOVA ranges,
//! footprint), `selftest` the checks ported from the kernel's VFIO selftests.

mod mapping;
mod selftest;

use std::collections::BTreeMap;
use std::os::fd::AsFd;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use uvfio::device::RegionIndex;
use uvfio::dma::{AddressLimit, DmaAccess, DmaBuffer, DmaMemory, DmaOptions, DmaPool, PageSize};
use uvfio::{Device, DmaSpace, Errno, IommuMode};

use crate::common::{self, device, fd_count};

const EDU_BUF: u64 = 0x40000;
const EDU_BUF_SIZE: usize = 0x1000;
/// The longest DMA edu 7.2 accepts: its range check wants the *end* strictly inside the
/// buffer, so a DMA of all 4096 bytes is "out of bounds" (and kills QEMU).
const EDU_MAX: usize = EDU_BUF_SIZE - 1;
const EDU_BITS: u32 = 28;
const PAGE: u64 = 4096;

/// The edu device opened in a fresh DMA space of the test mode, with bus mastering on.
struct Edu {
    device: Device,
    space: DmaSpace,
    bar0: u64,
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
    let (space, device) = common::open_in_space(&addr);
    assert_eq!(space.mode(), common::mode());
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
        space,
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

    fn mode(&self) -> IommuMode {
        self.space.mode()
    }

    /// What is left of the DMA mapping budget (`DMA_AVAIL`: type1's `dma_entry_limit`, one
    /// entry per mapping), where one is counted: legacy containers only. iommufd's compat
    /// container reports a constant `U32_MAX` (its limit is the memory cgroup's), and an IOAS
    /// has no such budget.
    fn dma_avail(&self) -> Option<u32> {
        let c = self.space.container()?;
        if c.is_iommufd_compat() {
            return None;
        }
        c.iommu_info().expect("iommu_info").dma_avail()
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
    if !common::needs_iommu(
        "dma_round_trip_with_buffers_at_several_iovas_and_sizes",
        "it places buffers at IOVAs it chooses; without an IOMMU a buffer's bus address is its physical address (noiommu::noiommu_edu_dma_round_trip_at_physical_addresses covers DMA in this mode)",
    ) {
        return;
    }
    let edu = open_edu();
    // Allocator-chosen IOVAs (a spacer keeps them apart), then fixed ones including the last
    // page below 256 MiB.
    let mut a = DmaBuffer::with_options(&edu.space, 4096, edu_options()).unwrap();
    let _spacer = DmaBuffer::with_options(&edu.space, 3 << 20, edu_options()).unwrap();
    let mut b = DmaBuffer::with_options(&edu.space, 64 << 10, edu_options()).unwrap();
    let mut c = DmaBuffer::with_options(&edu.space, 4096, edu_options().iova(0x10_0000)).unwrap();
    let mut d =
        DmaBuffer::with_options(&edu.space, 4096, edu_options().iova((1 << 28) - PAGE)).unwrap();
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
    if !common::needs_iommu(
        "dma_round_trip_with_pool_buffers",
        "it counts the pool's map ioctls and checks IOVA alignment; no-IOMMU mode maps nothing (noiommu::noiommu_msi_and_pools_on_huge_pages covers pools in this mode)",
    ) {
        return;
    }
    let edu = open_edu();
    let stats = edu.space.dma_stats();
    let pool = DmaPool::new(&edu.space, 2048, 64, edu_options()).unwrap();
    let maps = edu.space.dma_stats().map_ioctls;
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
        edu.space.dma_stats().map_ioctls,
        maps,
        "pool allocations made no map ioctl"
    );
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn read_only_is_enforced_and_write_only_lets_the_device_write() {
    if !common::needs_iommu(
        "read_only_is_enforced_and_write_only_lets_the_device_write",
        "only an IOMMU enforces read-only mappings: without one a device can write any memory, which is why no-IOMMU mode taints the kernel",
    ) {
        return;
    }
    let edu = open_edu();
    let mut check = DmaBuffer::with_options(&edu.space, 4096, edu_options()).unwrap();
    let mut ro =
        DmaBuffer::with_options(&edu.space, 4096, edu_options().access(DmaAccess::ReadOnly))
            .unwrap();
    let mut wo =
        DmaBuffer::with_options(&edu.space, 4096, edu_options().access(DmaAccess::WriteOnly))
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

/// Maps `len` bytes at `ptr` at exactly `iova` in the space: `VFIO_IOMMU_MAP_DMA` on a
/// container, `IOMMU_IOAS_MAP` with a fixed IOVA on an IOAS.
///
/// # Safety
///
/// The memory outlives the mapping (the test unmaps it first).
unsafe fn map_raw(
    space: &DmaSpace,
    ptr: *const u8,
    iova: u64,
    len: u64,
    access: DmaAccess,
) -> uvfio::Result<()> {
    match (space.container(), space.ioas()) {
        // SAFETY: forwarded to this function's contract.
        (Some(c), _) => unsafe { c.map_dma_raw(ptr, iova, len, access) },
        // SAFETY: forwarded to this function's contract.
        (None, Some(ioas)) => unsafe { ioas.map_raw(ptr, len, access, Some(iova)) }.map(|at| {
            assert_eq!(at, iova, "a fixed-IOVA map moved");
        }),
        (None, None) => unreachable!("a DMA space is a container or an IOAS"),
    }
}

/// Unmaps `[iova, iova + len)`: `VFIO_IOMMU_UNMAP_DMA` or `IOMMU_IOAS_UNMAP`; the bytes
/// unmapped, `ENOENT` when nothing was.
fn unmap(space: &DmaSpace, iova: u64, len: u64) -> uvfio::Result<u64> {
    match (space.container(), space.ioas()) {
        (Some(c), _) => c.unmap_dma(iova, len),
        (None, Some(ioas)) => ioas.unmap(iova, len),
        (None, None) => unreachable!("a DMA space is a container or an IOAS"),
    }
}

/// Unmaps everything in the space: `VFIO_DMA_UNMAP_FLAG_ALL` or `IOMMU_IOAS_UNMAP` of the
/// whole IOVA space; the bytes unmapped.
fn unmap_all(space: &DmaSpace) -> uvfio::Result<u64> {
    match (space.container(), space.ioas()) {
        (Some(c), _) => c.unmap_all_dma(),
        (None, Some(ioas)) => ioas.unmap_all(),
        (None, None) => unreachable!("a DMA space is a container or an IOAS"),
    }
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
    let stats = edu.space.dma_stats();
    // VmLck and VmPin: the pages type1 and iommufd's compat container charge to locked_vm,
    // and those an IOAS pins (pinned_vm).
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
fn many_threads_allocate_and_free_at_once() {
    if !common::needs_iommu(
        "many_threads_allocate_and_free_at_once",
        "thousands of multi-page buffers of base pages, which without an IOMMU must each be physically contiguous; the pool half runs in noiommu::noiommu_msi_and_pools_on_huge_pages",
    ) {
        return;
    }
    let edu = open_edu();
    let before = footprint(&edu);
    let pool = DmaPool::new(&edu.space, 512, 1024, edu_options()).unwrap();
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
                    let mut b = DmaBuffer::with_options(&edu.space, size, edu_options()).unwrap();
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

/// Free huge pages of `page`'s size (`/sys/kernel/mm/hugepages/hugepages-<kB>kB`); 0 when
/// none are reserved or the size is not supported.
fn huge_pages_free(page: PageSize) -> u64 {
    let kb = page.bytes() / 1024;
    std::fs::read_to_string(format!(
        "/sys/kernel/mm/hugepages/hugepages-{kb}kB/free_hugepages"
    ))
    .ok()
    .and_then(|v| v.trim().parse().ok())
    .unwrap_or(0)
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn huge_page_buffers_or_a_clear_error() {
    if !common::needs_iommu(
        "huge_page_buffers_or_a_clear_error",
        "it checks huge-page buffers' IOVA alignment; without an IOMMU there is no IOVA (noiommu::noiommu_msi_and_pools_on_huge_pages uses huge pages in this mode)",
    ) {
        return;
    }
    let edu = open_edu();
    let opts = edu_options().page_size(PageSize::Huge2M);
    if huge_pages_free(PageSize::Huge2M) >= 2 {
        let mut big = DmaBuffer::with_options(&edu.space, 4 << 20, opts).unwrap();
        assert_eq!(big.page_size(), PageSize::Huge2M);
        assert_eq!(big.iova() % (4 << 20), 0);
        let mut small = DmaBuffer::with_options(&edu.space, 4096, edu_options()).unwrap();
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
        let e = DmaBuffer::with_options(&edu.space, 4 << 20, opts).unwrap_err();
        assert!(e.to_string().contains("vm.nr_hugepages"), "{e}");
        assert_eq!(edu.space.dma_stats().iova.unwrap().allocations, 0);
        let fallback =
            DmaBuffer::with_options(&edu.space, 4 << 20, opts.huge_page_fallback(true)).unwrap();
        assert_eq!(fallback.page_size(), PageSize::Base);
        println!("no huge pages reserved: {e}");
    }
}
