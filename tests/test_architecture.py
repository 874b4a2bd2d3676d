"""The data flows one way: audio -> features -> model -> decoding -> outputs, with training, corpus preparation and
the entry points on top. Walks every import in asr/ and demo/ (lazy ones inside functions too) and fails on a module
that imports one of a higher layer, and on any import cycle. docs/architecture.md draws the same layers."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Lowest first. A module may import modules of its own layer or of lower ones.
LAYERS = [
    ("foundation", ["asr.errors", "asr.atomic", "asr.text", "asr.transcript", "asr.batching", "asr.config",
                    "asr.stop_signals"]),
    ("audio and manifests", ["asr.audio", "asr.manifest"]),
    ("signal: features, augmentation, segmentation", ["asr.features", "asr.augment", "asr.segmenter"]),
    ("network", ["asr.model", "asr.network", "asr.onnx_network"]),
    ("decoding", ["asr.decoding", "asr.alignment"]),
    ("trained models on disk", ["asr.checkpoint", "asr.release", "asr.export"]),
    ("inference and outputs", ["asr.transcribe", "asr.evaluate", "asr.writers", "asr.written", "asr.punctuation",
                               "asr.dictation"]),
    ("training", ["asr.data", "asr.device_data", "asr.distributed", "asr.train"]),
    ("corpus preparation", ["asr.corpora"]),
    ("adaptation", ["asr.adapt"]),
    ("entry points", ["asr", "asr.cli", "asr_demo"]),
]


def module_name(path: Path) -> str:
    """The name a file is imported by: demo/ installs as asr_demo (pyproject.toml)."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    parts = ("asr_demo", *parts[1:]) if parts[0] == "demo" else parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """The project modules a file imports, at module level or inside functions."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
                found |= {f"{module}.{a.name}" for a in node.names} if node.module is None else {module}
            elif node.module:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return {m for m in found if m.split(".")[0] in ("asr", "asr_demo") and m != name}


def layer(module: str) -> int:
    """The layer of the longest prefix that names the module (asr.decoding.beam is in asr.decoding's)."""
    matches = [(len(prefix), index) for index, (_, prefixes) in enumerate(LAYERS) for prefix in prefixes
               if module == prefix or module.startswith(prefix + ".") and prefix != "asr"]  # the package alone
    assert matches, f"{module} is in no layer: add it to LAYERS and to docs/architecture.md"
    return max(matches)[1]


def graph() -> dict[str, set[str]]:
    files = sorted((ROOT / "asr").rglob("*.py")) + sorted((ROOT / "demo").rglob("*.py"))
    return {module_name(f): imports(f) for f in files}


def test_no_module_imports_up_the_data_flow():
    upward = [f"{module} ({LAYERS[layer(module)][0]}) imports {target} ({LAYERS[layer(target)][0]})"
              for module, targets in graph().items() for target in sorted(targets) if layer(target) > layer(module)]
    assert not upward, "\n".join(upward)


def test_no_import_cycles():
    edges = graph()
    # An import of a name from a package's module counts as importing that module (asr.decoding.lm etc.).
    edges = {m: {t if t in edges else t.rpartition(".")[0] for t in targets} for m, targets in edges.items()}
    visiting, done, cycles = set(), set(), []

    def visit(module: str, path: list[str]) -> None:
        if module in visiting:
            cycles.append(" -> ".join(path[path.index(module):] + [module]))
            return
        if module in done or module not in edges:
            return
        visiting.add(module)
        for target in sorted(edges[module]):
            # A package's __init__ importing its own submodules is how packages re-export; not a cycle of concern.
            if not target.startswith(module + "."):
                visit(target, path + [module])
        visiting.discard(module)
        done.add(module)

    for module in sorted(edges):
        visit(module, [])
    assert not cycles, "\n".join(cycles)
