#!/usr/bin/env bash
# Checks that mock-upstream responses parse in the official Python SDKs (openai, anthropic), streaming
# included, with current model names at the mock's defaults (any model served), and that error statuses map
# to the SDKs' typed exceptions, including the 404s once `PUT /__admin/models` restricts the served models.
# Then the same SDKs go over HTTPS to a `--tls` mock, trusting only the CA file it prints: over HTTP/2
# (httpx with http2=True) and HTTP/1.1, plain and streaming, and a client without the CA must be refused.
# Not run by CI.
#
#   bench/mock-sdk-check.sh
#
# Needs python3. When `import openai, anthropic, h2` fails, it installs openai, anthropic and httpx[http2]
# with pip into a venv (SDK_VENV, default /tmp/mock-sdk-check-venv) and runs the check with that. Loopback only.
# Last result: bench/RESULTS.md#mock-sdk-check
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
PYTHON=python3
if ! python3 -c 'import openai, anthropic, h2' 2>/dev/null; then
    SDK_VENV=${SDK_VENV:-/tmp/mock-sdk-check-venv}
    [ -x "$SDK_VENV/bin/python" ] || python3 -m venv "$SDK_VENV"
    "$SDK_VENV/bin/python" -c 'import openai, anthropic, h2' 2>/dev/null ||
        "$SDK_VENV/bin/pip" install -q openai anthropic 'httpx[http2]'
    PYTHON=$SDK_VENV/bin/python
fi
cargo build -q -p mock-upstream --bin mock-upstream
WORK=$(mktemp -d)
cat >"$WORK/mock.toml" <<'TOML'
override_headers = true
[admin]
token = "sdk-check"
TOML
MOCK_PIDS=()
trap 'kill "${MOCK_PIDS[@]}" 2>/dev/null || true; rm -rf "$WORK"' EXIT
# start_mock NAME FLAGS...: run a mock whose stdout goes to $WORK/NAME.out, wait for its listening line
# (and, with --tls, the `ca file:` line).
start_mock() {
    local name=$1 lines=1
    shift
    [[ " $* " == *" --tls "* ]] && lines=2
    "$CARGO_TARGET_DIR/debug/mock-upstream" --listen 127.0.0.1:0 --config "$WORK/mock.toml" "$@" \
        >"$WORK/$name.out" 2>"$WORK/$name.err" &
    MOCK_PIDS+=($!)
    for _ in $(seq 100); do [ "$(wc -l <"$WORK/$name.out")" -ge "$lines" ] && break; sleep 0.05; done
}
start_mock plain
BASE=$(head -1 "$WORK/plain.out" | sed 's|listening on ||')

BASE="$BASE" "$PYTHON" - <<'PY'
import json, os, urllib.request
import openai, anthropic
base = os.environ["BASE"]
print("SDKs: openai", openai.__version__, "/ anthropic", anthropic.__version__)
oa = openai.OpenAI(base_url=base + "/v1", api_key="sk-test", max_retries=0)
an = anthropic.Anthropic(base_url=base, api_key="sk-ant-test", max_retries=0)
msgs = [{"role": "user", "content": "Hello"}]

def served_models(models):
    """PUT /__admin/models: serve only these models from now on (None = any); returns the answer's list."""
    request = urllib.request.Request(base + "/__admin/models", method="PUT",
                                     data=json.dumps({"models": models}).encode(),
                                     headers={"Authorization": "Bearer sdk-check",
                                              "Content-Type": "application/json"})
    with urllib.request.urlopen(request) as answer:
        return json.load(answer)["models"]

print("at the mock's defaults (any model served):")
r = oa.chat.completions.create(model="gpt-4.1", messages=msgs, max_tokens=5)
assert r.choices[0].message.content and r.usage.completion_tokens == 5 and r.model == "gpt-4.1", r
print("  openai chat plain:", r.model, r.id, repr(r.choices[0].message.content), r.usage.total_tokens)

chunks = list(oa.chat.completions.create(model="gpt-5", messages=msgs, max_tokens=4, stream=True,
                                         stream_options={"include_usage": True}))
text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
assert chunks[-1].usage.completion_tokens == 4 and text and all(c.model == "gpt-5" for c in chunks), chunks[-1]
print("  openai chat stream:", chunks[0].model, len(chunks), "chunks,", repr(text))

raw = oa.chat.completions.with_raw_response.create(model="o3", messages=msgs, max_tokens=1)
assert raw.parse().model == "o3"
print("  openai headers:", raw.parse().model, raw.headers["x-ratelimit-remaining-requests"],
      raw.headers["x-ratelimit-reset-tokens"])

e = oa.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
assert len(e.data) == 2 and len(e.data[0].embedding) == 1536
print("  openai embeddings:", len(e.data), "x", len(e.data[0].embedding))
listed = [m.id for m in oa.models.list().data]
assert {"gpt-4.1", "gpt-5", "o3", "claude-sonnet-4-5", "claude-opus-4-1"} <= set(listed), listed
print("  openai models:", len(listed), "listed, e.g.", listed[:4], "; retrieve:", oa.models.retrieve("gpt-5").id)

