"""The test harness that runs inside the sandbox, next to the candidate (standard library only).

rlvr never imports this for use: `code_harness.py` reads it as text and ships it with every functional or
assert-style job. A bootstrap `main.py` reads it, deletes both files, and executes it in a private namespace
whose builtins are a copy taken before any candidate code ran. The harness then:

1. reads its whole stdin: the per-run secret on the first line, the job as JSON after it (the candidate later
   finds its stdin at end of file);
2. compiles the test code (asserts `a == b` are rewritten to record both sides for the feedback), decodes the
   functional arguments, imports the modules the tests use and snapshots their namespaces;
3. keeps the real stdout on a private descriptor and points descriptor 1 at stderr, so the candidate's prints
   never mix with the records;
4. runs the prelude and the candidate in a fresh module namespace, then each test under a SIGALRM timer, with
   the functions under test wrapped so that a result that is not plain data fails the test;
5. writes one record per step, `\\n<secret> <repr of a tuple of plain data>\\n`, and exits.

The parent decides every verdict from these records: see `rlvr.verifiers.code` for what a candidate can still do.
"""


def _harness():  # one closure keeps every reference private
    import ast
    import builtins
    import json
    import os
    import signal
    import sys
    import time
    import types

    # Everything needed later, taken before the candidate can replace module attributes.
    write, read, dup, dup2, exit_now = os.write, os.read, os.dup, os.dup2, os._exit
    clock = time.perf_counter
    setitimer, set_handler = signal.setitimer, signal.signal
    itimer_real, sigalrm = signal.ITIMER_REAL, signal.SIGALRM
    set_max_digits = getattr(sys, "set_int_max_str_digits", None)
    module_table = sys.modules
    module_type = types.ModuleType
    pristine = dict(builtins.__dict__)
    dict_get, dict_keys, dict_values, dict_items = dict.get, dict.keys, dict.values, dict.items
    type_name = type.__dict__["__name__"].__get__
    traceback_of = BaseException.__dict__["__traceback__"].__get__
    missing = object()
    big = 10**4000

    chunks = []
    while True:
        chunk = read(0, 1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
    secret, _, payload = b"".join(chunks).partition(b"\n")
    job = json.loads(payload.decode("utf-8"))
    del chunks, payload
    per_test_s = float(job["per_test_s"])
    total_s = float(job["total_s"])
    report_fd = dup(1)
    dup2(2, 1)

    def emit(*record):
        if set_max_digits is not None:
            set_max_digits(0)
        line = b"\n" + secret + b" " + repr(record).encode("utf-8", "backslashreplace") + b"\n"
        while line:
            line = line[write(report_fd, line) :]

    def finish(count):
        emit("done", count)
        exit_now(0)

    class Timeout(BaseException):
        pass

    class NotPlain(BaseException):
        pass

    def on_alarm(signum, frame):
        raise Timeout()

    def run_timed(function, seconds):
        """(status, value or exception, seconds taken); status ok/timeout/not_plain/memory/error."""
        start = clock()
        try:
            try:
                set_handler(sigalrm, on_alarm)
                setitimer(itimer_real, max(seconds, 0.001))
                value = function()
            finally:
                setitimer(itimer_real, 0)
        except Timeout as exc:
            return "timeout", exc, clock() - start
        except NotPlain as exc:
            return "not_plain", exc, clock() - start
        except MemoryError as exc:
            return "memory", exc, clock() - start
        except BaseException as exc:
            return "error", exc, clock() - start
        elapsed = clock() - start
        return ("timeout" if elapsed > seconds else "ok"), value, elapsed

    extra_types = []  # exact stdlib types accepted as results besides plain data (job["result_types"])
    deque_type = None

    def plain_problem(value):
        """(None, needs_encoding) for plain data, else (what is wrong, False). Runs no code of the value's
        classes; `needs_encoding`: big integers or accepted stdlib types inside."""
        stack, seen, count, special = [(value, 0)], set(), 0, False
        while stack:
            item, depth = stack.pop()
            kind = type(item)
            if kind is int:
                if item > big or item < -big:
                    special = True
                continue
            if (
                kind is float
                or kind is str
                or kind is bool
                or item is None
                or kind is complex
                or kind is bytes
            ):
                continue
            if not (kind is list or kind is tuple or kind is set or kind is frozenset or kind is dict):
                for extra in extra_types:
                    if kind is extra:
                        special = True
                        break
                else:
                    return "an object of type " + type_name(kind), False
                if not (issubclass(kind, dict) or kind is deque_type):
                    continue  # an accepted leaf, such as re.Match
            if id(item) in seen:
                continue
            seen.add(id(item))
            if depth >= 100:
                return "a value nested more than 100 deep", False
            depth += 1
            if issubclass(kind, dict):
                stack.extend([(key, depth) for key in dict_keys(item)])
                stack.extend([(entry, depth) for entry in dict_values(item)])
            else:
                stack.extend([(entry, depth) for entry in item])
            count += len(item)
            if count > 20_000_000:
                return "a value too large to check", False
        return None, special

    def encode(value):
        """Plain data for the record: big integers tagged, accepted dict and deque types as dicts and lists."""
        kind = type(value)
        if kind is int:
            return ("__int__", format(value, "x")) if value > big or value < -big else value
        if kind is list or kind is deque_type:
            return [encode(item) for item in value]
        if kind is tuple:
            return tuple(encode(item) for item in value)
        if issubclass(kind, dict):
            return {encode(k): encode(v) for k, v in dict_items(value)}
        if kind is set or kind is frozenset:
            return kind(encode(item) for item in value)
        if kind is float or kind is str or kind is bool or value is None or kind is complex or kind is bytes:
            return value
        raise NotPlain("a result of type " + type_name(kind) + " cannot be sent back")

    def show(value, limit=300):
        problem, _ = plain_problem(value)
        if problem is not None:
            return "<" + problem + ">"
        try:
            text = repr(value)
        except ValueError:
            text = "<an integer too long to print>"
        return text if len(text) <= limit else text[: limit // 2] + " ... " + text[-limit // 2 :]

    sources = {}

    def describe(exc):
        """'Type: message (where)' for an exception, without trusting its class."""
        name = type_name(type(exc))
        try:
            message = str(exc)
            if type(message) is not str:
                message = ""
        except BaseException:
            message = "<unprintable message>"
        text = name + (": " + message[:500] if message else "")
        where, tb = None, traceback_of(exc)
        while tb is not None:
            code = tb.tb_frame.f_code
            if code.co_filename in sources:
                where = (code.co_filename, tb.tb_lineno)
            tb = tb.tb_next
        if where is not None:
            lines = sources[where[0]]
            line = lines[where[1] - 1].strip() if 0 < where[1] <= len(lines) else ""
            text += " (" + where[0] + ", line " + str(where[1]) + (": " + line[:200] if line else "") + ")"
        return text

    def in_tests(exc):
        """Whether the innermost frame of `exc` that the harness knows is test code (not the candidate's)."""
        where, tb = None, traceback_of(exc)
        while tb is not None:
            if tb.tb_frame.f_code.co_filename in sources:
                where = tb.tb_frame.f_code.co_filename
            tb = tb.tb_next
        return where is not None and (where == "<setup>" or where.startswith("<test "))

    # -- the tests, prepared before the candidate runs ------------------------------------------------------
    kind = job["kind"]
    code = job["code"]

    class RecordEquality(ast.NodeTransformer):
        def visit_Assert(self, node):
            self.generic_visit(node)
            test = node.test
            if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq):
                call = ast.Call(ast.Name("__rlvr_eq__", ast.Load()), [test.left, test.comparators[0]], [])
                node.test = ast.fix_missing_locations(ast.copy_location(call, test))
            return node

    def compile_tests(source, filename):
        sources[filename] = source.split("\n")
        tree = RecordEquality().visit(ast.parse(source, filename))
        return compile(ast.fix_missing_locations(tree), filename, "exec")

    try:
        if kind == "assert":
            setup_code = compile_tests(job["setup"], "<setup>")
            test_codes = [
                compile_tests(source, "<test " + str(number) + ">")
                for number, source in enumerate(job["tests"], 1)
            ]
            count = len(test_codes)
        else:
            arguments = [[json.loads(line) for line in text.split("\n")] for text in job["tests"]]
            count = len(arguments)
        prelude = compile(job["prelude"], "<prelude>", "exec")
    except BaseException as exc:
        emit("setup", "bad_tests", {"error": describe(exc)})
        finish(0)

    for dotted in job["result_types"]:
        module_name, _, attribute = dotted.rpartition(".")
        try:
            __import__(module_name)
            accepted = getattr(module_table[module_name], attribute)
        except BaseException:
            continue
        if isinstance(accepted, type):
            extra_types.append(accepted)
            if module_name not in job["modules"]:
                job["modules"].append(module_name)
            if dotted == "collections.deque":
                deque_type = accepted

    watched = []
    for name in job["modules"]:
        try:
            __import__(name)
        except BaseException:
            continue
        module = dict_get(module_table, name)
        if type(module) is not module_type or name in ("sys", "builtins"):
            continue
        namespace = module.__dict__
        snapshot = dict(namespace)
        classes = [(vars(v), dict(vars(v))) for v in dict_values(snapshot) if isinstance(v, type)]
        watched.append((name, module, namespace, snapshot, classes))

    def tampered():
        for name, module, namespace, snapshot, classes in watched:
            if dict_get(module_table, name) is not module:
                return "sys.modules[" + repr(name) + "] was replaced"
            for key, value in dict_items(snapshot):
                if dict_get(namespace, key, missing) is not value:
                    return name + "." + key + " was changed"
            for proxy, class_snapshot in classes:
                for key, value in dict_items(class_snapshot):
                    if proxy.get(key, missing) is not value:
                        return "an attribute " + key + " of a class in " + name + " was changed"
        return None

    # -- the candidate --------------------------------------------------------------------------------------
    solution = module_type("solution")
    candidate = solution.__dict__
    candidate["__builtins__"] = builtins
    candidate["__file__"] = "solution.py"
    module_table["solution"] = solution
    sources["solution.py"] = code.split("\n")
    try:
        compiled = compile(code, "solution.py", "exec")
    except BaseException as exc:
        emit("setup", "syntax_error", {"error": describe(exc)})
        finish(0)
    status, value, elapsed = run_timed(
        lambda: (exec(prelude, candidate), exec(compiled, candidate)), per_test_s
    )
    spent = elapsed
    if status != "ok":
        emit("setup", status, {"error": describe(value) if value is not None else "", "time": elapsed})
        finish(0)
    problem = tampered()
    if problem is not None:
        emit("setup", "tampering", {"error": problem})
        finish(0)

    stop_first = bool(job["stop_first"])
    ran = 0

    def budget():
        return min(per_test_s, total_s - spent)

    if kind == "functional":
        fn_name = job["fn_name"]
        has_class = "class Solution" in code
        if has_class and "Solution" not in candidate:
            emit("setup", "error", {"error": "the code defines no class Solution"})
            finish(0)
        if not has_class and fn_name not in candidate:
            emit("setup", "error", {"error": "the code defines no function " + fn_name})
            finish(0)
        emit("setup", "ok", {"time": elapsed})
        for index in range(count):
            if budget() <= 0:
                emit("test", index, "timeout", {"error": "the total time budget is spent"})
                break
            args = arguments[index]

            def call(args=args):
                target = getattr(candidate["Solution"](), fn_name) if has_class else candidate[fn_name]
                return target(*args)

            status, value, elapsed = run_timed(call, budget())
            spent += elapsed
            ran += 1
            info = {"time": elapsed}
            if status == "ok":
                problem, special = plain_problem(value)
                if problem is None and special:
                    try:
                        value = encode(value)
                    except NotPlain as exc:
                        problem = describe(exc)
                    except RecursionError:
                        problem = "a value nested too deeply"
                if problem is None:
                    info["value"] = value
                else:
                    status, info["error"] = "not_plain", fn_name + " returned " + problem + ", not plain data"
            elif value is not None:
                info["error"] = describe(value)
            emit("test", index, "returned" if status == "ok" else status, info)
            if stop_first and status != "ok":
                break
        finish(ran)

    # kind == "assert": a namespace of its own for the tests, on a copy of the untouched builtins.
    entry_points = job["entry_points"]
    violations = []

    def wrap(function, name):
        def checked(*args, **kwargs):
            result = function(*args, **kwargs)
            problem, _ = plain_problem(result)
            if problem is not None:
                violations.append(name + " returned " + problem + ", not plain data")
                raise NotPlain(violations[-1])
            return result

        return checked

    last_eq = [None, None, False]

    def record_eq(left, right):
        equal = left == right
        last_eq[0], last_eq[1], last_eq[2] = left, right, not equal
        return equal

    tests = {}
    for key, value in dict_items(candidate):
        if type(key) is not str:
            continue
        if key not in pristine or key in entry_points:
            tests[key] = value
    for name, module, _, _, _ in watched:
        if "." not in name:
            tests[name] = module
    for name in entry_points:
        value = dict_get(candidate, name, missing)
        if value is not missing and callable(value) and not issubclass(type(value), type):
            tests[name] = wrap(value, name)
    tests["__builtins__"] = dict(pristine)
    tests["__name__"] = "__rlvr_tests__"
    tests["__rlvr_eq__"] = record_eq
    status, value, elapsed = run_timed(lambda: exec(setup_code, tests), per_test_s)
    spent += elapsed
    problem = tampered()
    if problem is not None:
        emit("setup", "tampering", {"error": problem})
        finish(0)
    if status != "ok":
        emit(
            "setup",
            status,
            {"error": "the test setup failed: " + (describe(value) if value is not None else "")},
        )
        finish(0)
    emit("setup", "ok", {"time": spent})
    for index in range(count):
        if budget() <= 0:
            emit("test", index, "timeout", {"error": "the total time budget is spent"})
            break
        del violations[:]
        last_eq[2] = False
        status, value, elapsed = run_timed(lambda code=test_codes[index]: exec(code, tests), budget())
        spent += elapsed
        ran += 1
        if violations and status in ("ok", "error"):
            status = "not_plain"
        info = {"time": elapsed}
        if status == "not_plain":
            info["error"] = violations[0] if violations else describe(value)
        elif status != "ok" and value is not None:
            info["error"] = describe(value)
            if type(value) is AssertionError and in_tests(value):
                info["assert"] = True
                if last_eq[2]:
                    info["got"], info["expected"] = show(last_eq[0]), show(last_eq[1])
        problem = tampered()
        if problem is not None:
            emit("test", index, "tampering", {"error": problem})
            finish(ran)
        emit("test", index, "passed" if status == "ok" else status, info)
        if stop_first and status != "ok":
            break
    finish(ran)


if __name__ == "__rlvr_harness__":
    _harness()
