"""Writes the benchmark tables of README.md, benchmarks/README.md and FIT.md from the JSON results.

The committed results in ``benchmarks/results/`` (written by ``run_all.py``) are the only source
of the numbers in those tables: each table sits between ``<!-- begin: NAME -->`` and ``<!-- end:
NAME -->`` markers, is rewritten from its JSON, and opens with the command that produced it. A
table whose JSON is missing is left as it is (and reported).

Usage::

    python benchmarks/tables.py            # rewrite the tables from benchmarks/results/*.json
    python benchmarks/tables.py --check    # exit 1 if a table differs from what its JSON gives
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
PEER_LIBS = ("scipy", "OpenCV", "jax.scipy", "lax")
SHORT = {"scipy.signal.": "", "jax.scipy.signal.": "jax.scipy."}  # shorter column names


def num(v: float | None) -> str:
    """3 significant digits, without exponents for times of up to hours in ms."""
    if v is None:
        return "–"
    return f"{v:.0f}" if abs(v) >= 100 else f"{v:.3g}"


def times(v: float | None) -> str:
    return "–" if v is None else f"{num(v)}×"


def span(values: Sequence[float]) -> str:
    return f"{num(min(values))}–{num(max(values))}×" if values else "–"


def short(entry: str) -> str:
    for prefix, repl in SHORT.items():
        if entry.startswith(prefix):
            return repl + entry[len(prefix) :]
    return entry


def table(header: Sequence[str], rows: Sequence[Sequence[str]], right_from: int = 2) -> str:
    align = ["---" if i < right_from else "---:" for i in range(len(header))]
    lines = [header, align, *rows]
    return "\n".join("| " + " | ".join(map(str, line)) + " |" for line in lines)


def provenance(p: dict[str, Any], doc: str) -> str:
    """The command, machine and versions behind a table, and a link to its JSON from `doc`."""
    m, v = p["machine"], p["versions"]
    target = f"benchmarks/results/{p['benchmark']}.json"
    link = os.path.relpath(target, os.path.dirname(doc) or ".")
    cv2 = v.get("opencv-python-headless") or "not installed"
    load = f"{m['loadavg_start'][0]:.1f}–{m['loadavg_end'][0]:.1f}"
    return (
        f"*`{p['command']}` (part of `python benchmarks/run_all.py`), {p['date_utc']} UTC; "
        f"{m['cpu_model']}, {m['cpu_count']} cores, {m['backend']} backend ({m['device_kind']}); "
        f"jax {v['jax']}, jaxconv {v['jaxconv']}, scipy {v['scipy']}, OpenCV {cv2}; load average "
        f"{load}. Raw results: [`{link}`]({link}).*"
    )


def _case(c: dict[str, Any]) -> list[str]:
    return [f"{c['size']}²", f"{c['kernel']} ({c['auto_method']})"]


def convolve_speedups(p: dict[str, Any]) -> dict[str, list[float]]:
    """Library -> speed-ups of jaxconv auto over its fastest entry, one per case."""
    return {
        lib: [
            1 / c["summary"]["auto_over_best"][lib]
            for c in p["cases"]
            if lib in c["summary"]["auto_over_best"]
        ]
        for lib in PEER_LIBS
    }


def convolve_headline(p: dict[str, Any]) -> str:
    s = convolve_speedups(p)
    grads = [c["summary"]["grad_over_forward"] for c in p["cases"]]
    missing = "".join(
        f" ({k} was not installed: its entries are left out.)" for k in p["missing_peers"]
    )
    return (
        "Speed-up of jaxconv's `auto` over each library's *fastest* method for the case "
        f"(its time / jaxconv's; > 1: jaxconv is faster): scipy {span(s['scipy'])}, "
        f"jax.scipy.signal {span(s['jax.scipy'])}, OpenCV {span(s['OpenCV'])}, "
        f"`lax.conv_general_dilated` {span(s['lax'])}. The kernel gradient takes "
        f"{span([g for g in grads if g is not None])} the forward time.{missing}"
    )


def convolve_summary(p: dict[str, Any]) -> str:
    """One row per case: jaxconv auto against each library's fastest entry; the headline."""
    header = [
        "image",
        "kernel (auto →)",
        "jaxconv ms",
        "first call s",
        "fastest scipy ms",
        "OpenCV ms",
        "fastest jax.scipy ms",
        "lax conv ms",
        *(f"vs {lib}" for lib in PEER_LIBS),
        "grad / fwd",
    ]
    rows = []
    for c in p["cases"]:
        s = c["summary"]
        best = {lib: s["best"].get(lib, {}) for lib in PEER_LIBS}
        rows.append(
            [
                *_case(c),
                num(s["auto_ms"]),
                num(s["auto_first_call_s"]),
                f"{num(best['scipy']['median_ms'])} ({short(best['scipy']['entry'])})",
                num(best["OpenCV"].get("median_ms")),
                f"{num(best['jax.scipy']['median_ms'])} ({short(best['jax.scipy']['entry'])})",
                num(best["lax"]["median_ms"]),
                *(
                    times(1 / s["auto_over_best"][lib]) if lib in s["auto_over_best"] else "–"
                    for lib in PEER_LIBS
                ),
                times(s["grad_over_forward"]),
            ]
        )
    return "\n\n".join([table(header, rows), convolve_headline(p)])


