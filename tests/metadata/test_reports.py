"""Reports and dashboards as pack metadata, without a database: what a good declaration builds,
and for each kind of mistake the exact `file:line: path: message [CODE]` a consultant reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import TEST_PACKS
from metadata.test_invalid_packs import problems
from packwork.metadata.loader import read_pack_folders
from packwork.metadata.model import DashboardItem, Label, Measure, ReportKey, SortKey
from packwork.metadata.resolver import resolve_sources

ENTITIES = """\
entities:
  thing:
    label: Thing
    fields:
      name: {type: text}
      size: {type: choice, options: [{value: s}, {value: l}]}
      amount: {type: money}
      made_on: {type: date}
      done: {type: boolean}
      doubled: {type: computed, formula: "amount * 2", result: money}
      kept: {type: computed, formula: "amount * 3", result: money, store: true}
      step: {type: stage}
    pipeline:
      field: step
      stages:
        one: {probability: 10, outcome: open}
        two: {probability: 100, outcome: won}
  other:
    label: Other
    fields:
      made_on: {type: date}
      size: {type: choice, options: [{value: s}, {value: xl}]}
      value: {type: integer}
roles:
  boss: {label: Boss}
"""


def _pack(tmp_path: Path, reports: str) -> Path:
    folder = tmp_path / "reporting"
    folder.mkdir()
    (folder / "pack.yaml").write_text("name: reporting\nversion: 1.0.0\n")
    (folder / "entities.yaml").write_text(ENTITIES)
    (folder / "reports.yaml").write_text(reports)
    return folder


def test_the_tally_pack_builds_its_reports_and_dashboards():
    sources, found = read_pack_folders([str(TEST_PACKS / "tally")])
    assert found == []
    metadata = resolve_sources(sources)
    funnel = metadata.reports["funnel"]
    assert funnel.group_by == (ReportKey("phase"),) and funnel.chart == "funnel" and funnel.conversion
    assert funnel.measures == (Measure("deals", "count", None, Label("Deals", "交易数")), Measure("value", "sum", "amount"))
    assert metadata.reports["forecast_by_month"].group_by == (ReportKey("closes_on", "month"),)
    top = metadata.reports["top_clients"]
    assert (top.sort, top.limit, top.filter) == (SortKey("revenue", True), 2, "phase = 'signed'")
    quota = metadata.reports["against_quota"].measures[1]
    assert (quota.entity, quota.group_by, quota.filter) == ("quota", (ReportKey("owner_id"),), "year = 2026")
    assert metadata.reports["by_year"].label == Label("By year", "By year")  # no label: the name
    assert metadata.dashboards["selling"].items[:2] == (DashboardItem("funnel", "full"), DashboardItem("forecast_by_month"))
    assert metadata.dashboards["chiefs"].roles == ("chief",)


def test_a_good_report_over_every_kind_of_key_loads(tmp_path):
    folder = _pack(tmp_path, """\
reports:
  everything:
    entity: thing
    filter: amount > 0
    group_by: [{field: made_on, bucket: quarter}]
    measures:
      things: count
      kept: {max: kept}
      others: {sum: value, entity: other, group_by: [{field: made_on, bucket: quarter}], filter: value > 1}
  two: {entity: thing, group_by: [size, done], measures: {n: count, total: {avg: amount}}}
  steps: {entity: thing, group_by: [step], measures: {n: count}, chart: funnel, conversion: true, sort: -n, limit: 5}
  owners: {entity: thing, group_by: [owner_id, {field: created_at, bucket: year}], measures: {n: count}}
dashboards:
  main: {label: {en: Main, zh: 主要}, roles: [boss], reports: [steps, {report: everything, width: third}]}
""")
    assert problems(folder) == []
    sources, _ = read_pack_folders([str(folder)])
    metadata = resolve_sources(sources)
    assert [m.function for m in metadata.reports["everything"].measures] == ["count", "max", "sum"]
    assert metadata.dashboards["main"].items == (DashboardItem("steps"), DashboardItem("everything", "third"))


def test_two_keys_of_a_second_series_must_group_like_the_reports(tmp_path):
    folder = _pack(tmp_path, """\
reports:
  mixed:
    entity: thing
    group_by: [{field: made_on, bucket: quarter}, done]
    measures:
      others: {sum: value, entity: other, group_by: [{field: made_on, bucket: quarter}, {field: made_on, bucket: year}]}
