//! Reading a PDF in a child process under kernel limits.
//!
//! In-process, [`super::load`] refuses encrypted files and files with
//! object or cross-reference streams, because lopdf's work on them cannot
//! be bounded from outside (see there). Those are a third of the TRAIN
//! phishing's PDFs, and most PDFs modern writers produce. The daemon
//! therefore reads every PDF in a child: the same executable, started as
//! `postern pdf-worker IMAGES`, the file on stdin, the result as JSON on
//! stdout. The child lowers its own address space, CPU time, file size
//! and open files before it reads a byte, so a file that makes lopdf
//! allocate or loop without end ends the child (the kernel's limit), never
//! the daemon; the parent kills it after [`WALL`] too. A seccomp filter
//! ([`super::sandbox`]) then takes away the network, other programs, the
//! file system and other processes, so a parser bug cannot reach them.
//! Whatever goes wrong is reported as the file's limit
//! (`PDF_LIMIT_EXCEEDED`), not trusted.

use super::PdfScan;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Condvar, Mutex, mpsc};
use std::time::{Duration, Instant};

/// The hidden subcommand the child runs.
pub const WORKER_ARG: &str = "pdf-worker";
/// Address space of the child: lopdf keeps 120 bytes a value, and the
/// in-process budget of 400k values is about 48 MB; this leaves room for
/// decrypting and unpacking while a bomb still ends within a second.
const MEMORY_LIMIT: u64 = 1 << 30;
/// CPU seconds of the child (the in-process load stops at 3 s of wall time).
const CPU_SECONDS: u64 = 3;
/// Wall time the parent waits before it kills the child.
pub const WALL: Duration = Duration::from_secs(6);
/// Largest answer read from the child: 200 links of a few KiB at most.
const MAX_REPLY: u64 = 4 << 20;

/// The child's side: limits itself, reads the file from stdin, writes the
/// result to stdout. An error here is the parent's to report.
pub fn serve(images_left: usize) -> Result<(), String> {
    // The kernel's out-of-memory killer picks this process before the
    // daemon (raising one's own score needs no privilege). Best effort: a
    // /proc that refuses it changes nothing else.
    let _ = std::fs::write("/proc/self/oom_score_adj", "1000");
    limit_self().map_err(|e| format!("setting the PDF worker's limits: {e}"))?;
    // Fail closed: a worker that cannot confine itself reads nothing, and
    // the daemon's start-up probe falls back to the in-process reader.
    #[cfg(target_os = "linux")]
    super::sandbox::confine(&super::sandbox::program()?)?;
    let mut data = Vec::new();
    std::io::stdin()
        .take(super::MAX_PDF_BYTES as u64 + 1)
        .read_to_end(&mut data)
        .map_err(|e| format!("reading the PDF from stdin: {e}"))?;
    let scan = super::scan_isolated(&data, images_left);
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, &scan).map_err(|e| format!("writing the result: {e}"))?;
    out.flush().map_err(|e| format!("writing the result: {e}"))
}

fn limit_self() -> nix::Result<()> {
    use nix::sys::resource::{Resource, setrlimit};
    setrlimit(Resource::RLIMIT_AS, MEMORY_LIMIT, MEMORY_LIMIT)?;
    // The soft limit sends SIGXCPU, the hard one a second later SIGKILL.
    setrlimit(Resource::RLIMIT_CPU, CPU_SECONDS, CPU_SECONDS + 1)?;
    setrlimit(Resource::RLIMIT_FSIZE, 0, 0)?;
    setrlimit(Resource::RLIMIT_CORE, 0, 0)?;
    setrlimit(Resource::RLIMIT_NOFILE, 16, 16)
}

/// Workers at once: each may hold [`MEMORY_LIMIT`], so a burst of hostile
/// files costs at most this many gigabytes, however many messages arrive.
const MAX_WORKERS: usize = 2;
static RUNNING: Mutex<usize> = Mutex::new(0);
static FREED: Condvar = Condvar::new();

/// Reads `data` in a child started from `exe` (the daemon passes
/// `/proc/self/exe`: the running binary, even after an upgrade replaced the
/// file), waiting for a free worker slot and for the child together at
/// most `wall` ([`WALL`] at most). Never fails: a child that cannot start,
/// dies or overruns is the file's limit.
pub fn scan_in_child(exe: &Path, data: &[u8], images_left: usize, wall: Duration) -> PdfScan {
    if data.len() > super::MAX_PDF_BYTES {
        // Refused by size before anything runs.
        return super::scan(data, images_left);
    }
    let wall = wall.min(WALL);
    let mut scan = run(exe, data, images_left, wall).unwrap_or_else(|why| PdfScan {
        limit: Some(why),
        ..PdfScan::default()
    });
    // The child is trusted with nothing, not even its own bounds.
    scan.images_scanned = scan.images_scanned.min(images_left);
    scan.links.truncate(super::MAX_LINKS);
    scan.qr_texts.truncate(MAX_QR_TEXTS);
    scan
}

