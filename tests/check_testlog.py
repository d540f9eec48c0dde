"""Reads one build's `meson test` run for tests/run-suite: prints each suite's
time, and fails when a registered test did not run or a test skipped without
leave (tests/allowed-skips).

Usage: check_testlog.py BUILD_DIR [SUITE_NOT_RUN ...]
(the suites this build leaves out on purpose, as `meson test --no-suite` did)"""
import fnmatch
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# Skips inside a test that still exits 0, which meson counts as passed:
# cmocka's line for a skipped test (not its summary line), and unittest's
# verbose line.
CMOCKA_SKIP = re.compile(r"^\[  SKIPPED \] (?!\d+ test\(s\))(\S+)$", re.M)
UNITTEST_SKIP = re.compile(r"^(\w+) \(.*\) \.\.\. skipped '(.*)'$", re.M)


def registered(build):
    """Test name -> its suites (without the project's prefix)."""
    out = subprocess.run(["meson", "introspect", "--tests", build], capture_output=True,
                         check=True).stdout
    return {t["name"]: [s.split(":")[-1] for s in t["suite"]] for t in json.loads(out)}


def allowed_skips():
    rules = []
    with open(os.path.join(HERE, "allowed-skips"), encoding="utf-8") as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                pattern, reason = line.split(None, 1)
                rules.append((pattern, reason.strip()))
    return rules


def shared_present():
    """Whether the shared test data the tests look for is there (see tests/meson.build)."""
    shared = os.environ.get("LLAMAD_SHARED_DIR") or os.path.join(HERE, "..", "..", "shared")
    return os.path.isdir(os.path.join(shared, "testdata"))


def skips(entry):
    """What skipped in one testlog entry: the whole test, or cases inside it."""
    out = (entry.get("stdout") or "") + (entry.get("stderr") or "")
    found = []
    if entry["result"] == "SKIP":
        said = [line for line in out.splitlines() if "SKIP" in line]
        found.append(said[0].strip() if said else "exit status 77")
    found += ["%s skipped" % name for name in sorted(set(CMOCKA_SKIP.findall(out)))]
    found += ["%s skipped: %s" % m for m in UNITTEST_SKIP.findall(out)]
    return found


def main(build, left_out):
    tests = {name: suites for name, suites in registered(build).items()
             if not set(suites) & set(left_out)}
    with open(os.path.join(build, "meson-logs", "testlog.json"), encoding="utf-8") as f:
        runs = [json.loads(line) for line in f]
    for r in runs:  # "llamad:unit+shared-data / quant_k" -> "quant_k"
        r["name"] = r["name"].split(" / ", 1)[-1]
    ok = True
    missing = sorted(set(tests) - {r["name"] for r in runs})
    if missing or len(runs) < len(tests):
        print("%s: FAIL: %d of %d registered tests ran; missing: %s"
              % (build, len(runs), len(tests), " ".join(missing)))
        ok = False

    seconds, count = {}, {}
    for r in runs:
        for suite in tests.get(r["name"], []):
            seconds[suite] = seconds.get(suite, 0.0) + r["duration"]
            count[suite] = count.get(suite, 0) + 1
    print("%s: suite times (their tests' durations, summed): %s" % (build, ", ".join(
        "%s %.1f s (%d)" % (suite, seconds[suite], count[suite]) for suite in sorted(seconds))))

    rules = allowed_skips()
    shared = shared_present()
    for r in runs:
        for what in skips(r):
            reason = next((why for pattern, why in rules if fnmatch.fnmatchcase(r["name"], pattern)),
                          None)
            if reason is None and not shared and "shared-data" in tests.get(r["name"], []):
                reason = "../shared (or $LLAMAD_SHARED_DIR) is not there"
            if reason:
                print("%s: allowed skip: %s (%s): %s" % (build, r["name"], what, reason))
            else:
                print("%s: FAIL: %s skipped (%s), which tests/allowed-skips does not allow"
                      % (build, r["name"], what))
                ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
