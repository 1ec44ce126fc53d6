//! Admin and I/O commands, completion status, and the Identify data structures.
//!
//! Field positions are from the NVMe base specification 2.0 (admin commands, Identify
//! Controller, status codes) and the NVM command set specification 1.0 (Identify Namespace,
//! Read, Write, Compare, Flush).

use std::fmt;

use crate::queue::Sqe;
use crate::Res;

/// Admin command opcodes.
pub mod admin {
    pub const DELETE_IO_SQ: u8 = 0x00;
    pub const CREATE_IO_SQ: u8 = 0x01;
    pub const DELETE_IO_CQ: u8 = 0x04;
    pub const CREATE_IO_CQ: u8 = 0x05;
    pub const IDENTIFY: u8 = 0x06;
    pub const SET_FEATURES: u8 = 0x09;
}

/// NVM command set opcodes.
pub mod nvm {
    pub const FLUSH: u8 = 0x00;
    pub const WRITE: u8 = 0x01;
    pub const READ: u8 = 0x02;
    pub const COMPARE: u8 = 0x05;
}

/// Identify CNS values.
pub mod cns {
    pub const NAMESPACE: u32 = 0x00;
    pub const CONTROLLER: u32 = 0x01;
    pub const ACTIVE_NAMESPACES: u32 = 0x02;
}

/// The Number of Queues feature.
const FEATURE_NUMBER_OF_QUEUES: u32 = 0x07;

/// Memory the command's data goes to or comes from: IOVA-contiguous (one DMA buffer), turned
/// into PRPs by the queue.
#[derive(Clone, Copy, Debug)]
pub struct Transfer {
    pub iova: u64,
    pub len: usize,
}

/// A command before it is queued: the entry without its command id, and its data.
#[derive(Clone, Copy, Debug)]
pub struct Command {
    pub name: &'static str,
    pub sqe: Sqe,
    pub data: Option<Transfer>,
}

impl Command {
    fn new(name: &'static str, opcode: u8, nsid: u32) -> Command {
        Command {
            name,
            sqe: Sqe {
                cdw0: u32::from(opcode),
                nsid,
                ..Sqe::default()
            },
            data: None,
        }
    }

    /// Identify: `cns` selects the structure; 4 KiB of data.
    pub fn identify(cns: u32, nsid: u32, data: Transfer) -> Command {
        let mut c = Command::new("Identify", admin::IDENTIFY, nsid);
        c.sqe.cdw10 = cns;
        c.data = Some(data);
        c
    }

    /// Set Features / Number of Queues: asks for `sq` I/O submission and `cq` I/O completion
    /// queues; the completion's result holds what the controller granted.
    pub fn set_queue_count(sq: u16, cq: u16) -> Command {
        let mut c = Command::new("Set Features (Number of Queues)", admin::SET_FEATURES, 0);
        c.sqe.cdw10 = FEATURE_NUMBER_OF_QUEUES;
        c.sqe.cdw11 = u32::from(cq - 1) << 16 | u32::from(sq - 1);
        c
    }

    /// Create I/O Completion Queue `qid` of `entries` entries at `iova` (physically
    /// contiguous), with interrupts on MSI-X `vector`, or without interrupts (`None`: the
    /// driver polls the queue).
    pub fn create_io_cq(qid: u16, entries: u16, iova: u64, vector: Option<u16>) -> Command {
        const PC: u32 = 1 << 0;
        const IEN: u32 = 1 << 1;
        let mut c = Command::new("Create I/O Completion Queue", admin::CREATE_IO_CQ, 0);
        c.sqe.prp1 = iova;
        c.sqe.cdw10 = u32::from(entries - 1) << 16 | u32::from(qid);
        c.sqe.cdw11 = match vector {
            Some(v) => u32::from(v) << 16 | IEN | PC,
            None => PC,
        };
        c
    }

    /// Create I/O Submission Queue `qid` of `entries` entries at `iova` (physically
    /// contiguous), completing to CQ `cqid`, medium priority (ignored with round robin).
    pub fn create_io_sq(qid: u16, entries: u16, iova: u64, cqid: u16) -> Command {
        const PC: u32 = 1 << 0;
        let mut c = Command::new("Create I/O Submission Queue", admin::CREATE_IO_SQ, 0);
        c.sqe.prp1 = iova;
        c.sqe.cdw10 = u32::from(entries - 1) << 16 | u32::from(qid);
        c.sqe.cdw11 = u32::from(cqid) << 16 | PC;
        c
    }

