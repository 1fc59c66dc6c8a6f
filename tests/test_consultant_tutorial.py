"""The consultant's tutorial in docs/packs.md ("Write an industry pack in 30 minutes"), done
exactly as written: its blocks are read from the document and carried out in order, through the
real command line (a process per command, answering "y" when asked), into a fresh SQLite
database, with the record the tutorial posts sent through the API. The tutorial and this test
cannot drift: change a snippet there and this runs the new one.

Each block the test carries out follows a marker line:

    <!-- tutorial: run -->                      ```sh: each line a `packwork ...` command
    <!-- tutorial: FILE -->                     the block is the whole of FILE
    <!-- tutorial: FILE, after "TEXT" -->       inserted after FILE's first line starting with TEXT
    <!-- tutorial: FILE, replace "TEXT" -->     replaces FILE's first line starting with TEXT
    <!-- tutorial: POST /api/v1/... -->         ```json: the body of a request, as the token's user
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from conftest import PACKS, ROOT
from packwork.web.app import create_app
from packwork.web.services import services

DOCS = ROOT / "docs" / "packs.md"
BLOCK = re.compile(r'^<!-- tutorial: (?P<what>.+?) -->\n```(?P<lang>\w*)\n(?P<body>.*?)^```$', re.M | re.S)
EDIT = re.compile(r'(?P<file>[^,]+), (?P<how>after|replace) "(?P<text>[^"]+)"')


@dataclass
class Step:
    what: str
    lang: str
    body: str


def tutorial_steps() -> list[Step]:
    section = DOCS.read_text(encoding="utf-8").split("## Write an industry pack in 30 minutes", 1)[1]
    section = section.split("\n## ", 1)[0]
    return [Step(m["what"], m["lang"], m["body"]) for m in BLOCK.finditer(section)]


def packwork(folder: Path, env: dict, line: str) -> subprocess.CompletedProcess:
    args = shlex.split(line)
    assert args[0] == "packwork", line
    result = subprocess.run([sys.executable, "-m", "packwork", *args[1:]], cwd=folder, env=env, input="y\n",
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "Traceback" not in result.stderr, f"{line}\n{result.stdout}{result.stderr}"
    return result


def edit(path: Path, how: str, text: str, body: str) -> None:
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    index = next(i for i, line in enumerate(lines) if line.lstrip().startswith(text))
    lines[index:index + 1] = [lines[index], body] if how == "after" else [body]
    path.write_text("".join(lines), encoding="utf-8")


class Tutorial:
    """Carries out the steps in a folder holding packs/standard_crm, as a consultant would."""

    def __init__(self, folder: Path):
        self.folder, self.db_url = folder, f"sqlite:///{folder / 'shop.db'}"
        self.env = os.environ | {"PACKWORK_DATABASE_URL": self.db_url}
        self.outputs: dict[str, str] = {}  # command -> what it printed (the last run of it)
        self.posted: list[dict] = []
        self.app = None

    def do(self, step: Step) -> None:
        if step.what == "run":
            for line in step.body.splitlines():
                if line.strip() and not line.lstrip().startswith("#"):
                    self.outputs[line.strip()] = packwork(self.folder, self.env, line).stdout
        elif step.what.startswith("POST "):
            self.post(step.what.split(" ", 1)[1], json.loads(step.body))
        elif match := EDIT.fullmatch(step.what):
            edit(self.folder / match["file"], match["how"], match["text"], step.body)
        else:
            assert step.lang == "yaml", step.what
            (self.folder / step.what).write_text(step.body, encoding="utf-8")

    def token(self) -> str:
        printed = next(out for command, out in self.outputs.items() if command.startswith("packwork token create"))
        return printed.strip().splitlines()[-1]

    def call(self, method: str, url: str, **kwargs):
        if self.app is None:
            self.app = create_app(self.db_url)
        return self.app.test_client().open(url, method=method, headers={"Authorization": f"Bearer {self.token()}"},
                                           **kwargs)

    def post(self, url: str, body: dict) -> None:
        response = self.call("POST", url, json=body)
        assert response.status_code == 201, response.get_json()
        self.posted.append(response.get_json())


def test_the_tutorial_blocks_are_all_there():
    kinds = [s.what if s.what in ("run",) or s.what.startswith("POST") else
             ("edit" if EDIT.fullmatch(s.what) else "file") for s in tutorial_steps()]
    assert kinds.count("run") >= 4 and kinds.count("file") >= 5 and kinds.count("edit") == 2
    assert kinds.count("POST /api/v1/store") == 1


def test_a_consultant_follows_the_tutorial_from_scaffold_to_shipped_archive(tmp_path: Path):
    shutil.copytree(PACKS / "standard_crm", tmp_path / "packs" / "standard_crm")
    tutorial = Tutorial(tmp_path)
    try:
        for step in tutorial_steps():
            tutorial.do(step)
        check(tutorial, tmp_path)
    finally:
        if tutorial.app is not None:
            services(tutorial.app).engine.dispose()


def check(tutorial: Tutorial, folder: Path) -> None:
    out = tutorial.outputs
    assert re.match(r"OK: standard_crm [0-9.]+, shop 0\.2\.0 ", out["packwork pack validate packs/shop"])
    tested = out["packwork pack test packs/shop"]  # the standard CRM's cases run too
    assert tested.endswith(" passed, 0 failed.\n")
    assert re.findall(r"^packs/shop/(\w+)\.yaml:\d+: (\w+): (.+): ok$", tested, re.M) == [
        ("rules", "area_positive", "no floor area"), ("rules", "area_positive", "a real shop"),
        ("shop_item", "quantity_not_negative", "a negative quantity is refused"),
        ("shop_item", "quantity_not_negative", "zero is accepted"), ("migrations", "classify_store_sizes", "case 1")]
    installed = out["packwork pack install packs/shop"]
    assert "create table store" in installed and "add column account.shop_format" in installed
    assert "Apply this plan? [y/N]" in installed

    [store] = tutorial.posted
    assert (store["name"], store["stage"], store["area_m2"]) == ("静安寺旗舰店", "scouting", "320.0")
    planned = out["packwork pack plan packs/shop"]
    assert "add column store.size_class" in planned
    assert ("* run data migration shop.classify_store_sizes (0.2.0, on upgrade from 0.1.0) over the store records "
            "where area_m2 is not null and size_class is null (packs/shop/migrations.yaml:2)") in planned
    upgraded = out["packwork pack upgrade packs/shop"]
    assert "data migration shop.classify_store_sizes: 1 of 1 store record(s) changed" in upgraded
    after = tutorial.call("GET", f"/api/v1/store/{store['id']}").get_json()
    assert (after["size_class"], after["version"]) == ("medium", store["version"] + 1)

    archive = folder / "dist" / "shop-0.2.0.tar.gz"
    assert archive.is_file() and archive.with_name(archive.name + ".sha256").is_file()
    assert out["packwork pack upgrade dist/shop-0.2.0.tar.gz"].endswith("Nothing to do.\n")
    assert "Installed packs: shop 0.2.0, standard_crm" in packwork(folder, tutorial.env, "packwork db status").stdout
