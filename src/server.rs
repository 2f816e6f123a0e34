//! Opening the stores and running the HTTP server with graceful shutdown.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;

use crate::api::body_guard::BodyPace;
use crate::config::ServeArgs;
use crate::domain::{Limits, Registry};
use crate::state::{AppState, Settings};
use crate::store::local_blobs::LocalBlobs;
use crate::store::sled_meta::SledMeta;

/// Opens the embedded stores under `data_dir`, creating it on first use, and clears staging
/// leftovers of a previous run.
pub fn open_registry(data_dir: &Path, limits: Limits, cache_mb: u64) -> anyhow::Result<Registry> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating data dir {}", data_dir.display()))?;
    let meta = SledMeta::open(&data_dir.join("meta"), cache_mb.max(1) * 1024 * 1024).with_context(
        || {
            format!(
                "opening metadata in {} (is a server running on it?)",
                data_dir.display()
            )
        },
    )?;
    let blobs = LocalBlobs::open(data_dir).context("opening the blob store")?;
    let registry = Registry::new(Arc::new(meta), Arc::new(blobs), limits);
    let leftovers = registry.blobs().clean_staging()?;
    if leftovers > 0 {
        tracing::info!(leftovers, "removed unfinished uploads of an earlier run");
    }
    Ok(registry)
}

fn write_secret_file(path: &Path, secret: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    writeln!(file, "{secret}")?;
    file.sync_all()?;
    Ok(())
}

pub async fn serve(data_dir: &Path, args: ServeArgs) -> anyhow::Result<()> {
    raise_open_file_limit();
    let limits = Limits {
        generic_file_bytes: args.max_file_size,
        model_file_bytes: args.max_model_file_size,
    };
    let registry = open_registry(data_dir, limits, args.cache_mb)?;
    let root_token = args.root_token.as_ref().map(|s| s.0.as_str());
    if let Some(secret) = registry.bootstrap_root(root_token)? {
        let path = data_dir.join("initial_root_token");
        write_secret_file(&path, &secret)?;
        println!(
            "Created the root user. Its token (shown once, also in {}):\n{secret}",
            path.display()
        );
    }
    if let Some(password) = &args.root_password {
        let root = registry.user_by_name("root")?;
        registry.set_password(root.id, &password.0)?;
    }
    registry.persist_blocking()?;

    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let address = listener.local_addr()?;
    let pace = BodyPace {
        idle_timeout: std::time::Duration::from_secs(args.body_idle_timeout.max(1)),
        min_bytes_per_second: args.body_min_rate,
    };
    let settings = Settings::new(args.external_url.clone()).with_body_pace(pace);
    let state = AppState::new(Arc::new(registry), settings);
    println!("modelyard listening on http://{address}");
    std::io::stdout().flush()?;
    tracing::info!(%address, data_dir = %data_dir.display(), "serving");

    let settings = state.settings.clone();
    axum::serve(listener, crate::app(state.clone()))
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            settings.stop_accepting();
            tracing::info!("shutting down: finishing requests in flight");
        })
        .await?;
    state.registry.persist_blocking()?;
    tracing::info!("metadata flushed; bye");
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = terminate.recv() => {},
    }
}

/// Many clients mean many sockets: lift the soft open-file limit to the hard one.
fn raise_open_file_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed by pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                tracing::warn!("could not raise the open-file limit");
            }
        }
    }
}
