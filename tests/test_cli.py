"""llamad-run and llamad-mkmodel as a user runs them: real processes, real files."""
import json
import os
import struct
import subprocess
import tempfile
import unittest

BUILD = os.environ["LLAMAD_BUILD_DIR"]
DATA = os.environ["LLAMAD_TEST_DATA_DIR"]
MODELS = os.environ["LLAMAD_MODELS_DIR"]
RUN = os.path.join(BUILD, "llamad-run")
MKMODEL = os.path.join(BUILD, "llamad-mkmodel")
BENCH = os.path.join(BUILD, "llamad-bench")
BUNDLED = os.path.join(MODELS, "stories260K.gguf")
VOCAB = os.path.join(DATA, "ggml-vocab-llama-spm.gguf")


def run(*args, status=0, timeout=120):
    """Runs a program and checks its exit status: 0 unless another is expected (a
    crash is a negative status, so it never passes for either); a failing run must
    say why on stderr."""
    r = subprocess.run(list(args), capture_output=True, timeout=timeout)
    name = os.path.basename(args[0])
    if r.returncode != status:
        raise AssertionError("%s exited with %d, expected %d: %s"
                             % (name, r.returncode, status, r.stderr.decode(errors="replace")))
    if status != 0 and not r.stderr:
        raise AssertionError("%s exited with %d and said nothing" % (name, status))
    return r


def output(*args, **kwargs):
    """The stdout of a successful run that must write something."""
    out = run(*args, **kwargs).stdout
    if not out:
        raise AssertionError("%s wrote nothing" % os.path.basename(args[0]))
    return out


def reference_case(prompt):
    with open(os.path.join(DATA, "stories260K.json"), encoding="utf-8") as f:
        ref = json.load(f)
    return next(c for c in ref["cases"] if c["prompt"] == prompt)