m = an.messages.create(model="claude-sonnet-4-5", max_tokens=6, messages=msgs)
assert m.usage.output_tokens == 6 and m.content[0].text and m.model == "claude-sonnet-4-5"
print("  anthropic plain:", m.model, m.id, repr(m.content[0].text), m.stop_reason)
with an.messages.stream(model="claude-opus-4-1", max_tokens=3, messages=msgs) as stream:
    final = stream.get_final_message()
assert final.usage.output_tokens == 3 and final.model == "claude-opus-4-1"
print("  anthropic stream:", final.model, repr(final.content[0].text), final.stop_reason)

def expect(exc, fn):
    try:
        fn()
    except exc as err:
        print("  ", exc.__name__, getattr(err, "status_code", ""))
        return
    raise AssertionError(f"expected {exc.__name__}")

print("typed errors, served models restricted to", served_models(["gpt-4.1", "claude-sonnet-4-5"]), end=":\n")
expect(openai.NotFoundError, lambda: oa.chat.completions.create(model="gpt-5", messages=msgs))
expect(openai.NotFoundError, lambda: oa.models.retrieve("o3"))
expect(anthropic.NotFoundError, lambda: an.messages.create(model="claude-opus-4-1", max_tokens=1, messages=msgs))
expect(openai.BadRequestError, lambda: oa.chat.completions.create(model="gpt-4.1", messages=[]))
expect(openai.RateLimitError, lambda: oa.chat.completions.create(model="gpt-4.1", messages=msgs,
       extra_headers={"x-mock-status": "429"}))
expect(openai.InternalServerError, lambda: oa.chat.completions.create(model="gpt-4.1", messages=msgs,
       extra_headers={"x-mock-fault": "overloaded"}))
expect(anthropic.APIStatusError, lambda: an.messages.create(model="claude-sonnet-4-5", max_tokens=1,
       messages=msgs, extra_headers={"x-mock-fault": "overloaded"}))
expect(openai.APIError, lambda: list(oa.chat.completions.create(model="gpt-4.1", messages=msgs, stream=True,
       extra_headers={"x-mock-fault": "stream_error"})))
assert served_models(None) is None
r = oa.chat.completions.create(model="gpt-5", messages=msgs, max_tokens=1)
print('any model again after PUT {"models": null}:', r.model)
print("SDK check passed")
PY

start_mock tls --tls
TLS_BASE=$(head -1 "$WORK/tls.out" | sed 's|listening on ||')
CA_FILE=$(sed -n 2p "$WORK/tls.out" | sed 's|ca file: ||')
curl -sv --http2 --cacert "$CA_FILE" "$TLS_BASE/v1/models" -H 'Authorization: Bearer sk-test' -o /dev/null 2>&1 |
    grep -E 'ALPN: server accepted|^< HTTP/' | sed 's/^/curl: /'

BASE="$TLS_BASE" CA_FILE="$CA_FILE" "$PYTHON" - <<'PY'
import os, ssl
import h2, httpx, openai, anthropic
base, ca_file = os.environ["BASE"], os.environ["CA_FILE"]
print("over HTTPS,", base, "trusting only", ca_file, "(httpx", httpx.__version__ + ", h2", h2.__version__ + "):")
msgs = [{"role": "user", "content": "Hello"}]

def clients(http2, cafile=ca_file):
    """Both SDKs, each on its own httpx flavour's client (DefaultHttpxClient), recording every response's
    HTTP version."""
    versions = []
    options = dict(http2=http2, verify=ssl.create_default_context(cafile=cafile),
                   event_hooks={"response": [lambda r: versions.append(r.http_version)]})
    oa = openai.OpenAI(base_url=base + "/v1", api_key="sk-test", max_retries=0,
                       http_client=openai.DefaultHttpxClient(**options))
    an = anthropic.Anthropic(base_url=base, api_key="sk-ant-test", max_retries=0,
                             http_client=anthropic.DefaultHttpxClient(**options))
    return oa, an, versions

for http2, expected in [(True, "HTTP/2"), (False, "HTTP/1.1")]:
    oa, an, versions = clients(http2)
    r = oa.chat.completions.create(model="gpt-4.1", messages=msgs, max_tokens=5)
    assert r.usage.completion_tokens == 5 and r.choices[0].message.content
    chunks = list(oa.chat.completions.create(model="gpt-5", messages=msgs, max_tokens=4, stream=True,
                                             stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert chunks[-1].usage.completion_tokens == 4 and text
    listed = [m.id for m in oa.models.list().data]
    m = an.messages.create(model="claude-sonnet-4-5", max_tokens=6, messages=msgs)
    assert m.usage.output_tokens == 6 and m.content[0].text
    with an.messages.stream(model="claude-opus-4-1", max_tokens=3, messages=msgs) as stream:
        final = stream.get_final_message()
    assert final.usage.output_tokens == 3
    assert versions == [expected] * 5, versions
    print(f"  http2={http2}: 5 responses, all {versions[0]}: openai plain {r.usage.total_tokens} tokens,",
          f"stream {len(chunks)} chunks {text!r}, {len(listed)} models; anthropic plain {m.stop_reason},",
          f"stream {final.stop_reason}")

oa, _, _ = clients(True, cafile=None)
try:
    oa.models.list()
    raise AssertionError("a client without the mock's CA connected")
except openai.APIConnectionError as err:
    print("  without the CA:", type(err).__name__, "-", type(err.__cause__).__name__, str(err.__cause__)[:80])
print("HTTPS check passed")
PY