/// QR texts taken from one file.
const MAX_QR_TEXTS: usize = 16;

/// Checks that `exe` runs as a worker here (a container's seccomp profile,
/// a missing /proc or an emulator can stop it), so the daemon can fall
/// back to the in-process reader and say so rather than lose every PDF.
pub fn probe(exe: &Path) -> Result<(), String> {
    run(exe, b"%PDF-1.4\n%%EOF\n", 0, WALL).map(|_| ())
}

/// A worker slot, given back on drop.
struct Slot;

impl Slot {
    fn take(deadline: Instant) -> Option<Slot> {
        let running = RUNNING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let wait = deadline.saturating_duration_since(Instant::now());
        let (mut running, _) = FREED
            .wait_timeout_while(running, wait, |n| *n >= MAX_WORKERS)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if *running >= MAX_WORKERS {
            return None;
        }
        *running += 1;
        Some(Slot)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut running = RUNNING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *running = running.saturating_sub(1);
        FREED.notify_one();
    }
}

/// Kills the child's whole process group when dropped, whatever path
/// leaves [`run`]; the waiter thread then reaps it.
struct Group(Pid);

impl Drop for Group {
    fn drop(&mut self) {
        // ESRCH: it had ended already.
        let _ = killpg(self.0, Signal::SIGKILL);
    }
}

fn run(exe: &Path, data: &[u8], images_left: usize, wall: Duration) -> Result<PdfScan, String> {
    let deadline = Instant::now() + wall;
    let Some(_slot) = Slot::take(deadline) else {
        return Err(format!("no PDF worker free within the message's time ({MAX_WORKERS} busy)"));
    };
    let mut child = Command::new(exe)
        .arg(WORKER_ARG)
        .arg(images_left.to_string())
        .env_clear()
        .current_dir("/")
        // Its own group, so a kill reaches anything it started.
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("the PDF reader process could not start: {e}"))?;
    let pid = i32::try_from(child.id()).map_err(|_| "the PDF reader process has no usable id".to_string())?;
    let _group = Group(Pid::from_raw(pid));
    // Pipes and the exit status are served by threads of their own and
    // reach this one through channels, so every wait below has the
    // deadline; a thread left behind ends when the group is killed.
    let (out_tx, out_rx) = mpsc::channel();
    let (exit_tx, exit_rx) = mpsc::channel();
    let (stdout, stdin) = (child.stdout.take(), child.stdin.take());
    spawn(move || {
        let mut out = Vec::new();
        if let Some(s) = stdout {
            // A read error leaves a short answer, refused as not JSON below.
            let _ = s.take(MAX_REPLY).read_to_end(&mut out);
        }
        let _ = out_tx.send(out);
    })?;
    let input = data.to_vec();
    spawn(move || {
        if let Some(mut s) = stdin {
            // A child that died early closes the pipe; its exit status says why.
            let _ = s.write_all(&input);
        }
    })?;
    spawn(move || {
        let _ = exit_tx.send(child.wait());
    })?;
    let overrun = || format!("PDF reading stopped after {:.1} s", wall.as_secs_f64());
    let left = || deadline.saturating_duration_since(Instant::now());
    let out = out_rx.recv_timeout(left()).map_err(|_| overrun())?;
    let status = exit_rx
        .recv_timeout(left())
        .map_err(|_| overrun())?
        .map_err(|e| format!("waiting for the PDF reader process: {e}"))?;
    if !status.success() {
        return Err(ended(status));
    }
    serde_json::from_slice(&out).map_err(|e| format!("the PDF reader's answer was not understood: {e}"))
}

fn spawn(f: impl FnOnce() + Send + 'static) -> Result<(), String> {
    std::thread::Builder::new()
        .name("pdf-worker-io".into())
        .spawn(f)
        .map(|_| ())
        .map_err(|e| format!("no thread for the PDF reader process: {e}"))
}

fn ended(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status.signal() {
        Some(nix::libc::SIGXCPU) => format!("PDF reading stopped at its CPU limit ({CPU_SECONDS} s)"),
        Some(nix::libc::SIGKILL) => "the PDF reader process was killed (its CPU limit, or the kernel short of memory)".into(),
        // Rust aborts when an allocation fails: the address-space limit.
        Some(nix::libc::SIGABRT) => format!("PDF reading stopped at its memory limit ({} MiB)", MEMORY_LIMIT >> 20),
        Some(sig) => format!("the PDF reader process crashed (signal {sig})"),
        None => format!("the PDF reader process failed ({status})"),
    }
}
