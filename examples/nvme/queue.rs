//! A submission/completion queue pair in DMA memory: entries, phase tracking, doorbells,
//! command ids and PRP lists.
//!
//! The host owns the submission queue (SQ) tail and the completion queue (CQ) head; the
//! controller owns the SQ head (reported back in every completion) and the CQ tail. A new
//! completion entry is recognised by its phase bit: the controller writes the entries of its
//! first pass through the CQ with phase 1, of the second pass with phase 0, and so on; the
//! host expects phase 1 until its head wraps, then 0.
//!
//! Ordering with the controller follows [`DmaMemory`]'s rules: entries (and the data and PRP
//! lists they point to) are written, then a release fence, then the tail doorbell; a completion
//! is seen through its status word, then an acquire fence, then the rest of the entry (and the
//! data the command brought in) is read.

use std::sync::atomic::{fence, Ordering};

use uvfio::dma::{DmaBuffer, DmaMemory, DmaOptions, DmaPool, PoolBuffer};
use uvfio::mmio::Region;
use uvfio::zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};
use uvfio::DmaSpace;

use crate::cmd::{Command, Status};
use crate::regs::{Cap, PAGE_SIZE};
use crate::Res;

/// A submission queue entry (64 bytes), in host byte order; [`Sqe::to_le`] before it goes to
/// the queue.
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Clone, Copy, Debug, Default)]
pub struct Sqe {
    /// Opcode (7:0), fused operation (9:8), PRP/SGL selection (15:14), command id (31:16).
    pub cdw0: u32,
    pub nsid: u32,
    pub cdw2: u32,
    pub cdw3: u32,
    /// Metadata pointer (unused: the example refuses namespaces with metadata).
    pub mptr: u64,
    pub prp1: u64,
    pub prp2: u64,
    pub cdw10: u32,
    pub cdw11: u32,
    pub cdw12: u32,
    pub cdw13: u32,
    pub cdw14: u32,
    pub cdw15: u32,
}

/// A completion queue entry (16 bytes), as the controller writes it (little-endian).
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Clone, Copy, Debug, Default)]
pub struct Cqe {
    /// Command-specific result.
    pub dw0: u32,
    pub dw1: u32,
    /// The controller's SQ head after this command.
    pub sq_head: u16,
    pub sq_id: u16,
    pub cid: u16,
    /// Phase tag (bit 0) and status (15:1).
    pub status: u16,
}

const SQE_SIZE: usize = std::mem::size_of::<Sqe>();
const CQE_SIZE: usize = std::mem::size_of::<Cqe>();
const _: () = assert!(SQE_SIZE == 64 && CQE_SIZE == 16);
/// The offset of the status word in a completion entry.
const CQE_STATUS: usize = 14;
/// PRP entries in one list page. Longer transfers would chain list pages; this driver refuses
/// them instead (MDTS usually keeps transfers far below: QEMU allows 512 KiB).
const PRPS_PER_PAGE: usize = PAGE_SIZE / 8;

impl Sqe {
    /// The entry in the controller's byte order (NVMe structures are little-endian).
    pub fn to_le(self) -> Sqe {
        Sqe {
            cdw0: self.cdw0.to_le(),
            nsid: self.nsid.to_le(),
            cdw2: self.cdw2.to_le(),
            cdw3: self.cdw3.to_le(),
            mptr: self.mptr.to_le(),
            prp1: self.prp1.to_le(),
            prp2: self.prp2.to_le(),
            cdw10: self.cdw10.to_le(),
            cdw11: self.cdw11.to_le(),
            cdw12: self.cdw12.to_le(),
            cdw13: self.cdw13.to_le(),
            cdw14: self.cdw14.to_le(),
            cdw15: self.cdw15.to_le(),
        }
    }
}

impl Cqe {
    /// The entry in host byte order.
    fn to_host(self) -> Cqe {
        Cqe {
            dw0: u32::from_le(self.dw0),
            dw1: u32::from_le(self.dw1),
            sq_head: u16::from_le(self.sq_head),
            sq_id: u16::from_le(self.sq_id),
            cid: u16::from_le(self.cid),
            status: u16::from_le(self.status),
        }
    }
}

/// A finished command.
#[derive(Clone, Copy, Debug)]
pub struct Completion {
    pub cid: u16,
    /// Dword 0 of the completion: the command's result (e.g. the granted queue counts).
    pub result: u32,
    pub status: Status,
}

