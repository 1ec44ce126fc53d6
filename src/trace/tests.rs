//! The hook proven with a test logger: records are captured per thread, so tests running in
//! parallel (and logging or not) never see each other's.
#![allow(unsafe_code)]

use std::cell::RefCell;
use std::os::fd::AsRawFd;
use std::sync::Once;

use super::TARGET;
use crate::uapi::ioctl::{ContainerFd, GroupFd};

thread_local! {
    /// `Some` while this thread captures: the records it logged, with their level.
    static CAPTURED: RefCell<Option<Vec<(log::Level, String)>>> = const { RefCell::new(None) };
}

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.target() == TARGET && CAPTURED.with(|c| c.borrow().is_some())
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            let line = record.args().to_string();
            CAPTURED.with(|c| {
                if let Some(v) = c.borrow_mut().as_mut() {
                    v.push((record.level(), line));
                }
            });
        }
    }

    fn flush(&self) {}
}

/// The records `f` logged on this thread.
fn capture(f: impl FnOnce()) -> Vec<(log::Level, String)> {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        log::set_logger(&Capture).expect("no other logger in the unit tests");
        log::set_max_level(log::LevelFilter::Trace);
    });
    CAPTURED.with(|c| *c.borrow_mut() = Some(Vec::new()));
    f();
    CAPTURED.with(|c| c.borrow_mut().take()).unwrap_or_default()
}

/// The part of a record after `in `: a duration as `Debug` prints it (`1.2µs`, `3.0ns`, ...).
fn is_duration(s: &str) -> bool {
    let unit = s.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.');
    unit.len() < s.len() && ["ns", "µs", "ms", "s"].contains(&unit)
}

#[test]
fn a_failing_ioctl_is_recorded_with_its_name_object_errno_and_duration() {
    let file = std::fs::File::open("/dev/null").unwrap();
    let raw = file.as_raw_fd();
    // SAFETY: test only: /dev/null answers every VFIO request with ENOTTY and reads nothing.
    let container = unsafe { ContainerFd::from_owned_unchecked(file.into()) };
    let records = capture(|| {
        assert!(container.check_extension(3).is_err());
    });
    assert_eq!(records.len(), 1, "{records:?}");
    let (level, line) = &records[0];
    assert_eq!(*level, log::Level::Trace);
    let prefix = format!("VFIO_CHECK_EXTENSION on container fd {raw} (extension=3) -> ENOTTY in ");
    let duration = line
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{line}"));
    assert!(is_duration(duration), "{line}");
}

#[test]
fn a_dma_map_is_recorded_with_its_iova_and_length() {
    let file = std::fs::File::open("/dev/null").unwrap();
    let raw = file.as_raw_fd();
    // SAFETY: test only: /dev/null answers every VFIO request with ENOTTY and reads nothing.
    let container = unsafe { ContainerFd::from_owned_unchecked(file.into()) };
    let map = crate::uapi::vfio::vfio_iommu_type1_dma_map {
        flags: 3,
        vaddr: 0x7f00_0000_0000,
        iova: 0x10_0000,
        size: 0x2000,
        ..Default::default()
    };
    // SAFETY: /dev/null maps nothing (ENOTTY), so no memory is handed to a device.
    let records = capture(|| assert!(unsafe { container.map_dma(&map) }.is_err()));
    let prefix = format!(
        "VFIO_IOMMU_MAP_DMA on container fd {raw} (iova=0x100000 len=0x2000 \
         vaddr=0x7f0000000000 flags=0x3) -> ENOTTY in "
    );
    assert!(records[0].1.starts_with(&prefix), "{records:?}");
}

#[test]
fn a_query_records_every_round_and_an_open_its_path_and_fd() {
    let records = capture(|| {
        let group = GroupFd::open("/dev/null".as_ref()).unwrap();
        let raw = group.as_raw_fd();
        assert!(group.get_status().is_err());
        drop(group);
        assert!(GroupFd::open("/nonexistent/vfio/7".as_ref()).is_err());
        let opened = format!("open on /dev/null -> ok fd {raw} in ");
        let status = format!("VFIO_GROUP_GET_STATUS on group fd {raw} -> ENOTTY in ");
        CAPTURED.with(|c| {
            let c = c.borrow();
            let lines: Vec<&str> = c.iter().flatten().map(|(_, l)| l.as_str()).collect();
            assert!(lines[0].starts_with(&opened), "{lines:?}");
            assert!(lines[1].starts_with(&status), "{lines:?}");
            assert!(lines[2].starts_with("open on /nonexistent/vfio/7 -> ENOENT in "));
        });
    });
    let levels: Vec<log::Level> = records.iter().map(|(l, _)| *l).collect();
    assert_eq!(
        levels,
        [log::Level::Debug, log::Level::Trace, log::Level::Debug]
    );
}

#[test]
fn nothing_is_recorded_when_no_logger_listens() {
    // This thread does not capture: the logger is not enabled for it, so no record is built.
    let file = std::fs::File::open("/dev/null").unwrap();
    // SAFETY: as above.
    let container = unsafe { ContainerFd::from_owned_unchecked(file.into()) };
    assert!(container.get_api_version().is_err());
    assert!(CAPTURED.with(|c| c.borrow().is_none()));
}

#[test]
fn the_set_up_calls_and_region_accesses_are_recorded_too() {
    let file = std::fs::File::open("/dev/null").unwrap();
    let raw = file.as_raw_fd();
    // SAFETY: test only: /dev/null reads as empty and swallows writes; no ioctl is issued.
    let device = unsafe { crate::uapi::ioctl::DeviceFd::from_owned_unchecked(file.into()) };
    let dir = std::env::temp_dir().join(format!("uvfio-trace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let attr = dir.join("bind");
    std::fs::write(&attr, "").unwrap();
    let records = capture(|| {
        let mut buf = [0u8; 4];
        assert_eq!(device.read_at(&mut buf, 0x40).unwrap(), 0);
        assert!(device.write_at(&buf, 0x10).is_err()); // /dev/null was opened read-only.
        let _eventfd = crate::irq::fd::new_eventfd().unwrap();
        let _memory =
            crate::dma::memory::Memory::allocate(4096, crate::dma::PageSize::Base, 4096, false)
                .unwrap();
        crate::pci::sysfs::Sysfs::with_root(&dir)
            .write_attr(&attr, "0000:00:03.0\n")
            .unwrap();
    });
    let _ = std::fs::remove_dir_all(&dir);
    let lines: Vec<&str> = records.iter().map(|(_, l)| l.as_str()).collect();
    let want = [
        format!("pread on device fd {raw} (offset=0x40 len=4) -> ok 0 bytes in "),
        format!("pwrite on device fd {raw} (offset=0x10 len=4) -> EBADF in "),
        "eventfd on a new eventfd (EFD_NONBLOCK|EFD_CLOEXEC) -> ok fd ".to_string(),
        "mmap on anonymous memory (len=0x1000 flags=".to_string(),
        format!("write on {} (\"0000:00:03.0\") -> ok in ", attr.display()),
    ];
    assert_eq!(lines.len(), want.len(), "{lines:?}");
    for (line, want) in lines.iter().zip(&want) {
        assert!(
            line.starts_with(want.as_str()),
            "{line} does not start with {want}"
        );
    }
}
