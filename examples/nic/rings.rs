//! The RX and TX descriptor rings: legacy 16-byte descriptors in a [`DmaBuffer`], packet
//! buffers from a [`DmaPool`], and one tail-register write per batch.
//!
//! # Ownership protocol
//!
//! Each descriptor slot owns the [`PoolBuffer`] whose IOVA it holds, so a buffer cannot go
//! back to its pool (and be reused) while the NIC may still read or write it:
//!
//! - **RX.** Every slot always holds a buffer. The NIC owns the slots from its head (RDH) up
//!   to, not including, the tail (RDT); the slot *at* RDT is the one kept back so that a full
//!   ring and an empty one look different. [`RxQueue::poll`] takes the buffers of the slots
//!   the NIC wrote back (status DD), hands them to the caller as [`RxFrame`]s, puts a fresh
//!   buffer from the pool in each slot, and then moves RDT once for the whole batch.
//! - **TX.** [`TxQueue::push`] writes a descriptor at the software tail and parks the buffer
//!   in that slot; [`TxQueue::flush`] rings the doorbell (TDT) once for everything pushed
//!   since the last flush; [`TxQueue::reclaim`] drops the buffers of the slots the NIC reported
//!   done (DD), which returns them to the pool.
//!
//! # Ordering
//!
//! The descriptors and buffers are written with volatile stores (through [`DmaMemory`]); a
//! release fence before each tail-register write makes them visible to the device before the
//! doorbell, and an acquire fence after seeing DD makes the device's writes of the rest of the
//! descriptor and of the buffer visible before they are read. On x86 both compile to compiler
//! barriers only: DMA is cache coherent and stores are not reordered with stores.

use std::sync::atomic::{fence, Ordering};
use std::time::{Duration, Instant};

use uvfio::dma::{DmaBuffer, DmaMemory, DmaOptions, DmaPool, PoolBuffer};
use uvfio::mmio::Region;
use uvfio::zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};
use uvfio::DmaSpace;

use crate::regs;

/// A legacy receive descriptor (8254x manual, 3.2.3).
#[repr(C)]
#[derive(
    FromBytes, IntoBytes, Immutable, KnownLayout, Clone, Copy, Debug, Default, PartialEq, Eq,
)]
pub struct RxDesc {
    /// IOVA of the buffer.
    pub addr: u64,
    /// Bytes written to the buffer (the frame, without FCS when RCTL.SECRC is set).
    pub length: u16,
    /// Packet checksum (not used).
    pub csum: u16,
    /// DD, EOP, ...
    pub status: u8,
    /// CE, SE, SEQ, CXE, RXE, ...
    pub errors: u8,
    /// VLAN tag (not used).
    pub special: u16,
}

/// A legacy transmit descriptor (8254x manual, 3.3.3).
#[repr(C)]
#[derive(
    FromBytes, IntoBytes, Immutable, KnownLayout, Clone, Copy, Debug, Default, PartialEq, Eq,
)]
pub struct TxDesc {
    /// IOVA of the buffer.
    pub addr: u64,
    /// Bytes to send from the buffer.
    pub length: u16,
    /// Checksum offset (not used).
    pub cso: u8,
    /// EOP, IFCS, RS, ...
    pub cmd: u8,
    /// DD, written back by the NIC when RS is set.
    pub status: u8,
    /// Checksum start (not used).
    pub css: u8,
    /// VLAN tag (not used).
    pub special: u16,
}

/// The size of a TX packet buffer: room for the largest frame.
pub const TX_BUFFER_SIZE: usize = 2048;

/// Offset of the status byte in both descriptor formats.
const STATUS_OFFSET: usize = 12;

/// The smallest and largest ring the 8254x accepts: RDLEN/TDLEN are multiples of 128 bytes
/// (8 descriptors; QEMU masks the low bits away), the 82540's maximum is 4096 descriptors.
pub const MIN_RING: usize = 8;
/// See [`MIN_RING`].
pub const MAX_RING: usize = 4096;

/// Checks a ring size: a multiple of 8 between [`MIN_RING`] and [`MAX_RING`].
pub fn valid_ring_size(n: usize) -> bool {
    (MIN_RING..=MAX_RING).contains(&n) && n % 8 == 0
}

fn ring_buffer(space: &DmaSpace, size: usize) -> uvfio::Result<DmaBuffer> {
    // 16-byte alignment is all the NIC needs; the buffer is page aligned anyway.
    DmaBuffer::with_options(space, size * regs::DESC_SIZE, DmaOptions::new())
}

/// Tail-register writes of a queue, and the time spent in them: on an emulated NIC that time
/// is the device model's work (a TDT write sends the whole batch before it returns, an RDT
/// write delivers the frames waiting for free descriptors).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Doorbells {
    /// Number of tail writes.
    pub writes: u64,
    /// Time spent in them.
    pub time: Duration,
}

impl Doorbells {
    #[inline]
    fn ring(&mut self, bar: &Region, reg: u64, value: usize) -> uvfio::Result<()> {
        let t = Instant::now();
        bar.write_u32(reg, value as u32)?;
        self.time += t.elapsed();
        self.writes += 1;
        Ok(())
    }
}

