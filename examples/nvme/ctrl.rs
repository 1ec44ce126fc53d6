//! The controller: bring-up, admin commands, the I/O queue pair, interrupts, and the way
//! down (shutdown on success, disable on every path).

use std::time::{Duration, Instant};

use uvfio::device::{IrqIndex, RegionIndex};
use uvfio::dma::{DmaBuffer, DmaMemory};
use uvfio::mmio::Region;
use uvfio::pci::config::{BusMaster, PciConfig};
use uvfio::{Device, DmaSpace, Interrupts};

use crate::cmd::{cns, parse_namespace_list, Command, ControllerId, NamespaceId, Transfer};
use crate::queue::{Completion, QueuePair};
use crate::regs::{self, Cap, PAGE_SIZE};
use crate::Res;

/// Admin queue entries (both queues).
pub const ADMIN_ENTRIES: u16 = 32;
/// The id of the first I/O queue pair (the others follow).
const IO_QID: u16 = 1;
/// How long a command may take before the driver gives up on it. Generous: under TCG the
/// emulated controller is slow, and a real one may be waking from a low-power state.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// The PCI class of an NVMe controller: mass storage, non-volatile memory, NVM Express.
const CLASS_NVME: (u8, u8, u8) = (0x01, 0x08, 0x02);

/// What bring-up found and how long it took.
pub struct StartReport {
    pub cap: Cap,
    pub version: u32,
    /// CC and CSTS as found, before the driver touched them.
    pub found_cc: u32,
    pub found_csts: u32,
    pub msix_vectors: u32,
    /// The IOVAs of the admin submission and completion queues.
    pub admin_queues: (u64, u64),
    pub disable_time: Duration,
    pub enable_time: Duration,
}

/// What the way down did.
pub struct ShutdownReport {
    pub deleted_io_queues: bool,
    pub shutdown_time: Duration,
    pub disable_time: Duration,
}

/// A running controller. Dropping it without [`Controller::shutdown`] (an error path)
/// still disables the controller and turns bus mastering off, before the queues' DMA memory
/// is unmapped and MSI-X is disabled.
pub struct Controller {
    bar0: Region,
    config: PciConfig,
    cap: Cap,
    /// Bus mastering, on while the controller may DMA. An owned guard in the driver's state:
    /// declared before MSI-X and the queues' memory, so it drops (and stops DMA) first.
    bus_master: Option<BusMaster>,
    irqs: Interrupts,
    /// The vector of the I/O completion queue: 1 when the device has two or more (the admin
    /// queue always signals vector 0), else 0, shared with the admin queue.
    io_vector: u32,
    /// How often each vector fired (eventfd counts).
    irq_counts: Vec<u64>,
    /// Admin commands completed: each completion of the admin queue signals vector 0.
    admin_commands: u64,
    /// I/O commands completed, and the batches (doorbell writes) they came in.
    io_commands: (u64, u64),
    admin: QueuePair,
    /// The I/O queue pairs, ids 1, 2, ...: empty until created.
    io: Vec<QueuePair>,
    /// One page for Identify data.
    identify: DmaBuffer,
    space: DmaSpace,
    shutdown_timeout: Duration,
    /// CC.EN is set (by this driver), so the way down has to clear it.
    enabled: bool,
}

