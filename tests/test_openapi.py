"""`/api/openapi.json`: a valid OpenAPI 3.1 document, built from the schemas that validate
requests, that the real server's answers conform to (checked by schemathesis)."""

from __future__ import annotations

import os
import re
import traceback
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate as validate_spec
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.routing import Route

from ticker import schema
from ticker.app import create_app
from ticker.errors import Invalid
from ticker.model import validate_event_input, validate_match
from ticker.openapi import build_document
from ticker.settings import load

from .conftest import ADMIN_TOKEN, TickerServer, new_match

CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
]
# Per operation; deterministic (derandomize). Each engine's run takes seconds; raise it with
# OPENAPI_EXAMPLES=1000 for a deeper hunt.
EXAMPLES = int(os.environ.get("OPENAPI_EXAMPLES", "30"))


def test_the_served_document_is_valid_openapi_3_1(make_server: Any) -> None:
    server: TickerServer = make_server()
    r = httpx.get(server.url + "/api/openapi.json")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    document = r.json()
    assert document["openapi"].startswith("3.1")
    validate_spec(document)
    assert document == build_document()
    # A public read, as the API it describes: any origin may fetch it.
    r = httpx.get(server.url + "/api/openapi.json", headers={"Origin": "https://partner.example"})
    assert r.headers["access-control-allow-origin"] == "*"


def test_every_api_route_is_in_the_document(tmp_path: Path) -> None:
    """Every /api route of the whole app (api.py, presence.py, ...), and /healthz."""
    app = create_app(load({"TICKER_DATA_DIR": str(tmp_path), "TICKER_ADMIN_TOKEN": ADMIN_TOKEN}))
    routes = {
        (route.path, method.lower())
        for route in app.routes
        if isinstance(route, Route) and (route.path.startswith("/api/") or route.path == "/healthz")
        for method in route.methods or ()
        if method != "HEAD"
    }
    assert ("/api/matches/{match_id}/presence", "put") in routes
    assert ("/api/matches/{match_id}/lineups", "put") in routes
    documented = {
        (path, method) for path, item in build_document()["paths"].items() for method in item
    }
    assert documented == routes


