"""Drives Segment's own Python client (PyPI `segment-analytics-python`) against
Hypercare, as an application would: `python3 segment_client.py BASE_URL WRITE_KEY`.

BASE_URL is Hypercare's Segment base URL (http://127.0.0.1:PORT/v1/segment). The
calls are fixed (the Rust test knows what to expect); the script exits non-zero
if the client reports any error. Steps:

1. a batch through the client's queue: track (revenue, nested properties, a
   non-UUID messageId), identify, page, a track by an anonymous user;
2. the same track again with the same messageId (a retry);
3. a call whose client clock runs two hours ahead, sent with the client's own
   request function and an explicit sentAt, to check the skew correction.
"""

import sys
from datetime import datetime, timedelta, timezone

try:
    from segment.analytics import Client
    from segment.analytics.request import post
except ImportError:  # the older package name
    from analytics import Client  # type: ignore
    from analytics.request import post  # type: ignore

base, write_key = sys.argv[1], sys.argv[2]
errors = []


def on_error(error, items):
    errors.append(f"{error} ({len(items)} items)")


client = Client(
    write_key,
    host=base,
    on_error=on_error,
    upload_interval=0.1,
    upload_size=100,
    max_retries=1,
)

# 1. A batch.
ordered_at = datetime(2026, 11, 21, 9, 30, 0, 250000, tzinfo=timezone.utc)
client.track(
    user_id="u-1",
    event="Order Completed",
    properties={"revenue": 42.5, "plan": "pro", "cart": {"items": 3, "tags": ["a", "b"]}, "first": True},
    context={"app": {"version": "3.1.0"}, "ip": "203.0.113.9"},
    timestamp=ordered_at,
    message_id="order-1",
)
client.identify(user_id="u-1", traits={"email": "a@example.com", "plan": "pro"}, message_id="identify-1")
client.page(user_id="u-1", category="Docs", name="Pricing", properties={"path": "/pricing"}, message_id="page-1")
client.track(anonymous_id="anon-7", event="Signup Started", message_id="5f2b1a3e-8c4d-4e6f-9a0b-1c2d3e4f5a6b")
client.flush()

# 2. The same call again: same messageId.
client.track(
    user_id="u-1",
    event="Order Completed",
    properties={"revenue": 42.5, "plan": "pro", "cart": {"items": 3, "tags": ["a", "b"]}, "first": True},
    context={"app": {"version": "3.1.0"}, "ip": "203.0.113.9"},
    timestamp=ordered_at,
    message_id="order-1",
)
client.flush()
client.join()

# 3. A client whose clock is two hours ahead: the event happened 5 s before it
# was sent, by that clock.
client_now = datetime.now(timezone.utc) + timedelta(hours=2)
message = {
    "type": "track",
    "event": "Skewed",
    "userId": "u-2",
    "messageId": "skewed-1",
    "timestamp": (client_now - timedelta(seconds=5)).isoformat(timespec="milliseconds"),
    "context": {"library": {"name": "analytics-python", "version": "test"}},
}
response = post(write_key, host=base, batch=[message], sentAt=client_now.isoformat(timespec="milliseconds"))
if response.status_code != 200 or response.json().get("success") is not True:
    errors.append(f"skewed call: {response.status_code} {response.text}")

if errors:
    print("\n".join(errors), file=sys.stderr)
    sys.exit(1)
print("ok")
