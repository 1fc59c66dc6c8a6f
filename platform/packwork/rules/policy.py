"""Compile time: what rule code may say, and the rewrites that send risky operations through the
guards (guards.py).

RestrictedPython's transformer already refuses names and attributes starting with `_`, frame
and generator internals (gi_frame, f_back, tb_frame, ...), exec and eval, and turns `a.b`,
`a[b]`, `for`, unpacking and `a.b = c` into `_getattr_`, `_getitem_`, `_getiter_`, `_write_`
calls. On top of it this policy

- refuses what a rule has no use for and what opens doors: import, class, with, yield,
  global/nonlocal, async, match, decorators, bytes, `finally` (a `return` or `break` in it
  swallows the exception in flight), a bare `except`, and `except` of anything but the
  exception names in guards.CATCHABLE: evaluating any other handler expression can raise,
  which would replace a Stop in flight with an exception rule code could catch;
- refuses names that would reach the interpreter (FORBIDDEN_NAMES), rebinding the catchable
  exception names, and the attributes that walk format strings (`format`, `format_map`);
- rewrites `*`, `**`, `<<`, `+`, `%` (refused on text at run time), `@`, f-string fields,
  `*x` and `**x` unpacking, `while` passes and `except` bodies into guard calls;
- decides whether the code may run in the caller's process (`needs_pool`).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from types import CodeType

from RestrictedPython.transformer import INSPECT_ATTRIBUTES, RestrictingNodeTransformer, copy_locations

from packwork.rules.errors import RuleLimit, RuleSyntaxError, RuleViolation
from packwork.rules.guards import CATCHABLE

RULE_FILENAME = "<rule>"  # how run time tells rule frames from guard frames in a traceback
MAX_SOURCE = 50_000       # characters of rule code
MAX_DEPTH = 100           # nesting of the syntax tree (the transformer recurses)
IN_PROCESS_NODES = 400    # larger straight-line code goes to the pool all the same

FORBIDDEN_NAMES = frozenset({
    "exec", "eval", "compile", "open", "getattr", "setattr", "delattr", "hasattr", "globals",
    "locals", "vars", "type", "object", "super", "dir", "breakpoint", "input", "print", "printed",
    "help", "id", "iter", "next", "memoryview", "bytes", "bytearray", "classmethod",
    "staticmethod", "property", "format", "repr", "exit", "quit", "BaseException",
})
FORBIDDEN_ATTRIBUTES = frozenset({"format", "format_map", "mro"}) | INSPECT_ATTRIBUTES
BINARY_GUARDS = {ast.Mult: "_mul_", ast.Pow: "_pow_", ast.LShift: "_lshift_", ast.Add: "_add_",
                 ast.Mod: "_mod_", ast.MatMult: "_matmul_"}
# Code with any of these can loop, recurse or take unbounded time: it runs in the pool.
LOOPING = (ast.For, ast.While, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp,
           ast.FunctionDef, ast.Lambda)
SLOW_FUNCTIONS = frozenset({"matches"})  # time not bounded by the size of its arguments


@dataclass(frozen=True, slots=True)
class Checked:
    code: CodeType
    in_process: bool         # straight-line code: may run in the caller's thread
    bound: frozenset[str]    # names the code may bind (a superset is enough)
    loaded: frozenset[str]   # names it reads
    read_only: frozenset[str] = frozenset()  # names it only reads fields of (fields_read_only)


def compile_code(source: str, *, mode: str = "exec", first_line: int = 1) -> Checked:
    """Rule code checked, rewritten and compiled; RuleSyntaxError, RuleViolation or RuleLimit,
    with the pack-file line, if it is not acceptable."""
    if mode not in ("exec", "eval"):
        raise ValueError(f"mode must be 'exec' or 'eval', not {mode!r}")
    if len(source) > MAX_SOURCE:
        raise RuleLimit(f"rule code is limited to {MAX_SOURCE:,} characters", line=first_line)
    try:
        tree = ast.parse(source, RULE_FILENAME, mode)
    except SyntaxError as exc:
        raise RuleSyntaxError(exc.msg, line=first_line - 1 + (exc.lineno or 1)) from None
    except (ValueError, RecursionError, MemoryError) as exc:  # NUL bytes, absurd nesting
        raise RuleSyntaxError(f"rule code does not parse: {exc}", line=first_line) from None
    ast.increment_lineno(tree, first_line - 1)
    deep = _too_deep(tree)
    if deep is not None:
        raise RuleLimit(f"rule code is nested more than {MAX_DEPTH} levels deep", line=deep)
    in_process, (bound, loaded), read_only = not needs_pool(tree), names(tree), fields_read_only(tree)
    policy = RulePolicy()
    tree = policy.visit(tree)
    if policy.problems:
        line, message = min(policy.problems, key=lambda problem: problem[0])
        raise RuleViolation(message, line=line)
    ast.fix_missing_locations(tree)
    try:
        return Checked(compile(tree, RULE_FILENAME, mode), in_process, bound, loaded, read_only)
    except SyntaxError as exc:  # found by the compiler, not the parser: 'return' outside function
        raise RuleSyntaxError(exc.msg, line=exc.lineno) from None
    except (RecursionError, MemoryError) as exc:
        raise RuleLimit(f"rule code is too complex to compile: {exc}", line=first_line) from None


def needs_pool(tree: ast.AST) -> bool:
    """Whether code can loop, recurse or otherwise run long: then it runs in a worker process
    under a time limit. Straight-line code is bounded by its size and the guards' limits."""
    count = 0
    for node in ast.walk(tree):
        count += 1
        if isinstance(node, LOOPING) or isinstance(node, ast.Name) and node.id in SLOW_FUNCTIONS:
            return True
    return count > IN_PROCESS_NODES


