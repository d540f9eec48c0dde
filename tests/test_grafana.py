"""conf/grafana-llamad.json is a Grafana dashboard over series the daemon
really exports: the JSON has a dashboard's shape (schema version, panels on the
grid, Prometheus targets through the datasource variable), and every metric
name in every query (panel targets and template variables) is one a running
daemon's /metrics has, after a few requests; a name used as NAME_bucket,
NAME_sum or NAME_count is a histogram's (its TYPE line says histogram) and a
_bucket series is read through histogram_quantile with `le` kept; the labels
queries match on or group by are the series' own (or Prometheus's target
labels, instance and job)."""
import json
import os
import re
import unittest

from llamad_server import Server

HERE = os.path.dirname(os.path.abspath(__file__))
DASHBOARD = os.path.join(HERE, "..", "conf", "grafana-llamad.json")
TARGET_LABELS = {"instance", "job"}  # added by Prometheus when it scrapes
# PromQL's words that are neither functions nor metrics.
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
            "and", "or", "unless", "inf", "nan"}
AGGREGATIONS = {"sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk",
                "quantile", "count_values", "group"}


def strip_strings(expr):
    return re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)


def selectors(expr):
    """[(metric name, {label names matched})] of a PromQL expression's vector
    selectors, and the label names its by/without/on/ignoring clauses name."""
    expr = re.sub(r"\$__\w+|\$\{?\w+\}?", "x", strip_strings(expr))  # Grafana variables
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range selectors [5m]
    grouped = set()
    for m in re.finditer(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", expr):
        grouped |= {l.strip() for l in m.group(2).split(",") if l.strip()}
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    found = []
    for m in re.finditer(r"([A-Za-z_:][A-Za-z0-9_:]*)\s*(\{[^}]*\})?\s*(\()?", expr):
        name, matchers, call = m.group(1), m.group(2), m.group(3)
        if call and not matchers:
            continue  # a function or an aggregation
        if name in KEYWORDS or re.fullmatch(r"[0-9.e+-]+", name):
            continue
        labels = set(re.findall(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)", matchers or ""))
        found.append((name, labels))
    return found, grouped


def queries(dash):
    """(where, expr) of every Prometheus query in the dashboard."""
    out = []
    for p in dash["panels"]:
        for t in p.get("targets", []):
            out.append(("panel %r %s" % (p["title"], t["refId"]), t["expr"]))
    for v in dash["templating"]["list"]:
        if v["type"] == "query":
            q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
            m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", q)
            assert m, q
            out.append(("variable %s" % v["name"], m.group(1)))
    return out


def scrape(text):
    """{series name: set of label names}, {family: type} of Prometheus text."""
    series, types = {}, {}
    for line in text.splitlines():
        m = re.match(r"# TYPE (\S+) (\S+)", line)
        if m:
            types[m.group(1)] = m.group(2)
        elif line and not line.startswith("#"):
            m = re.match(r"([A-Za-z_:][A-Za-z0-9_:]*)(\{([^}]*)\})? ", line)
            labels = set(re.findall(r'(\w+)="', m.group(3) or ""))
            series.setdefault(m.group(1), set()).update(labels)
    return series, types


class GrafanaTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(DASHBOARD) as f:
            cls.dash = json.load(f)
        with Server() as s:
            for body in ({"prompt": "Once upon a time", "max_tokens": 8},
                         {"prompt": "Once upon a time", "max_tokens": 4, "stream": True},
                         {"prompt": "x", "max_tokens": 0}):  # a 400
                s.request("POST", "/v1/completions", body)
            st, _, data = s.request("GET", "/metrics")
            assert st == 200
        cls.series, cls.types = scrape(data.decode())

    def test_is_a_dashboard(self):
        d = self.dash
        self.assertIsInstance(d["schemaVersion"], int)
        self.assertGreaterEqual(d["schemaVersion"], 30)
        self.assertTrue(d["title"] and d["uid"])
        variables = {v["name"]: v for v in d["templating"]["list"]}
        ds = [v for v in variables.values() if v["type"] == "datasource"]
        self.assertEqual([v["query"] for v in ds], ["prometheus"])
        ds_ref = "${%s}" % ds[0]["name"]
        ids = [p["id"] for p in d["panels"]]
        self.assertEqual(len(ids), len(set(ids)))
        titles = []
        for p in d["panels"]:
            g = p["gridPos"]
            self.assertTrue(0 <= g["x"] and g["x"] + g["w"] <= 24 and g["h"] > 0, p["title"])
            titles.append(p["title"])
            if p["type"] == "row":
                continue
            self.assertEqual(p["datasource"], {"type": "prometheus", "uid": ds_ref}, p["title"])
            self.assertTrue(p["targets"], p["title"])
            refs = [t["refId"] for t in p["targets"]]
            self.assertEqual(len(refs), len(set(refs)), p["title"])
            for t in p["targets"]:
                self.assertTrue(t["expr"].strip(), p["title"])
                for var in re.findall(r"\$(\w+)", t["expr"]):
                    self.assertTrue(var in variables or var.startswith("__"), (p["title"], var))
        # What the issue asks the dashboard to show.
        exprs = " ".join(t["expr"] for p in d["panels"] for t in p.get("targets", []))
        for needed in ("rate(llamad_generation_tokens_total",
                       "llamad_time_to_first_token_seconds_bucket",
                       "llamad_inter_token_latency_seconds_bucket", "llamad_requests_waiting",
                       "llamad_requests_running", "llamad_kv_cache_usage_ratio",
                       "llamad_requests_total"):
            self.assertIn(needed, exprs)
        for q in ("0.5", "0.95", "0.99"):
            for h in ("time_to_first_token", "inter_token_latency"):
                self.assertRegex(exprs, r"histogram_quantile\(%s, [^;]*llamad_%s_seconds_bucket"
                                 % (re.escape(q), h))

    def test_every_query_names_exported_series(self):
        qs = queries(self.dash)
        self.assertGreater(len(qs), 15)
        names = set()
        for where, expr in qs:
            found, grouped = selectors(expr)
            self.assertTrue(found, (where, expr))
            for name, labels in found:
                names.add(name)
                self.assertIn(name, self.series, "%s: %s is not exported" % (where, name))
                base = re.sub(r"_(bucket|sum|count)$", "", name)
                if base != name and base in self.types:
                    self.assertEqual(self.types[base], "histogram", (where, name))
                if name.endswith("_bucket"):
                    self.assertRegex(expr, r"histogram_quantile\(", where)
                    self.assertIn("le", grouped, where)
                own = self.series[name] | TARGET_LABELS
                self.assertLessEqual(labels, own, (where, name))
                self.assertLessEqual(grouped - {"le"}, own | {"le"}, (where, name))
        # Every family the daemon exports that a dashboard of it should show.
        self.assertGreaterEqual(len(names), 14, sorted(names))

    def test_selector_parsing(self):
        # The parser above, on the forms the dashboard uses: functions and
        # aggregations are not names, labels inside by () are not either.
        found, grouped = selectors(
            'histogram_quantile(0.99, sum by (le, instance) (rate(a_bucket{instance=~"$x",'
            'code="5.."}[$__rate_interval]))) / ignoring (code) b + sum(c) - max_over_time(d[5m])')
        self.assertEqual(found, [("a_bucket", {"instance", "code"}), ("b", set()), ("c", set()),
                                 ("d", set())])
        self.assertEqual(grouped, {"le", "instance", "code"})


if __name__ == "__main__":
    unittest.main(verbosity=2)
