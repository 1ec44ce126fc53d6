//! The kernel's fault injection, as the sweep uses it: the `fail-nth` knob of the current
//! thread, the debugfs settings that let every allocation fail, the process's footprint, and
//! the kernel log.
//!
//! `/proc/thread-self/fail-nth` (Documentation/fault-injection/fault-injection.rst): writing
//! N makes the Nth fault-injection site this thread reaches fail (a slab or page allocation,
//! a copy from or to user memory, an iommufd test site); reading gives 0 once the fault was
//! injected, the number of sites still to go otherwise. With `FAULT_INJECTION_USERCOPY` the
//! read and the write of the knob are themselves sites (their copies to and from user
//! memory), which [`FailNth::disarm`] accounts for.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// The debugfs settings of the sweep: every kind of allocation may fail (sleeping ones too,
/// order 0 too), and no stack is dumped for an injected fault (the log must show only what
/// the kernel itself complains about). User pages stay exempt (`ignore-gfp-highmem` keeps its
/// default): a failed user page fault is retried by the kernel, not an error path of VFIO.
const KNOBS: &[(&str, &str)] = &[
    ("failslab/ignore-gfp-wait", "N"),
    ("failslab/verbose", "0"),
    ("fail_page_alloc/ignore-gfp-wait", "N"),
    ("fail_page_alloc/min-order", "0"),
    ("fail_page_alloc/verbose", "0"),
    ("fail_usercopy/verbose", "0"),
    ("fail_iommufd/verbose", "0"),
];

const DEBUGFS: &str = "/sys/kernel/debug";

/// Sets [`KNOBS`], mounting debugfs first when it is not. An error names the knob.
pub fn configure() -> Result<(), String> {
    if !Path::new(DEBUGFS).join("failslab").exists() {
        let status = std::process::Command::new("mount")
            .args(["-t", "debugfs", "debugfs", DEBUGFS])
            .status()
            .map_err(|e| format!("running mount for debugfs: {e}"))?;
        if !status.success() {
            return Err(format!("mount -t debugfs debugfs {DEBUGFS}: {status}"));
        }
    }
    let write = |knob: &str, value: &str| {
        let path = Path::new(DEBUGFS).join(knob);
        std::fs::write(&path, value)
            .map_err(|e| format!("writing {value} to {}: {e}", path.display()))
    };
    for (knob, value) in KNOBS {
        if knob.starts_with("fail_iommufd") && !Path::new(DEBUGFS).join(knob).exists() {
            continue; // CONFIG_IOMMUFD_TEST only
        }
        write(knob, value)?;
    }
    // ACPI's interpreter (ACPICA) is kept out: a failed allocation inside it during a PCI
    // enable/disable (the _PRT lookup of pci_disable_device, reached by closing a VFIO device)
    // oopses 6.12 in __slab_free (found by this sweep), a bug outside VFIO that would end the
    // sweep. Sites with an ACPICA frame on the stack are neither counted nor failed.
    let (start, end) = acpica_text()?;
    for attr in ["failslab", "fail_page_alloc", "fail_usercopy"] {
        write(&format!("{attr}/reject-start"), &start.to_string())?;
        write(&format!("{attr}/reject-end"), &end.to_string())?;
    }
    Ok(())
}

