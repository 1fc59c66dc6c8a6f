"""The escape corpus: known ways out of Python sandboxes and known ways to take a server down,
each of which must end in a RuleError within a second, and leave the process and the pool
healthy.

Sources: RestrictedPython's advisories (the generator frame walk CVE-2023-37271, the
string.Formatter attribute walk CVE-2023-41039 and its format_map twin, AttributeError.obj
CVE-2024-47532, try/except* type confusion CVE-2025-22153, guard shadowing through
positional-only parameters GHSA-ffg3-p8fm-mjx2, Formatter field resolution GHSA-hp3v-5vw7-fx9w),
Frappe's safe_exec history (modules handed to scripts: `json.codecs.open`,
`datetime.sys.modules`; objects reachable through what a callback returns), Zope's
format-string and `__class__` walks, and the denial-of-service shapes RestrictedPython stops
none of (huge repetitions, powers, shifts, padding, joins, loops, recursion, regexes).
"""

from __future__ import annotations

import json
import resource
import time

import pytest

from packwork.rules.sandbox import Record, RuleError, RuleLimit, RuleTimeout, RuleViolation, run

ESCAPES = {
    # RestrictedPython advisories
    "cve_2023_37271_generator_gi_frame": "g = (x for x in [1])\nf = g.gi_frame.f_back.f_back.f_globals",
    "cve_2023_37271_generator_walks_itself": "q = (q.gi_frame.f_back for _ in [1])\nleak = [*q][0]",
    "cve_2023_41039_str_format_attribute_walk": "x = '{0.__class__.__mro__}'.format(1)",
    "cve_2023_41039_format_map": "x = '{a.__class__}'.format_map({'a': 1})",
    "cve_2023_41039_format_through_a_variable": "f = 'x'.format\ny = f",
    "cve_2024_47532_attribute_error_obj": (
        "try:\n    record.missing\nexcept AttributeError as e:\n    leaked = e.obj"),
    "cve_2025_22153_except_star": "try:\n    pass\nexcept* ValueError:\n    pass",
    "ghsa_ffg3_positional_only_guard_shadow": "def f(_getattr_, /):\n    return _getattr_\nf(1)",
    "ghsa_hp3v_string_formatter": "from string import Formatter\nx = Formatter().format('{0.__class__}', 1)",
    # attribute and type walks
    "class_mro_subclasses": "x = ().__class__.__mro__[1].__subclasses__()",
    "getattr_with_built_name": "x = getattr((), '__cla' + 'ss__')",
    "type_builtin_mro": "x = type(1).mro()",
    "object_subclasses": "x = object.__subclasses__()",
    "method_on_library_type": "m = str.maketrans",
    "dict_fromkeys_on_library_type": "d = dict.fromkeys([1])",
    "builtin_method_self": "s = 'x'.upper\nx = s.self",
    "nfkc_normalised_dunder": "x = ().__\uff43lass__",  # a fullwidth c: the parser normalises it
    "reduce_ex_type_confusion": "x = [].__reduce_ex__(2)",
    "exception_traceback_frame": "try:\n    1 / 0\nexcept ZeroDivisionError as e:\n    f = e.__traceback__",
    "exception_args_walk": "try:\n    1 / 0\nexcept ZeroDivisionError as e:\n    a = e.args",
    "generator_throw": "g = (x for x in [1])\nt = g.throw",
    "function_code_object": "def f():\n    pass\nc = f.func_code",
    "globals_builtins": "b = globals()['__builtins__']",
    "vars_builtins": "b = vars()",
    "dunder_import": "os = __import__('os')",
    "import_statement": "import os",
    "from_import": "from os import system",
    "open_file": "t = open('/etc/passwd').read()",
    "eval_call": "x = eval('1 + 1')",
    "exec_call": "exec('x = 1')",
    "compile_call": "c = compile('1', 'f', 'eval')",
    "breakpoint_call": "breakpoint()",
    "print_call": "print('hi')",
    "class_definition": "class A:\n    pass",
    "with_statement": "with x as y:\n    pass",
    "yield_generator": "def g():\n    yield 1",
    "global_statement": "def f():\n    global x\n    x = 1",
    "async_function": "async def f():\n    pass",
    "bytes_literal": "b = b'x' * 10",
    # Frappe safe_exec: modules and host objects must never reach rule code
    "frappe_json_codecs_open": "f = json.codecs.open('/etc/passwd')",
    "frappe_date_sys_modules": "m = today().sys",
    # exception handlers that try to swallow a stop
    "except_exception_swallows_loop_limit": (
        "n = 0\ntry:\n    while True:\n        n += 1\nexcept Exception:\n    pass\ndone = n"),
    "except_exception_swallows_recursion": (
        "def f(n):\n    return f(n + 1)\ntry:\n    f(0)\nexcept Exception:\n    pass\ndone = 1"),
    "except_exception_swallows_size_limit": "try:\n    x = 'a' * 10**9\nexcept Exception:\n    x = ''",
    "except_dynamic_handler_replaces_stop": (
        "def f():\n    return ValueError\ntry:\n    while True:\n        pass\nexcept f():\n    pass"),
    "except_base_exception": "try:\n    pass\nexcept BaseException:\n    pass",
    "bare_except": "try:\n    pass\nexcept:\n    pass",
    "finally_return_swallows": (
        "def f():\n    try:\n        while True:\n            pass\n    finally:\n        return 1\nx = f()"),
    "rebind_exception_name": "ValueError = 1",
    "walrus_rebinds_exception_name": "x = (ValueError := 1)",
    # huge allocations
    "str_repeat_10_10": "x = 'a' * 10**10",
    "str_repeat_10_9": "x = 'a' * 10**9",
    "list_repeat": "x = [0] * 10**9",
    "tuple_repeat": "x = (0,) * 10**9",
    "power_tower": "x = 10 ** 10 ** 10",
    "big_power": "x = 7 ** 4000",
    "left_shift": "x = 1 << 10**9",
    "augmented_repeat": "x = 'a'\nx *= 10**9",
    "ljust": "x = 'x'.ljust(10**9)",
    "center": "x = 'x'.center(10**9)",
    "zfill": "x = 'x'.zfill(10**9)",
    "join_huge": "s = 'x' * 900000\nt = ','.join([s, s, s])",
    "replace_growth": "s = 'x' * 1000\nfor i in range(10):\n    s = s.replace('x', 'xxxx')",
    "range_huge": "r = range(10**12)",
    "list_of_huge_range": "x = list(range(10**9))",
    "dict_fromkeys_huge_range": "d = dict.fromkeys(range(10**9))",
    "str_doubling": "s = 'x'\nfor i in range(100):\n    s = s + s",
    "list_extend_doubling": "l = [0]\nfor i in range(100):\n    l.extend(l)",
    "list_slice_assign_doubling": "l = [0]\nfor i in range(100):\n    l[:0] = l",
    "star_unpack_doubling": "l = [0]\nfor i in range(100):\n    l = [*l, *l]",
    "fstring_width": "x = f'{1:>1000000000}'",
    "fstring_nested_width": "w = 10**9\nx = f'{1:>{w}}'",
    "percent_format_width": "x = '%1000000000d' % 1",
    "str_of_shared_sublists": "a = ['x' * 100000] * 10\nb = [a] * 10\ns = str(b)",
    "decimal_fixed_point_digits": "x = f'{decimal(\"1e999999\"):f}'",
    "int_from_huge_decimal": "x = int(decimal('1e999999'))",
    "many_big_strings_in_process": "a = 'x' * 900000\nb = 'y' * 900000",
    "many_big_strings_in_a_loop": "l = []\nfor i in range(100000):\n    l.append('x' * 1000 + str(i))",
    "namespace_output_too_big": "a = []\nfor i in range(2000):\n    a.append('x' * 999)",
    # loops, recursion, time
    "while_true": "while True:\n    pass",
    "iter_sentinel_loop": "for x in iter(int, 1):\n    pass",
    "loop_over_growing_list": "l = [1]\nfor x in l:\n    l.append(x)",
    "nested_comprehension": "x = [i * j for i in range(100000) for j in range(100000)]",
    "recursion": "def f():\n    return f()\nf()",
    "lambda_recursion": "f = lambda: f()\nf()",
    "catastrophic_regex": "m = matches('(a+)+$', 'a' * 5000 + 'b')",
    "polynomial_regex_times_out": "m = matches('a*a*a*a*a*a*a*a*b', 'a' * 9000)",
    "deeply_nested_expression": "x = " + "-" * 5000 + "1",
    "huge_source": "x = 1\n" * 20000,
    "many_callbacks": "for i in range(100000):\n    note(i)",
    # what crosses the boundary
    "record_holds_a_function": "record.count = len",
    "record_private_attribute": "record._values = {}",
    "write_to_library_function": "len.x = 1",
    "write_to_exception_class": "ValueError.x = 1",
    "callback_gets_a_function": "note(len)",
    "callback_returns_host_object": "h = host()",
}