    pub fn delete_io_sq(qid: u16) -> Command {
        let mut c = Command::new("Delete I/O Submission Queue", admin::DELETE_IO_SQ, 0);
        c.sqe.cdw10 = u32::from(qid);
        c
    }

    pub fn delete_io_cq(qid: u16) -> Command {
        let mut c = Command::new("Delete I/O Completion Queue", admin::DELETE_IO_CQ, 0);
        c.sqe.cdw10 = u32::from(qid);
        c
    }

    /// A Read, Write or Compare of `blocks` (1..=65536) logical blocks from `slba`.
    fn block_io(
        name: &'static str,
        opcode: u8,
        nsid: u32,
        slba: u64,
        blocks: u32,
        data: Transfer,
    ) -> Command {
        assert!(
            (1..=1 << 16).contains(&blocks),
            "{blocks} blocks in one command"
        );
        let mut c = Command::new(name, opcode, nsid);
        c.sqe.cdw10 = slba as u32;
        c.sqe.cdw11 = (slba >> 32) as u32;
        c.sqe.cdw12 = blocks - 1; // NLB, 0-based, in bits 15:0
        c.data = Some(data);
        c
    }

    pub fn read(nsid: u32, slba: u64, blocks: u32, data: Transfer) -> Command {
        Command::block_io("Read", nvm::READ, nsid, slba, blocks, data)
    }

    pub fn write(nsid: u32, slba: u64, blocks: u32, data: Transfer) -> Command {
        Command::block_io("Write", nvm::WRITE, nsid, slba, blocks, data)
    }

    /// Compare: the controller reads the blocks from the medium and `data` from host memory,
    /// and completes with Compare Failure if they differ.
    pub fn compare(nsid: u32, slba: u64, blocks: u32, data: Transfer) -> Command {
        Command::block_io("Compare", nvm::COMPARE, nsid, slba, blocks, data)
    }

    /// Flush: commits the volatile write cache (if any) to the medium.
    pub fn flush(nsid: u32) -> Command {
        Command::new("Flush", nvm::FLUSH, nsid)
    }
}

/// The status of a completion: the status field without the phase tag.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Status(pub u16);

impl Status {
    /// From the completion entry's status word (phase tag in bit 0).
    pub fn from_cqe(word: u16) -> Status {
        Status(word >> 1)
    }

    /// Status code type: 0 generic, 1 command specific, 2 media and data integrity errors.
    pub fn sct(self) -> u8 {
        (self.0 >> 8 & 0x7) as u8
    }

    /// Status code.
    pub fn sc(self) -> u8 {
        self.0 as u8
    }

    /// Do Not Retry.
    pub fn dnr(self) -> bool {
        self.0 & 1 << 14 != 0
    }

    pub fn is_success(self) -> bool {
        self.sct() == 0 && self.sc() == 0
    }

    /// Compare Failure: the data compared differs from the medium's.
    pub fn is_compare_failure(self) -> bool {
        self.sct() == 2 && self.sc() == 0x85
    }

