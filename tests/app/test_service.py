"""The long-running service driven without signals or real time: a recording scheduler, fake parts,
direct ``run_cycle`` calls; then the real wiring against both emulators (HTTP probes, credential
rotation) and the real APScheduler once."""

from __future__ import annotations

import io
import json
import signal
import threading
import urllib.request
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from structlog.testing import capture_logs

from syncd.app.service.daemon import RECONCILE_JOB, STARTUP_JOB, TOKEN_JOB, Service, ServiceParts
from syncd.app.service.logs import configure_logging
from syncd.app.service.wiring import build_service
from syncd.config import Settings, load_config
from syncd.engine.drift import DriftCorrection
from syncd.engine.report import CycleReport, MappingResult, Trigger
from syncd.engine.state import MappingStatus
from syncd.model import SecretValue, Target, VaultSecretRef
from tests.app.service_conftest_helpers import (
    CANARY_ROTATED,
    CANARY_WEBHOOK,
    SCRIPT,
    Stack,
    config_text,
    leaked,
    leaked_any,
    running_stack,
)

WAIT = 10.0  # seconds: the most any condition below may take

BASE_CONFIG = """
[vault]
address = "http://127.0.0.1:1"
[vault.auth]
method = "token"
token = { env = "SYNCD_UNUSED_TOKEN" }
[cloudflare]
account_id = "0123456789abcdef0123456789abcdef"
[cloudflare.auth]
api_token = { env = "SYNCD_UNUSED_CF" }
[sync]
interval_seconds = 30
jitter_seconds = 2
cycle_timeout_seconds = 0.2
shutdown_grace_seconds = 5
[server]
enabled = false
"""

MAPPING = """
[[mapping]]
name = "{name}"
vault = {{ mount = "secret", path = "{name}" }}
target = {{ script = "w-{name}" }}
secret_text = {{ keys = {{ k = "K_{upper}" }} }}
"""


def config_with(*names: str, extra: str = "") -> str:
    mappings = "".join(MAPPING.format(name=n, upper=n.upper().replace("-", "_")) for n in names)
    return BASE_CONFIG.replace("[server]", extra + "\n[server]") + mappings


# -- fakes -----------------------------------------------------------------------------------------


@dataclass
class Job:
    func: Callable[..., Any]
    trigger: str | None
    args: list[Any]
    options: dict[str, Any]

    def run(self) -> None:
        self.func(*self.args)


class RecordingScheduler:
    """Keeps the jobs; a test runs them when it wants."""

    def __init__(self, on_start: Callable[[], None] | None = None) -> None:
        self.jobs: dict[str, Job] = {}
        self.started = False
        self.shut_down = False
        self.rescheduled: list[tuple[str, str | None, dict[str, Any]]] = []
        self._on_start = on_start

    def add_job(
        self,
        func: Callable[..., Any],
        trigger: str | None = None,
        *,
        args: list[Any] | None = None,
        id: str | None = None,
        replace_existing: bool = False,
        **options: Any,
    ) -> Job:
        assert id is not None
        assert replace_existing or id not in self.jobs, f"job {id} added twice"
        job = Job(func, trigger, list(args or []), options)
        self.jobs[id] = job
        return job

    def reschedule_job(self, job_id: str, jobstore: str | None = None, trigger: str | None = None, **kw: Any) -> None:
        self.rescheduled.append((job_id, trigger, kw))

    def start(self) -> None:
        self.started = True
        if self._on_start is not None:
            self._on_start()

    def shutdown(self, wait: bool = True) -> None:
        self.shut_down = True

    def run(self, job_id: str) -> None:
        job = self.jobs[job_id]
        if job.trigger == "date":
            del self.jobs[job_id]
        job.run()

    def manual_jobs(self) -> list[str]:
        return [j for j in self.jobs if j.startswith("manual")]


def report_for(trigger: Trigger | str, names: Iterable[str], *, failed: Collection[str] = ()) -> CycleReport:
    target = Target("0123456789abcdef0123456789abcdef", "w")
    results = tuple(
        MappingResult(
            n,
            target,
            VaultSecretRef("secret", n),
            in_sync=n not in failed,
            vault_version=1,
            error_code="VaultPermissionDenied" if n in failed else None,
            error="permission denied on secret/x" if n in failed else None,
        )
        for n in names
    )
    return CycleReport("c1", Trigger(trigger), 1000.0, 1001.0, results)


