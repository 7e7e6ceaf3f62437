"""The web layer sits below the runtime: it asks what it needs through ``WebHost`` (defined in
``web/``) and never imports the layers above it, so it can be read, tested and hosted alone."""

from __future__ import annotations

import ast
from pathlib import Path

import aesoperator.web

WEB = Path(aesoperator.web.__file__).parent
ABOVE = ("runtime", "skills", "planning", "client", "store", "cli", "execution")


def _imports(path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ["aesoperator", "web"][: 2 - (node.level - 1)]
                name = ".".join([*base, *([node.module] if node.module else [])])
            else:
                name = node.module or ""
            found.add(name)
            found.update(f"{name}.{alias.name}" for alias in node.names)
    return found


def test_the_web_layer_never_imports_the_layers_above_it() -> None:
    modules = sorted(WEB.glob("*.py"))
    assert len(modules) > 10
    wrong = {
        f"{path.name}: {name}"
        for path in modules
        for name in _imports(path)
        if name.startswith(tuple(f"aesoperator.{layer}" for layer in ABOVE))
    }
    assert not wrong, f"web/ must ask through web/_host.py (WebHost), not import: {sorted(wrong)}"


def test_the_import_scan_sees_relative_imports() -> None:
    # The test above proves nothing unless ``from ..runtime import x`` is seen as runtime.
    probe = WEB / "_session.py"
    names = _imports(probe)
    assert "aesoperator.errors" in names
    assert "aesoperator.web._gate" in names