class RunTest(unittest.TestCase):
    def test_greedy_output_is_the_reference_continuation(self):
        case = reference_case("Once upon a time")
        r = run(RUN, "-m", BUNDLED, "-p", "Once upon a time", "-n", str(len(case["steps"])),
                "--temp", "0")
        self.assertEqual(r.stdout.decode("utf-8"), case["text"])  # the prompt is not echoed
        self.assertRegex(r.stderr.decode(), r"prompt 5 tokens, [0-9.]+ tokens/s; "
                                            r"generation 64 tokens, [0-9.]+ tokens/s")

    def test_bundled_model_is_the_default(self):
        a = output(RUN, "-p", "Lily and Tom", "-n", "20", "--temp", "0")
        b = output(RUN, "-m", BUNDLED, "-p", "Lily and Tom", "-n", "20", "--temp", "0")
        self.assertEqual(a, b)
        self.assertGreater(len(a), 20)

    def test_stop_string_ends_output_before_it(self):
        full = output(RUN, "-p", "Once upon a time", "-n", "64", "--temp", "0").decode()
        self.assertIn(" Lily", full)
        cut = output(RUN, "-p", "Once upon a time", "-n", "64", "--temp", "0", "--stop", " Lily")
        self.assertEqual(cut.decode(), full[:full.index(" Lily")])

    def test_same_seed_same_text(self):
        args = [RUN, "-p", "The dog", "-n", "40", "--temp", "1.0", "--top-k", "0",
                "--top-p", "1", "--min-p", "0"]
        a = output(*args, "--seed", "42")
        b = output(*args, "--seed", "42")
        c = output(*args, "--seed", "43")
        self.assertEqual(a, b)
        self.assertNotEqual(a, c)

    def test_thread_counts_agree(self):
        outs = {output(RUN, "-p", "Sue found", "-n", "30", "--temp", "0", "-t", str(t))
                for t in (1, 2, 3)}
        self.assertEqual(len(outs), 1)

    def test_length_limit_and_context_limit(self):
        r = run(RUN, "-p", "Once upon a time", "-n", "0", "--temp", "0")
        self.assertEqual(r.stdout, b"")
        # A 10-position context holds the 5-token prompt and 5 generated tokens.
        r = run(RUN, "-p", "Once upon a time", "-n", "50", "-c", "10", "--temp", "0")
        self.assertIn(b"generation 5 tokens", r.stderr)

    def test_usage_errors(self):
        for args, needle in [((), b"prompt"), (("-p",), b"needs a value"),
                             (("-p", "x", "-n", "lots"), b"invalid value"),
                             (("-p", "x", "--temp", "-1"), b"invalid value"),
                             (("-p", "x", "--bogus", "1"), b"unknown option")]:
            r = run(RUN, *args, status=2)
            self.assertIn(needle, r.stderr, args)
            self.assertEqual(r.stdout, b"")

    def test_bad_model_files_fail_cleanly(self):
        with tempfile.TemporaryDirectory() as d:
            with open(BUNDLED, "rb") as f:
                good = f.read()
            cases = {"truncated.gguf": good[:len(good) // 2], "empty.gguf": b"",
                     "magic.gguf": b"GGML" + good[4:]}
            for name, content in cases.items():
                path = os.path.join(d, name)
                with open(path, "wb") as f:
                    f.write(content)
                r = run(RUN, "-m", path, "-p", "hi", "-n", "4", status=1)
                self.assertIn(b"llamad-run: ", r.stderr)
                self.assertIn(name.encode(), r.stderr)
            r = run(RUN, "-m", os.path.join(d, "missing.gguf"), "-p", "hi", status=1)
            self.assertIn(b"missing.gguf", r.stderr)


def tensor_types(path):
    """Tensor name -> GGUF type id, read with an independent little parser."""
    with open(path, "rb") as f:
        data = f.read()
    off = 4
    _, n_tensors, n_kv = struct.unpack_from("<IQQ", data, off)
    off += 20
    sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}

    def skip_value(t):
        nonlocal off
        if t == 8:
            n, = struct.unpack_from("<Q", data, off)
            off += 8 + n
        elif t == 9:
            et, n = struct.unpack_from("<IQ", data, off)
            off += 12
            for _ in range(n):
                skip_value(et)
        else:
            off += sizes[t]

    for _ in range(n_kv):
        n, = struct.unpack_from("<Q", data, off)
        off += 8 + n
        t, = struct.unpack_from("<I", data, off)
        off += 4
        skip_value(t)
    types = {}
    for _ in range(n_tensors):
        n, = struct.unpack_from("<Q", data, off)
        name = data[off + 8:off + 8 + n].decode()
        off += 8 + n
        nd, = struct.unpack_from("<I", data, off)
        off += 4 + 8 * nd
        t, _ = struct.unpack_from("<IQ", data, off)
        off += 12
        types[name] = t
    return types


