//! The controller registers of BAR0 (NVMe base specification 2.0, section 3.1) and the
//! decoding of the capability register.

use std::fmt;
use std::time::Duration;

/// Controller Capabilities, 64 bits.
pub const CAP: u64 = 0x00;
/// Version.
pub const VS: u64 = 0x08;
/// Controller Configuration.
pub const CC: u64 = 0x14;
/// Controller Status.
pub const CSTS: u64 = 0x1c;
/// Admin Queue Attributes: the admin queue sizes.
pub const AQA: u64 = 0x24;
/// Admin Submission Queue base address, 64 bits.
pub const ASQ: u64 = 0x28;
/// Admin Completion Queue base address, 64 bits.
pub const ACQ: u64 = 0x30;
/// The first doorbell (admin SQ tail); the others follow at `4 << CAP.DSTRD` bytes each.
pub const DOORBELLS: u64 = 0x1000;

/// CC.EN: enable.
pub const CC_EN: u32 = 1 << 0;
/// CC.SHN = 01b: normal shutdown notification.
pub const CC_SHN_NORMAL: u32 = 0b01 << 14;
/// CC.SHN, the field.
pub const CC_SHN_MASK: u32 = 0b11 << 14;

/// CSTS.RDY: ready.
pub const CSTS_RDY: u32 = 1 << 0;
/// CSTS.CFS: controller fatal status.
pub const CSTS_CFS: u32 = 1 << 1;
/// CSTS.SHST, the field.
pub const CSTS_SHST_MASK: u32 = 0b11 << 2;
/// CSTS.SHST = 10b: shutdown processing complete.
pub const CSTS_SHST_COMPLETE: u32 = 0b10 << 2;

/// The memory page size the driver uses (CC.MPS = 0): 4 KiB, the smallest the specification
/// allows; bring-up checks that the controller's CAP.MPSMIN is 4 KiB.
pub const PAGE_SIZE: usize = 4096;

/// CC for an enabled controller: NVM command set (CSS = 0), 4 KiB pages (MPS = 0),
/// round-robin arbitration (AMS = 0), 64-byte submission and 16-byte completion entries.
pub fn cc_enable() -> u32 {
    const IOSQES: u32 = 6; // 2^6 = 64 bytes
    const IOCQES: u32 = 4; // 2^4 = 16 bytes
    CC_EN | (IOSQES << 16) | (IOCQES << 20)
}

/// AQA for admin queues of `sq` and `cq` entries.
pub fn aqa(sq: u16, cq: u16) -> u32 {
    (u32::from(cq) - 1) << 16 | (u32::from(sq) - 1)
}

/// The decoded capability register.
#[derive(Clone, Copy)]
pub struct Cap(pub u64);

impl Cap {
    /// The largest queue the controller supports, in entries (MQES is 0-based).
    pub fn max_queue_entries(self) -> u32 {
        (self.0 & 0xffff) as u32 + 1
    }

    /// Whether I/O queues must be physically contiguous (CQR).
    pub fn contiguous_required(self) -> bool {
        self.0 >> 16 & 1 != 0
    }

    /// The worst-case time for CSTS.RDY to follow CC.EN (TO, in 500 ms units).
    pub fn timeout(self) -> Duration {
        Duration::from_millis((self.0 >> 24 & 0xff) * 500)
    }

    /// The doorbell stride in bytes: `4 << DSTRD`.
    pub fn doorbell_stride(self) -> u64 {
        4 << (self.0 >> 32 & 0xf)
    }

    /// Whether the controller supports the NVM command set (CSS bit 0).
    pub fn nvm_command_set(self) -> bool {
        self.0 >> 37 & 1 != 0
    }

    /// The smallest and largest memory page sizes, in bytes.
    pub fn page_sizes(self) -> (usize, usize) {
        let min = (self.0 >> 48 & 0xf) as u32;
        let max = (self.0 >> 52 & 0xf) as u32;
        (1 << (12 + min), 1 << (12 + max))
    }

    /// The offset of the tail doorbell of submission queue `qid`.
    pub fn sq_tail_doorbell(self, qid: u16) -> u64 {
        DOORBELLS + 2 * u64::from(qid) * self.doorbell_stride()
    }

    /// The offset of the head doorbell of completion queue `qid`.
    pub fn cq_head_doorbell(self, qid: u16) -> u64 {
        DOORBELLS + (2 * u64::from(qid) + 1) * self.doorbell_stride()
    }
}

impl fmt::Display for Cap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (min, max) = self.page_sizes();
        write!(
            f,
            "CAP {:#018x}: MQES {}, CQR {}, TO {:?}, doorbell stride {}, pages {}..{} KiB",
            self.0,
            self.max_queue_entries(),
            u8::from(self.contiguous_required()),
            self.timeout(),
            self.doorbell_stride(),
            min >> 10,
            max >> 10
        )
    }
}

/// The version register as `major.minor.tertiary`.
pub fn version(vs: u32) -> String {
    format!("{}.{}.{}", vs >> 16, vs >> 8 & 0xff, vs & 0xff)
}
