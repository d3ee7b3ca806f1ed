"""A small, correct API-key-router proxy in FastAPI + httpx: a template for testing your own proxy with the harness.

Clients call it as they would call OpenAI (`/v1/chat/completions`, `/v1/models`, ...) or Anthropic
(`/v1/messages`). It swaps in one of its pool keys (round-robin), rests a key the upstream rate-limited for exactly
as long as the upstream asked (then lets one probe request through before trusting the key again), fails over to the
next key on 429, 5xx, 401 and connection errors, answers 429 at once when every key rests, passes SSE streams
through chunk by chunk, and names the key it used in `X-Key-Used` (the id, never the secret).

`--defect NAME` breaks exactly one of those behaviours, so the harness's verdicts can be checked against a proxy
that is known to be wrong; see README.md.
"""

import argparse
import asyncio
import contextlib
import ctypes
import ctypes.util
import email.utils
import importlib.util
import logging
import math
import socket
import ssl
import sys
import time
import tomllib
from dataclasses import dataclass

import httpx
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from starlette.background import BackgroundTask

DEFECTS = ("ignores_retry_after", "first_key_only", "no_failover", "buffers_streams",
           "holds_when_exhausted", "keeps_memory", "leaks_sockets")
DEFAULT_REST = 2.0     # seconds a key rests after a 429 without any retry hint
MAX_REST = 3600.0      # cap on a hinted rest, so a garbled header cannot park a key for days
CLOCK_GUARD = 0.05     # the upstream starts its window when it *sent* the 429 and counts whole ms or seconds
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
              "transfer-encoding", "upgrade", "host", "content-length"}
CLIENT_CREDENTIALS = {"authorization", "x-api-key"}
M_MMAP_THRESHOLD = -3  # glibc's mallopt() parameter number (malloc.h)
MMAP_THRESHOLD = 128 * 1024    # glibc's own starting value
log = logging.getLogger("fastapi-proxy")


@dataclass
class Key:
    id: str
    secret: str
    provider: str | None = None    # "openai" | "anthropic" | None (serves both)
    rest_until: float = 0.0        # time.monotonic(); nothing is sent on the key before it
    needs_probe: bool = False      # a rest ended: one request must succeed before the key is shared again
    probe_out: bool = False        # that one request is in flight
    disabled: bool = False         # the upstream said 401: the key is bad for good

    def __repr__(self):            # never print a secret, even by accident
        return f"Key({self.id!r})"


class KeyPool:
    """Which key serves the next attempt. Pure state, no I/O: `now` comes from the caller."""

    def __init__(self, keys, defect=None):
        self.keys, self.defect, self.cursor = keys, defect, 0

    def usable(self, key, provider, now):
        if key.disabled or key.provider not in (None, provider):
            return False
        if self.defect == "ignores_retry_after":
            return True
        return now >= key.rest_until and not (key.needs_probe and key.probe_out)

    def pick(self, provider, tried, now):
        """The next usable key not yet tried by this request, round-robin; None when there is none."""
        start = 0 if self.defect == "first_key_only" else self.cursor
        for step in range(len(self.keys)):
            key = self.keys[(start + step) % len(self.keys)]
            if key.id not in tried and self.usable(key, provider, now):
                self.cursor = (start + step + 1) % len(self.keys)
                key.probe_out = key.needs_probe
                return key
        return None

    def settle(self, key, status, hint, now):
        """Records how an attempt on `key` ended: `status` None means no response (connection error)."""
        key.probe_out = False
        if status == 429:
            key.rest_until, key.needs_probe = now + min(hint, MAX_REST) + CLOCK_GUARD, True
        elif status == 401:
            key.disabled = True
        elif status is not None:
            key.needs_probe = False

    def earliest_recovery(self, provider, now):
        """Seconds until a resting key may serve `provider` again; None when no key ever will."""
        waits = [max(k.rest_until - now, 0.0) for k in self.keys
                 if not k.disabled and k.provider in (None, provider)]
        return min(waits) if waits else None


