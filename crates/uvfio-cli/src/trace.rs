//! `--trace`: the library's records of its kernel calls (the `uvfio` crate's `trace`
//! feature), one line each on stderr.

use std::io::Write;
use std::time::Instant;

/// Writes every record at or above the level `log::max_level` allows to stderr, with the
/// seconds since it was installed.
struct Stderr {
    start: Instant,
}

impl log::Log for Stderr {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            let t = self.start.elapsed().as_secs_f64();
            // One write per line, so lines from several threads do not interleave; a closed
            // stderr loses the record, which is all a trace can do.
            let line = format!("uvfio: {t:10.6} {:5} {}\n", record.level(), record.args());
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        }
    }

    fn flush(&self) {}
}

/// Installs the stderr logger for `count` `--trace` flags: none, nothing; one, the set-up calls
/// (opens, mmaps, eventfds, sysfs writes: `debug`); two or more, every ioctl and region access
/// too (`trace`).
pub fn init(count: u8) {
    let level = match count {
        0 => return,
        1 => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    };
    let logger = Box::new(Stderr {
        start: Instant::now(),
    });
    if log::set_boxed_logger(logger).is_ok() {
        log::set_max_level(level);
    }
}
