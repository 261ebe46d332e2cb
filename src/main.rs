//! The `switchyard` command: parse the command line, load the config, hand
//! over to the library. Exit codes: 0 ok, 1 invalid config or usage,
//! 2 runtime failure (e.g. cannot bind).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use switchyard::config::{self, Severity};
use switchyard::server::{self, StartOptions};

/// mimalloc rather than glibc malloc: 17% fewer instructions per proxied
/// request and 2.1 instead of 2.6 KiB per idle keep-alive connection
/// (callgrind and RSS, README "Performance"). jemalloc was measured too.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

extern "C" {
    /// mimalloc's option setter (linked with the allocator above).
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
}

/// `mi_option_arena_eager_commit` in mimalloc 3's `mi_option_e`.
const MI_OPTION_ARENA_EAGER_COMMIT: std::ffi::c_int = 4;

/// Memory is committed as it is used, not a whole arena region at once:
/// with eager commit, each idle HTTP/2 connection kept 34 KiB resident
/// instead of 19 (h2c, 2,000 connections, README "Benchmarks"). mimalloc
/// reserves its first arena at the first allocation, before `main`, so
/// this runs as an early constructor (before mimalloc's own, which keeps a
/// value set this way). `MIMALLOC_ARENA_EAGER_COMMIT` still wins.
extern "C" fn commit_lazily() {
    // (libc's getenv: nothing is allocated before the option is set.)
    // SAFETY: getenv with a NUL-terminated name, before any thread exists;
    // mi_option_set writes one value of mimalloc's static option table.
    unsafe {
        if libc::getenv(c"MIMALLOC_ARENA_EAGER_COMMIT".as_ptr()).is_null() {
            mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0);
        }
    }
}

#[cfg(target_os = "linux")]
#[used]
#[link_section = ".init_array.00101"]
static COMMIT_LAZILY: extern "C" fn() = commit_lazily;

#[derive(Parser)]
#[command(
    name = "switchyard",
    version,
    about = "An edge proxy and load balancer on Pingora"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the config.
    Run {
        #[arg(short, long)]
        conf: String,
        /// Run in the background (writes server.pid_file).
        #[arg(short, long)]
        daemon: bool,
        /// Take over the listeners of a running instance (graceful upgrade).
        #[arg(short, long)]
        upgrade: bool,
    },
    /// Validate the config: print every problem, exit 0 (valid) or 1.
    Check {
        #[arg(short, long)]
        conf: String,
    },
    /// Replace the running instance (pid in server.pid_file) with one that
    /// serves the config, without dropping connections: exit 0 once it serves.
    Upgrade {
        #[arg(short, long)]
        conf: String,
    },
    /// Make the running instance (pid in server.pid_file) apply the config
    /// again in place, keeping backend state: exit 0 once it applied it, 1
    /// when the file is invalid or needs `upgrade`, 2 when nothing answered.
    Reload {
        #[arg(short, long)]
        conf: String,
    },
    /// Serve a demo backend that says who answered (for `make run` and tests).
    DemoBackend {
        #[arg(long, default_value = "127.0.0.1:9001")]
        listen: String,
        #[arg(long, default_value = "demo")]
        name: String,
    },
    /// Offline simulations: balls into bins, balancing policies, retry herds.
    Sim {
        #[command(subcommand)]
        scenario: switchyard::sim::Scenario,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match cli.command {
        Command::Check { conf } => check(&conf),
        Command::Upgrade { conf } => upgrade(&conf),
        Command::Reload { conf } => reload(&conf),
        Command::Run {
            conf,
            daemon,
            upgrade,
        } => run(&conf, StartOptions { daemon, upgrade }),
        Command::DemoBackend { listen, name } => demo_backend(&listen, &name),
        Command::Sim { scenario } => sim(&scenario),
    }
}

