"""The HTML list page against the JSON list endpoint, in one run with wrk over loopback.

Seeds N accounts (default 1,000,000) of packs/standard_crm like bench/api.py, signs the bench
user in through the real login form, and serves the database with `packwork serve`. wrk then
asks the same page of 50 (same sort) as HTML at `/r/account?sort=name` (session cookie: the
signed-in UI, rendered from metadata with Jinja2) and as JSON at `/api/v1/account?sort=name`
(bearer token). Target: HTML at >= 0.5x the JSON requests/s.

    apt-get install -y wrk
    python bench/ui.py [--rows N] [--db postgresql|sqlite] [--workers 2] [--seconds 10]
"""

from __future__ import annotations

import http.cookiejar
import re
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from packwork.runtime.db import make_engine
from packwork.runtime.sessions import set_password
from packwork.runtime.users import find_user

from api import arguments, database, seed, server, wrk

PASSWORD = "bench-password-1"


def sign_in(base: str) -> str:
    """The session cookie's value, got through GET and POST /login as a browser would."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    form = opener.open(f"{base}/login").read().decode()
    token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    body = urllib.parse.urlencode({"username": "bench", "password": PASSWORD, "csrf_token": token}).encode()
    opener.open(f"{base}/login", body)
    return next(c.value for c in jar if c.name == "pw_session")


def main() -> None:
    args = arguments(__doc__).parse_args()
    with tempfile.TemporaryDirectory() as folder, database(args.db, Path(folder)) as url:
        started = time.perf_counter()
        secret = seed(url, args.rows)
        engine = make_engine(url)
        with engine.begin() as conn:
            set_password(conn, find_user(conn, "bench"), PASSWORD)
        engine.dispose()
        print(f"{args.db}: seeded {args.rows:,} accounts in {time.perf_counter() - started:.0f} s; "
              f"gunicorn sync workers={args.workers}; wrk -t2 -c8 -d{args.seconds}s")
        command = [sys.executable, "-m", "packwork", "serve", "--db", url, "--port", "8873",
                   "--workers", str(args.workers)]
        with server(command, 8873) as base:
            cookie = {"Cookie": f"pw_session={sign_in(base)}"}
            bearer = {"Authorization": f"Bearer {secret}"}
            html_url, json_url = f"{base}/r/account?sort=name", f"{base}/api/v1/account?sort=name&limit=50"
            page = urllib.request.urlopen(urllib.request.Request(html_url, headers=cookie)).read().decode()
            assert page.count('<tr>') >= 51 and "Next page" in page, "the HTML page did not list 50 records"
            wrk(html_url, 2, cookie)  # warm up both
            wrk(json_url, 2, bearer)
            rounds = [(wrk(html_url, args.seconds, cookie), wrk(json_url, args.seconds, bearer)) for _ in range(3)]
    print(f"{'round':8}{'HTML req/s':>12}{'JSON req/s':>12}{'ratio':>8}")
    for number, (html, json) in enumerate(rounds, 1):
        print(f"{number:<8}{html:12.0f}{json:12.0f}{html / json:8.2f}")
    ratios = sorted(html / json for html, json in rounds)
    print(f"median ratio {ratios[1]:.2f} (target >= 0.5)")


if __name__ == "__main__":
    main()
