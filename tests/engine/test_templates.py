"""Templated bindings: what renders, the sandbox's refusals at load, and failures that carry no value."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from syncd.config.templates import TemplateProblem, compile_template
from syncd.engine.templates import TemplateRenderError, render
from syncd.engine.values import MAX_TEXT_BYTES, ValuesRejected, desired_bindings
from syncd.model import KvVersion, SecretData, SecretVersion, VaultSecretRef
from tests.engine.conftest import CANARY, CANARY_2, TARGET, error_text, leaks, mapping, read_data, secret


def read(data: dict[str, Any], path: str = "app/db", version: int | None = 3) -> SecretVersion:
    kv = KvVersion.V2 if version is not None else KvVersion.V1
    return SecretVersion(VaultSecretRef("secret", path), kv, version, None, SecretData(data))


def rendered(text: str, **sources: dict[str, Any]) -> str:
    return render(compile_template(text), {name: read(data) for name, data in sources.items()})


def refused(text: str, **sources: dict[str, Any]) -> str:
    with pytest.raises(TemplateRenderError) as info:
        rendered(text, **sources)
    shown = error_text(info.value)
    assert leaks(shown) == []
    assert info.value.__cause__ is None and info.value.__context__ is None
    return str(info.value)


# --- rendering --------------------------------------------------------------------------------------


def test_a_database_url_from_two_sources_encodes_the_password_as_a_uri_component() -> None:
    text = "postgres://{{ db.username }}:{{ db.password | urlencode }}@{{ cfg.host }}/app"
    url = rendered(text, db={"username": "app", "password": "p@ss:w/rd?#%"}, cfg={"host": "db.internal"})
    assert url == "postgres://app:p%40ss%3Aw%2Frd%3F%23%25@db.internal/app"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{ s.v | b64encode }}", base64.b64encode(b"h\xc3\xa9llo").decode()),
        ("{{ s.enc | b64decode }}", "-----BEGIN KEY-----"),
        ("{{ s.pad | trim }}|", "x y|"),
        ("{{ s.v | upper }}{{ s.v | lower }}", "HÉLLOhéllo"),
        ("{{ s.absent | default('fallback') }}", "fallback"),
        ("{{ s.port }}:{{ s.on }}:{{ s.none }}", "5432:true:null"),
        ('{{ {"b": s.v, "a": [s.port, s.on]} | tojson }}', '{"a":[5432,true],"b":"héllo"}'),
        ("{{ s | tojson }}", None),
        ("{{ s.nested.keys }}/{{ s['nested']['items'] }}", "k/i"),
        ("{% if s.on %}on{% else %}off{% endif %}{{ ' ' ~ s.v if s.absent is defined else '!' }}", "on!"),
    ],
)
def test_filters_and_expressions(text: str, expected: str | None) -> None:
    data: dict[str, Any] = {
        "v": "héllo",
        "enc": base64.b64encode(b"-----BEGIN KEY-----").decode(),
        "pad": "  x y \n",
        "port": 5432,
        "on": True,
        "none": None,
        "nested": {"keys": "k", "items": "i"},  # a Vault key named like a dict method is a key
    }
    out = rendered(text, s=data)
    if expected is None:
        assert json.loads(out) == data
    else:
        assert out == expected


def test_tojson_does_not_escape_html_and_b64decode_ignores_line_breaks() -> None:
    assert rendered("{{ s.v | tojson }}", s={"v": "<a&b>'"}) == '"<a&b>\'"'
    wrapped = base64.encodebytes(b"x" * 100).decode()  # wrapped at 76 columns
    assert rendered("{{ s.v | b64decode }}", s={"v": wrapped}) == "x" * 100


# --- the sandbox, at load -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("{{ ''.__class__ }}", "attribute '__class__' is not allowed"),
        ("{{ db.password.__class__.__mro__ }}", "attribute '__mro__' is not allowed"),
        ("{{ db['__class__'] }}", "key '__class__' is not allowed"),
        ("{{ db._data }}", "attribute '_data' is not allowed"),
        ("{{ _x }}", "name '_x' is not allowed"),
        ("{{ range(10**9) }}", "calls are not allowed"),
        ("{{ cycler('a') }}", "calls are not allowed"),
        ("{{ joiner() }}", "calls are not allowed"),
        ("{{ namespace(a=1) }}", "calls are not allowed"),
        ("{{ lipsum() }}", "calls are not allowed"),
        ("{{ db.password.upper() }}", "calls are not allowed"),
        ("{{ 'a' * 1000000000 }}", "arithmetic is not allowed"),
        ("{{ 9 ** 9 ** 9 }}", "arithmetic is not allowed"),
        ("{{ '%999999999s' % db.x }}", "arithmetic is not allowed"),
        ("{% include 'x' %}", "{% include %} is not allowed"),
        ("{% import 'x' as y %}", "{% import %} is not allowed"),
        ("{% from 'x' import y %}", "{% from ... import %} is not allowed"),
        ("{% extends 'x' %}", "{% extends %} is not allowed"),
        ("{% for x in db %}{{ x }}{% endfor %}", "loops are not allowed"),
        ("{% set x = db.a %}{{ x }}", "{% set %} is not allowed"),
        ("{% macro m() %}x{% endmacro %}{{ db.a }}", "macros are not allowed"),
        ("{{ db.a | attr('__class__') }}", "unknown filter 'attr'"),
        ("{{ db.a | format('%s') }}", "unknown filter 'format'"),
        ("{{ db.a is callable }}", "unknown test 'callable'"),
        ("{{ db.a }", "does not parse"),
        ("plain text", "has no {{ ... }}"),
    ],
)
def test_the_sandbox_refuses_at_load(text: str, why: str) -> None:
    with pytest.raises(TemplateProblem) as info:
        compile_template(text)
    assert why in str(info.value)


def test_globals_are_not_sources_and_no_filter_or_test_is_left_to_chance() -> None:
    from syncd.config.template_engine import sandbox  # noqa: PLC0415
    from syncd.config.templates import reference_problems  # noqa: PLC0415

    env = sandbox()
    assert env.globals == {}
    assert sorted(env.filters) == sorted(
        ["b64encode", "b64decode", "urlencode", "tojson", "trim", "lower", "upper", "default"]
    )
    assert sorted(env.tests) == ["defined", "none", "undefined"]
    compiled = compile_template("{{ cycler }}{{ range }}{{ db.a }}")
    problems = [str(p) for p in reference_problems(compiled, {"db"})]
    assert problems == [
        "refers to 'cycler', which is not a source of this mapping (sources: db) (at line 1, column 4)",
        "refers to 'range', which is not a source of this mapping (sources: db) (at line 1, column 16)",
    ]


def test_positions_name_line_and_column() -> None:
    with pytest.raises(TemplateProblem) as info:
        compile_template("a\nb {{ db.x | nope }}")
    assert (info.value.line, info.value.column) == (2, 13)


def test_equal_templates_compile_once() -> None:
    text = "{{ db.username }}@{{ cfg.host }} once"
    assert compile_template(text) is compile_template(text)


# --- failures at render time: names, never values -------------------------------------------------


def test_a_missing_key_names_the_source_and_key() -> None:
    why = refused("x{{ db.nope }}", db={"password": CANARY})
    assert why == "key 'nope' is missing from source 'db' (secret/app/db v3)"


def test_b64decode_of_something_not_base64_names_the_key() -> None:
    why = refused("{{ db.password | trim | b64decode }}", db={"password": CANARY + "!"})
    assert why == "b64decode: the value of db.password is not base64"
    binary = base64.b64encode(b"\xff\xfe" + CANARY.encode()).decode()
    assert refused("{{ db.k | b64decode }}", db={"k": binary}) == (
        "b64decode: the value of db.k does not decode to UTF-8 text"
    )


@pytest.mark.parametrize(
    "text",
    [
        "{{ db.password | b64encode | upper | b64decode }}",  # the result of upper is not base64 text
        "{{ db.password.missing }}",  # an attribute of a string
        "{{ db.password[0] }}{{ db.password['x'] }}",
        "{{ db.obj | b64encode }}{{ db.obj.x }}",
        "{{ db.password | b64decode }}",
        "{{ (db.password ~ db.password) | b64decode }}",
        "{{ db.list[9] }}",
        "{{ db.password > 3 }}",
        "{{ db.obj | trim }}",
    ],
)
def test_no_render_failure_shows_a_value(text: str) -> None:
    why = refused(text, db={"password": CANARY, "obj": {"x": CANARY_2}, "list": [CANARY]})
    assert why


def test_a_rendered_value_over_the_limit_fails_that_binding_without_the_value() -> None:
    m = mapping(templates={"BIG": "{{ vault.a }}{{ vault.a }}"}, secret_text=None)
    with pytest.raises(ValuesRejected) as info:
        desired_bindings(m, TARGET, secret({"a": CANARY + "x" * (MAX_TEXT_BYTES // 2)}))
    assert leaks(error_text(info.value)) == []
    assert info.value.binding == "BIG"
    assert "over Cloudflare's 5 KB limit" in info.value.why and "template over vault" in info.value.why


def test_a_secret_key_from_a_template_decodes_a_base64_wrapped_pem() -> None:
    pem = read_data("ec_p256_pkcs8.pem")
    m = mapping(
        secret_text=None,
        secret_key=[
            {
                "template": "{{ vault.wrapped | b64decode }}",
                "binding": "SIGNING",
                "format": "pkcs8",
                "algorithm": {"name": "ECDSA", "namedCurve": "P-256"},
                "usages": ["sign"],
            }
        ],
    )
    [binding] = desired_bindings(m, TARGET, secret({"wrapped": base64.b64encode(pem.encode()).decode()}))
    body = binding.body.reveal()
    der = "".join(line for line in pem.splitlines() if "-----" not in line)
    assert body["key_base64"] == der and body["format"] == "pkcs8"


def test_key_material_from_another_source_names_that_source_when_missing() -> None:
    m = mapping(
        secret_text={"keys": {"a": "A"}},
        sources={"keys": {"mount": "secret", "path": "signing"}},
        secret_key=[
            {
                "source": "keys",
                "vault_key": "hmac",
                "binding": "HMAC",
                "format": "raw",
                "encoding": "hex",
                "algorithm": {"name": "HMAC", "hash": "SHA-256"},
                "usages": ["sign"],
            }
        ],
    )
    with pytest.raises(ValuesRejected) as info:
        desired_bindings(m, TARGET, secret({"a": CANARY}), {"keys": read({"other": CANARY_2}, "signing")})
    assert str(info.value) == (
        "binding 'HMAC': Vault key 'hmac' is missing from secret/signing v3 (source 'keys')"
    )
    made = desired_bindings(m, TARGET, secret({"a": CANARY}), {"keys": read({"hmac": "00" * 32}, "signing")})
    assert [b.name for b in made] == ["A", "HMAC"]
    assert made[1].body.reveal()["key_base64"] == base64.b64encode(bytes(32)).decode()
