"""What a fresh machine needs is declared, locked and run as the README says.

Each test guards one way the documented commands broke on a fresh machine: a module the
package imports that only a test extra installs, a dependency the lock does not pin, an env
that installs past the lock, and a CI script that no longer runs the README's command.
"""

from __future__ import annotations

import ast
import configparser
import os
import re
import subprocess
import sys
import tomllib
from functools import cache
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("simulator", "conformance")
OPTIONAL = {"playwright": "interop", "ray": "ray"}
"""Modules imported only by an optional feature (with a clear error without them) → their extra."""


@cache
def _pyproject() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _project() -> dict[str, object]:
    project = _pyproject()["project"]
    assert isinstance(project, dict)
    return project


def _runtime_requirements() -> list[Requirement]:
    return [Requirement(r) for r in _project()["dependencies"]]  # type: ignore[attr-defined]


def _applies(requirement: Requirement) -> bool:
    environment = {**default_environment(), "extra": ""}
    return requirement.marker is None or requirement.marker.evaluate(environment)


def _closure(requirements: list[Requirement]) -> set[str]:
    """The distributions a plain ``pip install callsim`` brings, by canonical name."""
    seen: set[str] = set()
    todo = [r for r in requirements if _applies(r)]
    while todo:
        name = canonicalize_name(todo.pop().name)
        if name in seen:
            continue
        seen.add(name)
        todo += [r for r in map(Requirement, metadata.requires(name) or []) if _applies(r)]
    return seen


def _imported_top_level_modules() -> set[str]:
    modules: set[str] = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    modules |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules.add(node.module.split(".")[0])
    return modules - set(sys.stdlib_module_names) - set(PACKAGES) - {"__future__"}


def test_every_imported_module_comes_with_the_plain_install() -> None:
    # `callsim conform` once died with "No module named 'pytest'": pytest was in the test extra.
    provided = _closure(_runtime_requirements())
    distributions = metadata.packages_distributions()
    missing = {
        module: distributions.get(module, ["(not installed)"])
        for module in _imported_top_level_modules() - set(OPTIONAL)
        if not any(canonicalize_name(d) in provided for d in distributions.get(module, []))
    }
    assert not missing, f"imported by the package but not brought by its dependencies: {missing}"
    extras = _project()["optional-dependencies"]
    assert isinstance(extras, dict)
    for module, extra in OPTIONAL.items():
        assert any(Requirement(r).name == module for r in extras[extra]), (module, extra)


def _locked() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if match := re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)", line):
            pins[canonicalize_name(match[1])] = match[2]
    return pins


def test_the_lock_pins_every_declared_dependency_and_tool() -> None:
    declared = [*_runtime_requirements()]
    extras = _project()["optional-dependencies"]
    assert isinstance(extras, dict)
    declared += [Requirement(r) for group in extras.values() for r in group]
    tools = (ROOT / "requirements" / "tools.in").read_text().splitlines()
    declared += [Requirement(line) for line in tools if line.strip() and not line.startswith("#")]
    pins = _locked()
    unpinned = sorted(
        r.name for r in declared if canonicalize_name(r.name) not in pins and r.name != "callsim"
    )
    assert not unpinned, f"run `tox -e lock`: not pinned in constraints.txt: {unpinned}"
    wrong = sorted(
        f"{r.name}=={pins[canonicalize_name(r.name)]} (wants {r.specifier})"
        for r in declared
        if canonicalize_name(r.name) in pins and pins[canonicalize_name(r.name)] not in r.specifier
    )
    assert not wrong, f"run `tox -e lock`: the lock contradicts pyproject.toml: {wrong}"


def test_every_tox_env_installs_from_the_lock() -> None:
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(ROOT / "tox.ini")
    assert "PIP_CONSTRAINT = {toxinidir}/constraints.txt" in tox["testenv"]["setenv"]
    for section in tox.sections():
        if section.startswith("testenv:") and section != "testenv:lock" and "setenv" in tox[section]:
            # An env with its own setenv must inherit the shared one, the lock with it.
            assert "{[testenv]setenv}" in tox[section]["setenv"], section


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## The two commands") :]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.DOTALL)[:2]
    return [next(line for line in b.splitlines() if not line.startswith("#")) for b in blocks]


def test_ci_runs_the_readme_test_command_exactly() -> None:
    main_job, tests = _readme_commands()
    for command in (main_job, tests):
        assert command.startswith("python3 -m venv .venv && . .venv/bin/activate && ")
        assert "-c constraints.txt" in command
    assert main_job.endswith("callsim run")
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert tests in ci, "the README's test command and .ci/run have drifted apart"


def _plain_install_pytest_plugins() -> list[str]:
    """The pytest plugins (entry points) a plain ``pip install callsim`` brings."""
    provided = _closure(_runtime_requirements()) | {"callsim"}
    return sorted(
        entry.value
        for distribution in metadata.distributions()
        if canonicalize_name(distribution.metadata["Name"]) in provided
        for entry in distribution.entry_points
        if entry.group == "pytest11"
    )


def test_callsim_conform_collects_with_only_the_plain_install_from_elsewhere(tmp_path: Path) -> None:
    # `callsim conform` once failed after the documented install: a check's marker came from a
    # plugin of the test extra, and the checkout's pyproject.toml (found through the editable
    # install) named another's options. Here only the plain install's plugins load (every
    # other one installed in this environment is kept out) and the run starts outside the
    # checkout; --strict-markers and --strict-config turn either fault into a failure.
    plugins = [arg for plugin in _plain_install_pytest_plugins() for arg in ("-p", plugin)]
    assert "conformance.plugin" in plugins and "pytest_timeout" in plugins, plugins
    cli = "import sys; from simulator.cli import main; sys.exit(main())"
    completed = subprocess.run(
        [sys.executable, "-c", cli, "conform", "--", *plugins, "--collect-only", "-q"],
        cwd=tmp_path,
        env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = completed.stdout[-3000:] + completed.stderr[-3000:]
    assert completed.returncode == 0, output
    assert re.search(r"^\d{3,} tests? collected", completed.stdout, re.MULTILINE), output
    assert "warning" not in output.lower(), output