@dataclass
class FakeReconciler:
    names: list[str]
    calls: list[dict[str, Any]] = field(default_factory=list)
    settings_updates: list[Settings] = field(default_factory=list)
    block: threading.Event | None = None
    entered: threading.Event = field(default_factory=threading.Event)
    events: list[str] | None = None
    corrections_seen: list[tuple[DriftCorrection, ...]] = field(default_factory=list)

    def update_settings(self, settings: Settings) -> None:
        self.settings_updates.append(settings)

    def reconcile(
        self,
        *,
        trigger: Trigger = Trigger.INTERVAL,
        only_mappings: Collection[str] | None = None,
        deadline: float | None = None,
        dry_run: bool = False,
        corrections: Collection[DriftCorrection] = (),
    ) -> CycleReport:
        self.calls.append({"trigger": trigger, "only": only_mappings, "deadline": deadline})
        self.corrections_seen.append(tuple(corrections))
        self.entered.set()
        if self.block is not None:
            self.block.wait(WAIT)
        if self.events is not None:
            self.events.append("cycle-done")
        return report_for(trigger, only_mappings or self.names)


@dataclass
class FakeState:
    statuses: list[MappingStatus] = field(default_factory=list)
    closed: bool = False
    events: list[str] | None = None

    reloads: int = 0

    def all_mapping_status(self) -> list[MappingStatus]:
        return list(self.statuses)

    def reload(self) -> None:
        self.reloads += 1

    def close(self) -> None:
        self.closed = True
        if self.events is not None:
            self.events.append("state-closed")


@dataclass
class FakeMetrics:
    cycles: list[CycleReport] = field(default_factory=list)
    ready: list[bool] = field(default_factory=list)
    mappings: list[list[str]] = field(default_factory=list)
    expiry: list[float | None] = field(default_factory=list)
    budget: list[int] = field(default_factory=list)

    def record_cycle(self, report: CycleReport) -> None:
        self.cycles.append(report)

    def set_ready(self, ready: bool) -> None:
        self.ready.append(ready)

    def set_vault_token_expiry(self, expires_at: float | None) -> None:
        self.expiry.append(expires_at)

    def set_rate_budget(self, remaining: int) -> None:
        self.budget.append(remaining)

    def configure_mappings(self, names: Iterable[str]) -> None:
        self.mappings.append(sorted(names))


@dataclass
class FakeTokens:
    valid: bool = True
    next_in: float = 120.0
    maintained: int = 0
    ensured: int = 0

    @property
    def expires_at(self) -> float | None:
        return 5000.0 if self.valid else None

    def ensure_token(self) -> None:
        self.ensured += 1

    def maintain(self) -> float:
        self.maintained += 1
        return self.next_in

    def is_valid(self) -> bool:
        return self.valid

    def current_token(self) -> SecretValue:
        self.ensure_token()
        return SecretValue("fake-token")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Harness:
    service: Service
    scheduler: RecordingScheduler
    reconciler: FakeReconciler
    state: FakeState
    metrics: FakeMetrics
    tokens: FakeTokens
    clock: FakeClock
    config_path: Path


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    path = tmp_path / "syncd.toml"
    path.write_text(config_with("alpha", "beta"))
    settings = load_config(path)
    reconciler = FakeReconciler(["alpha", "beta"])
    state, metrics, tokens, clock = FakeState(), FakeMetrics(), FakeTokens(), FakeClock()
    scheduler = RecordingScheduler()
    parts = ServiceParts(reconciler, state, metrics, token_manager=tokens)
    service = Service(settings, path, parts, clock=clock, scheduler=scheduler, hang_slack_seconds=0.2)
    yield Harness(service, scheduler, reconciler, state, metrics, tokens, clock, path)
    if reconciler.block is not None:
        reconciler.block.set()


# -- schedule and cycles ---------------------------------------------------------------------------


def test_start_schedules_startup_interval_and_token_jobs(harness: Harness) -> None:
    harness.service.start()
    jobs = harness.scheduler.jobs
    assert harness.scheduler.started
    assert set(jobs) == {STARTUP_JOB, RECONCILE_JOB, TOKEN_JOB}
    interval = jobs[RECONCILE_JOB]
    assert interval.trigger == "interval"
    assert interval.options["seconds"] == 30
    assert interval.options["jitter"] == 2
    assert interval.options["max_instances"] == 1
    assert interval.options["coalesce"] is True
    assert interval.options["misfire_grace_time"] == 30
    assert harness.metrics.mappings == [["alpha", "beta"]]