/// The kernel text of ACPICA (drivers/acpi/acpica, linked as one block): from its first to
/// past its last function, by the prefixes of its components, from `/proc/kallsyms`.
fn acpica_text() -> Result<(u64, u64), String> {
    const PREFIXES: &[&str] = &[
        "acpi_ds_", "acpi_ev_", "acpi_ex_", "acpi_hw_", "acpi_ns_", "acpi_ps_", "acpi_rs_",
        "acpi_tb_", "acpi_ut_",
    ];
    let syms = std::fs::read_to_string("/proc/kallsyms")
        .map_err(|e| format!("reading /proc/kallsyms: {e}"))?;
    let mut text = Vec::new();
    for line in syms.lines() {
        let mut f = line.split_whitespace();
        let (Some(addr), Some(kind), Some(name)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        if matches!(kind, "t" | "T") {
            let addr =
                u64::from_str_radix(addr, 16).map_err(|e| format!("kallsyms {line:?}: {e}"))?;
            text.push((addr, PREFIXES.iter().any(|p| name.starts_with(p))));
        }
    }
    text.sort_unstable();
    // The longest run of ACPICA functions in address order (a stray name elsewhere with one
    // of the prefixes does not widen the range), and the address of the function after it.
    let (mut best, mut run_start) = ((0, 0), None);
    for (i, &(_, acpica)) in text.iter().enumerate() {
        match (acpica, run_start) {
            (true, None) => run_start = Some(i),
            (false, Some(s)) => {
                if i - s > best.1 - best.0 {
                    best = (s, i);
                }
                run_start = None;
            }
            _ => {}
        }
    }
    if best.1 == 0 {
        return Err("no ACPICA function in /proc/kallsyms".into());
    }
    let (lo, hi) = (text[best.0].0, text[best.1].0);
    if lo == 0 {
        return Err("/proc/kallsyms hides addresses (kptr_restrict)".into());
    }
    println!(
        "faults: ACPICA excluded: {} functions, {lo:#x}..{hi:#x} ({} KiB)",
        best.1 - best.0,
        (hi - lo) >> 10
    );
    Ok((lo, hi))
}

/// The `fail-nth` knob of the thread that opened it.
pub struct FailNth(File);

impl FailNth {
    /// Opens `/proc/thread-self/fail-nth`: the knob of the calling thread, which must be the
    /// thread that runs the operations.
    pub fn open() -> std::io::Result<FailNth> {
        File::options()
            .read(true)
            .write(true)
            .open("/proc/thread-self/fail-nth")
            .map(FailNth)
    }

    /// Makes the `n`th fault-injection site from now fail.
    pub fn arm(&self, n: u32) {
        let text = n.to_string();
        self.0
            .write_at(text.as_bytes(), 0)
            .unwrap_or_else(|e| panic!("arming fail-nth with {n}: {e}"));
    }

    /// Disarms the knob; whether the fault was injected since [`FailNth::arm`].
    pub fn disarm(&self) -> bool {
        let mut buf = [0u8; 32];
        // The read copies to user memory, a site of its own: when it was the one left, it
        // fails with EFAULT and the operation did not reach the fault.
        let injected = match self.0.read_at(&mut buf, 0) {
            Ok(n) => std::str::from_utf8(&buf[..n]).unwrap_or("?").trim() == "0",
            Err(e) if e.raw_os_error() == Some(libc::EFAULT) => false,
            Err(e) => panic!("reading fail-nth: {e}"),
        };
        // Writing 0 copies from user memory: it can be the site left too, then once more.
        for _ in 0..2 {
            match self.0.write_at(b"0", 0) {
                Ok(_) => return injected,
                Err(e) if e.raw_os_error() == Some(libc::EFAULT) => continue,
                Err(e) => panic!("disarming fail-nth: {e}"),
            }
        }
        panic!("fail-nth could not be disarmed");
    }
}

/// What an operation must give back: the process's fds, pinned and locked memory, and the
/// DMA space's own books where there is a space.
#[derive(Clone, PartialEq, Eq)]
pub struct Footprint(pub BTreeMap<&'static str, u64>);

impl fmt::Debug for Footprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|(k, v)| format!("{k}={v}")).collect();
        write!(f, "{}", parts.join(" "))
    }
}

impl Footprint {
    /// The process's part: open fds, `VmPin` and `VmLck` (kB).
    pub fn process() -> Footprint {
        let mut map = BTreeMap::new();
        let fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64);
        map.insert("fds", fds);
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        for (field, key) in [("VmPin:", "VmPin kB"), ("VmLck:", "VmLck kB")] {
            let kb = status
                .lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or(0);
            map.insert(key, kb);
        }
        Footprint(map)
    }

    /// Adds the books of `space`: live buffers, mapped and leaked bytes, IOVA allocations,
    /// and what is left of a legacy container's mapping budget (`DMA_AVAIL`).
    pub fn with_space(mut self, space: &uvfio::DmaSpace) -> Footprint {
        let stats = space.dma_stats();
        self.0.insert("buffers", stats.buffers);
        self.0.insert("mapped bytes", stats.mapped_bytes);
        self.0.insert("leaked bytes", stats.leaked_bytes);
        let iova = stats.iova.map_or(0, |i| i.allocations as u64);
        self.0.insert("IOVA allocations", iova);
        if let Some(c) = space.container() {
            if !c.is_iommufd_compat() && space.mode() != uvfio::IommuMode::NoIommu {
                if let Ok(Some(avail)) = c.iommu_info().map(|i| i.dma_avail()) {
                    self.0.insert("DMA_AVAIL", u64::from(avail));
                }
            }
        }
        self
    }
}

pub use crate::common::kernel_log;

/// The lines of `log` past the first `from` that report a kernel problem: a WARN, a BUG, an
/// oops, a sanitizer or refcount report, a lockdep splat, a corrupted list.
pub fn kernel_problems(log: &[String], from: usize) -> Vec<String> {
    const SIGNS: &[&str] = &[
        "WARNING:",
        "BUG:",
        "BUG kmalloc",
        "kernel BUG",
        "Oops",
        "general protection fault",
        "refcount_t:",
        "UBSAN:",
        "KASAN:",
        "possible circular locking",
        "list_add corruption",
        "list_del corruption",
    ];
    let log = &log[from.min(log.len())..];
    let mut problems = Vec::new();
    for (i, line) in log.iter().enumerate() {
        if !SIGNS.iter().any(|s| line.contains(s)) {
            continue;
        }
        // The message, then the functions of its call trace (the records that follow).
        let text = line.split_once(';').map_or(line.as_str(), |(_, t)| t);
        let frames: Vec<&str> = log[i + 1..]
            .iter()
            .take(60)
            .map(|l| l.split_once(';').map_or(l.as_str(), |(_, t)| t).trim())
            .take_while(|t| !t.starts_with("---[ end trace"))
            .filter(|t| t.contains("+0x") && !t.starts_with("RIP:"))
            .map(|t| t.split('+').next().unwrap_or(t).trim_start_matches("? "))
            .take(16)
            .collect();
        problems.push(format!("{text} | {}", frames.join(" < ")));
    }
    problems
}
