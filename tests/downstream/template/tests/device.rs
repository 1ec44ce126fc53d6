//! Runs inside uvfio-vm's guest, with the devices of ../uvfio-vm.toml.

use uvfio::device::RegionIndex;
use uvfio::pci::PciAddress;
use uvfio::{DmaSpace, IommuMode};

fn address(var: &str) -> PciAddress {
    let value = std::env::var(var).unwrap_or_else(|_| panic!("{var} is not set: run under uvfio-vm"));
    value.parse().unwrap_or_else(|e| panic!("{var}={value}: {e}"))
}

fn sysfs(address: &PciAddress, file: &str) -> String {
    let path = format!("/sys/bus/pci/devices/{address}/{file}");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}")).trim().to_owned()
}

#[test]
fn edu_answers_through_uvfio() {
    let edu = address("DOWNSTREAM_EDU");
    // The custom variable and the default one name the same device.
    assert_eq!(edu, address("UVFIO_TEST_EDU"));
    let space = DmaSpace::open(IommuMode::VfioType1v2).expect("opening a DMA space");
    let device = space.open_pci_device(&edu).expect("opening the edu device");
    let bar0 = device.region(RegionIndex::BAR0).expect("BAR0");
    // edu's identification register: major 1, minor 0, 0xed.
    assert_eq!(bar0.read_u32(0x0).expect("reading ID"), 0x0100_00ed);
    // Its liveness check register returns the inverse of what was written.
    for value in [0x1234_5678_u32, 0] {
        bar0.write_u32(0x4, value).expect("writing liveness");
        assert_eq!(bar0.read_u32(0x4).expect("reading liveness"), !value);
    }
}

#[test]
fn only_the_configured_devices_are_there() {
    let nic = address("DOWNSTREAM_NIC");
    assert_eq!(sysfs(&nic, "vendor"), "0x8086");
    assert_eq!(sysfs(&nic, "device"), "0x10d3");
    let driver = std::fs::read_link(format!("/sys/bus/pci/devices/{nic}/driver")).expect("driver");
    assert!(driver.ends_with("vfio-pci"), "{}", driver.display());
    // The config replaces uvfio's default set: two devices, none of its others.
    let all = std::env::var("UVFIO_TEST_DEVICES").expect("UVFIO_TEST_DEVICES");
    let mut all: Vec<&str> = all.split_whitespace().collect();
    all.sort_unstable();
    let mut want = vec![address("DOWNSTREAM_EDU").to_string(), nic.to_string()];
    want.sort_unstable();
    assert_eq!(all, want);
    assert!(std::env::var_os("UVFIO_TEST_NVME").is_none());
}
