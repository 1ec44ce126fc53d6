//! One operation swept: run with `fail-nth` = 1, 2, … until it runs without an injected
//! fault, checking at every N what the library promises.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::inject::{kernel_log, kernel_problems, FailNth, Footprint};

/// More fault points than any operation has here: a sweep that reaches it is reported as
/// unfinished (the operation kept failing), never as passed.
const MAX_POINTS: u32 = 2000;

/// What the sweep of one operation found.
#[derive(Debug, Default)]
pub struct Report {
    /// The operation.
    pub name: String,
    /// Fault points found: the N at which a fault was injected.
    pub points: u32,
    /// How often each errno was returned, and one message for each.
    pub errnos: BTreeMap<String, (u32, String)>,
    /// Faults injected that the operation absorbed (it succeeded anyway: the kernel retried
    /// or fell back, or the library did).
    pub absorbed: u32,
    /// Footprint differences: something not given back.
    pub leaks: Vec<String>,
    /// Panics caught.
    pub panics: u32,
    /// Errors whose message does not name an operation (an empty `op`).
    pub unnamed: Vec<String>,
    /// Kernel log lines reporting a problem during the sweep.
    pub warnings: Vec<String>,
    /// Problems of the kernel's own fault paths, outside VFIO's reach from userspace
    /// ([`KNOWN_KERNEL_BUGS`]): named, counted apart.
    pub known_bugs: Vec<String>,
    /// Why the operation did not succeed once the faults were past, if it did not.
    pub unfinished: Option<String>,
}

impl Report {
    /// Whether the sweep found nothing wrong.
    pub fn clean(&self) -> bool {
        self.leaks.is_empty()
            && self.panics == 0
            && self.unnamed.is_empty()
            && self.warnings.is_empty()
            && self.unfinished.is_none()
    }
}

/// Sweeps `op`: before each run the footprint is taken with `probe`, then fault N is armed,
/// the operation runs (everything it creates dropped inside it), the knob is disarmed and the
/// footprint compared. The sweep ends at the first N the operation does not reach: that run
/// must succeed.
pub fn sweep(
    name: &str,
    fail: &FailNth,
    probe: &dyn Fn() -> Footprint,
    op: &mut dyn FnMut() -> uvfio::Result<()>,
) -> Report {
    let mut report = Report {
        name: name.to_owned(),
        ..Report::default()
    };
    let log_from = kernel_log().len();
    // UVFIO_FAULTS_VERBOSE=1: every run's result, to find where a leak comes from.
    let verbose = std::env::var_os("UVFIO_FAULTS_VERBOSE").is_some();
    for n in 1..=MAX_POINTS + 1 {
        if n > MAX_POINTS {
            report.unfinished = Some(format!("still failing after {MAX_POINTS} fault points"));
            break;
        }
        let before = probe();
        fail.arm(n);
        let result = catch_unwind(AssertUnwindSafe(&mut *op));
        let injected = fail.disarm();
        let after = probe();
        if before != after {
            let what = match &result {
                Ok(Ok(())) => "succeeded".to_owned(),
                Ok(Err(e)) => format!("failed: {e}"),
                Err(_) => "panicked".to_owned(),
            };
            report
                .leaks
                .push(format!("N={n} ({what}): {before:?} -> {after:?}"));
        }
        if verbose {
            let what = match &result {
                Ok(Ok(())) => "ok".to_owned(),
                Ok(Err(e)) => e.to_string(),
                Err(_) => "panic".to_owned(),
            };
            println!("  {name} N={n} injected={injected}: {what}");
        }
        match &result {
            Err(_) => report.panics += 1,
            Ok(Err(e)) => {
                let msg = e.to_string();
                let entry = report
                    .errnos
                    .entry(format!("{:?}", e.errno()))
                    .or_insert((0, msg.clone()));
                entry.0 += 1;
                if msg.trim().is_empty() || msg.starts_with(':') {
                    report.unnamed.push(msg);
                }
            }
            Ok(Ok(())) if injected => report.absorbed += 1,
            Ok(Ok(())) => {}
        }
        if !injected {
            if let Ok(Err(e)) = result {
                report.unfinished = Some(format!("fails without an injected fault: {e}"));
            } else if result.is_err() {
                report.unfinished = Some("panics without an injected fault".into());
            }
            break;
        }
        report.points += 1;
    }
    for problem in kernel_problems(&kernel_log(), log_from) {
        match KNOWN_KERNEL_BUGS
            .iter()
            .find(|(sign, _)| problem.contains(sign))
        {
            Some((_, what)) => report.known_bugs.push((*what).to_owned()),
            None => report.warnings.push(problem),
        }
    }
    report
}

/// Warnings of Linux 6.12's own error paths that the sweep reaches and no caller of the
/// kernel's API can avoid: (a sign in the warning and its call trace, what it is). Each is a
/// bug of the kernel's failure handling, found by this sweep; anything else in the log fails
/// the sweep.
pub const KNOWN_KERNEL_BUGS: &[(&str, &str)] = &[
    (
        "drivers/vfio/group.c:538 vfio_group_release",
        "vfio_create_group: when cdev_device_add fails, put_device releases the group with \
         iommu_group still set: WARN_ON(group->iommu_group) (drivers/vfio/group.c, reached by \
         creating an mdev)",
    ),
    (
        "remove_proc_entry+0x117/0x170 | unregister_irq_proc",
        "genirq: when register_irq_proc could not create /proc/irq/N, freeing the IRQ \
         warns that the entry is missing (fs/proc/generic.c remove_proc_entry, reached by \
         VFIO_DEVICE_SET_IRQS disabling MSI)",
    ),
];