def convolve_readme(p: dict[str, Any], doc: str) -> str:
    return "\n\n".join([provenance(p, doc), convolve_summary(p)])


def convolve_full(p: dict[str, Any], doc: str) -> str:
    """The summary, the targets, every entry's median and first call, and the gradients."""
    names: list[str] = []
    for c in p["cases"]:
        names += [n for n in c["entries"] if n not in names]
    med = [
        [*_case(c), *(num(c["entries"].get(n, {}).get("median_ms")) for n in names)]
        for c in p["cases"]
    ]
    first = [
        [
            *_case(c),
            *(
                num(1e3 * c["entries"][n]["first_call_s"]) if n in c["entries"] else "–"
                for n in names
            ),
        ]
        for c in p["cases"]
    ]
    grads = [n for n in names if any("grad" in c["entries"].get(n, {}) for c in p["cases"])]
    grad_rows = []
    for c in p["cases"]:
        cells = []
        for n in grads:
            e = c["entries"].get(n, {})
            g = e.get("grad")
            cells.append(
                "–" if g is None else f"{num(g['median_ms'])} ({times(e['grad_over_forward'])})"
            )
        grad_rows.append([*_case(c), *cells])
    target_rows = [
        [*_case(c), "; ".join(f"{k}: {_word(v)}" for k, v in c["targets"].items())]
        for c in p["cases"]
    ]
    cols = [short(n) for n in names]
    return "\n\n".join(
        [
            provenance(p, doc),
            convolve_summary(p),
            "Targets of the issue (2-core CPU):",
            table(["image", "kernel (auto →)", "targets"], target_rows, right_from=3),
            "Every entry, median ms:",
            table(["image", "kernel (auto →)", *cols], med),
            "Every entry, first call in ms (JAX: tracing and compiling a freshly jitted function):",
            table(["image", "kernel (auto →)", *cols], first),
            "Kernel gradient, median ms (its ratio to the same method's forward time):",
            table(["image", "kernel (auto →)", *(short(n) for n in grads)], grad_rows),
        ]
    )


def _word(v: bool | None) -> str:
    return {True: "yes", False: "**no**", None: "peer missing"}[v]


def filters_table(p: dict[str, Any], doc: str) -> str:
    header = [
        "image",
        "filter",
        "jaxconv ms",
        "first call s",
        "new σ s",
        "OpenCV ms",
        "ndimage ms",
        "vs OpenCV",
        "vs ndimage",
        "≤ 1.5× OpenCV",
        "≤ 0.3× ndimage",
        "MiB faulted (jaxconv, OpenCV)",
    ]
    rows = []
    for r in p["results"]:
        e = r["entries"]
        jx, cv, sp = e["jaxconv"], e.get("cv2", {}), e["scipy.ndimage"]
        rows.append(
            [
                f"{r['size']}²",
                r["filter"],
                num(jx["median_ms"]),
                num(jx["first_call_s"]),
                num(jx.get("new_sigma_s")),
                num(cv.get("median_ms")),
                num(sp["median_ms"]),
                times(None if not cv else cv["median_ms"] / jx["median_ms"]),
                times(sp["median_ms"] / jx["median_ms"]),
                *(_word(v) for v in r["targets"].values()),
                f"{num(jx['page_faults_mib'])}, {num(cv.get('page_faults_mib'))}",
            ]
        )
    ndi = [
        r["entries"]["scipy.ndimage"]["median_ms"] / r["entries"]["jaxconv"]["median_ms"]
        for r in p["results"]
    ]
    cv2 = [
        r["entries"]["cv2"]["median_ms"] / r["entries"]["jaxconv"]["median_ms"]
        for r in p["results"]
        if "cv2" in r["entries"]
    ]
    headline = (
        f"Speed-up of jaxconv's filters over scipy.ndimage {span(ndi)}, over OpenCV {span(cv2)} "
        "(< 1: OpenCV is faster)."
    )
    return "\n\n".join([provenance(p, doc), table(header, rows), headline])


