"""Verify licensd answers and license files in Python (pip install cryptography).

Usage: python3 verify.py BASE_URL LICENSE_KEY [FINGERPRINT]
(the demo fetches the public key; a real app embeds it instead)
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


def verify_response(public_key_b64, method, path, status, body, header, max_skew=300):
    """Raises (cryptography.exceptions.InvalidSignature or ValueError) unless the answer
    is signed by the key, for this method, path and status, and recent."""
    fields = dict(part.strip().split("=", 1) for part in header.split(","))
    if fields.get("alg") != "ed25519":
        raise ValueError("unknown algorithm")
    ts = int(fields["ts"])
    message = "\n".join([
        "licensd-response-v1",
        str(ts),
        method.upper(),
        path,  # path and query exactly as requested
        str(status),
        hashlib.sha256(body).hexdigest(),
    ]).encode()
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key_b64))
    key.verify(base64.b64decode(fields["sig"]), message)
    if abs(time.time() - ts) > max_skew:
        raise ValueError("stale signature")


def verify_license_file(public_key_b64, text, now=None):
    """Returns the payload of a valid, unexpired license file; raises otherwise."""
    inner = text.split(BEGIN, 1)[1].split(END, 1)[0]
    payload_b64, sig_b64 = "".join(inner.split()).split(".", 1)
    payload = base64.b64decode(payload_b64)
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key_b64))
    key.verify(base64.b64decode(sig_b64), payload)
    data = json.loads(payload)
    if (now if now is not None else time.time()) >= data["expires_at"]:
        raise ValueError("license file expired")
    return data


def post(base, path, body):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req) as res:
            return res.status, res.headers["licensd-signature"], res.read()
    except urllib.error.HTTPError as res:
        return res.code, res.headers["licensd-signature"], res.read()


if __name__ == "__main__":
    base, key = sys.argv[1], sys.argv[2]
    fingerprint = sys.argv[3] if len(sys.argv) > 3 else None
    with urllib.request.urlopen(base + "/v1/signing-key") as res:
        public_key = json.load(res)["public_key"]
    nonce = secrets.token_hex(16)
    status, header, body = post(base, "/v1/licenses/validate", {"key": key, "nonce": nonce})
    verify_response(public_key, "POST", "/v1/licenses/validate", status, body, header)
    answer = json.loads(body)
    assert answer["nonce"] == nonce, "answer is not for this request"
    print("validate:", answer["code"], "(signature ok, nonce ok)")
    request = {"key": key, "ttl_days": 7}
    if fingerprint:
        request["fingerprint"] = fingerprint
    status, header, body = post(base, "/v1/licenses/checkout", request)
    verify_response(public_key, "POST", "/v1/licenses/checkout", status, body, header)
    data = verify_license_file(public_key, json.loads(body)["license_file"])
    print("license file: valid until", data["expires_at"], "for", data["license"]["key"])
