"""Verify licensd answers and license files in Python (pip install cryptography).

Usage: python3 verify.py BASE_URL LICENSE_KEY [FINGERPRINT]
(the demo fetches the public keys; a real app embeds them instead)
"""
import base64
import hashlib
import json
import secrets
import sys
import time
import urllib.error
import urllib.request

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

BEGIN = "-----BEGIN LICENSD LICENSE FILE-----"
END = "-----END LICENSD LICENSE FILE-----"


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def verify_response(public_keys, method, path, request_body, status, body, header, max_skew=300):
    """Raises (cryptography.exceptions.InvalidSignature or ValueError) unless the answer
    is signed by one of `public_keys` ({key_id: base64 public key}), for this method,
    path, request body and status, and recent."""
    fields = dict(part.strip().split("=", 1) for part in (header or "").split(","))
    if fields.get("v") != "2":
        raise ValueError("unsupported signature version (v=2 binds the request)")
    if fields.get("alg") != "ed25519":
        raise ValueError("unknown algorithm")
    public_key_b64 = public_keys.get(fields.get("keyid"))
    if public_key_b64 is None:
        raise ValueError("signed by an unknown or retired key")
    ts = int(fields["ts"])
    message = "\n".join([
        "licensd-response-v2",
        str(ts),
        method.upper(),
        path,  # path and query exactly as requested
        sha256_hex(request_body),  # the exact bytes you sent (b"" without a body)
        str(status),
        sha256_hex(body),
    ]).encode()
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key_b64))
    key.verify(base64.b64decode(fields["sig"]), message)
    if abs(time.time() - ts) > max_skew:
        raise ValueError("stale signature")


def check_answer_is_for(answer, key, fingerprint=None):
    """Raises ValueError unless the answer names the key (and device) that were sent."""
    license_key = (answer.get("license") or {}).get("key")
    if license_key is not None and license_key.strip().upper() != key.strip().upper():
        raise ValueError("answer is for another license key")
    device = (answer.get("activation") or {}).get("fingerprint")
    if device is not None and device != fingerprint:
        raise ValueError("answer is for another device")


def verify_license_file(public_keys, text, now=None):
    """Returns the payload of a valid, unexpired license file; raises otherwise."""
    inner = text.split(BEGIN, 1)[1].split(END, 1)[0]
    payload_b64, sig_b64 = "".join(inner.split()).split(".", 1)
    payload = base64.b64decode(payload_b64)
    public_key_b64 = public_keys.get(json.loads(payload).get("key_id"))
    if public_key_b64 is None:
        raise ValueError("signed by an unknown or retired key")
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key_b64))
    key.verify(base64.b64decode(sig_b64), payload)
    data = json.loads(payload)
    if (now if now is not None else time.time()) >= data["expires_at"]:
        raise ValueError("license file expired")
    return data


def post(base, path, body):
    """Returns (request bytes, status, signature header, response bytes)."""
    data = json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method="POST",
                                 headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req) as res:
            return data, res.status, res.headers["licensd-signature"], res.read()
    except urllib.error.HTTPError as res:
        return data, res.code, res.headers["licensd-signature"], res.read()


def fetch_keys(base):
    with urllib.request.urlopen(base + "/v1/signing-keys") as res:
        return {k["key_id"]: k["public_key"] for k in json.load(res)["keys"]}


if __name__ == "__main__":
    base, key = sys.argv[1], sys.argv[2]
    fingerprint = sys.argv[3] if len(sys.argv) > 3 else None
    public_keys = fetch_keys(base)
    nonce = secrets.token_hex(16)
    request = {"key": key, "nonce": nonce}
    if fingerprint:
        request["fingerprint"] = fingerprint
    sent, status, header, body = post(base, "/v1/licenses/validate", request)
    verify_response(public_keys, "POST", "/v1/licenses/validate", sent, status, body, header)
    answer = json.loads(body)
    check_answer_is_for(answer, key, fingerprint)
    assert answer["nonce"] == nonce, "answer is not for this request"
    print("validate:", answer["code"], "(signature ok, request bound, nonce ok)")
    request = {"key": key, "ttl_days": 7}
    if fingerprint:
        request["fingerprint"] = fingerprint
    sent, status, header, body = post(base, "/v1/licenses/checkout", request)
    verify_response(public_keys, "POST", "/v1/licenses/checkout", sent, status, body, header)
    data = verify_license_file(public_keys, json.loads(body)["license_file"])
    check_answer_is_for(data, key, fingerprint)
    print("license file: valid until", data["expires_at"], "for", data["license"]["key"],
          "signed by", data["key_id"])
