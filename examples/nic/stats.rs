//! Bookkeeping of a test run: which sequence numbers arrived, how often and in what order,
//! and the rates.

use std::fmt;
use std::time::Duration;

use crate::packets::{Damage, Verdict};

/// What the receiver saw, frame by frame.
#[derive(Debug, Clone)]
pub struct RxTally {
    /// One bit per sequence number `0..expected`.
    seen: Vec<u64>,
    expected: u64,
    /// The highest sequence number seen so far, plus one (0: none yet).
    next_in_order: u64,
    /// Distinct good frames.
    pub unique: u64,
    /// Good frames whose sequence number had been seen before.
    pub duplicated: u64,
    /// Good frames that arrived after a frame with a higher sequence number.
    pub out_of_order: u64,
    /// Frames that failed the length, address or checksum check, or carry a sequence number
    /// that was never sent.
    pub corrupted: u64,
    /// Frames the NIC flagged with a receive error, or that did not fit in one buffer.
    pub rx_errors: u64,
    /// Test frames of an earlier run, and probe frames: ignored.
    pub ignored: u64,
    /// Every frame taken from the ring.
    pub frames: u64,
    /// Bytes of the frames taken from the ring.
    pub bytes: u64,
    /// The first few damages, for the report.
    pub first_damages: Vec<Damage>,
}

impl RxTally {
    /// A tally for sequence numbers `0..expected`.
    pub fn new(expected: u64) -> RxTally {
        RxTally {
            seen: vec![0; expected.div_ceil(64) as usize],
            expected,
            next_in_order: 0,
            unique: 0,
            duplicated: 0,
            out_of_order: 0,
            corrupted: 0,
            rx_errors: 0,
            ignored: 0,
            frames: 0,
            bytes: 0,
            first_damages: Vec::new(),
        }
    }

    /// Records a frame the NIC flagged as bad (descriptor error bits, or no EOP).
    pub fn rx_error(&mut self, len: usize) {
        self.frames += 1;
        self.bytes += len as u64;
        self.rx_errors += 1;
    }

    /// Records the checker's verdict on a frame of `len` bytes.
    #[inline]
    pub fn record(&mut self, verdict: Verdict, len: usize) {
        self.frames += 1;
        self.bytes += len as u64;
        match verdict {
            Verdict::Good(seq) if seq < self.expected => {
                let (word, bit) = ((seq / 64) as usize, seq % 64);
                if self.seen[word] & (1 << bit) != 0 {
                    self.duplicated += 1;
                    return;
                }
                self.seen[word] |= 1 << bit;
                self.unique += 1;
                if seq < self.next_in_order {
                    self.out_of_order += 1;
                } else {
                    self.next_in_order = seq + 1;
                }
            }
            Verdict::Good(seq) => self.damage(Damage::Checksum { seq }),
            Verdict::Probe | Verdict::Stale => self.ignored += 1,
            Verdict::Corrupt(d) => self.damage(d),
        }
    }

    fn damage(&mut self, d: Damage) {
        self.corrupted += 1;
        if self.first_damages.len() < 5 {
            self.first_damages.push(d);
        }
    }

    /// Frames that count against the in-flight window: everything of this run taken from the
    /// ring.
    pub fn accounted(&self) -> u64 {
        self.frames - self.ignored
    }

    /// Sequence numbers `0..sent` that never arrived.
    pub fn lost(&self, sent: u64) -> u64 {
        sent.saturating_sub(self.unique)
    }

    /// Whether every one of `sent` frames arrived exactly once and undamaged.
    pub fn perfect(&self, sent: u64) -> bool {
        self.lost(sent) == 0 && self.duplicated == 0 && self.corrupted == 0 && self.rx_errors == 0
    }
}

/// A packet rate, printed with a unit.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Rate(pub f64);

impl Rate {
    /// `n` events in `t`.
    pub fn of(n: u64, t: Duration) -> Rate {
        let s = t.as_secs_f64();
        Rate(if s > 0.0 { n as f64 / s } else { 0.0 })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.0;
        if r >= 1e6 {
            write!(f, "{:.2} Mpps", r / 1e6)
        } else if r >= 1e3 {
            write!(f, "{:.1} kpps", r / 1e3)
        } else {
            write!(f, "{r:.0} pps")
        }
    }
}

