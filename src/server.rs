//! Opening the stores and running the HTTP server with graceful shutdown.

use std::future::Future;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

use crate::api::body_guard::BodyPace;
use crate::config::{BlobArgs, Metadata, MetadataLocation, ServeArgs};
use crate::connections::{default_cap, open_file_limit, BusyBody, Connections};
use crate::domain::{Limits, Registry};
use crate::state::{AppState, Settings};
use crate::store::blobs::BlobStore;
use crate::store::local_blobs::LocalBlobs;
use crate::store::meta::MetaStore;
use crate::store::pg_meta::{redacted, PgMeta};
use crate::store::s3_blobs::S3Blobs;
use crate::store::sled_meta::SledMeta;
use crate::store::upgrade;
use crate::web::sign_in_guard::SignInPolicy;

/// Opens the embedded stores under `data_dir`, creating it on first use, brings the metadata to
/// this build's schema version (`store::upgrade`), and clears staging leftovers of a previous run.
pub fn open_registry(data_dir: &Path, limits: Limits, cache_mb: u64) -> anyhow::Result<Registry> {
    open_registry_on(data_dir, &Metadata::sled(), limits, cache_mb)
}

/// [`open_registry`] with the metadata where `metadata` says (sled under the data dir, or
/// PostgreSQL).
pub fn open_registry_on(
    data_dir: &Path,
    metadata: &Metadata,
    limits: Limits,
    cache_mb: u64,
) -> anyhow::Result<Registry> {
    create_private_dir(data_dir)?;
    let meta = open_meta(data_dir, metadata, cache_mb)?;
    let blobs = LocalBlobs::open(data_dir).context("opening the blob store")?;
    let leftovers = blobs.clean_staging_now()?;
    let registry = Registry::new(meta, Arc::new(blobs), limits);
    if leftovers > 0 {
        tracing::info!(leftovers, "removed unfinished uploads of an earlier run");
    }
    Ok(registry)
}

/// [`open_registry_on`] with the blob store `blobs` names: the data dir's, or an S3 bucket (whose
/// old staging leftovers are removed).
pub async fn open_registry_with(
    data_dir: &Path,
    metadata: &Metadata,
    blobs: &BlobArgs,
    limits: Limits,
    cache_mb: u64,
) -> anyhow::Result<Registry> {
    let Some(s3) = blobs.s3().map_err(anyhow::Error::msg)? else {
        return open_registry_on(data_dir, metadata, limits, cache_mb);
    };
    let local = open_registry_on(data_dir, metadata, limits, cache_mb)?;
    let store = S3Blobs::open(&s3).context("opening the S3 blob store")?;
    let leftovers = store
        .clean_staging()
        .await
        .with_context(|| format!("reaching the S3 bucket {}", s3.bucket))?;
    if leftovers > 0 {
        tracing::info!(leftovers, "removed staging objects of an earlier run");
    }
    Ok(local.with_blobs(Arc::new(store)))
}

/// Opens the metadata store and brings it to this build's schema version.
fn open_meta(
    data_dir: &Path,
    metadata: &Metadata,
    cache_mb: u64,
) -> anyhow::Result<Arc<dyn MetaStore>> {
    match metadata.location()? {
        MetadataLocation::Sled => {
            let meta = SledMeta::open(&data_dir.join("meta"), cache_mb.max(1) * 1024 * 1024)
                .with_context(|| {
                    format!(
                        "opening metadata in {} (is a server running on it?)",
                        data_dir.display()
                    )
                })?;
            upgrade::run(&meta, crate::domain::schema::upgrade::STEPS)
                .with_context(|| format!("opening metadata in {}", data_dir.display()))?;
            Ok(Arc::new(meta))
        }
        MetadataLocation::Postgres(url) => {
            let shown = redacted(url);
            let meta = PgMeta::open(url)?;
            upgrade::run(&meta, crate::domain::schema::upgrade::STEPS)
                .with_context(|| format!("opening metadata in {shown}"))?;
            tracing::info!(metadata = %shown, "metadata in PostgreSQL");
            Ok(Arc::new(meta))
        }
    }
}

