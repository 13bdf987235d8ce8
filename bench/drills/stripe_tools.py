#!/usr/bin/env python3
"""Tools for the webhook and email drills (stdlib + aiosmtpd).

  stripe_tools.py fake-stripe --port P           Stripe-shaped line items for any session
  stripe_tools.py smtp-sink --port P --out F     real SMTP server; one JSON line per email
  stripe_tools.py post --urls U1,U2 --secret S --count N [--rate R] [--same] --out F
                                                  signed checkout.session.completed events

Each event i is a checkout of one license (price `price_drill`) by buyer-<prefix>-<i>@example.com,
so emails can be matched to events. `post` retries an event on connection errors and 5xx
(on the next URL, as Stripe retries and a load balancer moves on), like Stripe would.
"""
import argparse, hashlib, hmac, json, os, sys, threading, time, urllib.error, urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FIXTURE = os.path.join(os.path.dirname(__file__), "../../tests/fixtures/stripe/checkout_session_completed.json")


def fake_stripe(args):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            parts = self.path.split("?")[0].strip("/").split("/")
            # /v1/checkout/sessions/{id}/line_items
            if len(parts) == 5 and parts[:3] == ["v1", "checkout", "sessions"] and parts[4] == "line_items":
                session = parts[3]
                item = {
                    "id": f"li_{session}", "object": "item", "amount_discount": 0,
                    "amount_subtotal": 2500, "amount_tax": 0, "amount_total": 2500,
                    "currency": "usd", "description": "Drill App", "discounts": [], "metadata": {},
                    "price": {"id": "price_drill", "object": "price", "active": True,
                              "billing_scheme": "per_unit", "created": 1700000000, "currency": "usd",
                              "livemode": False, "metadata": {}, "product": "prod_drill",
                              "recurring": None, "type": "one_time", "unit_amount": 2500,
                              "unit_amount_decimal": "2500", "tax_behavior": "unspecified"},
                    "quantity": 1, "taxes": []}
                body = {"object": "list", "data": [item], "has_more": False,
                        "url": f"/v1/checkout/sessions/{session}/line_items"}
                self.reply(200, body)
            else:
                self.reply(404, {"error": {"type": "invalid_request_error", "message": "no such route"}})

        def reply(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


def smtp_sink(args):
    import asyncio
    from aiosmtpd.controller import Controller
    from email import message_from_bytes

    lock = threading.Lock()

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            msg = message_from_bytes(envelope.content)
            line = json.dumps({"t": time.time(), "to": envelope.rcpt_tos, "subject": msg.get("subject", "")})
            with lock, open(args.out, "a") as f:
                f.write(line + "\n")
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=args.port)
    controller.start()
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


def make_event(template, prefix, i):
    ev = json.loads(json.dumps(template))
    ev["id"] = f"evt_{prefix}_{i}"
    ev["created"] = int(time.time())
    obj = ev["data"]["object"]
    obj["id"] = f"cs_{prefix}_{i}"
    obj["payment_intent"] = f"pi_{prefix}_{i}"
    obj["customer"] = f"cus_{prefix}_{i}"
    obj["customer_details"]["email"] = f"buyer-{prefix}-{i}@example.com"
    return json.dumps(ev).encode()


def post(args):
    template = json.load(open(FIXTURE))
    urls = args.urls.split(",")
    out, lock = [], threading.Lock()

    def send(i, body, first_url):
        attempts, k = 0, first_url
        t0 = time.time()
        while True:
            attempts += 1
            ts = int(time.time())
            sig = hmac.new(args.secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
            req = urllib.request.Request(urls[k % len(urls)] + "/webhooks/stripe", body,
                                         {"content-type": "application/json",
                                          "stripe-signature": f"t={ts},v1={sig}"})
            try:
                with urllib.request.urlopen(req, timeout=30) as r:
                    status = r.status
            except urllib.error.HTTPError as e:
                status = e.code
            except Exception:
                status = "conn"
            if (status == "conn" or (isinstance(status, int) and status >= 500)) and attempts < args.max_attempts:
                k += 1
                time.sleep(0.5)
                continue
            with lock:
                out.append({"i": i, "sent": t0, "done": time.time(), "status": status, "attempts": attempts,
                            "email": f"buyer-{args.prefix}-{i}@example.com"})
            return

    threads = []
    if args.same:
        body = make_event(template, args.prefix, 0)
        barrier = threading.Barrier(args.count)

        def same(j):
            barrier.wait()
            send(0, body, j)
        threads = [threading.Thread(target=same, args=(j,)) for j in range(args.count)]
        for t in threads:
            t.start()
    else:
        start = time.time()
        for i in range(args.count):
            if args.rate:
                wait = start + i / args.rate - time.time()
                if wait > 0:
                    time.sleep(wait)
            t = threading.Thread(target=send, args=(i, make_event(template, args.prefix, i), i))
            t.start()
            threads.append(t)
    for t in threads:
        t.join()
    with open(args.out, "w") as f:
        for row in sorted(out, key=lambda r: r["i"]):
            f.write(json.dumps(row) + "\n")


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("fake-stripe"); a.add_argument("--port", type=int, required=True)
    a = sub.add_parser("smtp-sink"); a.add_argument("--port", type=int, required=True); a.add_argument("--out", required=True)
    a = sub.add_parser("post")
    a.add_argument("--urls", required=True); a.add_argument("--secret", required=True)
    a.add_argument("--count", type=int, required=True); a.add_argument("--rate", type=float, default=0)
    a.add_argument("--same", action="store_true"); a.add_argument("--prefix", default="drill")
    a.add_argument("--max-attempts", type=int, default=40); a.add_argument("--out", required=True)
    args = p.parse_args()
    {"fake-stripe": fake_stripe, "smtp-sink": smtp_sink, "post": post}[args.cmd](args)


if __name__ == "__main__":
    main()
