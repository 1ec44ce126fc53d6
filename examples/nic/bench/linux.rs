//! The Linux half of `--bench`: the pair handed to `e1000`/`e1000e` through sysfs, `pktgen`
//! sending from A, B's interface counter sampled, `ethtool` for the ring size and the
//! interrupt moderation; the NICs given back to vfio-pci afterwards.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::time::{clock_gettime, ClockId};
use uvfio::pci::sysfs::Sysfs;
use uvfio::pci::PciAddress;

use super::{Res, Row, Sample, BURSTS, RING, SIZES};
use crate::device::{Mac, Model};
use crate::stats::{ns_per_packet, CpuTimes, Rate};

const PKTGEN: &str = "/proc/net/pktgen";

/// Whether the kernel half can run: NIC drivers and pktgen loaded.
pub(super) fn kernel_available() -> Result<(), String> {
    let hint = "run tests/vm/nic-bench.sh, which loads e1000, e1000e and pktgen in the VM";
    for d in ["e1000", "e1000e"] {
        if !Path::new("/sys/bus/pci/drivers").join(d).exists() {
            return Err(format!("the {d} driver is not loaded ({hint})"));
        }
    }
    if !Path::new(PKTGEN).join("pgctrl").exists() {
        return Err(format!("pktgen is not loaded ({hint})"));
    }
    Ok(())
}

fn write(path: impl AsRef<Path>, value: &str) -> Res<()> {
    let path = path.as_ref();
    fs::write(path, value)
        .map_err(|e| format!("writing {value:?} to {}: {e}", path.display()).into())
}

fn read(path: impl AsRef<Path>) -> Res<String> {
    let path = path.as_ref();
    fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()).into())
}

/// The `ethtool` program: next to this binary (where `tests/vm/nic-bench.sh` ships it), or on
/// the `PATH`.
#[derive(Debug, Clone)]
pub(super) struct Ethtool(PathBuf);

impl Ethtool {
    /// Finds `ethtool`, if there is one.
    pub(super) fn find() -> Option<Ethtool> {
        let beside = std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(|d| d.join("ethtool")));
        let path = std::env::var_os("PATH").unwrap_or_default();
        beside
            .into_iter()
            .chain(std::env::split_paths(&path).map(|d| d.join("ethtool")))
            .find(|p| p.is_file())
            .map(Ethtool)
    }

    fn run(&self, args: &[&str]) -> Res<String> {
        let out = Command::new(&self.0)
            .args(args)
            .output()
            .map_err(|e| format!("running {}: {e}", self.0.display()))?;
        if !out.status.success() {
            return Err(format!(
                "ethtool {}: {} {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )
            .into());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The current RX and TX ring sizes (`ethtool -g`).
    fn rings(&self, ifname: &str) -> Res<(u32, u32)> {
        let text = self.run(&["-g", ifname])?;
        let current = text
            .split_once("Current hardware settings:")
            .map(|(_, c)| c)
            .ok_or_else(|| format!("ethtool -g {ifname}: no current settings in {text:?}"))?;
        let field = |name: &str| -> Res<u32> {
            current
                .lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim() == name)
                .and_then(|(_, v)| v.trim().parse().ok())
                .ok_or_else(|| format!("ethtool -g {ifname}: no {name} ring size").into())
        };
        Ok((field("RX")?, field("TX")?))
    }

    /// Sets both rings to `size` descriptors unless they are already; returns the sizes read
    /// back.
    fn set_rings(&self, ifname: &str, size: u32) -> Res<(u32, u32)> {
        if self.rings(ifname)? != (size, size) {
            let s = size.to_string();
            self.run(&["-G", ifname, "rx", &s, "tx", &s])?;
        }
        self.rings(ifname)
    }

    /// Sets `rx-usecs` (the e1000/e1000e drivers' `InterruptThrottleRate`: 0 off, 3 their
    /// default dynamic moderation) and returns it read back (`ethtool -c`). The e1000 driver
    /// refuses both on the 82540EM (QEMU's e1000) with `EOPNOTSUPP`: an error.
    fn set_rx_usecs(&self, ifname: &str, usecs: u32) -> Res<u32> {
        self.run(&["-C", ifname, "rx-usecs", &usecs.to_string()])?;
        let text = self.run(&["-c", ifname])?;
        text.lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim() == "rx-usecs")
            .and_then(|(_, v)| v.trim().parse().ok())
            .ok_or_else(|| format!("ethtool -c {ifname}: no rx-usecs in {text:?}").into())
    }
}

