//! Timing, child processes, page-cache eviction and /proc readings.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub type Res<T> = Result<T, String>;

pub fn err<E: std::fmt::Display>(context: &str) -> impl FnOnce(E) -> String + '_ {
    move |error| format!("{context}: {error}")
}

pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let middle = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[middle]
    } else {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    }
}

/// What a piped child process did.
pub struct Piped {
    pub wall: Duration,
    pub stdout: Vec<u8>,
    pub status: ExitStatus,
}

/// Runs `command` with `input` on stdin (written by a thread, so a child
/// that answers while it reads never deadlocks), collects stdout, and
/// times everything from spawn to exit: startup and shutdown included.
pub fn run_piped(mut command: Command, input: Vec<u8>, stderr_file: &Path) -> Res<Piped> {
    let stderr = std::fs::File::create(stderr_file).map_err(err("create stderr file"))?;
    command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::from(stderr));
    let started = Instant::now();
    let mut child = command.spawn().map_err(err("spawn"))?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
        drop(stdin);
    });
    let mut stdout = Vec::new();
    child.stdout.take().ok_or("no stdout")?.read_to_end(&mut stdout).map_err(err("read stdout"))?;
    let status = child.wait().map_err(err("wait"))?;
    let wall = started.elapsed();
    let _ = writer.join();
    Ok(Piped { wall, stdout, status })
}

pub fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack.windows(needle.len()).filter(|window| *window == needle).count()
}

/// Drops every file under `folder` from the page cache (posix_fadvise
/// DONTNEED on clean pages), so the next boot reads from the disk. Only
/// this benchmark's own files are touched.
pub fn evict_from_page_cache(folder: &Path) -> Res<()> {
    use std::os::fd::AsRawFd;
    for entry in std::fs::read_dir(folder).map_err(err("list"))? {
        let entry = entry.map_err(err("list"))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(err("stat"))?;
        if kind.is_dir() {
            evict_from_page_cache(&path)?;
        } else if kind.is_file() {
            let file = std::fs::File::open(&path).map_err(err("open"))?;
            // SAFETY: a plain syscall on an open descriptor.
            unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        }
    }
    Ok(())
}

/// `VmHWM`, `VmRSS`, `RssAnon`, `RssFile` of this process, in KiB.
pub fn proc_status_kib() -> serde_json::Value {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let mut object = serde_json::Map::new();
    for line in text.lines() {
        for key in ["VmHWM", "VmRSS", "RssAnon", "RssFile"] {
            if let Some(rest) = line.strip_prefix(key).and_then(|rest| rest.strip_prefix(':')) {
                let kib: u64 = rest.trim().trim_end_matches("kB").trim().parse().unwrap_or(0);
                object.insert(key.to_string(), kib.into());
            }
        }
    }
    serde_json::Value::Object(object)
}

pub fn have_program(name: &str) -> bool {
    Command::new("sh").arg("-c").arg(format!("command -v {name} >/dev/null 2>&1")).status().map(|status| status.success()).unwrap_or(false)
}

pub fn fmt_rate(value: f64) -> String {
    if !value.is_finite() {
        return "n/a".into();
    }
    if value >= 100.0 {
        format!("{:.0}", value)
    } else {
        format!("{:.1}", value)
    }
}

pub fn fmt_ratio(value: f64) -> String {
    if value.is_finite() {
        format!("{value:.2}×")
    } else {
        "n/a".into()
    }
}