def fit_table(p: dict[str, Any], doc: str) -> str:
    single, batch = p["results"]["single"], p["results"]["batch"]
    header = [
        "problem",
        "solver",
        "median ms",
        "first call s",
        "new data s",
        "compile s",
        "rel. error of Σ",
        "steps / nfev",
    ]
    rows = []
    for label, res in (
        (f"{single['size']}² pair", single),
        (f"{batch['tiles']} tiles of {batch['tile']}²", batch),
    ):
        for name, e in res["entries"].items():
            steps = e.get("steps", e.get("max_steps", e.get("nfev", e.get("mean_nfev"))))
            rows.append(
                [
                    label,
                    f"`{name}`",
                    num(e["median_ms"]),
                    num(e["first_call_s"]),
                    num(e["new_values_s"]),
                    num(e.get("compile_s")),
                    f"{e.get('rel_error', e.get('max_rel_error')):.1e}",
                    num(steps),
                ]
            )
            label = ""
    speed = batch["speedup"]
    lines = (
        f"Pair: `jaxconv.fit` takes {num(single['jaxconv_over_scipy'])}× the time of scipy's "
        f"faster method (target ≤ 0.5×), `fit_gaussian` {num(single['fit_gaussian_over_scipy'])}×. "
        f"Batch: `fit_batch` is {num(speed['start I'])}× faster than the scipy loop from Σ = I "
        f"and {num(speed['spectral start'])}× from the same spectral start (target ≥ 20×); "
        f"`fit_gaussian_tiles` {num(batch['speedup_one_call_vs_scipy_from_I'])}×."
    )
    return "\n\n".join([provenance(p, doc), table(header, rows), lines])


def scaling_tables(p: dict[str, Any], doc: str) -> str:
    by = {(r["problem"], r["devices"]): r for r in p["records"]}
    parts = [provenance(p, doc)]
    for problem in dict.fromkeys(r["problem"] for r in p["records"]):
        base = by[(problem, 1)]
        strong = problem.endswith("strong")
        rows = []
        for n in p["config"]["device_counts"]:
            r = by.get((problem, n))
            if r is not None:
                speedup = base["median_ms"] / r["median_ms"]
                rows.append(
                    [
                        str(n),
                        "×".join(map(str, r["shape"])),
                        num(r["median_ms"]),
                        num(speedup) if strong else "–",
                        f"{speedup / n if strong else speedup:.2f}",
                        f"{r['rel_error']:.1e}",
                    ]
                )
        parts.append(
            f"{problem} (the unsharded single-device call: {num(base['unsharded_median_ms'])} ms):"
        )
        parts.append(
            table(
                ["devices", "shape", "median ms", "speedup", "efficiency", "rel. error"],
                rows,
                right_from=0,
            )
        )
    return "\n\n".join(parts)


def acceptance_block(p: dict[str, Any], doc: str) -> str:
    s = p["summary"]
    noise = [
        [
            str(r["covariance"]),
            f"{r['noise_rel']:g}",
            " ".join(f"{v:.2f}" for v in r["spread_over_crb"]),
            f"{r['coverage_95_mean']:.3f}",
        ]
        for r in p["noise"]
    ]
    taps = [
        [r["filter"], f"{r['noise_free_max_tap_error']:.1e}", f"{r['rms_over_crb']:.2f}"]
        for r in p["taps"]
    ]
    quantities = " ".join(p["noise"][0]["quantities"])
    return "\n\n".join(
        [
            provenance(p, doc),
            f"1. Noise-free: max relative error of Σ̂ {s['max_rel_error_lm']:.1e} with "
            f"Levenberg–Marquardt, {s['max_rel_error_adam']:.1e} with Adam "
            f"({s['adam_max_steps']} steps); targets 1e-6 and 1e-4.",
            f"2. Noise: spread of the estimates over the Cramér–Rao bound ({quantities}), and how "
            "often Σ̂ ± 1.96 stderr covers the truth:",
            table(["Σ", "s / range", "spread / CRB", "coverage"], noise, right_from=3),
            "3. Free 3×3 taps: noise-free max tap error, and RMS tap error over the bound's RMS "
            "(s = 0.01 × range):",
            table(["filter", "noise-free max error", "RMS / CRB RMS"], taps, right_from=1),
        ]
    )