/// The sequence number of the kernel log's last record, to read only what comes after it.
fn kmsg_last_seq() -> u64 {
    kmsg_records().last().map_or(0, |(seq, _)| *seq)
}

/// The kernel log's records (sequence number, text) as far as `/dev/kmsg` has them.
fn kmsg_records() -> Vec<(u64, String)> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let Ok(mut f) = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/kmsg")
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    // One record per read; EAGAIN at the end, EPIPE when a record was overwritten meanwhile.
    let mut buf = vec![0u8; 8192];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let rec = String::from_utf8_lossy(&buf[..n]);
                let Some((head, text)) = rec.split_once(';') else {
                    continue;
                };
                if let Some(seq) = head.split(',').nth(1).and_then(|x| x.parse().ok()) {
                    out.push((seq, text.lines().next().unwrap_or("").to_string()));
                }
            }
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
            Err(_) => break,
        }
    }
    out
}

/// The interrupt moderation the e1000 driver gave `address` at its probe after kernel log
/// record `since`, as `rx-usecs` (0 off, 1 dynamic, 3 dynamic conservative, 4 simplified),
/// from the line `e1000_check_options` prints when `InterruptThrottleRate` has an entry for
/// the probe; `None` without one.
fn e1000_probe_itr(address: PciAddress, since: u64) -> Option<u32> {
    let addr = address.to_string();
    let (_, line) = kmsg_records().into_iter().rev().find(|(seq, t)| {
        *seq > since && t.contains(&addr) && t.contains("Interrupt Throttling Rate")
    })?;
    if line.contains("turned off") {
        Some(0)
    } else if line.contains("dynamic conservative mode") {
        Some(3)
    } else if line.contains("dynamic mode") {
        Some(1)
    } else if line.contains("simplified") {
        Some(4)
    } else {
        None
    }
}

/// A NIC on its kernel driver.
struct KernelNic {
    address: PciAddress,
    ifname: String,
    /// The group's type file and the type to put back.
    restore: Option<(PathBuf, String)>,
}

impl KernelNic {
    /// Moves the NIC from vfio-pci to its kernel driver and finds its interface. With
    /// `domain` (`"identity"`), the NIC's IOMMU group is switched to that default-domain type
    /// while no driver holds it, and switched back by [`KernelNic::release`].
    fn bind(address: PciAddress, driver: &str, domain: Option<&str>) -> Res<KernelNic> {
        let dev = PathBuf::from(format!("/sys/bus/pci/devices/{address}"));
        write(dev.join("driver_override"), "\n")?;
        if dev.join("driver").exists() {
            write(dev.join("driver/unbind"), &address.to_string())?;
        }
        let group = Sysfs::new().iommu_group(&address)?;
        let type_file = PathBuf::from(format!("/sys/kernel/iommu_groups/{group}/type"));
        let mut restore = None;
        if let Some(domain) = domain {
            let old = read(&type_file)?.trim().to_string();
            write(&type_file, domain)?;
            restore = Some((type_file, old));
        }
        write("/sys/bus/pci/drivers_probe", &address.to_string())?;
        let nic = KernelNic {
            address,
            ifname: String::new(),
            restore,
        };
        let bound = fs::read_link(dev.join("driver")).ok();
        if bound.as_ref().and_then(|p| p.file_name()) != Some(driver.as_ref()) {
            let _ = nic.release();
            return Err(format!("{address}: {driver} did not take the device").into());
        }
        let ifname = fs::read_dir(dev.join("net"))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .next()
            .ok_or_else(|| format!("{address}: no network interface"))?;
        // No IPv6 chatter (router solicitations, MLD) on the link.
        let _ = write(
            format!("/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6"),
            "1",
        );
        Ok(KernelNic { ifname, ..nic })
    }

    /// The NIC's IOMMU domain type now (`DMA`, `DMA-FQ`, `identity`).
    fn domain(&self) -> String {
        Sysfs::new()
            .iommu_group(&self.address)
            .ok()
            .and_then(|g| read(format!("/sys/kernel/iommu_groups/{g}/type")).ok())
            .map_or_else(|| "?".into(), |t| t.trim().to_string())
    }

