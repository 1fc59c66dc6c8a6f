"""The studio's permission pages (a role's matrix and field access, saved as admin layer grants,
planned then applied) and its users and teams (written straight to the database).

A layer grant is one more grant of the role beside the packs' (`metadata.access`): an action's
scope is the widest any grant gives; a field is hidden (read-only) only if every grant that
reads (writes) the entity says so. So the layer only adds to what packs grant: a narrower scope,
or restricting a field the packs leave open, is refused next to its input."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import partial

import sqlalchemy as sa
from flask import current_app, redirect, request, url_for
from werkzeug.wrappers import Response

from packwork.errors import NotFound, ValidationError
from packwork.metadata.access import ACTIONS, ADMIN_ROLE, SCOPES, EntityPolicy, entity_policy, role_matrix
from packwork.metadata.layer_grants import FIELD_STATES, field_grant, field_state, policy_with, widened
from packwork.metadata.model import Entity, Metadata
from packwork.runtime import users
from packwork.runtime.sessions import check_new_password, set_password
from packwork.runtime.system import pw_team, pw_team_member, pw_user, pw_user_role
from packwork.web.pages import Page, signed_in
from packwork.web.studio import FORM, Errors, NotAnAdministrator, administrator, blueprint, draft_of, entity_of, \
    propose, studio_html

# -- the permission matrix ---------------------------------------------------------------------

def _role(metadata: Metadata, name: str | None) -> str:
    name = name or next(iter(metadata.roles), "")
    if name not in metadata.roles:
        raise NotFound(f"there is no role {name!r} (roles: {', '.join(metadata.roles)})")
    return name


def _matrix_html(page: Page, role: str, values: Mapping[str, str], errors: Errors) -> str:
    metadata = page.ctx.catalog.metadata
    policies = role_matrix(metadata, role)
    rows = {name: sorted({r for reach in policy.actions.values() for r in reach.rows})
            for name, policy in policies.items()}
    return studio_html("admin/access.html", page, role=role,
                        roles=list(metadata.roles.values()), entities=[metadata.entities[n] for n in sorted(policies)],
                        rows=rows, actions=ACTIONS, scopes=SCOPES, values=values, errors=errors)


def matrix_changes(metadata: Metadata, role: str, values: dict[str, str]) -> tuple[dict, Errors]:
    """{entity: (the packs' policy, the chosen scopes)} of the entities whose scopes change,
    and the scopes refused: not scopes, or narrower than the packs'. Fills in missing values."""
    changed, errors = {}, {}
    for name, policy in role_matrix(metadata, role).items():
        chosen = {a: values.setdefault(f"grant.{name}.{a}", policy.reach(a).scope) for a in ACTIONS}
        packs = policy_with(metadata, role, name, {})
        for action, scope in chosen.items():
            floor = packs.reach(action).scope
            if scope not in SCOPES:
                errors[f"grant.{name}.{action}"] = [f"{scope!r} is not a scope ({', '.join(SCOPES)})"]
            elif SCOPES.index(scope) < SCOPES.index(floor):
                errors[f"grant.{name}.{action}"] = [f"the packs grant {floor}: the studio can only add to what "
                                                    "packs grant, so this cannot be narrowed here"]
        if any(chosen[a] != policy.reach(a).scope for a in ACTIONS):
            changed[name] = (packs, chosen)
    return changed, errors


@blueprint.get("/access")
def access() -> str:
    with administrator() as page:
        metadata = page.ctx.catalog.metadata
        role = _role(metadata, request.args.get("role"))
        values = {f"grant.{name}.{action}": policy.reach(action).scope
                  for name, policy in role_matrix(metadata, role).items() for action in ACTIONS}
        return _matrix_html(page, role, values, {})


@blueprint.post("/access")
def save_access() -> Response:
    with administrator() as page:
        metadata = page.ctx.catalog.metadata
        role = _role(metadata, request.form.get("role"))
        values = {key: request.form.get(key, "none") for key in request.form if key.startswith("grant.")}
        changed, errors = matrix_changes(metadata, role, values)
        redraw = partial(_matrix_html, page, role, values)
        if errors:
            return current_app.make_response((redraw(errors), 422))

        def edit(draft) -> str:
            for name, (packs, chosen) in changed.items():
                layer = draft.layer_grant(role, name)
                grant = widened(layer, packs, chosen)
                if grant != layer:
                    draft.set_grant(role, name, grant)
            return f"$.permissions.{role}"
        return propose(page, edit, redraw, url_for("studio.access", role=role),
                       {name: f"grant.{name}" for name in changed})


@blueprint.route("/access/<role>/<entity>", methods=["GET", "POST"], endpoint="field_access")
def field_access(role: str, entity: str) -> Response | str:
    """Which fields of `entity` the role sees hidden, read-only or editable."""
    with administrator() as page:
        metadata = page.ctx.catalog.metadata
        role, target = _role(metadata, role), entity_of(page, entity)
        policy = entity_policy(metadata, [role], target.name)
        current = {f"field.{f.name}": field_state(policy, f.name) for f in target.fields if not f.hidden}
        if request.method == "GET":
            return _fields_html(page, role, target, policy, current, {})
        values = {key: request.form.get(key, "editable") for key in current}
        errors = {k: [f"choose one of {', '.join(FIELD_STATES)}"] for k, v in values.items() if v not in FIELD_STATES}
        if not policy.reach("read").granted:
            errors[FORM] = [f"{role} may not read {target.name}: grant read in the permission matrix first"]
        if not errors:
            layer = draft_of(page).layer_grant(role, target.name)
            desired = {key.removeprefix("field."): v for key, v in values.items()}
            grant, errors = field_grant(metadata, role, target.name, layer, desired)
        redraw = partial(_fields_html, page, role, target, policy, values)
        if errors:
            return current_app.make_response((redraw(errors), 422))
        return propose(page, lambda draft: draft.set_grant(role, target.name, grant), redraw,
                       url_for("studio.field_access", role=role, entity=target.name))


def _fields_html(page: Page, role: str, entity: Entity, policy: EntityPolicy, values: Mapping[str, str],
                 errors: Errors) -> str:
    return studio_html("admin/field_access.html", page, role=role, entity=entity,
                        fields=[f for f in entity.fields if not f.hidden], reads=policy.reach("read").granted,
                        values=values, errors=errors)


# -- users and teams ---------------------------------------------------------------------------

@contextmanager
def administrator_writing() -> Iterator[Page]:
    """An administrator's request that writes (users, teams), in one transaction."""
    with signed_in(write=True) as page:
        if ADMIN_ROLE not in page.session.actor.roles:
            raise NotAnAdministrator("The studio is for administrators.")
        yield page


def _people_html(page: Page, person: Mapping | None = None, person_errors: Errors | None = None,
                 team: Mapping | None = None, team_errors: Errors | None = None) -> str:
    conn, parent = page.ctx.conn, pw_team.alias("parent")
    people = conn.execute(
        sa.select(*(pw_user.c[k] for k in ("id", "username", "display_name", "is_active")),
                  pw_team.c.name.label("team"))
        .select_from(pw_user.outerjoin(pw_team_member, pw_team_member.c.user_id == pw_user.c.id)
                     .outerjoin(pw_team, pw_team.c.id == pw_team_member.c.team_id))
        .order_by(pw_user.c.username)).all()
    roles: dict[int, list[str]] = {}
    for user_id, role in conn.execute(sa.select(pw_user_role).order_by(pw_user_role.c.role)):
        roles.setdefault(user_id, []).append(role)
    teams = conn.execute(sa.select(pw_team.c.name, pw_team.c.label, parent.c.name.label("parent"))
                         .select_from(pw_team.outerjoin(parent, parent.c.id == pw_team.c.parent_id))
                         .order_by(pw_team.c.name)).all()
    return studio_html("admin/people.html", page, people=people, roles=roles,
                        teams=teams, team_options=[(t.name, t.label or t.name) for t in teams],
                        known_roles=sorted(set(page.ctx.catalog.metadata.roles) | {ADMIN_ROLE}),
                        person=person or {"roles": []}, person_errors=person_errors or {}, team=team or {},
                        team_errors=team_errors or {}, saved="saved" in request.args)


def _refused(errors: Errors, key: str, call, *args):
    """`call(*args)`, or None with its UserError recorded as the error of input `key`."""
    try:
        return call(*args)
    except users.UserError as exc:
        errors[key] = [str(exc)]


@blueprint.get("/people")
def people() -> str:
    with administrator() as page:
        return _people_html(page)


@blueprint.post("/people/users")
def create_person() -> Response:
    """A user with a password, roles and a team; nothing at all if any value is refused."""
    form, errors = request.form, {}
    person = {k: form.get(k, "").strip() for k in ("username", "display_name", "team")}
    person["roles"] = form.getlist("roles")
    with administrator_writing() as page:
        conn, known = page.ctx.conn, set(page.ctx.catalog.metadata.roles)
        unknown = [r for r in person["roles"] if r not in known | {ADMIN_ROLE}]
        if unknown:
            errors["roles"] = [f"unknown role(s) {', '.join(unknown)}"]
        if len(person["display_name"]) > 200:
            errors["display_name"] = ["must be at most 200 characters long"]
        try:
            check_new_password(form.get("password", ""))
        except ValidationError as exc:
            errors |= exc.errors
        saving = conn.begin_nested()  # the user is made even when other values are refused, to check its name
        if person["team"]:
            _refused(errors, "team", users.find_team, conn, person["team"])
        user_id = _refused(errors, "username", users.create_user, conn, person["username"],
                           [r for r in person["roles"] if r not in unknown], known, person["display_name"] or None)
        if errors:
            saving.rollback()
            return current_app.make_response((_people_html(page, person, errors), 422))
        set_password(conn, user_id, form.get("password", ""))
        users.join_team(conn, user_id, person["team"] or None)
        saving.commit()
    return redirect(url_for("studio.people", saved=person["username"]), 303)


@blueprint.post("/people/teams")
def create_group_team() -> Response:
    team, errors = {k: request.form.get(k, "").strip() for k in ("name", "label", "parent")}, {}
    with administrator_writing() as page:
        if len(team["label"]) > 200:
            errors["label"] = ["must be at most 200 characters long"]
        if team["parent"]:
            _refused(errors, "parent", users.find_team, page.ctx.conn, team["parent"])
        saving = page.ctx.conn.begin_nested()
        _refused(errors, "name", users.create_team, page.ctx.conn, team["name"],
                 None if "parent" in errors else team["parent"] or None, team["label"] or None)
        if errors:
            saving.rollback()
            return current_app.make_response((_people_html(page, team=team, team_errors=errors), 422))
        saving.commit()
    return redirect(url_for("studio.people", saved=team["name"]), 303)
