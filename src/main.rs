use clap::Parser;
use tracing_subscriber::EnvFilter;

use modelyard::config::{Cli, Command};
use modelyard::{admin, server};

fn init_tracing(json: bool) {
    let filter =
        EnvFilter::try_from_env("MODELYARD_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Everything this process creates (the data dir, metadata, blobs, backups) is for its own user
/// alone: directories 0700, files 0600. The data dir holds password and token hashes.
fn private_files() {
    // SAFETY: umask only sets the process's file mode creation mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    private_files();
    match cli.command {
        Command::Serve(args) => {
            init_tracing(args.log_format == "json");
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?
                .block_on(server::serve(
                    &cli.data_dir,
                    &cli.metadata,
                    &cli.blobs,
                    *args,
                ))
        }
        Command::Push(args) => {
            init_tracing(false);
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?
                .block_on(modelyard::client::push(*args))
        }
        Command::Pull(args) => {
            init_tracing(false);
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?
                .block_on(modelyard::client::pull(*args))
        }
        command => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            // Admin commands write through the same durable path as the server.
            .block_on(admin::run(
                &cli.data_dir,
                &cli.metadata,
                &cli.blobs,
                command,
            )),
    }
}