""")
    assert problems(folder) == ["reports.yaml:6: $.reports.mixed.measures.others.group_by[1]: other.made_on does "
                                "not group like the report's key thing.done (same kind of value, same options, same "
                                "bucket) [PACK-E052]"]


BAD = {
    "an unknown entity": ("{entity: nothing, group_by: [size], measures: {n: count}}",
                          "2: $.reports.bad.entity: reports on entity 'nothing', which no pack declares [PACK-E050]"),
    "an unknown group key": ("{entity: thing, group_by: [colour], measures: {n: count}}",
                             "2: $.reports.bad.group_by[0]: groups by 'colour', which is not a field of 'thing' "
                             "[PACK-E050]"),
    "a text group key": ("{entity: thing, group_by: [name], measures: {n: count}}",
                         "2: $.reports.bad.group_by[0]: cannot group by text field 'name'; group by a choice, stage, "
                         "boolean, reference, user, date or datetime field, or owner_id [PACK-E051]"),
    "a date without a bucket": ("{entity: thing, group_by: [made_on], measures: {n: count}}",
                                "2: $.reports.bad.group_by[0]: 'made_on' is a date field: group it by a bucket, e.g. "
                                "{field: made_on, bucket: month} (month, quarter or year) [PACK-E051]"),
    "a bucket on a choice": ("{entity: thing, group_by: [{field: size, bucket: year}], measures: {n: count}}",
                             "2: $.reports.bad.group_by[0]: bucket 'year' applies to date and datetime fields, not to "
                             "choice field 'size' [PACK-E051]"),
    "a sum of a choice": ("{entity: thing, group_by: [size], measures: {n: {sum: size}}}",
                          "2: $.reports.bad.measures.n.sum: cannot take the sum of choice field 'size'; measure an "
                          "integer, decimal, money or percent field [PACK-E051]"),
    "a computed field evaluated when read": ("{entity: thing, group_by: [size], measures: {n: {avg: doubled}}}",
                                             "2: $.reports.bad.measures.n.avg: 'doubled' is computed when read; only "
                                             "a stored computed field (store: true) can be measured [PACK-E051]"),
    "an unknown measured field": ("{entity: thing, group_by: [size], measures: {n: {min: weight}}}",
                                  "2: $.reports.bad.measures.n.min: min of 'weight', which is not a field of 'thing' "
                                  "[PACK-E050]"),
    "a sort by nothing declared": ("{entity: thing, group_by: [size], measures: {n: count}, sort: -total}",
                                   "2: $.reports.bad.sort: sorts by 'total', which is neither a measure nor a group "
                                   "key of the report (n, size) [PACK-E050]"),
    "conversion without the stage field": ("{entity: thing, group_by: [size], measures: {n: count}, conversion: true}",
                                           "2: $.reports.bad.conversion: conversion rates need the report grouped by "
                                           "one key: the stage field of 'thing''s pipeline [PACK-E052]"),
    "a pie of two keys": ("{entity: thing, group_by: [size, done], measures: {n: count}, chart: pie}",
                          "2: $.reports.bad.chart: a pie chart shows one group key, not 2 [PACK-E052]"),
    "a second series on other keys": (
        "{entity: thing, group_by: [size], measures: {n: {sum: value, entity: other, group_by: [size]}}}",
        "2: $.reports.bad.measures.n.group_by[0]: other.size does not group like the report's key thing.size (same "
        "kind of value, same options, same bucket) [PACK-E052]"),
    "a second series without keys": ("{entity: thing, group_by: [size], measures: {n: {sum: value, entity: other}}}",
                                     "2: $.reports.bad.measures.n.group_by: a measure of entity 'other' needs `group_by` with "
                                     "1 key(s), one for each of the report's [PACK-E052]"),
    "a filter on an unknown field": ("{entity: thing, group_by: [size], filter: colour = 'red', measures: {n: count}}",
                                     "2: $.reports.bad.filter: filter at position 0: 'colour' is not a field of "
                                     "'thing' [PACK-E043]"),
    "an SQL keyword as a measure name": ("{entity: thing, group_by: [size], measures: {select: count}}",
                                         "2: $.reports.bad.measures.select: 'select' is an SQL key word; choose another "
                                         "name (for example 'select_name') [PACK-E030]"),
    "a function name typo": ("{entity: thing, group_by: [size], measures: {n: cont}}",
                             "2: $.reports.bad.measures.n: 'cont' is not an allowed value; did you mean 'count'? "
                             "[PACK-E010]"),
    "a bucket typo": ("{entity: thing, group_by: [{field: made_on, bucket: week}], measures: {n: count}}",
                      "2: $.reports.bad.group_by[0].bucket: 'week' is not one of month, quarter, year [PACK-E010]"),
}


@pytest.mark.parametrize("case", BAD)
def test_a_bad_report_is_reported_at_its_line(tmp_path, case):
    text, expected = BAD[case]
    assert problems(_pack(tmp_path, f"reports:\n  bad: {text}\n")) == [f"reports.yaml:{expected}"]


def test_dashboards_name_declared_reports_and_roles_once_each(tmp_path):
    folder = _pack(tmp_path, """\
reports:
  fine: {entity: thing, group_by: [size], measures: {n: count}}
dashboards:
  main:
    roles: [boss, nobody]
    reports:
      - fine
      - missing
      - {report: fine, width: full}
  order: {reports: [fine]}
""")
    assert sorted(problems(folder)) == sorted([
        "reports.yaml:5: $.dashboards.main.roles[1]: role 'nobody' is not declared [PACK-E050]",
        "reports.yaml:8: $.dashboards.main.reports[1]: shows report 'missing', which no pack declares [PACK-E050]",
        "reports.yaml:9: $.dashboards.main.reports[2]: shows report 'fine' twice [PACK-E052]",
        "reports.yaml:10: $.dashboards.order: 'order' is an SQL key word; choose another name (for example "
        "'order_name') [PACK-E030]",
    ])
