"""Mutation testing of the contract-bearing code, with the conformance suite as the test.

``tox -e mutation`` (not in the default env list) runs this. cosmic-ray makes the mutants
(one changed operator, constant, comparison… each) of ``simulator/sdk``, ``simulator/chat``
and the contract-bearing modules of ``simulator/server``, and runs ``pytest
conformance/checks`` against each: a mutant the suite fails is *killed*, one it passes
*survives*. The score is killed / (killed + survived).

cosmic-ray edits the mutated file in place while its test runs, so everything happens in a
private copy of the working tree (a temporary folder): the tree other work shares is never
touched, and the copy comes first on ``PYTHONPATH``, before the editable install.

    python tools/mutation.py --sample 40             # a sampled run (seeded: the same mutants each time)
    python tools/mutation.py --sample 0              # every mutant (hours)
    python tools/mutation.py --sample 40 --checks-from bfeb452   # the same mutants, the suite of then
    python tools/mutation.py --sample 200 --at d6e3139            # the tree of a commit, not the working tree

It writes ``mutation.json`` (the score and every survivor with its diff) to ``--out``.
Survivors are triaged by hand in ``docs/mutation-survivors.toml``; a check written for one
is verified against it with ``--verify``: the survivor's diff (from ``--out``'s
``mutation.json``) applied to a private copy, the check must pass without it and fail with it.

    python tools/mutation.py --at d6e3139 --out DIR \
        --verify "simulator/sdk/client.py:219:core/ReplaceAndWithOr#2" \
        --check conformance/checks/session/test_lifecycle.py  # the module, or one check's node id
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Final

ROOT: Final = Path(__file__).resolve().parents[1]
MUTATED: Final = (
    "simulator/sdk",
    "simulator/chat",
    # The server's contract-bearing modules: tokens (§G), call transitions and routing (§F),
    # the REST shapes the SDK reads, rooms and signalling (who hears of a join or leave), the
    # call socket. Media forwarding (sfu, forwarder), the XMPP door and admission limits carry
    # no contract item the suite judges.
    "simulator/server/tokens.py",
    "simulator/server/calls.py",
    "simulator/server/rest.py",
    "simulator/server/rooms.py",
    "simulator/server/signalling.py",
    "simulator/server/chat.py",
)
EXCLUDED_OPERATORS: Final = (
    # Renaming or inserting variables mostly makes code that cannot run; they multiply the
    # mutants tenfold for little information.
    "core/VariableInserter",
    "core/VariableReplacer",
)
TEST_COMMAND: Final = (
    f"{sys.executable} -m pytest conformance/checks -x -q -p no:cacheprovider --model-examples 5"
)
TIMEOUT: Final = 240.0
"""Seconds per mutant; a mutant that hangs the suite that long counts as killed (cosmic-ray)."""


def extract(work: Path, revision: str, *paths: str) -> None:
    """``paths`` (default: everything) as they were at ``revision``, into ``work``."""
    archive = subprocess.run(
        ["git", "archive", revision, *paths], cwd=ROOT, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(work)], input=archive, check=True)


def copy_tree(work: Path, at: str | None, checks_from: str | None) -> None:
    """The working tree's files (tracked and new, not ignored) into ``work``, or with ``at``
    the tree of that revision (a run whose survivors' line numbers are that commit's); with
    ``checks_from``, ``conformance/`` as it was at that revision."""
    if at:
        extract(work, at)
    else:
        listed = subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard", "-z"],
            cwd=ROOT, capture_output=True, check=True, text=True,
        ).stdout.split("\0")  # fmt: skip
        for name in filter(None, listed):
            source = ROOT / name
            if source.is_file():
                target = work / name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
    if checks_from:
        shutil.rmtree(work / "conformance")
        extract(work, checks_from, "conformance")


def source(at: str | None) -> str:
    """What a run mutated: the commit ``at`` names, or the working tree at HEAD (and whether
    it had uncommitted changes)."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, check=True, text=True
        ).stdout.strip()

    if at:
        return git("rev-parse", f"{at}^{{commit}}")
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return f"working tree at {git('rev-parse', 'HEAD')}" + (" with uncommitted changes" if dirty else "")


def config(work: Path) -> Path:
    path = work / "mutation.toml"
    modules = ", ".join(json.dumps(m) for m in MUTATED)
    operators = ", ".join(json.dumps(o) for o in EXCLUDED_OPERATORS)
    path.write_text(
        "[cosmic-ray]\n"
        f"module-path = [{modules}]\n"
        f"timeout = {TIMEOUT}\n"
        "excluded-modules = []\n"
        f"test-command = {json.dumps(TEST_COMMAND)}\n\n"
        '[cosmic-ray.distributor]\nname = "local"\n\n'
        f"[cosmic-ray.filters.operators-filter]\nexclude-operators = [{operators}]\n"
    )
    return path


