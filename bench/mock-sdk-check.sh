#!/usr/bin/env bash
# Checks that mock-upstream responses parse in the official Python SDKs (openai, anthropic), streaming
# included, and that error statuses map to the SDKs' typed exceptions. Not run by CI.
#
#   bench/mock-sdk-check.sh
#
# Installs the SDKs with pip when missing. Loopback only. Last result: bench/RESULTS.md#mock-sdk-check
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
python3 -c 'import openai, anthropic' 2>/dev/null || pip install -q openai anthropic
cargo build -q -p mock-upstream --bin mock-upstream
WORK=$(mktemp -d)
cat >"$WORK/mock.toml" <<'EOF'
override_headers = true
EOF
"$CARGO_TARGET_DIR/debug/mock-upstream" --listen 127.0.0.1:0 --config "$WORK/mock.toml" >"$WORK/out" 2>"$WORK/err" &
MOCK_PID=$!
trap 'kill $MOCK_PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 100); do [ -s "$WORK/out" ] && break; sleep 0.05; done
BASE=$(head -1 "$WORK/out" | sed 's|listening on ||')

BASE="$BASE" python3 - <<'EOF'
import os, openai, anthropic
base = os.environ["BASE"]
oa = openai.OpenAI(base_url=base + "/v1", api_key="sk-test", max_retries=0)
an = anthropic.Anthropic(base_url=base, api_key="sk-ant-test", max_retries=0)
msgs = [{"role": "user", "content": "Hello"}]

r = oa.chat.completions.create(model="gpt-4", messages=msgs, max_tokens=5)
assert r.choices[0].message.content and r.usage.completion_tokens == 5, r
print("openai chat plain:", r.id, repr(r.choices[0].message.content), r.usage.total_tokens)

chunks = list(oa.chat.completions.create(model="gpt-4", messages=msgs, max_tokens=4, stream=True,
                                         stream_options={"include_usage": True}))
text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
assert chunks[-1].usage.completion_tokens == 4 and text, chunks[-1]
print("openai chat stream:", len(chunks), "chunks,", repr(text))

raw = oa.chat.completions.with_raw_response.create(model="gpt-4", messages=msgs, max_tokens=1)
print("openai headers:", raw.headers["x-ratelimit-remaining-requests"], raw.headers["x-ratelimit-reset-tokens"])

e = oa.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
assert len(e.data) == 2 and len(e.data[0].embedding) == 1536
print("openai embeddings:", len(e.data), "x", len(e.data[0].embedding))
print("openai models:", len(oa.models.list().data), oa.models.retrieve("gpt-4").id)

m = an.messages.create(model="claude-3-5-sonnet-20241022", max_tokens=6, messages=msgs)
assert m.usage.output_tokens == 6 and m.content[0].text
print("anthropic plain:", m.id, repr(m.content[0].text), m.stop_reason)
with an.messages.stream(model="claude-3-5-sonnet-20241022", max_tokens=3, messages=msgs) as stream:
    final = stream.get_final_message()
assert final.usage.output_tokens == 3
print("anthropic stream:", repr(final.content[0].text), final.stop_reason)

def expect(exc, fn):
    try:
        fn()
    except exc as err:
        print("  ", exc.__name__, getattr(err, "status_code", ""))
        return
    raise AssertionError(f"expected {exc.__name__}")

print("typed errors:")
expect(openai.NotFoundError, lambda: oa.chat.completions.create(model="nope", messages=msgs))
expect(openai.BadRequestError, lambda: oa.chat.completions.create(model="gpt-4", messages=[]))
expect(openai.RateLimitError, lambda: oa.chat.completions.create(model="gpt-4", messages=msgs,
       extra_headers={"x-mock-status": "429"}))
expect(openai.InternalServerError, lambda: oa.chat.completions.create(model="gpt-4", messages=msgs,
       extra_headers={"x-mock-fault": "overloaded"}))
expect(anthropic.NotFoundError, lambda: an.messages.create(model="nope", max_tokens=1, messages=msgs))
expect(anthropic.APIStatusError, lambda: an.messages.create(model="claude-3-5-sonnet-20241022", max_tokens=1,
       messages=msgs, extra_headers={"x-mock-fault": "overloaded"}))
expect(openai.APIError, lambda: list(oa.chat.completions.create(model="gpt-4", messages=msgs, stream=True,
       extra_headers={"x-mock-fault": "stream_error"})))
print("SDK check passed")
EOF
