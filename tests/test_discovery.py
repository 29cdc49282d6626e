"""Discovery on real servers: the fan page's JSON-LD (read with extruct and expanded with
pyld against a local schema.org context: no network), /oembed, canonical and oEmbed links,
and HTTP caching of a finished match's page."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit

import extruct
import httpx
import lxml.html
import pytest
from pyld import jsonld

from tests.conftest import TickerServer, new_match

S = "https://schema.org/"
# schema.org's context, reduced to what expansion needs here; served locally, never fetched.
_CONTEXT = {"@context": {"@vocab": S}}


def _loader(url: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    if url.rstrip("/") in ("https://schema.org", "http://schema.org"):
        return {"contentType": "application/ld+json", "contextUrl": None,
                "documentUrl": url, "document": _CONTEXT}  # fmt: skip
    raise AssertionError(f"pyld tried to load {url}")


def _blog(html: str, url: str) -> dict[str, Any]:
    """The page's one LiveBlogPosting, expanded to full IRIs."""
    found = extruct.extract(html, base_url=url, syntaxes=["json-ld"], uniform=True)["json-ld"]
    assert len(found) == 1, found
    [node] = jsonld.expand(found[0], {"documentLoader": _loader})
    assert node["@type"] == [S + "LiveBlogPosting"]
    return dict(node)


def _one(node: dict[str, Any], prop: str) -> Any:
    values = node.get(S + prop)
    assert values and len(values) == 1, (prop, node)
    value = values[0]
    return value.get("@value", value.get("@id", value)) if isinstance(value, dict) else value


def _post(client: httpx.Client, match_id: str, **fields: Any) -> dict[str, Any]:
    r = client.post(f"/api/matches/{match_id}/events", json=fields)
    assert r.status_code == 201, r.text
    return dict(r.json()["op"])


def _ids(html: str) -> set[str]:
    return {str(i) for i in lxml.html.fromstring(html).xpath("//@id")}


@pytest.fixture(params=["embedded", "redis"])
def fast(request: pytest.FixtureRequest, make_server, redis_server) -> TickerServer:  # type: ignore[no-untyped-def]
    """A server without the write rate limit (these tests post 56 events), per engine."""
    env = {"TICKER_WRITE_RATE": "0"}
    if request.param == "redis":
        if redis_server.proc is None:
            redis_server.start()
        return make_server(redis_url=redis_server.url, env=env)  # type: ignore[no-any-return]
    return make_server(env=env)  # type: ignore[no-any-return]


