"""Wire names cannot drift: the tables that live outside the C op table (`tlinfo --ops`, generated
from ir/tl_ops.def) are checked against it, entry by entry, and each failure names the entry.

  - the capture script (scripts/export_torchlean_graph.py, read with `ast`, never imported or
    edited): FORMAT, its parameter table _PARAM_SLOTS (inline key + params.bin name per slot), every
    tag it can emit (literal tags of _Builder.emit and of every helper that passes its argument on
    to emit), the field and payload keys of those emits, and every tag it compares n["kind"] with;
  - the test oracle (tests/py/oracle.py): PARAM_SLOTS, LEGACY, and the ops it evaluates.
"""
import ast
from pathlib import Path

import pytest

import oracle as O
from conftest import ROOT, exec_tags, legacy_tags, op_rows

SCRIPT = ROOT / "scripts" / "export_torchlean_graph.py"


def table_slots(row):
    """A table row's parameter slots in the capture/oracle form: ((inline key, "name_{}_fmt"), ...)."""
    return tuple((p["inline_key"], p["name"].replace("%lld", "{}")) for p in row["params"])


# ---------------------------------------------------------------------- the capture script, by ast
class ScriptTables:
    """What the capture script's source says about wire names (no import: the script stays the
    code under test and may need torch features this check does not)."""

    def __init__(self, path):
        self.path = Path(path)
        self.src = self.path.read_text()
        self.tree = ast.parse(self.src, str(path))
        self.parent = {}
        for node in ast.walk(self.tree):
            for ch in ast.iter_child_nodes(node):
                self.parent[ch] = node
        self.defs = {}
        for node in ast.walk(self.tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.defs.setdefault(node.name, []).append(node)

    # -- module-level literals
    def module_literal(self, name):
        for st in self.tree.body:
            if isinstance(st, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in st.targets):
                try:
                    return ast.literal_eval(st.value), st.lineno
                except ValueError:
                    pytest.fail(f"{self.path.name}:{st.lineno}: {name} is not a literal (ast.literal_eval "
                                f"cannot read it); keep it a plain literal so this test can check it")
        pytest.fail(f"{self.path.name} has no module-level `{name} = ...`: the wire-table test reads "
                    f"it from there (see the report on the minimal change)")

    # -- scopes
    def enclosing_functions(self, node):
        out = []
        p = self.parent.get(node)
        while p is not None:
            if isinstance(p, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                out.append(p)
            p = self.parent.get(p)
        return out            # innermost first

    @staticmethod
    def params_of(fn):
        a = fn.args
        return [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs]

    @staticmethod
    def callee(call):
        f = call.func
        return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None

    def arg_of(self, call, fn_name, pname):
        """The expression passed for parameter pname of function fn_name in call (or None)."""
        for kw in call.keywords:
            if kw.arg == pname:
                return kw.value
        fn = self.defs[fn_name][0]
        names = [x.arg for x in fn.args.posonlyargs + fn.args.args]
        if pname not in names:
            return None
        idx = names.index(pname)
        if names and names[0] in ("self", "cls") and isinstance(call.func, ast.Attribute):
            idx -= 1
        if idx < len(call.args) and not any(isinstance(a, ast.Starred) for a in call.args[:idx + 1]):
            return call.args[idx]
        return None

    def leaves(self, expr, seen=None):
        """The possible values of expr: str constants and Names (for the caller to resolve);
        ("?", node) for what cannot be read."""
        seen = set() if seen is None else seen
        if isinstance(expr, ast.Constant):
            return [] if expr.value is None else [expr]
        if isinstance(expr, ast.IfExp):
            return self.leaves(expr.body, seen) + self.leaves(expr.orelse, seen)
        if isinstance(expr, ast.BoolOp):
            return [x for v in expr.values for x in self.leaves(v, seen)]
        if isinstance(expr, ast.Attribute):     # x.attr: every `*.attr = value` in the script
            if ("attr", expr.attr) in seen:
                return []
            seen.add(("attr", expr.attr))
            vals = [st.value for st in ast.walk(self.tree) if isinstance(st, ast.Assign)
                    for t in st.targets if isinstance(t, ast.Attribute) and t.attr == expr.attr]
            if not vals:
                return [("?", expr)]
            return [x for v in vals for x in self.leaves(v, seen)]
        if isinstance(expr, ast.Name):
            return [expr]
        return [("?", expr)]

    def resolve_name(self, name_node):
        """A Name used as a tag: ("param", fn, pname) when it is a parameter of an enclosing
        function, else the leaves of its local assignments."""
        for fn in self.enclosing_functions(name_node):
            if name_node.id in self.params_of(fn):
                return ("param", fn, name_node.id)
            assigns = [st.value for st in ast.walk(fn) if isinstance(st, ast.Assign)
                       for t in st.targets if isinstance(t, ast.Name) and t.id == name_node.id]
            if assigns:
                return ("values", [x for v in assigns for x in self.leaves(v)])
        return ("values", [("?", name_node)])

    def tag_sites(self):
        """[(lineno, tag, call, callee)] for every literal tag reaching _Builder.emit, and
        [(lineno, text)] for tag arguments this reader cannot follow."""
        if "emit" not in self.defs:
            pytest.fail(f"{self.path.name} has no `def emit`: the wire-table test follows tags into it")
        taking = {"emit": "kind"}           # function name -> its tag parameter
        calls = [c for c in ast.walk(self.tree) if isinstance(c, ast.Call)]
        changed = True
        while changed:
            changed = False
            for c in calls:
                name = self.callee(c)
                if name not in taking:
                    continue
                e = self.arg_of(c, name, taking[name])
                for leaf in (self.leaves(e) if e is not None else []):
                    if isinstance(leaf, ast.Name):
                        r = self.resolve_name(leaf)
                        if r[0] == "param" and r[1].__class__ is not ast.Lambda and r[1].name not in taking:
                            taking[r[1].name] = r[2]
                            changed = True
        sites, unreadable = [], []
        for c in calls:
            name = self.callee(c)
            if name not in taking:
                continue
            e = self.arg_of(c, name, taking[name])
            if e is None:
                unreadable.append((c.lineno, ast.unparse(c)[:80]))
                continue
            stack = list(self.leaves(e))
            while stack:
                leaf = stack.pop()
                if isinstance(leaf, tuple):
                    unreadable.append((c.lineno, ast.unparse(leaf[1])[:80]))
                elif isinstance(leaf, ast.Constant):
                    if isinstance(leaf.value, str):
                        sites.append((c.lineno, leaf.value, c, name))
                    else:
                        unreadable.append((c.lineno, repr(leaf.value)))
                else:
                    r = self.resolve_name(leaf)
                    if r[0] == "values":
                        stack.extend(r[1])
        return sites, unreadable, taking

    def dict_keys(self, expr, call):
        """(keys, complete) of a dict argument: a literal, or a local name built from literals."""
        if expr is None:
            return set(), True
        if isinstance(expr, ast.Constant) and expr.value is None:
            return set(), True
        if isinstance(expr, ast.Call) and self.callee(expr) == "dict" and not expr.args:
            return {kw.arg for kw in expr.keywords if kw.arg}, all(kw.arg for kw in expr.keywords)
        if isinstance(expr, ast.Dict):
            keys = {k.value for k in expr.keys if isinstance(k, ast.Constant)}
            return keys, all(isinstance(k, ast.Constant) for k in expr.keys)
        if isinstance(expr, ast.Name):
            fns = self.enclosing_functions(call)
            if not fns:
                return set(), False
            keys, complete, found = set(), True, False
            for st in ast.walk(fns[0]):
                if isinstance(st, ast.Assign):
                    for t in st.targets:
                        if isinstance(t, ast.Name) and t.id == expr.id:
                            k, c = self.dict_keys(st.value, call) if isinstance(st.value, (ast.Dict, ast.Call)) \
                                else (set(), False)
                            keys |= k
                            complete &= c
                            found = True
                        elif isinstance(t, ast.Subscript) and isinstance(t.value, ast.Name) and \
                                t.value.id == expr.id:
                            if isinstance(t.slice, ast.Constant):
                                keys.add(t.slice.value)
                            else:
                                complete = False
                elif isinstance(st, ast.Call) and isinstance(st.func, ast.Attribute) and \
                        isinstance(st.func.value, ast.Name) and st.func.value.id == expr.id:
                    complete = False      # .update(...) etc.: keys not all known
            return keys, complete and found
        return set(), False

    def kind_comparisons(self):
        """[(lineno, literal)] for every string compared with x["kind"] (==, !=, in, not in)."""
        out = []

        def is_kind(e):
            return isinstance(e, ast.Subscript) and isinstance(e.slice, ast.Constant) and e.slice.value == "kind"

        def strs(e):
            if isinstance(e, ast.Constant) and isinstance(e.value, str):
                return [e.value]
            if isinstance(e, (ast.Tuple, ast.List, ast.Set)):
                return [x.value for x in e.elts if isinstance(x, ast.Constant) and isinstance(x.value, str)]
            return []
        for c in ast.walk(self.tree):
            if isinstance(c, ast.Compare):
                sides = [c.left] + list(c.comparators)
                if any(is_kind(s) for s in sides):
                    for s in sides:
                        out += [(c.lineno, v) for v in strs(s)]
        return out


def param_table_problems(script):
    slots, line = script.module_literal("_PARAM_SLOTS")
    rows = op_rows()
    bad = []
    for tag, entry in slots.items():
        if tag not in rows:
            bad.append(f"line {line}: _PARAM_SLOTS[{tag!r}]: {tag!r} is not a tag of the op table")
            continue
        want = table_slots(rows[tag])
        got = tuple(tuple(x) for x in entry)
        if got != want:
            bad.append(f"line {line}: _PARAM_SLOTS[{tag!r}] = {got} but tlinfo --ops has {want}")
    return bad


def emitted_tag_problems(script):
    rows = op_rows()
    current_exec = set(exec_tags())
    legacy = legacy_tags()
    slots, _ = script.module_literal("_PARAM_SLOTS")
    sites, unreadable, _ = script.tag_sites()
    bad = [f"line {ln}: a tag argument this test cannot follow: {t} (make it a string literal, or a "
           f"parameter passed on to emit)" for ln, t in unreadable]
    emitted = {t for _, t, _, _ in sites}
    if not {"input", "const", "linear", "conv"} <= emitted:      # the reader itself works
        bad.append(f"the reader found only these emitted tags: {sorted(emitted)}")
    emit_params = script.params_of(script.defs["emit"][0])
    for ln, tag, call, callee in sites:
        where = f"line {ln} ({callee})"
        if tag in legacy:
            bad.append(f"{where}: emits the legacy spelling {tag!r} (write {legacy[tag]!r})")
            continue
        if tag not in rows:
            bad.append(f"{where}: emits {tag!r}, which is not a tag of the op table")
            continue
        if tag not in current_exec:
            bad.append(f"{where}: emits {tag!r}, which the runtime does not execute")
        if slots.get(tag, ()) and not rows[tag]["params"]:
            bad.append(f"{where}: {tag!r} has parameter slots in _PARAM_SLOTS but none in the op table")
        if rows[tag]["params"] and tag not in slots:
            bad.append(f"{where}: emits {tag!r} (parameters {table_slots(rows[tag])}) without a "
                       f"_PARAM_SLOTS entry")
        if callee != "emit":
            continue
        attrs = {a["name"]: a for a in rows[tag]["attrs"]}
        if "fields" in emit_params:
            keys, complete = script.dict_keys(script.arg_of(call, "emit", "fields"), call)
            # node-level fields every node may carry (import/graph_json.c reads them for any tag)
            for k in sorted(keys - set(attrs) - {"value_kind", "tuple_shapes"}):
                bad.append(f"{where}: {tag} field {k!r} is not an attribute of {tag} in the op table "
                           f"({sorted(attrs)})")
            if complete:
                for k in sorted(a for a, spec in attrs.items() if spec["required"] and a not in keys):
                    bad.append(f"{where}: {tag} is emitted without its required attribute {k!r}")
        if "payload" in emit_params:
            keys, complete = script.dict_keys(script.arg_of(call, "emit", "payload"), call)
            inline = {p["inline_key"] for p in rows[tag]["params"]}
            if tag == "multihead_attention":
                # lowered on import: import/mha_lower.c reads the four projections' payloads itself
                # (TorchLean's q_/k_/v_/out_ weight and bias), they are not slots of the op table
                inline = {f"{p}_{w}" for p in ("q", "k", "v", "out") for w in ("weight", "bias")}
            for k in sorted(keys - inline):
                bad.append(f"{where}: {tag} payload key {k!r} is not an inline key of {tag} ({sorted(inline)})")
            if complete and keys and keys != inline:
                bad.append(f"{where}: {tag} payload keys {sorted(keys)} != the op table's {sorted(inline)}")
    return bad


def kind_comparison_problems(script):
    rows = op_rows()
    return [f"line {ln}: compares a node's kind with {t!r}, which is not a tag of the op table"
            for ln, t in script.kind_comparisons() if t not in rows and t not in legacy_tags()]


@pytest.fixture(scope="module")
def script():
    return ScriptTables(SCRIPT)


def test_script_format(script):
    fmt, line = script.module_literal("FORMAT")
    assert fmt == "torchlean.ir.v1", f"{SCRIPT.name}:{line}: FORMAT = {fmt!r}"


def test_script_param_table_matches_op_table(script):
    bad = param_table_problems(script)
    assert not bad, f"{SCRIPT.name}:\n" + "\n".join(bad)


def test_script_emitted_tags_fields_and_payloads(script):
    bad = emitted_tag_problems(script)
    assert not bad, f"{SCRIPT.name}:\n" + "\n".join(bad)


def test_script_kind_comparisons_name_real_tags(script):
    bad = kind_comparison_problems(script)
    assert not bad, f"{SCRIPT.name}:\n" + "\n".join(bad)


def _mutated(tmp_path, *edits):
    src = SCRIPT.read_text()
    for old, new in edits:
        assert old in src, f"the drift test's anchor {old!r} is no longer in {SCRIPT.name}"
        src = src.replace(old, new, 1)
    p = tmp_path / "drifted.py"
    p.write_text(src)
    return ScriptTables(p)


def test_drift_in_a_copy_of_the_script_is_named(tmp_path):
    """The checks above can fail: a copy of the script with drifted entries is reported entry by entry."""
    s = _mutated(tmp_path, ('"linear_{}_W"', '"linear_{}_weight"'), ('"layernorm_{}_beta"', '"ln_{}_beta"'),
                 ('b.emit("mse_loss"', 'b.emit("mse"'), ('{"axis1": ', '{"dim1": '),
                 ('n["kind"] == "input"', 'n["kind"] == "inputs"'))
    pt = param_table_problems(s)
    assert any("_PARAM_SLOTS['linear']" in m and "linear_{}_weight" in m and "linear_{}_W" in m for m in pt), pt
    assert any("_PARAM_SLOTS['layernorm']" in m and "ln_{}_beta" in m for m in pt), pt
    et = emitted_tag_problems(s)
    assert any("emits 'mse', which is not a tag of the op table" in m for m in et), et
    assert any("transpose field 'dim1' is not an attribute" in m for m in et), et
    assert any("transpose is emitted without its required attribute 'axis1'" in m for m in et), et
    kc = kind_comparison_problems(s)
    assert any("compares a node's kind with 'inputs'" in m for m in kc), kc


# ---------------------------------------------------------------------- the oracle
def test_oracle_param_table_matches_op_table():
    rows = op_rows()
    bad = []
    for tag, entry in O.PARAM_SLOTS.items():
        if tag not in rows:
            bad.append(f"oracle.PARAM_SLOTS[{tag!r}]: not a tag of the op table")
        elif tuple(entry) != table_slots(rows[tag]):
            bad.append(f"oracle.PARAM_SLOTS[{tag!r}] = {tuple(entry)} but tlinfo --ops has {table_slots(rows[tag])}")
    for tag, row in rows.items():
        if row["params"] and tag not in O.PARAM_SLOTS:
            bad.append(f"op {tag} has parameters {table_slots(row)} but no oracle.PARAM_SLOTS entry")
    assert not bad, "\n".join(bad)


def test_oracle_legacy_table_matches_op_table():
    want = legacy_tags()
    bad = [f"oracle.LEGACY[{old!r}] = {cur!r} but tlinfo --ops has {want.get(old)!r}"
           for old, cur in O.LEGACY.items() if want.get(old) != cur]
    bad += [f"legacy spelling {old!r} (of {cur!r}) is missing from oracle.LEGACY"
            for old, cur in want.items() if old not in O.LEGACY]
    assert not bad, "\n".join(bad)


def test_oracle_evaluates_exactly_the_executable_ops():
    rows = op_rows()
    ex = exec_tags()
    bad = [f"op {t} is executable but the oracle has no semantics for it" for t in ex if t not in O.OPS]
    bad += [f"the oracle evaluates {t!r}, which is not an executable tag of the op table "
            f"({'not executable' if t in rows else 'unknown'})" for t in sorted(O.OPS) if t not in ex]
    assert not bad, "\n".join(bad)
