"""The API reference at /docs renders in Chromium with every asset from Kilde itself (no CDN)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_docs_render_from_local_assets_only(page, kilde_server):
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    # Anything not served by Kilde fails, as it would on an intranet without internet.
    page.route(
        "**/*",
        lambda route: route.continue_() if route.request.url.startswith(kilde_server.url) else route.abort(),
    )
    page.goto(kilde_server.url + "/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Kilde")
    expect(page.locator(".opblock-summary-path", has_text="/api/ask").first).to_be_visible()
    outside = [url for url in requested if not url.startswith(kilde_server.url)]
    assert outside == [], f"/docs asked for assets outside Kilde: {outside}"
    assert any("swagger-ui-bundle.js" in url for url in requested)