    /// The NIC's interrupt numbers (INTx, or MSI/MSI-X as allocated once the interface is
    /// up).
    fn irqs(&self) -> Res<Vec<String>> {
        let dev = PathBuf::from(format!("/sys/bus/pci/devices/{}", self.address));
        let mut irqs: Vec<String> = fs::read_dir(dev.join("msi_irqs"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        if irqs.is_empty() {
            irqs.push(read(dev.join("irq"))?.trim().to_string());
        }
        Ok(irqs)
    }

    /// Pins the NIC's interrupts to CPU 0.
    fn pin_irqs(&self) -> Res<()> {
        for irq in self.irqs()? {
            write(format!("/proc/irq/{irq}/smp_affinity_list"), "0")?;
        }
        Ok(())
    }

    /// Interrupts the NIC raised so far, on all CPUs (from /proc/interrupts).
    fn interrupts(&self) -> Res<u64> {
        let irqs = self.irqs()?;
        let table = read("/proc/interrupts")?;
        let mut total = 0;
        for line in table.lines() {
            let mut words = line.split_whitespace();
            let Some(irq) = words.next().and_then(|w| w.strip_suffix(':')) else {
                continue;
            };
            if irqs.iter().any(|i| i == irq) {
                total += words.map_while(|w| w.parse::<u64>().ok()).sum::<u64>();
            }
        }
        Ok(total)
    }

    fn class(&self, file: &str) -> PathBuf {
        Path::new("/sys/class/net").join(&self.ifname).join(file)
    }

    /// Sets or clears IFF_UP through sysfs (what `ip link set up/down` does).
    fn set_up(&self, up: bool) -> Res<()> {
        let flags = read(self.class("flags"))?;
        let flags = u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16)?;
        let flags = if up { flags | 1 } else { flags & !1 };
        write(self.class("flags"), &format!("{flags:#x}"))
    }

    fn wait_carrier(&self, timeout: Duration) -> Res<()> {
        let t = Instant::now();
        while !read(self.class("carrier")).is_ok_and(|c| c.trim() == "1") {
            if t.elapsed() > timeout {
                return Err(format!("{}: no carrier after {timeout:?}", self.ifname).into());
            }
            sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    fn counter(&self, name: &str) -> Res<u64> {
        Ok(read(self.class(&format!("statistics/{name}")))?
            .trim()
            .parse()?)
    }

    /// Gives the NIC back to vfio-pci (with the library's sysfs binding, kept), after putting
    /// its IOMMU group's type back.
    fn release(self) -> Res<()> {
        if !self.ifname.is_empty() {
            let _ = self.set_up(false);
        }
        if let Some((file, old)) = &self.restore {
            let dev = PathBuf::from(format!("/sys/bus/pci/devices/{}", self.address));
            if dev.join("driver").exists() {
                write(dev.join("driver/unbind"), &self.address.to_string())?;
            }
            write(file, old)?;
        }
        Sysfs::new().bind_vfio_pci(&self.address)?.keep();
        Ok(())
    }
}

/// pktgen's control files take one command per write, and drop the last byte of it (meant to
/// be the newline).
fn pktgen_cmd(file: impl AsRef<Path>, cmd: &str) -> Res<()> {
    write(file, &format!("{cmd}\n"))
}

/// Sets pktgen up on CPU 0 to send `frames` frames of `size` bytes from `a` to `dst`.
fn pktgen_setup(a: &KernelNic, dst: Mac, frames: u64, size: usize, burst: u32) -> Res<()> {
    let thread = Path::new(PKTGEN).join("kpktgend_0");
    pktgen_cmd(&thread, "rem_device_all")?;
    pktgen_cmd(&thread, &format!("add_device {}", a.ifname))?;
    let dev = Path::new(PKTGEN).join(&a.ifname);
    for cmd in [
        format!("count {frames}"),
        format!("pkt_size {size}"),
        "clone_skb 1000000".to_string(),
        format!("burst {burst}"),
        "delay 0".to_string(),
        "dst 10.99.0.2".to_string(),
        format!("dst_mac {dst}"),
    ] {
        pktgen_cmd(&dev, &cmd)?;
    }
    Ok(())
}

/// Runs pktgen as set up (the write to `pgctrl` returns when it is done); returns the rate
/// pktgen reports.
fn pktgen_run(a: &KernelNic) -> Res<f64> {
    pktgen_cmd(Path::new(PKTGEN).join("pgctrl"), "start")?;
    let result = read(Path::new(PKTGEN).join(&a.ifname))?;
    // "Result: OK: 81234(c80000+d1234) usec, 8000 (60byte,0frags)\n  98481pps 47Mb/sec ..."
    if !result.contains("Result: OK") {
        return Err(format!("pktgen: {result}").into());
    }
    let pps = result
        .split_whitespace()
        .find_map(|w| w.strip_suffix("pps").and_then(|n| n.parse::<f64>().ok()))
        .ok_or_else(|| format!("no rate in pktgen's result: {result}"))?;
    Ok(pps)
}

/// CPU time of the calling thread so far.
fn thread_cpu() -> Duration {
    clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map(|t| Duration::new(t.tv_sec() as u64, t.tv_nsec() as u32))
        .unwrap_or_default()
}

/// What the sampler of B's counter saw.
struct RxCount {
    pps: f64,
    received: u64,
    /// The guest's CPU times when the last frame was counted, if that was after the sender
    /// finished or when all had arrived (else the reading after the sender is the one).
    cpu_done: Option<CpuTimes>,
    /// The sampler's own CPU time until the sender finished, and until `cpu_done`: the
    /// measurement's cost, taken off Linux's CPU figures.
    own_at_tx: Duration,
    own_at_rx: Duration,
}

/// Samples B's `rx_packets` every millisecond until `expected` more than `base` arrived, or
/// the sender is done and the counter stood still for 200 ms.
fn count_rx(
    b: &KernelNic,
    base: u64,
    expected: u64,
    sending: &AtomicBool,
) -> Result<RxCount, String> {
    let own0 = thread_cpu();
    let mut first: Option<(Instant, u64)> = None;
    let mut last = (Instant::now(), 0);
    let mut cpu_done = None;
    let mut own_at_tx = None;
    let mut own_at_rx = None;
    loop {
        sleep(Duration::from_millis(1));
        let n = b
            .counter("rx_packets")
            .map_err(|e| e.to_string())?
            .saturating_sub(base);
        let now = Instant::now();
        let sending_now = sending.load(Ordering::Acquire);
        if !sending_now && own_at_tx.is_none() {
            own_at_tx = Some(thread_cpu() - own0);
        }
        if n != last.1 {
            last = (now, n);
            if first.is_none() {
                first = Some((now, n));
            }
            if n >= expected || !sending_now {
                cpu_done = CpuTimes::now();
                own_at_rx = Some(thread_cpu() - own0);
            }
        }
        if n >= expected
            || (!sending_now && now.duration_since(last.0) > Duration::from_millis(200))
        {
            break;
        }
    }
    let (t0, n0) = first.ok_or("B received nothing")?;
    let own_at_tx = own_at_tx.unwrap_or_else(|| thread_cpu() - own0);
    Ok(RxCount {
        pps: Rate::of(last.1 - n0, last.0.duration_since(t0)).0,
        received: last.1,
        cpu_done,
        own_at_tx,
        own_at_rx: own_at_rx.unwrap_or(own_at_tx),
    })
}

/// One Linux setting of the comparison: one bind of the pair.
#[derive(Debug, Clone, Copy)]
pub(super) struct Setting {
    /// The IOMMU default-domain type to switch the groups to (`None`: as the kernel set them).
    pub domain: Option<&'static str>,
    /// `rx-usecs` (`None`: the driver's default, without ethtool).
    pub moderation: Option<u32>,
}

/// Measures Linux's driver on the pair once per burst setting and size, adding to `rows` (one
/// per burst). When the interrupt moderation cannot be set (the e1000 on a kernel command line
/// without `e1000.InterruptThrottleRate`, see `tests/vm/nic-bench.sh`), says so and measures
/// nothing.
pub(super) fn measure(
    addrs: &[PciAddress; 2],
    model: Model,
    macs: [Mac; 2],
    frames: u64,
    setting: Setting,
    ethtool: Option<&Ethtool>,
    rows: &mut [Row],
) -> Res<()> {
    let driver = model.name();
    let _ = write("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1");
    let log_seq = kmsg_last_seq();
    let a = KernelNic::bind(addrs[0], driver, setting.domain)?;
    let b = match KernelNic::bind(addrs[1], driver, setting.domain) {
        Ok(b) => b,
        Err(e) => {
            let _ = a.release();
            return Err(e);
        }
    };
    println!(
        "      Linux: A is {}, B is {}, IOMMU domains {} and {}",
        a.ifname,
        b.ifname,
        a.domain(),
        b.domain()
    );
    let result = (|| -> Res<()> {
        a.set_up(true)?;
        b.set_up(true)?;
        if let Some(e) = ethtool {
            for nic in [&a, &b] {
                let (rx, tx) = e.set_rings(&nic.ifname, RING as u32)?;
                println!("      {}: rings RX {rx}, TX {tx} (ethtool -g)", nic.ifname);
                if (rx, tx) != (RING as u32, RING as u32) {
                    return Err(format!("{}: rings are not {RING}", nic.ifname).into());
                }
            }
        }
        a.pin_irqs()?;
        b.pin_irqs()?;
        a.wait_carrier(Duration::from_secs(10))?;
        b.wait_carrier(Duration::from_secs(10))?;
        if let (Some(usecs), Some(e)) = (setting.moderation, ethtool) {
            for nic in [&a, &b] {
                let now = match e.set_rx_usecs(&nic.ifname, usecs) {
                    Ok(v) => Some(v),
                    // The e1000 on the 82540EM: what the probe got from the command line.
                    Err(_) if model == Model::E1000 => e1000_probe_itr(nic.address, log_seq),
                    Err(err) => return Err(err),
                };
                if now != Some(usecs) {
                    let now = now.map_or_else(|| "unknown".to_string(), |v| v.to_string());
                    println!(
                        "      {}: rx-usecs is {now}, not {usecs}, and {driver} cannot change \
                         it: these rows are skipped (for the e1000, tests/vm/nic-bench.sh sets \
                         it per probe with e1000.InterruptThrottleRate on the kernel command \
                         line)",
                        nic.ifname
                    );
                    return Ok(());
                }
            }
            println!("      rx-usecs {usecs} on both (ethtool -c, or the e1000's probe message)");
        }
        for (row, &burst) in rows.iter_mut().zip(&BURSTS) {
            for (si, &size) in SIZES.iter().enumerate() {
                let s = once(&a, &b, macs[1], frames, size, burst, &row.label)?;
                row.samples[si].push(s);
            }
        }
        Ok(())
    })();
    let _ = pktgen_cmd(Path::new(PKTGEN).join("kpktgend_0"), "rem_device_all");
    let released = (a.release(), b.release());
    result?;
    released.0?;
    released.1
}

/// One measurement: pktgen sends `frames` frames of `size` bytes from `a` to `dst` (B),
/// while another thread samples B's counter.
fn once(
    a: &KernelNic,
    b: &KernelNic,
    dst: Mac,
    frames: u64,
    size: usize,
    burst: u32,
    label: &str,
) -> Res<Sample> {
    pktgen_setup(a, dst, frames, size, burst)?;
    let tx_before = a.counter("tx_packets")?;
    let rx_before = b.counter("rx_packets")?;
    let irqs_before = a.interrupts()? + b.interrupts()?;
    let sending = AtomicBool::new(true);
    let (tx, cpu, rx) = std::thread::scope(|s| {
        let rx = s.spawn(|| count_rx(b, rx_before, frames, &sending));
        let cpu0 = CpuTimes::now();
        let tx = pktgen_run(a);
        let cpu_tx = CpuTimes::now();
        sending.store(false, Ordering::Release);
        (tx, (cpu0, cpu_tx), rx.join())
    });
    let tx_pps = tx?;
    let rx = rx.map_err(|_| "the sampling thread panicked")??;
    let tx_sent = a.counter("tx_packets")? - tx_before;
    let irqs = a.interrupts()? + b.interrupts()? - irqs_before;
    let (tx_cpu_ns, rx_cpu_ns) = match cpu {
        (Some(t0), Some(t_tx)) => {
            let t_rx = rx.cpu_done.unwrap_or(t_tx);
            let tx_cpu = t_tx.busy_since(&t0).saturating_sub(rx.own_at_tx);
            let rx_cpu = t_rx.busy_since(&t0).saturating_sub(rx.own_at_rx);
            (
                ns_per_packet(tx_cpu, frames),
                ns_per_packet(rx_cpu, rx.received),
            )
        }
        _ => (0.0, 0.0),
    };
    let s = Sample {
        tx_pps,
        rx_pps: rx.pps,
        tx_cpu_ns,
        rx_cpu_ns,
        lost: frames.saturating_sub(rx.received),
        ..Sample::default()
    };
    println!(
        "      {label:<38} {size:>4} B: TX {:>10}  RX {:>10}  lost {}  CPU/packet TX {:.0} ns RX {:.0} ns  ({:.0} interrupts per 1000 frames){}",
        Rate(s.tx_pps).to_string(),
        Rate(s.rx_pps).to_string(),
        s.lost,
        s.tx_cpu_ns,
        s.rx_cpu_ns,
        irqs as f64 * 1000.0 / frames as f64,
        if tx_sent < frames {
            format!(" ({} counted only {tx_sent} sent)", a.ifname)
        } else {
            String::new()
        }
    );
    Ok(s)
}
