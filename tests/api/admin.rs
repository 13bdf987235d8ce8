//! The admin API: tokens, products, licenses, listing.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn admin_routes_need_a_valid_token_in_any_of_three_forms() {
    let app = spawn_app().await;
    let url = app.url("/v1/products");
    let no_token = app.send(app.client.get(&url)).await;
    assert_eq!(no_token.status, StatusCode::UNAUTHORIZED);
    assert_eq!(no_token.error_code(), "unauthorized");
    let wrong = app
        .send(app.client.get(&url).bearer_auth("lsd_wrong"))
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let wrong_header = app
        .send(app.client.get(&url).header("x-api-key", "nope"))
        .await;
    assert_eq!(wrong_header.status, StatusCode::UNAUTHORIZED);

    let bearer = app
        .send(app.client.get(&url).bearer_auth(&app.admin_token))
        .await;
    let header = app
        .send(app.client.get(&url).header("x-api-key", &app.admin_token))
        .await;
    let query = app
        .send(app.client.get(format!("{url}?api_key={}", app.admin_token)))
        .await;
    for reply in [bearer, header, query] {
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert_eq!(reply.body, json!({ "data": [] }));
    }

    // A token is refused before its body is read: no product is created.
    let reply = app
        .send(app.client.post(&url).json(&json!({ "name": "X" })))
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.admin_get("/v1/products").await.body["data"], json!([]));
}

