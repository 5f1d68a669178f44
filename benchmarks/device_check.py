"""The accelerator check: GPU-relevant tests and the convolution, filter and fitting benchmarks.

One command for the first session that gets a GPU, so that it spends its time measuring::

    python benchmarks/device_check.py                      # on the GPU machine: ~5-7 min
    python benchmarks/device_check.py --device cpu --quick # the same stages, tiny sizes (~1 min)

Stages, each a subprocess of the chosen interpreter (``--python`` or ``--venv``; this script
itself needs only the standard library), timed, and given a share of ``--budget-s`` (time a
stage leaves unused passes to the later ones; a stage that overruns its share is stopped and
recorded as timed out, keeping the cases it finished, ``"complete": false``):

1. ``probe`` — versions, JAX's backend and devices, whether ``jax.devices("gpu")`` works (with
   ``--device gpu``, the default, the check stops here with exit status 2 and says why when it
   does not: no internet is needed to find out), ``nvidia-smi``;
2. ``tests`` — the GPU-relevant test files (convolution, methods, filters, edges, Gaussians,
   fitting, sharding), verbose, so a stopped run still shows which tests passed;
3. ``bench_convolve`` — peers include ``jax.lax.conv_general_dilated`` (cuDNN on a GPU),
   ``jax.scipy.signal`` and scipy on the host CPU;
4. ``bench_filters`` and 5. ``bench_fit``.

Every benchmark records, per entry, the first call of a freshly jitted function (compile
included), one call on new values (and, for the Gaussians, with a new σ), and the warm median.

Everything goes to ``--out``, else ``$OUT`` (the device tool brings back what is written there),
else ``./device-check``: ``summary.json`` (status, versions, device kind, every stage's command,
exit status and time, the test counts, and each benchmark's results and largest disagreement with
its scipy reference), each benchmark's full JSON, and one log per stage. jaxconv is imported from
this checkout (``PYTHONPATH``), so it need not be installed; JAX with CUDA must be (``pip install
-U "jax[cuda12]"``). Exit status: 0 all stages passed, 1 a stage failed or timed out, 2 no GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TEST_FILES = (
    "test_methods.py",
    "test_convolve.py",
    "test_filters.py",
    "test_edges.py",
    "test_gaussian.py",
    "test_fit.py",
    "test_lstsq.py",
    "test_sharded.py",
)
QUICK_TESTS = ("tests/test_methods.py", "-k", "kernel_gradient or cost_model")
# name -> (arguments, quick arguments, share of the budget)
BENCHMARKS = {
    "bench_convolve": ([], ["--quick", "--sizes", "48", "--repeats", "1"], 3.5),
    "bench_filters": ([], ["--quick", "--sizes", "40", "--repeats", "1"], 1.5),
    "bench_fit": ([], ["--quick", "--problems", "single", "--size", "64", "--repeats", "1"], 2.5),
}
TESTS_SHARE = 2.5
MIN_STAGE_S = 10.0

PROBE = r"""
import importlib.metadata as md, json, platform, shutil, subprocess, sys
out = {"python": platform.python_version(), "executable": sys.executable, "packages": {}}
for pkg in ("jaxconv", "jax", "jaxlib", "jax-cuda12-plugin", "jax-cuda12-pjrt",
            "jax-cuda13-plugin", "jax-cuda13-pjrt", "numpy", "scipy", "opencv-python-headless",
            "optax", "pytest", "hypothesis"):
    try:
        out["packages"][pkg] = md.version(pkg)
    except md.PackageNotFoundError:
        out["packages"][pkg] = None
try:
    import jax
    devices = jax.devices()
    out.update(backend=jax.default_backend(), devices=[str(d) for d in devices],
               device_kind=devices[0].device_kind, device_count=len(devices))
    try:
        gpus = jax.devices("gpu")
        out["gpu"] = {"ok": True, "devices": [str(d) for d in gpus], "kind": gpus[0].device_kind}
    except RuntimeError as err:
        out["gpu"] = {"ok": False, "error": str(err).splitlines()[0]}
    import jaxconv
    out["jaxconv_file"] = jaxconv.__file__
