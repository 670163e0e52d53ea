"""Finding 3 of issue 21 end to end: ``syncd once`` against an HTTPS Vault address whose every
answer is a 307 to a plain-HTTP host. Neither the AppRole login body nor a token may arrive there."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.app.conftest import run_cli
from tests.app.service_conftest_helpers import Stack, config_text, leaked_any, running_stack
from tests.hostile import TLS_CERT, Recorder, Redirector

pytestmark = pytest.mark.integration

SECRET_ID = "approle-secret-id-canary-7c3e19d2"


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    with running_stack(monkeypatch) as running:
        yield running


def test_once_sends_nothing_to_the_plain_http_host_a_redirect_names(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    collector = Recorder().start()
    redirector = Redirector(lambda path: collector.url + path, tls=True).start()
    try:
        monkeypatch.setenv("SYNCD_TEST_SECRET_ID", SECRET_ID)
        text = config_text(stack, tmp_path / "state.sqlite3")
        text = text.replace(f'address = "{stack.vault.url}"', f'address = "{redirector.url}"')
        text = text.replace(
            'method = "token"\ntoken = { env = "SYNCD_TEST_VAULT_TOKEN" }',
            f'method = "approle"\nrole_id = "syncd"\nsecret_id = {{ env = "SYNCD_TEST_SECRET_ID" }}\n'
            f'\n[vault.tls]\nca_bundle = "{TLS_CERT}"',
        )
        config = tmp_path / "syncd.toml"
        config.write_text(text)
        code, out, err = run_cli(capsys, "once", "--config", str(config))
        assert code != 0
        assert any(r.path.endswith("/auth/approle/login") for r in redirector.received)  # it was asked
        assert len(collector.received) == 0  # nothing followed to plain http (no body, no token; never printed)
        assert "refused" in out + err
        assert leaked_any([SECRET_ID], out, err) == []
    finally:
        redirector.stop()
        collector.stop()
