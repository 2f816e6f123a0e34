//! Crash test: many concurrent uploads of random sizes while the server is SIGKILLed at random
//! moments and restarted on the same data dir. Everything that got a 2xx must be downloadable
//! with the sha256 the client computed, `verify` must be clean (no record without its blob, no
//! corrupt blob), and tmp must be empty after a restart.
//!
//! The short variant runs in the test suite; the long one is
//! `MODELYARD_CRASH_ROUNDS=50 MODELYARD_CRASH_MAX_BYTES=67108864 cargo test --release --test crash`.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A small deterministic generator for sizes and delays.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below.max(1)
    }
}

#[test]
fn acknowledged_uploads_survive_random_sigkills() {
    let rounds = setting("MODELYARD_CRASH_ROUNDS", 5);
    let uploaders = setting("MODELYARD_CRASH_UPLOADERS", 50);
    let max_bytes = setting("MODELYARD_CRASH_MAX_BYTES", 8 << 20);
    let seed = setting("MODELYARD_CRASH_SEED", 0x5eed_cafe);
    eprintln!(
        "crash test: {rounds} rounds, {uploaders} uploaders, up to {max_bytes} bytes, seed {seed}"
    );

    let mut server = TestServer::start();
    let project_id = project(&server, "crash", "private");
    let acknowledged: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let mut dice = Dice(seed | 1);
    let mut interrupted = 0usize;

    for round in 0..rounds {
        let base = server.base.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let failures = Arc::new(Mutex::new(0usize));
        let workers: Vec<_> = (0..uploaders)
            .map(|worker| {
                let base = base.clone();
                let stop = stop.clone();
                let acknowledged = acknowledged.clone();
                let failures = failures.clone();
                let mut dice = Dice((seed ^ (round << 32) ^ (worker << 8)) | 1);
                std::thread::spawn(move || {
                    let mut n = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let size = 1024 + dice.roll(max_bytes) as usize;
                        let body = random_bytes(size, dice.roll(u64::MAX));
                        let path = format!(
                            "/api/v4/projects/{project_id}/packages/generic/crash/r{round}-w{worker}-n{n}/data.bin"
                        );
                        n += 1;
                        let token = ("PRIVATE-TOKEN", ROOT_TOKEN);
                        match try_raw(&base, "PUT", &path, &[token], &body) {
                            Ok(reply) if reply.status == 201 => acknowledged
                                .lock()
                                .unwrap()
                                .push((path, sha256_hex(&body))),
                            Ok(reply) => panic!("{path}: unexpected {} {}", reply.status, reply.text()),
                            Err(_) => {
                                *failures.lock().unwrap() += 1;
                                break;
                            }
                        }
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(200 + dice.roll(1500)));
        server.kill9();
        stop.store(true, Ordering::Relaxed);
        for worker in workers {
            worker.join().expect("uploader thread");
        }
        interrupted += *failures.lock().unwrap();
        server.restart();
        // On S3 a killed replica's multipart uploads and staging objects stay until the
        // bucket's lifecycle rule (README) and the staging sweep take them: another replica may
        // be using them. The local tmp/ is the server's own and is emptied at start.
        if server.stores.s3.is_none() {
            assert_eq!(
                server.tmp_entries(),
                0,
                "round {round}: tmp not cleaned at start"
            );
        }
    }

    let acknowledged = acknowledged.lock().unwrap().clone();
    eprintln!(
        "crash test: {} uploads acknowledged, {interrupted} cut off by a kill",
        acknowledged.len()
    );
    assert!(
        acknowledged.len() as u64 >= rounds,
        "too few uploads finished to prove anything"
    );
    assert!(interrupted > 0, "no upload was in flight at any kill");
    let api = Api::root(&server);
    for (path, sha256) in &acknowledged {
        let reply = api.get(path);
        assert_eq!(reply.status, 200, "{path} was acknowledged, then lost");
        assert_eq!(&sha256_hex(&reply.body), sha256, "{path} changed");
    }
    server.stop();
    let verify = server.admin(&["verify"]);
    let report = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success(), "verify: {report}");
    assert!(report.contains(" 0 corrupt, 0 missing"), "{report}");
}
