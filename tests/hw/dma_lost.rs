//! Hardware tests of DMA buffers whose mapping the container lost: the kernel drops every
//! mapping with the IOMMU context when the container's last group leaves, and a group
//! joining again starts an empty context.

use uvfio::dma::{DmaBuffer, DmaMemory, DmaPool};
use uvfio::{Container, Errno, Error, Group, IommuType};

use crate::common::device;

/// A container holding the `pci-testdev`'s group, with type1v2 set and the device open.
fn joined(container: &Container, addr: &str) -> (Group, uvfio::Device) {
    let group = Group::open_pci(&addr.parse().expect("PCI address")).expect("open the group");
    group.set_container(container).expect("set_container");
    container.set_iommu(IommuType::Type1v2).expect("set_iommu");
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

#[test]
#[ignore = "needs the emulated IOMMU host"]
fn buffers_report_unmapped_after_the_last_group_leaves() {
    let addr = device("UVFIO_TEST_TESTDEV");
    let container = Container::new().expect("container");
    let (group, dev) = joined(&container, &addr);
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
    let (group, dev) = joined(&container, &addr);
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
    let addr = device("UVFIO_TEST_TESTDEV");
    let container = Container::new().expect("container");
    let (group, dev) = joined(&container, &addr);
    let buf = DmaBuffer::new(&container, 8192).expect("buffer");
    drop(dev);
    assert!(buf.is_mapped(), "the group is still in the container");
    group.unset_container().expect("unset_container");
    assert!(!buf.is_mapped());
    assert_not_mapped(&buf, "buffer");
    group.set_container(&container).expect("set_container");
    container.set_iommu(IommuType::Type1v2).expect("set_iommu");
    assert!(!buf.is_mapped(), "a rejoin revived the old mapping");
    drop(buf);
    assert_eq!(container.dma_stats().leaked_bytes, 0);
}
