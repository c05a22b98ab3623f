//! The stdio framing in front of rmcp: newline-delimited JSON-RPC from the client is passed to
//! rmcp line by line, except lines that are not JSON at all (answered here with a JSON-RPC
//! parse error, `-32700`, which rmcp would silently drop) and lines longer than
//! [`MAX_LINE`] (answered with `-32600` and discarded). Everything written to the client goes
//! through one writer, a whole line at a time.

use serde_json::json;
use tokio::io::{
    AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, DuplexStream,
    ReadHalf, WriteHalf,
};
use tokio::sync::mpsc;

/// The longest message accepted from the client, in bytes.
pub(crate) const MAX_LINE: usize = 4 * 1024 * 1024;

/// A JSON-RPC error response without an id (the request's id could not be read).
fn error_line(code: i64, message: &str) -> String {
    json!({"jsonrpc": "2.0", "id": null, "error": {"code": code, "message": message}}).to_string()
}

/// Copies the client's messages into rmcp's end until the client closes its input, answering
/// unparsable and oversized lines through `errors`. Closes rmcp's input at the end.
pub(crate) async fn inbound<R: AsyncRead + Unpin>(
    input: R,
    mut to_rmcp: WriteHalf<DuplexStream>,
    errors: mpsc::Sender<String>,
) -> std::io::Result<()> {
    let mut input = BufReader::new(input);
    let mut line = Vec::new();
    let limit = u64::try_from(MAX_LINE).unwrap_or(u64::MAX);
    loop {
        line.clear();
        let n = (&mut input).take(limit + 1).read_until(b'\n', &mut line).await?;
        if n == 0 {
            break;
        }
        if line.len() > MAX_LINE {
            // Discard the rest of the line.
            let mut rest = Vec::new();
            loop {
                rest.clear();
                let n = (&mut input).take(limit).read_until(b'\n', &mut rest).await?;
                if n == 0 || rest.ends_with(b"\n") {
                    break;
                }
            }
            let message = format!("message longer than {MAX_LINE} bytes");
            if errors.send(error_line(-32600, &message)).await.is_err() {
                break;
            }
            continue;
        }
        let text = line.trim_ascii();
        if text.is_empty() {
            continue;
        }
        match serde_json::from_slice::<serde::de::IgnoredAny>(text) {
            Err(e) if e.is_syntax() || e.is_eof() => {
                let message = format!("parse error: {e}");
                if errors.send(error_line(-32700, &message)).await.is_err() {
                    break;
                }
            }
            _ => {
                to_rmcp.write_all(text).await?;
                to_rmcp.write_all(b"\n").await?;
                to_rmcp.flush().await?;
            }
        }
    }
    to_rmcp.shutdown().await
}

/// Writes rmcp's messages and the framing's error answers to the client, one whole line at a
/// time, until rmcp closes its output.
pub(crate) async fn outbound<W: AsyncWrite + Unpin>(
    from_rmcp: ReadHalf<DuplexStream>,
    mut output: W,
    mut errors: mpsc::Receiver<String>,
) -> std::io::Result<()> {
    let mut lines = BufReader::new(from_rmcp).lines();
    let mut errors_open = true;
    loop {
        let line = tokio::select! {
            // Both branches are cancel-safe: `next_line` keeps a partial line for the next call.
            line = lines.next_line() => match line? {
                Some(line) => line,
                None => break,
            },
            error = errors.recv(), if errors_open => match error {
                Some(line) => line,
                None => {
                    errors_open = false;
                    continue;
                }
            },
        };
        output.write_all(line.as_bytes()).await?;
        output.write_all(b"\n").await?;
        output.flush().await?;
    }
    output.flush().await
}
