"""The alert rules and the Grafana dashboard in deploy/, checked by Prometheus's own tools.

That every metric they name is in a real scrape of ``serve`` is checked during a
call, with a real Prometheus: ``tests/telephony/test_sipp.py``.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.support.prometheus import (
    DASHBOARD,
    RULES,
    dashboard_exprs,
    metric_names,
    rule_exprs,
)
from tests.telephony.conftest import need


@pytest.fixture(autouse=True)
def _promtool() -> None:
    need("promtool")


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["promtool", *args], capture_output=True, text=True, timeout=60, cwd=RULES.parent
    )


def test_the_rules_pass_promtool_check_and_their_unit_tests() -> None:
    checked = promtool("check", "rules", RULES.name)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 17 rules found" in checked.stdout
    tested = promtool("test", "rules", "rules_test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_promtool_catches_a_broken_rule(tmp_path: Path) -> None:
    broken = tmp_path / "rules.yml"
    broken.write_text(
        RULES.read_text().replace("callbridge_media_up == 0", "callbridge_media_up ==")
    )
    assert promtool("check", "rules", str(broken)).returncode != 0


def test_the_dashboard_is_grafana_json_whose_panels_all_query_prometheus() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "callbridge"
    panels = dashboard["panels"]
    assert len(panels) >= 10
    assert len({panel["id"] for panel in panels}) == len(panels)
    for panel in panels:
        assert panel["targets"], panel["title"]
        assert {t["refId"] for t in panel["targets"]} == {
            chr(65 + i) for i in range(len(panel["targets"]))
        }
        assert panel["datasource"]["type"] == "prometheus"
    every = set().union(*(metric_names(expr) for expr in dashboard_exprs() + rule_exprs()))
    # What the issue asks to see is on the dashboard or in the rules.
    for wanted in (
        "callbridge_legs",
        "callbridge_listeners",
        "callbridge_tick_lateness_seconds_bucket",
        "callbridge_ticks_skipped_total",
        "callbridge_rtp_frames_lost_total",
        "callbridge_rtp_jitter_seconds",
        "callbridge_rtp_foreign_dropped_total",
        "callbridge_guard_identities",
        "callbridge_sip_responses_total",
        "callbridge_webcast_parts_total",
        "callbridge_webcast_blocking_reloads_waiting",
        "callbridge_caption_delay_seconds",
        "callbridge_caption_queue_chunks",
    ):
        assert wanted in every, wanted


def test_metric_names_are_read_out_of_promql() -> None:
    expr = (
        'sum by (instance, le) (rate(foo_bucket{code=~"5..", a="b c"}[5m])) / on (instance) '
        "bar_total > 0.5 and up == 0"
    )
    assert metric_names(expr) == {"foo_bucket", "bar_total", "up"}
