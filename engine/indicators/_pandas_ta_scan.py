"""Generate ``_pandas_ta_table.py``: the DSL signature of every pandas-ta indicator, found by introspection.

    .venv/bin/python -m engine.indicators._pandas_ta_scan     # rewrites engine/indicators/_pandas_ta_table.py

Run it after upgrading pandas-ta or TA-Lib (a test fails when the installed versions differ from the
table's). For each function in ``pandas_ta.Category`` it:

1. reads the parameters from the signature and their real defaults from the body (pandas-ta declares
   ``length=None`` and resolves it with ``length = v_pos_default(length, 14)``); OHLCV inputs become
   keyword-only candle columns, or the positional ``source`` when ``close`` (or ``volume``) is the only
   input, as in ``ema(close, 12)``;
2. runs it on real candles: outputs and their types, a non-default value of every parameter must change
   the result (else pandas-ta ignores it and we do not offer it), every MA mode and flag must run;
3. proves causality: values on the first N candles must not change when later candles are added;
4. measures the warm-up: how many candles a run started later needs before it matches a run started
   earlier (recursive filters included), at the default lengths and at twice them.

Functions failing any step are listed in ``SKIPPED`` with the reason.
"""

from __future__ import annotations

import ast
import inspect
import math
import re
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

CANDLES = ("ETH_BTC-5m.csv", "ADA_BTC-5m.csv", "XMR_BTC-5m.csv", "XRP_USDT_USDT-5m-futures.csv")
DATA_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "binance"
TABLE_PATH = Path(__file__).with_name("_pandas_ta_table.py")

OHLCV = {"open_": "open", "high": "high", "low": "low", "close": "close", "volume": "volume"}
# Never offered: offset shifts (a negative one reads the future), implementation switches, output-shape
# switches, and settings that make values depend on where the data starts.
HIDDEN = {"offset", "talib", "prenan", "asint", "show_all", "nozeros", "full", "cumulative", "bands", "stds"}
# Integers that are not window lengths (they do not scale the warm-up).
# Where runs started late are compared with a run started at the first candle (see settle()).
SETTLE_STARTS = (200, 500, 900, 1300, 1900, 2400, 3000)
NOT_LENGTHS = {"ddof", "percent", "cap", "scalar", "initial"}

# pandas-ta names a curated function already covers (under another name) or that are not indicators.
SKIPPED: dict[str, str] = {
    "cdl_pattern": "covered by pattern(name)",
    "kc": "covered by keltner()",
    "hl2": "built into the DSL as the series hl2",
    "hlc3": "built into the DSL as the series hlc3",
    "ohlc4": "built into the DSL as the series ohlc4",
    "ichimoku": "covered by ichimoku() (pandas-ta's includes the look-ahead chikou span)",
    "tos_stdevall": "looks ahead: fits one regression over the whole series",
    "vhm": "looks ahead: divides by the standard deviation of the whole series",
    "zigzag": "looks ahead: zig-zag pivots are redrawn when later candles arrive",
    "pivots": "calendar-anchored (daily pivots): its warm-up in candles depends on the timeframe",
}

# Arguments pinned to a value (and not offered).
FIXED: dict[str, dict[str, Any]] = {
    "dpo": {"centered": False},  # the centered version looks ahead
}

