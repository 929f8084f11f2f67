"""The shape of the code holds: apps import only apps below them, and no module grows past ~500 lines.

The layers, lowest first (docs/architecture.md#layout):

    core < tenants < integrations < agents < calls < billing < voice < telephony < voiceapp (the wiring)

Every import counts, those inside functions included. Where a lower app must reach a higher one, the higher
app registers a hook at start-up (a carrier's dialer, billing's admission and metering, plan limits,
retention rules, admin links), or the lower one reads the higher one's rows through the foreign keys that
point at it.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ["core", "tenants", "integrations", "agents", "calls", "billing", "voice", "telephony", "voiceapp"]
APPS = set(LAYERS) | {"tts_node"}
SKIP = {"migrations", "tests", "__pycache__"}
MAX_LINES = 510


def _modules(app: str):
    for path in sorted((ROOT / app).rglob("*.py")):
        if not SKIP.intersection(path.relative_to(ROOT).parts):
            yield path


def _imported_apps(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        found |= {name.split(".")[0] for name in names} & APPS
    return found


def _graph() -> dict[str, dict[str, list[str]]]:
    """app -> imported app -> the modules that import it."""
    graph: dict[str, dict[str, list[str]]] = {app: {} for app in APPS}
    for app in APPS:
        for path in _modules(app):
            for other in _imported_apps(path) - {app}:
                graph[app].setdefault(other, []).append(str(path.relative_to(ROOT)))
    return graph


GRAPH = _graph()


@pytest.mark.parametrize("app", LAYERS)
def test_an_app_imports_only_apps_below_it(app):
    allowed = set(LAYERS[: LAYERS.index(app)])
    wrong = {other: modules for other, modules in GRAPH[app].items() if other not in allowed}
    assert not wrong, f"{app} imports apps above it or beside it: {wrong}"


def test_the_core_imports_no_domain_app():
    assert GRAPH["core"] == {}


def test_tenants_import_only_the_core():
    assert set(GRAPH["tenants"]) <= {"core"}


def test_calls_import_neither_telephony_nor_the_voice_runtime():
    assert not {"telephony", "voice"} & set(GRAPH["calls"])


def test_no_app_imports_another_that_imports_it_back():
    loops = sorted((a, b) for a in APPS for b in GRAPH[a] if a in GRAPH.get(b, {}))
    assert loops == []


def test_the_tts_node_imports_nothing_of_the_platform():
    assert GRAPH["tts_node"] == {}


def test_no_module_is_over_about_500_lines():
    long = {
        str(path.relative_to(ROOT)): lines
        for app in APPS
        for path in _modules(app)
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}, f"split these modules: {long}"


def test_the_graph_sees_imports_inside_functions(tmp_path):
    """The walk is not fooled by an import written inside a function (the old loops hid there)."""
    module = tmp_path / "module.py"
    module.write_text("def f():\n    from telephony import services\n    import voice.session\n")
    assert _imported_apps(module) == {"telephony", "voice"}
