"""conf/kubernetes/: the manifests parse, and what they say agrees with the
daemon and the image: probes on /health at the container's port, which is the
one the Dockerfile's entrypoint listens on; a termination grace period that
covers the preStop pause and the daemon's drain_timeout (its default read from
`llamad --help`, unless the ConfigMap's llamad.conf sets it); Services that
select the Deployment's pods and target its named port; the image the README's
`docker build -t` names; a non-root, read-only container. The ConfigMap's
llamad.conf is read by the daemon itself, which must start with it.

PyYAML: Debian's python3-yaml (the README's test command installs it). When
the python3 running this lacks it, the test runs again under /usr/bin/python3;
without it anywhere the test fails."""
import json
import os
import re
import subprocess
import sys
import tempfile
import unittest

from debian_python import import_or_reexec

yaml = import_or_reexec("yaml")
if yaml is None:
    sys.exit("FAIL: PyYAML is missing (apt-get install python3-yaml)")

from llamad_server import DAEMON, Server

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
KUBE = os.path.join(ROOT, "conf", "kubernetes")
MARGIN = 5  # seconds past the drain for the daemon to end and exit


def manifests():
    docs = []
    for name in sorted(os.listdir(KUBE)):
        if name.endswith((".yaml", ".yml")):
            with open(os.path.join(KUBE, name)) as f:
                docs += [(name, d) for d in yaml.safe_load_all(f) if d is not None]
    return docs


def option_default(option):
    """The default `llamad --help` gives an option."""
    out = subprocess.run([DAEMON, "--help"], capture_output=True, text=True, timeout=30)
    text = out.stdout + out.stderr
    at = text.index("--" + option + " ")
    block = re.split(r"\n\s+(?:-\w, )?--", text[at:], maxsplit=1)[0]
    return float(re.search(r"\(default: ([0-9.]+)\)", block).group(1))


def conf_value(conf_text, key):
    """A key's value in llamad.conf text (None when not set)."""
    for line in conf_text.splitlines():
        m = re.match(r"^\s*%s\s*=\s*(.*?)\s*(?:\s#.*)?$" % re.escape(key), line)
        if m:
            return m.group(1)
    return None


def dockerfile():
    """The final stage's EXPOSE ports, ENV settings, USER and ENTRYPOINT list."""
    with open(os.path.join(ROOT, "Dockerfile")) as f:
        text = f.read()
    final = text[text.rindex("\nFROM "):]
    expose = [int(p) for line in re.findall(r"^EXPOSE (.*)$", final, re.M) for p in line.split()]
    env = dict(re.findall(r"(LLAMAD_\w+)=(\S+)", " ".join(re.findall(r"^ENV (.*)$", final, re.M))))
    user = re.search(r"^USER (\S+)$", final, re.M).group(1)
    entry = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", final, re.M).group(1))
    return {"expose": expose, "env": env, "user": user, "entry": entry}


class KubernetesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.docs = manifests()
        kinds = {}
        for name, d in cls.docs:
            kinds.setdefault(d["kind"], []).append(d)
        cls.kinds = kinds
        [cls.deploy] = kinds["Deployment"]
        cls.pod = cls.deploy["spec"]["template"]["spec"]
        [cls.container] = cls.pod["containers"]
        [cls.configmap] = kinds["ConfigMap"]
        cls.conf = cls.configmap["data"]["llamad.conf"]

    def test_every_document_is_a_kubernetes_object(self):
        self.assertGreaterEqual(len(self.docs), 3)
        for name, d in self.docs:
            self.assertIn("apiVersion", d, name)
            self.assertIn("kind", d, name)
            self.assertTrue(d["metadata"]["name"], name)
        self.assertEqual(self.deploy["apiVersion"], "apps/v1")
        self.assertGreaterEqual(len(self.kinds["Service"]), 1)

    def test_selector_matches_the_pods(self):
        labels = self.deploy["spec"]["template"]["metadata"]["labels"]
        wanted = self.deploy["spec"]["selector"]["matchLabels"]
        self.assertTrue(wanted and wanted.items() <= labels.items(), (wanted, labels))
        for svc in self.kinds["Service"]:
            sel = svc["spec"]["selector"]
            self.assertTrue(sel and sel.items() <= labels.items(), svc["metadata"]["name"])

    def test_port_is_the_images(self):
        image = dockerfile()
        [port] = self.container["ports"]
        self.assertEqual(port["name"], "http")
        self.assertIn(port["containerPort"], image["expose"])
        # the image listens on all interfaces, at the port its environment names
        self.assertEqual(image["env"]["LLAMAD_PORT"], str(port["containerPort"]))
        self.assertEqual(image["env"]["LLAMAD_HOST"], "0.0.0.0")
        # Nothing in the container's args, environment or conf moves the port.
        args = self.container.get("args", [])
        self.assertFalse({"--port", "--host"} & set(args), args)
        env = {e["name"] for e in self.container.get("env", [])}
        self.assertFalse({"LLAMAD_PORT", "LLAMAD_HOST"} & env, env)
        self.assertIsNone(conf_value(self.conf, "port"))
        self.assertIsNone(conf_value(self.conf, "host"))
        self.assertNotIn("command", self.container)  # the image's entrypoint runs

    def test_services_target_the_named_port(self):
        names = {p["name"]: p["containerPort"] for p in self.container["ports"]}
        for svc in self.kinds["Service"]:
            for p in svc["spec"]["ports"]:
                target = p["targetPort"]
                self.assertTrue(target in names or target in names.values(), (svc, target))

    def test_probes_ask_health(self):
        port = self.container["ports"][0]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            get = self.container[probe]["httpGet"]
            self.assertEqual(get["path"], "/health", probe)
            self.assertIn(get["port"], (port["name"], port["containerPort"]), probe)
        # Liveness must outlast a busy moment: several failures in a row.
        live = self.container["livenessProbe"]
        self.assertGreaterEqual(live.get("failureThreshold", 3) * live.get("periodSeconds", 10), 20)
        # The startup probe waits for the model to load.
        start = self.container["startupProbe"]
        self.assertGreaterEqual(start["failureThreshold"] * start["periodSeconds"], 60)

    def test_grace_period_covers_the_drain(self):
        drain = conf_value(self.conf, "drain_timeout")
        drain = float(drain) if drain is not None else option_default("drain-timeout")
        self.assertGreater(drain, 0)
        pre = self.container.get("lifecycle", {}).get("preStop", {})
        pause = 0
        if "exec" in pre:
            cmd = pre["exec"]["command"]
            self.assertEqual(cmd[0], "sleep", cmd)
            pause = float(cmd[1])
        elif "sleep" in pre:
            pause = float(pre["sleep"]["seconds"])
        grace = self.pod["terminationGracePeriodSeconds"]
        self.assertGreaterEqual(grace, pause + drain + MARGIN, (grace, pause, drain))

    def test_image_is_the_dockerfiles(self):
        with open(os.path.join(ROOT, "README.md")) as f:
            m = re.search(r"(?:docker|podman) build (?:--\S+ \S+ )*-t (\S+) \.", f.read())
        built = m.group(1)
        image = self.container["image"]
        repo = image.rsplit("/", 1)[-1].split("@")[0].split(":")[0]
        self.assertEqual(repo, built.split(":")[0])

    def test_container_is_locked_down(self):
        pod_sc, sc = self.pod.get("securityContext", {}), self.container["securityContext"]
        self.assertTrue(pod_sc.get("runAsNonRoot") or sc.get("runAsNonRoot"))
        # the image's own user, by number (USER uid:gid)
        uid, gid = dockerfile()["user"].split(":")
        self.assertEqual(sc.get("runAsUser", pod_sc.get("runAsUser")), int(uid))
        self.assertEqual(sc.get("runAsGroup", pod_sc.get("runAsGroup")), int(gid))
        self.assertIs(sc["readOnlyRootFilesystem"], True)
        self.assertIs(sc["allowPrivilegeEscalation"], False)
        self.assertIn("ALL", sc["capabilities"]["drop"])
        res = self.container["resources"]
        for kind in ("requests", "limits"):
            self.assertIn("memory", res[kind])
            self.assertIn("cpu", res[kind])

    def test_volumes_hold_the_conf_and_the_model(self):
        mounts = {m["name"]: m for m in self.container["volumeMounts"]}
        volumes = {v["name"]: v for v in self.pod["volumes"]}
        self.assertEqual(set(mounts), set(volumes))
        args = self.container["args"]
        conf_path = args[args.index("--config") + 1]
        by_path = {m["mountPath"]: m["name"] for m in mounts.values()}
        conf_vol = volumes[by_path[os.path.dirname(conf_path)]]
        self.assertEqual(conf_vol["configMap"]["name"], self.configmap["metadata"]["name"])
        self.assertIn(os.path.basename(conf_path), self.configmap["data"])
        model = conf_value(self.conf, "model")
        self.assertIn(os.path.dirname(model), by_path)
        self.assertTrue(all(m.get("readOnly") for m in mounts.values()))

    def test_daemon_takes_the_configmaps_conf(self):
        # Every key of the ConfigMap's llamad.conf is one the daemon reads, with
        # a value it takes; the model is the bundled one here.
        with tempfile.NamedTemporaryFile("w", suffix=".conf") as f:
            f.write(self.conf)
            f.flush()
            model = os.path.join(os.environ["LLAMAD_MODELS_DIR"], "stories260K.gguf")
            with Server("--config", f.name, "--model", model) as s:
                self.assertEqual(s.get_json("/health"), (200, {"status": "ok"}))
                s.signal()
                self.assertEqual(s.wait_exit(60), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