    fn name(self) -> &'static str {
        match (self.sct(), self.sc()) {
            (0, 0x00) => "success",
            (0, 0x01) => "invalid command opcode",
            (0, 0x02) => "invalid field in command",
            (0, 0x04) => "data transfer error",
            (0, 0x06) => "internal error",
            (0, 0x0b) => "invalid namespace or format",
            (0, 0x13) => "invalid number of SGL descriptors / PRP offset",
            (0, 0x80) => "LBA out of range",
            (0, 0x81) => "capacity exceeded",
            (0, 0x82) => "namespace not ready",
            (1, 0x00) => "completion queue invalid",
            (1, 0x01) => "invalid queue identifier",
            (1, 0x02) => "invalid queue size",
            (1, 0x08) => "invalid interrupt vector",
            (1, 0x0c) => "invalid queue deletion",
            (2, 0x80) => "write fault",
            (2, 0x81) => "unrecovered read error",
            (2, 0x85) => "compare failure",
            (2, 0x86) => "access denied",
            _ => "other",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (SCT {}, SC {:#04x}{})",
            self.name(),
            self.sct(),
            self.sc(),
            if self.dnr() { ", do not retry" } else { "" }
        )
    }
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// An ASCII field, space padded.
fn ascii(b: &[u8]) -> String {
    String::from_utf8_lossy(b)
        .trim_end_matches([' ', '\0'])
        .to_string()
}

/// What the driver uses of the Identify Controller data structure (CNS 1).
#[derive(Debug, Clone)]
pub struct ControllerId {
    pub vendor: u16,
    pub serial: String,
    pub model: String,
    pub firmware: String,
    /// Maximum data transfer size: 2^MDTS units of CAP.MPSMIN; 0 = no limit.
    pub mdts: u8,
    pub controller_id: u16,
    /// The version the controller claims (VER; 0 before NVMe 1.2).
    pub version: u32,
    /// RTD3 entry latency in microseconds: how long a shutdown may take (0 = not reported).
    pub rtd3e: u32,
    /// Optional NVM command support (ONCS).
    pub oncs: u16,
    /// Volatile write cache (VWC).
    pub vwc: u8,
    /// Number of namespaces (NN).
    pub namespaces: u32,
}

impl ControllerId {
    pub fn parse(b: &[u8]) -> ControllerId {
        ControllerId {
            vendor: le16(b, 0),
            serial: ascii(&b[4..24]),
            model: ascii(&b[24..64]),
            firmware: ascii(&b[64..72]),
            mdts: b[77],
            controller_id: le16(b, 78),
            version: le32(b, 80),
            rtd3e: le32(b, 88),
            oncs: le16(b, 520),
            vwc: b[525],
            namespaces: le32(b, 516),
        }
    }

    /// The largest transfer of one command in bytes, for a minimum page size of `page`.
    pub fn max_transfer(&self, page: usize) -> Option<usize> {
        (self.mdts != 0).then(|| page << self.mdts)
    }

    pub fn supports_compare(&self) -> bool {
        self.oncs & 1 != 0
    }

    pub fn volatile_write_cache(&self) -> bool {
        self.vwc & 1 != 0
    }

    /// The optional NVM commands, by name.
    pub fn optional_commands(&self) -> Vec<&'static str> {
        const NAMES: [&str; 9] = [
            "Compare",
            "Write Uncorrectable",
            "Dataset Management",
            "Write Zeroes",
            "Save/Select",
            "Reservations",
            "Timestamp",
            "Verify",
            "Copy",
        ];
        (0..NAMES.len())
            .filter(|&i| self.oncs & 1 << i != 0)
            .map(|i| NAMES[i])
            .collect()
    }
}

/// What the driver uses of the Identify Namespace data structure (CNS 0).
#[derive(Debug, Clone)]
pub struct NamespaceId {
    /// Namespace size in logical blocks (NSZE).
    pub blocks: u64,
    /// Blocks that may be allocated (NCAP).
    pub capacity: u64,
    /// Blocks allocated (NUSE).
    pub used: u64,
    /// Logical block size in bytes, of the format in use.
    pub block_size: u32,
    /// Metadata bytes per block, of the format in use.
    pub metadata: u16,
    /// The format in use and the number of formats.
    pub format: (u8, u8),
}

impl NamespaceId {
    pub fn parse(b: &[u8]) -> Res<NamespaceId> {
        let nlbaf = b[25] + 1;
        let flbas = b[26];
        // FLBAS bits 3:0, and 6:5 as the upper bits when more than 16 formats exist.
        let format = (flbas & 0xf) | (flbas >> 5 & 0x3) << 4;
        if format >= nlbaf {
            return Err(format!("format {format} in use, but only {nlbaf} formats exist").into());
        }
        let lbaf = le32(b, 128 + 4 * usize::from(format));
        let lbads = lbaf >> 16 & 0xff;
        if !(9..=16).contains(&lbads) {
            return Err(format!("logical block size 2^{lbads} bytes: not 512 B..64 KiB").into());
        }
        Ok(NamespaceId {
            blocks: le64(b, 0),
            capacity: le64(b, 8),
            used: le64(b, 16),
            block_size: 1 << lbads,
            metadata: lbaf as u16,
            format: (format, nlbaf),
        })
    }

    pub fn bytes(&self) -> u64 {
        self.blocks * u64::from(self.block_size)
    }
}

/// The Active Namespace ID list (CNS 2): ascending ids, ended by 0.
pub fn parse_namespace_list(b: &[u8]) -> Vec<u32> {
    b.chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
        .take_while(|&id| id != 0)
        .collect()
}