def environment(work: Path) -> dict[str, str]:
    # The copy before the editable install (whose finder comes after sys.path); the suite
    # derandomised, as in CI.
    return {**os.environ, "PYTHONPATH": str(work), "HYPOTHESIS_PROFILE": "ci"}


Span = tuple[int, int, int, int]
"""(line, column) to (end line, end column) of an annotation."""


def annotation_spans(path: Path) -> list[Span]:
    """Where the annotations of ``path`` are.

    Every module has ``from __future__ import annotations``: annotations are never
    evaluated, so a mutant inside one (``X | None`` → ``X ** None``) is equivalent by
    construction, and is not run.
    """
    spans: list[Span] = []
    for node in ast.walk(ast.parse(path.read_text())):
        annotation: ast.expr | None = None
        if isinstance(node, ast.arg | ast.AnnAssign):
            annotation = node.annotation
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            annotation = node.returns
        if annotation is not None:
            end = (annotation.end_lineno or annotation.lineno, annotation.end_col_offset or 0)
            spans.append((annotation.lineno, annotation.col_offset, *end))
    return spans


def inside(position: tuple[int, int], spans: list[Span]) -> bool:
    """Whether ``position`` (line, column) falls in one of ``spans``."""
    return any((span[0], span[1]) <= position < (span[2], span[3]) for span in spans)


def sample(work: Path, session: Path, size: int, seed: int) -> tuple[int, int, int]:
    """Skip the mutants inside annotations, then all but ``size`` of the rest, chosen with
    ``seed`` from a stable order (0: keep all).

    The same source and seed give the same mutants, whatever the suite: a score before and
    after new checks compares like with like. Returns (mutants, in annotations, kept).
    """
    from cosmic_ray.work_db import WorkDB, use_db  # type: ignore[import-untyped]  # noqa: PLC0415
    from cosmic_ray.work_item import WorkerOutcome, WorkResult  # type: ignore[import-untyped]  # noqa: PLC0415

    skip = WorkResult(worker_outcome=WorkerOutcome.SKIPPED)
    spans: dict[str, list[Span]] = {}

    def in_annotation(item: Any) -> bool:
        mutation = item.mutations[0]
        module = str(mutation.module_path)
        if module not in spans:
            spans[module] = annotation_spans(work / module)
        return inside(tuple(mutation.start_pos), spans[module])

    with use_db(str(session), WorkDB.Mode.open) as db:
        pending = sorted(
            db.pending_work_items,
            key=lambda item: [(str(m.module_path), m.operator_name, m.occurrence) for m in item.mutations],
        )
        equivalent = {item.job_id for item in pending if in_annotation(item)}
        db.set_multiple_results(sorted(equivalent), skip)
        rest = [item for item in pending if item.job_id not in equivalent]
        if size <= 0 or size >= len(rest):
            return len(pending), len(equivalent), len(rest)
        keep = {item.job_id for item in random.Random(seed).sample(rest, size)}
        db.set_multiple_results([item.job_id for item in rest if item.job_id not in keep], skip)
        return len(pending), len(equivalent), size


def summarise(session: Path) -> dict[str, Any]:
    from cosmic_ray.work_db import WorkDB, use_db  # noqa: PLC0415
    from cosmic_ray.work_item import TestOutcome, WorkerOutcome  # noqa: PLC0415

    killed = survived = incompetent = 0
    survivors: list[dict[str, Any]] = []
    with use_db(str(session), WorkDB.Mode.open) as db:
        for item, result in db.completed_work_items:
            if result.worker_outcome == WorkerOutcome.SKIPPED:
                continue
            mutation = item.mutations[0]
            broken = result.worker_outcome != WorkerOutcome.NORMAL
            if broken or result.test_outcome == TestOutcome.INCOMPETENT:
                incompetent += 1
            elif result.test_outcome == TestOutcome.KILLED:
                killed += 1
            else:
                survived += 1
                survivors.append(
                    {
                        "id": f"{mutation.module_path}:{mutation.start_pos[0]}:{mutation.operator_name}"
                        f"#{mutation.occurrence}",
                        "module": str(mutation.module_path),
                        "line": mutation.start_pos[0],
                        "operator": mutation.operator_name,
                        "occurrence": mutation.occurrence,
                        "diff": result.diff,
                    }
                )
    judged = killed + survived
    return {
        "killed": killed,
        "survived": survived,
        "incompetent": incompetent,
        "score": round(killed / judged, 4) if judged else None,
        "survivors": sorted(survivors, key=lambda s: (s["module"], s["line"], s["id"])),
    }