/// One queue pair: SQ `qid` and the CQ `qid` it completes to.
pub struct QueuePair {
    qid: u16,
    entries: u16,
    sq: DmaBuffer,
    cq: DmaBuffer,
    sq_doorbell: u64,
    cq_doorbell: u64,
    sq_tail: u16,
    /// The last SQ head the controller reported: the entries from here to the tail are still
    /// the controller's.
    sq_head: u16,
    cq_head: u16,
    /// The phase tag of the next new completion.
    phase: bool,
    /// The CQ head the controller was last told about.
    cq_head_rung: u16,
    /// The SQ tail the controller was last told about.
    sq_tail_rung: u16,
    /// By command id: the commands in flight, with the PRP list page each one holds.
    in_flight: Vec<Option<InFlight>>,
    next_cid: u16,
    /// Pages for PRP lists, one per in-flight command that needs one; taking and returning
    /// one makes no system call.
    prp_lists: DmaPool,
}

struct InFlight {
    /// Returned to the pool when the command completes, not before: the controller may read
    /// the list until then.
    _prp_list: Option<PoolBuffer>,
}

impl QueuePair {
    /// Allocates the queues of `entries` entries each in zeroed DMA memory (so that every CQ
    /// entry starts with phase 0, i.e. "not new"). DMA buffers are page-aligned and
    /// IOVA-contiguous, which covers both CAP.CQR and the 4 KiB alignment of queue bases.
    pub fn new(space: &DmaSpace, cap: Cap, qid: u16, entries: u16) -> Res<QueuePair> {
        if entries < 2 || u32::from(entries) > cap.max_queue_entries() {
            return Err(format!(
                "queue {qid}: {entries} entries, the controller supports 2..={}",
                cap.max_queue_entries()
            )
            .into());
        }
        let n = usize::from(entries);
        let lists = n.min(16);
        Ok(QueuePair {
            qid,
            entries,
            sq: DmaBuffer::new(space, n * SQE_SIZE)?,
            cq: DmaBuffer::new(space, n * CQE_SIZE)?,
            sq_doorbell: cap.sq_tail_doorbell(qid),
            cq_doorbell: cap.cq_head_doorbell(qid),
            sq_tail: 0,
            sq_head: 0,
            cq_head: 0,
            phase: true,
            cq_head_rung: 0,
            sq_tail_rung: 0,
            in_flight: (0..n).map(|_| None).collect(),
            next_cid: 0,
            prp_lists: DmaPool::new(space, PAGE_SIZE, lists, DmaOptions::new())?,
        })
    }

    /// The queue id.
    pub fn qid(&self) -> u16 {
        self.qid
    }

    /// Entries of each of the two queues; at most one less can be in flight.
    pub fn entries(&self) -> u16 {
        self.entries
    }

    /// The IOVA of the submission queue, for ASQ or Create I/O Submission Queue.
    pub fn sq_iova(&self) -> u64 {
        self.sq.iova()
    }

    /// The IOVA of the completion queue, for ACQ or Create I/O Completion Queue.
    pub fn cq_iova(&self) -> u64 {
        self.cq.iova()
    }

    /// Commands submitted and not completed yet.
    pub fn in_flight(&self) -> usize {
        self.in_flight.iter().filter(|c| c.is_some()).count()
    }

    /// Puts `command` at the SQ tail, with a fresh command id and its data pointers; the
    /// controller sees it at the next [`QueuePair::ring_sq`]. Returns the command id.
    pub fn push(&mut self, command: &Command) -> Res<u16> {
        let next_tail = (self.sq_tail + 1) % self.entries;
        if next_tail == self.sq_head {
            return Err(format!("queue {}: the submission queue is full", self.qid).into());
        }
        let cid = self.free_cid().ok_or_else(|| {
            format!(
                "queue {}: {} commands in flight, no command id free",
                self.qid,
                self.in_flight()
            )
        })?;
        let mut sqe = command.sqe;
        sqe.cdw0 = (sqe.cdw0 & 0xffff) | u32::from(cid) << 16;
        let mut prp_list = None;
        if let Some(data) = command.data {
            let (prp1, prp2, list) = self.prps(data.iova, data.len)?;
            sqe.prp1 = prp1;
            sqe.prp2 = prp2;
            prp_list = list;
        }
        self.sq
            .write(usize::from(self.sq_tail) * SQE_SIZE, sqe.to_le())?;
        self.sq_tail = next_tail;
        self.in_flight[usize::from(cid)] = Some(InFlight {
            _prp_list: prp_list,
        });
        Ok(cid)
    }

