"""``syncd demo`` end to end: rotations arrive, values never printed, clean exit."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from syncd.app.cli import demo
from syncd.app.cli.main import main
from syncd.devstack.workers.tools import find_workerd


def test_demo_shows_every_rotation_arriving_without_values(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    written: list[str] = []
    original = demo.DemoSecret.fresh_values

    def remember(self: demo.DemoSecret) -> dict[str, str]:
        values = original(self)
        written.extend(values.values())
        return values

    monkeypatch.setattr(demo.DemoSecret, "fresh_values", remember)
    original_shared = demo.shared_value

    def remember_shared() -> dict[str, str]:
        values = original_shared()
        written.extend(values.values())
        return values

    monkeypatch.setattr(demo, "shared_value", remember_shared)
    out = io.StringIO()
    assert demo.run_demo(out, rotations=2, interval=1.0, wait=False, workdir=tmp_path) == 0
    text = out.getvalue()
    assert text.count("initial ") == 5 and "✗" not in text
    assert len(re.findall(r"^rotation ", text, flags=re.MULTILINE)) == 4
    assert "4 bindings arrived by polling" in text
    assert "4 bindings arrived by Vault notification" in text  # round 2 runs with the socket audit device
    assert "metrics: " not in text  # --no-wait: the service has stopped, its URLs would be dead (issue 11)
    assert f"stopped; config and log kept in {tmp_path}" in text
    log = (tmp_path / "syncd.log").read_text(encoding="utf-8")
    assert (tmp_path / "syncd.toml").is_file() and '"cycle finished"' in log
    assert not [i for i, value in enumerate(written) if value in log], "a demo value appears in the kept log"
    assert "hand edit  payments-worker.WEBHOOK_SECRET overwritten" in text
    corrected = r"^drift      payments-worker\.WEBHOOK_SECRET detected and Vault's value put back ✓ \d+\.\d\ds"
    assert re.search(corrected, text, re.M)
    detected = [json.loads(line) for line in log.splitlines() if '"drift.detected"' in line]
    # The hand edit only: none of syncd's own rotations is mistaken for someone else's (the CI failure of 2026-12-07).
    assert [(d["script"], d["author"]) for d in detected] == [("payments-worker", "someone.else@example.com")]
    shared = r"^store      secret/demo/shared → store secret db-password, bound by payments-worker, edge-router: ✓ "
    assert re.search(shared + r"\d+\.\d\ds, 1 Cloudflare write\(s\), no new Worker version$", text, re.M)
    if find_workerd() is not None:  # the Worker's own answer changes with each rotation
        assert re.search(r"curl -s http://127\.0\.0\.1:\d+/payments-worker/", text)
        fingerprints = re.findall(
            r"the Worker itself: payments-worker v\d+ reports PAYMENTS_API_KEY sha256 (\w+)… ✓", text
        )
        assert len(set(fingerprints)) == 2
    else:
        assert "no Workers runtime (workerd not found" in text
    # A template over a KV secret and a database static role: after a write to one of its sources,
    # then after a rotation Vault made by itself (no request: the schedule syncd derived from its ttl).
    assert re.search(r"^composed   secret/demo/orders-db → v2: orders-worker\.DATABASE_URL ✓ \d+\.\d\ds", text, re.M)
    arrived = r"^scheduled  password rotated by Vault → orders-worker\.DATABASE_URL ✓ (\d+\.\d\d)s"
    scheduled = re.search(arrived, text, re.M)
    assert scheduled and float(scheduled.group(1)) < 10
    leaked = [i for i, value in enumerate(written) if value in text]
    assert not leaked, f"{len(leaked)} demo values appear in the output"


def test_demo_is_reachable_from_the_cli_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--help"]) == 0
    assert "--rotations" in capsys.readouterr().out


def test_demo_without_workerd_says_so_and_still_shows_every_rotation(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SYNCD_WORKERD", "/nonexistent/workerd")
    out = io.StringIO()
    assert demo.run_demo(out, rotations=1, interval=1.0, wait=False, workdir=tmp_path) == 0
    text = out.getvalue()
    assert "no Workers runtime (workerd not found at /nonexistent/workerd" in text
    assert len(re.findall(r"^rotation ", text, flags=re.MULTILINE)) == 2 and "✗" not in text
    assert "the Worker itself" not in text
