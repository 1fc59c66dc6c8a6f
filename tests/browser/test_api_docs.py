"""/api/docs in a real browser: Swagger UI, served from vendored files only, renders the
operations of the installed pack's entities with no console error, CSP violation or request
to another host (the `page` fixture checks those)."""

from __future__ import annotations

import json
import urllib.request

from conftest import PACKS

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_swagger_ui_lists_the_pack_operations(live_server, page, tmp_path):
    base = live_server(PACKS / "standard_crm")
    with urllib.request.urlopen(base + "/api/v1/openapi.json", timeout=10) as response:
        spec = json.load(response)
    spec_paths = set(spec["paths"])
    spec_paths_ops = [op.get("tags", []) for item in spec["paths"].values() for op in item.values()
                      if isinstance(op, dict) and "operationId" in op]

    page.goto(base + "/api/docs")
    tags = page.locator(".opblock-tag")
    tags.first.wait_for(state="visible", timeout=15_000)
    spec_tags = {t for p in spec_paths_ops for t in p}
    assert set(tags.evaluate_all("els => els.map(e => e.dataset.tag)")) == spec_tags
    page.locator('.opblock-tag[data-tag="account"]').click()  # tags start closed: a pack has hundreds of operations
    page.locator('.opblock-summary-path[data-path="/api/v1/account"]').first.wait_for(timeout=15_000)

    shown = set(page.locator(".opblock-summary-path").evaluate_all(
        "els => els.map(e => e.dataset.path || e.textContent.replace(/\\u200b/g, '').trim())"))
    assert "/api/v1/account" in shown and "/api/v1/account/{id}" in shown, sorted(shown)
    assert shown <= spec_paths, shown - spec_paths
    assert page.locator(".opblock-get").count() >= 1 and page.locator(".opblock-post").count() >= 1

    screenshot = tmp_path / "api-docs.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 1000 and screenshot.read_bytes()[:8] == PNG_SIGNATURE
