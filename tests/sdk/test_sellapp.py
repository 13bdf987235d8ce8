"""SellApp's official Python SDK (PyPI `sellapp-sdk`, pinned in requirements.txt),
unmodified, against licensd: every license call it offers (licenses, licenses_instances,
license_instances)."""

import datetime

from sellapp_sdk import SellAppClient
from sellapp_sdk._errors import NotFoundError, SerializationError, UnprocessableEntityError

from harness import TOKEN, URL, admin, detail, license, product, raises, run

client = SellAppClient(api_key=TOKEN, base_url=URL + "/api")


def test_activate_validate_and_deactivate_an_instance():
    slug = product(seats=2)
    key = license(slug, expires_at="2034-12-31T23:59:59Z")["key"]
    created = client.licenses.activate(license_key=key, instance_name="build-server")
    inst = created.data
    assert inst.name == "build-server" and isinstance(inst.license_key_id, int), created

    checked = client.licenses.validate(license_key=key, instance_id=inst.id)
    assert checked.data.valid is True
    lk = checked.data.license_key
    assert lk.key == key and lk.is_expired is False and lk.active == 1 and lk.status == "ACTIVE"
    assert isinstance(lk.id, int) and lk.id == inst.license_key_id
    assert isinstance(lk.customer_id, int) and lk.order_id is None and lk.subscription_id is None
    assert lk.limit == 2 and lk.instances_count == 1
    assert lk.expires_at.year == 2034
    assert checked.data.instance.id == inst.id

    # Without an instance the key alone is validated.
    assert client.licenses.validate(license_key=key).data.instance is None

    gone = client.licenses.deactivate_license(license_key=key, instance_id=inst.id)
    assert gone.data.deactivated is True and gone.data.instance_id == inst.id, gone
    assert detail(key)["activations_count"] == 0
    after = client.licenses.validate(license_key=key, instance_id=inst.id)
    assert after.data.valid is False


def test_unknown_keys_and_instances_are_errors():
    unknown = "AAAAA-AAAAA-AAAAA-AAAAA-AAAAA"
    raises(NotFoundError, client.licenses.validate, license_key=unknown)
    raises(NotFoundError, client.licenses.activate, license_key=unknown, instance_name="x")
    raises(NotFoundError, client.licenses.deactivate_license, license_key=unknown, instance_id="x")
    key = license(product())["key"]
    raises(NotFoundError, client.licenses.deactivate_license, license_key=key,
           instance_id="00000000-0000-0000-0000-000000000000")
    raises(UnprocessableEntityError, client.licenses.activate, license_key=key, instance_name="")


def test_get_update_and_list_keys_by_integer_id():
    slug = product(seats=3)
    key = license(slug)["key"]
    number = client.licenses.validate(license_key=key).data.license_key.id

    got = client.licenses.get(number).data
    assert got.key == key and got.id == number

    when = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=10)).replace(microsecond=0)
    changed = client.licenses.update(number, limit=7, expires_at=when.isoformat(), active=False).data
    assert changed.limit == 7 and changed.active == 0 and changed.status == "INACTIVE", changed
    d = detail(key)
    assert d["max_activations"] == 7 and d["status"] == "suspended"
    assert client.licenses.update(number, active=True, limit=None).data.limit == 0
    assert detail(key)["max_activations"] is None and detail(key)["status"] == "active"

    raises(NotFoundError, client.licenses.get, 1)

    # SDK 0.2.1's `licenses.list()` deserialises each item with the *page* model
    # (`$.data is required`), so it fails on any non-empty page, against SellApp too
    # (docs/compatibility.md). The same route through the SDK's own transport:
    with_items = raises(SerializationError, client.licenses.list, limit=200)
    assert "SdkListLicenseKeysResponseValue200ApplicationJson" in str(with_items)
    # Its raw requests need a store selected (`X-STORE`, which licensd ignores: one store).
    raw = SellAppClient(api_key=TOKEN, store="1", base_url=URL + "/api")
    page = raw.custom_request(method="get", path="/v2/license-keys", params={"limit": 1, "page": 1})
    assert page.status == 200 and len(page.data["data"]) == 1, page
    assert page.data["meta"]["current_page"] == 1 and page.data["meta"]["total"] >= 1
    newest = page.data["data"][0]
    assert newest["key"] == key and newest["id"] == number and newest["is_expired"] is False


def test_instances_of_a_key_and_of_the_store():
    slug = product(seats=5)
    key = license(slug)["key"]
    names = ["a", "b", "c"]
    ids = [client.licenses.activate(license_key=key, instance_name=n).data.id for n in names]
    number = client.licenses.validate(license_key=key).data.license_key.id

    first = client.licenses_instances.list(number, limit=2)
    assert [i.name for i in first.data] == ["a", "b"], first
    assert first.has_next_page()
    every = [i.name for i in first.items()]
    assert every == names, every

    one = client.licenses_instances.get(number, ids[1]).data
    assert one.id == ids[1] and one.name == "b"
    raises(NotFoundError, client.licenses_instances.get, number, "00000000-0000-0000-0000-000000000000")

    store = [i.id for i in client.license_instances.list(limit=200).data]
    assert set(ids) <= set(store)


def test_seller_calls_need_the_admin_token():
    stranger = SellAppClient(api_key="not-a-token", base_url=URL + "/api")
    from sellapp_sdk import AuthenticationError
    raises(AuthenticationError, stranger.licenses.get, 1)
    raises(AuthenticationError, stranger.license_instances.list)
    # The customer's software is not refused for its token: the key is the credential.
    key = license(product())["key"]
    assert stranger.licenses.validate(license_key=key).data.valid is True


run([
    test_activate_validate_and_deactivate_an_instance,
    test_unknown_keys_and_instances_are_errors,
    test_get_update_and_list_keys_by_integer_id,
    test_instances_of_a_key_and_of_the_store,
    test_seller_calls_need_the_admin_token,
])