/// A received frame: the buffer (back to the pool when dropped) and what the descriptor said.
#[derive(Debug)]
pub struct RxFrame {
    /// The buffer, holding `len` bytes of frame.
    pub buf: PoolBuffer,
    /// Frame length in bytes.
    pub len: usize,
    /// The descriptor's error bits that mean a bad frame ([`regs::RXD_ERR_FRAME`]).
    pub errors: u8,
    /// Whether the frame ended in this buffer (always, with 2 KiB buffers and frames of at
    /// most 1518 bytes).
    pub eop: bool,
}

/// The receive ring of one NIC.
#[derive(Debug)]
pub struct RxQueue {
    ring: DmaBuffer,
    bufs: Vec<Option<PoolBuffer>>,
    pool: DmaPool,
    /// The next slot the NIC will write back (software's view of RDH).
    next: usize,
    /// The slot RDT points at: held back from the NIC.
    tail: usize,
    /// RDT writes.
    pub doorbells: Doorbells,
}

impl RxQueue {
    /// A ring of `size` descriptors (see [`valid_ring_size`]) and a pool of 2 KiB buffers
    /// for it, with `spare` buffers beyond one per slot for frames the caller still holds.
    pub fn new(space: &DmaSpace, size: usize, spare: usize) -> uvfio::Result<RxQueue> {
        assert!(valid_ring_size(size), "bad ring size {size}");
        let ring = ring_buffer(space, size)?;
        let pool = DmaPool::new(space, regs::RX_BUFFER_SIZE, size + spare, DmaOptions::new())?;
        Ok(RxQueue {
            ring,
            bufs: (0..size).map(|_| None).collect(),
            pool,
            next: 0,
            tail: size - 1,
            doorbells: Doorbells::default(),
        })
    }

    /// Number of descriptors.
    pub fn size(&self) -> usize {
        self.bufs.len()
    }

    /// Puts a buffer in every slot and programs the ring registers: base, length, head 0 and
    /// tail `size - 1` (every slot but the last belongs to the NIC). The receiver itself is
    /// enabled separately (RCTL), after this.
    pub fn start(&mut self, bar: &Region) -> uvfio::Result<()> {
        for i in 0..self.size() {
            let buf = self.pool.alloc().expect("the pool has a buffer per slot");
            self.ring.write(i * regs::DESC_SIZE, rx_desc(&buf))?;
            self.bufs[i] = Some(buf);
        }
        self.next = 0;
        self.tail = self.size() - 1;
        let iova = self.ring.iova();
        bar.write_u32(regs::RDBAL, iova as u32)?;
        bar.write_u32(regs::RDBAH, (iova >> 32) as u32)?;
        bar.write_u32(regs::RDLEN, (self.size() * regs::DESC_SIZE) as u32)?;
        bar.write_u32(regs::RDH, 0)?;
        fence(Ordering::Release);
        bar.write_u32(regs::RDT, self.tail as u32)?;
        Ok(())
    }

    /// Takes up to `budget` frames the NIC wrote back, in order, handing each to `deliver`,
    /// refills their slots from the pool, and gives the slots back with a single RDT write.
    /// Returns the number of frames taken.
    ///
    /// If the pool runs dry (the caller holds on to too many frames) the poll stops early;
    /// the frames stay in the ring for the next call.
    pub fn poll(
        &mut self,
        bar: &Region,
        budget: usize,
        mut deliver: impl FnMut(RxFrame),
    ) -> uvfio::Result<usize> {
        let mut n = 0;
        while n < budget {
            let off = self.next * regs::DESC_SIZE;
            let status: u8 = self.ring.read(off + STATUS_OFFSET)?;
            if status & regs::RXD_STAT_DD == 0 {
                break;
            }
            // The NIC wrote the buffer before the descriptor: read neither before seeing DD.
            fence(Ordering::Acquire);
            let Some(fresh) = self.pool.alloc() else {
                break;
            };
            let desc: RxDesc = self.ring.read(off)?;
            let buf = self.bufs[self.next]
                .replace(fresh)
                .expect("every RX slot holds a buffer");
            // Re-arm the slot (status 0) with the fresh buffer before handing the old one out.
            let armed = rx_desc(self.bufs[self.next].as_ref().expect("just put"));
            self.ring.write(off, armed)?;
            deliver(RxFrame {
                buf,
                len: usize::from(desc.length),
                errors: desc.errors & regs::RXD_ERR_FRAME,
                eop: desc.status & regs::RXD_STAT_EOP != 0,
            });
            self.tail = self.next;
            self.next = (self.next + 1) % self.size();
            n += 1;
        }
        if n > 0 {
            // The re-armed descriptors must be in memory before the NIC may use them.
            fence(Ordering::Release);
            self.doorbells.ring(bar, regs::RDT, self.tail)?;
        }
        Ok(n)
    }
}

