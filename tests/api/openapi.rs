//! `GET /openapi.json`. Each route is declared once (`http::routes`): its path, methods
//! and answers come from its handler's `#[utoipa::path]`, so the document and the
//! registration cannot differ. What that cannot guarantee is checked here: that each
//! documented route really reaches its handler (not shadowed by another route, e.g. a
//! `{param}` one registered before it), and that request bodies are described.

use reqwest::{Method, StatusCode};

use crate::helpers::spawn_app;

#[tokio::test]
async fn every_documented_route_is_served() {
    let app = spawn_app().await;
    let doc = app.get("/openapi.json").await;
    assert_eq!(doc.status, StatusCode::OK);
    assert!(doc.body["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(doc.body["servers"][0]["url"], app.settings.public_url);

    let mut documented = Vec::new();
    for (path, item) in doc.body["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                documented.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    assert!(documented.len() > 40, "{documented:?}");
    // The license routes document what their door answers, compat ones included.
    for path in [
        "/v1/licenses/validate",
        "/api/v2/licenses/validate",
        "/key/activate",
        "/",
    ] {
        let item = &doc.body["paths"][path];
        let op = item.get("post").or(item.get("get")).unwrap();
        assert!(op["responses"]["429"].is_object(), "{path}: {op}");
    }

    // Each listed route is really served: neither the unknown-route 404 nor a 405.
    for (method, path) in &documented {
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
