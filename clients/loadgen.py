#!/usr/bin/env python3
"""Load generator for llamad: N concurrent streaming clients, each sending one
completion request with a distinct prompt of a given token length; reports
aggregate generated tokens/s (over the whole run, prompts included), each
stream's decode rate (its tokens after the first over the time they took, the
number to hold against llamad-bench's tg at the same depth), time to first
token and inter-token latency percentiles, and the daemon's peak resident memory.
"ITL p99 late" leaves out each stream's first STEADY_FROM - 1 gaps: all streams
start together, so those hold the steps that carry the other streams' prompts and
the decoding steps right after them; the later gaps are the steady state.

  clients/loadgen.py --url http://127.0.0.1:8080 --streams 1,2,4,8,16 \\
      --prompt-tokens 128 --max-tokens 128 --pid $(pidof llamad)

With --repeat N every count runs N times: tokens/s and the decode rate are the
median run's, the latency percentiles are over the streams of all N runs.

Standard library only. Prompts are token-id arrays (BOS, then random ids), so
every client's prompt differs and the prefix cache cannot flatter the numbers
(the ids are drawn afresh for every run unless --seed is given: a daemon keeps
the KV cache of earlier runs, and a repeated prompt would find it there).

With --sessions it measures the KV cache instead: every client has a session
and two turns. The first turn is a system prompt shared by all clients
(--system-tokens, new for every run) plus a message of its own (--user-tokens);
the second turn repeats the first, its answer (as token ids, from the /completion
endpoint) and a new message. It reports the TTFT of both turns and the prompt
tokens the second took from the cache, then the TTFT of as many new sessions,
whose first turn finds the system prompt cached:

  clients/loadgen.py --sessions --streams 1,4 --system-tokens 1000 --max-tokens 32"""
import argparse
import json
import os
import random
import selectors
import socket
import statistics
import time
import urllib.parse


