"""Exact bodies over raw HTTP, resourceVersion semantics, and the admin API (tokens, partitions)."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from syncd.devstack.kubernetes import KubernetesConfig, KubernetesEmulator
from tests.devstack.kubernetes.conftest import NAMESPACE

LEASES = f"/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases"
SECRETS = f"/api/v1/namespaces/{NAMESPACE}/secrets"
MICRO = "2026-11-30T05:00:00.000001Z"


def lease(name: str = "leader", holder: str = "a", **spec: object) -> dict[str, object]:
    return {"metadata": {"name": name}, "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15, **spec}}


def test_missing_token_is_401_and_the_status_has_no_details(kube: KubernetesEmulator) -> None:
    answer = httpx.get(kube.url + LEASES, timeout=5)
    assert answer.status_code == 401
    assert answer.json() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }


def test_anonymous_auth_makes_a_missing_token_forbidden() -> None:
    with KubernetesEmulator(config=KubernetesConfig(anonymous_auth=True)) as kube:
        answer = httpx.get(kube.url + LEASES, timeout=5)
    assert answer.status_code == 403
    assert answer.json()["message"] == (
        'leases.coordination.k8s.io is forbidden: User "system:anonymous" cannot list resource "leases" '
        'in API group "coordination.k8s.io" in the namespace "syncd"'
    )


def test_list_has_list_kind_collection_resource_version_and_items_without_type_meta(http: httpx.Client) -> None:
    http.post(LEASES, json=lease()).raise_for_status()
    listed = http.get(LEASES).json()
    assert listed["kind"] == "LeaseList" and listed["apiVersion"] == "coordination.k8s.io/v1"
    assert listed["metadata"]["resourceVersion"].isdigit()
    assert [item["metadata"]["name"] for item in listed["items"]] == ["leader"]
    assert "kind" not in listed["items"][0]


def test_resource_version_is_one_cluster_wide_counter(http: httpx.Client) -> None:
    first = http.post(LEASES, json=lease()).json()["metadata"]["resourceVersion"]
    second = http.post(SECRETS, json={"metadata": {"name": "s"}, "stringData": {"k": "v"}}).json()
    assert int(second["metadata"]["resourceVersion"]) == int(first) + 1


def test_unchanged_update_keeps_the_resource_version_and_put_without_one_is_unconditional(http: httpx.Client) -> None:
    created = http.post(LEASES, json=lease(renewTime=MICRO)).json()
    same = http.put(f"{LEASES}/leader", json=created).json()
    assert same["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    unconditional = lease(holder="b")
    answer = http.put(f"{LEASES}/leader", json=unconditional)
    assert answer.status_code == 200
    assert answer.json()["spec"]["holderIdentity"] == "b"


def test_microtime_needs_exactly_six_fractional_digits_and_is_served_in_utc(http: httpx.Client) -> None:
    answer = http.post(LEASES, json=lease(renewTime="2026-11-30T05:00:00.123Z"))
    assert answer.status_code == 400
    assert answer.json()["message"].startswith(
        'Lease in version "v1" cannot be handled as a Lease: parsing time "2026-11-30T05:00:00.123Z" as '
        '"2006-01-02T15:04:05.000000Z07:00"'
    )
    created = http.post(LEASES, json=lease(renewTime="2026-11-30T06:00:00.000001+01:00")).json()
    assert created["spec"]["renewTime"] == MICRO


def test_invalid_lease_duration_is_422(http: httpx.Client) -> None:
    answer = http.post(LEASES, json=lease(leaseDurationSeconds=0))
    assert answer.status_code == 422
    assert answer.json()["message"] == (
        'Lease.coordination.k8s.io "leader" is invalid: spec.leaseDurationSeconds: Invalid value: 0: '
        "must be greater than 0"
    )


def test_put_of_a_missing_object_is_404_and_a_name_mismatch_400(http: httpx.Client) -> None:
    assert http.put(f"{LEASES}/leader", json=lease()).status_code == 404
    http.post(LEASES, json=lease())
    mismatch = http.put(f"{LEASES}/leader", json=lease(name="other"))
    assert mismatch.status_code == 400
    assert mismatch.json()["message"] == "the name of the object (other) does not match the name on the URL (leader)"


def test_bad_base64_is_a_decoding_error(http: httpx.Client) -> None:
    answer = http.post(SECRETS, json={"metadata": {"name": "s"}, "data": {"k": "not base64!"}})
    assert answer.status_code == 400
    assert answer.json()["message"].startswith('Secret in version "v1" cannot be handled as a Secret: illegal base64')


def test_request_over_the_body_limit_is_413() -> None:
    with KubernetesEmulator(config=KubernetesConfig(max_request_bytes=1000)) as kube:
        headers = {"Authorization": f"Bearer {kube.token}"}
        body = {"metadata": {"name": "s"}, "stringData": {"k": "x" * 2000}}
        answer = httpx.post(kube.url + SECRETS, json=body, headers=headers, timeout=5)
    assert answer.status_code == 413
    assert answer.json()["message"] == "Request entity too large: limit is 1000"


def test_unknown_path_and_verb(http: httpx.Client) -> None:
    unknown = http.get(f"/api/v1/namespaces/{NAMESPACE}/configmaps")
    assert (unknown.status_code, unknown.json()["message"]) == (404, "the server could not find the requested resource")
    assert http.post(f"{LEASES}/leader", json=lease()).status_code == 405


def test_admin_tokens_with_rules_and_revocation(kube: KubernetesEmulator) -> None:
    rules = [{"verbs": ["get"], "resources": ["leases"], "resourceNames": ["leader"], "namespace": NAMESPACE}]
    token = httpx.post(
        kube.url + "/__devstack/tokens", json={"user": "system:serviceaccount:syncd:r", "rules": rules}, timeout=5
    ).json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{kube.url}{LEASES}/leader", headers=headers, timeout=5).status_code == 404
    assert httpx.get(f"{kube.url}{LEASES}/other", headers=headers, timeout=5).status_code == 403
    httpx.request("DELETE", kube.url + "/__devstack/tokens", json={"token": token}, timeout=5)
    assert httpx.get(f"{kube.url}{LEASES}/leader", headers=headers, timeout=5).status_code == 401


def test_error_partition_cuts_off_one_token_until_healed(kube: KubernetesEmulator, http: httpx.Client) -> None:
    other = kube.add_token("system:serviceaccount:syncd:other")
    httpx.post(kube.url + "/__devstack/partitions", json={"token": kube.token, "mode": "error"}, timeout=5)
    assert http.get(LEASES).status_code == 503
    assert httpx.get(kube.url + LEASES, headers={"Authorization": f"Bearer {other}"}, timeout=5).status_code == 200
    httpx.request("DELETE", kube.url + "/__devstack/partitions", json={"token": kube.token}, timeout=5)
    assert http.get(LEASES).status_code == 200


def test_drop_partition_closes_the_connection(kube: KubernetesEmulator, http: httpx.Client) -> None:
    kube.partition(kube.token, "drop")
    with pytest.raises(httpx.TransportError):
        http.get(LEASES)


def test_hang_partition_holds_the_request_until_the_client_gives_up_or_it_heals(
    kube: KubernetesEmulator, http: httpx.Client
) -> None:
    kube.partition(kube.token, "hang")
    with pytest.raises(httpx.TimeoutException):
        http.get(LEASES, timeout=0.2)
    outcome: list[BaseException | int] = []

    def call() -> None:
        try:
            outcome.append(http.get(LEASES, timeout=30).status_code)
        except httpx.TransportError as exc:
            outcome.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    deadline = time.monotonic() + 10
    while kube.held_requests(kube.token) < 2 and time.monotonic() < deadline:
        caller.join(timeout=0.01)
    assert kube.held_requests(kube.token) == 2  # the timed-out one and this one
    kube.heal(kube.token)
    caller.join(timeout=10)
    assert not caller.is_alive()
    assert isinstance(outcome[0], httpx.TransportError)  # a healed hang is dropped, never answered late
    assert http.get(LEASES).status_code == 200


def test_tokens_never_appear_in_the_request_log(kube: KubernetesEmulator, http: httpx.Client) -> None:
    http.get(LEASES)
    http.post(SECRETS, json={"metadata": {"name": "s"}, "stringData": {"k": "canary-value-42"}})
    log = str(httpx.get(kube.url + "/__devstack/requests", timeout=5).json())
    assert kube.token not in log and "canary-value-42" not in log


def test_the_audit_log_names_the_user_and_verb_of_each_request(kube: KubernetesEmulator, http: httpx.Client) -> None:
    reader = kube.add_token("system:serviceaccount:syncd:reader")
    http.post(LEASES, json=lease())
    http.put(f"{LEASES}/leader", json=lease(holder="b"))
    httpx.get(f"{kube.url}{LEASES}/leader", headers={"Authorization": f"Bearer {reader}"}, timeout=5)
    httpx.get(f"{kube.url}{LEASES}", headers={"Authorization": f"Bearer {reader}"}, timeout=5)
    audit = httpx.get(kube.url + "/__devstack/audit", timeout=5).json()["audit"]
    assert [(a["user"].rsplit(":", 1)[-1], a["verb"], a["status"]) for a in audit] == [
        ("syncd", "create", 201),
        ("syncd", "update", 200),
        ("reader", "get", 200),
        ("reader", "list", 200),
    ]
    assert kube.token not in str(audit) and reader not in str(audit)