def test_startup_cycle_makes_the_service_ready(harness: Harness) -> None:
    harness.service.start()
    assert harness.service.readyz()[0] is False
    harness.scheduler.run(STARTUP_JOB)
    assert harness.reconciler.calls[0]["trigger"] == "startup"
    ready, body = harness.service.readyz()
    assert ready, body
    assert harness.metrics.ready[-1] is True


def test_every_cycle_gets_the_hard_deadline_and_is_recorded_in_metrics(harness: Harness) -> None:
    harness.service.start()
    harness.clock.now = 2000.0
    report = harness.service.run_cycle("interval")
    assert report is not None
    assert harness.reconciler.calls[-1]["deadline"] == pytest.approx(2000.0 + 0.2)
    assert harness.metrics.cycles == [report]
    assert harness.tokens.ensured == 1  # a login (if needed) before every cycle
    assert harness.metrics.expiry[-1] == 5000.0


def test_a_hung_cycle_is_abandoned_and_does_not_wedge_the_schedule(harness: Harness) -> None:
    harness.service.start()
    harness.reconciler.block = threading.Event()
    with capture_logs() as logs:
        assert harness.service.run_cycle("interval") is None  # returns after deadline + slack
        healthy, body = harness.service.healthz()
        assert not healthy and "hard deadline" in body["problems"][0]
        # While it still runs, a new cycle does not start on top of it.
        assert harness.service.run_cycle("interval") is None
    assert len(harness.reconciler.calls) == 1
    assert any(e["event"].startswith("cycle passed its hard deadline") for e in logs)
    harness.reconciler.block.set()
    assert harness.service.wait_idle(WAIT)
    harness.reconciler.block = None
    assert harness.service.run_cycle("interval") is not None
    assert harness.service.healthz()[0]


def test_vault_token_job_reschedules_itself_when_maintain_says(harness: Harness) -> None:
    harness.service.start()
    harness.tokens.next_in = 42.0
    harness.scheduler.run(TOKEN_JOB)
    assert harness.tokens.maintained == 1
    again = harness.scheduler.jobs[TOKEN_JOB]
    assert again.trigger == "date" and "run_date" in again.options


def test_a_crashing_reconciler_is_logged_by_class_only(harness: Harness) -> None:
    def explode(**_: Any) -> CycleReport:
        raise RuntimeError("canary-should-not-be-logged")

    harness.reconciler.reconcile = explode  # type: ignore[method-assign]
    with capture_logs() as logs:
        assert harness.service.run_cycle("interval") is None
    assert "canary-should-not-be-logged" not in json.dumps(logs, default=str)
    assert any(e.get("error_code") == "RuntimeError" for e in logs)


# -- manual triggers -------------------------------------------------------------------------------


def test_trigger_queues_one_cycle_for_that_mapping(harness: Harness) -> None:
    harness.service.start()
    status, body = harness.service.trigger("alpha")
    assert status == 202 and body["mapping"] == "alpha"
    [job_id] = harness.scheduler.manual_jobs()
    harness.scheduler.run(job_id)
    assert harness.reconciler.calls == [{"trigger": "manual", "only": ["alpha"], "deadline": pytest.approx(1000.2)}]


def test_repeated_triggers_coalesce_into_one_cycle(harness: Harness) -> None:
    harness.service.start()
    harness.service.trigger("alpha")
    status, body = harness.service.trigger("beta")
    assert status == 202 and body["coalesced"] is True
    harness.service.trigger("alpha")
    [job_id] = harness.scheduler.manual_jobs()
    harness.scheduler.run(job_id)
    assert [c["only"] for c in harness.reconciler.calls] == [["alpha", "beta"]]
    harness.service.trigger(None)  # after the drain, a new trigger queues a new job
    [job_id] = harness.scheduler.manual_jobs()
    harness.scheduler.run(job_id)
    assert harness.reconciler.calls[-1]["only"] is None


def test_trigger_of_an_unknown_mapping_is_404(harness: Harness) -> None:
    harness.service.start()
    assert harness.service.trigger("nope")[0] == 404
    assert harness.scheduler.manual_jobs() == []


# -- reload ----------------------------------------------------------------------------------------