fn sim(scenario: &switchyard::sim::Scenario) -> ExitCode {
    match switchyard::sim::run(scenario) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("switchyard: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn check(file: &str) -> ExitCode {
    match validate(file) {
        Some(_) => ExitCode::SUCCESS,
        None => ExitCode::from(1),
    }
}

/// Prints every problem in `file` (as `check` does); the config if valid.
fn validate(file: &str) -> Option<config::Config> {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("switchyard: cannot read {file}: {e}");
            return None;
        }
    };
    let (config, problems) = config::check_str(&text);
    for p in &problems {
        eprintln!("{file}: {p}");
    }
    let errors = problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .count();
    match config {
        Some(c) => {
            println!(
                "{file}: ok ({} listeners, {} upstreams, {} warnings)",
                c.listeners.len(),
                c.upstreams.len(),
                problems.len()
            );
            Some(c)
        }
        None => {
            eprintln!("{file}: {errors} error(s)");
            None
        }
    }
}

fn upgrade(file: &str) -> ExitCode {
    let Some(config) = validate(file) else {
        eprintln!("switchyard: not upgrading: the running instance was not touched");
        return ExitCode::from(1);
    };
    match switchyard::upgrade::upgrade(std::path::Path::new(file), &config) {
        Ok((old, new)) => {
            println!(
                "switchyard: pid {new} serves {file}; pid {old} finishes its requests and exits"
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("switchyard: upgrade failed: {e}");
            ExitCode::from(2)
        }
    }
}

fn reload(file: &str) -> ExitCode {
    let Some(config) = validate(file) else {
        eprintln!("switchyard: not reloading: the running instance was not touched");
        return ExitCode::from(1);
    };
    match switchyard::reload::reload(std::path::Path::new(file), &config) {
        Ok(summary) => {
            println!("switchyard: reloaded {file}: {summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("switchyard: reload refused or failed:\n{e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn run(file: &str, start: StartOptions) -> ExitCode {
    let loaded = match config::load_file(file) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("switchyard: {e}");
            return ExitCode::from(1);
        }
    };
    init_logging(loaded.config.server.error_log.as_deref());
    for w in &loaded.warnings {
        log::warn!("{file}: {w}");
    }
    if !start.upgrade {
        if let Err(e) = server::check_bindable(&loaded.config) {
            eprintln!("switchyard: {e}");
            return ExitCode::from(2);
        }
    }
    let path = std::path::Path::new(file);
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let server = match server::build(&loaded.config, &path, start) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("switchyard: {e}");
            return ExitCode::from(1);
        }
    };
    log::info!("switchyard {} serving {file}", env!("CARGO_PKG_VERSION"));
    if !start.daemon {
        // (A daemon's pid is written by Pingora after the fork.) `reload`
        // and `upgrade` find the process through it.
        let pid_file = &loaded.config.server.pid_file;
        if let Err(e) = std::fs::write(pid_file, format!("{}\n", std::process::id())) {
            log::warn!("cannot write pid_file {}: {e}", pid_file.display());
        }
    }
    server.run_forever()
}

fn demo_backend(listen: &str, name: &str) -> ExitCode {
    init_logging(None);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("switchyard: cannot start runtime: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(async {
        match tokio::net::TcpListener::bind(listen).await {
            Ok(l) => {
                eprintln!("demo backend {name} listening on {listen}");
                switchyard::demo::serve(l, switchyard::demo::DemoState::new(name)).await;
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("switchyard: cannot listen on {listen}: {e}");
                ExitCode::from(2)
            }
        }
    })
}

/// Logs to stderr, or appended to `server.error_log`. `RUST_LOG` overrides the level.
fn init_logging(file: Option<&std::path::Path>) {
    let mut b = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    if let Some(path) = file {
        match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            Ok(f) => {
                b.target(env_logger::Target::Pipe(Box::new(f)));
            }
            Err(e) => eprintln!(
                "switchyard: cannot open error_log {}: {e}; logging to stderr",
                path.display()
            ),
        }
    }
    let _ = b.try_init();
}
