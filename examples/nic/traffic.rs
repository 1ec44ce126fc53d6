//! The traffic loop: NIC A sends numbered frames, NIC B receives and checks them, in polling
//! or interrupt mode.
//!
//! The sender keeps at most `window` frames in flight (sent, not yet taken from B's ring by
//! the receiver); by default one ring's worth, so a frame always finds a free descriptor at B
//! and a correct driver loses nothing whatever the two sides' speeds: any loss the test
//! reports is a real one. (A NIC drops what finds its ring full. QEMU's models first park such
//! frames in the hub, but the e1000 model then drops them as overruns at the next RDT write if
//! the ring fills again; the e1000e model keeps them, up to 10 000.)

use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::device::{Nic, NicError, NicIrq, Result};
use crate::packets::{FrameBuilder, FrameChecker, Verdict};
use crate::rings::RxFrame;
use crate::stats::{mbit_per_s, CpuTimes, Rate, RxTally};

/// How the loop learns that there is work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Busy-poll the descriptor rings.
    Polling,
    /// Sleep on the NICs' interrupts (eventfds), and touch a ring only when its NIC raised one.
    Interrupts,
}

/// What to send.
#[derive(Debug, Clone, Copy)]
pub struct TrafficConfig {
    /// Frames to send.
    pub count: u64,
    /// Frames per TX doorbell, and RX descriptors per RDT write at most.
    pub batch: usize,
    /// Frames in flight at most (0: no limit, the benchmark's flat-out sending).
    pub window: u64,
    /// Polling or interrupts.
    pub mode: Mode,
    /// Give up when nothing arrives for this long.
    pub idle_timeout: Duration,
    /// Print a progress line every second.
    pub progress: bool,
    /// Read the guest's CPU times (`/proc/stat`) at the start, when the last frame was sent
    /// and when the last one arrived: [`Outcome::cpu`].
    pub cpu: bool,
}

/// Busy CPU time of the whole guest (all CPUs) from the start of a run.
#[derive(Debug, Clone, Copy)]
pub struct CpuSpans {
    /// Until the last frame was handed to NIC A.
    pub tx: Duration,
    /// Until the last frame arrived at NIC B (what was sent meanwhile included: one loop
    /// does both, and under TCG both NICs' work happens inside its register writes).
    pub rx: Duration,
}

/// What happened.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Frames handed to NIC A.
    pub sent: u64,
    /// Bytes of those frames (without FCS).
    pub sent_bytes: u64,
    /// What NIC B received.
    pub tally: RxTally,
    /// From the first frame sent to the last doorbell of the burst.
    pub tx_time: Duration,
    /// From the first frame sent to the last frame received.
    pub total_time: Duration,
    /// TX doorbell (TDT) writes.
    pub tx_doorbells: u64,
    /// RX tail (RDT) writes.
    pub rx_doorbells: u64,
    /// Interrupts handled on A and on B.
    pub irqs: (u64, u64),
    /// Whether the loop stopped because nothing arrived for the idle timeout.
    pub timed_out: bool,
    /// With [`TrafficConfig::cpu`], the CPU time used (`None` when `/proc/stat` is unreadable).
    pub cpu: Option<CpuSpans>,
}

impl Outcome {
    /// Rate at which frames were handed to NIC A.
    pub fn tx_rate(&self) -> Rate {
        Rate::of(self.sent, self.tx_time)
    }

    /// Rate at which good frames arrived at NIC B, over the whole run.
    pub fn rx_rate(&self) -> Rate {
        Rate::of(self.tally.unique, self.total_time)
    }

    /// Megabits per second received, counting the FCS.
    pub fn rx_mbps(&self) -> f64 {
        mbit_per_s(self.tally.frames, self.tally.bytes, self.total_time)
    }
}

