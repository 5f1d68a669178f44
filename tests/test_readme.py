"""The README's examples run as written, and what it says about set-up and precision holds."""

import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def test_readme_python_blocks_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README.md has no python examples"
    for block in blocks:
        exec(compile(block, str(README), "exec"), {})


def test_readme_setup_is_two_commands_that_ci_runs():
    # .ci/run reads the first bash block and runs its commands in a fresh environment.
    first = re.search(r"```bash\n(.*?)```", README.read_text(), flags=re.S).group(1)
    commands = [line for line in first.splitlines() if line.strip()]
    assert len(commands) == 2, commands
    assert "jaxconv demo" in commands[0] and "pytest" in commands[1]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "README.md" in ci and "venv" in ci and "mktemp" in ci


def test_readme_links_stay_inside_the_repository():
    text = README.read_text()
    assert "../" not in text
    for target in re.findall(r"\]\(([^)#]+)\)", text):
        if "://" not in target:
            assert (ROOT / target).exists(), target


_TOUR = """
import numpy as np, scipy.signal, scipy.stats, jaxconv
photo = jaxconv.default_image()
grid = np.mgrid[-3:3:.2, -3:3:.2]
kernel = jaxconv.gaussian_kernel([[1, .5], [.5, 1]], grid=grid, normalize=False)
out = jaxconv.convolve2d(photo, kernel, mode="same")
pdf = scipy.stats.multivariate_normal([0, 0], [[1, .5], [.5, 1]]).pdf(np.dstack(grid))
ref = scipy.signal.convolve2d(photo, pdf, mode="same")
print(out.dtype, np.max(np.abs(np.asarray(out, np.float64) - ref)) / np.max(np.abs(ref)))
"""


@pytest.mark.parametrize(("x64", "dtype", "low", "high"), [
    ("0", "float32", 1e-8, 1e-6),  # the README: 3.2e-7
    ("1", "float64", 0.0, 1e-14),  # the README: 1.8e-15
])  # fmt: skip
def test_readme_precision_figures(x64, dtype, low, high):
    env = {**os.environ, "JAX_ENABLE_X64": x64, "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-c", _TOUR], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    got_dtype, rel = done.stdout.split()
    assert got_dtype == dtype
    assert low <= float(rel) <= high