def test_jsonld_live_blog(fast: TickerServer, match_id: str) -> None:
    page = f"{fast.url}/matches/{match_id}"
    with fast.admin() as admin:
        created = new_match(admin, match_id, home="FC Midtjylland", away="Brøndby <IF> & Co")
        r = httpx.get(page)
        assert r.status_code == 200
        blog = _blog(r.text, page)
        assert S + "liveBlogUpdate" not in blog and S + "coverageEndTime" not in blog
        assert S + "publisher" not in blog  # no TICKER_PUBLISHER_NAME here
        published = _one(blog, "datePublished")
        assert _one(blog, "dateModified") == published

        _post(admin, match_id, type="kickoff")
        goal = _post(admin, match_id, type="goal", team="home", player="Alexander Scholz",
                     minute=13)["event"]  # fmt: skip
        _post(admin, match_id, type="comment", text="</script><script>alert(1)</script>\u2028")
        r = httpx.get(page)
        tree = lxml.html.fromstring(r.text)
        scripts = tree.xpath("//script")
        # Before any script runs: the first script of the page, in its head.
        assert (
            scripts[0].get("type") == "application/ld+json" and scripts[0].getparent().tag == "head"
        )
        raw = scripts[0].text
        assert not {"<", ">", "&", "\u2028"} & set(raw) and "alert(1)" in raw
        blog = _blog(r.text, page)
        assert _one(blog, "url") == page and _one(blog, "headline")
        assert _one(blog, "datePublished") == published
        assert _one(blog, "coverageStartTime")
        modified = _one(blog, "dateModified")
        assert modified > published
        about = blog[S + "about"][0]
        assert about["@type"] == [S + "SportsEvent"]
        assert _one(about, "name") == "FC Midtjylland – Brøndby <IF> & Co"
        assert _one(about, "startDate") == created["kickoff"]
        for side, name in (("homeTeam", "FC Midtjylland"), ("awayTeam", "Brøndby <IF> & Co")):
            team = about[S + side][0]
            assert team["@type"] == [S + "SportsTeam"] and _one(team, "name") == name
        place = about[S + "location"][0]
        assert place["@type"] == [S + "Place"] and _one(place, "name") == "Parken"

        updates = blog[S + "liveBlogUpdate"]
        assert [u["@type"] for u in updates] == [[S + "BlogPosting"]] * 3
        comment, scored, kickoff = updates
        assert _one(scored, "headline") == "13' Mål: Alexander Scholz (FC Midtjylland)"
        assert _one(scored, "articleBody") == _one(scored, "headline")
        assert _one(scored, "datePublished") == goal["at"]
        assert _one(comment, "articleBody") == "</script><script>alert(1)</script>\u2028"
        assert _one(kickoff, "headline").startswith("0' Afspark")
        ids = _ids(r.text)
        for update in updates:
            url = urlsplit(_one(update, "url"))
            assert url._replace(fragment="").geturl() == page and url.fragment in ids
        assert urlsplit(_one(scored, "url")).fragment == f"e-{goal['id']}"
        assert S + "coverageEndTime" not in blog

        # English page: its own URL and words.
        r = httpx.get(page, params={"lang": "en"})
        blog = _blog(r.text, page + "?lang=en")
        assert _one(blog, "url") == page + "?lang=en"
        scored = blog[S + "liveBlogUpdate"][1]
        assert _one(scored, "headline") == "13' Goal: Alexander Scholz (FC Midtjylland)"
        assert _one(scored, "url") == f"{page}?lang=en#e-{goal['id']}"

        # At most 50, newest first; full time ends the coverage.
        for n in range(52):
            _post(admin, match_id, type="comment", text=f"c{n}", minute=20 + n % 60)
        end = _post(admin, match_id, type="full_time")["event"]
        r = httpx.get(page)
        blog = _blog(r.text, page)
        updates = blog[S + "liveBlogUpdate"]
        assert len(updates) == 50
        assert _one(updates[0], "headline").startswith("Slut") or "Slut" in _one(
            updates[0], "headline"
        )
        assert [_one(u, "articleBody") for u in updates[1:]] == [f"c{n}" for n in range(51, 2, -1)]
        ids = _ids(r.text)
        assert all(urlsplit(_one(u, "url")).fragment in ids for u in updates)
        assert _one(blog, "coverageEndTime") == end["at"]
        assert _one(blog, "dateModified") >= end["at"][:19]


def test_jsonld_publisher_when_configured(make_server, match_id: str) -> None:  # type: ignore[no-untyped-def]
    logo = "https://cdn.example.com/logo.png?v=1&x=<2>"
    server = make_server(env={"TICKER_PUBLISHER_NAME": "Bold & <Co>",
                              "TICKER_PUBLISHER_LOGO": logo,
                              "TICKER_PUBLIC_URL": "https://ticker.example.com"})  # fmt: skip
    with server.admin() as admin:
        new_match(admin, match_id)
    r = httpx.get(f"{server.url}/matches/{match_id}")
    page = f"https://ticker.example.com/matches/{match_id}"
    blog = _blog(r.text, page)
    assert _one(blog, "url") == page
    publisher = blog[S + "publisher"][0]
    assert publisher["@type"] == [S + "Organization"]
    assert _one(publisher, "name") == "Bold & <Co>"
    image = publisher[S + "logo"][0]
    assert image["@type"] == [S + "ImageObject"] and _one(image, "url") == logo
    canonical = lxml.html.fromstring(r.text).xpath("//head/link[@rel='canonical']/@href")
    assert canonical == [page]


