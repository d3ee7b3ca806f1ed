"""Unit tests of the example proxy's pure parts: key choice, rests, probes and retry hints.

Run: python3 -m unittest discover examples/fastapi-proxy
"""

import ctypes
import os
import platform
import ssl
import tempfile
import unittest

from app import (DEFAULT_REST, CLOCK_GUARD, Key, KeyPool, create_app, pin_malloc_mmap_threshold, retry_hint,
                 upstream_tls_options)


def pool(defect=None, providers=(None, None, None)):
    keys = [Key(f"k{i + 1}", f"sk-{i + 1}", provider) for i, provider in enumerate(providers)]
    return KeyPool(keys, defect)


class KeyPoolTest(unittest.TestCase):
    def picks(self, p, count, now=0.0, provider="openai"):
        return [getattr(p.pick(provider, [], now), "id", None) for _ in range(count)]

    def test_round_robin_and_first_key_only(self):
        self.assertEqual(self.picks(pool(), 4), ["k1", "k2", "k3", "k1"])
        self.assertEqual(self.picks(pool("first_key_only"), 3), ["k1", "k1", "k1"])

    def test_a_rate_limited_key_rests_then_serves_one_probe(self):
        p = pool()
        k2 = p.keys[1]
        p.settle(k2, 429, 5.0, now=0.0)
        self.assertEqual(self.picks(p, 4, now=4.0), ["k1", "k3", "k1", "k3"])
        self.assertEqual(self.picks(p, 4, now=5.0 + CLOCK_GUARD), ["k1", "k2", "k3", "k1"])   # k2: the probe
        self.assertEqual(self.picks(p, 2, now=5.1), ["k3", "k1"])   # no second request while the probe is out
        p.settle(k2, 200, 0.0, now=5.1)
        self.assertEqual(self.picks(p, 3, now=5.1), ["k2", "k3", "k1"])

    def test_a_probe_that_is_rate_limited_again_rests_again(self):
        p = pool()
        k1 = p.keys[0]
        p.settle(k1, 429, 1.0, now=0.0)
        self.assertIs(p.pick("openai", ["k2", "k3"], 2.0), k1)
        p.settle(k1, 429, 1.0, now=2.0)
        self.assertIsNone(p.pick("openai", ["k2", "k3"], 2.5))
        self.assertAlmostEqual(k1.rest_until, 3.0 + CLOCK_GUARD)

    def test_ignores_retry_after_keeps_using_a_resting_key(self):
        p = pool("ignores_retry_after")
        p.settle(p.keys[0], 429, 5.0, now=0.0)
        self.assertEqual(self.picks(p, 3, now=1.0), ["k1", "k2", "k3"])

    def test_earliest_recovery_when_every_key_rests(self):
        p = pool()
        for key, hint in zip(p.keys, (3.0, 1.0, 2.0)):
            p.settle(key, 429, hint, now=0.0)
        self.assertIsNone(p.pick("openai", [], 0.5))
        self.assertAlmostEqual(p.earliest_recovery("openai", 0.5), 0.5 + CLOCK_GUARD)

    def test_401_disables_and_tried_keys_are_skipped(self):
        p = pool()
        p.settle(p.keys[0], 401, 0.0, now=0.0)
        self.assertEqual(self.picks(p, 2), ["k2", "k3"])
        self.assertIsNone(p.pick("openai", ["k2", "k3"], 0.0))
        for key in p.keys:
            p.settle(key, 401, 0.0, now=0.0)
        self.assertIsNone(p.earliest_recovery("openai", 0.0))

    def test_provider_restricted_keys(self):
        p = pool(providers=("openai", "anthropic", None))
        self.assertEqual(self.picks(p, 3, provider="anthropic"), ["k2", "k3", "k2"])

    def test_secrets_never_show_in_repr(self):
        self.assertNotIn("sk-1", repr(pool().keys[0]))


class RetryHintTest(unittest.TestCase):
    def test_table(self):
        cases = [
            ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
            ({"retry-after": "5"}, 5.0),
            ({"retry-after": "0.25"}, 0.25),
            ({"retry-after": "Thu, 01 Jan 1970 00:00:00 GMT"}, 0.0),
            ({"retry-after": "soon"}, DEFAULT_REST),
            ({}, DEFAULT_REST),
        ]
        for headers, want in cases:
            with self.subTest(headers=headers):
                self.assertAlmostEqual(retry_hint(headers), want)


class UpstreamTlsTest(unittest.TestCase):
    def test_no_ca_keeps_httpx_defaults(self):
        self.assertEqual(upstream_tls_options(None), {})

    def test_a_pem_ca_is_trusted(self):
        bundle = ssl.get_default_verify_paths().cafile
        if not bundle or not os.path.exists(bundle):
            self.skipTest("no PEM CA bundle on this system")
        options = upstream_tls_options(bundle)
        self.assertIsInstance(options["verify"], ssl.SSLContext)
        self.assertIsInstance(options["http2"], bool)

    def test_a_missing_or_non_pem_file_is_refused(self):
        with tempfile.NamedTemporaryFile("w", suffix=".pem") as garbage:
            garbage.write("not a certificate\n")
            garbage.flush()
            for path in ("/nonexistent/ca.pem", garbage.name):
                with self.subTest(path=path), self.assertRaises((OSError, ssl.SSLError)):
                    upstream_tls_options(path)


class MetricsTest(unittest.TestCase):
    @unittest.skipUnless(platform.system() == "Linux", "the process metrics come from /proc")
    def test_metrics_serves_the_standard_process_metrics(self):
        from fastapi.testclient import TestClient
        app = create_app("http://127.0.0.1:9", [Key("k1", "sk-1", None)])
        with TestClient(app) as client:
            response = client.get("/metrics")
        self.assertEqual(response.status_code, 200)
        values = {line.split(" ")[0]: float(line.split(" ")[1]) for line in response.text.splitlines()
                  if line.startswith("process_")}
        for name in ("process_resident_memory_bytes", "process_open_fds", "process_cpu_seconds_total",
                     "process_start_time_seconds", "process_virtual_memory_bytes"):
            self.assertIn(name, values)
        self.assertGreater(values["process_resident_memory_bytes"], 1e6)


if __name__ == "__main__":
    unittest.main()


class Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                      "fsmblks", "uordblks", "fordblks", "keepcost")]


@unittest.skipUnless(platform.libc_ver()[0] == "glibc", "the mmap threshold is a glibc setting")
class MallocTest(unittest.TestCase):
    def test_a_receive_sized_block_stays_out_of_the_heap_after_a_larger_one_was_freed(self):
        libc = ctypes.CDLL("libc.so.6")
        if not hasattr(libc, "mallinfo2"):
            self.skipTest("mallinfo2 needs glibc 2.33")
        libc.mallinfo2.restype = Mallinfo2
        self.assertTrue(pin_malloc_mmap_threshold())
        bytearray(4 << 20)           # a 4 MiB mmap'd block, freed at once: that raises an unpinned threshold
        before = libc.mallinfo2().hblkhd
        block = bytes(256 * 1024)    # what asyncio's recv() allocates
        self.assertGreaterEqual(libc.mallinfo2().hblkhd - before, 256 * 1024, "the block came from the heap")
        del block
