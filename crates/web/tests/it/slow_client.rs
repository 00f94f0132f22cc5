//! A client that trickles its request headers is cut off after the header-read timeout
//! instead of holding a connection (and a task) forever.

use std::time::{Duration, Instant};

use raxx_core::Env;
use raxx_testkit::{ServeOptions, TestConsole};

/// The header-read timeout these consoles serve with (production: ten seconds).
const TIMEOUT: Duration = Duration::from_secs(1);
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let options = ServeOptions {
        header_read_timeout: TIMEOUT,
    };
    let c =
        TestConsole::start_serving(Env::Staging, &raxx_testkit::sqlite_url(), "", options).await;
    let mut stream = tokio::net::TcpStream::connect(c.addr).await.unwrap();
    let started = Instant::now();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: staging.localhost\r\nX-Slow: ")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(
        TIMEOUT + Duration::from_secs(5),
        stream.read_to_end(&mut buf),
    )
    .await;
    let elapsed = started.elapsed();
    assert!(
        read.is_ok(),
        "the server kept the half-sent request open past the timeout"
    );
    assert!(
        elapsed >= TIMEOUT - Duration::from_millis(100),
        "closed too early: {elapsed:?}"
    );
    let text = String::from_utf8_lossy(&buf);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );
    // The console still serves everyone else.
    let ok = c.client().get(c.url("/healthz")).send().await.unwrap();
    assert_eq!(ok.status(), 200);
}
