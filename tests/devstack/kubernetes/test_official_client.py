"""The official ``kubernetes`` client drives the emulator and cannot tell it from an API server."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from syncd.devstack.kubernetes import LEASES, KubernetesEmulator, Rule
from tests.devstack.kubernetes.conftest import NAMESPACE, official_client

NOW = datetime(2026, 11, 30, 5, 0, 0, 123456, tzinfo=UTC)


def new_lease(name: str = "syncd-leader", holder: str = "pod-a") -> client.V1Lease:
    spec = client.V1LeaseSpec(
        holder_identity=holder, lease_duration_seconds=15, acquire_time=NOW, renew_time=NOW, lease_transitions=0
    )
    return client.V1Lease(metadata=client.V1ObjectMeta(name=name), spec=spec)


def spec_of(lease: client.V1Lease) -> client.V1LeaseSpec:
    assert lease.spec is not None
    return lease.spec


def meta_of(obj: client.V1Lease | client.V1Secret) -> client.V1ObjectMeta:
    assert obj.metadata is not None
    return obj.metadata


def status_of(error: ApiException) -> dict[str, Any]:
    assert error.body is not None
    body = json.loads(error.body)
    assert body["kind"] == "Status" and body["apiVersion"] == "v1" and body["metadata"] == {}
    return dict(body)


def test_lease_create_read_replace(leases: client.CoordinationV1Api) -> None:
    created = leases.create_namespaced_lease(NAMESPACE, new_lease())
    assert meta_of(created).resource_version
    assert spec_of(created).holder_identity == "pod-a"
    assert spec_of(created).renew_time == NOW

    read = leases.read_namespaced_lease("syncd-leader", NAMESPACE)
    spec_of(read).holder_identity = "pod-b"
    spec_of(read).lease_transitions = 1
    replaced = leases.replace_namespaced_lease("syncd-leader", NAMESPACE, read)
    assert spec_of(replaced).holder_identity == "pod-b"
    assert int(meta_of(replaced).resource_version or 0) > int(meta_of(created).resource_version or 0)
    assert meta_of(replaced).uid == meta_of(created).uid


def test_stale_resource_version_is_a_conflict_with_the_real_status(leases: client.CoordinationV1Api) -> None:
    leases.create_namespaced_lease(NAMESPACE, new_lease())
    first = leases.read_namespaced_lease("syncd-leader", NAMESPACE)
    second = leases.read_namespaced_lease("syncd-leader", NAMESPACE)
    spec_of(first).holder_identity = "pod-b"
    leases.replace_namespaced_lease("syncd-leader", NAMESPACE, first)
    spec_of(second).holder_identity = "pod-c"
    with pytest.raises(ApiException) as caught:
        leases.replace_namespaced_lease("syncd-leader", NAMESPACE, second)
    assert caught.value.status == 409
    assert status_of(caught.value) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'Operation cannot be fulfilled on leases.coordination.k8s.io "syncd-leader": the object has been '
        "modified; please apply your changes to the latest version and try again",
        "reason": "Conflict",
        "details": {"name": "syncd-leader", "group": "coordination.k8s.io", "kind": "leases"},
        "code": 409,
    }


def test_patch_lease_with_merge_patch_and_resource_version_precondition(leases: client.CoordinationV1Api) -> None:
    created = leases.create_namespaced_lease(NAMESPACE, new_lease())
    merge = "application/merge-patch+json"
    patched = leases.patch_namespaced_lease(
        "syncd-leader", NAMESPACE, {"spec": {"holderIdentity": "pod-b"}}, _content_type=merge
    )
    assert spec_of(patched).holder_identity == "pod-b"
    assert spec_of(patched).lease_duration_seconds == 15
    stale = {"metadata": {"resourceVersion": meta_of(created).resource_version}, "spec": {"holderIdentity": "x"}}
    with pytest.raises(ApiException) as caught:
        leases.patch_namespaced_lease("syncd-leader", NAMESPACE, stale, _content_type=merge)
    assert caught.value.status == 409
    assert status_of(caught.value)["reason"] == "Conflict"


def test_patch_with_a_dict_is_strategic_merge_and_with_a_list_json_patch(leases: client.CoordinationV1Api) -> None:
    leases.create_namespaced_lease(NAMESPACE, new_lease())
    patched = leases.patch_namespaced_lease("syncd-leader", NAMESPACE, {"spec": {"holderIdentity": "pod-b"}})
    assert (spec_of(patched).holder_identity, spec_of(patched).lease_duration_seconds) == ("pod-b", 15)
    operations = [
        {"op": "test", "path": "/spec/holderIdentity", "value": "pod-b"},
        {"op": "replace", "path": "/spec/holderIdentity", "value": "pod-c"},
    ]
    assert spec_of(leases.patch_namespaced_lease("syncd-leader", NAMESPACE, operations)).holder_identity == "pod-c"
    with pytest.raises(ApiException) as caught:
        leases.patch_namespaced_lease("syncd-leader", NAMESPACE, operations)  # the test op fails now
    assert caught.value.status == 422
    assert status_of(caught.value)["reason"] == "Invalid"


def test_missing_lease_is_not_found(leases: client.CoordinationV1Api) -> None:
    with pytest.raises(ApiException) as caught:
        leases.read_namespaced_lease("absent", NAMESPACE)
    assert caught.value.status == 404
    body = status_of(caught.value)
    assert body["message"] == 'leases.coordination.k8s.io "absent" not found'
    assert body["details"] == {"name": "absent", "group": "coordination.k8s.io", "kind": "leases"}


def test_create_twice_is_already_exists(leases: client.CoordinationV1Api) -> None:
    leases.create_namespaced_lease(NAMESPACE, new_lease())
    with pytest.raises(ApiException) as caught:
        leases.create_namespaced_lease(NAMESPACE, new_lease())
    assert caught.value.status == 409
    body = status_of(caught.value)
    assert (body["reason"], body["message"]) == (
        "AlreadyExists",
        'leases.coordination.k8s.io "syncd-leader" already exists',
    )


def test_unknown_token_is_unauthorized(kube: KubernetesEmulator) -> None:
    with official_client(kube, "not-a-token") as api, pytest.raises(ApiException) as caught:
        client.CoordinationV1Api(api).read_namespaced_lease("x", NAMESPACE)
    assert caught.value.status == 401
    assert status_of(caught.value) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }


def test_token_without_the_verb_is_forbidden(kube: KubernetesEmulator) -> None:
    read_only = kube.add_token(
        "system:serviceaccount:syncd:reader",
        (Rule(("get",), ("leases",), ("coordination.k8s.io",), ("syncd-leader",), NAMESPACE),),
    )
    kube.put_object(LEASES, {"metadata": {"name": "syncd-leader"}})
    with official_client(kube, read_only) as api:
        leases = client.CoordinationV1Api(api)
        lease = leases.read_namespaced_lease("syncd-leader", NAMESPACE)
        with pytest.raises(ApiException) as caught:
            leases.replace_namespaced_lease("syncd-leader", NAMESPACE, lease)
        with pytest.raises(ApiException) as other_name:
            leases.read_namespaced_lease("other", NAMESPACE)
    assert caught.value.status == 403
    body = status_of(caught.value)
    assert body["reason"] == "Forbidden"
    assert body["message"] == (
        'leases.coordination.k8s.io "syncd-leader" is forbidden: User "system:serviceaccount:syncd:reader" cannot '
        'update resource "leases" in API group "coordination.k8s.io" in the namespace "syncd"'
    )
    assert body["details"] == {"name": "syncd-leader", "group": "coordination.k8s.io", "kind": "leases"}
    assert other_name.value.status == 403


def test_rule_limited_by_resource_names_cannot_create(kube: KubernetesEmulator) -> None:
    named = kube.add_token(
        "system:serviceaccount:syncd:syncd",
        (Rule(("get", "create", "update"), ("secrets",), ("",), ("syncd-state",), NAMESPACE),),
    )
    secret = client.V1Secret(metadata=client.V1ObjectMeta(name="syncd-state"), string_data={"k": "v"})
    with official_client(kube, named) as api, pytest.raises(ApiException) as caught:
        client.CoreV1Api(api).create_namespaced_secret(NAMESPACE, secret)
    assert caught.value.status == 403
    assert status_of(caught.value)["message"] == (
        'secrets is forbidden: User "system:serviceaccount:syncd:syncd" cannot create resource "secrets" '
        'in API group "" in the namespace "syncd"'
    )
    assert status_of(caught.value)["details"] == {"kind": "secrets"}


def test_secret_crud_with_string_data_merged_into_data(core: client.CoreV1Api) -> None:
    secret = client.V1Secret(
        metadata=client.V1ObjectMeta(name="syncd-state-0"), data={"a": "YQ=="}, string_data={"b": "bee"}
    )
    created = core.create_namespaced_secret(NAMESPACE, secret)
    assert created.data == {"a": "YQ==", "b": "YmVl"}
    assert created.string_data is None
    assert created.type == "Opaque"

    assert created.data is not None
    created.data["a"] = "QUFB"
    replaced = core.replace_namespaced_secret("syncd-state-0", NAMESPACE, created)
    assert replaced.data is not None and replaced.data["a"] == "QUFB"

    listed = core.list_namespaced_secret(NAMESPACE)
    assert [meta_of(item).name for item in listed.items] == ["syncd-state-0"]

    patched = core.patch_namespaced_secret(
        "syncd-state-0", NAMESPACE, {"data": {"b": None}}, _content_type="application/strategic-merge-patch+json"
    )
    assert patched.data == {"a": "QUFB"}

    deleted = core.delete_namespaced_secret("syncd-state-0", NAMESPACE)
    assert isinstance(deleted, dict)
    assert deleted["status"] == "Success"  # the client types a DELETE answer as a plain object
    assert deleted["details"]["name"] == "syncd-state-0"
    with pytest.raises(ApiException) as caught:
        core.read_namespaced_secret("syncd-state-0", NAMESPACE)
    assert caught.value.status == 404
    assert status_of(caught.value)["message"] == 'secrets "syncd-state-0" not found'


def test_secret_over_one_mebibyte_is_invalid(core: client.CoreV1Api) -> None:
    big = client.V1Secret(metadata=client.V1ObjectMeta(name="big"), string_data={"blob": "x" * (1024 * 1024 + 1)})
    with pytest.raises(ApiException) as caught:
        core.create_namespaced_secret(NAMESPACE, big)
    assert caught.value.status == 422
    body = status_of(caught.value)
    assert body["message"] == 'Secret "big" is invalid: data: Too long: must have at most 1048576 bytes'
    assert body["details"] == {
        "name": "big",
        "kind": "Secret",
        "causes": [
            {"reason": "FieldValueTooLong", "message": "Too long: must have at most 1048576 bytes", "field": "data"}
        ],
    }


def test_list_and_delete_leases(leases: client.CoordinationV1Api) -> None:
    leases.create_namespaced_lease(NAMESPACE, new_lease("a"))
    leases.create_namespaced_lease(NAMESPACE, new_lease("b"))
    listed = leases.list_namespaced_lease(NAMESPACE)
    assert [meta_of(item).name for item in listed.items] == ["a", "b"]
    assert listed.metadata is not None and listed.metadata.resource_version
    deleted = leases.delete_namespaced_lease("a", NAMESPACE)
    assert isinstance(deleted, dict) and deleted["details"] == {
        "name": "a",
        "group": "coordination.k8s.io",
        "kind": "leases",
        "uid": deleted["details"]["uid"],
    }
    assert [meta_of(item).name for item in leases.list_namespaced_lease(NAMESPACE).items] == ["b"]
