//! The PostgreSQL the tests run against: `MODELYARD_TEST_POSTGRES_URL` (scripts/test.sh starts
//! a private cluster with scripts/postgres.sh and exports it). Each caller gets a fresh database
//! with a random name. Without the variable the PostgreSQL cases are skipped, loudly, unless
//! `MODELYARD_TEST_REQUIRE_POSTGRES=1` (scripts/test.sh sets it), which makes them fail.
#![allow(dead_code)]

/// The server's URL, or `None` (after saying so on stderr) when the tests run without one.
pub fn server_url(test: &str) -> Option<String> {
    match std::env::var("MODELYARD_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("MODELYARD_TEST_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "{test}: MODELYARD_TEST_POSTGRES_URL is unset but MODELYARD_TEST_REQUIRE_POSTGRES=1 \
                 (run scripts/test.sh, or eval \"$(scripts/postgres.sh start)\")"
            );
            eprintln!(
                "SKIPPED the PostgreSQL part of {test}: MODELYARD_TEST_POSTGRES_URL is unset \
                 (eval \"$(scripts/postgres.sh start)\" to run it)"
            );
            None
        }
    }
}

/// Runs one statement on the test server's maintenance database.
fn on_server(server: &str, statement: String) -> Result<(), String> {
    let admin = server.to_string();
    // Its own thread and runtime: callers may be inside a tokio runtime already.
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(async move {
            use sqlx::Connection;
            let mut connection = sqlx::PgConnection::connect(&admin)
                .await
                .map_err(|e| format!("connect to MODELYARD_TEST_POSTGRES_URL: {e}"))?;
            sqlx::query(sqlx::AssertSqlSafe(statement.clone()))
                .execute(&mut connection)
                .await
                .map_err(|e| format!("{statement}: {e}"))?;
            Ok(())
        })
    })
    .join()
    .map_err(|_| "the statement's thread panicked".to_string())?
}

/// A new, empty database on the test server; its URL.
pub fn fresh_database(test: &str) -> Option<String> {
    let server = server_url(test)?;
    let name = format!("modelyard_test_{:016x}", rand::random::<u64>());
    on_server(&server, format!("CREATE DATABASE {name}")).expect("CREATE DATABASE");
    let mut url = url::Url::parse(&server).expect("MODELYARD_TEST_POSTGRES_URL is a URL");
    url.set_path(&format!("/{name}"));
    Some(url.to_string())
}

/// Drops a database [`fresh_database`] made (its connections closed by force), so that a whole
/// suite on PostgreSQL does not fill the disk with them. Failures are only reported.
pub fn drop_database(url: &str) {
    let Ok(server) = std::env::var("MODELYARD_TEST_POSTGRES_URL") else {
        return;
    };
    let Some(name) = url::Url::parse(url)
        .ok()
        .map(|u| u.path().trim_start_matches('/').to_string())
        .filter(|name| name.starts_with("modelyard_test_"))
    else {
        return;
    };
    if let Err(error) = on_server(
        &server,
        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    ) {
        eprintln!("dropping the test database {name}: {error}");
    }
}