/// Sends a probe frame from `a` every 250 ms until `b` receives one, and returns how long
/// that took. QEMU's e1000 holds its receiver off for one second after RCTL is written (the
/// frames wait in the hub meanwhile); the probe keeps that second out of the measurements.
pub fn wait_until_ready(
    a: &mut Nic,
    b: &mut Nic,
    builder: &mut FrameBuilder,
    checker: &mut FrameChecker,
    timeout: Duration,
) -> Result<Duration> {
    let start = Instant::now();
    let mut last_probe: Option<Instant> = None;
    loop {
        if last_probe.is_none_or(|t| t.elapsed() >= Duration::from_millis(250)) {
            if let Some(mut buf) = a.tx.alloc() {
                let len = builder.build_probe(&mut buf)?;
                if a.tx.push(buf, len).is_ok() {
                    a.flush_tx()?;
                }
            }
            last_probe = Some(Instant::now());
        }
        a.tx.reclaim()?;
        let mut ready = false;
        let mut error = None;
        b.poll_rx(usize::MAX, |frame| {
            match checker.check(&frame.buf, frame.len) {
                Ok(Verdict::Probe) => ready = true,
                Ok(_) => {}
                Err(e) => error = Some(e),
            };
        })?;
        if let Some(e) = error {
            return Err(e.into());
        }
        if ready {
            return Ok(start.elapsed());
        }
        if start.elapsed() > timeout {
            let (sa, sb) = (a.read_hw_stats()?, b.read_hw_stats()?);
            return Err(NicError::Device(format!(
                "no frame from {} reached {} within {timeout:?} (link, filters, bus \
                 mastering?)\n  A: {}, sent {} (GPTC)\n  B: {}, received {} (GPRC), missed {} \
                 (MPC)",
                a.address(),
                b.address(),
                a.diagnostics(),
                sa.tx_packets,
                b.diagnostics(),
                sb.rx_packets,
                sb.rx_missed
            )));
        }
        sleep(Duration::from_millis(1));
    }
}

/// The receiving end: checks each frame and records the verdict; the frame's buffer goes back
/// to the RX pool when it drops at the end of [`Sink::take`].
struct Sink<'c> {
    checker: &'c mut FrameChecker,
    tally: RxTally,
    error: Option<uvfio::Error>,
}

impl Sink<'_> {
    #[inline]
    fn take(&mut self, frame: RxFrame) {
        if frame.errors != 0 || !frame.eop {
            self.tally.rx_error(frame.len);
            return;
        }
        match self.checker.check(&frame.buf, frame.len) {
            Ok(v) => self.tally.record(v, frame.len),
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
    }
}

/// Which NIC an interrupt came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    A,
    B,
}