def percentile(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    k = (len(values) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


class Response:
    """One HTTP/1.1 response read as it arrives: the status, then the body (chunked
    or not) cut into server-sent events, each stamped with the arrival time of the
    read that completed it. Parsing the events waits until the run is over."""

    def __init__(self):
        self.head = b""
        self.status = None
        self.chunked = False
        self.length = None  # Content-Length of a body that is not chunked
        self.raw = b""  # chunked body not yet decoded
        self.data_left = 0  # bytes of the current chunk still to come
        self.crlf_left = 0  # of the CRLF after it
        self.body = b""  # decoded body not yet cut into events
        self.events = []  # (arrival time, event bytes)
        self.complete = False

    def feed(self, data, now):
        if self.status is None:
            self.head += data
            if b"\r\n\r\n" not in self.head:
                return
            head, data = self.head.split(b"\r\n\r\n", 1)
            lines = head.lower().split(b"\r\n")
            self.status = int(lines[0].split()[1])
            self.chunked = any(l.startswith(b"transfer-encoding:") and b"chunked" in l
                               for l in lines[1:])
            for l in lines[1:]:
                if l.startswith(b"content-length:"):
                    self.length = int(l.split(b":")[1])
        if self.chunked:
            self.raw += data
            self.dechunk()
        else:
            self.body += data
            if self.length is not None:
                self.length -= len(data)
                self.complete = self.length <= 0
        while b"\n\n" in self.body:
            event, self.body = self.body.split(b"\n\n", 1)
            self.events.append((now, event))

    def dechunk(self):
        while not self.complete:
            if self.data_left:
                take = self.raw[:self.data_left]
                self.raw = self.raw[len(take):]
                self.body += take
                self.data_left -= len(take)
                if self.data_left:
                    return
                self.crlf_left = 2
            if self.crlf_left:
                skip = min(self.crlf_left, len(self.raw))
                self.raw = self.raw[skip:]
                self.crlf_left -= skip
                if self.crlf_left:
                    return
            if b"\r\n" not in self.raw:
                return
            line, self.raw = self.raw.split(b"\r\n", 1)
            self.data_left = int(line.split(b";")[0], 16)
            self.complete = self.data_left == 0


def all_streams(url, requests):
    """Sends every (path, body) request at once, each on its own connection, and
    reads the responses in this one thread, so the client takes as little of the
    machine's time from the daemon as it can and stamps each event when it is
    read. Returns each request's result (t0, when it was sent; events, each data
    event as (arrival time, parsed JSON); end) and the wall time."""
    u = urllib.parse.urlparse(url)
    selector = selectors.DefaultSelector()
    results = [dict() for _ in requests]
    responses = [Response() for _ in requests]
    start = time.monotonic()
    for i, (path, body) in enumerate(requests):
        data = json.dumps(body).encode()
        head = ("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                "Content-Length: %d\r\nConnection: close\r\n\r\n"
                % (path, u.netloc, len(data))).encode()
        sock = socket.create_connection((u.hostname, u.port or 80), timeout=600)
        results[i]["t0"] = time.monotonic()
        sock.sendall(head + data)
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ, i)
    while selector.get_map():
        for key, _ in selector.select():
            i = key.data
            data = key.fileobj.recv(65536)
            now = time.monotonic()
            responses[i].feed(data, now)
            if not data or responses[i].complete:
                selector.unregister(key.fileobj)
                key.fileobj.close()
                results[i]["end"] = now
    wall = time.monotonic() - start
    for result, resp in zip(results, responses):
        if resp.status != 200:
            result["error"] = "HTTP %s: %s" % (resp.status, resp.body[:200])
            continue
        result["events"] = [(t, json.loads(e[6:])) for t, e in resp.events
                            if e.startswith(b"data: ") and e != b"data: [DONE]"]
    errors = [r["error"] for r in results if "error" in r]
    if errors:
        raise SystemExit("errors: %s" % errors[:3])
    return results, wall


def completion_request(prompt, max_tokens):
    """/v1/completions, streamed, with the usage at the end."""
    return ("/v1/completions", {"prompt": prompt, "max_tokens": max_tokens, "temperature": 0,
                                "stream": True, "ignore_eos": True,
                                "stream_options": {"include_usage": True}})


def read_completion(result):
    """Arrivals of the token events, tokens generated."""
    events = result["events"]
    result["arrivals"] = [t for t, d in events if d.get("choices")]
    result["tokens"] = sum(d["usage"]["completion_tokens"] for _, d in events if d.get("usage"))


def session_request(prompt, max_tokens, session_id):
    """/completion (llama.cpp's shape, which names each generated token's id)."""
    return ("/completion", {"prompt": prompt, "n_predict": max_tokens, "temperature": 0,
                            "stream": True, "ignore_eos": True, "n_probs": 1,
                            "session_id": session_id})


def read_session(result):
    """Arrivals, the generated ids and the prompt tokens taken from the cache."""
    events = result["events"]
    result["arrivals"] = [t for t, d in events if not d["stop"]]
    result["ids"] = [p["id"] for _, d in events for p in d.get("completion_probabilities", [])]
    result["cached"] = sum(d["tokens_cached"] for _, d in events if d["stop"])


def peak_rss_mb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def random_ids(rng, n):
    return [rng.randrange(100, 500) for _ in range(n)]


STEADY_FROM = 8  # the token from which "ITL p99 late" counts gaps


def ttfts(results):
    return [r["arrivals"][0] - r["t0"] for r in results if r["arrivals"]]


def run(url, streams, prompt_tokens, max_tokens, rng):
    prompts = [[1] + random_ids(rng, prompt_tokens - 1) for _ in range(streams)]
    results, wall = all_streams(url, [completion_request(p, max_tokens) for p in prompts])
    for r in results:
        read_completion(r)
    ttft = ttfts(results)
    itl = [b - a for r in results for a, b in zip(r["arrivals"], r["arrivals"][1:])]
    late = [b - a for r in results
            for a, b in zip(r["arrivals"][STEADY_FROM - 1:], r["arrivals"][STEADY_FROM:])]
    total = sum(r["tokens"] for r in results)
    decode = [(len(r["arrivals"]) - 1) / (r["arrivals"][-1] - r["arrivals"][0])
              for r in results if len(r["arrivals"]) > 1 and r["arrivals"][-1] > r["arrivals"][0]]
    return {"streams": streams, "tokens": total, "seconds": wall, "tokens_per_second": total / wall,
            "stream_decode_tps_p50": percentile(decode, 50)}, (ttft, itl, late)


def latencies(samples):
    """TTFT and ITL percentiles (ms) of (ttft, itl, late) lists of seconds."""
    ttft, itl, late = samples
    return {"ttft_p50_ms": percentile(ttft, 50) * 1e3, "ttft_p99_ms": percentile(ttft, 99) * 1e3,
            "itl_p50_ms": percentile(itl, 50) * 1e3, "itl_p99_ms": percentile(itl, 99) * 1e3,
            "itl_p99_late_ms": percentile(late, 99) * 1e3}


def run_sessions(url, streams, system_tokens, user_tokens, max_tokens, rng):
    """Two turns of `streams` sessions that share a system prompt (new for every
    run, so the first turn finds nothing cached), then the first turn of as many
    new sessions, which find the system prompt cached."""
    tag = "loadgen-%d-%d" % (os.getpid(), rng.randrange(1 << 30))
    system = [1] + random_ids(random.Random(tag + str(time.time())), system_tokens - 1)

    def turn(prompts, sessions):
        results = all_streams(url, [session_request(prompts[i], max_tokens, sessions[i])
                                    for i in range(streams)])[0]
        for r in results:
            read_session(r)
        return results

    sessions = ["%s-%d" % (tag, i) for i in range(streams)]
    first = [system + random_ids(rng, user_tokens) for _ in range(streams)]
    r1 = turn(first, sessions)
    second = [first[i] + r1[i]["ids"] + random_ids(rng, user_tokens) for i in range(streams)]
    r2 = turn(second, sessions)
    r3 = turn([system + random_ids(rng, user_tokens) for _ in range(streams)],
              ["%s-new-%d" % (tag, i) for i in range(streams)])
    t1, t2, t3 = (percentile(ttfts(r), 50) for r in (r1, r2, r3))
    return {"streams": streams, "turn1_prompt_tokens": len(first[0]),
            "turn1_ttft_p50_ms": t1 * 1e3, "turn2_ttft_p50_ms": t2 * 1e3,
            "ttft_ratio": t1 / t2, "new_session_ttft_p50_ms": t3 * 1e3,
            "turn2_prompt_tokens": statistics.mean(len(p) for p in second),
            "turn2_cached_tokens": statistics.mean(r["cached"] for r in r2),
            "new_session_cached_tokens": statistics.mean(r["cached"] for r in r3)}


def main_sessions(args, rng):
    if not args.json:
        print("%7s %12s %12s %7s %18s %14s %13s" % (
            "streams", "turn 1 TTFT", "turn 2 TTFT", "ratio", "turn 2 cached",
            "new sess. TTFT", "new cached"))
    for n in [int(x) for x in args.streams.split(",")]:
        row = run_sessions(args.url, n, args.system_tokens, args.user_tokens, args.max_tokens,
                           rng)
        if args.json:
            print(json.dumps(row))
        else:
            print("%7d %10.1fms %10.1fms %6.1fx %8.0f of %6.0f %12.1fms %13.0f" % (
                n, row["turn1_ttft_p50_ms"], row["turn2_ttft_p50_ms"], row["ttft_ratio"],
                row["turn2_cached_tokens"], row["turn2_prompt_tokens"],
                row["new_session_ttft_p50_ms"], row["new_session_cached_tokens"]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", default="http://127.0.0.1:8080")
    ap.add_argument("--streams", default="1,2,4,8,16", help="comma-separated client counts")
    ap.add_argument("--prompt-tokens", type=int, default=128)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs per count (tokens/s of the median run, latencies of all)")
    ap.add_argument("--pid", type=int, help="the daemon's pid, for peak RSS")
    ap.add_argument("--seed", type=int, help="for the prompt ids (default: a new draw each run)")
    ap.add_argument("--json", action="store_true", help="one JSON object per line")
    ap.add_argument("--sessions", action="store_true",
                    help="two turns per client with session reuse (see above)")
    ap.add_argument("--system-tokens", type=int, default=1000,
                    help="--sessions: shared system prompt length")
    ap.add_argument("--user-tokens", type=int, default=32,
                    help="--sessions: length of each message")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    if args.sessions:
        main_sessions(args, rng)
        return
    if not args.json:
        print("%7s %10s %12s %10s %10s %10s %10s %13s %9s" % (
            "streams", "tok/s", "decode/strm", "TTFT p50", "TTFT p99", "ITL p50", "ITL p99",
            "ITL p99 late", "RSS MB"))
    for n in [int(x) for x in args.streams.split(",")]:
        runs = [run(args.url, n, args.prompt_tokens, args.max_tokens, rng)
                for _ in range(args.repeat)]
        median = statistics.median(r["tokens_per_second"] for r, _ in runs)
        row = min((r for r, _ in runs), key=lambda r: abs(r["tokens_per_second"] - median))
        row.update(latencies([sum((s[k] for _, s in runs), []) for k in range(3)]))
        row["peak_rss_mb"] = peak_rss_mb(args.pid) if args.pid else float("nan")
        if args.json:
            print(json.dumps(row))
        else:
            print("%7d %10.1f %12.1f %8.1fms %8.1fms %8.2fms %8.2fms %11.2fms %9.1f" % (
                n, row["tokens_per_second"], row["stream_decode_tps_p50"], row["ttft_p50_ms"],
                row["ttft_p99_ms"], row["itl_p50_ms"], row["itl_p99_ms"], row["itl_p99_late_ms"],
                row["peak_rss_mb"]))


if __name__ == "__main__":
    main()
