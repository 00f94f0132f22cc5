//! `raxx-console`: the operator console for an app that runs in staging and prod.

mod audit_cmd;
mod commands;
#[cfg(feature = "demo")]
mod demo;
mod flags_cmd;
mod runtime;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// mimalloc instead of glibc's malloc: the request paths allocate many small, short-lived
/// values, and glibc `malloc`/`free` took about 40 % of the CPU of a page view (bench/README.md).
/// Built with `no_thp`: with transparent huge pages its arenas made idle RSS 10 MB larger.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "raxx-console",
    version,
    about = "The env-bound operator console for raxx (staging and prod)"
)]
struct Cli {
    /// Config file (default: console.toml if present).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the console (migrates first).
    Serve,
    /// Run the embedded migrations and exit.
    Migrate,
    /// Start a staging and a prod console with demo data, and print a login link for each.
    #[cfg(feature = "demo")]
    Demo {
        #[arg(long, default_value = "./demo-data")]
        data_dir: PathBuf,
    },
    /// Print a one-time sign-in URL (valid 10 minutes) for an operator.
    LoginLink {
        #[arg(long)]
        email: String,
    },
    /// Print the route manifest.
    Routes,
    /// The audit log.
    Audit {
        #[command(subcommand)]
        command: audit_cmd::AuditCommand,
    },
    /// Feature flags: apply a flags file (staging only).
    Flags {
        #[command(subcommand)]
        command: flags_cmd::FlagsCommand,
    },
    /// App API keys: create one (the secret is printed once).
    Keys {
        #[command(subcommand)]
        command: flags_cmd::KeysCommand,
    },
    /// Validate the config and print what it derives.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Parse and validate; print the derived env.
    Check,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    runtime::init_logging(matches!(cli.log_format, LogFormat::Json));
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let config = cli.config.clone();
    let config_path = cli.config.clone();
    let result = rt.block_on(async move {
        match cli.command {
            Command::Serve => commands::serve(config.as_deref()).await,
            Command::Migrate => commands::migrate(config.as_deref()).await,
            #[cfg(feature = "demo")]
            Command::Demo { data_dir } => demo::run(&data_dir).await,
            Command::LoginLink { email } => commands::login_link(config.as_deref(), &email).await,
            Command::Routes => {
                print!("{}", raxx_web::manifest::manifest_table());
                Ok(ExitCode::SUCCESS)
            }
            Command::Audit { command } => audit_cmd::run(config.as_deref(), command).await,
            Command::Flags { command } => flags_cmd::flags(config.as_deref(), command).await,
            Command::Keys { command } => flags_cmd::keys(config.as_deref(), command).await,
            Command::Config {
                command: ConfigCommand::Check,
            } => commands::config_check(config.as_deref()),
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", runtime::error_line(&e, config_path.as_deref()));
            ExitCode::FAILURE
        }
    }
}
