//! NUL characters in the URL: Postgres holds them in neither `text` nor `jsonb`, so
//! a `%00` in a path id or a query parameter would reach a query and fail there as a
//! 500. Every request is checked before routing; one that carries a NUL is a 422 that
//! names the parameter (`email`, `product`, or the path's `{license}`...).

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::Error;

use super::extract::NUL_PROBLEM;
use crate::error::AppError;

pub async fn reject(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    if let Some(field) = nul_in_query(req.query_string()).or_else(|| nul_in_path(&req)) {
        let (req, _) = req.into_parts();
        let res = actix_web::ResponseError::error_response(&AppError::invalid(field, NUL_PROBLEM));
        return Ok(ServiceResponse::new(req, res));
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

/// The first query parameter whose name or value holds a NUL.
fn nul_in_query(query: &str) -> Option<String> {
    if !query.contains("%00") && !query.contains('\0') {
        return None;
    }
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, v)| k.contains('\0') || v.contains('\0'))
        .map(|(k, _)| k.replace('\0', "\\u0000"))
}

/// The path parameter (by the route's pattern) whose segment holds a NUL.
fn nul_in_path(req: &ServiceRequest) -> Option<String> {
    let path = req.path();
    if !path.contains("%00") && !path.contains('\0') {
        return None;
    }
    let index = path
        .split('/')
        .position(|segment| percent_decode(segment).contains(&0))?;
    let name = req.match_pattern().and_then(|pattern| {
        let segment = pattern.split('/').nth(index)?;
        segment
            .strip_prefix('{')
            .and_then(|s| s.strip_suffix('}'))
            .map(|s| s.split(':').next().unwrap_or(s).to_owned())
    });
    Some(name.unwrap_or_else(|| "path".to_owned()))
}

fn percent_decode(segment: &str) -> Vec<u8> {
    url::form_urlencoded::parse(format!("x={}", segment.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned().into_bytes())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_query_parameter_holding_a_nul() {
        assert_eq!(nul_in_query("page=1&email=a%00b"), Some("email".into()));
        assert_eq!(nul_in_query("pro%00duct=x"), Some("pro\\u0000duct".into()));
        assert_eq!(
            nul_in_query("email=a%2500b"),
            None,
            "an encoded percent sign is not a NUL"
        );
        assert_eq!(nul_in_query(""), None);
    }

    #[test]
    fn decodes_segments() {
        assert_eq!(percent_decode("a%00b"), b"a\0b");
        assert_eq!(percent_decode("a+b"), b"a+b");
    }
}
