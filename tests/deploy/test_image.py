"""cluster/Dockerfile without a Docker engine: hadolint, what the final stage holds, and its
install step run in a fresh virtual environment from exactly the files the image copies."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from scaleml.cluster import WORKER_MALLOC_ENVIRON

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "cluster" / "Dockerfile"
HADOLINT = Path(sys.executable).parent / "hadolint"


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in joined.splitlines()
        if line.strip()
    ]


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for instruction in _instructions(DOCKERFILE.read_text()):
        if instruction[0] == "FROM":
            stages.append([])
        stages[-1].append(instruction)
    return stages


def _hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HADOLINT), "--no-color", str(path)], capture_output=True, text=True, check=False
    )


def test_hadolint_passes_with_no_ignored_rule(tmp_path: Path) -> None:
    assert "ignore" not in DOCKERFILE.read_text().lower()
    result = _hadolint(DOCKERFILE)
    assert result.returncode == 0, result.stdout
    # and it does fail a Dockerfile with the usual mistakes
    bad = tmp_path / "Dockerfile"
    bad.write_text(DOCKERFILE.read_text() + "RUN apt-get install curl\n")
    assert _hadolint(bad).returncode == 1


def test_final_stage_is_slim_non_root_without_compilers_or_healthcheck() -> None:
    build, final = _stages()
    assert build[0][1].startswith("python:3.11-slim") and " AS build" in build[0][1]
    assert final[0][1].startswith("python:3.11-slim")
    text = " ".join(args for _, args in final)
    for tool in ("apt-get", "gcc", "build-essential", "g++", "make "):
        assert tool not in text
    assert "HEALTHCHECK" not in {name for name, _ in final}
    user = next(args for name, args in final if name == "USER")
    assert re.fullmatch(r"[1-9]\d+:[1-9]\d+", user)
    assert ("COPY", "--from=build /opt/scaleml /opt/scaleml") in final
    env = dict(re.findall(r"(\w+)=(\S+)", " ".join(a for n, a in final if n == "ENV")))
    # the malloc thresholds measured for scaleml's workers, not Dask's 65536
    assert {k: v for k, v in env.items() if k.startswith("MALLOC_")} == WORKER_MALLOC_ENVIRON


@pytest.mark.slow
def test_install_step_builds_scaleml_from_the_files_the_image_copies(tmp_path: Path) -> None:
    build = _stages()[0]
    copies = [args.split() for name, args in build if name == "COPY"]
    context = tmp_path / "context"
    context.mkdir()
    allowed = _dockerignore_allow_list()
    for *sources, _ in copies:
        for source in sources:
            assert source.rstrip("/") in allowed, f"{source} is excluded by .dockerignore"
            origin = ROOT / source
            if origin.is_dir():
                shutil.copytree(
                    origin, context / source, ignore=shutil.ignore_patterns("__pycache__")
                )
            else:
                shutil.copy(origin, context / source)
    run = next(args for name, args in build if name == "RUN")
    venv = tmp_path / "opt-scaleml"
    create, install = (step.strip().replace("/opt/scaleml", str(venv)) for step in run.split("&&"))
    subprocess.run(create, shell=True, cwd=context, check=True)
    # the dependencies come from this environment (no download); scaleml itself is built
    # from the copied files
    _share_dependencies(venv)
    result = subprocess.run(
        install, shell=True, cwd=context, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import scaleml.cli; print(scaleml.cli.__file__)"],
        capture_output=True, text=True, check=True, cwd=tmp_path,
    )  # fmt: skip
    assert where.stdout.startswith(str(venv))
    version = subprocess.run(
        [str(venv / "bin" / "scaleml"), "--version"], capture_output=True, text=True, check=True
    )
    assert "0.1.0" in version.stdout


def _dockerignore_allow_list() -> set[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in lines  # everything else is excluded
    return {line[1:].rstrip("/") for line in lines if line.startswith("!")}


def _share_dependencies(venv: Path) -> None:
    """Make every package of this environment but scaleml importable in ``venv``."""
    ours = Path(sysconfig.get_paths()["purelib"])
    shared = venv.parent / "shared-site-packages"
    shared.mkdir()
    for entry in ours.iterdir():
        if not entry.name.lower().startswith(("scaleml", "__editable__")):
            (shared / entry.name).symlink_to(entry)
    theirs = next((venv / "lib").glob("python3*/site-packages"))
    (theirs / "shared.pth").write_text(f"{shared}\n")