def names(tree: ast.AST) -> tuple[frozenset[str], frozenset[str]]:
    """(names the code may bind, names it reads). The first also holds names bound only inside
    functions or comprehensions: a run checks what these hold afterwards, and a superset
    costs nothing but a lookup."""
    bound, loaded = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.ExceptHandler)) and node.name:
            bound.add(node.name)
    return frozenset(bound), frozenset(loaded)


def fields_read_only(tree: ast.AST) -> frozenset[str]:
    """Names the code uses only as `name.field` read (never bound, written through,
    subscripted, called or handed on). Given a Record of immutable values under such a name,
    the code cannot change it, so it needs no copy of its own."""
    read, other = set(), set()
    fields = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Attribute)
              and isinstance(node.ctx, ast.Load) and isinstance(node.value, ast.Name)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (read if id(node) in fields else other).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.ExceptHandler, ast.arg)):
            other.add(getattr(node, "name", None) or getattr(node, "arg", None))
    return frozenset(read - other)


def _too_deep(tree: ast.AST) -> int | None:
    """The line of a node nested deeper than MAX_DEPTH, if any (walked without recursion)."""
    stack = [(tree, 0, 1)]
    while stack:
        node, depth, line = stack.pop()
        line = getattr(node, "lineno", line)
        if depth > MAX_DEPTH:
            return line
        stack.extend((child, depth + 1, line) for child in ast.iter_child_nodes(node))
    return None


def _catchable(node: ast.expr) -> bool:
    kinds = node.elts if isinstance(node, ast.Tuple) else [node]
    return all(isinstance(kind, ast.Name) and kind.id in CATCHABLE for kind in kinds)