# Defaults pandas-ta resolves in ways the scanner cannot read (``x = float(x) if ... else 0.5``), and
# the valid ranges those resolutions imply.
DEFAULTS: dict[tuple[str, str], Any] = {
    ("cdl_z", "ddof"): 1,
    ("kst", "roc1"): 10,
    ("kst", "roc2"): 15,
    ("kst", "roc3"): 20,
    ("kst", "roc4"): 30,
    ("kst", "sma1"): 10,
    ("kst", "sma2"): 10,
    ("kst", "sma3"): 10,
    ("kst", "sma4"): 15,
    ("alma", "dist_offset"): 0.85,
    ("hwma", "na"): 0.2,
    ("hwma", "nb"): 0.1,
    ("hwma", "nc"): 0.1,
    ("jma", "length"): 7,
    ("mcgd", "c"): 1.0,
    ("quantile", "q"): 0.5,
    ("t3", "a"): 0.7,
    ("cksp", "x"): 3.0,
    ("cksp", "mamode"): "sma",
    ("psar", "af0"): 0.02,
    ("stdev", "ddof"): 1,
    ("variance", "ddof"): 1,
    ("bbands", "ddof"): 1,
}
# Window lengths pandas-ta annotates as int-or-float.
INTEGERS = {("jma", "length")}
RANGES: dict[tuple[str, str], tuple[float | None, float | None]] = {
    ("hwma", "na"): (0.001, 0.999),
    ("hwma", "nb"): (0.001, 0.999),
    ("hwma", "nc"): (0.001, 0.999),
    ("mcgd", "c"): (0.001, 1.0),
    ("quantile", "q"): (0.001, 0.999),
    ("t3", "a"): (0.001, 0.999),
    ("alma", "dist_offset"): (0.0, 1.0),
    ("cdl_z", "ddof"): (0, 1),
    ("jma", "length"): (1, None),
    **{("kst", f"{kind}{i}"): (1, None) for kind in ("roc", "sma") for i in range(1, 5)},
    ("stdev", "ddof"): (0, 1),
    ("variance", "ddof"): (0, 1),
}
STRING_CHOICES: dict[tuple[str, str], tuple[str, ...]] = {
    ("decay", "mode"): ("linear", "exp"),
    ("alphatrend", "src"): ("close", "hl2", "hlc3", "ohlc4"),
}

# Clean member names, in pandas-ta's column order (its own names embed the arguments: MACDh_12_26_9).
OUTPUT_NAMES: dict[str, tuple[str, ...]] = {
    "aberration": ("middle", "upper", "lower", "atr"),
    "accbands": ("lower", "middle", "upper"),
    "alligator": ("jaw", "teeth", "lips"),
    "alphatrend": ("trend", "lagged"),
    "amat": ("long_run", "short_run"),
    "aobv": ("obv", "min", "max", "fast", "slow", "long_run", "short_run"),
    "aroon": ("down", "up", "osc"),
    "brar": ("ar", "br"),
    "cdl_z": ("open", "high", "low", "close"),
    "chandelier_exit": ("long", "short", "direction"),
    "cksp": ("long", "short"),
    "eri": ("bull", "bear"),
    "exhc": ("down", "up"),
    "fisher": ("fisher", "signal"),
    "ha": ("open", "high", "low", "close"),
    "hilo": ("hilo", "long", "short"),
    "hwc": ("middle", "lower", "upper", "width", "percent"),
    "kdj": ("k", "d", "j"),
    "kst": ("kst", "signal"),
    "kvo": ("kvo", "signal"),
    "mama": ("mama", "fama"),
    "ppo": ("ppo", "hist", "signal"),
    "psar": ("long", "short", "af", "reversal"),
    "pvi": ("pvi", "ma"),
    "pvo": ("pvo", "hist", "signal"),
    "qqe": ("qqe", "rsi_ma", "long", "short"),
    "rvgi": ("rvgi", "signal"),
    "rwi": ("high", "low"),
    "smc": ("high_volatility", "bottom_flag", "bottom", "bottom_pct", "top_flag", "top", "top_pct"),
    "smi": ("smi", "signal", "osc"),
    "squeeze": ("sqz", "on", "off", "no_squeeze"),
    "squeeze_pro": ("sqz", "on_wide", "on_normal", "on_narrow", "off", "no_squeeze"),
    "stc": ("stc", "macd", "stoch"),
    "stochf": ("k", "d"),
    "stochrsi": ("k", "d"),
    "thermo": ("thermo", "ma", "long", "short"),
    "tmo": ("tmo", "signal", "momentum", "momentum_signal"),
    "trix": ("trix", "signal"),
    "tsi": ("tsi", "signal"),
    "tsv": ("tsv", "signal", "ratio"),
    "vortex": ("plus", "minus"),
}

MA_MODES = (
    "dema", "ema", "fwma", "hma", "linreg", "midpoint", "pwma", "rma",
    "sinwma", "sma", "ssf", "swma", "t3", "tema", "trima", "vidya", "wma",
)  # fmt: skip