except Exception as err:
    out["error"] = f"{type(err).__name__}: {err}"
if shutil.which("nvidia-smi"):
    q = ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"]
    r = subprocess.run(q, capture_output=True, text=True, check=False)
    out["nvidia_smi"] = (r.stdout or r.stderr).strip()
print(json.dumps(out))
"""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="device_check.py", description=__doc__.splitlines()[0])
    p.add_argument(
        "--device",
        choices=("gpu", "cpu"),
        default="gpu",
        help="the backend to check (default gpu; cpu runs the same stages on the CPU)",
    )
    p.add_argument("--quick", action="store_true", help="tiny sizes and 2 tests: about a minute")
    p.add_argument(
        "--budget-s", type=float, default=420.0, help="total seconds for all stages (default 420)"
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder (default $OUT if set, else ./device-check)",
    )
    who = p.add_mutually_exclusive_group()
    who.add_argument("--python", default=None, help="interpreter to run the stages with")
    who.add_argument("--venv", type=Path, default=None, help="virtual environment to use")
    p.add_argument("--skip-tests", action="store_true", help="benchmarks only")
    args = p.parse_args(argv)
    if args.venv is not None:
        args.python = str(args.venv / "bin" / "python")
    args.python = args.python or sys.executable
    if args.out is None:
        args.out = Path(os.environ["OUT"]) if os.environ.get("OUT") else Path("device-check")
    return args


def stage_env(device: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("JAX_COMPILATION_CACHE_DIR", None)  # first calls must compile, not load
    env["JAXCONV_CACHE_DIR"] = "off"
    env["PYTHONUNBUFFERED"] = "1"
    if device == "cpu":
        env["JAX_PLATFORMS"] = "cpu"
    else:
        env.pop("JAX_PLATFORMS", None)
        env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"  # tests start subprocesses too
    return env


def run_stage(
    name: str, cmd: list[str], env: dict[str, str], timeout_s: float, out: Path
) -> dict[str, Any]:
    """Runs `cmd` with its output in `out/<name>.log`; stops it (the whole group) at `timeout_s`."""
    log = out / f"{name}.log"
    print(f"\n== {name} (at most {timeout_s:.0f} s): {' '.join(cmd)}", flush=True)
    start = time.monotonic()
    with log.open("w") as f:
        proc = subprocess.Popen(
            cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=ROOT, start_new_session=True
        )
        try:
            rc: int | None = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            rc = None
    wall = time.monotonic() - start
    tail = log.read_text(errors="replace").splitlines()[-12:]
    print("\n".join(f"   {line}" for line in tail))
    state = "TIMED OUT" if rc is None else f"exit {rc}"
    print(f"== {name}: {state} after {wall:.1f} s", flush=True)
    return {
        "command": cmd,
        "rc": rc,
        "timed_out": rc is None,
        "timeout_s": round(timeout_s, 1),
        "wall_s": round(wall, 2),
        "log": log.name,
    }


def probe(python: str, env: dict[str, str]) -> dict[str, Any]:
    proc = subprocess.run(
        [python, "-c", PROBE],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return {"error": f"probe failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}"}


def test_counts(log: Path) -> dict[str, Any]:
    """Outcome counts from a verbose pytest log (complete even if the run was stopped)."""
    text = log.read_text(errors="replace")
    outcomes = re.findall(r"^(tests/\S+) (PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)", text, re.M)
    counts = {
        k: sum(1 for _, o in outcomes if o == k) for k in ("PASSED", "FAILED", "ERROR", "SKIPPED")
    }
    out: dict[str, Any] = {k.lower(): v for k, v in counts.items()}
    out["not_passed"] = [t for t, o in outcomes if o in ("FAILED", "ERROR")]
    return out


def disagreement(obj: Any) -> float:
    """The largest `rel_error` / `max_rel_error` anywhere in a benchmark's results."""
    if isinstance(obj, dict):
        own = [v for k, v in obj.items() if k in ("rel_error", "max_rel_error")]
        return max([*own, *(disagreement(v) for v in obj.values())], default=0.0)
    if isinstance(obj, list):
        return max((disagreement(v) for v in obj), default=0.0)
    return 0.0


