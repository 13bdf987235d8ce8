//! A real SMTP server on loopback, in the test process: enough of RFC 5321 for
//! lettre (greeting, EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT). It can be taken
//! "down" (it then answers 421 and hangs up) and brought back.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// One message as the server received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    /// The DATA section, dot-unstuffed, with CRLF line ends.
    pub data: String,
}

#[derive(Default)]
struct Inner {
    down: AtomicBool,
    /// Connections still to be accepted and then never answered (no greeting, nothing).
    silent_left: AtomicUsize,
    silent: AtomicUsize,
    refused: AtomicUsize,
    connections: AtomicUsize,
    /// Milliseconds the server waits before accepting a message's DATA.
    data_delay_ms: AtomicU64,
    receiving: AtomicUsize,
    peak_receiving: AtomicUsize,
    messages: Mutex<Vec<Received>>,
    arrived: Notify,
}

#[derive(Clone)]
pub struct SmtpServer {
    pub port: u16,
    inner: Arc<Inner>,
}

impl SmtpServer {
    pub async fn start() -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let inner = Arc::new(Inner::default());
        let state = inner.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = state.clone();
                tokio::spawn(async move {
                    let _ = session(stream, state).await;
                });
            }
        });
        SmtpServer { port, inner }
    }

    /// `smtp://127.0.0.1:PORT`: plain SMTP, as lettre reads the URL.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Down: every connection and command gets `421` and the connection is closed.
    pub fn set_down(&self, down: bool) {
        self.inner.down.store(down, Ordering::SeqCst);
    }

    /// The next `n` connections are accepted and then never answered: no greeting, no
    /// reply to anything, held open until the client gives up (`usize::MAX`: all).
    pub fn set_silent(&self, n: usize) {
        self.inner.silent_left.store(n, Ordering::SeqCst);
    }

    /// How many connections were accepted and left unanswered.
    pub fn silent_connections(&self) -> usize {
        self.inner.silent.load(Ordering::SeqCst)
    }

    /// How many connections or commands were refused while down.
    pub fn refused(&self) -> usize {
        self.inner.refused.load(Ordering::SeqCst)
    }

    /// How many connections were accepted (and greeted) while up.
    pub fn connections(&self) -> usize {
        self.inner.connections.load(Ordering::SeqCst)
    }

    /// Each message's DATA is held this long before it is accepted, so that
    /// concurrent deliveries overlap visibly.
    pub fn set_data_delay(&self, delay: Duration) {
        self.inner
            .data_delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// The most messages that were being received at the same time.
    pub fn peak_concurrent_messages(&self) -> usize {
        self.inner.peak_receiving.load(Ordering::SeqCst)
    }

    pub fn messages(&self) -> Vec<Received> {
        self.inner.messages.lock().unwrap().clone()
    }

    /// Waits until at least `n` messages arrived (or `timeout` passed) and returns them all.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let arrived = self.inner.arrived.notified();
            let messages = self.messages();
            if messages.len() >= n {
                return messages;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return self.messages();
            }
        }
    }
}

async fn session(stream: TcpStream, state: Arc<Inner>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    let refuse = |state: &Inner| {
        state.refused.fetch_add(1, Ordering::SeqCst);
        "421 4.3.2 test server is down\r\n"
    };
    if state.down.load(Ordering::SeqCst) {
        write.write_all(refuse(&state).as_bytes()).await?;
        return Ok(());
    }
    let silent = state
        .silent_left
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
    if silent.is_ok() {
        state.silent.fetch_add(1, Ordering::SeqCst);
        // Swallow whatever arrives and never answer, until the client hangs up.
        let mut sink = Vec::new();
        let _ = tokio::io::AsyncReadExt::read_to_end(&mut lines, &mut sink).await;
        drop(write);
        return Ok(());
    }
    state.connections.fetch_add(1, Ordering::SeqCst);
    write.write_all(b"220 localhost test ESMTP\r\n").await?;
    let mut from = String::new();
    let mut to = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_owned();
        let verb = command
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        if state.down.load(Ordering::SeqCst) && verb != "QUIT" {
            write.write_all(refuse(&state).as_bytes()).await?;
            return Ok(());
        }
        let reply: &str = match verb.as_str() {
            "EHLO" => "250-localhost\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n",
            "HELO" | "NOOP" => "250 OK\r\n",
            "RSET" => {
                from.clear();
                to.clear();
                "250 OK\r\n"
            }
            "MAIL" => {
                from = address(&command);
                to.clear();
                "250 OK\r\n"
            }
            "RCPT" => {
                to.push(address(&command));
                "250 OK\r\n"
            }
            "DATA" => {
                write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
                let mut data = String::new();
                loop {
                    line.clear();
                    if lines.read_line(&mut line).await? == 0 {
                        return Ok(());
                    }
                    let l = line.trim_end_matches(['\r', '\n']);
                    if l == "." {
                        break;
                    }
                    data.push_str(l.strip_prefix('.').unwrap_or(l));
                    data.push_str("\r\n");
                }
                let receiving = state.receiving.fetch_add(1, Ordering::SeqCst) + 1;
                state.peak_receiving.fetch_max(receiving, Ordering::SeqCst);
                let delay = state.data_delay_ms.load(Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(delay)).await;
                state.receiving.fetch_sub(1, Ordering::SeqCst);
                state.messages.lock().unwrap().push(Received {
                    from: std::mem::take(&mut from),
                    to: std::mem::take(&mut to),
                    data,
                });
                state.arrived.notify_waiters();
                "250 OK queued\r\n"
            }
            "QUIT" => {
                write.write_all(b"221 bye\r\n").await?;
                return Ok(());
            }
            _ => "502 command not implemented\r\n",
        };
        write.write_all(reply.as_bytes()).await?;
    }
}

/// `MAIL FROM:<a@b> SIZE=1` → `a@b`.
fn address(command: &str) -> String {
    match (command.find('<'), command.find('>')) {
        (Some(a), Some(b)) if a < b => command[a + 1..b].to_owned(),
        _ => String::new(),
    }
}
