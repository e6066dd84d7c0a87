"""One source of defaults: ``RunConfig`` (inpaint/config.py). The CLI's options take their
defaults from it, and the MRF library's defaults (``MRFConfig``) are the product's."""

import dataclasses
import inspect

import click
import pytest

import cli
from inpaint.config import RunConfig
from mrf import MRFConfig, prefill

REQUIRED = {"run": ["img.png", "--mask", "m.png", "-o", "out.png"], "demo": [],
            "batch": ["."]}
# CLI parameter -> RunConfig field, where the names differ
RENAMED = {"no_context": "use_context"}
FIELDS = {f.name for f in dataclasses.fields(RunConfig)}


def _parsed(command: str) -> dict:
    cmd = cli.main.commands[command]
    with cmd.make_context(command, list(REQUIRED[command]), resilient_parsing=True) as ctx:
        return dict(ctx.params)


@pytest.mark.parametrize("command", ["run", "demo", "batch"])
def test_cli_defaults_are_the_run_config_defaults(command):
    """Parsing a command without options gives RunConfig() (``workers`` aside for demo and
    batch, whose per-item runs use one process)."""
    params = _parsed(command)
    mrf = {k: v for k, v in params.items()
           if k in FIELDS or k in RENAMED or k == "memory_budget"}
    mrf.pop("workers", None)
    workers = params["workers"] if command == "run" else 1
    assert cli._run_config(**mrf, workers=workers) == RunConfig(workers=workers)


@pytest.mark.parametrize("command", ["run", "demo", "batch"])
def test_every_shared_option_reads_its_default_from_run_config(command):
    """No option named like a RunConfig field carries its own default (a hard-coded copy would
    agree today and drift tomorrow), and --help shows RunConfig's value."""
    cmd = cli.main.commands[command]
    ctx = click.Context(cmd, info_name=command)
    # --memory-budget takes a size text ("4GB"); its default (None) is pinned above
    shared = [p for p in cmd.params if p.name in FIELDS - {"memory_budget"}]
    assert len(shared) == (28 if command == "demo" else 29)
    defaults = RunConfig()
    for param in shared:
        if command != "run" and param.name == "workers":
            continue   # batch: Dask processes, not RunConfig.workers
        assert isinstance(param, cli.ConfigOption), param.name
        assert param.get_default(ctx) == getattr(defaults, param.name), param.name
        help_extra = param.get_help_extra(ctx)
        assert help_extra["default"] == str(getattr(defaults, param.name)), param.name
    flag = next(p for p in cmd.params if p.name == "no_context")
    assert flag.get_default(ctx) is (not defaults.use_context)


def test_mrf_library_defaults_are_the_products():
    """MRFConfig() is what ``inpaint run`` runs (CPU), and mrf's pre-fill default is the run's."""
    assert RunConfig().mrf_config(use_gpu=False) == MRFConfig()
    assert inspect.signature(prefill).parameters["method"].default == RunConfig().prefill


def test_readme_run_options_table_states_the_run_defaults():
    """Every single-option row of the README's `inpaint run` table whose default is a number or
    a word states the option's real default (RunConfig's, through the CLI): a default changed
    in code but not in the README (or the reverse) fails here."""
    import re
    from pathlib import Path

    import click

    from cli import main

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    table = readme.split("### `inpaint run IMAGE --mask MASK -o OUT`", 1)[1].split("\n\n", 2)[1]
    command = main.commands["run"]
    ctx = click.Context(command)
    checked = 0
    for option, stated in re.findall(r"^\| `(--[a-z-]+)` \| ([^|]+?) \|", table, re.M):
        param = next((p for p in command.params if option in p.opts), None)
        if param is None or stated.strip() in ("off", "—", "on"):
            continue
        default, stated = param.get_default(ctx), stated.strip().strip("`")
        if isinstance(default, bool) or default is None:
            continue
        if isinstance(default, (int, float)):
            if not re.fullmatch(r"[0-9.e+-]+", stated):
                continue   # said in words ("one per core")
            assert float(stated) == float(default), (option, stated, default)
        else:
            assert stated == str(default), (option, stated, default)
        checked += 1
    assert checked >= 15, checked


@pytest.mark.parametrize("field", ["structure_match", "texture_weight", "crack_width",
                                   "patch_size", "temperature"])
@pytest.mark.parametrize("value", ["0.01", None, True])
def test_a_non_number_option_from_python_gets_one_clear_error(field, value):
    """RunConfig and MRFConfig built from Python with a string, None or a bool where a number
    belongs say so in one line (numpy's TypeError said nothing of the option)."""
    with pytest.raises(ValueError, match=rf"^{field.replace('_', ' ')} must be a number, got "):
        MRFConfig(**{field: value})
    if field in ("structure_match", "texture_weight", "crack_width"):   # passed through as is
        said = rf"{field.replace('_', ' ')} must be a (finite )?number"
        with pytest.raises(ValueError, match=said):
            RunConfig(**{field: value}).mrf_config(use_gpu=False)