def test_reload_with_a_valid_config_takes_effect(harness: Harness) -> None:
    harness.service.start()
    harness.config_path.write_text(
        config_with("alpha", "beta", "gamma").replace("interval_seconds = 30", "interval_seconds = 45")
    )
    assert harness.service.reload() is True
    assert [m.name for m in harness.reconciler.settings_updates[-1].mappings] == ["alpha", "beta", "gamma"]
    assert harness.metrics.mappings[-1] == ["alpha", "beta", "gamma"]
    assert harness.scheduler.rescheduled == [(RECONCILE_JOB, "interval", {"seconds": 45, "jitter": 2})]
    assert harness.service.trigger("gamma")[0] == 202
    assert harness.service.settings.sync.interval_seconds == 45


def test_reload_with_an_invalid_config_keeps_the_old_one_and_logs_every_problem(harness: Harness) -> None:
    harness.service.start()
    bad = (
        config_with("alpha")
        .replace('script = "w-alpha"', 'script = "Bad Name"')
        .replace("interval_seconds = 30", "interval_seconds = 0")
    )
    harness.config_path.write_text(bad)
    with capture_logs() as logs:
        assert harness.service.reload() is False
    [event] = [e for e in logs if e["event"].startswith("configuration reload refused")]
    problems = event["problems"]
    assert len(problems) == 2
    assert any("target.script" in p for p in problems) and any("sync.interval_seconds" in p for p in problems)
    assert harness.reconciler.settings_updates == []
    assert [m.name for m in harness.service.settings.mappings] == ["alpha", "beta"]


def test_reload_warns_about_sections_that_need_a_restart(harness: Harness) -> None:
    harness.service.start()
    harness.config_path.write_text(config_with("alpha", "beta").replace("127.0.0.1:1", "127.0.0.1:2"))
    with capture_logs() as logs:
        assert harness.service.reload() is True
    [warning] = [e for e in logs if e["log_level"] == "warning"]
    assert warning["sections"] == ["vault"]


# -- shutdown and probes ---------------------------------------------------------------------------


class RecordingServer:
    def __init__(self, events: list[str]) -> None:
        self.events = events

    def start(self) -> None:
        self.events.append("server-started")

    def stop(self) -> None:
        self.events.append("server-stopped")


def test_shutdown_waits_for_the_inflight_cycle_then_closes_state_then_stops_the_server(tmp_path: Path) -> None:
    path = tmp_path / "syncd.toml"
    path.write_text(config_with("alpha"))
    events: list[str] = []
    reconciler = FakeReconciler(["alpha"], block=threading.Event(), events=events)
    state = FakeState(events=events)
    scheduler = RecordingScheduler()
    service = Service(
        load_config(path),
        path,
        ServiceParts(reconciler, state, FakeMetrics(), closers=[lambda: events.append("clients-closed")]),
        scheduler=scheduler,
        server_factory=lambda _: RecordingServer(events),
        hang_slack_seconds=WAIT,
    )
    service.start()
    cycle = threading.Thread(target=service.run_cycle, args=["interval"])
    cycle.start()
    assert reconciler.entered.wait(WAIT)
    stopper = threading.Thread(target=service.shutdown)
    stopper.start()
    reconciler.block.set()  # type: ignore[union-attr]
    stopper.join(WAIT)
    cycle.join(WAIT)
    assert events == ["server-started", "cycle-done", "state-closed", "clients-closed", "server-stopped"]
    assert scheduler.shut_down
    assert service.trigger("alpha") == (503, {"error": "shutting down"})
    assert service.run_cycle("interval") is None
    assert service.readyz()[0] is False


def test_shutdown_gives_up_on_a_cycle_after_the_grace(harness: Harness) -> None:
    harness.config_path.write_text(
        config_with("alpha", "beta").replace("shutdown_grace_seconds = 5", "shutdown_grace_seconds = 0.05")
    )
    assert harness.service.reload()
    harness.reconciler.block = threading.Event()
    harness.service.start()
    cycle = threading.Thread(target=harness.service.run_cycle, args=["interval"], daemon=True)
    cycle.start()
    assert harness.reconciler.entered.wait(WAIT)
    with capture_logs() as logs:
        harness.service.shutdown()
    assert harness.state.closed
    assert any("did not finish within the shutdown grace" in e["event"] for e in logs)
    # Let the abandoned cycle end inside this test: otherwise it logs "cycle finished" once its
    # reconciler stops blocking, after the test, outside any output capture.
    harness.reconciler.block.set()
    cycle.join(WAIT)
    assert harness.service.wait_idle(WAIT)


