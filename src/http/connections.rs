//! Slow and hoarding clients: a deadline on receiving a request body, and a cap on the
//! connections one address holds open. Together with actix's own header deadline
//! (`client_request_timeout`) they keep a flood of stalled connections from using up
//! the process's file descriptors: a connection past the cap is answered `429` and
//! closed as soon as its headers arrive, one within it gets `408` and is closed when
//! its body stalls past [`BodyDeadline`]. Trusted proxies (a load balancer, which
//! carries every client) are not capped.

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Extensions, Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpMessage, HttpResponse};
use futures_util::Stream;

use super::error::error_body;
use super::limits::IpNet;

/// Open connections per client address, shared by every worker of the process.
#[derive(Debug)]
pub struct ConnectionCap {
    per_ip: usize,
    trusted: Vec<IpNet>,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// Held in a connection's data for as long as it is open; counts it out when dropped.
struct Held {
    cap: Arc<ConnectionCap>,
    ip: IpAddr,
    /// This connection went past the cap: its requests are refused.
    over: bool,
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut open = self.cap.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

impl ConnectionCap {
    /// `per_ip` 0: no cap.
    pub fn new(per_ip: usize, trusted: Vec<IpNet>) -> Arc<Self> {
        Arc::new(ConnectionCap {
            per_ip,
            trusted,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// For `HttpServer::on_connect`: counts the new connection in.
    pub fn on_connect(self: &Arc<Self>, conn: &dyn Any, data: &mut Extensions) {
        if self.per_ip == 0 {
            return;
        }
        let Some(ip) = conn
            .downcast_ref::<actix_web::rt::net::TcpStream>()
            .and_then(|s| s.peer_addr().ok())
            .map(|a| a.ip())
        else {
            return;
        };
        if self.trusted.iter().any(|n| n.contains(ip)) {
            return;
        }
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(ip).or_insert(0);
        *n += 1;
        let over = *n > self.per_ip;
        drop(open);
        data.insert(Held {
            cap: self.clone(),
            ip,
            over,
        });
    }
}

/// Refuses every request of a connection past its address's cap, and closes it.
pub async fn refuse_over_cap(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    if let Some(cap) = req
        .conn_data::<Held>()
        .filter(|h| h.over)
        .map(|h| h.cap.per_ip)
    {
        let message = format!(
            "too many open connections from this address (at most {cap}); close some and retry"
        );
        let res = HttpResponse::TooManyRequests()
            .insert_header(("retry-after", "1"))
            .force_close()
            .json(error_body("too_many_connections", &message));
        return Ok(req.into_response(res));
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

/// How long a request body may take to arrive once the headers are in.
#[derive(Debug, Clone, Copy)]
pub struct BodyDeadline(pub Duration);

/// Puts the deadline on the request's body: past it, reading the body fails with a
/// timeout (a `408` from the extractors) and the connection is closed.
pub async fn body_deadline(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    if let Some(deadline) = req.app_data::<web::Data<BodyDeadline>>().map(|d| d.0) {
        let payload = req.take_payload();
        let timed: Pin<Box<dyn Stream<Item = Result<web::Bytes, PayloadError>>>> =
            Box::pin(Deadline {
                payload,
                sleep: Box::pin(tokio::time::sleep(deadline)),
            });
        req.set_payload(Payload::from(timed));
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

struct Deadline {
    payload: Payload,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl Stream for Deadline {
    type Item = Result<web::Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Poll::Ready(item) = Pin::new(&mut self.payload).poll_next(cx) {
            return Poll::Ready(item);
        }
        match self.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the request body did not arrive in time",
            ))))),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Whether a payload error is the body deadline.
pub fn is_timeout(e: &PayloadError) -> bool {
    matches!(e, PayloadError::Io(io) if io.kind() == std::io::ErrorKind::TimedOut)
}
