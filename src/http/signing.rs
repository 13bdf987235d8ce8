//! Signed answers: middleware that signs every response of the routes it wraps with the
//! server's Ed25519 key, and echoes the request's `nonce` into the signed JSON body.
//!
//! The `Licensd-Signature` header is `v=2,keyid=..,alg=ed25519,ts=..,sig=..`; the signed
//! string (which hashes the request body too) is documented in
//! `licensd_client::signing_string` and docs/verifying.md.
//! Wrap any public route group with it: `web::scope("/api").wrap(Signed)`.

use std::future::{ready, Future, Ready};
use std::pin::Pin;
use std::rc::Rc;

use actix_web::body::{self, BoxBody, MessageBody};
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{web, FromRequest, HttpMessage, ResponseError};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::State;
use crate::error::AppError;

/// Longest accepted `nonce`.
pub const MAX_NONCE_CHARS: usize = 128;

/// The signing middleware. See the module docs.
#[derive(Debug, Clone, Copy)]
pub struct Signed;

impl<S, B> Transform<S, ServiceRequest> for Signed
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = actix_web::Error;
    type Transform = SignedService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(SignedService {
            service: Rc::new(service),
        }))
    }
}

pub struct SignedService<S> {
    service: Rc<S>,
}

#[derive(Deserialize)]
struct NonceField {
    nonce: Option<serde_json::Value>,
}

/// The nonce of a request: the `nonce` query parameter, else the `nonce` field of a JSON
/// object body. Not a string of 1 to 128 visible characters: 422.
fn find_nonce(query: &str, body: &[u8]) -> Result<Option<String>, AppError> {
    let raw = url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "nonce")
        .map(|(_, v)| serde_json::Value::String(v.into_owned()))
        .or_else(|| {
            serde_json::from_slice::<NonceField>(body)
                .ok()
                .and_then(|f| f.nonce)
        });
    match raw {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s))
            if (1..=MAX_NONCE_CHARS).contains(&s.chars().count())
                && !s.chars().any(char::is_control) =>
        {
            Ok(Some(s))
        }
        Some(_) => Err(AppError::invalid(
            "nonce",
            format!("must be a string of 1 to {MAX_NONCE_CHARS} visible characters"),
        )),
    }
}

/// Puts `nonce` into a JSON object body; other bodies are left as they are.
fn echo_nonce(body: &[u8], nonce: &str) -> Option<Vec<u8>> {
    let mut value: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(body).ok()?;
    value.insert("nonce".into(), nonce.into());
    serde_json::to_vec(&value).ok()
}

impl<S, B> Service<ServiceRequest> for SignedService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>>>>;

    actix_web::dev::forward_ready!(service);

    fn call(&self, mut req: ServiceRequest) -> Self::Future {
        let service = self.service.clone();
        Box::pin(async move {
            let Some(state) = req.app_data::<web::Data<State>>().cloned() else {
                return Err(AppError::internal("signing middleware without app state").into());
            };
            let method = req.method().as_str().to_owned();
            let path = req
                .uri()
                .path_and_query()
                .map_or_else(|| req.path().to_owned(), |pq| pq.as_str().to_owned());

            // The body is read here (to find the nonce and hash it into the signature, which
            // binds the answer to this request) and handed on unchanged.
            let mut request_sha256 = Sha256::digest(b"").to_vec();
            let mut payload = req.take_payload();
            let outcome = match web::Bytes::from_request(req.request(), &mut payload).await {
                Ok(bytes) => {
                    request_sha256 = Sha256::digest(&bytes).to_vec();
                    let nonce = find_nonce(req.query_string(), &bytes);
                    req.set_payload(Payload::from(bytes));
                    nonce
                }
                Err(e) => Err(super::extract::body_error(req.request(), &e)),
            };
            let (res, nonce) = match outcome {
                Ok(nonce) => (service.call(req).await?.map_into_boxed_body(), nonce),
                Err(e) => {
                    let res = e.error_response();
                    (req.into_response(res), None)
                }
            };

            let (http_req, res) = res.into_parts();
            let status = res.status().as_u16();
            let (mut head, body) = res.into_parts();
            // The body is signed and sent as it is (no copy), unless a nonce is echoed into it.
            let mut bytes = body::to_bytes(body)
                .await
                .map_err(|e| AppError::internal(e.to_string()))?;
            if let Some(nonce) = &nonce {
                if let Some(echoed) = echo_nonce(&bytes, nonce) {
                    bytes = echoed.into();
                }
            }
            let timestamp = chrono::Utc::now().timestamp();
            let signature = state.signer.get().sign_response(
                timestamp,
                &method,
                &path,
                &request_sha256,
                status,
                &bytes,
            );
            let headers = head.headers_mut();
            headers.insert(
                HeaderName::from_static("licensd-signature"),
                HeaderValue::from_str(&signature).map_err(AppError::internal)?,
            );
            headers.remove(header::CONTENT_LENGTH);
            let res = head.set_body(BoxBody::new(bytes));
            Ok(ServiceResponse::new(http_req, res))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::licensing::signing::SIGNATURE_HEADER;
    use proptest::prelude::*;

    #[test]
    fn the_header_is_the_one_the_client_crate_reads() {
        assert!(SIGNATURE_HEADER.eq_ignore_ascii_case("licensd-signature"));
    }

    #[test]
    fn nonce_comes_from_the_query_or_the_body() {
        assert_eq!(
            find_nonce("nonce=abc", b"{}").unwrap().as_deref(),
            Some("abc")
        );
        assert_eq!(
            find_nonce("", br#"{"key":"k","nonce":"n-1"}"#)
                .unwrap()
                .as_deref(),
            Some("n-1")
        );
        assert_eq!(find_nonce("", br#"{"nonce":null}"#).unwrap(), None);
        assert_eq!(find_nonce("", b"not json").unwrap(), None);
        for bad in [
            r#"{"nonce":""}"#,
            r#"{"nonce":5}"#,
            r#"{"nonce":"a\u0000"}"#,
        ] {
            assert!(find_nonce("", bad.as_bytes()).is_err(), "{bad}");
        }
        let long = format!(r#"{{"nonce":"{}"}}"#, "x".repeat(MAX_NONCE_CHARS + 1));
        assert!(find_nonce("", long.as_bytes()).is_err());
    }

    #[test]
    fn the_nonce_is_echoed_into_json_objects_only() {
        let out = echo_nonce(br#"{"valid":true}"#, "n").unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v, serde_json::json!({"valid": true, "nonce": "n"}));
        assert_eq!(echo_nonce(b"[1]", "n"), None);
        assert_eq!(echo_nonce(b"text", "n"), None);
    }

    proptest! {
        #[test]
        fn nonce_parsing_never_panics(q in "\\PC{0,40}", body in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = find_nonce(&q, &body);
            let _ = echo_nonce(&body, "n");
        }

        #[test]
        fn any_visible_nonce_round_trips(n in "[!-~]{1,128}") {
            let body = serde_json::to_vec(&serde_json::json!({ "nonce": n })).unwrap();
            prop_assert_eq!(find_nonce("", &body).unwrap(), Some(n.clone()));
            let echoed = echo_nonce(b"{}", &n).unwrap();
            let v: serde_json::Value = serde_json::from_slice(&echoed).unwrap();
            prop_assert_eq!(v["nonce"].as_str(), Some(n.as_str()));
        }
    }
}
