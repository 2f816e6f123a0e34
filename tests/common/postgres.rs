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

/// A new, empty database on the test server; its URL.
pub fn fresh_database(test: &str) -> Option<String> {
    let server = server_url(test)?;
    let name = format!("modelyard_test_{:016x}", rand::random::<u64>());
    let admin = server.clone();
    let create = name.clone();
    // Its own thread and runtime: callers may be inside a tokio runtime already.
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for CREATE DATABASE");
        runtime.block_on(async move {
            use sqlx::Connection;
            let mut connection = sqlx::PgConnection::connect(&admin)
                .await
                .expect("connect to MODELYARD_TEST_POSTGRES_URL");
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {create}")))
                .execute(&mut connection)
                .await
                .expect("CREATE DATABASE");
        })
    })
    .join()
    .expect("creating the test database");
    let mut url = url::Url::parse(&server).expect("MODELYARD_TEST_POSTGRES_URL is a URL");
    url.set_path(&format!("/{name}"));
    Some(url.to_string())
}
