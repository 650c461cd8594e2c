"""The package's folders are layers: a module imports only from its own folder and the folders
below it (docs/architecture.md). This test reads every module's imports and fails on one that
reaches up."""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "sslkit"
# lower number = lower layer; folders of one rank do not import each other
RANK = {"util": 0, "sparsity": 1, "training": 1, "compaction": 2, "models": 2, "analysis": 3,
        "pipeline": 4, "results": 4, "experiments": 5, "reporting": 6, "app": 7}


def _imports(path: Path) -> set[str]:
    """The sslkit folders ``path`` imports from (``sslkit.x.y`` -> ``x``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else \
            [a.name for a in node.names] if isinstance(node, ast.Import) else []
        for name in names:
            parts = name.split(".")
            if parts[0] == "sslkit" and len(parts) > 1:
                found.add(parts[1])
            elif parts == ["sslkit"] and isinstance(node, ast.ImportFrom):
                found.update(a.name for a in node.names if a.name in RANK)
    return found


def test_every_module_lives_in_a_layer_folder():
    loose = [p.name for p in PACKAGE.glob("*.py") if p.name not in ("__init__.py", "__main__.py")]
    assert not loose, f"modules outside the layer folders: {loose}"
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"} == set(RANK)


def test_no_folder_imports_a_higher_one():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        if len(rel.parts) < 2:
            continue
        mine = rel.parts[0]
        for other in _imports(path) - {mine}:
            if other in RANK and RANK[other] >= RANK[mine]:
                wrong.append(f"{rel} ({mine}, layer {RANK[mine]}) imports {other} (layer {RANK[other]})")
    assert not wrong, "\n".join(wrong)


def test_the_check_sees_an_upward_import(tmp_path):
    """The rule would catch a model importing the pipeline."""
    bad = tmp_path / "m.py"
    bad.write_text("from sslkit.pipeline import store\nfrom sslkit import experiments\n")
    assert _imports(bad) == {"pipeline", "experiments"}
