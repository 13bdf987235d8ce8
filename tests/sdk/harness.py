"""What every SDK test shares: the running licensd (LICENSD_URL, LICENSD_TOKEN from
run.sh), the native admin API to set up and inspect, and a tiny test runner."""

import json
import os
import sys
import traceback
import urllib.error
import urllib.request
import uuid

URL = os.environ["LICENSD_URL"]
TOKEN = os.environ["LICENSD_TOKEN"]


def admin(method, path, body=None):
    """Calls licensd's own admin API; returns (status, JSON body)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        URL + path,
        data=data,
        method=method,
        headers={"authorization": f"Bearer {TOKEN}", "content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def product(seats=5):
    """A new product with `seats` activations per license; returns its slug."""
    slug = "sdk-" + uuid.uuid4().hex[:10]
    status, body = admin("POST", "/v1/products", {"name": "SDK App", "slug": slug, "max_activations": seats})
    assert status == 201, body
    return slug


def license(slug, **extra):
    """A new license of product `slug`; returns its admin JSON."""
    body = {"product": slug, "email": "buyer@example.com", "name": "Jane Buyer", "send_email": False}
    body.update(extra)
    status, created = admin("POST", "/v1/licenses", body)
    assert status == 201, created
    return created


def detail(key):
    status, body = admin("GET", f"/v1/licenses/{key}")
    assert status == 200, body
    return body


def raises(exc_type, fn, *args, **kwargs):
    """Calls fn and returns the exception of exc_type it raises (fails if none)."""
    try:
        fn(*args, **kwargs)
    except exc_type as e:
        return e
    raise AssertionError(f"{fn.__name__} did not raise {exc_type.__name__}")


def run(tests):
    failed = 0
    for test in tests:
        try:
            test()
            print(f"ok   {test.__name__}")
        except Exception:
            failed += 1
            print(f"FAIL {test.__name__}")
            traceback.print_exc()
    print(f"{len(tests) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
