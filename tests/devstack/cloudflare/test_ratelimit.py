"""Rate limit per credential, counted with the emulator clock (never with sleeps)."""

from __future__ import annotations

import httpx

from syncd.devstack.cloudflare import CloudflareEmulator
from tests.devstack.cloudflare.helpers import script_path


def test_every_answer_carries_ratelimit_headers(cf: CloudflareEmulator, http: httpx.Client) -> None:
    ok = http.get(script_path(cf) + "/secrets")
    missing = http.get(script_path(cf, "missing") + "/secrets")

    assert ok.headers["Ratelimit"] == '"default";r=1199;t=300'
    assert ok.headers["Ratelimit-Policy"] == '"burst";q=1200;w=300'
    assert missing.headers["Ratelimit"] == '"default";r=1198;t=300'
    assert "Retry-After" not in ok.headers


def test_reset_seconds_count_down_with_the_clock(cf: CloudflareEmulator, http: httpx.Client) -> None:
    http.get(script_path(cf) + "/secrets")
    cf.state.clock.advance(100)

    response = http.get(script_path(cf) + "/secrets")

    assert response.headers["Ratelimit"] == '"default";r=1198;t=200'


def test_going_over_the_limit_blocks_for_the_block_period(cf: CloudflareEmulator, http: httpx.Client) -> None:
    cf.set_rate_limit(limit=3, window=60.0, block=300.0)
    statuses = [http.get(script_path(cf) + "/secrets").status_code for _ in range(3)]

    tripped = http.get(script_path(cf) + "/secrets")
    cf.state.clock.advance(120)  # the window is over, the block is not
    still_blocked = http.get(script_path(cf) + "/secrets")
    cf.state.clock.advance(181)
    recovered = http.get(script_path(cf) + "/secrets")

    assert statuses == [200, 200, 200]
    assert tripped.status_code == 429
    assert tripped.json() == {
        "success": False,
        "errors": [{"code": 971, "message": "Please wait and consider throttling your request speed"}],
        "messages": [],
        "result": None,
    }
    assert tripped.headers["Retry-After"] == "300"
    assert tripped.headers["Ratelimit"] == '"default";r=0;t=300'
    assert still_blocked.status_code == 429
    assert still_blocked.headers["Retry-After"] == "180"
    assert recovered.status_code == 200
    assert recovered.headers["Ratelimit"] == '"default";r=2;t=60'


def test_window_resets_the_count(cf: CloudflareEmulator, http: httpx.Client) -> None:
    cf.set_rate_limit(limit=2, window=10.0)
    http.get(script_path(cf) + "/secrets")
    http.get(script_path(cf) + "/secrets")
    cf.state.clock.advance(10)

    response = http.get(script_path(cf) + "/secrets")

    assert response.status_code == 200


def test_credentials_are_counted_separately(cf: CloudflareEmulator, http: httpx.Client) -> None:
    cf.set_rate_limit(limit=1, window=60.0)
    other = cf.create_token("read")
    http.get(script_path(cf) + "/secrets")

    blocked = http.get(script_path(cf) + "/secrets")
    other_answer = httpx.get(cf.api_base + script_path(cf) + "/secrets", headers={"Authorization": f"Bearer {other}"})

    assert blocked.status_code == 429
    assert other_answer.status_code == 200


def test_admin_api_sets_the_limit(cf: CloudflareEmulator, http: httpx.Client, admin: httpx.Client) -> None:
    answer = admin.post("/ratelimit", json={"limit": 5, "window": 30, "block": 60})

    response = http.get(script_path(cf) + "/secrets")

    assert answer.json() == {"limit": 5, "window": 30.0, "block": 60.0}
    assert response.headers["Ratelimit-Policy"] == '"burst";q=5;w=30'
    assert response.headers["Ratelimit"] == '"default";r=4;t=30'


def test_constructor_sets_the_limit() -> None:
    with CloudflareEmulator(rate_limit=7, rate_window=20.0) as emulator:
        response = httpx.get(
            emulator.api_base + "/user/tokens/verify", headers={"Authorization": f"Bearer {emulator.api_token}"}
        )

    assert response.headers["Ratelimit-Policy"] == '"burst";q=7;w=20'


def test_admin_routes_are_not_counted(cf: CloudflareEmulator, http: httpx.Client, admin: httpx.Client) -> None:
    admin.get("/config")
    admin.get("/clock")

    response = http.get(script_path(cf) + "/secrets")

    assert response.headers["Ratelimit"] == '"default";r=1199;t=300'