# ----- reading signatures ----------------------------------------------------------------------------


def _literal(node: ast.expr) -> Any:
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError):
        return None


def body_defaults(fn: Any) -> dict[str, dict[str, Any]]:
    """``{param: {"kind": validator, "default": value, ...}}`` from ``param = v_xxx(param, default, ...)``."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    found: dict[str, dict[str, Any]] = {}
    for node in ast.walk(tree.body[0]):
        if not (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Name)
        ):
            continue
        target, call = node.targets[0].id, node.value
        if target in found or not call.args or not isinstance(call.args[0], ast.Name):
            continue
        if call.args[0].id != target:
            continue
        kind = call.func.id
        args = [_literal(a) for a in call.args[1:]]
        kwargs = {k.arg: _literal(k.value) for k in call.keywords}
        info: dict[str, Any] = {"kind": kind}
        if kind in ("v_pos_default", "v_int", "v_float", "v_scalar", "v_bool", "v_mamode", "v_str"):
            default = args[0] if args else kwargs.get("default")
            if default is None and kind == "v_scalar":
                default = 1
            if default is None and kind == "v_bool":
                default = True
            info["default"] = default
            if kind == "v_pos_default":
                info["min_exclusive"] = 0
        elif kind in ("v_lowerbound", "v_upperbound"):
            bound = args[0] if args else kwargs.get("bound", 0)
            info["default"] = args[1] if len(args) > 1 else kwargs.get("default", 0)
            strict = kwargs.get("strict", True)
            info["min_exclusive" if kind == "v_lowerbound" else "max_exclusive"] = bound
            info["strict"] = strict
        elif kind == "v_drift":
            info["default"] = 1
            info["min_exclusive"] = 0
        elif kind in ("v_ascending", "v_talib", "v_tradingview"):
            info["default"] = True
        else:
            continue
        found[target] = info
    return found


def describe_params(name: str, fn: Any) -> tuple[dict[str, Any], list[str]]:
    """The DSL-facing description of ``fn``'s parameters; ``problems`` explains any it cannot offer."""
    signature = inspect.signature(fn)
    body = body_defaults(fn)
    inputs: list[str] = []  # required candle inputs (pandas-ta names)
    series_params: list[str] = []  # required non-candle series (long_run(fast, slow))
    params: list[dict[str, Any]] = []
    problems: list[str] = []
    for p in signature.parameters.values():
        if p.kind is p.VAR_KEYWORD:
            continue
        if p.name in OHLCV:
            if p.default is inspect.Parameter.empty:
                inputs.append(p.name)
            continue  # optional candle inputs change the formula; keep pandas-ta's default behaviour
        if p.default is inspect.Parameter.empty:
            series_params.append(p.name)
            continue
        if p.name in HIDDEN or p.name in FIXED.get(name, {}):
            continue
        info = body.get(p.name, {})
        default = DEFAULTS.get((name, p.name), info.get("default"))
        if default is None and p.default is not None:
            default = p.default
        if default is None or isinstance(default, (list, tuple, dict)):
            problems.append(f"{p.name}: no usable default")
            continue
        entry: dict[str, Any] = {"name": p.name, "default": default}
        if isinstance(default, bool):
            entry["type"] = "bool"
        elif isinstance(default, str):
            entry["type"] = "str"
            if info.get("kind") == "v_mamode":
                entry["choices"] = MA_MODES
            elif (name, p.name) in STRING_CHOICES:
                entry["choices"] = STRING_CHOICES[(name, p.name)]
            else:
                problems.append(f"{p.name}: free-form string")
                continue
        else:
            integer = isinstance(default, int) and (
                (name, p.name) in INTEGERS or not _float_annotation(p.annotation)
            )
            entry["type"] = "int" if integer else "float"
            low, high = RANGES.get((name, p.name), (None, None))
            if low is None and "min_exclusive" in info:
                bound = info["min_exclusive"]
                strict = info.get("strict", True)
                low = (bound + 1 if integer else bound + 1e-6) if strict else bound
            if high is None and "max_exclusive" in info:
                bound = info["max_exclusive"]
                strict = info.get("strict", True)
                high = (bound - 1 if integer else bound - 1e-6) if strict else bound
            entry["min"], entry["max"] = low, high
        params.append(entry)
    described = {"inputs": inputs, "series": series_params, "params": params}
    return described, problems


