#!/usr/bin/env python3
"""Writes the GGUF fuzz target's seed corpus (tests/fuzz/gguf/seed-*.gguf): small
files of each shape the reader takes, a vocabulary the tokenizer loads among them.
usage: gguf_seeds.py DIR"""
import os
import struct
import sys

U32, I32, F32, BOOL, STR, ARR, U64 = 4, 5, 6, 7, 8, 9, 10


def s(text):
    b = text.encode()
    return struct.pack("<Q", len(b)) + b


def kv(key, kind, payload):
    return s(key) + struct.pack("<I", kind) + payload


def arr(kind, items):
    body = b"".join(s(i) if kind == STR else struct.pack({I32: "<i", F32: "<f"}[kind], i)
                    for i in items)
    return struct.pack("<IQ", kind, len(items)) + body


def gguf(kvs, tensors=(), version=3, align=32):
    head = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs)) + b"".join(kvs)
    infos, data = b"", b""
    for name, dims, raw in tensors:  # F32 tensors
        data += b"\0" * (-len(data) % align)
        infos += s(name) + struct.pack("<I", len(dims)) + b"".join(
            struct.pack("<Q", d) for d in dims) + struct.pack("<IQ", 0, len(data))
        data += raw
    out = head + infos
    return out + b"\0" * (-len(out) % align) + data if tensors else out


def vocab():
    pieces = ["<unk>", "<s>", "</s>", "\u2581", "a", "b", "ab", "\u2581a", "<0x0A>", "<|im_end|>"]
    types = [2, 3, 3, 1, 1, 1, 1, 1, 6, 4]
    return [kv("tokenizer.ggml.model", STR, s("llama")),
            kv("tokenizer.ggml.tokens", ARR, arr(STR, pieces)),
            kv("tokenizer.ggml.scores", ARR, arr(F32, [0, 0, 0, -1, -2, -2, -1, -0.5, 0, 0])),
            kv("tokenizer.ggml.token_type", ARR, arr(I32, types))]


def main(out):
    seeds = {
        "empty": gguf([]),
        "v2": gguf([kv("general.name", STR, s("x"))], version=2),
        "scalars": gguf([kv("a.u32", U32, struct.pack("<I", 7)),
                         kv("a.i32", I32, struct.pack("<i", -7)),
                         kv("a.f32", F32, struct.pack("<f", 0.5)),
                         kv("a.bool", BOOL, b"\1"),
                         kv("a.u64", U64, struct.pack("<Q", 1 << 40)),
                         kv("general.alignment", U32, struct.pack("<I", 64))]),
        "nested": gguf([kv("a.nested", ARR, struct.pack("<IQ", ARR, 2) + arr(I32, [1, 2]) +
                           arr(STR, ["x", "yz"]))]),
        "tensors": gguf([kv("general.architecture", STR, s("llama"))],
                        [("w", [2, 2], struct.pack("<4f", 1, 2, 3, 4)),
                         ("v", [3], struct.pack("<3f", 5, 6, 7))]),
        "vocab": gguf(vocab()),
        "bpe": gguf([kv("tokenizer.ggml.model", STR, s("gpt2")),
                     kv("tokenizer.ggml.pre", STR, s("llama-bpe")),
                     kv("tokenizer.ggml.tokens", ARR, arr(STR, ["a", "b", "ab", "\u0120"])),
                     kv("tokenizer.ggml.merges", ARR, arr(STR, ["a b"]))]),
    }
    for name, data in seeds.items():
        with open(os.path.join(out, "seed-%s.gguf" % name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main(sys.argv[1])
