//! Resource exhaustion, tried as an attacker would against the real server: sign-in floods,
//! huge multipart fields and JSON bodies, a disk that fills and is freed, idle connection
//! floods, and requests refused before their body was read.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;

/// Reads one response (head and a Content-Length body) off a kept-alive connection; `None`
/// when the server closed the connection first.
fn read_one(stream: &mut TcpStream) -> Option<Reply> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let length: usize = text
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    let chunked = text
        .lines()
        .any(|l| l.to_ascii_lowercase().starts_with("transfer-encoding:") && l.contains("chunked"));
    let mut body = Vec::new();
    if chunked {
        // Chunk sizes and data, up to the last (empty) chunk.
        loop {
            let mut line = Vec::new();
            while !line.ends_with(b"\r\n") {
                stream.read_exact(&mut byte).ok()?;
                line.push(byte[0]);
            }
            let size =
                usize::from_str_radix(String::from_utf8_lossy(&line).trim().split(';').next()?, 16)
                    .ok()?;
            let mut chunk = vec![0u8; size + 2];
            stream.read_exact(&mut chunk).ok()?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else {
        body = vec![0u8; length];
        stream.read_exact(&mut body).ok()?;
    }
    let mut lines = text.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Some(Reply {
        status,
        headers,
        body,
    })
}

fn host(server: &TestServer) -> String {
    server.base.trim_start_matches("http://").to_string()
}

// ---------------------------------------------------------------------------------------------
// Item 11: a request refused before its body was read says `Connection: close`.

#[test]
fn a_put_refused_before_its_body_is_read_says_connection_close() {
    let server = TestServer::start();
    let project_id = project(&server, "early", "private");
    let host = host(&server);
    let mut stream = TcpStream::connect(&host).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let body = vec![b'x'; 4096];
    let path = format!("/api/v4/projects/{project_id}/packages/generic/early/1.0.0/f.bin");
    write!(
        stream,
        "PUT {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(&body).unwrap();
    let refused = read_one(&mut stream).expect("an answer to the anonymous upload");
    assert_eq!(refused.status, 401, "{}", refused.text());
    // Either the server says it will close, or it answers the next request on the connection.
    let says_close = refused
        .header("connection")
        .is_some_and(|v| v.eq_ignore_ascii_case("close"));
    if !says_close {
        write!(stream, "GET /-/health HTTP/1.1\r\nHost: {host}\r\n\r\n").unwrap();
        let next = read_one(&mut stream);
        assert!(
            next.is_some_and(|r| r.status == 200),
            "the 401 had no `Connection: close` and the next request on the connection got no answer"
        );
    }

    // A request whose body was read keeps its connection.
    let token = ROOT_TOKEN;
    let mut stream = TcpStream::connect(&host).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "PUT {path} HTTP/1.1\r\nHost: {host}\r\nPRIVATE-TOKEN: {token}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(&body).unwrap();
    let stored = read_one(&mut stream).expect("an answer to the upload");
    assert_eq!(stored.status, 201, "{}", stored.text());
    assert_ne!(stored.header("connection"), Some("close"));
    write!(stream, "GET /-/health HTTP/1.1\r\nHost: {host}\r\n\r\n").unwrap();
    assert_eq!(read_one(&mut stream).map(|r| r.status), Some(200));
}

#[test]
fn a_post_to_a_missing_route_with_a_body_says_connection_close() {
    let server = TestServer::start();
    let host = host(&server);
    let mut stream = TcpStream::connect(&host).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let body = vec![b'{'; 2048];
    write!(
        stream,
        "POST /api/v4/no/such/route HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(&body).unwrap();
    let refused = read_one(&mut stream).expect("an answer");
    assert_eq!(refused.status, 404, "{}", refused.text());
    let says_close = refused
        .header("connection")
        .is_some_and(|v| v.eq_ignore_ascii_case("close"));
    if !says_close {
        write!(stream, "GET /-/health HTTP/1.1\r\nHost: {host}\r\n\r\n").unwrap();
        assert!(
            read_one(&mut stream).is_some_and(|r| r.status == 200),
            "the 404 had no `Connection: close` and the next request got no answer"
        );
    }
}