# payloads that need the given names; the rest run with none
NAMES = {"record": lambda: Record(count=1), "note": lambda: (lambda value: None),
         "host": lambda: (lambda: json), "json": lambda: json}


def names_for(source: str) -> dict:
    return {name: make() for name, make in NAMES.items() if name in source}


@pytest.fixture(scope="module", autouse=True)
def warm_pool():
    run("for i in range(1):\n    pass", {})  # start the zygote outside the timed cases
    yield


@pytest.mark.parametrize("source", ESCAPES.values(), ids=ESCAPES.keys())
def test_escape_is_refused_within_a_second(source):
    names = names_for(source)
    start = time.perf_counter()
    with pytest.raises(RuleError):
        run(source, names)
    assert time.perf_counter() - start < 1


@pytest.mark.parametrize("key", ["__builtins__", "_getattr_", "_mul_", "ValueError", "not an identifier"])
def test_names_cannot_replace_the_sandbox_own(key):
    with pytest.raises(RuleViolation):
        run("x = 1", {key: {}})


def test_the_corpus_is_large_and_each_shape_is_refused_for_its_reason():
    assert len(ESCAPES) >= 40
    kinds = {"cve_2023_41039_str_format_attribute_walk": RuleViolation, "str_repeat_10_10": RuleLimit,
             "while_true": RuleLimit, "polynomial_regex_times_out": RuleTimeout,
             "except_exception_swallows_loop_limit": RuleLimit, "bare_except": RuleViolation,
             "frappe_json_codecs_open": RuleViolation, "nfkc_normalised_dunder": RuleViolation}
    for name, kind in kinds.items():
        # A roomy time limit, so a busy machine cannot turn a loop limit (about 30 ms of
        # counting) into a timeout: the reason is what this test checks.
        limit = 50 if kind is RuleTimeout else 2000
        with pytest.raises(kind):
            run(ESCAPES[name], names_for(ESCAPES[name]), time_limit_ms=limit)


def test_after_the_corpus_the_process_and_the_pool_are_healthy():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for source in ESCAPES.values():
        with pytest.raises(RuleError):
            run(source, names_for(source))
    assert run("x = 1 + 1", {}) == {"x": 2}
    assert run("total = 0\nfor i in range(4):\n    total += i", {})["total"] == 6
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 100, f"the server process grew by {grown_mb:.0f} MB"