#[tokio::test]
async fn a_bad_token_is_401_whatever_the_body_says() {
    let app = spawn_app().await;
    let key = app.license_with_seats(1).await;
    // A body that is not JSON, one of the wrong shape, and none at all, on every kind of
    // admin route (create, change, a webhook endpoint): the token is judged first.
    let bodies = ["{not json", r#"{"max_activations":"many"}"#, ""];
    let routes = [
        (reqwest::Method::POST, app.url("/v1/products")),
        (
            reqwest::Method::PATCH,
            app.url(&format!("/v1/licenses/{key}")),
        ),
        (reqwest::Method::POST, app.url("/v1/webhook-endpoints")),
    ];
    for (method, url) in &routes {
        for body in bodies {
            for token in [Some("lsd_wrong"), None] {
                let mut req = app
                    .client
                    .request(method.clone(), url)
                    .header("content-type", "application/json")
                    .body(body.to_owned());
                if let Some(t) = token {
                    req = req.bearer_auth(t);
                }
                let reply = app.send(req).await;
                assert_eq!(
                    (reply.status, reply.error_code()),
                    (StatusCode::UNAUTHORIZED, "unauthorized"),
                    "{method} {url} with {body:?} and token {token:?}: {}",
                    reply.body
                );
            }
        }
    }
    // With the right token the same malformed body is the client's error to fix.
    let reply = app
        .send(
            app.client
                .post(app.url("/v1/products"))
                .bearer_auth(&app.admin_token)
                .header("content-type", "application/json")
                .body("{not json"),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
}

#[tokio::test]
async fn revoked_tokens_are_refused() {
    let app = spawn_app().await;
    app.db(|conn| {
        use diesel::connection::SimpleConnection;
        conn.batch_execute("UPDATE api_keys SET revoked_at = now()")
            .unwrap()
    })
    .await;
    assert_eq!(
        app.admin_get("/v1/products").await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn products_are_created_read_and_patched() {
    let app = spawn_app().await;
    let created = app
        .create_product(json!({
            "name": "My App Pro", "stripe_price_ids": ["price_A", "price_B"],
            "max_activations": 3, "duration_days": 365, "key_prefix": "myapp"
        }))
        .await;
    assert_eq!(created["slug"], "my-app-pro");
    assert_eq!(created["key_prefix"], "MYAPP");
    assert_eq!(created["stripe_price_ids"], json!(["price_A", "price_B"]));
    let id = created["id"].as_str().unwrap();

    let by_slug = app.admin_get("/v1/products/my-app-pro").await;
    assert_eq!(by_slug.status, StatusCode::OK);
    assert_eq!(by_slug.body["id"], id);
    assert_eq!(
        app.admin_get(&format!("/v1/products/{id}")).await.body["slug"],
        "my-app-pro"
    );
    assert_eq!(
        app.admin_get("/v1/products/nope").await.status,
        StatusCode::NOT_FOUND
    );

    let patched = app
        .admin_patch(
            &format!("/v1/products/{id}"),
            &json!({ "max_activations": null, "stripe_price_ids": ["price_C"] }),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    assert_eq!(patched.body["max_activations"], json!(null));
    assert_eq!(patched.body["duration_days"], 365);
    assert_eq!(patched.body["stripe_price_ids"], json!(["price_C"]));

    // Conflicts: slug and price already taken.
    let dup = app
        .admin_post(
            "/v1/products",
            &json!({ "name": "Other", "slug": "my-app-pro" }),
        )
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    assert_eq!(dup.error_code(), "slug_taken");
    let price = app
        .admin_post(
            "/v1/products",
            &json!({ "name": "Other", "stripe_price_ids": ["price_C"] }),
        )
        .await;
    assert_eq!(price.status, StatusCode::CONFLICT);
    assert_eq!(price.error_code(), "price_already_mapped");
    assert_eq!(
        app.admin_get("/v1/products").await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "conflicts change nothing"
    );

    // Invalid fields are 422 and name the field.
    for (body, field) in [
        (json!({ "name": "" }), "name"),
        (
            json!({ "name": "A", "max_activations": -1 }),
            "max_activations",
        ),
        (
            json!({ "name": "A", "key_prefix": "has space" }),
            "key_prefix",
        ),
        (json!({ "name": "A", "slug": "Bad Slug!" }), "slug"),
        (json!({ "name": "A", "duration_days": 0 }), "duration_days"),
        (json!({ "name": "A", "colour": "red" }), "colour"),
    ] {
        let reply = app.admin_post("/v1/products", &body).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(
            reply.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains(field),
            "{}",
            reply.body
        );
    }
}

#[tokio::test]
async fn licenses_take_product_defaults_and_overrides() {
    let app = spawn_app().await;
    app.create_product(json!({ "name": "Tool", "slug": "tool", "max_activations": 3, "duration_days": 30, "key_prefix": "TOOL" }))
        .await;
    let license = app
        .create_license(
            "tool",
            json!({ "name": "Ada", "metadata": { "plan": "pro" } }),
        )
        .await;
    let key = license["key"].as_str().unwrap();
    assert!(
        key.starts_with("TOOL-") && key.len() == "TOOL-".len() + 29,
        "{key}"
    );
    assert_eq!(license["max_activations"], 3);
    assert_eq!(license["source"], "manual");
    assert_eq!(license["status"], "active");
    assert_eq!(license["metadata"], json!({ "plan": "pro" }));
    let expires =
        chrono::DateTime::parse_from_rfc3339(license["expires_at"].as_str().unwrap()).unwrap();
    let days = (expires.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_days();
    assert!((29..=30).contains(&days), "{days}");

    let custom = app
        .create_license(
            "tool",
            json!({ "max_activations": null, "expires_at": null }),
        )
        .await;
    assert_eq!(custom["max_activations"], json!(null));
    assert_eq!(custom["expires_at"], json!(null));

    let detail = app
        .admin_get(&format!("/v1/licenses/{}", license["id"].as_str().unwrap()))
        .await;
    assert_eq!(
        detail.body["customer"],
        json!({ "email": "buyer@example.com", "name": "Ada" })
    );
    assert_eq!(detail.body["activations"], json!([]));

    let bad = app
        .admin_post(
            "/v1/licenses",
            &json!({ "product": "nope", "email": "a@b.c" }),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("product"));
    let bad = app
        .admin_post(
            "/v1/licenses",
            &json!({ "product": "tool", "email": "not-an-email" }),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("email"));
    let bad = app
        .admin_patch(
            &format!("/v1/licenses/{key}"),
            &json!({ "status": "expired" }),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        app.admin_get("/v1/licenses/AAAAA-BBBBB-CCCCC-DDDDD-EEEEE")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn creating_a_license_queues_its_email_unless_told_not_to() {
    let app = spawn_app().await;
    app.create_product(json!({ "name": "Tool", "slug": "tool" }))
        .await;
    app.admin_post(
        "/v1/licenses",
        &json!({ "product": "tool", "email": "a@example.com" }),
    )
    .await;
    app.create_license("tool", json!({})).await; // send_email: false
    let queued: Vec<String> = app
        .db(|conn| {
            use diesel::prelude::*;
            use licensd::db::schema::email_outbox::dsl::*;
            email_outbox.select(recipient).load(conn).unwrap()
        })
        .await;
    assert_eq!(queued, ["a@example.com"]);
}

#[tokio::test]
async fn license_list_pages_and_filters() {
    let app = spawn_app().await;
    app.create_product(json!({ "name": "A", "slug": "a" }))
        .await;
    app.create_product(json!({ "name": "B", "slug": "b" }))
        .await;
    for i in 0..5 {
        app.create_license("a", json!({ "email": format!("user{i}@example.com") }))
            .await;
    }
    let b = app
        .create_license("b", json!({ "email": "User0@Example.com" }))
        .await;
    let b_key = b["key"].as_str().unwrap();
    app.admin_patch(
        &format!("/v1/licenses/{b_key}"),
        &json!({ "status": "suspended" }),
    )
    .await;
    let expired = app
        .create_license(
            "a",
            json!({ "email": "old@example.com", "expires_at": "2020-01-01T00:00:00Z" }),
        )
        .await;

    let all = app.admin_get("/v1/licenses").await;
    assert_eq!(all.status, StatusCode::OK);
    assert_eq!(
        (
            all.body["total"].as_i64(),
            all.body["page"].as_i64(),
            all.body["per_page"].as_i64()
        ),
        (Some(7), Some(1), Some(50))
    );

    let page1 = app.admin_get("/v1/licenses?per_page=3&page=1").await.body;
    let page3 = app.admin_get("/v1/licenses?per_page=3&page=3").await.body;
    assert_eq!(page1["data"].as_array().unwrap().len(), 3);
    assert_eq!(page3["data"].as_array().unwrap().len(), 1);
    assert_eq!(page1["total"], 7);
    let mut seen: Vec<String> = Vec::new();
    for p in 1..=3 {
        let body = app
            .admin_get(&format!("/v1/licenses?per_page=3&page={p}"))
            .await
            .body;
        seen.extend(
            body["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["id"].as_str().unwrap().to_owned()),
        );
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 7, "pages neither repeat nor skip");

    let by_product = app.admin_get("/v1/licenses?product=b").await.body;
    assert_eq!(by_product["total"], 1);
    assert_eq!(by_product["data"][0]["key"], b_key);
    let by_email = app
        .admin_get("/v1/licenses?email=user0@example.com")
        .await
        .body;
    assert_eq!(by_email["total"], 2, "email filter ignores case");
    let suspended = app.admin_get("/v1/licenses?status=suspended").await.body;
    assert_eq!(suspended["total"], 1);
    let expired_list = app.admin_get("/v1/licenses?status=expired").await.body;
    assert_eq!(expired_list["total"], 1);
    assert_eq!(expired_list["data"][0]["id"], expired["id"]);
    assert_eq!(
        app.admin_get("/v1/licenses?status=active").await.body["total"],
        5
    );
    let combined = app
        .admin_get("/v1/licenses?product=a&status=active&email=user3@example.com")
        .await
        .body;
    assert_eq!(combined["total"], 1);

    for bad in [
        "status=bogus",
        "per_page=0",
        "per_page=1000",
        "page=0",
        "page=1531494020106099200",
        "product=nope",
    ] {
        let reply = app.admin_get(&format!("/v1/licenses?{bad}")).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
    assert_eq!(
        app.admin_get("/v1/licenses?page=abc").await.status,
        StatusCode::BAD_REQUEST
    );
}