def test_a_limit_changed_in_the_schema_changes_validation_and_document(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(schema.TEXT, "maxLength", 10)
    monkeypatch.setitem(schema.MINUTE, "maximum", 99)
    monkeypatch.setitem(schema.TEAM_INPUT["properties"]["name"], "maxLength", 5)
    components = build_document()["components"]["schemas"]
    assert components["EventInput"]["properties"]["text"]["maxLength"] == 10
    assert components["EventPatch"]["properties"]["text"]["anyOf"][0]["maxLength"] == 10
    assert components["EventInput"]["properties"]["minute"]["maximum"] == 99
    assert components["MatchInput"]["properties"]["home"]["properties"]["name"]["maxLength"] == 5
    for partial in (False, True):
        assert validate_event_input({"type": "comment", "text": "x" * 10}, partial=partial)
        with pytest.raises(Invalid) as info:
            validate_event_input({"type": "comment", "text": "x" * 11}, partial=partial)
        assert info.value.field == "text" and "10" in info.value.message
        with pytest.raises(Invalid) as info:
            validate_event_input({"type": "comment", "minute": 100}, partial=partial)
        assert info.value.field == "minute" and "99" in info.value.message
    with pytest.raises(Invalid) as info:
        validate_match({"id": "a", "home": {"name": "Brøndby"}, "away": {"name": "AGF"}})
    assert info.value.field == "home.name"


# What ticker.schema.check() understands; a schema it checks must use nothing else, or the
# document would promise a rule the server does not keep.
CHECKED_KEYWORDS = {"type", "enum", "minimum", "maximum", "minLength", "maxLength", "pattern",
                    "properties", "required", "additionalProperties", "anyOf", "not",
                    "description", "items", "maxItems"}  # fmt: skip


@pytest.mark.parametrize(
    "checked",
    [schema.EVENT_INPUT, schema.EVENT_PATCH, schema.MATCH_INPUT, schema.MATCH_PATCH,
     schema.MATCH_ID_SCHEMA, schema.SEQ_SCHEMA, schema.LINEUPS_INPUT, schema.SESSION_INPUT,
     schema.REPORTER_INPUT, schema.PRESENCE_INPUT],
)  # fmt: skip
def test_the_checker_knows_every_keyword_of_the_schemas_it_checks(checked: Any) -> None:
    def walk(node: Any) -> None:
        assert set(node) <= CHECKED_KEYWORDS, set(node) - CHECKED_KEYWORDS
        for sub in node.get("properties", {}).values():
            walk(sub)
        for sub in node.get("anyOf", []):
            walk(sub)
        if "items" in node:
            walk(node["items"])

    walk(checked)


@settings(max_examples=300, deadline=None)
@given(st.text(st.sampled_from("a ø\x00\t\n\u00a0\u2003\u3000\x1c\x85-")) | st.text())
def test_the_fast_text_tests_mean_what_the_patterns_say(value: str) -> None:
    for pattern in (schema.NO_NUL, schema.NOT_BLANK):
        regex = re.compile(pattern.replace("$", r"\Z"))
        assert bool(schema.pattern_test(pattern)(value)) == bool(regex.search(value)), pattern


def test_presence_typing_of_any_json_type_is_a_422(make_server: Any, match_id: str) -> None:
    """A list or object as `typing` is no event type: 422, not a 500 (unhashable)."""
    server: TickerServer = make_server()
    with server.admin() as admin:
        new_match(admin, match_id)
        url = f"/api/matches/{match_id}/presence"
        for typing in ([], {}, ["goal"], 5, True, "Goal"):
            r = admin.put(url, json={"typing": typing})
            assert r.status_code == 422 and r.json()["error"]["field"] == "typing", r.text
        assert admin.put(url, json={"typing": "goal"}).status_code == 200


def test_reporter_names_follow_the_document(make_server: Any) -> None:
    """Reporter names are checked by the schema of the document: the verdicts agree."""
    server: TickerServer = make_server()
    pattern = re.compile(schema.REPORTER_NAME.replace("$", r"\Z"))
    names = ["a", "x" * 40, "jens.k_1-x", "", "x" * 41, "Jens", "jens k", "jæns", "j\n", "a/b"]
    with server.admin() as admin:
        for name in names:
            r = admin.post("/api/reporters", json={"name": name})
            assert r.status_code == (201 if pattern.search(name) else 422), (name, r.text)


def test_the_server_conforms_to_its_document(server: TickerServer, match_id: str) -> None:
    """Every operation, positive and negative data, with the admin token, on both engines:
    no 5xx; every status, content type and body as documented."""
    with server.admin() as admin:
        new_match(admin, match_id)
        posted = admin.post(
            f"/api/matches/{match_id}/events",
            json={"type": "goal", "team": "home", "player": "Scholz", "minute": 13},
        )
        assert posted.status_code == 201, posted.text
    real = {"match_id": match_id, "event_id": posted.json()["op"]["event"]["id"]}
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    loaded = schemathesis.openapi.from_url(server.url + "/api/openapi.json")
    failures: list[str] = []
    for result in loaded.get_all_operations():
        operation = result.ok()
        names = {p.name for p in operation.path_parameters}
        fixed = {k: v for k, v in real.items() if k in names}
        strategies = [
            operation.as_strategy(generation_mode=mode, path_parameters=params)
            for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
            for params in ([fixed, None] if fixed else [None])
        ]

        @settings(
            max_examples=EXAMPLES,
            derandomize=True,
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=st.one_of(strategies))
        def run(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=auth, checks=CHECKS, timeout=10)

        try:
            run()
        except Exception as exc:  # schemathesis's report: the request, the response, a curl
            failures.append(f"{operation.label}: {''.join(traceback.format_exception(exc))}")
    assert not failures, "\n\n".join(failures)