impl Controller {
    /// Brings the controller up: PCI command register, BAR0, MSI-X, then the NVMe sequence
    /// (disable, admin queues, enable).
    pub fn start(space: &DmaSpace, device: &Device) -> Res<(Controller, StartReport)> {
        let config = device.pci_config()?;
        let class = config.class()?;
        if class != CLASS_NVME {
            return Err(format!(
                "{} has PCI class {:02x}:{:02x}:{:02x}, not an NVMe controller (01:08:02)",
                device.name(),
                class.0,
                class.1,
                class.2
            )
            .into());
        }
        // vfio-pci leaves memory decoding and bus mastering off. Decoding first, for BAR0;
        // bus mastering once the Controller exists, whose Drop turns it off again on any
        // error path.
        config.enable_memory_space()?;
        let bar0 = device.region(RegionIndex::BAR0)?;

        let cap = Cap(bar0.read_u64(regs::CAP)?);
        let version = bar0.read_u32(regs::VS)?;
        let found_cc = bar0.read_u32(regs::CC)?;
        let found_csts = bar0.read_u32(regs::CSTS)?;
        if found_csts == u32::MAX {
            return Err("CSTS reads all ones: the controller does not respond".into());
        }
        if !cap.nvm_command_set() {
            return Err(format!("{cap}: no NVM command set").into());
        }
        if cap.page_sizes().0 > PAGE_SIZE {
            return Err(format!("{cap}: 4 KiB memory pages are not supported").into());
        }

        // MSI-X before the controller is enabled: the admin queue signals vector 0 from the
        // start. Two vectors tell admin and I/O completions apart.
        let msix_vectors = device.irq_info(IrqIndex::MSIX)?.count;
        if msix_vectors == 0 {
            return Err("the device has no MSI-X vectors (this driver does not do INTx)".into());
        }
        let irqs = device.enable_irqs(IrqIndex::MSIX, msix_vectors.min(2))?;
        let io_vector = irqs.len() - 1;

        let admin = QueuePair::new(space, cap, 0, ADMIN_ENTRIES)?;
        let mut ctrl = Controller {
            irq_counts: vec![0; irqs.len() as usize],
            admin_commands: 0,
            io_commands: (0, 0),
            bar0,
            config,
            cap,
            irqs,
            bus_master: None,
            io_vector,
            admin,
            io: Vec::new(),
            identify: DmaBuffer::new(space, PAGE_SIZE)?,
            space: space.clone(),
            shutdown_timeout: cap.timeout(),
            // Assume the worst until the disable below has succeeded.
            enabled: true,
        };
        // Needed for every queue access of the controller and for MSI-X messages.
        ctrl.bus_master = Some(ctrl.config.bus_master()?);

        // 1. Disable (a reset of the controller): whatever a previous user left running stops,
        //    and its queues are forgotten.
        ctrl.bar0.write_u32(regs::CC, 0)?;
        let disable_time = ctrl.wait_ready(false)?;
        ctrl.enabled = false;

        // 2. The admin queues. 64-bit registers as two 32-bit writes, low half first, as
        //    Linux does for controllers that mishandle 64-bit accesses.
        let b = &ctrl.bar0;
        b.write_u32(regs::AQA, regs::aqa(ADMIN_ENTRIES, ADMIN_ENTRIES))?;
        let (asq, acq) = (ctrl.admin.sq_iova(), ctrl.admin.cq_iova());
        b.write_u32(regs::ASQ, asq as u32)?;
        b.write_u32(regs::ASQ + 4, (asq >> 32) as u32)?;
        b.write_u32(regs::ACQ, acq as u32)?;
        b.write_u32(regs::ACQ + 4, (acq >> 32) as u32)?;

        // 3. Enable, and wait until ready.
        ctrl.enabled = true;
        ctrl.bar0.write_u32(regs::CC, regs::cc_enable())?;
        let enable_time = ctrl.wait_ready(true)?;

        let report = StartReport {
            cap,
            version,
            found_cc,
            found_csts,
            msix_vectors,
            admin_queues: (asq, acq),
            disable_time,
            enable_time,
        };
        Ok((ctrl, report))
    }

