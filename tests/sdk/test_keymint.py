"""Keymint's official Python SDK (PyPI `keymint`, pinned in requirements.txt), unmodified,
against licensd: every license-key call it offers."""

import datetime

from keymint import KeyMint, KeyMintApiError

from harness import TOKEN, URL, detail, license, product, raises, run

sdk = KeyMint(TOKEN, base_url=URL)


def test_create_then_activate_get_and_deactivate():
    slug = product(seats=3)
    created = sdk.create_key({
        "productId": slug,
        "maxActivations": "2",
        "newCustomer": {"name": "Jane Doe", "email": "jane@example.com"},
        "metadata": {"plan": "pro"},
    })
    assert created["code"] == 0, created
    key = created["key"]
    assert detail(key)["max_activations"] == 2

    activated = sdk.activate_key({"productId": slug, "licenseKey": key, "hostId": "host-1", "deviceTag": "Laptop"})
    assert activated["code"] == 0 and activated["message"] == "License valid", activated
    assert activated["licenseeName"] == "Jane Doe"
    assert activated["licenseeEmail"] == "jane@example.com"
    assert activated["metadata"] == {"plan": "pro"}
    assert activated["expirationDate"] is None
    # The same host again takes no second seat.
    assert sdk.activate_key({"productId": slug, "licenseKey": key, "hostId": "host-1"})["code"] == 0
    assert detail(key)["activations_count"] == 1

    got = sdk.get_key({"productId": slug, "licenseKey": key})
    lic = got["data"]["license"]
    assert got["code"] == 0
    assert lic["key"] == key and lic["productId"] == slug
    assert lic["maxActivations"] == 2 and lic["activations"] == 1 and lic["activated"] is True
    assert [d["hostId"] for d in lic["devices"]] == ["host-1"]
    assert lic["devices"][0]["deviceTag"] == "Laptop"
    assert lic["devices"][0]["ipAddress"] == "127.0.0.1"
    assert got["data"]["customer"]["email"] == "jane@example.com"
    assert got["data"]["customer"]["active"] is True

    gone = sdk.deactivate_key({"productId": slug, "licenseKey": key, "hostId": "host-1"})
    assert gone == {"message": "Device deactivated", "code": 0, "devicesRemoved": 1}, gone
    assert detail(key)["activations_count"] == 0


def test_activation_without_host_id_takes_a_new_seat_each_time():
    slug = product(seats=2)
    key = license(slug)["key"]
    for _ in range(2):
        assert sdk.activate_key({"productId": slug, "licenseKey": key})["code"] == 0
    assert detail(key)["activations_count"] == 2
    full = raises(KeyMintApiError, sdk.activate_key, {"productId": slug, "licenseKey": key})
    assert full.status == 403 and full.message == "Activation limit reached", vars(full)
    # Deactivation without hostId frees every device.
    gone = sdk.deactivate_key({"productId": slug, "licenseKey": key})
    assert gone["devicesRemoved"] == 2 and gone["message"] == "All devices deactivated", gone


def test_expiry_is_reported_as_iso_8601():
    slug = product()
    key = license(slug, expires_at="2034-12-31T23:59:59Z")["key"]
    activated = sdk.activate_key({"productId": slug, "licenseKey": key, "hostId": "h"})
    assert activated["expirationDate"] == "2034-12-31T23:59:59Z", activated
    got = sdk.get_key({"productId": slug, "licenseKey": key})
    assert got["data"]["license"]["expirationDate"] == "2034-12-31T23:59:59Z"


def test_unknown_keys_and_other_products_are_errors():
    slug = product()
    key = license(slug)["key"]
    for call in (sdk.activate_key, sdk.deactivate_key, sdk.get_key):
        e = raises(KeyMintApiError, call, {"productId": slug, "licenseKey": "AAAAA-AAAAA-AAAAA-AAAAA-AAAAA"})
        assert e.status == 404 and e.code == 1 and e.message == "Invalid license key", vars(e)
    other = product()
    e = raises(KeyMintApiError, sdk.activate_key, {"productId": other, "licenseKey": key, "hostId": "h"})
    assert e.status == 404, vars(e)


def test_block_unblock_update_and_delete():
    slug = product()
    key = license(slug)["key"]
    assert sdk.block_key({"productId": slug, "licenseKey": key}) == {"message": "Key blocked", "code": 0}
    assert detail(key)["status"] == "suspended"
    e = raises(KeyMintApiError, sdk.activate_key, {"productId": slug, "licenseKey": key, "hostId": "h"})
    assert e.status == 403 and e.message == "License blocked", vars(e)
    assert sdk.unblock_key({"productId": slug, "licenseKey": key})["code"] == 0
    assert detail(key)["status"] == "active"

    future = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=30)).replace(microsecond=0)
    updated = sdk.update_key({
        "productId": slug,
        "licenseKey": key,
        "maxActivations": "9",
        "expiryDate": future.isoformat().replace("+00:00", "Z"),
        "metadata": {"seats": 9},
    })
    assert updated == {"message": "Key updated", "code": 0}, updated
    d = detail(key)
    assert d["max_activations"] == 9 and d["metadata"] == {"seats": 9}
    assert d["expires_at"].startswith(future.strftime("%Y-%m-%dT%H:%M:%S")), d["expires_at"]

    assert sdk.delete_key({"productId": slug, "licenseKey": key})["code"] == 0
    assert detail(key)["status"] == "revoked"
    e = raises(KeyMintApiError, sdk.activate_key, {"productId": slug, "licenseKey": key, "hostId": "h"})
    assert e.status == 403, vars(e)


def test_seller_calls_need_the_admin_token():
    slug = product()
    key = license(slug)["key"]
    stranger = KeyMint("not-a-token", base_url=URL)
    for call, params in (
        (stranger.get_key, {"productId": slug, "licenseKey": key}),
        (stranger.block_key, {"productId": slug, "licenseKey": key}),
        (stranger.create_key, {"productId": slug, "newCustomer": {"name": "x", "email": "x@example.com"}}),
    ):
        e = raises(KeyMintApiError, call, params)
        assert e.status == 401 and e.message == "Invalid access token", vars(e)
    # The customer's software needs no seller token: the key is the credential.
    assert stranger.activate_key({"productId": slug, "licenseKey": key, "hostId": "h"})["code"] == 0


run([
    test_create_then_activate_get_and_deactivate,
    test_activation_without_host_id_takes_a_new_seat_each_time,
    test_expiry_is_reported_as_iso_8601,
    test_unknown_keys_and_other_products_are_errors,
    test_block_unblock_update_and_delete,
    test_seller_calls_need_the_admin_token,
])
