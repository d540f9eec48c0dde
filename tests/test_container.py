"""The container image, built and run here without a Docker engine: a Debian 12
root made with debootstrap (cached in the build directory) is imported into
podman under the name the Dockerfile's FROM uses, the Dockerfile is built with
`podman build --isolation=chroot --network host`, and the image's entry point is
run with `buildah from` + `buildah run --isolation=chroot --network host` and
talked to over loopback: /health, a completion, the user it runs as, the image's
configuration, its HEALTHCHECK command, a model mounted as a volume, and a clean
exit on the image's STOPSIGNAL.

Needs root (rootful podman) and podman, buildah and debootstrap; without them it
fails under CI=true and skips (exit 77) elsewhere. Each phase prints its time."""
import contextlib
import fcntl
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

SOURCE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.abspath(os.environ["LLAMAD_BUILD_DIR"])
MKMODEL = os.path.join(BUILD, "llamad-mkmodel")
BUNDLED = os.path.join(SOURCE, "models", "stories260K.gguf")
DOCKERFILE = os.path.join(SOURCE, "Dockerfile")

# The base root: Debian 12, as debootstrap's minbase variant makes it, kept in
# the build directory and made again when what it was made with changes or
# after MAX_AGE (so point releases and security fixes come in).
SUITE, VARIANT = "bookworm", "minbase"
MIRROR = os.environ.get("LLAMAD_DEBIAN_MIRROR", "http://deb.debian.org/debian")
CACHE = os.path.join(BUILD, "container-base")
MAX_AGE = 7 * 24 * 3600

# Names of this run's image and containers: parallel runs do not meet.
RUN_ID = uuid.uuid4().hex[:12]
IMAGE = "localhost/llamad-test-" + RUN_ID
PROMPT = {"prompt": "Once upon a time", "max_tokens": 8, "temperature": 0}


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


@contextlib.contextmanager
def phase(name):
    start = time.monotonic()
    print("phase %s ..." % name, flush=True)
    try:
        yield
    finally:
        print("phase %s: %.1f s" % (name, time.monotonic() - start), flush=True)


# `buildah run --isolation=chroot` re-executes itself from a sealed in-memory
# copy before it starts the program; once in CI's run the sealing failed
# ("Close_Fd sealing memfd copy: Device or resource busy") and the program never
# ran. A start that fails so is tried again, a few times; the program's own
# failures are not.
RUNTIME_START_FAILURE = "sealing memfd copy"
RUNTIME_START_ATTEMPTS = 3


def runtime_did_not_start(stderr):
    if RUNTIME_START_FAILURE not in stderr:
        return False
    print("  buildah run failed before the program started; again:\n  %s"
          % stderr.strip()[-500:], flush=True)
    return True


def run(cmd, timeout=600, check_status=True, **kw):
    """Runs cmd and returns it; its output is printed when it fails."""
    for _ in range(RUNTIME_START_ATTEMPTS):
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=timeout, **kw)
        if cmd[:2] != ["buildah", "run"] or not runtime_did_not_start(r.stderr):
            break
    if check_status and r.returncode != 0:
        raise Failure("%s exited with %d:\n%s%s" % (" ".join(cmd), r.returncode,
                                                   r.stdout[-4000:], r.stderr[-4000:]))
    return r


def missing_tools():
    """What this machine lacks to run the test ([] when nothing)."""
    lacks = [t for t in ("podman", "buildah", "debootstrap", "tar", "dpkg-query")
             if not shutil.which(t)]
    if os.geteuid() != 0:
        lacks.append("root (rootful podman; run the suite as root)")
    return lacks


def from_name():
    """The image every stage of the Dockerfile starts FROM (a name of a stage
    aside): the name the base root is imported under."""
    stages, bases = set(), set()
    with open(DOCKERFILE, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"\s*FROM\s+(\S+)(?:\s+AS\s+(\S+))?\s*$", line, re.I)
            if m:
                if m.group(1) not in stages:
                    bases.add(m.group(1))
                if m.group(2):
                    stages.add(m.group(2))
    check(len(bases) == 1, "the Dockerfile's stages start from %s, not one image" % bases)
    return bases.pop()


# --- the base image -------------------------------------------------------------


def base_key():
    version = run(["dpkg-query", "-W", "-f", "${Version}", "debootstrap"]).stdout.strip()
    return "%s %s %s debootstrap %s" % (SUITE, VARIANT, MIRROR, version)