def _float_annotation(annotation: Any) -> bool:
    """pandas-ta annotates window lengths ``Int`` and ratios ``IntFloat``; an int default of an IntFloat
    parameter (``scalar=100``) is still a float parameter."""
    text = str(annotation)
    return "float" in text.lower()


# ----- running -----------------------------------------------------------------------------------------


def load(file: str) -> pd.DataFrame:
    frame = pd.read_csv(DATA_DIR / file, parse_dates=["date"], index_col="date")
    return frame[["open", "high", "low", "close", "volume"]].astype("float64")


def call(name: str, desc: dict[str, Any], candles: pd.DataFrame, args: dict[str, Any]) -> pd.DataFrame | None:
    """Run pandas-ta ``name`` the way the registered wrapper does; the result as a float frame."""
    import pandas_ta

    fn = getattr(pandas_ta, name)
    kwargs: dict[str, Any] = {k: candles[OHLCV[k]] for k in desc["inputs"]}
    for extra, column in zip(desc["series"], ("close", "open"), strict=False):
        kwargs[extra] = candles[column]
    kwargs.update(FIXED.get(name, {}))
    kwargs.update(convert_args(desc["params"], args))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = fn(**kwargs)
    if result is None:
        return None
    if isinstance(result, pd.Series):
        result = result.to_frame()
    if not isinstance(result, pd.DataFrame):
        raise TypeError(f"returned {type(result).__name__}")
    return result