def retry_hint(headers):
    """Seconds the upstream asked us to wait: `retry-after-ms`, else `retry-after` (seconds or an HTTP date)."""
    try:
        if "retry-after-ms" in headers:
            return float(headers["retry-after-ms"]) / 1000
        if "retry-after" in headers:
            value = headers["retry-after"]
            if value.strip().replace(".", "", 1).isdigit():
                return float(value)
            return max(email.utils.parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
    except (ValueError, TypeError):
        pass
    return DEFAULT_REST


def provider_error(provider, status, kind, message, headers=None):
    """An error shaped like the provider's own, so client SDKs parse it."""
    if provider == "anthropic":
        body = {"type": "error", "error": {"type": kind, "message": message}}
    else:
        body = {"error": {"message": message, "type": kind, "param": None, "code": kind}}
    return JSONResponse(body, status_code=status, headers=headers)


class UpstreamStreamCut(Exception):
    """The upstream broke a stream after its first bytes went out: the client's stream must end abruptly too."""


class QuietStreamCuts(logging.Filter):
    """One warning line per cut stream is enough; uvicorn would add a traceback for each."""

    def filter(self, record):
        return not (record.exc_info and isinstance(record.exc_info[1], UpstreamStreamCut))


async def pass_through(response, key):
    """Each chunk as it arrives (never buffered); a failure mid-stream cannot be retried, so it is passed on."""
    try:
        async for chunk in response.aiter_raw():
            yield chunk
    except httpx.HTTPError as error:
        log.warning("key %s: upstream stream cut (%s)", key.id, type(error).__name__)
        raise UpstreamStreamCut() from None


async def read_raw(response):
    """The body as the upstream sent it (still compressed, if it was), then the connection goes back to the pool."""
    body = b"".join([chunk async for chunk in response.aiter_raw()])
    await response.aclose()
    return body


def upstream_tls_options(upstream_ca):
    """httpx client options for an HTTPS upstream whose certificate is signed by the PEM CA in `upstream_ca`
    (e.g. the CA mock-upstream generates with --tls): trust that CA, and speak HTTP/2 when the `h2` package is
    installed (httpx then offers h2 and http/1.1 by ALPN). No CA file: httpx's defaults. A missing or non-PEM
    file raises OSError / ssl.SSLError."""
    if upstream_ca is None:
        return {}
    context = ssl.create_default_context(cafile=upstream_ca)
    return {"verify": context, "http2": importlib.util.find_spec("h2") is not None}


def create_app(upstream, keys, defect=None, upstream_ca=None):
    tls = upstream_tls_options(upstream_ca)
    shared = httpx.AsyncClient(base_url=upstream, timeout=httpx.Timeout(60.0, connect=2.0),
                               limits=httpx.Limits(max_connections=512, max_keepalive_connections=64), **tls)

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        yield
        await shared.aclose()

    app = FastAPI(title="fastapi-proxy example", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    pool = KeyPool(keys, defect)
    retained = []                  # keeps_memory: request copies; leaks_sockets: clients (a reference keeps them open)

    @app.get("/health")
    async def health():
        now = time.monotonic()
        resting = sum(1 for k in keys if not k.disabled and k.rest_until > now)
        disabled = sum(1 for k in keys if k.disabled)
        return {"status": "ok", "keys": {"total": len(keys), "resting": resting, "disabled": disabled,
                                         "ready": len(keys) - resting - disabled}}

    @app.get("/metrics")
    async def metrics():
        # prometheus_client's default registry: process_resident_memory_bytes, process_open_fds,
        # process_cpu_seconds_total, process_start_time_seconds, ... (Linux), read at each scrape.
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    async def next_key(provider, tried):
        while True:
            key = pool.pick(provider, tried, time.monotonic())
            wait = pool.earliest_recovery(provider, time.monotonic())
            if key or defect != "holds_when_exhausted" or tried or wait is None:
                return key
            await asyncio.sleep(max(wait, 0.01))   # the defect: hold the client until a key recovers

    def client_for_request():
        if defect != "leaks_sockets":
            return shared
        client = httpx.AsyncClient(base_url=upstream, timeout=shared.timeout, **tls)
        retained.append(client)
        return client

    def upstream_headers(request, provider, key):
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() not in HOP_BY_HOP | CLIENT_CREDENTIALS}
        if provider == "anthropic":
            headers["x-api-key"] = key.secret
        else:
            headers["authorization"] = f"Bearer {key.secret}"
        return headers

    def client_headers(upstream_response, key):
        headers = {k: v for k, v in upstream_response.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["x-key-used"] = key.id
        return headers

    async def relay(upstream_response, key):
        headers = client_headers(upstream_response, key)
        if defect == "buffers_streams":
            body = await read_raw(upstream_response)    # the defect: the whole stream before the first byte out
            return Response(body, status_code=upstream_response.status_code, headers=headers)
        return StreamingResponse(pass_through(upstream_response, key), status_code=upstream_response.status_code,
                                 headers=headers, background=BackgroundTask(upstream_response.aclose))

    @app.api_route("/v1/{path:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
    async def forward(path: str, request: Request):
        provider = "anthropic" if path.startswith("messages") else "openai"
        body = await request.body()    # held once: a retry has to send it again
        if defect == "keeps_memory":
            retained.append(body[:16384].ljust(16384, b"."))
        client, tried, last = client_for_request(), [], None
        attempts = 1 if defect == "no_failover" else len(keys)
        while len(tried) < attempts:
            key = await next_key(provider, tried)
            if key is None:
                break
            tried.append(key.id)
            outgoing = client.build_request(request.method, request.url.path, params=request.query_params,
                                            headers=upstream_headers(request, provider, key), content=body)
            try:
                response = await client.send(outgoing, stream=True)
            except httpx.HTTPError as error:
                pool.settle(key, None, 0.0, time.monotonic())
                log.warning("key %s: upstream unreachable (%s)", key.id, type(error).__name__)
                last = provider_error(provider, 502, "api_error", "upstream unreachable", {"x-key-used": key.id})
                continue
            except asyncio.CancelledError:    # the client went away: a probe must not stay "out" for ever
                pool.settle(key, None, 0.0, time.monotonic())
                raise
            status = response.status_code
            pool.settle(key, status, retry_hint(response.headers) if status == 429 else 0.0, time.monotonic())
            if status in (401, 429) or status >= 500:    # 5xx includes Anthropic's 529
                log.warning("key %s: upstream answered %d", key.id, status)
                last = Response(await read_raw(response), status, client_headers(response, key))
                continue
            return await relay(response, key)
        if last is not None:
            return last    # every attempt failed: the client gets the last upstream answer
        wait = pool.earliest_recovery(provider, time.monotonic())
        if wait is None:
            return provider_error(provider, 503, "api_error", "no usable key for this route")
        # Every key rests: say so at once, with the earliest recovery, instead of holding the client.
        return provider_error(provider, 429, "rate_limit_error", "every key is resting; retry later",
                              {"retry-after": str(max(1, math.ceil(wait))),     # a key whose probe is out: 100 ms
                               "retry-after-ms": str(max(100, math.ceil(wait * 1000)))})

    return app


def load_keys(args):
    """Keys from `--keys-file` (the reference proxy's TOML: [[keys]] id, secret, provider) and `--key ID=SECRET`."""
    keys = []
    if args.keys_file:
        with open(args.keys_file, "rb") as file:
            for entry in tomllib.load(file).get("keys", []):
                keys.append(Key(entry["id"], entry["secret"], entry.get("provider")))
    for pair in args.key:
        key_id, _, secret = pair.partition("=")
        keys.append(Key(key_id, secret))
    if not keys:
        sys.exit("fastapi-proxy: no keys: give --keys-file FILE or --key ID=SECRET")
    return keys


def pin_malloc_mmap_threshold():
    """Keeps glibc from growing the heap around asyncio's receive buffers; False where there is no glibc.

    asyncio reads each socket with `recv(256 KiB)`: a 256 KiB block, shrunk to the bytes that came. glibc serves
    blocks over its mmap threshold (128 KiB) from mmap, but raises that threshold whenever a larger mmap'd block is
    freed; from then on every such buffer is cut from the heap, and the small leftovers scattered between them keep
    the heap from shrinking. RSS then grows ~100-200 bytes per request for many minutes (a soak judges that a LEAK)
    while Python's own allocations stay flat. A threshold set with mallopt() stays where it is set.
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.gnu_get_libc_version and libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    except (OSError, AttributeError, TypeError):    # not glibc (musl, macOS, Windows): nothing to pin
        return False


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--upstream", required=True, help="provider base URL, e.g. http://127.0.0.1:9100")
    parser.add_argument("--keys-file", help="TOML keys file, as the reference proxy takes")
    parser.add_argument("--key", action="append", default=[], metavar="ID=SECRET")
    parser.add_argument("--upstream-ca", metavar="FILE",
                        help="PEM CA certificate to trust for an https:// upstream (the harness's {ca_file}); "
                             "HTTP/2 when the h2 package is installed")
    parser.add_argument("--defect", choices=DEFECTS, help="break one behaviour on purpose (see README.md)")
    args = parser.parse_args()
    if args.upstream_ca is not None:
        try:
            upstream_tls_options(args.upstream_ca)
        except (OSError, ssl.SSLError) as e:
            sys.exit(f"fastapi-proxy: --upstream-ca {args.upstream_ca}: not a readable PEM CA certificate: {e}")
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("uvicorn.error").addFilter(QuietStreamCuts())
    logging.getLogger("httpx").setLevel(logging.WARNING)   # one INFO line per upstream request costs more than it tells
    pin_malloc_mmap_threshold()
    app = create_app(args.upstream.rstrip("/"), load_keys(args), args.defect, args.upstream_ca)
    listener = socket.create_server((args.host, args.port))
    host, port = listener.getsockname()[:2]
    # The harness reads the proxy's URL from this first stdout line when its command has no {port}.
    print(f"listening on http://{host}:{port}", flush=True)
    # The upstream's date/server headers pass through; on SIGTERM open requests get 10 s, then the process exits.
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, server_header=False,
                                           date_header=False, timeout_graceful_shutdown=10))
    server.run(sockets=[listener])


if __name__ == "__main__":
    main()
