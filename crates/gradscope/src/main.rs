//! The `gradscope` binary: parse the command line, run, map the result to an exit code.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};

use clap::Parser;
use gradscope::cli::{self, Cli, ExitStatus};

/// Small blocks from mimalloc, large ones from glibc ([`gradscope::alloc`]).
#[global_allocator]
static ALLOCATOR: gradscope::alloc::SizeRouted = gradscope::alloc::SizeRouted;

/// Keep Mesa's "error: XDG_RUNTIME_DIR is invalid or not set in the environment." off the
/// user's stderr. libwayland prints it when asked to connect (drivers probe for a display)
/// while neither `XDG_RUNTIME_DIR` nor `WAYLAND_DISPLAY` is an absolute path; in that case no
/// Wayland connection can succeed anyway, and an absolute `WAYLAND_DISPLAY` that does not
/// exist makes the probe fail silently instead. Nothing changes where Wayland can work.
#[allow(unsafe_code)]
fn quiet_wayland_probe() {
    let absolute =
        |var: &str| std::env::var_os(var).is_some_and(|v| v.to_string_lossy().starts_with('/'));
    if !absolute("XDG_RUNTIME_DIR") && !absolute("WAYLAND_DISPLAY") {
        // SAFETY: called first thing in `main`, before any other thread exists, so no other
        // code can be reading the environment concurrently.
        unsafe { std::env::set_var("WAYLAND_DISPLAY", "/nonexistent/gradscope-no-wayland") };
    }
}

/// Apply [`cli::malloc_settings`] (glibc on Linux only; elsewhere the allocator is left as it
/// is).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn tune_malloc() {
    if let Some((mmap, trim)) =
        cli::malloc_settings(std::env::var("GLIBC_TUNABLES").ok().as_deref())
    {
        // SAFETY: mallopt only changes allocator parameters; it is called first thing in
        // `main`, before any other thread exists. A refused setting (return 0) leaves glibc's
        // default in place, which is correct, only slower.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, mmap);
            libc::mallopt(libc::M_TRIM_THRESHOLD, trim);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_malloc() {}

/// Standard output that remembers whether its reader went away (a write failed with EPIPE, as
/// in `gradscope run ... | head`). The command then stops at that write, and gradscope exits 0
/// without a message, as ripgrep does: the reader has all it asked for.
struct PipeAware<W> {
    inner: W,
    closed: bool,
}

impl<W: std::io::Write> PipeAware<W> {
    fn note(&mut self, e: std::io::Error) -> std::io::Error {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            self.closed = true;
        }
        e
    }
}

impl<W: std::io::Write> std::io::Write for PipeAware<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner.write(buf).map_err(|e| self.note(e))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush().map_err(|e| self.note(e))
    }
}

fn main() {
    tune_malloc();
    quiet_wayland_probe();
    // The main thread is one of the pool's workers: burn-ndarray wraps every matmul in
    // `rayon::scope`, which from a thread outside the pool hands the job to a worker and
    // sleeps on a latch (a futex wake and wait per op, about 60 % of an ndarray training
    // step's samples before this; benchmarks/README.md, "The main thread in rayon's pool").
    let mut pool = rayon::ThreadPoolBuilder::new().use_current_thread();
    if let Some(n) = cli::pool_threads(
        std::env::var("RAYON_NUM_THREADS").ok().as_deref(),
        std::env::var("SLURM_CPUS_PER_TASK").ok().as_deref(),
    ) {
        pool = pool.num_threads(n);
    }
    // Fails only if a pool exists already, which it cannot this early.
    let _ = pool.build_global();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            let status = if e.use_stderr() {
                ExitStatus::BadInput
            } else {
                ExitStatus::Ok
            };
            std::process::exit(status.code());
        }
    };
    // A panic is a bug: report it in one line and exit 1, without a backtrace.
    let panic_message = Arc::new(Mutex::new(None::<String>));
    let sink = Arc::clone(&panic_message);
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| info.payload().downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        if let Ok(mut slot) = sink.lock() {
            slot.get_or_insert(format!("{msg}{at}"));
        }
    }));
    let stderr = std::io::stderr();
    let mut out = PipeAware {
        inner: std::io::stdout().lock(),
        closed: false,
    };
    let status = catch_unwind(AssertUnwindSafe(|| {
        cli::run(cli, &mut out, &mut stderr.lock())
    }))
    .unwrap_or_else(|_| {
        let msg = panic_message
            .lock()
            .ok()
            .and_then(|m| m.clone())
            .unwrap_or_default();
        eprintln!("error: internal error (a bug in gradscope; please report it): {msg}");
        ExitStatus::Failure
    });
    // The one place a status becomes the process's exit code.
    let status = if out.closed { ExitStatus::Ok } else { status };
    std::process::exit(status.code());
}
