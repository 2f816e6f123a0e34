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

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            init_tracing(args.log_format == "json");
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?
                .block_on(server::serve(&cli.data_dir, args))
        }
        Command::User(c) => admin::user(&cli.data_dir, c),
        Command::Token(c) => admin::token(&cli.data_dir, c),
        Command::Project(c) => admin::project(&cli.data_dir, c),
        Command::Member(c) => admin::member(&cli.data_dir, c),
        Command::Gc => admin::gc(&cli.data_dir),
        Command::Verify => admin::verify(&cli.data_dir),
        Command::Backup { dest } => admin::backup(&cli.data_dir, &dest),
    }
}