/// Creates the data dir, if it is missing, readable by this user alone (0700): it holds password
/// and token hashes. An existing one keeps its mode (see [`warn_if_exposed`]).
fn create_private_dir(data_dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if data_dir.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating data dir {}", data_dir.display()))?;
    std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("making data dir {} private", data_dir.display()))?;
    Ok(())
}

/// Warns when an existing data dir lets other users in: in the log, or straight on stderr when
/// the log level hides warnings.
fn warn_if_exposed(data_dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(metadata) = std::fs::metadata(data_dir) else {
        return;
    };
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 == 0 {
        return;
    }
    let path = data_dir.display();
    let warning = format!(
        "the data dir {path} has mode {mode:o}: other users can reach it, and it holds password \
         and token hashes. Restrict it with: chmod 700 {path}"
    );
    if tracing::enabled!(tracing::Level::WARN) {
        tracing::warn!("{warning}");
    } else {
        eprintln!("warning: {warning}");
    }
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

/// The retention clock's offset, from days (bounded to a thousand years either way).
pub fn retention_offset(days: i64) -> anyhow::Result<chrono::Duration> {
    if days.abs() > 365_000 {
        anyhow::bail!("the retention clock offset is at most 365000 days either way");
    }
    Ok(chrono::Duration::days(days))
}

pub async fn serve(
    data_dir: &Path,
    metadata: &Metadata,
    blobs: &BlobArgs,
    args: ServeArgs,
) -> anyhow::Result<()> {
    raise_open_file_limit();
    let limits = Limits {
        generic_file_bytes: args.max_file_size,
        model_file_bytes: args.max_model_file_size,
    };
    warn_if_exposed(data_dir);
    let mut registry = open_registry_with(data_dir, metadata, blobs, limits, args.cache_mb).await?;
    registry.event_settings = crate::domain::events::EventSettings {
        allow_private: args.webhook_allow_private,
        retry_base: Duration::from_millis(args.webhook_retry_base_ms.max(1)),
        retry_cap: Duration::from_millis(args.webhook_retry_cap_ms.max(1)),
        retry_for: Duration::from_secs(args.webhook_retry_for),
        timeout: Duration::from_secs(args.webhook_timeout.max(1)),
    };
    registry.audit = crate::domain::audit::AuditSettings {
        enabled: args.audit == "on",
        downloads: args.audit_downloads,
        retention_seconds: args
            .audit_retention_seconds
            .unwrap_or(args.audit_retention_days.saturating_mul(86_400)),
    };
    registry.usage = crate::domain::usage::UsageCounters::new(args.usage_counting == "on");
    registry.upload_expiry = upload_expiry(args.upload_expiry_hours)?;
    registry.retention_clock_offset = retention_offset(args.retention_clock_offset_days)?;
    let root_token = args.root_token.as_ref().map(|s| s.0.as_str());
    if let Some(secret) = registry.bootstrap_root(root_token).await? {
        let path = data_dir.join("initial_root_token");
        write_secret_file(&path, &secret)?;
        println!(
            "Created the root user. Its token (shown once, also in {}):\n{secret}",
            path.display()
        );
    }
    if let Some(password) = &args.root_password {
        let root = registry.user_by_name("root")?;
        registry.set_password(root.id, &password.0).await?;
    }
    registry.persist_blocking()?;

    let listener = TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let address = listener.local_addr()?;
    let metrics_listener = match &args.metrics_listen {
        Some(metrics_address) => Some(
            TcpListener::bind(metrics_address)
                .await
                .with_context(|| format!("binding {metrics_address} for metrics"))?,
        ),
        None => None,
    };
    let pace = BodyPace {
        idle_timeout: std::time::Duration::from_secs(args.body_idle_timeout.max(1)),
        min_bytes_per_second: args.body_min_rate,
    };
    let sign_in = SignInPolicy {
        per_minute: args.sign_in_rate,
        lockout_failures: args.sign_in_lockout,
        lockout: Duration::from_secs(args.sign_in_lockout_seconds.max(1)),
        ..SignInPolicy::default()
    };
    let settings = Settings::new(args.external_url.clone())
        .with_body_pace(pace)
        .with_sign_in(sign_in);
    let mut audiences = args.oidc_audience.clone();
    if audiences.is_empty() {
        if let Some(url) = &args.external_url {
            audiences.push(url.trim_end_matches('/').to_string());
        }
    }
    let identities = crate::identity::Identities::new(
        args.gitlab_url.clone(),
        args.oidc_issuer.clone(),
        audiences,
    );
    let state = AppState::new(Arc::new(registry), settings).with_identities(identities);
    let link_base = state
        .settings
        .external_url
        .clone()
        .unwrap_or_else(|| format!("http://{address}"));
    let deliverer = crate::webhooks::spawn(state.registry.clone(), link_base);
    let usage_flusher = spawn_usage_flusher(
        state.registry.clone(),
        Duration::from_secs(args.usage_flush_seconds.max(1)),
    );
    let pruner = spawn_audit_pruner(
        state.registry.clone(),
        Duration::from_secs(args.audit_prune_interval.max(1)),
    );
    let expirer = spawn_upload_expiry(state.registry.clone());
    let signalled = shutdown_signal()?;
    let header_timeout = Duration::from_secs(args.header_read_timeout.max(1));
    let cap = match args.max_connections {
        0 => default_cap(open_file_limit()),
        n => n,
    };
    tracing::info!(max_connections = cap, "connection cap");
    // Set once shutdown begins, for the metrics address to stop with the main one.
    let (stopping_tx, stopping_rx) = watch::channel(false);
    let metrics_server = match metrics_listener {
        Some(metrics_listener) => {
            let metrics_address = metrics_listener.local_addr()?;
            println!("modelyard metrics on http://{metrics_address}");
            tracing::info!(%metrics_address, "serving /metrics");
            let app = crate::api::with_middleware(crate::api::ops::metrics_router(), state.clone());
            let mut stopping = stopping_rx.clone();
            Some(tokio::spawn(serve_connections(
                metrics_listener,
                app,
                header_timeout,
                Connections::new(cap),
                async move {
                    // An error means the sender is gone: stop as well.
                    let _ = stopping.wait_for(|stop| *stop).await;
                },
            )))
        }
        None => None,
    };
    println!("modelyard listening on http://{address}");
    std::io::stdout().flush()?;
    tracing::info!(%address, data_dir = %data_dir.display(), "serving");

    let settings = state.settings.clone();
    serve_connections(
        listener,
        crate::app(state.clone()),
        header_timeout,
        Connections::new(cap),
        async move {
            signalled.await;
            settings.stop_accepting();
            tracing::info!("shutting down: finishing requests in flight");
            let _ = stopping_tx.send(true);
        },
    )
    .await;
    if let Some(metrics_server) = metrics_server {
        if let Err(error) = metrics_server.await {
            tracing::warn!(%error, "the metrics server ended abnormally");
        }
    }
    deliverer.abort();
    pruner.abort();
    usage_flusher.abort();
    // The counts of the last interval survive a clean shutdown.
    if let Err(error) = state.registry.flush_usage().await {
        tracing::warn!(%error, "writing the last download counts");
    }
    expirer.abort();
    state.registry.persist_blocking()?;
    tracing::info!("metadata flushed; bye");
    Ok(())
}

/// Writes the download counts kept in memory every `interval`, in one transaction.
fn spawn_usage_flusher(
    registry: Arc<crate::domain::Registry>,
    interval: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if let Err(error) = registry.flush_usage().await {
                tracing::warn!(%error, "writing download counts");
            }
        }
    })
}

