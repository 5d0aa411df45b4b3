"""The package's structure: no import cycle, the CLI on top, exit statuses that agree."""

from __future__ import annotations

import ast
import re
import typing
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "batchthumb"
README = Path(__file__).parent.parent / "README.md"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph() -> dict[str, set[str]]:
    """Every batchthumb module -> the batchthumb modules it imports, lazily or not.

    Importing ``a.b.c`` also runs the package ``a.b``, unless the importer is inside it
    (then ``a.b`` is already running: the usual package layout, not a cycle).
    Imports inside functions and under ``TYPE_CHECKING`` count: a cycle hidden by a lazy
    import is still a cycle.
    """
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
            for target in targets:
                parts = target.split(".")
                for end in range(2, len(parts) + 1):  # the module and the packages it runs
                    candidate = ".".join(parts[:end])
                    inside = name.startswith(candidate + ".")
                    if candidate in modules and candidate != name and not inside:
                        graph[name].add(candidate)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    visiting: list[str] = []
    done: set[str] = set()

    def visit(node: str) -> list[str] | None:
        if node in visiting:
            return [*visiting[visiting.index(node) :], node]
        if node in done:
            return None
        visiting.append(node)
        for target in sorted(graph[node]):
            cycle = visit(target)
            if cycle:
                return cycle
        visiting.pop()
        done.add(node)
        return None

    for node in sorted(graph):
        cycle = visit(node)
        if cycle:
            return cycle
    return None


def test_the_package_has_no_import_cycle() -> None:
    graph = import_graph()
    assert "batchthumb.models" in graph["batchthumb.stores.s3"]  # the graph sees real edges
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle or [])


def test_the_cycle_finder_finds_a_lazy_cycle() -> None:
    # The check above would pass vacuously if the finder could not see one.
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


ENTRY_POINTS = {"batchthumb.__main__", "batchthumb.django.cli"}
"""The command lines: ``batchthumb`` and ``manage.py batchthumb`` (whose Django command imports
``batchthumb.django.cli`` and nothing else of the package)."""


def test_nothing_below_the_command_line_imports_it() -> None:
    graph = import_graph()
    importers = sorted(name for name, targets in graph.items() if "batchthumb.cli" in targets)
    assert importers == sorted(ENTRY_POINTS)
    entry = sorted(name for name, targets in graph.items() if "batchthumb.django.cli" in targets)
    assert entry == ["batchthumb.django.management.commands.batchthumb"]


def test_only_the_database_module_talks_to_asyncpg() -> None:
    users = sorted(
        module_name(path)
        for path in PACKAGE.rglob("*.py")
        if re.search(r"^\s*(import asyncpg|from asyncpg)", path.read_text(), re.M)
    )
    assert users == ["batchthumb.database", "batchthumb.demo"]  # the demo creates its sample table


def test_the_readme_and_docs_point_only_inside_the_repository() -> None:
    """A user or contributor has only the repository: every path named resolves inside it."""
    root = README.parent
    documents = [README, *sorted((root / "docs").rglob("*.md"))]
    assert len(documents) >= 3
    for document in documents:
        text = document.read_text()
        assert "../shared" not in text, document.name
        targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
        for target in targets:
            if re.match(r"[a-z]+://", target):
                continue  # a web page
            resolved = (document.parent / target).resolve()
            assert resolved.is_relative_to(root.resolve()), (document.name, target)
            assert resolved.exists(), (document.name, target)


LIBRARY_MODULES = {
    "batchthumb.django.sorl",
    "batchthumb.django.easy_thumbnails",
    "batchthumb.django.imagekit",
    "batchthumb.django.versatileimagefield",
    "batchthumb.django.advance_thumbnail",
    "batchthumb.django.wagtail",
    "batchthumb.django.wagtail_rules",
}
LIBRARY_TYPES = (
    "SorlRendition",
    "EasyThumbnailsRendition",
    "ImagekitRendition",
    "VersatileImageRendition",
    "AdvanceThumbnailRendition",
    "WagtailRendition",
)
JOBS = {
    "batchthumb.generate",
    "batchthumb.purge",
    "batchthumb.adopt",
    "batchthumb.verify",
    "batchthumb.uploads",
    "batchthumb.jobs",
    "batchthumb.lifecycle",
    "batchthumb.pipeline",
    "batchthumb.manifest",
    "batchthumb.cli",
    "batchthumb.demo",
}


def test_library_modules_are_reached_only_through_the_registry() -> None:
    """Outside ``batchthumb/django/`` nothing imports a library's module or tests a library's
    type: the generic code calls the ``Library`` protocol and never names a library."""
    graph = import_graph()
    assert set(graph) >= LIBRARY_MODULES  # the graph sees the modules
    outside = {name: targets for name, targets in graph.items() if not name.startswith("batchthumb.django")}
    importers = sorted(name for name, targets in outside.items() if targets & LIBRARY_MODULES)
    assert importers == [], importers
    typed = []
    for path in PACKAGE.rglob("*.py"):
        name = module_name(path)
        if name.startswith("batchthumb.django"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            called = isinstance(node, ast.Call) and getattr(node.func, "id", None) == "isinstance"
            if called and any(kind in ast.unparse(node) for kind in LIBRARY_TYPES):
                typed.append(f"{name}:{node.lineno}")
    assert typed == [], typed


def test_the_library_package_imports_no_job() -> None:
    graph = import_graph()
    inside = {
        name: targets
        for name, targets in graph.items()
        if name.startswith("batchthumb.django") and name not in ENTRY_POINTS
    }
    assert len(inside) >= 7
    offenders = {name: sorted(targets & JOBS) for name, targets in inside.items() if targets & JOBS}
    assert offenders == {}, offenders


def test_specs_dispatch_to_the_libraries() -> None:
    """At most 3 ``isinstance`` in specs.py, none of them on a library's type."""
    source = (PACKAGE / "specs.py").read_text()
    assert source.count("isinstance") <= 3
    assert not any(kind in source for kind in LIBRARY_TYPES)


def test_every_registered_library_is_a_config_choice() -> None:
    """The config's preset renditions and ``[django.*]`` sections come from the registry: a
    library's module is all it takes."""
    from pydantic import TypeAdapter, ValidationError

    from batchthumb.config import AnyRendition, DjangoConfig
    from batchthumb.django import LIBRARIES

    adapter: TypeAdapter[object] = TypeAdapter(AnyRendition)
    for name, library in LIBRARIES.items():
        assert typing.get_args(library.rendition_model.model_fields["preset"].annotation) == (name,)
        with pytest.raises(ValidationError) as refused:
            adapter.validate_python({"preset": name, "no_such_option": 1})
        assert {error["loc"][0] for error in refused.value.errors()} == {name}  # its own model judged it
        if library.settings_model is not None:
            section = DjangoConfig().section(name, library.settings_model)
            assert section == library.settings_model()
    with_settings = {name for name, library in LIBRARIES.items() if library.settings_model is not None}
    assert set(DjangoConfig.model_fields) == with_settings


def test_the_config_module_names_no_library() -> None:
    source = (PACKAGE / "config.py").read_text()
    from batchthumb.django import LIBRARIES

    for name in LIBRARIES:
        assert f'"{name}"' not in source, name
    for kind in LIBRARY_TYPES:
        assert kind not in source, kind
