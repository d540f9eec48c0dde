"""`meson test --benchmark structured-output`: what a JSON schema costs one
stream, through HTTP. For each synthetic model of the shared data, a daemon
with one slot alternates a free request and one under a records schema
(bounded strings, so every length is a state of its own), 256 tokens each at
temperature 1, seeds 1 to 7, and compares their decode rates
(/completion's timings.predicted_per_second). The first constrained request
meets every state for the first time. Prints; asserts nothing."""
import statistics
import sys

from llamad_server import Server, shared_model

SCHEMA = {
    "type": "array", "minItems": 200,
    "items": {"type": "object", "additionalProperties": False,
              "required": ["name", "age", "tags"],
              "properties": {"name": {"type": "string", "maxLength": 12},
                             "age": {"type": "integer", "minimum": 0, "maximum": 120},
                             "tags": {"type": "array", "items": {"enum": ["a", "b", "c"]},
                                      "maxItems": 3}}}}
TOKENS = 256


def rate(server, extra, seed):
    body = {"prompt": "JSON:", "n_predict": TOKENS, "temperature": 1, "seed": seed, **extra}
    status, _, out = server.post("/completion", body, timeout=600)
    if status != 200 or out["tokens_predicted"] != TOKENS:
        sys.exit(f"unexpected answer: {status} {out}")
    return out["timings"]["predicted_per_second"]


def bench(name):
    path = shared_model(name)
    if not path:
        print(f"{name}: not in the shared data, left out")
        return
    with Server("-m", path, "--parallel", "1") as server:
        rate(server, {"ignore_eos": True}, 0)  # warm-up
        free, constrained = [], []
        for seed in range(1, 8):
            free.append(rate(server, {"ignore_eos": True}, seed))
            constrained.append(rate(server, {"json_schema": SCHEMA}, seed))
            print(f"{name} seed {seed}: free {free[-1]:.0f} t/s, schema {constrained[-1]:.0f} t/s")
    f, c = statistics.median(free), statistics.median(constrained)
    print(f"{name}: median free {f:.0f} t/s, with the schema {c:.0f} t/s = {100 * c / f:.1f} %")


for model in ("synth256-Q8_0.gguf", "synth-llama3-Q8_0.gguf"):
    bench(model)
