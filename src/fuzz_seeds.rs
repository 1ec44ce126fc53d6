//! Captures the fuzz targets' seed corpora (fuzz/README.md) from the kernel's real answers:
//! run in the emulated IOMMU host, it prints each raw ioctl answer as one line
//! `UVFIO-SEED <target> <name> <hex>` for fuzz/capture-seeds.sh to turn into files of
//! fuzz/corpus/<target>/. Ignored (it needs the VM); not a test of anything.

use std::fmt::Write as _;

use crate::device::{IrqIndex, RegionFlags};
use crate::pci::PciAddress;
use crate::uapi::caps::CAP_HEADER_LEN;
use crate::{Container, Device};

fn emit(target: &str, name: &str, bytes: &[u8]) {
    let mut hex = String::with_capacity(2 * bytes.len());
    for b in bytes {
        let _ = write!(hex, "{b:02x}");
    }
    println!("UVFIO-SEED {target} {name} {hex}");
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(bytes[at..at + 4].try_into().unwrap())
}

/// The region infos, device info, IRQ infos, config space and hot-reset info of one device.
fn capture_device(device: &Device, name: &str) {
    let fd = device.fd();
    let info = fd.get_info().unwrap();
    emit("device_info", name, info.bytes());
    let (num_regions, num_irqs) = (u32_at(info.bytes(), 8), u32_at(info.bytes(), 12));
    for index in 0..num_regions {
        let Ok(region) = fd.get_region_info(index) else {
            continue; // e.g. VGA: EINVAL where the device has none
        };
        let bytes = region.bytes();
        // The region target takes a leading byte: 0 asks for the index the answer carries.
        let mut seed = vec![0u8];
        seed.extend_from_slice(bytes);
        emit("region_info", &format!("{name}-region{index}"), &seed);
        let flags = RegionFlags::from_bits_retain(u32_at(bytes, 4));
        if flags.contains(RegionFlags::CAPS) && bytes.len() >= 32 + CAP_HEADER_LEN {
            // The chain alone: fixed_len, first, buffer.
            let mut seed = vec![32u8];
            seed.extend_from_slice(&u32_at(bytes, 12).to_le_bytes());
            seed.extend_from_slice(bytes);
            emit("cap_chain", &format!("{name}-region{index}"), &seed);
        }
    }
    for index in 0..num_irqs {
        let Ok(irq) = device.irq_info(IrqIndex(index)) else {
            continue;
        };
        // irq_request: flags, count, shift 0, index, then a trigger of every vector from 0
        // with no data, and of one vector with an eventfd.
        for (action, kind, len) in [(2u8, 0u8, 0u8), (2, 2, 1), (0, 1, 1)] {
            let mut seed = vec![u8::try_from(irq.flags.bits() & 0xff).unwrap()];
            seed.extend_from_slice(&irq.count.to_le_bytes());
            seed.extend_from_slice(&[0, u8::try_from(index).unwrap(), action]);
            seed.extend_from_slice(&0u32.to_le_bytes());
            seed.extend_from_slice(&[0, kind, len]);
            seed.extend(std::iter::repeat_n(1u8, usize::from(len)));
            seed.extend_from_slice(&irq.count.to_le_bytes());
            emit(
                "irq_request",
                &format!("{name}-irq{index}-a{action}-k{kind}"),
                &seed,
            );
        }
    }
    if let Ok(config) = device.pci_config().and_then(|c| c.snapshot()) {
        emit("pci_caps", name, config.as_bytes());
    }
    if let Ok(reset) = fd.get_pci_hot_reset_info() {
        let bytes = reset.bytes();
        // Only the header and the entries the kernel filled.
        let used = 12 + 8 * usize::try_from(u32_at(bytes, 8)).unwrap();
        emit("hot_reset_info", name, &bytes[..used.min(bytes.len())]);
    }
}

#[test]
#[ignore = "runs in the emulated IOMMU host: fuzz/capture-seeds.sh"]
fn capture_fuzz_seeds() {
    let devices = std::env::var("UVFIO_TEST_DEVICES").expect("UVFIO_TEST_DEVICES (in the VM)");
    let container = Container::new().unwrap();
    // Kept open to the end: the last group to leave the container unsets its IOMMU.
    let mut open = Vec::new();
    for address in devices.split_whitespace() {
        let addr: PciAddress = address.parse().unwrap();
        emit("pci_address", address, address.as_bytes());
        let device = container.open_pci_device(&addr).unwrap();
        capture_device(&device, &address.replace(':', "_"));
        open.push(device);
    }
    for var in ["UVFIO_TEST_MTTY_A", "UVFIO_TEST_MDPY", "UVFIO_TEST_MBOCHS"] {
        if let Ok(dir) = std::env::var(var) {
            let device = container.open_device_at(&dir).unwrap();
            capture_device(&device, &var["UVFIO_TEST_".len()..].to_ascii_lowercase());
            open.push(device);
        }
    }
    let iommu = container.fd().iommu_get_info().unwrap();
    emit("iommu_info", "type1", iommu.bytes());
    let info = container.iommu_info().unwrap();
    // iova_ranges: shift byte 0 (4 KiB pages), the ranges, then one allocation of 1 MiB.
    if let Some(ranges) = info.iova_ranges() {
        let mut seed = vec![0u8, u8::try_from(ranges.len().min(8)).unwrap()];
        for r in ranges.iter().take(8) {
            seed.extend_from_slice(&r.start.to_le_bytes());
            seed.extend_from_slice(&r.end.to_le_bytes());
        }
        seed.push(0);
        seed.extend_from_slice(&(1u64 << 20).to_le_bytes());
        seed.push(0);
        emit("iova_ranges", "type1", &seed);
    }
}
