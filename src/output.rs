//! Standard output that survives its reader going away: `veritee verify ... | head -1`
//! ends quietly, as ripgrep does, where `std::println!` would panic with "failed
//! printing to stdout". Every `println!` in this crate is this one.

use std::io::Write;

/// Writes one line to standard output. Once the reader has gone, the command has
/// nobody to tell anything to: it exits at once, with status 0.
pub fn line(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    let written = out
        .write_fmt(args)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
    if let Err(e) = written {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to standard output: {e}");
        std::process::exit(2);
    }
}

/// `println!`, without the panic when standard output is closed.
macro_rules! println {
    () => {
        $crate::output::line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::output::line(format_args!($($arg)*))
    };
}
