//! The `goftgu` binary: parse configuration, start logging, then serve or run a subcommand.
use clap::Parser;
use goftgu::{
    AppState, Application, Config, app::shutdown_signal, config::Command, domain::accounts,
};

/// mimalloc for Rust's allocations (see Cargo.toml); C code (SQLite) keeps the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The allocator is tuned before anything allocates (the standard library allocates before
/// `main`, and mimalloc fixes some choices at its first allocation): ELF runs `.init_array`
/// entries before it calls `main`.
#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array")]
static TUNE_ALLOCATOR: extern "C" fn() = {
    extern "C" fn tune() {
        goftgu::memory::tune_allocator();
    }
    tune
};

fn main() -> anyhow::Result<()> {
    #[cfg(not(target_os = "linux"))]
    goftgu::memory::tune_allocator();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let config = Config::parse();
    match config.command.clone().unwrap_or(Command::Serve) {
        Command::PrintSchema => {
            print!("{}", goftgu::graphql::sdl());
            Ok(())
        }
        Command::Staff { identifier, revoke } => {
            goftgu::telemetry::init(config.log_format);
            let state = AppState::new(config).await?;
            let user = accounts::set_staff(&state, &identifier, !revoke)
                .await
                .map_err(|e| anyhow::anyhow!(e.diagnostic()))?;
            println!("{}: is_staff = {}", user.username, user.is_staff);
            Ok(())
        }
        Command::Serve => {
            goftgu::telemetry::init(config.log_format);
            tracing::info!(config = ?config, "starting goftgu {}", env!("CARGO_PKG_VERSION"));
            let app = Application::build(config).await?;
            app.run_until(shutdown_signal()).await?;
            Ok(())
        }
    }
}