class MkModelTest(unittest.TestCase):
    TYPES = {"F32": 0, "F16": 1, "Q4_0": 2, "Q8_0": 8, "BF16": 30}

    def test_every_type_writes_a_model_that_runs(self):
        with tempfile.TemporaryDirectory() as d:
            for name, type_id in self.TYPES.items():
                path = os.path.join(d, name + ".gguf")
                run(MKMODEL, "-o", path, "--vocab", VOCAB, "--dim", "64", "--layers", "2",
                    "--heads", "4", "--kv-heads", "2", "--ff", "128", "--type", name, "--ctx", "256")
                types = tensor_types(path)
                self.assertEqual(types["blk.1.ffn_down.weight"], type_id)
                self.assertEqual(types["output_norm.weight"], 0)
                self.assertIn("output.weight", types)
                g = run(RUN, "-m", path, "-p", "Hello world", "-n", "8", "--temp", "0",
                        "--ignore-eos")
                self.assertIn(b"generation 8 tokens", g.stderr)

    def test_same_seed_same_file_and_tied_option(self):
        with tempfile.TemporaryDirectory() as d:
            common = ["--vocab", VOCAB, "--dim", "32", "--layers", "1", "--heads", "2",
                      "--kv-heads", "1", "--ff", "64", "--type", "Q8_0", "--seed", "5"]
            a, b = os.path.join(d, "a.gguf"), os.path.join(d, "b.gguf")
            run(MKMODEL, "-o", a, *common)
            run(MKMODEL, "-o", b, *common)
            with open(a, "rb") as fa, open(b, "rb") as fb:
                self.assertEqual(fa.read(), fb.read())
            t = os.path.join(d, "t.gguf")
            run(MKMODEL, "-o", t, *common, "--tied")
            self.assertNotIn("output.weight", tensor_types(t))
            run(RUN, "-m", t, "-p", "x", "-n", "2")

    def test_rope_scaling_option(self):
        # LLaMA-3.1's rope: freq_base 500000 and rope_freqs.weight (F32, one factor
        # per pair of a 16-value head), which llamad-run loads and applies; the text
        # differs from the same weights without them.
        with tempfile.TemporaryDirectory() as d:
            common = ["--vocab", VOCAB, "--dim", "64", "--layers", "2", "--heads", "4",
                      "--kv-heads", "2", "--ff", "128", "--seed", "3"]
            plain, scaled = os.path.join(d, "plain.gguf"), os.path.join(d, "scaled.gguf")
            run(MKMODEL, "-o", plain, *common)
            run(MKMODEL, "-o", scaled, *common, "--rope-scaling")
            self.assertEqual(tensor_types(scaled)["rope_freqs.weight"], 0)
            self.assertNotIn("rope_freqs.weight", tensor_types(plain))
            gen = ["-p", "Once upon a time, in a land far away", "-n", "24", "--temp", "0",
                   "--ignore-eos"]
            self.assertNotEqual(output(RUN, "-m", plain, *gen), output(RUN, "-m", scaled, *gen))

    def test_q4_k_m_mix(self):
        # llama-quantize's Q4_K_M: Q6_K for output, and for attn_v and ffn_down in the
        # first and last eighth of the layers and every third between (of 16: 0, 1,
        # 4, 7, 10, 13, 14, 15); Q4_K elsewhere.
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "m.gguf")
            run(MKMODEL, "-o", path, "--vocab", VOCAB, "--dim", "256", "--layers", "16",
                "--heads", "2", "--kv-heads", "1", "--ff", "256", "--type", "Q4_K_M")
            types = tensor_types(path)
            q4_k, q6_k = 12, 14
            self.assertEqual(types["output.weight"], q6_k)
            self.assertEqual(types["token_embd.weight"], q4_k)
            more = {0, 1, 4, 7, 10, 13, 14, 15}
            for layer in range(16):
                for name in ("attn_v", "ffn_down"):
                    want = q6_k if layer in more else q4_k
                    self.assertEqual(types["blk.%d.%s.weight" % (layer, name)], want)
                self.assertEqual(types["blk.%d.attn_q.weight" % layer], q4_k)
            run(RUN, "-m", path, "-p", "x", "-n", "2")

    def test_presets_and_errors(self):
        run(MKMODEL, "--preset", "3B", "-o", "/tmp/x.gguf", "--vocab", VOCAB, status=2)
        r = run(MKMODEL, "-o", "/tmp/x.gguf", status=2)
        self.assertIn(b"--vocab", r.stderr)
        run(MKMODEL, "--type", "Q3_K", "-o", "/tmp/x.gguf", "--vocab", VOCAB, status=2)


