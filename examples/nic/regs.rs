//! BAR0 register offsets and bits of the Intel 8254x (e1000) and 82574 (e1000e) families.
//!
//! Only what this driver uses. The values are those of Linux's
//! `drivers/net/ethernet/intel/e1000/e1000_hw.h` and `e1000e/{regs,defines}.h`, which QEMU's
//! `hw/net/e1000_regs.h` repeats; the two families share the legacy register layout, and the
//! few registers that only the 82574 has are marked so.

// ---- General -------------------------------------------------------------------------------

/// Device control.
pub const CTRL: u64 = 0x0000;
/// Device status (read only).
pub const STATUS: u64 = 0x0008;
/// Extended device control.
pub const CTRL_EXT: u64 = 0x0018;

/// CTRL: auto-speed detection enable.
pub const CTRL_ASDE: u32 = 1 << 5;
/// CTRL: set link up.
pub const CTRL_SLU: u32 = 1 << 6;
/// CTRL: device reset (self-clearing).
pub const CTRL_RST: u32 = 1 << 26;
/// CTRL: VLAN mode (tag stripping and insertion).
pub const CTRL_VME: u32 = 1 << 30;

/// CTRL_EXT, 82574: extended interrupt auto-mask enable (MSI-X causes mask themselves).
pub const CTRL_EXT_EIAME: u32 = 1 << 24;
/// CTRL_EXT, 82574: interrupt auto-mask enable (reading ICR masks IAM's causes).
pub const CTRL_EXT_IAME: u32 = 1 << 27;

/// STATUS: full duplex.
pub const STATUS_FD: u32 = 1 << 0;
/// STATUS: link up.
pub const STATUS_LU: u32 = 1 << 1;
/// STATUS: link speed, bits 6-7 (00 = 10, 01 = 100, 1x = 1000 Mb/s).
pub const STATUS_SPEED_SHIFT: u32 = 6;
/// STATUS: the speed field's mask, after shifting.
pub const STATUS_SPEED_MASK: u32 = 0b11;

// ---- Interrupts ----------------------------------------------------------------------------

/// Interrupt cause read (reading clears it on the 8254x; write 1s to clear on both).
pub const ICR: u64 = 0x00c0;
/// Interrupt mask set/read: write 1s to *enable* causes. Writing 0 does nothing.
pub const IMS: u64 = 0x00d0;
/// Interrupt mask clear: write 1s to *disable* causes.
pub const IMC: u64 = 0x00d8;
/// Interrupt throttling: minimum interval between interrupts (0: none).
pub const ITR: u64 = 0x00c4;
/// 82574 only: causes cleared from ICR when their MSI-X vector fires.
pub const EIAC: u64 = 0x00dc;
/// 82574 only: causes masked automatically (see [`CTRL_EXT_IAME`]).
pub const IAM: u64 = 0x00e0;
/// 82574 only: interrupt vector allocation (which MSI-X vector each cause goes to).
pub const IVAR: u64 = 0x00e4;

/// ICR/IMS: transmit descriptor written back.
pub const INT_TXDW: u32 = 1 << 0;
/// ICR/IMS: link status change.
pub const INT_LSC: u32 = 1 << 2;
/// ICR/IMS: receiver overrun (a frame arrived with no free descriptor).
pub const INT_RXO: u32 = 1 << 6;
/// ICR/IMS: receive timer (a frame was written back).
pub const INT_RXT0: u32 = 1 << 7;
/// 82574, MSI-X mode: receive queue 0 written back (replaces RXT0).
pub const INT_RXQ0: u32 = 1 << 20;
/// 82574, MSI-X mode: transmit queue 0 written back (replaces TXDW).
pub const INT_TXQ0: u32 = 1 << 22;
/// 82574, MSI-X mode: every cause without a queue (LSC among them).
pub const INT_OTHER: u32 = 1 << 24;
/// Every cause.
pub const INT_ALL: u32 = u32::MAX;

/// IVAR: an entry (4 bits per cause) is used only with this bit set; the low 3 bits are the
/// vector.
pub const IVAR_VALID: u32 = 0x8;
/// IVAR: the RX queue 0 entry's shift.
pub const IVAR_RXQ0_SHIFT: u32 = 0;
/// IVAR: the TX queue 0 entry's shift.
pub const IVAR_TXQ0_SHIFT: u32 = 8;
/// IVAR: the "other causes" entry's shift.
pub const IVAR_OTHER_SHIFT: u32 = 16;

// ---- Receive -------------------------------------------------------------------------------

/// Receive control.
pub const RCTL: u64 = 0x0100;
/// Receive descriptor ring base, low and high 32 bits (16-byte aligned).
pub const RDBAL: u64 = 0x2800;
/// See [`RDBAL`].
pub const RDBAH: u64 = 0x2804;
/// Receive descriptor ring length in bytes: a multiple of 128.
pub const RDLEN: u64 = 0x2808;
/// Receive descriptor head: the next descriptor the NIC fills.
pub const RDH: u64 = 0x2810;
/// Receive descriptor tail: the NIC may fill descriptors up to, not including, this one.
pub const RDT: u64 = 0x2818;
/// Receive interrupt delay timer (0: interrupt at once).
pub const RDTR: u64 = 0x2820;
/// Receive interrupt absolute delay timer.
pub const RADV: u64 = 0x282c;
/// Receive checksum offload control.
pub const RXCSUM: u64 = 0x5000;

