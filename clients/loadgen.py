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
import http.client
import json
import os
import random
import statistics
import threading
import time
import urllib.parse


def percentile(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    k = (len(values) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def connect(url):
    u = urllib.parse.urlparse(url)
    return http.client.HTTPConnection(u.hostname, u.port or 80, timeout=600)


def one_stream(url, path, body, result):
    """Streams one request; result gets t0 (when it was sent), events (each data
    event as (arrival time, parsed JSON)) and end, or error."""
    conn = connect(url)
    t0 = time.monotonic()
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    resp = conn.getresponse()
    if resp.status != 200:
        result["error"] = "HTTP %d: %s" % (resp.status, resp.read()[:200])
        return
    events, buf = [], b""
    while True:
        chunk = resp.read1(65536)
        if not chunk:
            break
        buf += chunk
        while b"\n\n" in buf:
            event, buf = buf.split(b"\n\n", 1)
            if event.startswith(b"data: ") and event != b"data: [DONE]":
                events.append((time.monotonic(), json.loads(event[6:])))
    conn.close()
    result.update(t0=t0, events=events, end=time.monotonic())


def completion_stream(url, prompt, max_tokens, result):
    """/v1/completions: arrivals of the token events, tokens generated."""
    body = {"prompt": prompt, "max_tokens": max_tokens, "temperature": 0, "stream": True,
            "ignore_eos": True, "stream_options": {"include_usage": True}}
    one_stream(url, "/v1/completions", body, result)
    events = result.get("events", [])
    result["arrivals"] = [t for t, d in events if d.get("choices")]
    result["tokens"] = sum(d["usage"]["completion_tokens"] for _, d in events if d.get("usage"))


def session_stream(url, prompt, max_tokens, session_id, result):
    """/completion (llama.cpp's shape, which names each generated token's id):
    arrivals, the generated ids and the prompt tokens taken from the cache."""
    body = {"prompt": prompt, "n_predict": max_tokens, "temperature": 0, "stream": True,
            "ignore_eos": True, "n_probs": 1, "session_id": session_id}
    one_stream(url, "/completion", body, result)
    events = result.get("events", [])
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


def all_streams(target, args_list):
    """Runs target(*args, result) for every args at once; returns the results and
    the wall time."""
    results = [dict() for _ in args_list]
    threads = [threading.Thread(target=target, args=tuple(a) + (results[i],))
               for i, a in enumerate(args_list)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    errors = [r["error"] for r in results if "error" in r]
    if errors:
        raise SystemExit("errors: %s" % errors[:3])
    return results, time.monotonic() - start


STEADY_FROM = 8  # the token from which "ITL p99 late" counts gaps


def ttfts(results):
    return [r["arrivals"][0] - r["t0"] for r in results if r["arrivals"]]


def run(url, streams, prompt_tokens, max_tokens, rng):
    prompts = [[1] + random_ids(rng, prompt_tokens - 1) for _ in range(streams)]
    results, wall = all_streams(completion_stream, [(url, p, max_tokens) for p in prompts])
    ttft = ttfts(results)
    itl = [b - a for r in results for a, b in zip(r["arrivals"], r["arrivals"][1:])]
    late = [b - a for r in results
            for a, b in zip(r["arrivals"][STEADY_FROM - 1:], r["arrivals"][STEADY_FROM:])]
    total = sum(r["tokens"] for r in results)
    decode = [(len(r["arrivals"]) - 1) / (r["arrivals"][-1] - r["arrivals"][0])
              for r in results if len(r["arrivals"]) > 1]
    return {"streams": streams, "tokens": total, "seconds": wall, "tokens_per_second": total / wall,
            "stream_decode_tps_p50": percentile(decode, 50),
            "ttft_p50_ms": percentile(ttft, 50) * 1e3, "ttft_p99_ms": percentile(ttft, 99) * 1e3,
            "itl_p50_ms": percentile(itl, 50) * 1e3, "itl_p99_ms": percentile(itl, 99) * 1e3,
            "itl_p99_late_ms": percentile(late, 99) * 1e3}


def run_sessions(url, streams, system_tokens, user_tokens, max_tokens, rng):
    """Two turns of `streams` sessions that share a system prompt (new for every
    run, so the first turn finds nothing cached), then the first turn of as many
    new sessions, which find the system prompt cached."""
    tag = "loadgen-%d-%d" % (os.getpid(), rng.randrange(1 << 30))
    system = [1] + random_ids(random.Random(tag + str(time.time())), system_tokens - 1)

    def turn(prompts, sessions):
        return all_streams(session_stream, [(url, prompts[i], max_tokens, sessions[i])
                                            for i in range(streams)])[0]

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
    ap.add_argument("--repeat", type=int, default=1, help="runs per count (median reported)")
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
        row = min(runs, key=lambda r: abs(r["tokens_per_second"] -
                                          statistics.median(x["tokens_per_second"] for x in runs)))
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
