//! Peak resident set size of this process, read from `/proc/self/status` (`VmHWM`).
//!
//! This is not a memory profiler: it is one number, the high-water mark since start.

use std::path::Path;

use crate::error::{BenchError, Result};

/// Peak RSS in KiB (`VmHWM`), or `None` on systems without the field.
///
/// # Errors
/// [`BenchError::Io`] if `/proc/self/status` exists but cannot be read.
pub fn peak_rss_kib() -> Result<Option<u64>> {
    let path = Path::new("/proc/self/status");
    if !path.exists() {
        return Ok(None);
    }
    let status = std::fs::read_to_string(path).map_err(|e| BenchError::io(path, e))?;
    Ok(parse_vm_hwm(&status))
}

/// Extracts `VmHWM` in KiB from the text of a `/proc/<pid>/status` file.
pub fn parse_vm_hwm(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_vm_hwm_line() {
        let status = "Name:\tdbbench\nVmPeak:\t  100 kB\nVmHWM:\t   18688 kB\nVmRSS:\t 1 kB\n";
        assert_eq!(parse_vm_hwm(status), Some(18_688));
        assert_eq!(parse_vm_hwm("Name:\tx\n"), None);
    }

    #[test]
    fn this_process_has_a_peak_rss_on_linux() {
        if cfg!(target_os = "linux") {
            let kib = peak_rss_kib().unwrap().unwrap();
            assert!(kib > 0);
        }
    }
}
