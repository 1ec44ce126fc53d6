//! The Linux half of `--bench`: the controller on the kernel's `nvme` driver, measured by
//! `fio`; and the process facts both halves report (CPU time, clock source).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use uvfio::pci::sysfs::Sysfs;
use uvfio::pci::PciAddress;

use crate::bench::{Cell, Sample, IO_BYTES};
use crate::Res;

/// How long the kernel driver may take to probe the controller and scan its namespaces
/// (under TCG, a controller reset and a few admin commands take a while).
const PROBE_TIMEOUT: Duration = Duration::from_secs(60);

/// One way of driving the block device from fio.
pub struct Engine {
    /// The row label in the table.
    pub label: &'static str,
    ioengine: &'static str,
    /// io_uring's `hipri`: polled completions, on the driver's poll queues.
    hipri: bool,
    /// The IOMMU domain type of the controller's group while Linux drives it: `None` as the
    /// kernel set it up (DMA translation, every I/O mapped and unmapped), `Some("identity")`
    /// for passthrough (no IOMMU work per I/O, the fairer match for a driver that maps its
    /// buffers once).
    pub domain: Option<&'static str>,
}

/// The engines to run: io_uring and libaio (interrupts), io_uring with `hipri` when the
/// driver has poll queues, and io_uring again with the IOMMU in passthrough.
pub fn engines(poll_queues: u32) -> Vec<Engine> {
    let mut engines = vec![
        Engine {
            label: "Linux io_uring, IRQ",
            ioengine: "io_uring",
            hipri: false,
            domain: None,
        },
        Engine {
            label: "Linux libaio, IRQ",
            ioengine: "libaio",
            hipri: false,
            domain: None,
        },
    ];
    if poll_queues > 0 {
        engines.push(Engine {
            label: "Linux io_uring hipri, polled",
            ioengine: "io_uring",
            hipri: true,
            domain: None,
        });
    }
    engines.push(Engine {
        label: "Linux io_uring, IRQ, IOMMU passthrough",
        ioengine: "io_uring",
        hipri: false,
        domain: Some("identity"),
    });
    engines
}

/// User + system CPU time of this process so far.
pub fn cpu_time() -> Duration {
    use nix::sys::resource::{getrusage, UsageWho};
    getrusage(UsageWho::RUSAGE_SELF).map_or(Duration::ZERO, |u| {
        let tv = |t: nix::sys::time::TimeVal| {
            Duration::new(t.tv_sec().max(0) as u64, t.tv_usec().max(0) as u32 * 1000)
        };
        tv(u.user_time()) + tv(u.system_time())
    })
}

/// The kernel's clock source (what a timestamp costs depends on it).
pub fn clocksource() -> String {
    read("/sys/devices/system/clocksource/clocksource0/current_clocksource")
        .map_or_else(|_| "unknown".into(), |s| s.trim().to_string())
}

