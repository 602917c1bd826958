"""A real Prometheus (Debian's ``prometheus``) for the tests: it scrapes, they ask its HTTP API.

``running_prometheus`` starts one on a free port with its own data folder
and a scrape config naming the targets (every second), and waits until it
is ready; ``query`` reads one instant vector through ``/api/v1/query``.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.support.ports import free_port
from tests.support.procs import stop_tree
from tests.support.wait import wait_until

DEPLOY = Path(__file__).parents[2] / "deploy"
RULES = DEPLOY / "prometheus" / "rules.yml"
DASHBOARD = DEPLOY / "grafana" / "callbridge.json"
# PromQL words that look like a metric name but are not one.
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}


@dataclass
class Prometheus:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def __post_init__(self) -> None:
        # One connection for every query (a new one each time cost 0.1 s on a loaded host).
        self.client = httpx.Client(base_url=self.url, timeout=5)

    def api(self, path: str, **params: str) -> Any:
        answer = self.client.get(path, params=params)
        answer.raise_for_status()
        body = answer.json()
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[tuple[dict[str, str], float]]:
        """The instant vector ``expr`` evaluates to now: (labels, value) per series."""
        data = self.api("/api/v1/query", query=expr)
        assert data["resultType"] == "vector", data
        return [(item["metric"], float(item["value"][1])) for item in data["result"]]

    def value(self, expr: str) -> float | None:
        """The single value ``expr`` gives now (None: no series, e.g. not scraped yet)."""
        found = self.query(expr)
        assert len(found) <= 1, found
        return found[0][1] if found else None

    def names(self) -> set[str]:
        """Every series name Prometheus has stored."""
        return set(self.api("/api/v1/label/__name__/values"))

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def running_prometheus(
    tmp: Path, targets: list[str], rules: Path | None = RULES
) -> Iterator[Prometheus]:
    """Prometheus scraping ``targets`` (host:port, /metrics) every second, with ``rules``."""
    binary = shutil.which("prometheus")
    assert binary is not None, "prometheus is not installed (scripts/install-system test)"
    tmp.mkdir(parents=True, exist_ok=True)
    port = free_port()
    rule_files = f"rule_files: ['{rules}']\n" if rules is not None else ""
    config = tmp / "prometheus.yml"
    config.write_text(
        "global:\n"
        "  scrape_interval: 1s\n"
        "  evaluation_interval: 1s\n"
        f"{rule_files}"
        "scrape_configs:\n"
        "  - job_name: callbridge\n"
        "    static_configs:\n"
        f"      - targets: {targets!r}\n"
    )
    log_path = tmp / "prometheus.log"
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
    )
    running = Prometheus(f"http://127.0.0.1:{port}", process, log_path)

    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"prometheus exited:\n{running.log()}")
        try:
            return httpx.get(running.url + "/-/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(ready, 30, "prometheus did not get ready")
        yield running
    finally:
        running.client.close()
        stop_tree(process)


def rule_exprs(path: Path = RULES) -> list[str]:
    """Every alert's and recording rule's expression in a rule file."""
    groups = yaml.safe_load(path.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def dashboard_exprs(path: Path = DASHBOARD) -> list[str]:
    """Every panel query of a Grafana dashboard."""
    panels = json.loads(path.read_text())["panels"]
    return [target["expr"] for panel in panels for target in panel.get("targets", [])]


def monitoring_exprs() -> list[str]:
    return rule_exprs() + dashboard_exprs()


def metric_names(expr: str) -> set[str]:
    """The series names a PromQL expression reads (not functions, labels or keywords)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\b(by|on|without|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges
    names = set()
    for match in re.finditer(r"[A-Za-z_:][\w:]*", text):
        word = match.group(0)
        if text[match.end() :].lstrip().startswith("(") or word.lower() in _KEYWORDS:
            continue  # a function or an aggregation
        names.add(word)
    return names


def exposed_series(text: str) -> set[str]:
    """The series names a scrape in the text format offers, families without samples too."""
    names: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(maxsplit=3)
            if kind == "counter":
                names |= {name, name + "_total"}
            elif kind in ("histogram", "summary"):
                names |= {name + "_bucket", name + "_sum", name + "_count", name}
            else:
                names.add(name)
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names