/// RCTL: receiver enable.
pub const RCTL_EN: u32 = 1 << 1;
/// RCTL: unicast promiscuous.
pub const RCTL_UPE: u32 = 1 << 3;
/// RCTL: multicast promiscuous.
pub const RCTL_MPE: u32 = 1 << 4;
/// RCTL: accept broadcast.
pub const RCTL_BAM: u32 = 1 << 15;
/// RCTL: buffer size 2048 (BSIZE = 00, BSEX = 0).
pub const RCTL_BSIZE_2048: u32 = 0;
/// RCTL: strip the Ethernet CRC from received frames.
pub const RCTL_SECRC: u32 = 1 << 26;

/// The receive buffer size [`RCTL_BSIZE_2048`] selects.
pub const RX_BUFFER_SIZE: usize = 2048;

// ---- Transmit ------------------------------------------------------------------------------

/// Transmit control.
pub const TCTL: u64 = 0x0400;
/// Transmit inter-packet gap.
pub const TIPG: u64 = 0x0410;
/// Transmit descriptor ring base, low and high 32 bits.
pub const TDBAL: u64 = 0x3800;
/// See [`TDBAL`].
pub const TDBAH: u64 = 0x3804;
/// Transmit descriptor ring length in bytes: a multiple of 128.
pub const TDLEN: u64 = 0x3808;
/// Transmit descriptor head: the next descriptor the NIC sends.
pub const TDH: u64 = 0x3810;
/// Transmit descriptor tail: one past the last descriptor software queued (the doorbell).
pub const TDT: u64 = 0x3818;
/// Transmit interrupt delay value.
pub const TIDV: u64 = 0x3820;
/// Transmit absolute interrupt delay value.
pub const TADV: u64 = 0x382c;

/// TCTL: transmitter enable.
pub const TCTL_EN: u32 = 1 << 1;
/// TCTL: pad short packets.
pub const TCTL_PSP: u32 = 1 << 3;
/// TCTL: collision threshold (bits 4-11), the value 802.3 recommends.
pub const TCTL_CT: u32 = 0x0f << 4;
/// TCTL: collision distance (bits 12-21) for full duplex.
pub const TCTL_COLD: u32 = 0x40 << 12;

/// TIPG for copper, IEEE 802.3 values (IPGT 10, IPGR1 8, IPGR2 6).
pub const TIPG_DEFAULT: u32 = 10 | (8 << 10) | (6 << 20);

// ---- Filters -------------------------------------------------------------------------------

/// Multicast table array: 128 32-bit entries.
pub const MTA: u64 = 0x5200;
/// Number of [`MTA`] entries.
pub const MTA_LEN: u64 = 128;
/// 82574 only: receive filter control (EXTEN selects extended RX descriptors).
pub const RFCTL: u64 = 0x5008;
/// 82574 only: multiple receive queues command (RSS).
pub const MRQC: u64 = 0x5818;

/// Receive address 0, low 32 bits (MAC bytes 0-3).
pub const RAL0: u64 = 0x5400;
/// Receive address 0, high 16 bits (MAC bytes 4-5) and the valid bit.
pub const RAH0: u64 = 0x5404;
/// RAH: address valid.
pub const RAH_AV: u32 = 1 << 31;

// ---- Statistics (all clear on read) --------------------------------------------------------

/// CRC errors.
pub const CRCERRS: u64 = 0x4000;
/// Missed packets (no receive descriptor free).
pub const MPC: u64 = 0x4010;
/// Good packets received.
pub const GPRC: u64 = 0x4074;
/// Good packets transmitted.
pub const GPTC: u64 = 0x4080;
/// Receive no buffers count.
pub const RNBC: u64 = 0x40a0;

// ---- Descriptors ---------------------------------------------------------------------------

/// Both legacy descriptor formats are 16 bytes.
pub const DESC_SIZE: usize = 16;

/// RX descriptor status: descriptor done (the NIC wrote it back).
pub const RXD_STAT_DD: u8 = 1 << 0;
/// RX descriptor status: end of packet (the frame ends in this buffer).
pub const RXD_STAT_EOP: u8 = 1 << 1;
/// RX descriptor errors that mean a bad frame: CRC/alignment, symbol, sequence, carrier
/// extension, RX data error (the checksum-error bits TCPE/IPE are left out: not offloaded).
pub const RXD_ERR_FRAME: u8 = 0x01 | 0x02 | 0x04 | 0x10 | 0x80;

/// TX descriptor command: end of packet.
pub const TXD_CMD_EOP: u8 = 1 << 0;
/// TX descriptor command: insert the Ethernet CRC.
pub const TXD_CMD_IFCS: u8 = 1 << 1;
/// TX descriptor command: report status (write DD back when sent).
pub const TXD_CMD_RS: u8 = 1 << 3;
/// TX descriptor status: descriptor done.
pub const TXD_STAT_DD: u8 = 1 << 0;
