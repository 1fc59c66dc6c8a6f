"""/api/docs is served entirely from vendored files: no CDN, no inline script."""

from __future__ import annotations

import re

from packwork.web.app import create_app


def test_docs_page_loads_only_local_assets(tmp_path):
    client = create_app(f"sqlite:///{tmp_path / 'empty.db'}").test_client()
    page = client.get("/api/docs")
    assert page.status_code == 200
    html = page.data.decode()
    assert 'data-spec-url="/api/v1/openapi.json"' in html
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert len(assets) == 3 and all(a.startswith("/api/static/swagger-ui/") for a in assets)
    assert not re.search(r"<script>", html)
    for asset in assets:
        response = client.get(asset)
        assert response.status_code == 200 and len(response.data) > 100, asset
