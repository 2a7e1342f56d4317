//! HTTP/1.1 over a bare socket, for what a client library would not send: half a
//! request line, a body that stops half-way.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The `host:port` of a base URL `http://host:port`.
pub fn addr(base: &str) -> &str {
    base.trim_start_matches("http://")
}

/// A connection to `base` on which `bytes` were sent.
pub async fn send(base: &str, bytes: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr(base)).await.expect("connect");
    stream
        .write_all(bytes.as_bytes())
        .await
        .expect("send a request");
    stream
}

/// Sends `bytes` on `conn` and reads the answer (5 s at most); `None` when the server
/// closed the connection instead.
pub async fn ask(conn: &mut TcpStream, bytes: &str) -> Option<Answer> {
    conn.write_all(bytes.as_bytes()).await.expect("send");
    answer(conn, Duration::from_secs(5)).await
}

/// [`ask`] on a new connection to `base`.
pub async fn exchange(base: &str, request: &str) -> Option<Answer> {
    let mut conn = TcpStream::connect(addr(base)).await.expect("connect");
    ask(&mut conn, request).await
}

/// The head of a `POST /v1/products` whose body will be `length` bytes.
pub fn product_head(length: usize) -> String {
    format!(
        "POST /v1/products HTTP/1.1\r\nHost: shop\r\nContent-Type: application/json\r\n\
         Content-Length: {length}\r\n\r\n"
    )
}

/// A product's JSON body.
pub fn product_body(sku: &str) -> String {
    format!(r#"{{"sku":"{sku}","name":"Slow","price_cents":100,"initial_stock":1}}"#)
}

/// An answer read off a socket.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// Header fields, names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl Answer {
    /// `response` read whole (its body as JSON, `null` when it is not).
    pub async fn of(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        let bytes = response.bytes().await.unwrap_or_default();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Self {
            status,
            headers,
            body,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one answer (its body by `Content-Length`) within `within`; `None` when the
/// server closed the connection first.
pub async fn answer(stream: &mut TcpStream, within: Duration) -> Option<Answer> {
    let read = async {
        let mut got = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&got[..end]).into_owned();
                let mut lines = head.split("\r\n");
                let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
                let headers: Vec<(String, String)> = lines
                    .filter_map(|l| l.split_once(':'))
                    .map(|(n, v)| (n.trim().to_lowercase(), v.trim().to_owned()))
                    .collect();
                let length: usize = headers
                    .iter()
                    .find(|(n, _)| n == "content-length")
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or(0);
                if got.len() >= end + 4 + length {
                    let text = String::from_utf8_lossy(&got[end + 4..end + 4 + length]);
                    let body = serde_json::from_str(&text)
                        .unwrap_or_else(|_| Value::String(text.into_owned()));
                    return Some(Answer {
                        status,
                        headers,
                        body,
                    });
                }
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => got.extend_from_slice(&chunk[..n]),
            }
        }
    };
    tokio::time::timeout(within, read)
        .await
        .expect("an answer or the connection closed in time")
}

/// Whether the server closed `stream` (end of file or reset) within `within`, reading
/// and discarding anything it sent first.
pub async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut chunk = [0u8; 4096];
    tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}
