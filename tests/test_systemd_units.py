"""The systemd units as meson installs them: llamad.service and llamad.socket in
systemd's unit directory, ExecStart naming the installed daemon and conf; both
pass `systemd-analyze verify`, and the service's `systemd-analyze security`
exposure is at most 2.0 (systemd-analyze is in Debian's systemd package: the
README's test command installs it)."""
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

BUILD = os.environ["LLAMAD_BUILD_DIR"]
MAX_EXPOSURE = 2.0


def installed():
    """{file in the build or source tree: where meson install puts it}"""
    with open(os.path.join(BUILD, "meson-info", "intro-installed.json")) as f:
        return json.load(f)


def installed_as(name):
    found = [(src, dst) for src, dst in installed().items() if os.path.basename(src) == name]
    assert len(found) == 1, "meson installs %d files named %s" % (len(found), name)
    return found[0]


def analyze(*args, cwd):
    tool = shutil.which("systemd-analyze")
    assert tool, "systemd-analyze is missing: apt-get install systemd"
    return subprocess.run([tool] + list(args), cwd=cwd, capture_output=True, text=True,
                          timeout=120)


class UnitsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.service_src, cls.service_dst = installed_as("llamad.service")
        cls.socket_src, cls.socket_dst = installed_as("llamad.socket")
        with open(cls.service_src) as f:
            cls.service = f.read()
        cls.tmp = tempfile.TemporaryDirectory()

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def exec_start(self):
        return re.search(r"^ExecStart=(\S+) --config (\S+)$", self.service, re.M).groups()

    def test_installed_beside_each_other_in_systemds_directory(self):
        unitdir = os.path.dirname(self.service_dst)
        self.assertTrue(unitdir.endswith("/systemd/system"), unitdir)
        self.assertEqual(os.path.dirname(self.socket_dst), unitdir)

    def test_exec_start_names_the_installed_daemon_and_conf(self):
        daemon, conf = self.exec_start()
        self.assertEqual(daemon, installed_as("llamad")[1])
        self.assertEqual(conf, installed_as("llamad.conf")[1])
        self.assertNotIn("@", self.service.split("[Service]")[1].split("\n#")[0])

    def test_notify_and_watchdog_kept(self):
        self.assertRegex(self.service, r"(?m)^Type=notify$")
        self.assertRegex(self.service, r"(?m)^WatchdogSec=\d+")
        with open(self.socket_src) as f:
            self.assertRegex(f.read(), r"(?m)^ListenStream=127\.0\.0\.1:8080$")

    def local_copies(self):
        """The units with ExecStart naming this build's daemon: verify wants
        the program to exist."""
        daemon, _ = self.exec_start()
        with open(os.path.join(self.tmp.name, "llamad.service"), "w") as f:
            f.write(self.service.replace("ExecStart=" + daemon,
                                         "ExecStart=" + os.path.join(BUILD, "llamad")))
        shutil.copy(self.socket_src, self.tmp.name)
        return self.tmp.name

    def test_verify(self):
        d = self.local_copies()
        r = analyze("verify", "llamad.socket", "llamad.service", cwd=d)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stderr.strip(), "", "warnings")

    def test_security_exposure(self):
        d = self.local_copies()
        r = analyze("security", "--offline=true", "llamad.service", cwd=d)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        overall = re.search(r"Overall exposure level for llamad\.service: (\d+\.\d+)", r.stdout)
        self.assertIsNotNone(overall, r.stdout)
        print(overall.group(0))
        self.assertLessEqual(float(overall.group(1)), MAX_EXPOSURE, r.stdout)


if __name__ == "__main__":
    unittest.main()