/// Sends `cfg.count` frames from `a` to `b` and checks each one `b` receives. `irqs` must be
/// given (both NICs' interrupts, enabled) for [`Mode::Interrupts`].
pub fn run(
    a: &mut Nic,
    b: &mut Nic,
    irqs: Option<(&NicIrq, &NicIrq)>,
    cfg: &TrafficConfig,
    builder: &mut FrameBuilder,
    checker: &mut FrameChecker,
) -> Result<Outcome> {
    let mut o = Outcome {
        sent: 0,
        sent_bytes: 0,
        tally: RxTally::new(0),
        tx_time: Duration::ZERO,
        total_time: Duration::ZERO,
        tx_doorbells: 0,
        rx_doorbells: 0,
        irqs: (0, 0),
        timed_out: false,
        cpu: None,
    };
    let window = if cfg.window == 0 {
        u64::MAX
    } else {
        cfg.window
    };
    let mut waiter = match (cfg.mode, irqs) {
        (Mode::Polling, _) => None,
        (Mode::Interrupts, Some((ia, ib))) => {
            let mut w = ia
                .interrupts()
                .waiter_with(ia.vectors().iter().map(|&v| (v, (Side::A, v))))?;
            for &v in ib.vectors() {
                w.add(ib.interrupts(), v, (Side::B, v))?;
            }
            Some(w)
        }
        (Mode::Interrupts, None) => {
            return Err(NicError::Device("interrupt mode without interrupts".into()));
        }
    };
    let mut sink = Sink {
        checker,
        tally: RxTally::new(cfg.count),
        error: None,
    };

    // CPU readings: at the start, when the last frame is sent, and at each receive after that
    // (a few ring's worth at most), the last of which is when the last frame arrived.
    let cpu_start = if cfg.cpu { CpuTimes::now() } else { None };
    let mut cpu_tx = None;
    let mut cpu_rx = None;
    let start = Instant::now();
    let mut last_rx = start;
    let mut next_progress = start + Duration::from_secs(1);
    let mut fired = Vec::new();
    loop {
        // Send: up to one batch, within the window, then one doorbell.
        let mut pushed = 0;
        while o.sent < cfg.count
            && pushed < cfg.batch
            && o.sent - sink.tally.accounted().min(o.sent) < window
            && a.tx.free() > 0
        {
            let Some(mut buf) = a.tx.alloc() else { break };
            let len = builder.build(o.sent, &mut buf)?;
            if a.tx.push(buf, len).is_err() {
                break;
            }
            o.sent += 1;
            o.sent_bytes += len as u64;
            pushed += 1;
        }
        if pushed > 0 {
            a.flush_tx()?;
            o.tx_doorbells += 1;
            if o.sent == cfg.count {
                o.tx_time = start.elapsed();
                if cpu_start.is_some() {
                    cpu_tx = CpuTimes::now();
                }
            }
        }

        // Receive and clean up, by polling or on interrupts.
        let mut progress = false;
        match waiter.as_mut() {
            None => {
                a.tx.reclaim()?;
                let n = b.poll_rx(cfg.batch, |f| sink.take(f))?;
                if n > 0 {
                    o.rx_doorbells += 1;
                    progress = true;
                }
            }
            Some(w) => {
                let (ia, ib) = irqs.expect("checked above");
                // Do not sleep while there is room to send.
                let can_send = o.sent < cfg.count
                    && o.sent - sink.tally.accounted().min(o.sent) < window
                    && a.tx.free() > 0;
                let timeout = if can_send {
                    Duration::ZERO
                } else {
                    Duration::from_millis(50)
                };
                fired.clear();
                w.wait_into(Some(timeout), &mut fired)?;
                for f in &fired {
                    match f.key {
                        (Side::A, v) => {
                            o.irqs.0 += 1;
                            a.take_interrupt_causes()?;
                            a.tx.reclaim()?;
                            ia.rearm(v)?;
                        }
                        (Side::B, v) => {
                            o.irqs.1 += 1;
                            // Causes first, then the ring: a frame after this raises anew.
                            b.take_interrupt_causes()?;
                            loop {
                                let n = b.poll_rx(cfg.batch, |f| sink.take(f))?;
                                if n > 0 {
                                    o.rx_doorbells += 1;
                                    progress = true;
                                }
                                if n < cfg.batch {
                                    break;
                                }
                            }
                            ib.rearm(v)?;
                        }
                    }
                }
            }
        }
        if let Some(e) = sink.error.take() {
            return Err(e.into());
        }

        let now = Instant::now();
        if progress {
            last_rx = now;
            if cpu_start.is_some() && o.sent == cfg.count {
                cpu_rx = CpuTimes::now();
            }
        }
        if o.sent == cfg.count && sink.tally.accounted() >= cfg.count {
            break;
        }
        if now.duration_since(last_rx) > cfg.idle_timeout {
            o.timed_out = true;
            break;
        }
        if cfg.progress && now >= next_progress {
            next_progress += Duration::from_secs(1);
            let t = now.duration_since(start);
            println!(
                "  {:5.1} s  sent {:>9}  received {:>9}  {:>10}  in flight {:>5}  errors {}",
                t.as_secs_f64(),
                o.sent,
                sink.tally.unique,
                Rate::of(sink.tally.unique, t).to_string(),
                o.sent.saturating_sub(sink.tally.accounted()),
                sink.tally.corrupted + sink.tally.duplicated + sink.tally.rx_errors,
            );
        }
    }
    if let Some(t0) = cpu_start {
        let end = CpuTimes::now();
        let tx = cpu_tx.or(end);
        // Nothing arrived after the last send: the receive side was done before it.
        let rx = cpu_rx.or(tx);
        if let (Some(tx), Some(rx)) = (tx, rx) {
            o.cpu = Some(CpuSpans {
                tx: tx.busy_since(&t0),
                rx: rx.busy_since(&t0),
            });
        }
    }
    o.tally = sink.tally;
    o.total_time = last_rx.duration_since(start);
    if o.tx_time.is_zero() {
        o.tx_time = o.total_time;
    }
    Ok(o)
}