def test_healthz_turns_unhealthy_when_no_cycle_finished_for_too_long(harness: Harness) -> None:
    harness.service.start()
    harness.scheduler.run(STARTUP_JOB)
    assert harness.service.healthz()[0]
    harness.clock.now += 3 * 30 + 0.2 - 1  # the default limit: 3 intervals + the cycle timeout
    assert harness.service.healthz()[0]
    harness.clock.now += 2
    healthy, body = harness.service.healthz()
    assert not healthy and "no cycle finished" in body["problems"][0]
    harness.service.run_cycle("interval")
    assert harness.service.healthz()[0]


def test_healthz_uses_the_configured_max_cycle_age(tmp_path: Path) -> None:
    path = tmp_path / "syncd.toml"
    path.write_text(
        config_with("alpha").replace("enabled = false", "enabled = false\nhealthz_max_cycle_age_seconds = 5")
    )
    clock = FakeClock()
    service = Service(
        load_config(path),
        path,
        ServiceParts(FakeReconciler(["alpha"]), FakeState(), FakeMetrics()),
        clock=clock,
        scheduler=RecordingScheduler(),
    )
    service.start()
    clock.now += 6
    assert service.healthz()[0] is False


def test_readyz_needs_a_valid_vault_token(harness: Harness) -> None:
    harness.service.start()
    harness.scheduler.run(STARTUP_JOB)
    harness.tokens.valid = False
    ready, body = harness.service.readyz()
    assert not ready and body["problems"] == ["no valid Vault token"]


def test_status_combines_state_and_the_last_cycle(harness: Harness) -> None:
    harness.state.statuses = [MappingStatus("alpha", "fp", 3, 990.0, 995.0, 990.0, None, None, in_sync=True)]
    harness.reconciler.names = ["alpha", "beta"]
    harness.service.start()
    harness.service.run_cycle("interval")
    body = harness.service.status()
    assert body["mappings"][0]["mapping"] == "alpha" and body["mappings"][0]["last_version"] == 3
    assert body["last_cycle"]["trigger"] == "interval" and body["last_cycle"]["ok"] is True
    assert body["mappings_configured"] == ["alpha", "beta"]
    json.dumps(body)  # JSON-serialisable as is


def test_run_forever_reloads_on_sighup_and_stops_on_sigterm(harness: Harness) -> None:
    reloads: list[Path] = []

    def on_start() -> None:
        signal.raise_signal(signal.SIGHUP)
        signal.raise_signal(signal.SIGTERM)

    scheduler = RecordingScheduler(on_start=on_start)
    service = Service(
        harness.service.settings,
        harness.config_path,
        ServiceParts(harness.reconciler, harness.state, harness.metrics),
        scheduler=scheduler,
        loader=lambda p: reloads.append(p) or load_config(p),  # type: ignore[func-returns-value]
    )
    before = signal.getsignal(signal.SIGTERM)
    assert service.run_forever() == 0
    assert reloads == [harness.config_path]
    assert harness.state.closed and scheduler.shut_down
    assert signal.getsignal(signal.SIGTERM) is before


# -- the real wiring against both emulators ----------------------------------------------------------


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    with running_stack(monkeypatch) as running:
        yield running


def _get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=WAIT) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_rotated_cloudflare_token_file_is_used_by_the_next_cycle(stack: Stack, tmp_path: Path) -> None:
    token_file = tmp_path / "cf-token"
    token_file.write_text(stack.cf.api_token + "\n")
    path = tmp_path / "syncd.toml"
    path.write_text(config_text(stack, tmp_path / "state.sqlite3", cf_token=f'{{ file = "{token_file}" }}'))
    logs = io.StringIO()
    configure_logging(format="json", level="debug", stream=logs)
    service = build_service(load_config(path), path)
    assert isinstance(service, Service)
    first = service.run_cycle("startup")
    assert first is not None and first.ok
    # Rotate: the emulator knows only the new token from now on.
    old = stack.cf.api_token
    new = stack.cf.create_token("write")
    stack.cf.revoke_token(old)
    token_file.write_text(new + "\n")
    stack.write_api(CANARY_ROTATED, CANARY_WEBHOOK)
    second = service.run_cycle("interval")
    service.shutdown()
    assert second is not None and second.ok, [r.error for r in second.results] if second else None
    assert stack.cf.secrets_of(SCRIPT)["API_KEY"]["text"] == CANARY_ROTATED
    assert leaked(logs.getvalue()) == [] and leaked_any([old, new, stack.vault.root_token], logs.getvalue()) == []


