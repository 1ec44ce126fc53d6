//! `uvfio ls -v`: an `lspci` for VFIO, in both of its views (this was the `lsvfio` example).
//!
//! ```text
//! uvfio ls -v [--json] [-d FILTER] [PCI-ADDRESS ...]
//! ```
//!
//! The devices are the PCI functions bound to vfio-pci (found with `uvfio::pci::discover`),
//! optionally narrowed with `-d [vendor]:[device][:class]` as in `lspci -d`, or the PCI addresses
//! given. `ls -v` prints two views of them, one after the other:
//!
//! 1. **The legacy view** (`/dev/vfio/vfio` and `/dev/vfio/<group>`, every kernel): the
//!    container's API version, extensions and IOMMU info (page sizes, IOVA ranges, DMA mappings
//!    available, dirty tracking); then each IOMMU group (viable or not) and, for each device in
//!    it, its IDs, class and cdev (from sysfs), its flags, regions (size, offset, flags,
//!    capabilities) and IRQs.
//! 2. **The modern view** (`/dev/iommu` and the device cdevs `/dev/vfio/devices/vfioN`, Linux
//!    6.6+ with `CONFIG_IOMMUFD` and `CONFIG_VFIO_DEVICE_CDEV`), after the legacy view has closed
//!    its groups (a device is open through its group or its cdev, never both): whether
//!    `/dev/iommu` exists and opens; then each cdev (from `/sys/class/vfio-dev`), the device
//!    behind it (a PCI function with its IDs, or a mediated device with its parent and type),
//!    and, with an iommufd, what the kernel gives when the cdev is opened through
//!    `uvfio::iommufd`: the device id of the bind (`VFIO_DEVICE_BIND_IOMMUFD`), the IOAS and
//!    hardware page table it is attached to, the IOAS's IOVA ranges with the device attached,
//!    and the IOMMU's hw info (`IOMMU_GET_HW_INFO`: its type, for Intel VT-d the `CAP`/`ECAP`
//!    registers with the address widths and features decoded, and the `IOMMU_HW_CAP_*` bits).
//!    Mediated devices (mdev) are listed only when no filter or address is given. A kernel
//!    without iommufd or cdevs (Debian's kernels) gets one line saying so.
//!
//! A sample of the modern view (the emulated host's `full` flavour; two edus share group 8, so
//! the second is attached to the first one's IOAS; `vfio9`'s group has a device on another
//! driver):
//!
//! ```text
//! iommufd: /dev/iommu open; 14 device cdevs
//! vfio0  0000:00:01.0  1234:11e8 class 00ff00 (vfio-pci)
//!   bound: device id 1, IOAS 2 via HWPT 3
//!   IOVA ranges (alignment 4K): 0x0000000000000000-0x00000000fedfffff 0x00000000fef00000-0x0000007fffffffff
//!   IOMMU: Intel VT-d cap 0x00d2008c22260286 ecap 0x0000000000f00f4a erratum-772415 (MGAW 39 bits, SAGAW 3-level; psi,qi,ir,pt)
//!     capabilities: none
//! ...
//! vfio7  0000:02:01.0  1234:11e8 class 00ff00 (vfio-pci)
//!   bound: device id 22, IOAS 23 via HWPT 24
//!   ...
//! vfio8  0000:02:02.0  1234:11e8 class 00ff00 (vfio-pci)
//!   bound: device id 25, IOAS 23 via HWPT 24
//!   ...
//! vfio9  0000:03:01.0  1b36:0005 class 00ff00 (vfio-pci)
//!   not bound (its group is not viable): the kernel refuses to bind it (EPERM: Operation not permitted)
//! vfio10  mdev 0f3b29a6-7a1b-4c1e-9e6a-000000000001 (mtty-2 on mtty)
//!   bound: device id 26, IOAS 27 via HWPT 27
//!   IOVA ranges (alignment 4K): 0x0000000000000000-0xffffffffffffffff
//!   IOMMU: none of its own (a mediated device)
//! ```
//!
//! On a kernel without them (Debian's):
//!
//! ```text
//! iommufd: none: no /dev/iommu and no device cdevs (this kernel has only the legacy container and groups)
//! ```
//!
//! The devices of one IOMMU group share an IOAS (the kernel puts a group in one domain). Every
//! device stays bound until the listing is done, so each has ids of its own.
//!
//! An error on one device is printed with it and the listing goes on. `ls -v` exits with 1 when
//! anything failed, except what is a fact about the host rather than a failure: a group that is
//! not viable (in either view) and a no-IOMMU device, which an iommufd cannot bind.
//!
//! Needs access to `/dev/vfio` and `/dev/iommu` (root, or a user the nodes belong to).

pub mod legacy;
pub mod modern;

use std::fmt::Write as _;
use std::process::ExitCode;

use uvfio::pci::discover::Filter;
use uvfio::pci::PciAddress;

/// Lists the devices bound to vfio-pci that `filter` matches (`filtered`: a filter was given),
/// or those at `addresses`, in the legacy then the modern view; JSON with `json`.
pub fn run(json: bool, addresses: Vec<PciAddress>, filter: Filter, filtered: bool) -> ExitCode {
    let selection = modern::Selection {
        addresses: addresses.clone(),
        filter,
        only_pci: filtered || !addresses.is_empty(),
    };
    // The legacy view opens (and closes, when `run` returns) every device through its group;
    // only then can the modern view open them through their cdevs.
    let legacy = match legacy::run(addresses, &filter) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("uvfio: error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let modern = modern::run(&selection);
    if json {
        // The legacy report's fields at the top, as before the modern view, and the modern
        // view under "modern".
        println!("{}", legacy::to_json(&legacy, &modern::to_json(&modern)));
    } else {
        print!("{}", legacy::to_table(&legacy));
        println!();
        print!("{}", modern::to_table(&modern));
    }
    if legacy.failed() || modern.failed() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// `n` bytes in the largest unit that divides it.
fn size(n: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)];
    for (unit, div) in UNITS {
        if n >= div && n % div == 0 {
            return format!("{}{unit}", n / div);
        }
    }
    n.to_string()
}

/// The page sizes of a bitmap, comma-separated.
fn pgsizes(bitmap: u64) -> String {
    (0..64)
        .filter(|b| bitmap & (1 << b) != 0)
        .map(|b| size(1 << b))
        .collect::<Vec<_>>()
        .join(",")
}

/// Flag names, lower case, comma-separated.
fn names<'a>(flags: impl Iterator<Item = (&'a str, impl Sized)>) -> String {
    flags
        .map(|(n, _)| n.to_lowercase())
        .collect::<Vec<_>>()
        .join(",")
}

/// A JSON string literal.
fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// `null`, or the JSON string of an error.
fn json_opt_str(s: Option<&str>) -> String {
    s.map_or("null".into(), json_str)
}