def no_gpu_message(info: dict[str, Any]) -> str:
    packages = info.get("packages", {})
    reason = info.get("gpu", {}).get("error") or info.get("error", "jax did not start")
    return (
        f"NO GPU: jax.devices('gpu') failed in {info.get('executable', '?')}: {reason}\n"
        f"  jax {packages.get('jax')}, jaxlib {packages.get('jaxlib')}, CUDA plugins "
        f"{packages.get('jax-cuda12-plugin')} (12), {packages.get('jax-cuda13-plugin')} (13); "
        f"nvidia-smi: {info.get('nvidia_smi', 'not found')}\n"
        "  Install CUDA JAX into that environment (pip install -U 'jax[cuda12]', or "
        "'jax[cuda13]'), or point --python/--venv at one that has it, or run with --device cpu."
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    env = stage_env(args.device)
    t0 = time.monotonic()
    summary: dict[str, Any] = {
        "check": "benchmarks/device_check.py",
        "argv": list(sys.argv[1:] if argv is None else argv),
        "device_requested": args.device,
        "quick": args.quick,
        "budget_s": args.budget_s,
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    summary["probe"] = info = probe(args.python, env)
    print(json.dumps(info, indent=1))
    stages: dict[str, dict[str, Any]] = {}
    summary["stages"] = stages
    summary["results"] = results = {}
    if args.device == "gpu" and not info.get("gpu", {}).get("ok"):
        print("\n" + no_gpu_message(info), file=sys.stderr)
        summary["status"] = "no-gpu"
        return _finish(summary, out, t0, 2)
    if "error" in info:
        print(f"\nthe interpreter cannot run the check: {info['error']}", file=sys.stderr)
        summary["status"] = "broken-environment"
        return _finish(summary, out, t0, 1)

    plan: list[tuple[str, list[str], float]] = []
    if not args.skip_tests:
        files = QUICK_TESTS if args.quick else tuple(f"tests/{f}" for f in TEST_FILES)
        cmd = [args.python, "-m", "pytest", "-v", "-p", "no:cacheprovider", *files]
        plan.append(("tests", cmd, TESTS_SHARE))
    for name, (full, quick, share) in BENCHMARKS.items():
        cmd = [
            args.python,
            str(HERE / f"{name}.py"),
            *(quick if args.quick else full),
            "--out",
            str(out / f"{name}.json"),
        ]
        plan.append((name, cmd, share))
    for i, (name, cmd, share) in enumerate(plan):
        left = args.budget_s - (time.monotonic() - t0)
        timeout_s = left * share / sum(s for _, _, s in plan[i:])
        if timeout_s < MIN_STAGE_S:
            stages[name] = {"command": cmd, "skipped": f"budget spent ({left:.0f} s left)"}
            print(f"\n== {name}: skipped, {left:.0f} s of the budget left", flush=True)
            continue
        stages[name] = run_stage(name, cmd, env, timeout_s, out)
        if name == "tests":
            summary["tests"] = test_counts(out / "tests.log")
        elif (out / f"{name}.json").is_file():
            payload = json.loads((out / f"{name}.json").read_text())
            machine = payload.pop("machine")
            payload.pop("versions", None)
            payload["backend"], payload["device_kind"] = machine["backend"], machine["device_kind"]
            payload["max_rel_error"] = disagreement(
                {k: v for k, v in payload.items() if k in ("cases", "results")}
            )
            results[name] = payload
    failed = [n for n, s in stages.items() if s.get("rc") != 0]
    wrong = [n for n, r in results.items() if r["backend"] != args.device]
    summary["failed_stages"], summary["wrong_backend"] = failed, wrong
    summary["status"] = "ok" if not failed and not wrong else "failures"
    return _finish(summary, out, t0, 0 if summary["status"] == "ok" else 1)


def _finish(summary: dict[str, Any], out: Path, t0: float, code: int) -> int:
    summary["wall_s"] = round(time.monotonic() - t0, 1)
    path = out / "summary.json"
    path.write_text(json.dumps(summary, indent=1, ensure_ascii=False) + "\n")
    print(f"\n{summary['status']}: {path} ({summary['wall_s']} s)", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