/// Prunes expired audit events now and then every `interval`, a bounded batch at a time.
fn spawn_audit_pruner(
    registry: Arc<crate::domain::Registry>,
    interval: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        loop {
            ticks.tick().await;
            match registry.prune_audit(500, 1000).await {
                Ok(0) => {}
                Ok(pruned) => tracing::info!(pruned, "pruned expired audit events"),
                Err(error) => tracing::warn!(%error, "pruning audit events"),
            }
        }
    })
}

/// The lifetime of a stale resumable upload, from `--upload-expiry-hours`.
fn upload_expiry(hours: f64) -> anyhow::Result<Duration> {
    if !hours.is_finite() || hours <= 0.0 {
        anyhow::bail!("--upload-expiry-hours must be a positive number of hours");
    }
    Ok(Duration::from_secs_f64((hours * 3600.0).min(1e9)))
}

/// Removes expired resumable uploads and their staged bytes, a quarter of the expiry apart (at
/// most every 5 minutes, at least every second).
fn spawn_upload_expiry(registry: Arc<crate::domain::Registry>) -> tokio::task::JoinHandle<()> {
    let every =
        (registry.upload_expiry / 4).clamp(Duration::from_secs(1), Duration::from_secs(300));
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        loop {
            ticks.tick().await;
            match registry.expire_uploads().await {
                Ok(0) => {}
                Ok(removed) => tracing::info!(removed, "expired resumable uploads removed"),
                Err(error) => tracing::warn!(
                    error = %crate::domain::error::chain(&error),
                    "removing expired uploads failed"
                ),
            }
        }
    })
}

