//! `GET /openapi.json` documents every route the server has, and nothing else.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};

use crate::helpers::spawn_app;

#[tokio::test]
async fn every_route_is_in_the_openapi_document_and_every_documented_route_exists() {
    let app = spawn_app().await;
    let doc = app.get("/openapi.json").await;
    assert_eq!(doc.status, StatusCode::OK);
    assert!(doc.body["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(doc.body["servers"][0]["url"], app.settings.public_url);

    let mut documented = BTreeSet::new();
    for (path, item) in doc.body["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                documented.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    let registered: BTreeSet<(String, String)> = licensd::http::routes()
        .into_iter()
        .map(|(m, p)| (m.to_owned(), p.to_owned()))
        .collect();
    let missing: Vec<_> = registered.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "routes missing from /openapi.json: {missing:?}"
    );
    let extra: Vec<_> = documented.difference(&registered).collect();
    assert!(
        extra.is_empty(),
        "documented but not in http::routes(): {extra:?}"
    );

    // Each listed route is really served: neither the unknown-route 404 nor a 405.
    for (method, path) in &registered {
        let concrete = path
            .split('/')
            .map(|s| if s.starts_with('{') { "x" } else { s })
            .collect::<Vec<_>>()
            .join("/");
        // WC Key Manager's API lives on `/` and is selected by its query parameter.
        let concrete = if concrete == "/" {
            "/?wckm-api=validate_key".to_owned()
        } else {
            concrete
        };
        let reply = app
            .send(
                app.client
                    .request(
                        Method::from_bytes(method.as_bytes()).unwrap(),
                        app.url(&concrete),
                    )
                    .body("{}"),
            )
            .await;
        assert_ne!(
            reply.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        let unknown_route = reply.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("no such route"));
        assert!(!unknown_route, "{method} {path} is not served");
    }
}

#[tokio::test]
async fn public_request_bodies_are_described() {
    let app = spawn_app().await;
    let doc = app.get("/openapi.json").await.body;
    let schema = &doc["components"]["schemas"]["ActivateBody"];
    let required: Vec<&str> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(required, ["key", "fingerprint"]);
    assert!(schema["properties"]["nonce"].is_object());
    assert!(doc["components"]["schemas"]["CheckoutBody"]["properties"]["ttl_days"].is_object());
}
