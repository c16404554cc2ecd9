//! The `gradscope` binary: parse the command line, run, map the result to an exit code.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};

use clap::Parser;
use gradscope::cli::{self, Cli, EXIT_BAD_INPUT, EXIT_FAILURE};

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            let code = if e.use_stderr() { EXIT_BAD_INPUT } else { 0 };
            std::process::exit(code);
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
        let at = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        if let Ok(mut slot) = sink.lock() {
            slot.get_or_insert(format!("{msg}{at}"));
        }
    }));
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let code = catch_unwind(AssertUnwindSafe(|| cli::run(cli, &mut stdout.lock(), &mut stderr.lock())))
        .unwrap_or_else(|_| {
            let msg = panic_message.lock().ok().and_then(|m| m.clone()).unwrap_or_default();
            eprintln!("error: internal error (a bug in gradscope; please report it): {msg}");
            EXIT_FAILURE
        });
    std::process::exit(code);
}
