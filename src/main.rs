//! The `goftgu` binary: parse configuration, start logging, then serve or run a subcommand.
use clap::Parser;
use goftgu::{
    AppState, Application, Config, app::shutdown_signal, config::Command, domain::accounts,
};

fn main() -> anyhow::Result<()> {
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
