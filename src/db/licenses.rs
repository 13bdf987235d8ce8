//! License rows: lookups by key (the hot path), listing, and the seat counter.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::models::{Activation, License, LicenseChanges, NewLicense, Product};
use super::schema::{activations, licenses, products};

pub fn insert(conn: &mut PgConnection, new: &NewLicense) -> QueryResult<License> {
    diesel::insert_into(licenses::table)
        .values(new)
        .returning(License::as_returning())
        .get_result(conn)
}

/// Looks a license up by id (a UUID) or by its normalised key.
pub fn find(conn: &mut PgConnection, id_or_key: &str) -> QueryResult<Option<(License, Product)>> {
    let query = licenses::table
        .inner_join(products::table)
        .select((License::as_select(), Product::as_select()))
        .into_boxed();
    let query = match Uuid::parse_str(id_or_key) {
        // An imported key may itself be a UUID (Lemon Squeezy's are).
        Ok(id) => query.filter(
            licenses::id
                .eq(id)
                .or(upper(licenses::key).eq(id_or_key.to_ascii_uppercase())),
        ),
        Err(_) => query.filter(upper(licenses::key).eq(id_or_key)),
    };
    query.first(conn).optional()
}

/// The validate hot path: license and product by key, and the activation the caller
/// names (by fingerprint or id), in one indexed read. Activation rows are read only when
/// a device is named, through the (license, fingerprint) index or the primary key: a
/// prepared `OR` of both would make Postgres read every activation of the license.
pub fn find_for_check(
    conn: &mut PgConnection,
    key: &str,
    fingerprint: Option<&str>,
    activation_id: Option<Uuid>,
) -> QueryResult<Option<(License, Product, Option<Activation>)>> {
    let base = licenses::table
        .inner_join(products::table)
        .filter(upper(licenses::key).eq(key));
    let select = (
        License::as_select(),
        Product::as_select(),
        Option::<Activation>::as_select(),
    );
    let on_license = activations::license_id.eq(licenses::id);
    match (fingerprint, activation_id) {
        (None, None) => Ok(base
            .select((License::as_select(), Product::as_select()))
            .first::<(License, Product)>(conn)
            .optional()?
            .map(|(l, p)| (l, p, None))),
        (Some(fp), None) => base
            .left_join(activations::table.on(on_license.and(activations::fingerprint.eq(fp))))
            .select(select)
            .first(conn)
            .optional(),
        (None, Some(id)) => base
            .left_join(activations::table.on(on_license.and(activations::id.eq(id))))
            .select(select)
            .first(conn)
            .optional(),
        (Some(fp), Some(id)) => base
            .left_join(
                activations::table
                    .on(on_license.and(activations::fingerprint.eq(fp).or(activations::id.eq(id)))),
            )
            .select(select)
            .first(conn)
            .optional(),
    }
}

diesel::define_sql_function!(fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text);
// `licenses_key_upper_unique` indexes `upper(key)`: look-ups ignore the case of imported keys.
diesel::define_sql_function!(fn upper(x: diesel::sql_types::Text) -> diesel::sql_types::Text);

/// What the admin list filters on. `status` is the effective status, so `expired`
/// and `active` are told apart by `expires_at` as of `now`.
#[derive(Debug, Default, Clone)]
pub struct ListFilter {
    pub product_id: Option<Uuid>,
    pub email: Option<String>,
    pub status: Option<String>,
    pub now: Option<DateTime<Utc>>,
}

fn filtered<'a>(f: &ListFilter) -> licenses::BoxedQuery<'a, diesel::pg::Pg> {
    let mut q = licenses::table.into_boxed();
    if let Some(p) = f.product_id {
        q = q.filter(licenses::product_id.eq(p));
    }
    if let Some(email) = &f.email {
        q = q.filter(lower(licenses::email).eq(email.to_lowercase()));
    }
    let now = f.now.unwrap_or_else(Utc::now);
    let live = licenses::expires_at
        .is_null()
        .or(licenses::expires_at.gt(now));
    match f.status.as_deref() {
        Some("active") => q = q.filter(licenses::status.eq("active")).filter(live),
        Some("expired") => {
            q = q
                .filter(licenses::status.eq("active"))
                .filter(licenses::expires_at.le(now))
        }
        Some(other) => q = q.filter(licenses::status.eq(other.to_owned())),
        None => {}
    }
    q
}