/// Serves HTTP/1.1 connections until `shutdown` completes, then lets each connection finish the
/// request it is on; returns when all have closed. This is `axum::serve` with graceful shutdown,
/// plus a timer for hyper, so that a client slow to send its request headers (or a keep-alive
/// connection idle between requests) is disconnected after `header_timeout`. Request bodies are
/// paced separately (`api::body_guard`). At most `connections.cap()` connections are open: at
/// the cap a new one sheds the connection idle the longest (see [`crate::connections`]).
async fn serve_connections(
    listener: TcpListener,
    app: Router,
    header_timeout: Duration,
    connections: Arc<Connections>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    // `stop_rx` is dropped when shutdown begins; every connection holds a clone of `done_rx`.
    let (stop_tx, stop_rx) = watch::channel(());
    let (done_tx, done_rx) = watch::channel(());
    tokio::spawn(async move {
        shutdown.await;
        drop(stop_rx);
    });
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) if is_connection_error(&error) => continue,
                Err(error) => {
                    // Out of file descriptors, say: wait for some to be closed.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stop_tx.closed() => break,
        };
        let Some(admitted) = connections.admit() else {
            drop(stream); // every connection is busy: refuse this one
            continue;
        };
        let admitted = Arc::new(admitted);
        let service = {
            let (app, admitted) = (app.clone(), admitted.clone());
            tower::service_fn(
                move |mut request: axum::http::Request<hyper::body::Incoming>| {
                    // Handlers that care (the sign-in throttle) find the client's address here.
                    request.extensions_mut().insert(ConnectInfo(peer));
                    let busy = admitted.request();
                    let app = app.clone();
                    async move {
                        let response = app.oneshot(request).await?;
                        Ok::<_, std::convert::Infallible>(
                            response.map(|inner| axum::body::Body::new(BusyBody { inner, busy })),
                        )
                    }
                },
            )
        };
        let service = TowerToHyperService::new(service);
        let stop = stop_tx.clone();
        let done = done_rx.clone();
        tokio::spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout);
            let connection = builder
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(%error, "connection ended with an error");
                    }
                }
                _ = stop.closed() => {
                    connection.as_mut().graceful_shutdown();
                    if let Err(error) = connection.await {
                        tracing::debug!(%error, "connection ended with an error");
                    }
                }
                // Shed at the cap: it was idle, so nothing in flight is lost.
                _ = admitted.shed.notified() => {
                    connection.as_mut().graceful_shutdown();
                    if let Err(error) = connection.await {
                        tracing::debug!(%error, "connection ended with an error");
                    }
                }
            }
            drop(admitted);
            drop(done);
        });
    }
    drop(listener);
    drop(done_rx);
    done_tx.closed().await;
}

/// Errors of one incoming connection (gone before it was accepted), not of the listener.
fn is_connection_error(error: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        error.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    )
}

/// Installs the SIGINT and SIGTERM handlers now (so that a signal arriving at any time after this
/// call shuts down gracefully rather than killing the process) and returns the future that
/// completes when one arrives.
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut terminate =
        signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {},
            _ = terminate.recv() => {},
        }
    })
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