def script_table(p: dict[str, Any], doc: str) -> str:
    """The script scenario: each fit in one process, then every target of the issue."""
    r = p["results"]
    fits, fp, sw, tl = r["in_process"]["fits"], r["fresh_process"], r["filter_sweep"], r["tiles"]
    per_fit = [
        [
            str(i + 1),
            ", ".join(f"{s:.2f}" for s in f["sigmas"]),
            f"{math.degrees(f['angle']):.0f}°",
            num(f["jaxconv_s"]),
            str(f["compiles"]),
            num(f["scipy_s"]),
            times(f["ratio"]),
            "–" if f["met"] is None else _word(f["met"]),
            f"{f['jaxconv_error']:.1e}, {f['scipy_error']:.1e}",
        ]
        for i, f in enumerate(fits)
    ]
    worst = max(fits[1:], key=lambda f: f["ratio"])
    nc, cw, sp = fp["jaxconv, no cache"], fp["jaxconv, cache warm"], fp["scipy"]
    n, ns, tiles = len(fits), len(sw["sigmas"]), (tl["size"] // tl["tile"]) ** 2

    def row(what, ours, peer, count, fig=None, target="–"):
        met = "–" if fig is None else _word(fig["met"])
        return [what, num(ours), num(peer), times(ours / peer), str(count), target, met]

    targets = [
        row(f"fits 2–{n} in one process (the slowest against scipy's)", worst["jaxconv_s"],
            worst["scipy_s"], sum(f["compiles"] for f in fits[1:]),
            r["in_process"]["max_ratio_after_first"], "each ≤ 0.5× scipy"),
        row(f"fresh process, no cache: import + {n} fits", nc["median_s"], sp["median_s"],
            nc["xla_compilations"], fp["no_cache_over_scipy"], "≤ 2× scipy"),
        row(f"fresh process, persistent cache warm: import + {n} fits", cw["median_s"],
            sp["median_s"], cw["xla_compilations"], fp["cache_warm_over_scipy"], "≤ 1× scipy"),
        row(f"`gaussian_filter`, {sw['size']}² {sw['dtype']}, {ns} σ: first pass",
            sw["first_pass_s"], sw["scipy_pass"]["median_s"], sw["compiles_first_pass"]["value"],
            sw["compiles_first_pass"], "≤ 4 compilations"),
        row(f"`gaussian_filter`, {ns} σ: warm pass", sw["warm_pass"]["median_s"],
            sw["scipy_pass"]["median_s"], sw["compiles_warm_passes"]),
        row(f"`fit_gaussian_tiles`, {tiles} tiles of {tl['tile']}²: first call",
            tl["first"]["jaxconv_s"], tl["first"]["scipy_loop_s"], tl["first"]["compiles"]),
        row("`fit_gaussian_tiles`: second call, new data", tl["second"]["jaxconv_s"],
            tl["second"]["scipy_loop_s"], tl["second"]["compiles"], tl["second_call_compiles"],
            "0 compilations"),
    ]  # fmt: skip
    errors = [f[k] for f in fits for k in ("jaxconv_error", "scipy_error")]
    co, m = p["versions"]["checkout"], p["machine"]
    notes = (
        f"Largest error max |Σ̂ − Σ| over the {n} fits: jaxconv {max(errors[::2]):.1e}, scipy "
        f"{max(errors[1::2]):.1e} px²; {fp['rounds']} fresh-process rounds, medians. In a fresh "
        f"process the imports took {num(nc['import_s'])} s (jaxconv, no cache), "
        f"{num(cw['import_s'])} s (cache warm), {num(sp['import_s'])} s (scipy), and the fits "
        f"{num(nc['sum_of_fits_s'])}, {num(cw['sum_of_fits_s'])} and "
        f"{num(sp['sum_of_fits_s'])} s (last round; the first fit {num(nc['first_fit_s'])}, "
        f"{num(cw['first_fit_s'])} and {num(sp['first_fit_s'])} s). Filling the cache (its "
        "first run) took "
        f"{num(fp['cache_fill_s'])} s. Measured at commit "
        f"{co['commit']}{' with jaxconv/ modified' if co['jaxconv_modified'] else ''}; "
        f"`uptime` before: {m['uptime_start'].split('load average:')[-1].strip()}, after: "
        f"{m['uptime_end'].split('load average:')[-1].strip()}."
    )
    return "\n\n".join(
        [
            provenance(p, doc),
            f"1. One process, {n} new pairs one after another (compile included):",
            table(["fit", "σ₁, σ₂ px", "angle", "jaxconv s", "XLA compilations", "scipy s",
                   "jaxconv / scipy", "≤ 0.5×", "max error Σ (jaxconv, scipy)"], per_fit),
            "2. Every target (times in s; XLA compilations of jaxconv's part):",
            table(["scenario", "jaxconv s", "scipy s", "jaxconv / scipy", "XLA compilations",
                   "target", "met"], targets, right_from=1),
            notes,
        ]
    )  # fmt: skip


# (document, block) -> (results file, renderer)
BLOCKS: dict[tuple[str, str], tuple[str, Callable[[dict[str, Any], str], str]]] = {
    ("README.md", "convolve"): ("bench_convolve", convolve_readme),
    ("README.md", "filters"): ("bench_filters", filters_table),
    ("benchmarks/README.md", "convolve"): ("bench_convolve", convolve_full),
    ("benchmarks/README.md", "filters"): ("bench_filters", filters_table),
    ("benchmarks/README.md", "fit"): ("bench_fit", fit_table),
    ("benchmarks/README.md", "scaling"): ("bench_scaling", scaling_tables),
    ("benchmarks/README.md", "script"): ("bench_script", script_table),
    ("benchmarks/FIT.md", "acceptance"): ("acceptance_fit", acceptance_block),
}


def load(name: str, results: Path = RESULTS) -> dict[str, Any] | None:
    """A committed result, or None; a --quick or stopped run is refused."""
    path = results / f"{name}.json"
    if not path.is_file():
        return None
    payload = json.loads(path.read_text())
    if payload["config"].get("quick"):
        raise ValueError(f"tables: `{path}` is a --quick run; got config {payload['config']}.")
    if not payload.get("complete"):
        raise ValueError(f"tables: `{path}` is from a run that did not finish; got complete=False.")
    return payload


def replace_block(text: str, name: str, body: str) -> str:
    """`text` with the part between the markers of block `name` replaced by `body`."""
    pattern = re.compile(rf"(<!-- begin: {name} [^\n]*-->\n).*?(\n<!-- end: {name} -->)", re.S)
    if len(pattern.findall(text)) != 1:
        raise ValueError(f"replace_block: `name` must mark exactly one block; got {name!r}.")
    return pattern.sub(lambda m: m.group(1) + body + m.group(2), text)


def render(root: Path = ROOT, results: Path = RESULTS) -> tuple[dict[Path, str], list[str]]:
    """Document -> its new text, and the blocks left alone for want of results."""
    texts: dict[Path, str] = {}
    missing = []
    for (doc, block), (name, renderer) in BLOCKS.items():
        path = root / doc
        text = texts.get(path, path.read_text())
        payload = load(name, results)
        if payload is None:
            missing.append(f"{doc}: {block} (no {name}.json)")
        else:
            text = replace_block(text, block, renderer(payload, doc))
        texts[path] = text
    return texts, missing


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tables.py", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 if stale")
    args = parser.parse_args(argv)
    texts, missing = render()
    for item in missing:
        print(f"left as it is: {item}")
    stale = [p for p, t in texts.items() if p.read_text() != t]
    if args.check:
        for path in stale:
            print(f"stale: {path.relative_to(ROOT)} (run python benchmarks/tables.py)")
        return 1 if stale else 0
    for path in stale:
        path.write_text(texts[path])
        print(f"rewrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