def test_ops_endpoints_over_http_with_the_real_wiring(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNCD_TEST_TRIGGER", "trigger-token-for-tests-0123456789abcdef")
    path = tmp_path / "syncd.toml"
    text = config_text(stack, tmp_path / "state.sqlite3").replace(
        "[server]\nenabled = false",
        '[server]\nenabled = true\nbind = "127.0.0.1"\nport = 0\ntrigger_token = { env = "SYNCD_TEST_TRIGGER" }',
    )
    path.write_text(text)
    scheduler = RecordingScheduler()
    service = build_service(load_config(path), path, scheduler=scheduler)  # the real wiring, a recording scheduler
    service.start()
    try:
        server = service.server
        assert server is not None
        url = server.url  # type: ignore[attr-defined]
        assert _get(url + "/readyz")[0] == 503
        scheduler.run(TOKEN_JOB)
        scheduler.run(STARTUP_JOB)
        assert _get(url + "/readyz")[0] == 200
        assert _get(url + "/healthz")[0] == 200
        status_code, status_body = _get(url + "/status")
        assert status_code == 200
        mappings = {m["mapping"]: m for m in json.loads(status_body)["mappings"]}
        assert mappings["app-api"]["in_sync"] is True and mappings["app-api"]["last_version"] == 1
        leadership = json.loads(status_body)["leadership"]  # no [leader_election]: the sole writer
        assert leadership["enabled"] is False and leadership["role"] == "leader", leadership
        metrics_code, metrics_body = _get(url + "/metrics")
        assert metrics_code == 200 and "syncd_ready 1.0" in metrics_body
        request = urllib.request.Request(
            url + "/trigger?mapping=app-api",
            method="POST",
            headers={"Authorization": "Bearer trigger-token-for-tests-0123456789abcdef"},
        )
        with urllib.request.urlopen(request, timeout=WAIT) as response:
            assert response.status == 202
        [job_id] = scheduler.manual_jobs()
        scheduler.run(job_id)
        assert service.status()["last_cycle"]["trigger"] == "manual"
        texts = [status_body, metrics_body]
        assert leaked(*texts) == [] and leaked_any([stack.cf.api_token, stack.vault.root_token], *texts) == []
    finally:
        service.shutdown()
    with pytest.raises(OSError):
        urllib.request.urlopen(url + "/healthz", timeout=1)


def test_real_apscheduler_runs_the_startup_cycle_and_configures_the_interval(harness: Harness) -> None:
    done = threading.Event()
    reconciler = harness.reconciler
    original = reconciler.reconcile

    def reconcile(**kwargs: Any) -> CycleReport:
        report = original(**kwargs)
        done.set()
        return report

    reconciler.reconcile = reconcile  # type: ignore[method-assign]
    scheduler = BackgroundScheduler(timezone="UTC")
    service = Service(
        harness.service.settings,
        harness.config_path,
        ServiceParts(reconciler, FakeState(), FakeMetrics()),
        scheduler=scheduler,
    )
    service.start()
    try:
        assert done.wait(WAIT)
        job = scheduler.get_job(RECONCILE_JOB)
        assert job.trigger.interval == timedelta(seconds=30)
        assert job.trigger.jitter == 2
        assert job.max_instances == 1 and job.coalesce is True
        assert reconciler.calls[0]["trigger"] == "startup"
    finally:
        service.shutdown()


def test_a_rotation_vault_announced_queues_a_cycle_of_its_mappings_just_after_it(harness: Harness) -> None:
    from syncd.app.service.rotation_schedule import ROTATION_JOB  # noqa: PLC0415 - issue 17's hook only

    plain = harness.reconciler.reconcile
    rotation_at = harness.clock.now + 60

    def announcing(**kwargs: Any) -> CycleReport:
        report = plain(**kwargs)
        return CycleReport("c", report.trigger, 1000.0, 1001.0, report.results, next_checks={"alpha": rotation_at})

    harness.reconciler.reconcile = announcing  # type: ignore[method-assign]
    harness.service.start()
    harness.scheduler.run(STARTUP_JOB)
    job = harness.scheduler.jobs[ROTATION_JOB]
    assert job.trigger == "date" and job.options["run_date"].timestamp() == rotation_at + 0.5
    harness.clock.now = rotation_at + 0.5
    harness.scheduler.run(ROTATION_JOB)
    [queued] = harness.scheduler.manual_jobs()
    harness.scheduler.run(queued)
    assert harness.reconciler.calls[-1]["only"] == ["alpha"]