def test_publisher_logo_is_validated(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from ticker import settings

    for bad in ("ftp://x/logo.png", "/logo.png", "https://", "https://a b/logo.png"):
        with pytest.raises(settings.SettingsError, match="TICKER_PUBLISHER_LOGO"):
            settings.load({"TICKER_PUBLISHER_NAME": "X", "TICKER_PUBLISHER_LOGO": bad})
    with pytest.raises(settings.SettingsError, match="TICKER_PUBLISHER_NAME"):
        settings.load({"TICKER_PUBLISHER_LOGO": "https://x.example/logo.png"})


def _error(r: httpx.Response, status: int, field: str | None) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    error = r.json()["error"]
    assert set(error) == {"code", "message", "field"} and error["field"] == field, error


def test_oembed(fast: TickerServer, match_id: str) -> None:
    with fast.admin() as admin:
        new_match(admin, match_id)
    page = f"{fast.url}/matches/{match_id}"
    r = httpx.get(page)
    links = lxml.html.fromstring(r.text).xpath(
        "//head/link[@rel='alternate'][@type='application/json+oembed']/@href"
    )
    assert links == [f"{fast.url}/oembed?url={quote(page, safe='')}&format=json"]
    r = httpx.get(links[0], headers={"Origin": "https://partner.example"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    assert r.headers["access-control-allow-origin"] == "*"
    body = r.json()
    assert body["version"] == "1.0" and body["type"] == "rich"
    assert body["title"] == "FC København – SSC Napoli"
    assert body["provider_url"] == fast.url + "/" and body["provider_name"]
    assert isinstance(body["width"], int) and isinstance(body["height"], int)
    assert isinstance(body["cache_age"], int)
    frame = lxml.html.fragment_fromstring(body["html"])
    assert frame.tag == "iframe" and frame.get("src") == f"{fast.url}/embed/{match_id}"
    assert frame.get("title") and frame.get("width") == str(body["width"])
    assert frame.get("height") == str(body["height"])
    assert httpx.get(frame.get("src")).status_code == 200

    r = httpx.get(f"{fast.url}/oembed", params={"url": page + "?lang=en", "maxwidth": "300",
                                                 "maxheight": "200"})  # fmt: skip
    body = r.json()
    assert body["width"] <= 300 and body["height"] <= 200
    frame = lxml.html.fragment_fromstring(body["html"])
    assert frame.get("src") == f"{fast.url}/embed/{match_id}?lang=en"
    assert int(frame.get("width")) <= 300 and int(frame.get("height")) <= 200

    oembed = f"{fast.url}/oembed"
    _error(httpx.get(oembed, params={"url": page, "format": "xml"}), 501, "format")
    _error(httpx.get(oembed), 400, "url")
    _error(httpx.get(oembed, params={"url": page, "maxwidth": "wide"}), 400, "maxwidth")
    for other in (
        f"https://elsewhere.example/matches/{match_id}",
        f"{fast.url}/embed/{match_id}",
        f"{fast.url}/matches/{match_id}/x",
        f"{fast.url}/api/matches/{match_id}",
        "not a url",
    ):
        _error(httpx.get(oembed, params={"url": other}), 404, "url")
    _error(httpx.get(oembed, params={"url": page + "-nope"}), 404, "url")


def test_finished_page_is_cacheable(fast: TickerServer, match_id: str) -> None:
    page = f"{fast.url}/matches/{match_id}"
    with fast.admin() as admin:
        new_match(admin, match_id)
        _post(admin, match_id, type="kickoff")
        r = httpx.get(page)
        assert r.headers["cache-control"] == "no-cache" and "etag" not in r.headers
        _post(admin, match_id, type="goal", team="away", player="Højlund", minute=88)
        _post(admin, match_id, type="full_time")
        r = httpx.get(page)
        assert r.status_code == 200
        cache = r.headers["cache-control"]
        assert cache.startswith("public") and "max-age=60" in cache
        etag = r.headers["etag"]
        # A complete article without scripts: feed, score and summary are in the HTML.
        tree = lxml.html.fromstring(r.text)
        assert len(tree.xpath("//ol[@id='feed']/li")) == 3 and "Højlund" in r.text
        again = httpx.get(page, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.headers["etag"] == etag and not again.content
        assert again.headers["cache-control"] == cache
        assert httpx.get(page, headers={"If-None-Match": '"other"'}).status_code == 200
        en = httpx.get(page, params={"lang": "en"})
        assert en.headers["etag"] != etag
        # A correction after full time is a new version.
        events = admin.get(f"/api/matches/{match_id}").json()["events"]
        goal = next(e for e in events if e["type"] == "goal")
        r = admin.patch(f"/api/matches/{match_id}/events/{goal['id']}", json={"minute": 89})
        assert r.status_code == 200, r.text
        newer = httpx.get(page, headers={"If-None-Match": etag})
        assert newer.status_code == 200 and newer.headers["etag"] != etag