def read_stamp(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def write_stamp(path, stamp):
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(stamp, f)
    os.replace(path + ".tmp", path)


def image_id(name):
    r = run(["podman", "image", "inspect", "--format", "{{.Id}}", name], check_status=False)
    return r.stdout.strip() if r.returncode == 0 else None


def base_image(name):
    """The debootstrapped root as the image `name`: made and imported only when
    the cached one is missing, stale or made otherwise."""
    os.makedirs(CACHE, exist_ok=True)
    tar, stamp_path = os.path.join(CACHE, "root.tar"), os.path.join(CACHE, "stamp.json")
    with open(os.path.join(CACHE, "lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another run of this build waits here
        key, stamp = base_key(), read_stamp(stamp_path)
        fresh = (stamp.get("key") == key and os.path.exists(tar)
                 and time.time() - stamp.get("made", 0) < MAX_AGE)
        if not fresh:
            with phase("debootstrap %s %s" % (VARIANT, SUITE)):
                root = tempfile.mkdtemp(prefix="root.", dir=CACHE)
                try:
                    run(["debootstrap", "--variant=" + VARIANT, SUITE, root, MIRROR],
                        timeout=1200)
                    run(["tar", "-C", root, "--numeric-owner", "-cf", tar + ".tmp", "."])
                    os.replace(tar + ".tmp", tar)
                finally:
                    shutil.rmtree(root, ignore_errors=True)
                stamp = {"key": key, "made": time.time()}
                write_stamp(stamp_path, stamp)
        else:
            print("base root: cached (%s, %.1f days old)"
                  % (key, (time.time() - stamp["made"]) / 86400), flush=True)
        if not fresh or not stamp.get("image") or image_id(name) != stamp["image"]:
            with phase("podman import as " + name):
                run(["podman", "import", "--change", 'CMD ["/bin/bash"]', tar, name])
                stamp["image"] = image_id(name)
                check(stamp["image"], "podman import made no image " + name)
                write_stamp(stamp_path, stamp)
        else:
            print("base image %s: imported before (%s)" % (name, stamp["image"][:12]),
                  flush=True)


# --- the daemon in a container ----------------------------------------------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children(pid):
    out = []
    for task in os.listdir("/proc/%d/task" % pid):
        with contextlib.suppress(OSError):
            with open("/proc/%d/task/%s/children" % (pid, task)) as f:
                out += [int(p) for p in f.read().split()]
    return out


def descendant_named(pid, comm):
    """The first process called comm below pid, or None."""
    todo = [pid]
    while todo:
        p = todo.pop()
        with contextlib.suppress(OSError):
            with open("/proc/%d/comm" % p) as f:
                if f.read().strip() == comm and p != pid:
                    return p
            todo += children(p)
    return None


def proc_ids(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return [int(x) for x in line.split()[1:]]
    raise Failure("no %s in /proc/%d/status" % (field, pid))


class Daemon:
    """The image's entry point, in a buildah container, on a loopback port."""

    def __init__(self, container, entrypoint, port, env=(), args=(), volumes=()):
        self.port = port
        cmd = ["buildah", "run", "--isolation=chroot", "--network", "host"]
        for v in volumes:
            cmd += ["-v", v]
        for e in env:
            cmd += ["--env", e]
        self.env = list(env)
        self.cmd = cmd + [container, "--"] + list(entrypoint) + list(args)
        self.container = container
        self.log = []
        self.proc = None
        self.pid = None

    def __enter__(self):
        self.starts = 1
        self._start()
        return self

    def _start(self):
        self.log = []
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.reader = threading.Thread(target=self._read_log, daemon=True)
        self.reader.start()

    def _restart_if_runtime_failed(self):
        """True when buildah run failed before the daemon started, and it was
        started again (RUNTIME_START_FAILURE)."""
        if self.pid or self.starts >= RUNTIME_START_ATTEMPTS:
            return False
        if not runtime_did_not_start(self.logged()):
            return False
        self.proc.stderr.close()
        self.starts += 1
        self._start()
        return True

    def __exit__(self, *exc):
        """After a failure: the daemon killed first (buildah run killed alone
        may leave it running), then buildah run."""
        if self.proc.poll() is None:
            if self.pid:
                with contextlib.suppress(OSError):
                    os.kill(self.pid, signal.SIGKILL)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)
        self.proc.stderr.close()

    def _read_log(self):
        for raw in self.proc.stderr:
            self.log.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def logged(self):
        if self.proc.poll() is not None:
            self.reader.join(5)  # the last lines first
        return "\n".join(self.log[-60:])

    def wait_healthy(self, timeout=120):
        """Waits for /health to answer 200 and for the daemon's process."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None and self._restart_if_runtime_failed():
                continue
            check(self.proc.poll() is None,
                  "buildah run exited with %s:\n%s" % (self.proc.returncode, self.logged()))
            self.pid = self.pid or descendant_named(self.proc.pid, "llamad")
            with contextlib.suppress(OSError, http.client.HTTPException):
                if self.pid and self.request("GET", "/health", timeout=5)[0] == 200:
                    return
            time.sleep(0.25)
        raise Failure("no 200 from /health within %d s:\n%s" % (timeout, self.logged()))

    def request(self, method, path, body=None, timeout=60):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            hdrs = {"Content-Type": "application/json"} if body is not None else {}
            c.request(method, path, body=json.dumps(body) if body is not None else None,
                      headers=hdrs)
            r = c.getresponse()
            data = r.read()
            return r.status, json.loads(data) if data else None
        finally:
            c.close()

    def in_container(self, *cmd):
        """Runs a command beside the daemon, in its container and environment."""
        env = [a for e in self.env for a in ("--env", e)]
        return run(["buildah", "run", "--isolation=chroot", "--network", "host"] + env
                   + [self.container, "--"] + list(cmd), timeout=120, check_status=False)

    def stop(self, sig):
        """Sends the daemon sig (as a runtime sends its STOPSIGNAL to the
        container's first process) and returns buildah run's exit status."""
        os.kill(self.pid, sig)
        try:
            return self.proc.wait(60)
        except subprocess.TimeoutExpired:
            raise Failure("the daemon did not exit within 60 s of %s:\n%s"
                          % (signal.Signals(sig).name, self.logged()))


def complete(d, expect_id):
    status, body = d.request("POST", "/v1/completions", PROMPT, timeout=120)
    check(status == 200, "completion: %s %s" % (status, body))
    check(body["usage"]["completion_tokens"] == PROMPT["max_tokens"],
          "completion: %s tokens, not %d" % (body["usage"], PROMPT["max_tokens"]))
    check(body["choices"][0]["text"].strip(), "completion: no text in %s" % body)
    check(body["model"] == expect_id, "completion answered by %s, not %s"
          % (body["model"], expect_id))
    status, models = d.request("GET", "/v1/models")
    check(status == 200 and [m["id"] for m in models["data"]] == [expect_id],
          "/v1/models: %s %s, not %s" % (status, models, expect_id))
    print("  %s: %r" % (expect_id, body["choices"][0]["text"]), flush=True)


def check_image_config(config, healthcheck):
    user = config.get("User", "")
    check(user and user.split(":")[0] not in ("0", "root"), "the image runs as %r" % user)
    check(config.get("StopSignal") == "SIGTERM", "StopSignal %r" % config.get("StopSignal"))
    check("/models" in (config.get("Volumes") or {}), "no /models volume: %s" % config)
    check("8080/tcp" in (config.get("ExposedPorts") or {}), "8080 not exposed: %s" % config)
    env = dict(e.split("=", 1) for e in config.get("Env", []))
    check(env.get("LLAMAD_HOST") == "0.0.0.0" and env.get("LLAMAD_PORT") == "8080",
          "the image does not listen on 0.0.0.0:8080: %s" % env)
    check(healthcheck and healthcheck["Test"][0] == "CMD-SHELL"
          and "/health" in healthcheck["Test"][1],
          "HEALTHCHECK does not probe /health: %s" % healthcheck)
    check(config.get("Entrypoint"), "no entry point")


def main():
    lacks = missing_tools()
    if lacks:
        what = "lacking " + ", ".join(lacks)
        if os.environ.get("CI") == "true":
            print("FAIL: %s (CI needs them: see README's test command)" % what)
            return 1
        print("SKIP: %s" % what)
        return 77

    started = time.monotonic()
    base = from_name()
    base_image(base)

    tmp = tempfile.mkdtemp(prefix="llamad-container-")
    containers = []
    try:
        # --layers=false: no intermediate images are kept, so a run leaves
        # nothing behind but the base (its apt-get then runs every time);
        # --force-rm: nor the build's containers when it fails.
        with phase("podman build"):
            r = run(["podman", "build", "--format", "docker", "--isolation=chroot",
                     "--network", "host", "--pull=never", "--layers=false", "--force-rm",
                     "-t", IMAGE, "-f", DOCKERFILE,
                     SOURCE], timeout=1500, check_status=False)
            check(r.returncode == 0, "podman build exited with %d:\n%s\n%s"
                  % (r.returncode, r.stdout[-6000:], r.stderr[-3000:]))

        with phase("image configuration"):
            info = json.loads(run(["podman", "image", "inspect", IMAGE]).stdout)[0]
            config, healthcheck = info["Config"], info.get("Healthcheck")
            check_image_config(config, healthcheck)
            entrypoint = config["Entrypoint"] + (config.get("Cmd") or [])
            print("  user %s, entry point %s, healthcheck %s"
                  % (config["User"], entrypoint, healthcheck["Test"][1]), flush=True)

        with phase("buildah from"):
            name = "llamad-test-%s" % RUN_ID
            run(["buildah", "from", "--pull-never", "--name", name, IMAGE])
            containers.append(name)
            in_it = ["buildah", "run", "--isolation=chroot", "--network", "host", name, "--"]
            uid = run(in_it + ["id", "-u"]).stdout
            user = run(in_it + ["id", "-un"]).stdout
            check(int(uid) != 0, "the image's user has uid 0")
            check(user.strip() == "llamad", "the image's user is %r, not llamad" % user)

        # The bundled model; the port and a loopback address by environment
        # (with the host's network, the image's 0.0.0.0 would be every interface).
        port = free_port()
        with phase("run: bundled model, settings by environment"):
            with Daemon(name, entrypoint, port,
                        env=["LLAMAD_PORT=%d" % port, "LLAMAD_HOST=127.0.0.1"]) as d:
                d.wait_healthy()
                complete(d, "stories260K.gguf")
                ruid = proc_ids(d.pid, "Uid")
                check(ruid == [int(uid)] * 4, "the daemon runs with uids %s" % ruid)
                check(proc_ids(d.pid, "Gid")[0] != 0, "the daemon runs with gid 0")
                hc = d.in_container("/bin/sh", "-c", healthcheck["Test"][1])
                check(hc.returncode == 0, "the HEALTHCHECK command failed: %s%s"
                      % (hc.stdout, hc.stderr))
                status = d.stop(signal.SIGTERM)
                check(status == 0, "exit status %d after SIGTERM:\n%s" % (status, d.logged()))
                check(any("draining" in l for l in d.log) and
                      any("exiting with status 0" in l for l in d.log),
                      "no drain and clean exit in the log:\n" + d.logged())
                # Its probe fails with no daemon behind it.
                hc = d.in_container("/bin/sh", "-c", healthcheck["Test"][1])
                check(hc.returncode != 0, "the HEALTHCHECK command passes with no daemon")

        # Another model, mounted on the volume and named by environment; the
        # port by flag, over the image's LLAMAD_PORT. The mount's destination
        # is "/models/": buildah run (1.28) mounts the image's own VOLUME over a
        # -v whose destination is spelled exactly as the VOLUME ("/models").
        models = os.path.join(tmp, "models")
        os.mkdir(models)
        run([MKMODEL, "-o", os.path.join(models, "mounted-tiny.gguf"), "--vocab", BUNDLED,
             "--dim", "64", "--layers", "2", "--heads", "4", "--kv-heads", "4", "--ff", "128",
             "--ctx", "256"], timeout=120)
        os.chmod(tmp, 0o755)
        os.chmod(models, 0o755)
        os.chmod(os.path.join(models, "mounted-tiny.gguf"), 0o644)
        port = free_port()
        with phase("run: mounted model, port by flag"):
            with Daemon(name, entrypoint, port, env=["LLAMAD_MODEL=/models/mounted-tiny.gguf",
                                                     "LLAMAD_HOST=127.0.0.1"],
                        args=["--port", str(port)], volumes=[models + ":/models/:ro"]) as d:
                d.wait_healthy()
                check(any(re.search(r"model mounted-tiny\.gguf: 2 layers, width 64", l)
                          for l in d.log), "the mounted model is not loaded:\n" + d.logged())
                complete(d, "mounted-tiny.gguf")
                status = d.stop(signal.SIGTERM)
                check(status == 0, "exit status %d after SIGTERM:\n%s" % (status, d.logged()))

        # A bad value in the environment stops it at once, naming the variable.
        with phase("run: a bad variable"):
            r = run(["buildah", "run", "--isolation=chroot", "--network", "host", "--env",
                     "LLAMAD_PARALLEL=many", name, "--"] + entrypoint, timeout=60,
                    check_status=False)
            check(r.returncode != 0 and "LLAMAD_PARALLEL" in r.stderr,
                  "LLAMAD_PARALLEL=many: exit %d, %s" % (r.returncode, r.stderr[-2000:]))
    finally:
        with phase("clean up"):
            for c in containers:
                run(["buildah", "rm", c], check_status=False)
            run(["podman", "rmi", "--force", IMAGE], check_status=False)
            shutil.rmtree(tmp, ignore_errors=True)
    print("container test passed in %.1f s" % (time.monotonic() - started))
    return 0


def terminated(signum, frame):
    raise Failure("stopped by %s (meson's timeout?)" % signal.Signals(signum).name)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, terminated)  # the clean-up still runs
    try:
        sys.exit(main())
    except Failure as e:
        print("FAIL: %s" % e, flush=True)
        sys.exit(1)
