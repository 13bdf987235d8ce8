//! Product rows and their Stripe price mapping.

use std::collections::HashMap;

use diesel::prelude::*;
use uuid::Uuid;

use super::models::{NewProduct, Product, ProductChanges, ProductPrice};
use super::schema::{product_prices, products};

pub fn insert(conn: &mut PgConnection, new: &NewProduct<'_>) -> QueryResult<Product> {
    diesel::insert_into(products::table)
        .values(new)
        .returning(Product::as_returning())
        .get_result(conn)
}

/// Replaces the product's price ids. A price mapped to another product violates the
/// primary key of `product_prices`, which the caller reports as a conflict.
pub fn set_prices(
    conn: &mut PgConnection,
    product_id: Uuid,
    price_ids: &[String],
) -> QueryResult<()> {
    diesel::delete(product_prices::table.filter(product_prices::product_id.eq(product_id)))
        .execute(conn)?;
    let rows: Vec<ProductPrice> = price_ids
        .iter()
        .map(|p| ProductPrice {
            stripe_price_id: p.clone(),
            product_id,
        })
        .collect();
    diesel::insert_into(product_prices::table)
        .values(&rows)
        .execute(conn)?;
    Ok(())
}

/// Price ids per product, in a stable order.
pub fn prices_of(
    conn: &mut PgConnection,
    product_ids: &[Uuid],
) -> QueryResult<HashMap<Uuid, Vec<String>>> {
    let rows: Vec<ProductPrice> = product_prices::table
        .filter(product_prices::product_id.eq_any(product_ids))
        .order(product_prices::stripe_price_id)
        .select(ProductPrice::as_select())
        .load(conn)?;
    let mut map: HashMap<Uuid, Vec<String>> = HashMap::new();
    for row in rows {
        map.entry(row.product_id)
            .or_default()
            .push(row.stripe_price_id);
    }
    Ok(map)
}

/// Looks a product up by id or by slug.
pub fn find(conn: &mut PgConnection, id_or_slug: &str) -> QueryResult<Option<Product>> {
    let query = products::table.select(Product::as_select()).into_boxed();
    let query = match Uuid::parse_str(id_or_slug) {
        Ok(id) => query.filter(products::id.eq(id)),
        Err(_) => query.filter(products::slug.eq(id_or_slug.to_ascii_lowercase())),
    };
    query.first(conn).optional()
}

pub fn list(conn: &mut PgConnection) -> QueryResult<Vec<Product>> {
    products::table
        .order((products::created_at, products::id))
        .select(Product::as_select())
        .load(conn)
}

pub fn update(conn: &mut PgConnection, id: Uuid, changes: &ProductChanges) -> QueryResult<Product> {
    diesel::update(products::table.find(id))
        .set(changes)
        .returning(Product::as_returning())
        .get_result(conn)
}

/// The product a Stripe price is mapped to, if any.
pub fn by_price(conn: &mut PgConnection, price_id: &str) -> QueryResult<Option<Product>> {
    product_prices::table
        .inner_join(products::table)
        .filter(product_prices::stripe_price_id.eq(price_id))
        .select(Product::as_select())
        .first(conn)
        .optional()
}
