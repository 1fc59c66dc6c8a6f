"""The studio's permission pages (a role's matrix and field access, saved as admin layer grants,
planned then applied) and its users and teams (written straight to the database).

A layer grant is one more grant of the role beside the packs' (`metadata.access`): an action's
scope is the widest any grant gives; a field is hidden (read-only) only if every grant that
reads (writes) the entity says so. So the layer only adds to what packs grant: a narrower scope,
or restricting a field the packs leave open, is refused next to its input."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial

from flask import current_app, redirect, request, url_for
from werkzeug.wrappers import Response

from packwork.errors import NotFound, ValidationError
from packwork.metadata.access import ACTIONS, ADMIN_ROLE, SCOPES, EntityPolicy, entity_policy, role_matrix
from packwork.metadata.layer_grants import FIELD_STATES, field_grant, field_state, policy_with, widened
from packwork.metadata.model import Entity, Metadata
from packwork.runtime import users
from packwork.runtime.sessions import check_new_password, set_password
from packwork.web.pages import Page
from packwork.web.studio import FORM, Errors, administrator, blueprint, draft_of, entity_of, propose, studio_html


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

def _people_html(page: Page, person: Mapping | None = None, person_errors: Errors | None = None,
                 team: Mapping | None = None, team_errors: Errors | None = None) -> str:
    teams = users.teams(page.ctx.conn)
    return studio_html("admin/people.html", page, people=users.people(page.ctx.conn), teams=teams,
                       team_options=[(t.name, t.label or t.name) for t in teams],
                       known_roles=sorted(set(page.ctx.catalog.metadata.roles) | {ADMIN_ROLE}),
                       person=person or {"roles": []}, person_errors=person_errors or {}, team=team or {},
                       team_errors=team_errors or {}, saved="saved" in request.args)


@blueprint.get("/people")
def people() -> str:
    with administrator() as page:
        return _people_html(page)


@blueprint.post("/people/users")
def create_person() -> Response:
    """A user with a password, roles and a team; nothing at all if any value is refused, and
    every refusal shown next to its input."""
    form = request.form
    person = {k: form.get(k, "").strip() for k in ("username", "display_name", "team")}
    person["roles"] = form.getlist("roles")
    with administrator(write=True) as page:
        conn, known = page.ctx.conn, page.ctx.catalog.metadata.roles
        details = (person["username"], person["roles"], known, person["display_name"] or None, person["team"] or None)
        errors = users.user_problems(conn, *details)
        try:
            check_new_password(form.get("password", ""))
        except ValidationError as exc:
            errors |= exc.errors
        if errors:
            return current_app.make_response((_people_html(page, person, errors), 422))
        set_password(conn, users.create_user(conn, *details), form.get("password", ""))
    return redirect(url_for("studio.people", saved=person["username"]), 303)


@blueprint.post("/people/teams")
def create_group_team() -> Response:
    team = {k: request.form.get(k, "").strip() for k in ("name", "label", "parent")}
    with administrator(write=True) as page:
        details = (team["name"], team["parent"] or None, team["label"] or None)
        errors = users.team_problems(page.ctx.conn, *details)
        if errors:
            return current_app.make_response((_people_html(page, team=team, team_errors=errors), 422))
        users.create_team(page.ctx.conn, *details)
    return redirect(url_for("studio.people", saved=team["name"]), 303)