def convert_args(params: list[dict[str, Any]], args: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for p in params:
        value = args.get(p["name"], p["default"])
        if p["type"] == "int":
            value = int(value)
        elif p["type"] == "float":
            value = float(value)
        out[p["name"]] = value
    return out


def as_matrix(frame: pd.DataFrame) -> np.ndarray:
    return frame.to_numpy(dtype=np.float64, na_value=np.nan)


def close_enough(a: np.ndarray, b: np.ndarray, relative: float) -> np.ndarray:
    """Elementwise agreement within ``relative`` of each column's spread (NaN only matches NaN)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scale = np.nan_to_num(np.nanstd(a, axis=0), nan=0.0)
    tol = relative * scale + 1e-9 * np.abs(np.nan_to_num(a)) + 1e-12
    both_nan = np.isnan(a) & np.isnan(b)
    return both_nan | (np.abs(a - b) <= tol)


def is_causal(name: str, desc: dict[str, Any], candles: pd.DataFrame, args: dict[str, Any]) -> bool:
    full = as_matrix(call(name, desc, candles, args))
    for cut in (700, 2000, len(candles) - 500):
        head = call(name, desc, candles.iloc[:cut], args)
        if head is None:
            continue
        if not close_enough(full[:cut], as_matrix(head), 1e-7).all():
            return False
    return True


def settle(name: str, desc: dict[str, Any], candles: pd.DataFrame, args: dict[str, Any]) -> int | None:
    """Candles a run started late needs before it agrees with one started earlier; None if never."""
    full = as_matrix(call(name, desc, candles, args))
    worst = 0
    for start in SETTLE_STARTS:
        part = call(name, desc, candles.iloc[start:], args)
        if part is None:
            return None
        bad = ~close_enough(full[start:], as_matrix(part), 1e-4)
        rows = np.flatnonzero(bad.any(axis=1))
        needed = int(rows[-1]) + 1 if len(rows) else 0
        if needed > len(candles) - start - 300:
            return None
        worst = max(worst, needed)
    return worst


def leading_nan(frame: pd.DataFrame) -> int:
    matrix = as_matrix(frame)
    valid = ~np.isnan(matrix)
    firsts = [int(np.argmax(col)) if col.any() else len(col) for col in valid.T]
    return max(firsts) if firsts else 0


_NUMERIC = re.compile(r"^-?\d+(\.\d+)?%?$")


def clean_outputs(name: str, columns: list[str]) -> tuple[str, ...]:
    if name in OUTPUT_NAMES:
        names = OUTPUT_NAMES[name]
        if len(names) != len(columns):
            raise ValueError(f"OUTPUT_NAMES[{name!r}] has {len(names)} names for columns {columns}")
        return names
    stems = ["_".join(t for t in c.split("_") if not _NUMERIC.match(t)).lower() for c in columns]
    return tuple(re.sub(r"[^a-z0-9_]", "_", s).strip("_") or name for s in stems)


def output_kinds(frame: pd.DataFrame) -> tuple[str, ...]:
    kinds = []
    for column in frame.columns:
        values = frame[column]
        flags = values.dtype.kind in "biu" and set(np.unique(values.to_numpy())) <= {0, 1}
        kinds.append("bool" if flags else "number")
    return tuple(kinds)


def alternative(param: dict[str, Any]) -> Any:
    """A valid non-default value of ``param`` (to prove pandas-ta honours it)."""
    default, low, high = param["default"], param.get("min"), param.get("max")
    if param["type"] == "bool":
        return not default
    if param["type"] == "str":
        return next(c for c in param["choices"] if c != default)
    if param["type"] == "int":
        value = default * 2 if default > 1 else default + 1
        if high is not None and value > high:
            value = default - 1
        return value
    value = default * 1.5 if default else 0.5
    if high is not None and value > high:
        value = (default + (low if low is not None else 0.0)) / 2
    return value


def scan_one(name: str, category: str, candles: list[pd.DataFrame]) -> tuple[dict[str, Any] | None, str]:
    import pandas_ta

    fn = getattr(pandas_ta, name)
    desc, problems = describe_params(name, fn)
    main = candles[0]
    try:
        base = call(name, desc, main, {})
    except Exception as exc:
        return None, f"fails on real candles: {type(exc).__name__}: {exc}"
    if base is None:
        return None, "returns nothing on real candles"
    for other in candles[1:]:
        try:
            frame = call(name, desc, other, {})
        except Exception as exc:
            return None, f"fails on real candles: {type(exc).__name__}: {exc}"
        if frame is None or frame.shape[1] != base.shape[1] or frame.isna().all().any():
            return None, "gives no values on some real candles"
    if base.isna().all().any():
        return None, "an output is NaN on all real candles"
    if not is_causal(name, desc, main, {}):
        return None, "looks ahead: values change when later candles are added"

    settled = settle(name, desc, main, {})
    # Keep only the parameters pandas-ta honours, with every variant runnable, causal and settling.
    kept: list[dict[str, Any]] = []
    variants: dict[str, int | None] = {}
    base_matrix = as_matrix(base)
    for param in desc["params"]:
        values = param["choices"] if param["type"] == "str" else [alternative(param)]
        if param["type"] == "bool":
            values = [not param["default"]]
        usable = []
        for value in values:
            if value == param["default"]:
                usable.append(value)
                continue
            try:
                frame = call(name, desc, main, {param["name"]: value})
            except Exception:
                continue
            if frame is None or frame.shape[1] != base.shape[1] or frame.isna().all().any():
                continue
            matrix = as_matrix(frame)
            if matrix.shape == base_matrix.shape and close_enough(base_matrix, matrix, 0.0).all():
                continue  # ignored by pandas-ta
            if param["type"] in ("str", "bool"):
                try:
                    if not is_causal(name, desc, main, {param["name"]: value}):
                        continue
                    bars = settle(name, desc, main, {param["name"]: value})
                except Exception:
                    continue
                if bars is None and settled is not None:
                    continue  # this mode never forgets its start within our data: not offered
                variants[f"{param['name']}={value}"] = bars
            usable.append(value)
        if param["type"] == "str":
            if len(usable) < 2:
                problems.append(f"{param['name']}: no working alternative")
                continue
            param = {**param, "choices": tuple(c for c in param["choices"] if c in usable)}
        elif not usable:
            problems.append(f"{param['name']}: ignored or failing when changed")
            continue
        kept.append(param)
    desc = {**desc, "params": kept}

    lengths = {
        p["name"]: p["default"]
        for p in kept
        if p["type"] == "int" and p["name"] not in NOT_LENGTHS and p["default"] >= 1
    }
    if lengths:
        doubled = {k: 2 * v for k, v in lengths.items()}
        try:
            settled_2x = settle(name, desc, main, doubled)
        except Exception:
            settled_2x = None
    else:
        settled_2x = settled
    cumulative = settled is None
    if cumulative:
        unit = leading_nan(base)
    else:
        assert settled is not None
        unit = max(settled, math.ceil((settled_2x if settled_2x is not None else 2 * settled) / 2))
        unit = with_margin(unit)
    variant_units = {
        k: with_margin(v) for k, v in variants.items() if v is not None and with_margin(v) > unit
    }

    columns = [str(c) for c in base.columns]
    outputs = clean_outputs(name, columns)
    if len(set(outputs)) != len(outputs) or not all(o.isidentifier() for o in outputs):
        return None, f"cannot name its outputs cleanly: {columns}"
    title = (inspect.getdoc(fn) or name).splitlines()[0].strip().rstrip(".")
    entry = {
        "category": category,
        "title": title,
        "inputs": desc["inputs"],
        "series": desc["series"],
        "params": kept,
        "fixed": FIXED.get(name, {}),
        "outputs": outputs,
        "kinds": output_kinds(base),
        "lengths": lengths,
        "warmup": unit,
        "variants": variant_units,
        "cumulative": cumulative,
        "dropped": problems,
    }
    return entry, ""


def curated_names() -> set[str]:
    import importlib

    from engine.indicators import CURATED_MODULES

    names: set[str] = set()
    for module in CURATED_MODULES:
        names.update(spec.name for spec in importlib.import_module(f"engine.indicators.{module}").SPECS)
    return names


def with_margin(measured: int) -> int:
    """A measured settling length plus a margin: it was measured on one market, users run others."""
    return math.ceil(1.1 * measured) + 2 if measured else 0


def scan() -> tuple[dict[str, Any], dict[str, str]]:
    import pandas_ta

    candles = [load(f) for f in CANDLES if (DATA_DIR / f).exists()]
    if not candles:
        raise SystemExit(f"no candles in {DATA_DIR}")
    table: dict[str, Any] = {}
    skipped = dict(SKIPPED)
    for name in curated_names():
        skipped.setdefault(name, f"covered by the curated {name}()")
    for category, names in pandas_ta.Category.items():
        for name in names:
            if name in skipped:
                continue
            started = time.perf_counter()
            entry, reason = scan_one(name, category, candles)
            took = time.perf_counter() - started
            print(f"{category:12} {name:16} {took:6.2f}s {reason or 'ok'}", file=sys.stderr)
            if entry is None:
                skipped[name] = reason
            else:
                table[name] = entry
    return table, skipped


def render(table: dict[str, Any], skipped: dict[str, str]) -> str:
    import pandas_ta
    import talib

    lines = [
        '"""Generated by ``python -m engine.indicators._pandas_ta_scan``: do not edit by hand."""',
        "",
        "from __future__ import annotations",
        "",
        f"PANDAS_TA_VERSION = {pandas_ta.version!r}",
        f"TALIB_VERSION = {talib.__version__!r}",
        "",
        "SKIPPED = {",
        *(f"    {k!r}: {v!r}," for k, v in sorted(skipped.items())),
        "}",
        "",
        "TABLE = {",
    ]
    for name in sorted(table):
        lines.append(f"    {name!r}: {{")
        for key, value in table[name].items():
            lines.append(f"        {key!r}: {_plain(value)!r},")
        lines.append("    },")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _plain(value: Any) -> Any:
    """Python literals only (numpy scalars, tuples of dicts) so the table imports without numpy."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return tuple(_plain(v) for v in value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def main() -> None:
    table, skipped = scan()
    TABLE_PATH.write_text(render(table, skipped))
    # Keep the generated file in the project's format (ruff is a dev dependency).
    subprocess.run([sys.executable, "-m", "ruff", "format", "--quiet", str(TABLE_PATH)], check=False)
    print(f"wrote {TABLE_PATH} ({len(table)} functions, {len(skipped)} skipped)", file=sys.stderr)


if __name__ == "__main__":
    main()