class BenchTest(unittest.TestCase):
    """llamad-bench's output shape (its speeds are measured, not asserted)."""

    def test_json_lines(self):
        out = output(BENCH, "-p", "16", "-n", "8", "-r", "1", "-b", "2", "-t", "1", "--json",
                     timeout=300)
        rows = [json.loads(line) for line in out.decode().splitlines()]
        self.assertEqual([row["test"] for row in rows], ["pp16", "tg8", "tg8_batch2"])
        for row in rows:
            self.assertGreater(row["tokens_per_second"], 0)
            self.assertEqual(row["threads"], 1)
            self.assertTrue(1e6 < row["model_bytes"] <= os.path.getsize(BUNDLED))
        self.assertGreater(rows[1]["weight_bytes_per_token"], 1e6)
        self.assertGreater(rows[1]["bandwidth_gbps"], 0)

    def test_depth(self):
        # the decode tests start after 40 cached positions (past two KV blocks)
        out = output(BENCH, "-p", "0", "-n", "4", "-d", "40", "-r", "1", "-b", "3", "-t", "1",
                     "--json", timeout=300)
        rows = [json.loads(line) for line in out.decode().splitlines()]
        self.assertEqual([row["test"] for row in rows], ["tg4 @ d40", "tg4_batch3 @ d40"])
        self.assertEqual([row["depth"] for row in rows], [40, 40])

    def test_compute_roofline(self):
        # a Q8_0 model of known shape: 2 layers of width 64 (8 heads, 4 KV heads),
        # feed-forward 128, the SPM vocabulary's 32,000 tokens
        dim, layers, kv_dim, ff, vocab = 64, 2, 32, 128, 32000
        layer_macs = dim * dim * 2 + dim * kv_dim * 2 + dim * ff * 3
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "m.gguf")
            run(MKMODEL, "-o", path, "--vocab", VOCAB, "--type", "Q8_0", "--dim", str(dim),
                "--layers", str(layers), "--heads", "8", "--kv-heads", "4", "--ff", str(ff))

            def rows(*args, cpu=None):
                env = dict(os.environ)
                env.pop("LLAMAD_CPU", None)
                if cpu:
                    env["LLAMAD_CPU"] = cpu
                out = subprocess.run([BENCH, "-m", path, "-r", "1", "-t", "1", "--json", *args],
                                     capture_output=True, env=env, timeout=300, check=True)
                return [json.loads(line) for line in out.stdout.decode().splitlines()]

            pp16, tg4, tg4_batch2 = rows("-p", "16", "-n", "4", "-b", "2")
            (tg4_d40,) = rows("-p", "0", "-n", "4", "-d", "40", "-b", "1")[:1]
            # the bandwidth roofline: a decoding token's share of the weights, and the
            # K and V rows (F16, every layer) of the positions it sees
            kv_bytes = lambda seen: seen * layers * 2 * kv_dim * 2
            self.assertEqual(tg4["kv_bytes_per_token"], kv_bytes(2.5))
            self.assertEqual(tg4_batch2["kv_bytes_per_token"], kv_bytes(2.5))
            self.assertEqual(tg4_d40["kv_bytes_per_token"], kv_bytes(42.5))
            self.assertAlmostEqual(tg4_batch2["weight_bytes_per_token"],
                                   tg4["weight_bytes_per_token"] / 2, delta=0.5)
            for row in (tg4, tg4_batch2, tg4_d40):
                read = row["weight_bytes_per_token"] + row["kv_bytes_per_token"]
                self.assertAlmostEqual(
                    row["roofline_fraction"],
                    row["tokens_per_second"] * read / (row["bandwidth_gbps"] * 1e9), delta=2e-4)
            # attention's two products, over the positions a token sees on average
            attention = lambda seen: 2 * layers * dim * seen
            self.assertEqual(tg4["macs_per_token"],
                             layers * layer_macs + vocab * dim + attention(2.5))
            self.assertEqual(tg4_d40["macs_per_token"],
                             layers * layer_macs + vocab * dim + attention(42.5))
            # a prompt asks for the logits of its last token only
            self.assertEqual(pp16["macs_per_token"],
                             layers * layer_macs + vocab * dim / 16 + attention(8.5))
            for row in (pp16, tg4, tg4_d40):
                self.assertAlmostEqual(row["gmacs"],
                                       row["tokens_per_second"] * row["macs_per_token"] * 1e-9,
                                       delta=2e-3)
                self.assertGreater(row["peak_gmacs"], 0)
                self.assertAlmostEqual(row["compute_fraction"], row["gmacs"] / row["peak_gmacs"],
                                       delta=2e-4)
            # Q8_0 runs on the int8 dot products of the kernel set in use
            self.assertIn(tg4["peak_instruction"],
                          ["vpdpbusd zmm", "vpmaddubsw+vpmaddwd zmm", "vpmaddubsw+vpmaddwd ymm"])
            (avx2,) = rows("-p", "0", "-n", "2", "-b", "1", cpu="avx2")[:1]
            self.assertEqual(avx2["peak_instruction"], "vpmaddubsw+vpmaddwd ymm")
            (scalar,) = rows("-p", "0", "-n", "2", "-b", "1", cpu="scalar")[:1]
            self.assertNotIn("peak_instruction", scalar)
            self.assertNotIn("compute_fraction", scalar)

    def test_bad_flags(self):
        r = run(BENCH, "-d", "65536", status=2)
        self.assertIn(b"more than", r.stderr)
        r = run(BENCH, "-p", "x", status=2)
        self.assertIn(b"usage", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