fn rx_desc(buf: &PoolBuffer) -> RxDesc {
    RxDesc {
        addr: buf.iova(),
        ..RxDesc::default()
    }
}

/// The transmit ring of one NIC.
#[derive(Debug)]
pub struct TxQueue {
    ring: DmaBuffer,
    bufs: Vec<Option<PoolBuffer>>,
    pool: DmaPool,
    /// The next slot to fill (TDT after the next flush).
    tail: usize,
    /// The tail value last written to TDT: slots before it belong to the NIC.
    flushed: usize,
    /// The oldest slot not reclaimed yet.
    clean: usize,
    /// Slots in use (pushed, not reclaimed).
    used: usize,
    /// TDT writes.
    pub doorbells: Doorbells,
}

impl TxQueue {
    /// A ring of `size` descriptors and a pool of 2 KiB buffers: one per slot plus `spare`
    /// for frames being built.
    pub fn new(space: &DmaSpace, size: usize, spare: usize) -> uvfio::Result<TxQueue> {
        assert!(valid_ring_size(size), "bad ring size {size}");
        let ring = ring_buffer(space, size)?;
        let pool = DmaPool::new(space, TX_BUFFER_SIZE, size + spare, DmaOptions::new())?;
        Ok(TxQueue {
            ring,
            bufs: (0..size).map(|_| None).collect(),
            pool,
            tail: 0,
            flushed: 0,
            clean: 0,
            used: 0,
            doorbells: Doorbells::default(),
        })
    }

    /// Number of descriptors.
    pub fn size(&self) -> usize {
        self.bufs.len()
    }

    /// Programs the ring registers: base, length, head = tail = 0 (empty). The transmitter
    /// is enabled separately (TCTL).
    pub fn start(&mut self, bar: &Region) -> uvfio::Result<()> {
        self.ring.fill(0, self.ring.len(), 0)?;
        self.tail = 0;
        self.flushed = 0;
        self.clean = 0;
        self.used = 0;
        let iova = self.ring.iova();
        bar.write_u32(regs::TDBAL, iova as u32)?;
        bar.write_u32(regs::TDBAH, (iova >> 32) as u32)?;
        bar.write_u32(regs::TDLEN, (self.size() * regs::DESC_SIZE) as u32)?;
        bar.write_u32(regs::TDH, 0)?;
        bar.write_u32(regs::TDT, 0)?;
        Ok(())
    }

    /// A buffer to build a frame in, if the pool has one (no system call).
    #[inline]
    pub fn alloc(&self) -> Option<PoolBuffer> {
        self.pool.alloc()
    }

    /// Free slots. One slot always stays empty: TDT == TDH means "nothing to send".
    #[inline]
    pub fn free(&self) -> usize {
        self.size() - 1 - self.used
    }

    /// Frames pushed but not yet handed to the NIC by [`TxQueue::flush`].
    #[inline]
    pub fn unflushed(&self) -> usize {
        (self.tail + self.size() - self.flushed) % self.size()
    }

    /// Queues the first `len` bytes of `buf` for sending; nothing is sent before
    /// [`TxQueue::flush`]. Gives the buffer back if the ring is full.
    pub fn push(&mut self, buf: PoolBuffer, len: usize) -> Result<(), PoolBuffer> {
        if self.free() == 0 {
            return Err(buf);
        }
        let desc = TxDesc {
            addr: buf.iova(),
            length: len as u16,
            cmd: regs::TXD_CMD_EOP | regs::TXD_CMD_IFCS | regs::TXD_CMD_RS,
            ..TxDesc::default()
        };
        // Cannot fail: the slot is inside the ring.
        if self.ring.write(self.tail * regs::DESC_SIZE, desc).is_err() {
            return Err(buf);
        }
        self.bufs[self.tail] = Some(buf);
        self.tail = (self.tail + 1) % self.size();
        self.used += 1;
        Ok(())
    }

    /// Rings the doorbell: one TDT write hands every frame pushed since the last flush to the
    /// NIC. Returns how many that was.
    pub fn flush(&mut self, bar: &Region) -> uvfio::Result<usize> {
        let n = self.unflushed();
        if n > 0 {
            // Descriptors (and the frames they point at) before the doorbell.
            fence(Ordering::Release);
            self.doorbells.ring(bar, regs::TDT, self.tail)?;
            self.flushed = self.tail;
        }
        Ok(n)
    }

    /// Drops the buffers of the frames the NIC has sent (DD written back), oldest first,
    /// which returns them to the pool. Returns how many were reclaimed.
    pub fn reclaim(&mut self) -> uvfio::Result<usize> {
        let mut n = 0;
        while self.clean != self.flushed {
            let status: u8 = self
                .ring
                .read(self.clean * regs::DESC_SIZE + STATUS_OFFSET)?;
            if status & regs::TXD_STAT_DD == 0 {
                break;
            }
            fence(Ordering::Acquire);
            self.bufs[self.clean] = None;
            self.clean = (self.clean + 1) % self.size();
            self.used -= 1;
            n += 1;
        }
        Ok(n)
    }
}