/// Bits per second of `bytes` (frame bytes plus the 4-byte FCS per frame) in `t`, for
/// printing.
pub fn mbit_per_s(frames: u64, bytes: u64, t: Duration) -> f64 {
    let s = t.as_secs_f64();
    if s > 0.0 {
        (bytes + 4 * frames) as f64 * 8.0 / s / 1e6
    } else {
        0.0
    }
}

/// The guest's CPU time spent busy so far, all CPUs together, from the `cpu` line of
/// `/proc/stat`: user + nice + system + irq + softirq (idle, iowait and steal left out).
/// The kernel counts in `USER_HZ` ticks (100 a second on x86): 10 ms per tick, and the
/// accounting itself samples at the scheduler tick, so a window of a few tenths of a second
/// is known to a few per cent; medians over repetitions and boots even that out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuTimes {
    busy_ticks: u64,
}

/// `USER_HZ`, the unit of `/proc/stat`: fixed at 100 on x86.
const USER_HZ: u64 = 100;

impl CpuTimes {
    /// Reads `/proc/stat` now; `None` when it cannot be read or parsed.
    pub fn now() -> Option<CpuTimes> {
        CpuTimes::parse(&std::fs::read_to_string("/proc/stat").ok()?)
    }

    /// Parses the `cpu` line (the sum over all CPUs) of `/proc/stat`'s text.
    pub fn parse(stat: &str) -> Option<CpuTimes> {
        let line = stat.lines().find(|l| l.starts_with("cpu "))?;
        let f: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .map(|w| w.parse().ok())
            .collect::<Option<_>>()?;
        // user nice system idle iowait irq softirq [steal guest guest_nice]
        let get = |i: usize| f.get(i).copied();
        let busy = get(0)? + get(1)? + get(2)? + get(5)? + get(6)?;
        Some(CpuTimes { busy_ticks: busy })
    }

    /// The busy CPU time between `earlier` and this reading.
    pub fn busy_since(&self, earlier: &CpuTimes) -> Duration {
        let ticks = self.busy_ticks.saturating_sub(earlier.busy_ticks);
        Duration::from_millis(ticks * 1000 / USER_HZ)
    }
}

/// Nanoseconds of CPU per packet (0 when no packet moved).
pub fn ns_per_packet(cpu: Duration, packets: u64) -> f64 {
    if packets == 0 {
        0.0
    } else {
        cpu.as_nanos() as f64 / packets as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tally_counts_each_kind() {
        let mut t = RxTally::new(10);
        for seq in [0, 1, 3, 2, 3, 4] {
            t.record(Verdict::Good(seq), 60);
        }
        t.record(Verdict::Good(99), 60);
        t.record(Verdict::Stale, 60);
        assert_eq!((t.unique, t.duplicated, t.out_of_order), (5, 1, 1));
        assert_eq!((t.corrupted, t.ignored, t.frames), (1, 1, 8));
        assert_eq!(t.lost(6), 1);
        assert!(!t.perfect(5));
    }

    #[test]
    fn cpu_times_sum_the_busy_fields() {
        let stat = "cpu  100 5 50 9000 7 3 2 11 0 0\ncpu0 50 2 25 4500 3 1 1 5 0 0\n";
        let a = CpuTimes::parse(stat).expect("parses");
        let later = "cpu  130 5 60 9100 9 4 3 20 0 0\n";
        let b = CpuTimes::parse(later).expect("parses");
        // (30 user + 10 system + 1 irq + 1 softirq) ticks of 10 ms; idle, iowait, steal left out
        assert_eq!(b.busy_since(&a), Duration::from_millis(420));
        assert_eq!(a.busy_since(&b), Duration::ZERO);
        assert_eq!(CpuTimes::parse("cpu0 1 2 3\n"), None);
        assert_eq!(CpuTimes::parse("cpu  1 2 x 4 5 6 7\n"), None);
        assert_eq!(ns_per_packet(Duration::from_millis(1), 1000), 1000.0);
        assert_eq!(ns_per_packet(Duration::from_millis(1), 0), 0.0);
    }
}
