"""Schemathesis hooks for the run against the live service (tests/api/openapi.rs).

Schemathesis only knows how to send JSON-like bodies. The routes that read
protobuf (OTLP, Prometheus remote write) and NDJSON get the generated values
as bytes and lines here: the bytes are not valid messages, which is the point,
since the decoders must answer them with a 4xx, never a 5xx or a crash.
Protobuf answers (OTLP errors in the request's encoding) are opaque bytes in
the document (`type: string, format: binary`) and are checked as such.
"""

import json

import schemathesis


def _as_bytes(value):
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    return json.dumps(value).encode()


@schemathesis.serializer("application/x-protobuf")
def protobuf(ctx, value):
    return _as_bytes(value)


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx, value):
    if isinstance(value, list):
        return "\n".join(json.dumps(item) for item in value).encode()
    return _as_bytes(value)


@schemathesis.deserializer("application/x-protobuf")
def opaque(ctx, response):
    return response.content.decode("latin-1")
