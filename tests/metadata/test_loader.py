"""Reading pack text defensively: no aliases, no tags, no duplicates, bounded sizes."""

from packwork.metadata.loader import MAX_FILE_BYTES, parse_document, read_pack_folder

ALIAS_BOMB = """a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
"""


def test_alias_bomb_is_refused_at_once():
    doc, problems = parse_document("bomb.yaml", ALIAS_BOMB)
    assert doc is None
    assert [p.format() for p in problems] == [
        "bomb.yaml:1: $: YAML anchors and aliases are not allowed in packs [PACK-E005]"]


def test_python_tags_are_refused():
    doc, problems = parse_document("x.yaml", "a: 1\nb: !!python/object/apply:os.system ['true']\n")
    assert doc is None
    assert problems[0].line == 2 and problems[0].path == "$.b"
    assert "not allowed in packs" in problems[0].message


def test_duplicate_keys_are_refused_with_their_line():
    doc, problems = parse_document("x.yaml", "fields:\n  name: 1\n  name: 2\n")
    assert [p.format() for p in problems] == [
        "x.yaml:3: $.fields.name: 'name' is given twice in the same mapping [PACK-E005]"]


def test_keys_are_names_even_where_yaml_1_1_reads_a_bool_or_number():
    doc, problems = parse_document("x.yaml", "on: [create]\nyes: 1\n2024: x\n")
    assert problems == []
    assert doc.data == {"on": ["create"], "yes": 1, "2024": "x"}


def test_tagged_keys_are_refused():
    doc, problems = parse_document("x.yaml", "? !!python/name:os.system\n: 1\n")
    assert doc is None and problems[0].message.startswith("mapping keys must be plain text")


def test_lines_are_recorded_per_path():
    doc, problems = parse_document("x.yaml", "a:\n  b:\n    - c: 1\n    - d: 2\n")
    assert problems == []
    assert doc.line(("a", "b", 1, "d")) == 4
    assert doc.line(("a", "b", 0, "missing")) == 3  # nearest ancestor


def test_dates_stay_text_and_deep_nesting_is_an_error():
    doc, _ = parse_document("x.yaml", "d: 2024-01-31\n")
    assert doc.data == {"d": "2024-01-31"}
    doc, problems = parse_document("x.yaml", "a: " + "[" * 5000 + "]" * 5000)
    assert doc is None and problems[0].code == "PACK-E006"


def test_oversized_file_is_refused(tmp_path):
    (tmp_path / "pack.yaml").write_text("name: big\nversion: 1.0.0\n")
    (tmp_path / "huge.yaml").write_text("# " + "x" * MAX_FILE_BYTES + "\n")
    source, problems = read_pack_folder(tmp_path, display="big")
    assert [p.file for p in problems] == ["big/huge.yaml"]
    assert "limit" in problems[0].message
    assert [f.path for f in source.files] == ["pack.yaml"]


def test_folder_without_manifest():
    source, problems = read_pack_folder("/nonexistent/folder")
    assert source is None and problems[0].code == "PACK-E001"


def test_every_shipped_pack_file_reads_the_same_with_and_without_libyaml():
    """The loader parses with libyaml when PyYAML has it; the two parsers differ at the edges
    (libyaml reads `{en: Ready?, zh: ...}`, pure PyYAML refuses it), so every pack we ship must
    mean the same to both, as it will to a consultant's editor."""
    import yaml
    from conftest import PACKS, TEST_PACKS
    files = [p for root in (PACKS, TEST_PACKS) for p in sorted(root.rglob("*.yaml")) if "invalid" not in p.parts]
    assert len(files) > 30
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert yaml.load(text, Loader=yaml.CSafeLoader) == yaml.load(text, Loader=yaml.SafeLoader), path