    /// Tells the controller about every entry pushed since the last call: one doorbell write
    /// for a whole batch.
    pub fn ring_sq(&mut self, bar0: &Region) -> Res<()> {
        if self.sq_tail == self.sq_tail_rung {
            return Ok(());
        }
        // The entries, PRP lists and write data must be visible before the doorbell is.
        fence(Ordering::Release);
        bar0.write_u32(self.sq_doorbell, u32::from(self.sq_tail))?;
        self.sq_tail_rung = self.sq_tail;
        Ok(())
    }

    /// The next new completion, if the controller has posted one. The CQ head doorbell is
    /// left for [`QueuePair::ring_cq`], once per batch.
    pub fn pop(&mut self) -> Res<Option<Completion>> {
        let offset = usize::from(self.cq_head) * CQE_SIZE;
        // The status word first: it holds the phase tag, and the controller writes the entry
        // with it, so once the tag is new the rest of the entry is there too.
        let status = u16::from_le(self.cq.read::<u16>(offset + CQE_STATUS)?);
        if (status & 1 == 1) != self.phase {
            return Ok(None);
        }
        fence(Ordering::Acquire);
        let cqe = self.cq.read::<Cqe>(offset)?.to_host();
        self.cq_head += 1;
        if self.cq_head == self.entries {
            self.cq_head = 0;
            self.phase = !self.phase;
        }
        if cqe.sq_id != self.qid || cqe.sq_head >= self.entries {
            return Err(format!(
                "queue {}: completion for SQ {} with SQ head {}: not this queue's",
                self.qid, cqe.sq_id, cqe.sq_head
            )
            .into());
        }
        self.sq_head = cqe.sq_head;
        let slot = self
            .in_flight
            .get_mut(usize::from(cqe.cid))
            .and_then(Option::take);
        if slot.is_none() {
            return Err(format!(
                "queue {}: completion for command id {}, which is not in flight",
                self.qid, cqe.cid
            )
            .into());
        }
        // Dropping the slot gives its PRP list page back to the pool.
        Ok(Some(Completion {
            cid: cqe.cid,
            result: cqe.dw0,
            status: Status::from_cqe(cqe.status),
        }))
    }

    /// Tells the controller which completion entries it may reuse.
    pub fn ring_cq(&mut self, bar0: &Region) -> Res<()> {
        if self.cq_head == self.cq_head_rung {
            return Ok(());
        }
        bar0.write_u32(self.cq_doorbell, u32::from(self.cq_head))?;
        self.cq_head_rung = self.cq_head;
        Ok(())
    }

    fn free_cid(&mut self) -> Option<u16> {
        let n = self.entries;
        let cid = (0..n)
            .map(|i| (self.next_cid + i) % n)
            .find(|&c| self.in_flight[usize::from(c)].is_none())?;
        self.next_cid = (cid + 1) % n;
        Some(cid)
    }

    /// PRP1, PRP2 and the PRP list page (if one is needed) for `len` bytes of IOVA-contiguous
    /// memory at `iova` (NVMe 2.0 section 4.1.1, with 4 KiB memory pages):
    /// - within one page: PRP1 only;
    /// - over two pages: PRP1, and PRP2 = the second page;
    /// - more: PRP1, and PRP2 = the IOVA of a list of the second and later pages.
    fn prps(&mut self, iova: u64, len: usize) -> Res<(u64, u64, Option<PoolBuffer>)> {
        const PAGE: u64 = PAGE_SIZE as u64;
        if len == 0 || iova % 4 != 0 {
            return Err(
                format!("transfer of {len} bytes at {iova:#x}: empty or misaligned").into(),
            );
        }
        let first = PAGE - iova % PAGE;
        if len as u64 <= first {
            return Ok((iova, 0, None));
        }
        let second = iova - iova % PAGE + PAGE;
        let pages = (len as u64 - first).div_ceil(PAGE) as usize;
        if pages == 1 {
            return Ok((iova, second, None));
        }
        if pages > PRPS_PER_PAGE {
            return Err(format!("transfer of {len} bytes needs a chained PRP list").into());
        }
        let mut list = self
            .prp_lists
            .alloc()
            .ok_or("no free PRP list page: too many large commands in flight")?;
        let entries: Vec<u64> = (0..pages as u64)
            .map(|k| (second + k * PAGE).to_le())
            .collect();
        list.write_slice(0, &entries)?;
        Ok((iova, list.iova(), Some(list)))
    }
}
