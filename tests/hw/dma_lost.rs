//! Hardware tests of DMA buffers whose mapping is gone at once. A legacy container drops
//! every mapping with the IOMMU context when its last group leaves, and a group joining again
//! starts an empty context; iommufd's compat container keeps its IOAS, and the mappings in
//! it, until it is closed. An IOAS loses its mappings to `Ioas::unmap_all` (and keeps them
//! when its last device detaches). Each test runs in the modes it applies to and says why it
//! skips the others.

use uvfio::dma::{DmaBuffer, DmaMemory, DmaPool};
use uvfio::{Container, DmaSpace, Errno, Error, Group, IommuMode, IommuType};

use crate::common::{self, device};

/// Joins the group of the device at `addr` to `container`, sets the IOMMU model if none is
/// set yet, and opens the device.
fn joined(container: &Container, iommu: IommuType, addr: &str) -> (Group, uvfio::Device) {
    let group = Group::open_pci(&addr.parse().expect("PCI address")).expect("open the group");
    group.set_container(container).expect("set_container");
    if container.iommu().is_none() {
        container.set_iommu(iommu).expect("set_iommu");
    }
    let dev = group.open_device(addr).expect("open the device");
    (group, dev)
}

fn assert_not_mapped<M: DmaMemory>(m: &M, what: &str) {
    match m.iova_at(0, 1) {
        Err(Error::NotMapped {
            op,
            iova,
            len,
            errno,
            ..
        }) => {
            assert_eq!(op, "iova_at");
            assert_eq!(
                (iova, len),
                (m.iova(), m.len()),
                "{what}: wrong range named"
            );
            assert_eq!(errno, Errno::ENXIO);
        }
        other => panic!("{what}: iova_at after the mapping was lost gave {other:?}"),
    }
}

