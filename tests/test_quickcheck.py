"""The quick schema checker (runtime/quickcheck.py) must never call valid what jsonschema, with
the same schemas, calls invalid; and it should accept the real configs (that is its point)."""
import copy
import json
import random
from pathlib import Path

import pytest

from runtime import quickcheck, validate

CORPUS = Path(__file__).parent / "schema_corpus"
VALID = sorted((CORPUS / "valid").glob("*.json"))
INVALID = sorted((CORPUS / "invalid").glob("*.json"))


def jsonschema_valid(doc) -> bool:
    return not any(True for _ in validate._validator("config-schema.json").iter_errors(doc))


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_real_configs_are_surely_valid(path):
    assert quickcheck.surely_valid(json.loads(path.read_text()))


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_invalid_configs_are_never_valid(path):
    try:
        doc = json.loads(path.read_text())
    except ValueError:
        pytest.skip("not JSON: the parser refuses it before any schema")
    assert not quickcheck.surely_valid(doc)


REPLACEMENTS = ["", "x", "relative/path", "/abs", -1, 0, 1, 2 ** 32, 2 ** 64, 1.5, 1.0, True,
                False, None, [], [1], ["x"], {}, {"x": 1}, "CAP_X", "RLIMIT_X", "1.0.0", "2.0.0",
                "rwm", "rwx", "MB:0=1", "2MB", "0MB"]


def mutants(doc, rng, n):
    """Copies of doc with one node replaced, removed, or given an unknown member."""
    paths = []

    def walk(node, path):
        paths.append(path)
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, path + [k])
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, path + [i])
    walk(doc, [])
    for _ in range(n):
        path = rng.choice(paths[1:])
        m = copy.deepcopy(doc)
        parent = m
        for p in path[:-1]:
            parent = parent[p]
        action = rng.random()
        if action < 0.7:
            parent[path[-1]] = copy.deepcopy(rng.choice(REPLACEMENTS))
        elif action < 0.85:
            del parent[path[-1]]
        elif isinstance(parent[path[-1]], dict):
            parent[path[-1]]["unknownField"] = 1
        else:
            continue
        yield m


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_never_laxer_than_jsonschema_on_mutants(path):
    rng = random.Random(path.name)
    doc = json.loads(path.read_text())
    lax = []
    for m in mutants(doc, rng, 120):
        if quickcheck.surely_valid(m) and not jsonschema_valid(m):
            lax.append(m)
    assert not lax, f"quickcheck accepted {len(lax)} configs jsonschema rejects, e.g. {lax[0]}"


def test_validate_config_does_not_import_jsonschema_for_a_new_valid_config(tmp_path):
    """A config never seen before (what containerd and podman send for every container) is
    validated without jsonschema's ~85 ms import."""
    import subprocess
    import sys
    config = json.loads((CORPUS / "valid" / "podman-default.json").read_text())
    config["hostname"] = "never-seen-" + tmp_path.name
    (tmp_path / "c.json").write_text(json.dumps(config))
    code = ("import sys; sys.path.insert(0, %r); from runtime.validate import validate_config; "
            "validate_config(open(%r, 'rb').read(), %r); print('jsonschema' in sys.modules)"
            % (str(Path(__file__).parent.parent), str(tmp_path / "c.json"), str(tmp_path / "v")))
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"