/// One page of licenses (newest first) and the total matching the filter.
pub fn list(
    conn: &mut PgConnection,
    f: &ListFilter,
    page: i64,
    per_page: i64,
) -> QueryResult<(Vec<(License, Product)>, i64)> {
    let total: i64 = filtered(f).count().get_result(conn)?;
    let ids: Vec<Uuid> = filtered(f)
        .order((licenses::created_at.desc(), licenses::id.desc()))
        .offset((page - 1) * per_page)
        .limit(per_page)
        .select(licenses::id)
        .load(conn)?;
    let mut rows: Vec<(License, Product)> = licenses::table
        .inner_join(products::table)
        .filter(licenses::id.eq_any(&ids))
        .select((License::as_select(), Product::as_select()))
        .load(conn)?;
    rows.sort_by_key(|(l, _)| std::cmp::Reverse((l.created_at, l.id)));
    Ok((rows, total))
}

/// Locks the license row until the transaction ends (serialises changes to one license).
pub fn lock(conn: &mut PgConnection, id: Uuid) -> QueryResult<()> {
    licenses::table
        .find(id)
        .select(licenses::id)
        .for_update()
        .first::<Uuid>(conn)?;
    Ok(())
}

pub fn update(conn: &mut PgConnection, id: Uuid, changes: &LicenseChanges) -> QueryResult<License> {
    diesel::update(licenses::table.find(id))
        .set(changes)
        .returning(License::as_returning())
        .get_result(conn)
}

/// Takes one activation seat if the limit allows. The conditional UPDATE holds the
/// row lock, so concurrent callers on any instance are counted one at a time.
pub fn try_take_seat(conn: &mut PgConnection, id: Uuid) -> QueryResult<bool> {
    let updated = diesel::update(licenses::table.find(id))
        .filter(
            licenses::max_activations
                .is_null()
                .or(licenses::activations_count.lt(licenses::max_activations.assume_not_null())),
        )
        .set((
            licenses::activations_count.eq(licenses::activations_count + 1),
            licenses::updated_at.eq(Utc::now()),
        ))
        .execute(conn)?;
    Ok(updated == 1)
}

pub fn release_seat(conn: &mut PgConnection, id: Uuid) -> QueryResult<()> {
    release_seats(conn, id, 1)
}

/// Frees `n` seats at once (all devices of a license deactivated together).
pub fn release_seats(conn: &mut PgConnection, id: Uuid, n: i32) -> QueryResult<()> {
    diesel::update(licenses::table.find(id))
        .set((
            licenses::activations_count.eq(licenses::activations_count - n),
            licenses::updated_at.eq(Utc::now()),
        ))
        .execute(conn)?;
    Ok(())
}

/// A buyer's licenses (email without case), newest first, at most `limit`.
pub fn of_email(
    conn: &mut PgConnection,
    email: &str,
    limit: i64,
) -> QueryResult<Vec<(License, Product)>> {
    licenses::table
        .inner_join(products::table)
        .filter(lower(licenses::email).eq(email.to_lowercase()))
        .order((licenses::created_at.desc(), licenses::id.desc()))
        .limit(limit)
        .select((License::as_select(), Product::as_select()))
        .load(conn)
}

/// What the dashboard's one search box found the query to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchTerm {
    /// A license id.
    Id(Uuid),
    /// A whole key, normalised (the unique index serves it).
    Key(String),
    /// Part of a key, upper-case, at least 3 characters (a trigram index serves it).
    KeyPart(String),
    /// The start of an email address, lower-case (a prefix index serves it).
    EmailPrefix(String),
    CheckoutSession(String),
    PaymentIntent(String),
    Subscription(String),
    Customer(String),
}

