"""Business rules: the sandbox pack rule code runs in, and the small library it may call.

    engine.py   when pack rules run, and what their code sees (built on sandbox)
    sandbox.py  compile_rule / run_compiled / run: the one door, and Record
    policy.py   compile time: what rule code may say, rewritten so every risky operation
                goes through a guard
    guards.py   run time: the guards the rewritten code calls, and the attribute whitelist
    meter.py    run time: what one run has used and may use, and how a guard stops a run
    plain.py    plain data: what may cross into and out of the sandbox, measured and copied
    runner.py   one run of compiled code, wherever it runs, and what went wrong
    library.py  LIBRARY: the vetted functions (dates, decimals, strings, regex)
    record.py   Record: a record as rule code sees it (attribute read and write)
    pool.py     the pre-forked worker processes that run code which can loop
    worker.py   the zygote that forks workers, and the loop each worker runs
    wire.py     what crosses the pipe, and the restricted unpickler that reads it
    errors.py   RuleError and its kinds

Importing this package imports nothing else; `sandbox` pulls in RestrictedPython.
"""
