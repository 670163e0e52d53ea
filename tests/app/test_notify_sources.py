"""A write to any source of a mapping (a KV secret, a static role rotated by hand) triggers it."""

from __future__ import annotations

from syncd.app.notify.audit import paths_to_mappings
from syncd.config import parse_config

CONFIG = """
[vault]
address = "http://127.0.0.1:8200"
[cloudflare]
account_id = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

[[mapping]]
name = "app-db"
target = { script = "app" }
vault = { mount = "secret", path = "app/flags", kv_version = 2 }
templates = { DATABASE_URL = "postgres://{{ db.username }}:{{ db.password }}@{{ cfg.host }}/app" }
[mapping.sources.db]
kind = "database"
mount = "db-prod"
role = "app"
[mapping.sources.cfg]
mount = "kv1"
path = "app/config"
kv_version = 1

[[mapping]]
name = "plain"
vault = { mount = "secret", path = "app/flags" }
target = { script = "other" }
secret_text = { keys = { flag = "FLAG" } }
"""


def test_writes_to_any_source_reach_their_mappings() -> None:
    settings = parse_config(CONFIG)
    assert paths_to_mappings(settings, "secret/data/app/flags") == {"app-db", "plain"}
    assert paths_to_mappings(settings, "kv1/app/config") == {"app-db"}
    assert paths_to_mappings(settings, "db-prod/rotate-role/app") == {"app-db"}
    assert paths_to_mappings(settings, "db-prod/static-roles/app") == {"app-db"}
    assert paths_to_mappings(settings, "db-prod/static-creds/app") == set()  # a read changes nothing
    assert paths_to_mappings(settings, "db-prod/rotate-role/other") == set()