/// Escapes LIKE's wildcards so user text matches literally.
fn like_literal(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// One page of licenses matching the filter and the search term, newest first, and
/// whether a next page exists (no total: counting a million rows is not worth it).
pub fn search(
    conn: &mut PgConnection,
    f: &ListFilter,
    term: Option<&SearchTerm>,
    page: i64,
    per_page: i64,
) -> QueryResult<(Vec<(License, Product)>, bool)> {
    let mut q = filtered(f);
    match term {
        None => {}
        Some(SearchTerm::Id(id)) => q = q.filter(licenses::id.eq(*id)),
        Some(SearchTerm::Key(key)) => q = q.filter(licenses::key.eq(key.clone())),
        Some(SearchTerm::KeyPart(part)) => {
            q = q.filter(licenses::key.like(format!("%{}%", like_literal(part))))
        }
        Some(SearchTerm::EmailPrefix(p)) => {
            q = q.filter(lower(licenses::email).like(format!("{}%", like_literal(p))))
        }
        Some(SearchTerm::CheckoutSession(s)) => {
            q = q.filter(licenses::stripe_checkout_session_id.eq(s.clone()))
        }
        Some(SearchTerm::PaymentIntent(s)) => {
            q = q.filter(licenses::stripe_payment_intent_id.eq(s.clone()))
        }
        Some(SearchTerm::Subscription(s)) => {
            q = q.filter(licenses::stripe_subscription_id.eq(s.clone()))
        }
        Some(SearchTerm::Customer(s)) => q = q.filter(licenses::stripe_customer_id.eq(s.clone())),
    }
    let ids: Vec<Uuid> = q
        .order((licenses::created_at.desc(), licenses::id.desc()))
        .offset((page - 1) * per_page)
        .limit(per_page + 1)
        .select(licenses::id)
        .load(conn)?;
    let more = ids.len() as i64 > per_page;
    let ids = &ids[..ids.len().min(per_page as usize)];
    let mut rows: Vec<(License, Product)> = licenses::table
        .inner_join(products::table)
        .filter(licenses::id.eq_any(ids))
        .select((License::as_select(), Product::as_select()))
        .load(conn)?;
    rows.sort_by_key(|(l, _)| std::cmp::Reverse((l.created_at, l.id)));
    Ok((rows, more))
}

#[derive(diesel::QueryableByName)]
pub struct DayCount {
    #[diesel(sql_type = diesel::sql_types::Date)]
    pub day: chrono::NaiveDate,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub n: i64,
}

/// Licenses created and devices activated per day (UTC) since `since`.
pub fn per_day(
    conn: &mut PgConnection,
    since: DateTime<Utc>,
) -> QueryResult<(Vec<DayCount>, Vec<DayCount>)> {
    use diesel::sql_types::Timestamptz;
    let sold = diesel::sql_query(
        "SELECT (created_at AT TIME ZONE 'UTC')::date AS day, count(*) AS n
         FROM licenses WHERE created_at >= $1 GROUP BY 1 ORDER BY 1",
    )
    .bind::<Timestamptz, _>(since)
    .load(conn)?;
    let activated = diesel::sql_query(
        "SELECT (created_at AT TIME ZONE 'UTC')::date AS day, count(*) AS n
         FROM activations WHERE created_at >= $1 GROUP BY 1 ORDER BY 1",
    )
    .bind::<Timestamptz, _>(since)
    .load(conn)?;
    Ok((sold, activated))
}

#[derive(diesel::QueryableByName, Debug, Default, Clone, serde::Serialize)]
pub struct StatusCounts {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub active: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub expired: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub suspended: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub revoked: i64,
}

/// Licenses by effective status.
pub fn status_counts(conn: &mut PgConnection) -> QueryResult<StatusCounts> {
    diesel::sql_query(
        "SELECT count(*) FILTER (WHERE status = 'active' AND (expires_at IS NULL OR expires_at > now())) AS active,
                count(*) FILTER (WHERE status = 'active' AND expires_at <= now()) AS expired,
                count(*) FILTER (WHERE status = 'suspended') AS suspended,
                count(*) FILTER (WHERE status = 'revoked') AS revoked
         FROM licenses",
    )
    .get_result(conn)
}

/// The license whose id starts with the 48 bits of `prefix` (the numeric ids of the
/// compatibility APIs): a range read on the primary key.
pub fn id_with_prefix(conn: &mut PgConnection, prefix: u64) -> QueryResult<Option<Uuid>> {
    let low = u128::from(prefix & 0xFFFF_FFFF_FFFF) << 80;
    let high = low | ((1u128 << 80) - 1);
    licenses::table
        .filter(licenses::id.between(Uuid::from_u128(low), Uuid::from_u128(high)))
        .order(licenses::id)
        .select(licenses::id)
        .first(conn)
        .optional()
}
