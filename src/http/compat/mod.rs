//! Drop-in endpoints for license clients written against other services
//! (CheckoutKeys, WC Key Manager, SellApp, Keymint), so a seller moving to licensd
//! changes only the base URL. Each module is a thin adapter: it reads that service's
//! request shape, asks `licensing::check` / `licensing::admin` (where every rule
//! lives), and answers in that service's shapes. Deviations: docs/compatibility.md.

mod checkoutkeys;
mod keymint;
mod keymint_key;
mod sellapp;
mod wckm;

use std::collections::HashMap;

use super::routes::Table;
use uuid::Uuid;

use crate::config::Settings;

/// Adds the adapters switched on in `settings` to the route table.
pub fn routes(t: &mut Table, settings: &Settings) {
    if settings.compat_checkoutkeys {
        checkoutkeys::routes(t);
    }
    if settings.compat_wckm {
        wckm::routes(t);
    }
    if settings.compat_sellapp {
        sellapp::routes(t);
    }
    if settings.compat_keymint {
        keymint::routes(t);
        keymint_key::routes(t);
    }
}

/// A stable integer for APIs that document numeric ids: the first 12 hex digits of
/// the UUID read as a number (48 bits, so exact in JavaScript too).
pub(crate) fn numeric_id(id: Uuid) -> u64 {
    (id.as_u128() >> 80) as u64
}

/// Form-encoded pairs (a query string or an `x-www-form-urlencoded` body); the last
/// of a repeated name wins, as in PHP.
pub(crate) fn form_params(input: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(input).into_owned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_ids_are_the_uuid_prefix() {
        let id = Uuid::parse_str("9ebd3be0-de72-4da7-805e-bc99d1ac1186").unwrap();
        assert_eq!(numeric_id(id), 0x9ebd_3be0_de72);
        assert!(numeric_id(Uuid::max()) < (1 << 53));
    }
}