class RulePolicy(RestrictingNodeTransformer):
    def __init__(self):
        super().__init__()
        self.problems: list[tuple[int, str]] = []

    def error(self, node: ast.AST, info: str) -> None:
        self.problems.append((getattr(node, "lineno", 0), info))
        super().error(node, info)

    def refuse(self, node: ast.AST, what: str) -> ast.AST:
        self.error(node, f"{what} not available to rules")
        return node

    def guard(self, name: str, args: list[ast.expr], like: ast.AST) -> ast.Call:
        call = ast.Call(func=ast.Name(name, ast.Load()), args=args, keywords=[])
        copy_locations(call, like)
        return call

    def guard_statement(self, name: str, like: ast.AST) -> ast.Expr:
        statement = ast.Expr(self.guard(name, [], like))
        copy_locations(statement, like)
        return statement

    # Statements

    def visit_Import(self, node):
        return self.refuse(node, "import is")

    visit_ImportFrom = visit_Import

    def visit_ClassDef(self, node):
        return self.refuse(node, "class definitions are")

    def visit_With(self, node):
        return self.refuse(node, "'with' is")

    def visit_Global(self, node):
        return self.refuse(node, "'global' is")

    def visit_Yield(self, node):
        return self.refuse(node, "'yield' is")

    visit_YieldFrom = visit_Yield

    def visit_TemplateStr(self, node):
        return self.refuse(node, "template strings are")

    def visit_FunctionDef(self, node):
        if node.decorator_list:
            self.refuse(node, "decorators are")
        self._check_binding(node, node.name)
        return super().visit_FunctionDef(node)

    def visit_arg(self, node):
        self._check_binding(node, node.arg)
        return super().visit_arg(node)

    def visit_While(self, node):
        node = super().visit_While(node)
        node.body.insert(0, self.guard_statement("_loop_", node))
        return node

    def visit_Try(self, node):
        if node.finalbody:
            self.refuse(node, "'finally' is")
        return super().visit_Try(node)

    def visit_ExceptHandler(self, node):
        if node.type is None:
            self.error(node, "a bare 'except:' is not allowed; name the exception, for example "
                             "'except ValueError:'")
        elif not _catchable(node.type):
            self.error(node, "'except' may only name the exceptions rules can catch: "
                             + ", ".join(sorted(CATCHABLE)))
        self._check_binding(node, node.name)
        node = super().visit_ExceptHandler(node)
        node.body.insert(0, self.guard_statement("_caught_", node))
        return node

    # Names, attributes, constants

    def visit_Name(self, node):
        if node.id in FORBIDDEN_NAMES:
            self.refuse(node, f"{node.id!r} is")
        elif not isinstance(node.ctx, ast.Load):
            self._check_binding(node, node.id)
        return super().visit_Name(node)

    def _check_binding(self, node: ast.AST, name: str | None) -> None:
        if name in CATCHABLE or name in FORBIDDEN_NAMES:
            self.error(node, f"{name!r} cannot be assigned, deleted or used as a parameter name")

    def visit_Attribute(self, node):
        if node.attr in FORBIDDEN_ATTRIBUTES:
            self.refuse(node, f"'.{node.attr}' is")
        return super().visit_Attribute(node)

    def visit_Constant(self, node):
        if isinstance(node.value, bytes):
            return self.refuse(node, "bytes are")
        return super().visit_Constant(node)

    # Operations that can grow

    def visit_BinOp(self, node):
        node = super().visit_BinOp(node)
        name = BINARY_GUARDS.get(type(node.op))
        return self.guard(name, [node.left, node.right], node) if name else node

    def visit_FormattedValue(self, node):
        node = super().visit_FormattedValue(node)
        spec = node.format_spec or ast.Constant("")
        node.value = self.guard("_format_", [node.value, ast.Constant(node.conversion), spec], node)
        node.conversion, node.format_spec = -1, None
        return node

    def visit_Starred(self, node):
        node = super().visit_Starred(node)
        if isinstance(node.ctx, ast.Load):
            node.value = self.guard("_star_", [node.value], node)
        return node

    def visit_Dict(self, node):
        node = super().visit_Dict(node)
        node.values = [self.guard("_star_", [value], value) if key is None else value
                       for key, value in zip(node.keys, node.values)]
        return node

    def visit_keyword(self, node):
        node = super().visit_keyword(node)
        if node.arg is None:
            node.value = self.guard("_star_", [node.value], node.value)
        return node