/// The nvme driver's `poll_queues` parameter (0 when unknown).
pub fn poll_queues() -> u32 {
    read("/sys/module/nvme/parameters/poll_queues")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// fio's version line.
pub fn version(fio: &Path) -> String {
    Command::new(fio).arg("--version").output().map_or_else(
        |e| format!("no version: {e}"),
        |o| String::from_utf8_lossy(&o.stdout).trim().to_string(),
    )
}

/// Whether the Linux half can run: returns fio's path, or why not.
pub fn available() -> Result<PathBuf, String> {
    let hint = "run tests/vm/nvme-bench.sh (full flavour, host drivers on, fio shipped)";
    if !Path::new("/sys/bus/pci/drivers/nvme").exists() {
        return Err(format!("the kernel's nvme driver is not there ({hint})"));
    }
    let dirs = std::env::var("PATH").unwrap_or_default();
    std::iter::once("/test")
        .chain(dirs.split(':'))
        .map(|d| Path::new(d).join("fio"))
        .find(|p| p.is_file())
        .ok_or(format!("no fio in /test or $PATH ({hint})"))
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

/// The controller on the kernel's nvme driver, with its first namespace's block device.
pub struct Kernel {
    address: PciAddress,
    /// `/dev/nvmeXnY`.
    disk: PathBuf,
    /// The group's type file and the type to put back.
    restore: Option<(PathBuf, String)>,
}

impl Kernel {
    /// Moves the controller from vfio-pci to the nvme driver and waits for its first
    /// namespace's block device. With `domain` (`"identity"`), the controller's IOMMU group
    /// is switched to that default-domain type while no driver holds it, and switched back
    /// by [`Kernel::release`].
    pub fn bind(address: PciAddress, domain: Option<&str>) -> Res<Kernel> {
        let dev = PathBuf::from(format!("/sys/bus/pci/devices/{address}"));
        write(dev.join("driver_override"), "\n")?;
        if dev.join("driver").exists() {
            write(dev.join("driver/unbind"), &address.to_string())?;
        }
        let mut restore = None;
        if let Some(domain) = domain {
            let group = Sysfs::new().iommu_group(&address)?;
            let type_file = PathBuf::from(format!("/sys/kernel/iommu_groups/{group}/type"));
            let old = read(&type_file)?.trim().to_string();
            write(&type_file, domain)?;
            restore = Some((type_file, old));
        }
        write("/sys/bus/pci/drivers_probe", &address.to_string())?;
        let mut kernel = Kernel {
            address,
            disk: PathBuf::new(),
            restore,
        };
        match kernel.wait_disk(&dev) {
            Ok(disk) => {
                kernel.disk = disk;
                Ok(kernel)
            }
            Err(e) => {
                let _ = kernel.release();
                Err(e)
            }
        }
    }

    fn wait_disk(&self, dev: &Path) -> Res<PathBuf> {
        let bound = fs::read_link(dev.join("driver")).ok();
        if bound.as_ref().and_then(|p| p.file_name()) != Some("nvme".as_ref()) {
            return Err(format!("{}: the nvme driver did not take it", self.address).into());
        }
        let t = Instant::now();
        loop {
            // /sys/bus/pci/devices/<address>/nvme/nvme0/nvme0n1
            let disk = fs::read_dir(dev.join("nvme"))
                .into_iter()
                .flatten()
                .filter_map(|c| c.ok())
                .flat_map(|c| fs::read_dir(c.path()).into_iter().flatten())
                .filter_map(|n| n.ok())
                .map(|n| n.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("nvme") && n[4..].contains('n'))
                .min();
            if let Some(name) = disk {
                let node = Path::new("/dev").join(&name);
                if node.exists() {
                    return Ok(node);
                }
            }
            if t.elapsed() > PROBE_TIMEOUT {
                return Err(format!(
                    "{}: no namespace block device after {PROBE_TIMEOUT:?}",
                    self.address
                )
                .into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Gives the controller back to vfio-pci (with the library's sysfs binding, kept).
    pub fn release(self) -> Res<()> {
        let dev = PathBuf::from(format!("/sys/bus/pci/devices/{}", self.address));
        if dev.join("driver").exists() {
            write(dev.join("driver/unbind"), &self.address.to_string())?;
        }
        if let Some((file, old)) = &self.restore {
            write(file, old)?;
        }
        Sysfs::new().bind_vfio_pci(&self.address)?.keep();
        Ok(())
    }

    /// Runs every cell with `engine` in one fio process (one job section per cell, each a
    /// group of its own, one after the other), `seconds` each; returns a sample per cell.
    pub fn run(
        &self,
        fio: &Path,
        engine: &Engine,
        cells: &[Cell],
        seconds: f64,
        span: u64,
    ) -> Res<Vec<Sample>> {
        let mut job = format!(
            "[global]\nfilename={}\ndirect=1\nbs={IO_BYTES}\nioengine={}\nsize={span}\n\
             time_based=1\nruntime={}ms\nnorandommap=1\nrandrepeat=0\nthread=1\n\
             group_reporting=1\nlat_percentiles=1\nclat_percentiles=0\n\
             percentile_list=50:99:99.9\n",
            self.disk.display(),
            engine.ioengine,
            (seconds * 1000.0).round() as u64
        );
        if engine.hipri {
            job.push_str("hipri=1\n");
        }
        for (i, c) in cells.iter().enumerate() {
            job.push_str(&format!(
                "[c{i}]\nrw={}\niodepth={}\nnumjobs={}\nstonewall\nnew_group\n",
                c.rw.fio_name(),
                c.qd,
                c.queues
            ));
        }
        let file = std::env::temp_dir().join("nvme-bench.fio");
        write(&file, &job)?;
        let out = Command::new(fio)
            .arg("--output-format=json")
            .arg(&file)
            .output()
            .map_err(|e| format!("running {}: {e}", fio.display()))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(format!(
                "fio ({}) failed ({}): {}",
                engine.label,
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )
            .into());
        }
        parse(&stdout, cells).map_err(|e| format!("fio ({}): {e}", engine.label).into())
    }
}

/// The samples of fio's JSON report, one group per cell in order. fio may print warnings
/// before the JSON: it starts at the first `{`.
fn parse(report: &str, cells: &[Cell]) -> Result<Vec<Sample>, String> {
    let start = report.find('{').ok_or("no JSON in its output")?;
    let json: serde_json::Value =
        serde_json::from_str(&report[start..]).map_err(|e| format!("its JSON: {e}"))?;
    let jobs = json["jobs"].as_array().ok_or("no \"jobs\" in its JSON")?;
    if jobs.len() != cells.len() {
        return Err(format!(
            "{} groups reported for {} cells",
            jobs.len(),
            cells.len()
        ));
    }
    jobs.iter()
        .zip(cells)
        .map(|(job, cell)| {
            let num = |v: &serde_json::Value, what: &str| {
                v.as_f64()
                    .ok_or(format!("cell {}: no number at {what}", cell.rw.fio_name()))
            };
            let error = num(&job["error"], "error")?;
            if error != 0.0 {
                return Err(format!("job {} failed with error {error}", job["jobname"]));
            }
            let stats = &job[cell.rw.fio_section()];
            let ios = num(&stats["total_ios"], "total_ios")?;
            let pct = &stats["lat_ns"]["percentile"];
            let runtime_ms = num(&job["job_runtime"], "job_runtime")?;
            let cpu_pct = num(&job["usr_cpu"], "usr_cpu")? + num(&job["sys_cpu"], "sys_cpu")?;
            if ios == 0.0 {
                return Err(format!("job {}: no I/O done", job["jobname"]));
            }
            Ok(Sample {
                iops: num(&stats["iops"], "iops")?,
                p50: num(&pct["50.000000"], "percentile 50")?,
                p99: num(&pct["99.000000"], "percentile 99")?,
                p999: num(&pct["99.900000"], "percentile 99.9")?,
                // usr_cpu and sys_cpu are percentages of job_runtime (summed over the jobs
                // of the group).
                cpu: cpu_pct / 100.0 * runtime_ms * 1e6 / ios,
            })
        })
        .collect()
}
