"""Verify a licensd webhook delivery (Python standard library only).

Usage: python3 verify_webhook.py SECRET[,PREVIOUS_SECRET] "HEADER" < body
Exits 0 and prints the event type if the signature verifies; 1 otherwise.
"""
import hashlib
import hmac
import sys
import time


def verify(body, header, secrets, tolerance=300, now=None):
    """Raises ValueError unless `header` (Licensd-Webhook-Signature) signs `body` (the raw
    request bytes) under one of `secrets`, within `tolerance` seconds."""
    fields = [part.strip().split("=", 1) for part in header.split(",") if "=" in part]
    timestamps = [v for k, v in fields if k == "t"]
    if len(timestamps) != 1 or not timestamps[0].isdigit():
        raise ValueError("no timestamp")
    t = int(timestamps[0])
    if abs((now if now is not None else time.time()) - t) > tolerance:
        raise ValueError("timestamp outside the tolerance")
    signed = str(t).encode() + b"." + body
    expected = [hmac.new(s.encode(), signed, hashlib.sha256).hexdigest() for s in secrets]
    for k, v in fields:
        if k == "v1" and any(hmac.compare_digest(v, e) for e in expected):
            return
    raise ValueError("no matching signature")


if __name__ == "__main__":
    import json
    body = sys.stdin.buffer.read()
    try:
        verify(body, sys.argv[2], sys.argv[1].split(","))
    except ValueError as e:
        print("refused:", e)
        sys.exit(1)
    print(json.loads(body)["type"])