def imports_the_copy(work: Path, env: dict[str, str]) -> None:
    where = subprocess.run(
        [sys.executable, "-c", "import simulator as s, conformance as c; print(s.__file__, c.__file__)"],
        cwd=work, env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    if str(work) not in where:
        raise SystemExit(f"the copy is not what the tests import: {where}")


def verify(args: argparse.Namespace) -> int:
    """Run ``--check`` on a private copy without the survivor ``--verify``, then with it
    applied (its diff from ``--out``'s ``mutation.json``): killed if it passes, then fails.

    The copy is taken as the run's (``--at``), with ``conformance/`` from the working tree:
    the check being verified is usually not committed yet."""
    result = json.loads((args.out / "mutation.json").read_text())
    found = [s for s in result["survivors"] if s["id"] == args.verify]
    if not found:
        raise SystemExit(f"{args.verify} is not a survivor in {args.out / 'mutation.json'}")
    if not args.at:
        print("note: without --at (the run's commit), the diff may not apply where lines moved", flush=True)
    work = Path(tempfile.mkdtemp(prefix="callsim-verify-"))
    try:
        copy_tree(work, args.at, None)
        if args.at:
            shutil.rmtree(work / "conformance")
            shutil.copytree(
                ROOT / "conformance", work / "conformance", ignore=shutil.ignore_patterns("__pycache__")
            )
        env = environment(work)
        imports_the_copy(work, env)
        command = [sys.executable, "-m", "pytest", *args.check, "-q", "-p", "no:cacheprovider"]
        before = subprocess.run(command, cwd=work, env=env, check=False).returncode
        if before != 0:
            print(f"the check fails without the mutant (pytest exit {before}): fix the check first")
            return 2
        # cosmic-ray's diff ends without a newline, which git apply reads as a cut patch.
        patch = found[0]["diff"].rstrip("\n") + "\n"
        subprocess.run(["git", "apply", "-p1"], cwd=work, input=patch, text=True, check=True)
        after = subprocess.run(command, cwd=work, env=env, check=False).returncode
        verdict = "killed" if after != 0 else "survived"
        print(f"{args.verify}: {verdict} by {' '.join(args.check)}")
        return 0 if after != 0 else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="callsim-mutation-"))
    try:
        copy_tree(work, args.at, args.checks_from)
        cfg = config(work)
        env = environment(work)
        imports_the_copy(work, env)
        session = work / "session.sqlite"
        for command in (
            ["cosmic-ray", "init", str(cfg), str(session)],
            ["cr-filter-operators", str(session), str(cfg)],
            ["cr-filter-pragma", str(session)],
        ):
            subprocess.run(command, cwd=work, env=env, check=True, capture_output=True)
        total, annotations, kept = sample(work, session, args.sample, args.seed)
        print(
            f"mutants: {total} (after filters), {annotations} in annotations (equivalent, not run);"
            f" running {kept}, seed {args.seed}",
            flush=True,
        )
        started = time.monotonic()
        subprocess.run(["cosmic-ray", "exec", str(cfg), str(session)], cwd=work, env=env, check=True)
        elapsed = time.monotonic() - started
        summary = summarise(session)
        return {
            "mutants": total,
            "in_annotations": annotations,
            "sampled": kept,
            "seed": args.seed,
            "source": source(args.at),
            "checks_from": args.checks_from or "working tree",
            "seconds": round(elapsed, 1),
            "seconds_per_mutant": round(elapsed / kept, 1) if kept else None,
            "modules": list(MUTATED),
            "excluded_operators": list(EXCLUDED_OPERATORS),
            "test_command": TEST_COMMAND.replace(sys.executable, "python"),
            **summary,
        }
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sample", type=int, default=40, help="mutants to run, chosen with --seed (0: all)")
    parser.add_argument("--seed", type=int, default=13, help="the sample's seed")
    parser.add_argument("--checks-from", default=None, metavar="REV", help="conformance/ as at this revision")
    parser.add_argument("--out", type=Path, default=ROOT / ".tox" / "mutation", help="mutation.json's folder")
    parser.add_argument("--keep", action="store_true", help="keep the private copy (its session.sqlite)")
    parser.add_argument(
        "--at", default=None, metavar="REV", help="mutate the tree of this revision, not the working tree"
    )
    parser.add_argument(
        "--verify", default=None, metavar="SURVIVOR", help="a survivor's id in --out's mutation.json"
    )
    parser.add_argument(
        "--check", nargs="+", default=[], metavar="NODE", help="with --verify: the check(s) to run"
    )
    args = parser.parse_args(argv)
    if args.verify:
        if not args.check:
            parser.error("--verify needs --check")
        return verify(args)
    result = run(args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "mutation.json").write_text(json.dumps(result, indent=2) + "\n")
    score = "n/a" if result["score"] is None else f"{100 * result['score']:.1f} %"
    print(
        f"score {score}: {result['killed']} killed, {result['survived']} survived, "
        f"{result['incompetent']} incompetent, of {result['sampled']} run ({result['mutants']} mutants); "
        f"{result['seconds']} s → {args.out / 'mutation.json'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