/// The legacy container modes: only there does the kernel drop the mappings with the last
/// group.
fn legacy_container(test: &str) -> Option<(Container, IommuType)> {
    if !common::runs_in_mode(
        test,
        |m| !m.needs_iommufd(),
        "only a legacy container drops its mappings when the last group leaves: iommufd's \
         compat container keeps its IOAS and the mappings in it (compat_container_keeps_\
         mappings_when_the_last_group_leaves), an IOAS has no groups \
         (ioas_unmap_all_leaves_buffers_unmapped)",
    ) {
        return None;
    }
    common::container(test)
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn buffers_report_unmapped_after_the_last_group_leaves() {
    let Some((container, iommu)) =
        legacy_container("buffers_report_unmapped_after_the_last_group_leaves")
    else {
        return;
    };
    let addr = device("UVFIO_TEST_TESTDEV");
    let (group, dev) = joined(&container, iommu, &addr);
    let buf = DmaBuffer::new(&container, 4096).expect("buffer");
    let pool = DmaPool::new(&container, 2048, 4, Default::default()).expect("pool");
    let chunk = pool.alloc().expect("a chunk");
    assert!(buf.is_mapped() && pool.is_mapped());
    assert_eq!(buf.iova_at(8, 8).unwrap(), buf.iova() + 8);
    assert_eq!(chunk.iova_at(0, 1).unwrap(), chunk.iova());

    // The only group leaves: the kernel drops the IOMMU context and every mapping.
    drop(dev);
    drop(group);
    assert_eq!(container.iommu(), None);
    assert!(
        !buf.is_mapped(),
        "the buffer claims a mapping the kernel dropped"
    );
    assert!(
        !pool.is_mapped(),
        "the pool claims a mapping the kernel dropped"
    );
    assert_not_mapped(&buf, "buffer");
    assert_not_mapped(&chunk, "pool buffer");
    // The CPU side is untouched.
    let mut buf = buf;
    buf.write::<u64>(0, 0x1234_5678).unwrap();
    assert_eq!(buf.read::<u64>(0).unwrap(), 0x1234_5678);

    // A group joins again and the IOMMU type is set: a new, empty context. The old buffers
    // stay unmapped (the kernel agrees: nothing is mapped at their IOVAs); new ones are mapped.
    let (group, dev) = joined(&container, iommu, &addr);
    assert!(
        !buf.is_mapped() && !pool.is_mapped(),
        "a rejoin revived old mappings"
    );
    assert_not_mapped(&buf, "buffer after the rejoin");
    assert_not_mapped(&chunk, "pool buffer after the rejoin");
    let gone = container
        .unmap_dma(buf.iova(), buf.len() as u64)
        .unwrap_err();
    assert_eq!(gone.errno(), Errno::ENOENT, "{gone}");
    let fresh = DmaBuffer::new(&container, 4096).expect("a new buffer");
    assert!(fresh.is_mapped());
    assert_eq!(fresh.iova_at(0, 4096).unwrap(), fresh.iova());

    // unmap_all_dma takes every mapping too.
    container.unmap_all_dma().expect("unmap_all_dma");
    assert!(!fresh.is_mapped());
    assert_not_mapped(&fresh, "buffer after unmap_all_dma");

    // Dropping buffers whose mapping is gone frees them (nothing leaks).
    drop((buf, chunk, pool, fresh));
    let stats = container.dma_stats();
    assert_eq!(
        (stats.buffers, stats.mapped_bytes, stats.leaked_bytes),
        (0, 0, 0)
    );
    drop((dev, group));
}

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn an_explicit_unset_container_also_unmaps() {
    let Some((container, iommu)) = legacy_container("an_explicit_unset_container_also_unmaps")
    else {
        return;
    };
    let addr = device("UVFIO_TEST_TESTDEV");
    let (group, dev) = joined(&container, iommu, &addr);
    let buf = DmaBuffer::new(&container, 8192).expect("buffer");
    drop(dev);
    assert!(buf.is_mapped(), "the group is still in the container");
    group.unset_container().expect("unset_container");
    assert!(!buf.is_mapped());
    assert_not_mapped(&buf, "buffer");
    group.set_container(&container).expect("set_container");
    container.set_iommu(iommu).expect("set_iommu");
    assert!(!buf.is_mapped(), "a rejoin revived the old mapping");
    drop(buf);
    assert_eq!(container.dma_stats().leaked_bytes, 0);
}

/// iommufd's compat container: the IOAS behind it (`IOMMU_VFIO_IOAS`) lives as long as the
/// container fd, so the mappings outlive the last group and serve the next one.
#[test]
#[ignore = "needs the emulated IOMMU host"]
fn compat_container_keeps_mappings_when_the_last_group_leaves() {
    const TEST: &str = "compat_container_keeps_mappings_when_the_last_group_leaves";
    if !common::runs_in_mode(
        TEST,
        |m| m.needs_iommufd() && m.uses_groups(),
        "a test of iommufd's compat container",
    ) {
        return;
    }
    let Some((container, iommu)) = common::container(TEST) else {
        return;
    };
    assert!(container.is_iommufd_compat());
    let addr = device("UVFIO_TEST_TESTDEV");
    let (group, dev) = joined(&container, iommu, &addr);
    let buf = DmaBuffer::new(&container, 4096).expect("buffer");
    let pool = DmaPool::new(&container, 2048, 4, Default::default()).expect("pool");
    let chunk = pool.alloc().expect("a chunk");
    drop(dev);
    drop(group);
    assert_eq!(
        container.iommu(),
        Some(iommu),
        "the compat container keeps its model with its IOAS"
    );
    assert!(
        buf.is_mapped() && pool.is_mapped(),
        "the compat IOAS keeps its mappings after the last group left"
    );
    assert_eq!(buf.iova_at(0, 4096).unwrap(), buf.iova());
    assert_eq!(chunk.iova_at(0, 1).unwrap(), chunk.iova());
    // A group joins again: the same IOAS, the same mappings (the kernel agrees: a second
    // map at the buffer's IOVA is refused as an overlap, and its range unmaps).
    let (group, dev) = joined(&container, iommu, &addr);
    assert!(buf.is_mapped() && pool.is_mapped());
    let fresh = DmaBuffer::new(&container, 4096).expect("a new buffer");
    assert_ne!(fresh.iova(), buf.iova());
    assert_eq!(
        container.unmap_dma(buf.iova(), buf.len() as u64).unwrap(),
        buf.len() as u64
    );
    // unmap_all_dma takes every mapping.
    container.unmap_all_dma().expect("unmap_all_dma");
    assert!(!fresh.is_mapped() && !pool.is_mapped());
    assert_not_mapped(&fresh, "buffer after unmap_all_dma");
    drop((buf, chunk, pool, fresh));
    let stats = container.dma_stats();
    assert_eq!(
        (stats.buffers, stats.mapped_bytes, stats.leaked_bytes),
        (0, 0, 0)
    );
    drop((dev, group));
}

/// The IOAS analogue: `Ioas::unmap_all` takes every mapping, buffers and pools say so
/// (`is_mapped` false, `iova_at` fails with `Error::NotMapped`), and dropping them frees
/// everything; the IOAS's mappings outlive the detach of its last device.
#[test]
#[ignore = "needs the emulated IOMMU host"]
fn ioas_unmap_all_leaves_buffers_unmapped() {
    if !common::runs_in_mode(
        "ioas_unmap_all_leaves_buffers_unmapped",
        |m| m == IommuMode::Iommufd,
        "a test of the IOAS (the containers' unmap_all_dma is tested in the others)",
    ) {
        return;
    }
    let addr = device("UVFIO_TEST_TESTDEV");
    let (space, dev) = common::open_in_space(&addr);
    let ioas = space.ioas().expect("an IOAS in iommufd mode").clone();
    let buf = DmaBuffer::new(&ioas, 4096).expect("buffer");
    let pool = DmaPool::new(&space, 2048, 4, Default::default()).expect("pool");
    let chunk = pool.alloc().expect("a chunk");
    assert!(buf.is_mapped() && pool.is_mapped());
    assert_eq!(buf.iova_at(8, 8).unwrap(), buf.iova() + 8);

    // The last device detaches: an IOAS keeps its mappings (they are its own, not a
    // device's), and the IOVAs stay taken.
    dev.detach().expect("detach");
    assert!(buf.is_mapped() && pool.is_mapped());
    assert_eq!(chunk.iova_at(0, 1).unwrap(), chunk.iova());
    let taken = DmaSpace::from(&ioas)
        .reserve_iova(buf.iova(), 4096)
        .unwrap_err();
    assert_eq!(taken.errno(), Errno::EEXIST, "{taken}");
    dev.attach(&ioas).expect("attach again");

    // The kernel agrees: unmap_all finds both mappings.
    let all = ioas.unmap_all().expect("unmap_all");
    assert_eq!(all, 4096 + 4 * 2048, "unmap_all reported {all} bytes");
    assert!(
        !buf.is_mapped(),
        "the buffer claims a mapping unmap_all took"
    );
    assert!(
        !pool.is_mapped(),
        "the pool claims a mapping unmap_all took"
    );
    assert_not_mapped(&buf, "buffer");
    assert_not_mapped(&chunk, "pool buffer");
    // The kernel agrees.
    let gone = ioas.unmap(buf.iova(), 4096).unwrap_err();
    assert_eq!(gone.errno(), Errno::ENOENT, "{gone}");
    // The CPU side is untouched, and new buffers are mapped.
    let mut buf = buf;
    buf.write::<u64>(0, 0x1234_5678).unwrap();
    assert_eq!(buf.read::<u64>(0).unwrap(), 0x1234_5678);
    let fresh = DmaBuffer::new(&space, 4096).expect("a new buffer");
    assert!(fresh.is_mapped());
    assert_eq!(fresh.iova_at(0, 4096).unwrap(), fresh.iova());
    drop((buf, chunk, pool, fresh));
    let stats = space.dma_stats();
    assert_eq!(
        (stats.buffers, stats.mapped_bytes, stats.leaked_bytes),
        (0, 0, 0)
    );
    drop(dev);
}