    /// Waits until CSTS.RDY is `ready`, within CAP.TO; fails on CSTS.CFS while enabling.
    fn wait_ready(&self, ready: bool) -> Res<Duration> {
        let start = Instant::now();
        loop {
            let csts = self.bar0.read_u32(regs::CSTS)?;
            if csts == u32::MAX {
                return Err("CSTS reads all ones: the controller stopped responding".into());
            }
            if ready && csts & regs::CSTS_CFS != 0 {
                return Err(
                    format!("controller fatal status while enabling (CSTS {csts:#x})").into(),
                );
            }
            if (csts & regs::CSTS_RDY != 0) == ready {
                return Ok(start.elapsed());
            }
            if start.elapsed() > self.cap.timeout().max(Duration::from_millis(500)) {
                return Err(format!(
                    "CSTS.RDY did not become {} within CAP.TO = {:?} (CSTS {csts:#x})",
                    u8::from(ready),
                    self.cap.timeout()
                )
                .into());
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// The MSI-X vector of the I/O completion queue.
    pub fn io_vector(&self) -> u32 {
        self.io_vector
    }

    /// How often each vector fired so far, after collecting the signals not waited for.
    pub fn irq_counts(&mut self) -> Res<Vec<u64>> {
        for v in 0..self.irqs.len() {
            if let Some(n) = self.irqs.try_wait(v)? {
                self.irq_counts[v as usize] += n;
            }
        }
        Ok(self.irq_counts.clone())
    }

    /// Collects the admin queue's interrupts still on their way (a completion can be seen in
    /// memory before its interrupt reaches the eventfd), so that they are not counted as the
    /// I/O's: waits up to 200 ms for one signal per admin command. There may be fewer: two
    /// messages of one vector that reach the CPU close together can merge into one interrupt.
    /// Returns (signals of vector 0, admin commands).
    pub fn settle_admin_irqs(&mut self) -> Res<(u64, u64)> {
        let deadline = Instant::now() + Duration::from_millis(200);
        self.irq_counts()?;
        while self.io_vector != 0 && self.irq_counts[0] < self.admin_commands {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.wait_irq(0, left)? == 0 {
                break;
            }
        }
        Ok((self.irq_counts[0], self.admin_commands))
    }

    /// I/O commands completed so far, and the batches they were submitted in.
    pub fn io_commands(&self) -> (u64, u64) {
        self.io_commands
    }

    /// Waits up to `timeout` for `vector` to fire; returns how often it fired (0: it did not).
    pub fn wait_irq(&mut self, vector: u32, timeout: Duration) -> Res<u64> {
        let n = self.irqs.wait(vector, Some(timeout))?.unwrap_or(0);
        self.irq_counts[vector as usize] += n;
        Ok(n)
    }

    /// Runs one admin command and waits for it; a status other than success is an error.
    pub fn admin(&mut self, command: &Command) -> Res<Completion> {
        self.admin.push(command)?;
        self.admin.ring_sq(&self.bar0)?;
        let c = reap(
            &mut self.admin,
            &self.bar0,
            &self.irqs,
            0,
            1,
            &mut self.irq_counts,
        )?;
        let c = c[0];
        self.admin_commands += 1;
        if !c.status.is_success() {
            return Err(format!("{}: {}", command.name, c.status).into());
        }
        Ok(c)
    }

    /// Identify structure `cns` (of namespace `nsid`), 4 KiB.
    fn identify(&mut self, cns: u32, nsid: u32) -> Res<Vec<u8>> {
        self.identify.fill(0, PAGE_SIZE, 0)?;
        let data = Transfer {
            iova: self.identify.iova(),
            len: PAGE_SIZE,
        };
        self.admin(&Command::identify(cns, nsid, data))?;
        Ok(self.identify.read_to_vec(0, PAGE_SIZE)?)
    }

    pub fn identify_controller(&mut self) -> Res<ControllerId> {
        let id = ControllerId::parse(&self.identify(cns::CONTROLLER, 0)?);
        if id.rtd3e != 0 {
            self.shutdown_timeout = Duration::from_micros(id.rtd3e.into());
        }
        Ok(id)
    }

    pub fn active_namespaces(&mut self) -> Res<Vec<u32>> {
        Ok(parse_namespace_list(
            &self.identify(cns::ACTIVE_NAMESPACES, 0)?,
        ))
    }

    pub fn identify_namespace(&mut self, nsid: u32) -> Res<NamespaceId> {
        NamespaceId::parse(&self.identify(cns::NAMESPACE, nsid)?)
    }

    /// Creates one I/O queue pair whose completions signal the I/O vector. Returns the
    /// numbers of SQs and CQs the controller would allow.
    pub fn create_io_queues(&mut self, entries: u16) -> Res<(u32, u32)> {
        self.create_queue_pairs(1, entries, true)
    }

    /// Creates `count` I/O queue pairs (ids 1..=count) of `entries` entries each: asks for
    /// that many queues of each kind (Set Features, as the specification wants before any is
    /// created) and fails if the controller grants fewer, then for each pair the CQ (with
    /// interrupts on the I/O vector, or none: `interrupts` false, for a driver that polls),
    /// then the SQ. `entries` is checked against CAP.MQES. Returns the numbers of SQs and CQs
    /// the controller would allow.
    pub fn create_queue_pairs(
        &mut self,
        count: u16,
        entries: u16,
        interrupts: bool,
    ) -> Res<(u32, u32)> {
        if count == 0 || !self.io.is_empty() {
            return Err(format!(
                "{count} I/O queue pairs asked for, {} exist already",
                self.io.len()
            )
            .into());
        }
        let granted = self.admin(&Command::set_queue_count(count, count))?.result;
        let (sqs, cqs) = ((granted & 0xffff) + 1, (granted >> 16) + 1);
        if sqs.min(cqs) < u32::from(count) {
            return Err(format!(
                "{count} I/O queue pairs asked for, the controller grants {sqs} SQs and {cqs} CQs"
            )
            .into());
        }
        let vector = interrupts.then_some(self.io_vector as u16);
        for qid in IO_QID..IO_QID + count {
            let queue = QueuePair::new(&self.space, self.cap, qid, entries)?;
            let (sq, cq) = (queue.sq_iova(), queue.cq_iova());
            self.admin(&Command::create_io_cq(qid, entries, cq, vector))?;
            // From here on the controller uses the memory: keep it until the queues are
            // deleted or the controller is disabled.
            self.io.push(queue);
            self.admin(&Command::create_io_sq(qid, entries, sq, qid))?;
        }
        Ok((sqs, cqs))
    }

    /// BAR0 (for the doorbells) and the I/O queue pairs, for a driver loop of its own
    /// (`--bench`).
    pub fn queue_pairs(&mut self) -> (&Region, &mut [QueuePair]) {
        (&self.bar0, &mut self.io)
    }

    /// Submits `commands` on the I/O queue with one doorbell write and waits for all of them
    /// on the I/O vector. Returns the completions in the order of `commands`, whatever their
    /// status: what a failed status means is the caller's business.
    pub fn io(&mut self, commands: &[Command]) -> Res<Vec<Completion>> {
        let queue = self.io.first_mut().ok_or("no I/O queue")?;
        let mut cids = Vec::with_capacity(commands.len());
        for c in commands {
            cids.push(queue.push(c)?);
        }
        queue.ring_sq(&self.bar0)?;
        let mut done = reap(
            queue,
            &self.bar0,
            &self.irqs,
            self.io_vector,
            commands.len(),
            &mut self.irq_counts,
        )?;
        done.sort_by_key(|c| cids.iter().position(|&cid| cid == c.cid));
        self.io_commands.0 += commands.len() as u64;
        self.io_commands.1 += 1;
        Ok(done)
    }

    /// The orderly way down: delete the I/O queues, normal shutdown (CC.SHN, so a real drive
    /// commits its caches), disable (CC.EN = 0, wait for RDY = 0), bus mastering off. The
    /// controller is then as vfio-pci handed it over and the next run can start from scratch.
    pub fn shutdown(mut self) -> Res<ShutdownReport> {
        let deleted_io_queues = !self.io.is_empty();
        // Every SQ before its CQ: a CQ with an SQ still on it cannot be deleted.
        let qids: Vec<u16> = self.io.iter().map(QueuePair::qid).collect();
        for &qid in &qids {
            self.admin(&Command::delete_io_sq(qid))?;
            self.admin(&Command::delete_io_cq(qid))?;
        }
        self.io.clear();
        let start = Instant::now();
        let cc = self.bar0.read_u32(regs::CC)?;
        self.bar0.write_u32(regs::CC, cc | regs::CC_SHN_NORMAL)?;
        let limit = self.shutdown_timeout.max(Duration::from_secs(1));
        loop {
            let csts = self.bar0.read_u32(regs::CSTS)?;
            if csts & regs::CSTS_SHST_MASK == regs::CSTS_SHST_COMPLETE {
                break;
            }
            if start.elapsed() > limit {
                return Err(
                    format!("shutdown not complete after {limit:?} (CSTS {csts:#x})").into(),
                );
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        let shutdown_time = start.elapsed();
        let disable_time = self.disable()?;
        Ok(ShutdownReport {
            deleted_io_queues,
            shutdown_time,
            disable_time,
        })
    }

    /// CC.EN = 0 (which also clears CC.SHN), wait for RDY = 0, bus mastering off.
    fn disable(&mut self) -> Res<Duration> {
        let cc = self.bar0.read_u32(regs::CC)?;
        self.bar0
            .write_u32(regs::CC, cc & !(regs::CC_EN | regs::CC_SHN_MASK))?;
        let time = self.wait_ready(false)?;
        self.enabled = false;
        if let Some(bus_master) = self.bus_master.take() {
            bus_master.release()?;
        }
        Ok(time)
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        // On an error path: stop the controller before its queues' memory is unmapped (the
        // fields drop after this), and leave bus mastering off whatever happens.
        if self.enabled {
            if let Err(e) = self.disable() {
                eprintln!("nvme: disabling the controller on the way out: {e}");
            }
        }
        // The `bus_master` guard, if still held, turns bus mastering off as the fields drop,
        // before the queues' memory does.
    }
}

/// Waits for `count` completions on `queue`, sleeping on `vector` between looks, then rings
/// the CQ head doorbell once for all of them.
///
/// Looking before sleeping is what makes this race-free: an interrupt that arrives after the
/// look leaves the eventfd readable, so the wait returns at once; one that arrived before it
/// (for a completion already taken) only causes one extra look.
fn reap(
    queue: &mut QueuePair,
    bar0: &Region,
    irqs: &Interrupts,
    vector: u32,
    count: usize,
    irq_counts: &mut [u64],
) -> Res<Vec<Completion>> {
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let mut done = Vec::with_capacity(count);
    while done.len() < count {
        if let Some(c) = queue.pop()? {
            done.push(c);
            continue;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match irqs.wait(vector, Some(left))? {
            Some(n) => irq_counts[vector as usize] += n,
            None => {
                let csts = bar0.read_u32(regs::CSTS)?;
                return Err(format!(
                    "queue {}: {} of {count} completions after {COMMAND_TIMEOUT:?}, no interrupt \
                     on vector {vector} (CSTS {csts:#x})",
                    queue.qid(),
                    done.len()
                )
                .into());
            }
        }
    }
    queue.ring_cq(bar0)?;
    Ok(done)
}
