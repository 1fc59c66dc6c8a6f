"""The education pack (packs/industry/education) installed on top of the standard CRM, on SQLite
and PostgreSQL:

- it resolves with standard_crm and every rule it declares has test cases, which pass;
- the main journey over the HTTP API, as the people who do it: academic affairs sets up a course
  and two classes; a course advisor records a family, a guardian and a student (a guardian that
  is not a guardian contact is refused), takes the inquiry, books a trial lesson (refused
  without a time and a teacher); the teacher marks it attended with feedback (and may not enrol
  it); the advisor enrols the student, refused once by the capacity gate while the class is full,
  then into a class with a free seat, which creates the enrolment; a tuition payment is taken
  against the enrolment (an overpayment is refused) and adds up into the enrolment;
- renewals: an enrolment ending in 20 days is flagged by the scheduled rule, with a follow-up
  task for its advisor, one ending in 60 days is not; the flagged one is renewed by the action;
- the dashboard's reports count what was made, as the advisor sees it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import pytest

from api.conftest import install
from conftest import PACKS, fresh_database
from journeys import Person, refused
from packwork.runtime import jobs
from packwork.runtime.catalog import CatalogCache
from packwork.runtime.installer import plan_packs
from packwork.runtime.migrate import apply
from packwork.runtime.settings import set_setting, unset_setting
from packwork.rules.testing import run_pack_tests
from packwork.runtime.tokens import create_token
from packwork.runtime.users import create_user
from packwork.web.app import create_app
from packwork.web.services import services

EDUCATION = PACKS / "industry" / "education"
PEOPLE = {  # username: role
    "amy": "edu_academic_admin",
    "ada": "edu_course_advisor",
    "bob": "edu_course_advisor",
    "tina": "edu_teacher",
    "fay": "finance",
}


@dataclass
class School:
    engine: object
    catalog: object
    people: dict


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def school(request, tmp_path_factory):
    with fresh_database(request.param, tmp_path_factory.mktemp(request.param), request) as url:
        engine = install(url, PACKS / "standard_crm")
        apply(engine, plan_packs(engine, [EDUCATION], "install"))  # the vertical on top of the installed base
        cache = CatalogCache()
        app = create_app(url)
        people = {}
        with engine.begin() as conn:
            catalog = cache.current(conn)
            for name, role in PEOPLE.items():
                user_id = create_user(conn, name, [role], catalog.metadata.roles)
                people[name] = Person(app.test_client(), {"Authorization": f"Bearer {create_token(conn, user_id, 'tests')[1]}"},
                                      user_id)
        yield School(engine, catalog, people)
        services(app).engine.dispose()
        engine.dispose()


def run_scheduled(school: School, name: str) -> jobs.Report:
    rule = next(r for r in school.catalog.metadata.rules if r.name == name)
    report = jobs.run_rule(school.engine, school.catalog, rule, datetime.now(timezone.utc))
    assert report.error is None and report.refused == 0, (report.error, report.messages)
    return report


def ours(origin) -> bool:
    """Declared by the education pack (installed sources are named `education/FILE`)."""
    return "/education/" in "/" + origin.file.replace("\\", "/")


def test_the_pack_installs_beside_the_standard_crm_and_its_rule_tests_pass(school):
    metadata = school.catalog.metadata
    assert [p.name for p in metadata.packs] == ["standard_crm", "education"]
    rules = [r for r in metadata.rules if ours(r.origin)]
    assert len(rules) >= 15
    assert [r.name for r in rules if not r.tests] == []  # every rule carries its test cases
    assert {r.kind for r in rules} == {"validation", "trigger", "stage_gate", "scheduled", "action"}
    outcomes = [o for o in run_pack_tests(metadata) if ours(o.rule.origin)]
    assert len(outcomes) == sum(len(r.tests) for r in rules)
    assert [o.describe() for o in outcomes if o.problem is not None] == []
    # Everything this pack adds to standard entities is prefixed, so other verticals fit beside it.
    contact = metadata.entities["contact"]
    assert [r.name for r in contact.record_types] == ["edu_other", "edu_student", "edu_guardian"]
    assert [r.name for r in metadata.entities["account"].record_types] == ["company", "person", "edu_family"]
    standard = {e.name for e in metadata.entities.values() if not ours(e.origin)}
    added = {(e, f.name) for e in standard for f in metadata.entities[e].fields if ours(f.origin)}
    assert {e for e, _ in added} == {"contact", "payment_received", "crm_task"}
    assert all(name.startswith("edu_") for _, name in added), added
    assert {"edu_course_advisor", "edu_teacher", "edu_academic_admin"} <= set(metadata.roles)


def _set_up_classes(amy: Person, tina: Person) -> tuple[dict, dict, dict]:
    course = amy.make("course", name="Math Olympiad", code="MO-1", subject="math", level="intermediate",
                      grades=["g4", "g5"], lessons=24, lesson_minutes=90, price="4800.00")
    start = date.today() + timedelta(days=7)
    small = amy.make("course_class", name="MO Sat 9:00", code="MO-1-A", course=course["id"], teacher=tina.id,
                     start_date=start.isoformat(), end_date=(start + timedelta(days=83)).isoformat(),
                     schedule="Sat 09:00-10:30", capacity=1, status="open", campus="Xuhui")
    large = amy.make("course_class", name="MO Sun 14:00", code="MO-1-B", course=course["id"], teacher=tina.id,
                     start_date=start.isoformat(), end_date=(start + timedelta(days=83)).isoformat(),
                     schedule="Sun 14:00-15:30", capacity=12, status="open", campus="Xuhui")
    assert large["weeks"] == 12
    return course, small, large


def _family(advisor: Person, name: str, child: str) -> tuple[dict, dict, dict]:
    family = advisor.make("account", name=f"{name} family", record_type="edu_family", phone="+86 138 0000 0001")
    guardian = advisor.make("contact", full_name=name, record_type="edu_guardian", account=family["id"],
                            mobile="+86 138 0000 0001", wechat=f"wx_{child}")
    student = advisor.make("contact", full_name=child, record_type="edu_student", edu_guardian=guardian["id"],
                           edu_guardian_relation="mother", edu_grade="g4", edu_school="Xuhui No. 2 Primary",
                           birthday="2016-05-04", edu_subjects=["math"])
    return family, guardian, student


def test_a_trial_lesson_becomes_an_enrolment_with_a_payment(school):
    people = school.people
    amy, ada, bob, tina = people["amy"], people["ada"], people["bob"], people["tina"]
    course, small, large = _set_up_classes(amy, tina)

    family, guardian, student = _family(ada, "Wang Li", "Li Ming")
    assert student["account"] == family["id"]  # the student joins the guardian's family
    refused(ada.call("POST", "contact", {"full_name": "Li Hua", "record_type": "edu_student",
                                        "edu_guardian": student["id"]}), 422, "edu_guardian")
    plain = ada.make("contact", full_name="Zhou Min")
    assert plain["record_type"] == "edu_other"  # a contact made as before is no student

    # The small class is full: another advisor's student already holds its one seat.
    _, _, other = _family(bob, "Zhao Yun", "Zhao Lei")
    taken = bob.make("enrolment", student=other["id"], course_class=small["id"], fee="4800.00")
    assert (taken["course"], taken["start_date"], taken["status"]) == (course["id"], small["start_date"], "active")
    assert taken["title"] == "Zhao Lei - MO Sat 9:00" and taken["enrolled_on"] == date.today().isoformat()
    refused(ada.call("POST", "enrolment", {"student": student["id"], "course_class": small["id"], "fee": "1.00"}),
            422, "course_class")  # the seat counts although ada may not change bob's enrolment

    trial = ada.make("trial_lesson", student=student["id"], course=course["id"], source="referral",
                     inquiry_notes="Wants competition maths for grade 5")
    assert (trial["stage"], trial["guardian"], trial["account"]) == ("inquiry", guardian["id"], family["id"])
    assert trial["title"] == "Li Ming - Math Olympiad"
    refused(ada.change("trial_lesson", trial, stage="trial_booked"), 422, "trial_teacher")
    held = (datetime.now(timezone.utc) - timedelta(hours=2)).replace(microsecond=0)
    trial = ada.changed("trial_lesson", trial, stage="trial_booked", trial_at=held.isoformat(), trial_teacher=tina.id,
                        trial_class=small["id"])

    # The teacher sees the trial she teaches, records how it went, and may go no further.
    trial = tina.read("trial_lesson", trial["id"])
    assert "fee" not in trial
    refused(tina.change("trial_lesson", trial, stage="trial_attended"), 422, "feedback")
    trial = tina.changed("trial_lesson", trial, stage="trial_attended", trial_rating="excellent",
                         feedback="Quick with number patterns; ready for the grade 5 group")
    assert tina.change("trial_lesson", trial, stage="enrolled").status_code == 403

    # The advisor enrols: refused by the capacity gate while the class is full, then a free seat.
    trial = ada.read("trial_lesson", trial["id"])
    refused(ada.change("trial_lesson", trial, stage="enrolled"), 422, "course_class")
    errors = refused(ada.change("trial_lesson", trial, stage="enrolled", course_class=small["id"], fee="4800.00"),
                     422, "course_class")
    assert "is full: 1 of 1 seats are taken" in errors["course_class"][0]
    assert ada.read("trial_lesson", trial["id"])["stage"] == "trial_attended"
    enrolled = ada.changed("trial_lesson", trial, stage="enrolled", course_class=large["id"], fee="4800.00")
    assert enrolled["enrolment"] is not None and enrolled["enrolled_on"] == date.today().isoformat()
    enrolment = ada.read("enrolment", enrolled["enrolment"])
    assert (enrolment["student"], enrolment["guardian"], enrolment["account"], enrolment["course"]) == \
        (student["id"], guardian["id"], family["id"], course["id"])
    assert (enrolment["course_class"], enrolment["trial_lesson"], enrolment["owner_id"]) == \
        (large["id"], trial["id"], ada.id)
    assert (enrolment["fee"], enrolment["amount_due"], enrolment["payment_status"]) == ("4800.00", "4800.00", "unpaid")
    assert (enrolment["start_date"], enrolment["end_date"]) == (large["start_date"], large["end_date"])
    refused(ada.change("enrolment", enrolment, payment_status="paid"), 403, "payment_status")  # the rules' to keep

    # The teacher sees the enrolment in her class without the money, and students but not guardians.
    seen = tina.read("enrolment", enrolment["id"])
    assert not {"fee", "amount_due", "amount_paid", "payment_status"} & set(seen)
    assert tina.read("contact", student["id"])["edu_grade"] == "g4"
    assert tina.call("GET", f"contact/{guardian['id']}").status_code == 404

    # Tuition against the enrolment, no contract: the family follows, an overpayment is refused.
    paid = ada.make("payment_received", title="Spring tuition", edu_enrolment=enrolment["id"], amount="4000.00",
                    received_on=date.today().isoformat(), method="wechat_pay")
    assert paid["account"] == family["id"] and paid["contract"] is None
    refused(ada.call("POST", "payment_received", {"title": "Too much", "edu_enrolment": enrolment["id"],
                                                  "amount": "900.00"}), 422, "amount")
    refused(ada.call("POST", "payment_received", {"title": "For nothing", "amount": "10.00"}), 422, "contract")
    ada.make("payment_received", title="Spring tuition, rest", edu_enrolment=enrolment["id"], amount="800.00",
             received_on=date.today().isoformat())
    fay = people["fay"]  # finance confirms tuition as any payment
    assert fay.changed("payment_received", fay.read("payment_received", paid["id"]), confirmed=True)["confirmed"] is True
    run_scheduled(school, "edu_refresh_tuition_paid")
    enrolment = ada.read("enrolment", enrolment["id"])
    assert (enrolment["amount_paid"], enrolment["payment_status"]) == ("4800.00", "paid")
    assert ada.read("enrolment", taken["id"])["payment_status"] == "unpaid"


def test_renewals_due_within_the_notice_days_are_flagged_and_renewed(school):
    people = school.people
    amy, ada, tina = people["amy"], people["ada"], people["tina"]
    course = amy.make("course", name="English Speaking", code="EN-S", subject="english", price="3600.00")
    term = amy.make("course_class", name="English Wed 18:30", code="EN-S-A", course=course["id"], teacher=tina.id,
                    start_date=(date.today() - timedelta(days=60)).isoformat(), capacity=8, status="running")
    _, _, soon_student = _family(ada, "Chen Jing", "Chen Xi")
    _, _, later_student = _family(ada, "Sun Mei", "Sun Yu")
    soon = ada.make("enrolment", student=soon_student["id"], course_class=term["id"], fee="3600.00",
                    end_date=(date.today() + timedelta(days=20)).isoformat())
    later = ada.make("enrolment", student=later_student["id"], course_class=term["id"], fee="3600.00",
                     end_date=(date.today() + timedelta(days=60)).isoformat())

    # The notice period is the setting edu_renewal_notice_days: at 15 days neither is due yet.
    with school.engine.begin() as conn:
        set_setting(conn, school.catalog.metadata, "edu_renewal_notice_days", "15", datetime.now(timezone.utc))
    assert run_scheduled(school, "edu_flag_renewals_due").changed == 0
    with school.engine.begin() as conn:
        unset_setting(conn, school.catalog.metadata, "edu_renewal_notice_days")  # back to 30
    report = run_scheduled(school, "edu_flag_renewals_due")
    assert report.changed == 1
    soon, later = ada.read("enrolment", soon["id"]), ada.read("enrolment", later["id"])
    assert (soon["renewal_status"], soon["renewal_due"], soon["renewal_flagged_on"]) == ("due", True, date.today().isoformat())
    assert (later["renewal_status"], later["renewal_due"], later["renewal_flagged_on"]) == ("not_due", False, None)
    tasks = ada.call("GET", "crm_task", query={"filter": f"edu_enrolment = {soon['id']}"}).json["data"]
    assert len(tasks) == 1 and tasks[0]["assigned_to"] == ada.id and tasks[0]["account"] == soon["account"]
    assert tasks[0]["subject"] == "Renewal due: Chen Xi - English Wed 18:30" and tasks[0]["priority"] == "high"
    listed = ada.call("GET", "enrolment", query={"filter": "renewal_due = true"}).json["data"]
    assert soon["id"] in [r["id"] for r in listed] and later["id"] not in [r["id"] for r in listed]
    assert run_scheduled(school, "edu_flag_renewals_due").changed == 0  # flagged once

    renewed = ada.act("enrolment", soon, "edu_renew", {"fee": "3400.00",
                                                         "end_date": (date.today() + timedelta(days=200)).isoformat()})
    assert renewed.status_code == 200, renewed.json
    assert renewed.json["record"]["renewal_status"] == "renewed" and renewed.json["record"]["renewal_due"] is False
    [made] = renewed.json["created"]
    renewal = ada.read("enrolment", made["id"])
    assert (renewal["renews"], renewal["student"], renewal["course_class"], renewal["fee"]) == \
        (soon["id"], soon_student["id"], term["id"], "3400.00")
    assert renewal["start_date"] == (date.today() + timedelta(days=21)).isoformat()
    assert ada.act("enrolment", renewed.json["record"], "edu_renew").status_code == 409  # renewed already

    # A renewal made by hand is noticed by the rule instead of being flagged as due.
    later = amy.changed("enrolment", amy.read("enrolment", later["id"]),
                        end_date=(date.today() + timedelta(days=25)).isoformat())
    amy.make("enrolment", student=later_student["id"], course_class=term["id"], fee="3600.00", renews=later["id"])
    run_scheduled(school, "edu_flag_renewals_due")
    assert ada.read("enrolment", later["id"])["renewal_status"] == "renewed"


def test_the_admissions_dashboard_counts_as_the_advisor_sees(school):
    """Figures worked out from the records each reader's lists show, never asked of the engine."""
    ada, tina, fay = school.people["ada"], school.people["tina"], school.people["fay"]
    ada.make("trial_lesson", student=ada.make("contact", full_name="Qian Bo", record_type="edu_student")["id"],
             course=ada.call("GET", "course", query={"limit": "1"}).json["data"][0]["id"], stage="lost",
             lost_reason="schedule", source="online_ad")

    def listed(person: Person, entity: str, filter: str | None = None) -> list[dict]:
        query = {"limit": "500"} | ({"filter": filter} if filter else {})
        return person.call("GET", entity, query=query).json["data"]

    dashboard = ada.call("GET", "dashboards/edu_admissions")
    assert dashboard.status_code == 200, dashboard.json
    assert [d["name"] for d in ada.call("GET", "dashboards").json["data"]] == ["edu_admissions"]

    funnel = ada.call("GET", "reports/edu_trial_funnel").json
    trials = listed(ada, "trial_lesson")
    counts = {g["keys"][0]["value"]: g["count"] for g in funnel["groups"]}
    stages = ["inquiry", "trial_booked", "trial_attended", "enrolled", "lost"]
    per_stage = {s: sum(t["stage"] == s for t in trials) for s in stages}
    assert counts == {s: n for s, n in per_stage.items() if n or s != "lost"}  # open stages listed even when empty
    assert counts["enrolled"] >= 1 and counts["lost"] >= 1
    reached = [sum(counts.get(s, 0) for s in stages[i:4]) for i in range(4)]
    assert [(c["from"], c["to"], c["reached_from"], c["reached_to"]) for c in funnel["conversion"]] == \
        [(stages[i], stages[i + 1], reached[i], reached[i + 1]) for i in range(3)]

    by_course = ada.call("GET", "reports/edu_enrolments_by_course").json
    enrolments = listed(ada, "enrolment", "status != 'withdrawn'")  # advisors read every enrolment
    figures = {g["keys"][0]["value"]: g["figures"]["enrolments"] for g in by_course["groups"]}
    assert figures == {c: sum(e["course"] == c for e in enrolments) for c in {e["course"] for e in enrolments}}
    assert list(figures.values()) == sorted(figures.values(), reverse=True)

    due = ada.call("GET", "reports/edu_renewals_due_by_month").json
    ending = listed(ada, "enrolment", "status = 'active' and renewal_status in ('not_due', 'due')")
    expected = {}
    for e in ending:
        key = (e["end_date"][:7] if e["end_date"] else None, e["renewal_status"])
        expected[key] = expected.get(key, 0) + 1
    assert {(g["keys"][0]["value"], g["keys"][1]["value"]): g["count"] for g in due["groups"]} == expected

    received = fay.call("GET", "reports/edu_tuition_received_by_month").json
    paid = listed(fay, "payment_received", "edu_enrolment is not null and received_on is not null")
    assert sum(g["figures"]["received"] for g in received["groups"]) == pytest.approx(sum(float(p["amount"]) for p in paid))
    assert paid

    # A teacher sees no tuition and no dashboard of admissions; finance sees no trials.
    assert tina.call("GET", "reports/edu_tuition_by_course").status_code == 404
    assert tina.call("GET", "dashboards/edu_admissions").status_code == 404
    assert fay.call("GET", "reports/edu_trial_funnel").status_code == 404
