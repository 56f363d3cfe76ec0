"""Fuzzing configuration: random ``--set key=value`` overrides, random YAML config files, random ``train`` calls.

Properties:

* ``parse_overrides`` + ``build_run_config`` give a RunConfig, or a ``ConfigError`` whose message is one
  line naming the key; never a TypeError, OverflowError or the like. A RunConfig they accept builds
  its model (on the meta device: no memory, whatever the sizes), survives the trip through
  ``config.yaml`` (YAML dump and load) and, when small, its training objects build too.
* ``load_yaml`` + ``build_run_config`` on random YAML files: the same, naming the key or the file.
* ``trajsynth train --preset tiny ...`` with at least one bad argument fails with exit code 2 and an
  ``error:`` line, before creating any run folder under ``--out``.
"""

from __future__ import annotations

import dataclasses
import math
import typing

import pytest
import torch
import yaml
from conftest import synthetic_data_dir
from fuzzing import assert_clean_error, count_case, fewer
from hypothesis import given
from hypothesis import strategies as st

from trajsynth.cli.main import main
from trajsynth.config import ConfigError, load_yaml, parse_overrides
from trajsynth.data.train_data import load_train_data
from trajsynth.models.base import StepContext
from trajsynth.models.registry import RunConfig, family_names, get_family
from trajsynth.training.setup import build_run_config

MAX_LEN = 16
FAMILIES = family_names()
KEYS = {f: sorted({x.name for c in (get_family(f).arch_cls, get_family(f).train_cls) for x in dataclasses.fields(c)})
        for f in FAMILIES}
ALL_KEYS = sorted({k for keys in KEYS.values() for k in keys})

# --------------------------------------------------------------------------- strategies

YAML_SCALARS = st.sampled_from([
    "3", "0", "-5", "1e-4", "1.0e400", "-1.0e400", ".nan", ".inf", "-.inf", "true", "false", "yes", "no", "null",
    "~", "''", "abc", "'16'", "999999999999999999999999", "-999999999999999999999", "0x10", "0o17", "1_000",
    "2001-01-01", "12:30:00", "!!binary aGk=", "!!float 3", "!!str 3", "&a 1", "*a", "[1, 2]", "[]", "[[1]]",
    "[0]", "[-3, 64]", "[1.5]", "[.nan]", "[80, 40]", "[1e400]", "{a: 1}", "{}", "- 1", ": x", "[", "{",
    "mean", "attention", "cosine", "hybrid", "\t", " 5 ", "5 # comment", "'a\nb'",
])
RANDOM_VALUES = st.one_of(
    st.integers(-(2**80), 2**80).map(str),
    st.floats().map(lambda v: yaml.safe_dump(v).splitlines()[0]),
    st.text(max_size=12),
    st.lists(st.integers(-(2**40), 2**40), max_size=4).map(str),
)
VALUES = st.one_of(YAML_SCALARS, RANDOM_VALUES)
KEY = st.one_of(st.sampled_from(ALL_KEYS), st.sampled_from(["lr", "seed ", " batch_size", "arch", "train", "x"]))

# Edge values by the type of the field: where the checks are.
HUGE = ["9" * 30, "-" + "9" * 30, "9" * 5000, str(2**63), str(-(2**63) - 1)]
EDGES = {
    int: ["0", "-1", "1", "2", "3", "1.5", "1e3", "1.0e3", "2.0", ".nan", ".inf", "true", "[1]", "'4'", *HUGE],
    float: ["0", "-1", "1e-4", "0.0", ".nan", ".inf", "-.inf", "1.0e400", "true", "'1'", "1.0e-320", *HUGE],
    bool: ["true", "false", "1", "0", "yes", "'true'", "null"],
    str: ["''", "abc", "mean", "cosine", "none", "3", "[a]", "null"],
    list: ["[]", "[0]", "[-1]", "[1, 2]", "[1.5]", "[.nan]", "[9999999999999999999999]", "5", "[[1]]", "[1, .inf]",
           "[400, 80]", "[0.0, 1]", "[16, 16, 16, 16]"],
    dict: ["{}", "{directed: true}", "{summary_dim: 0}", "{summary_dim: 99999999999999999999}", "{lr: 1}",
           "{latent_dim: [1]}", "{1: 2}", "[1]", "5", "null", "abc"],
}


def _edge_kind(key: str) -> type:
    for fam in FAMILIES:
        for cls in (get_family(fam).arch_cls, get_family(fam).train_cls):
            hint = typing.get_type_hints(cls).get(key)
            if hint is not None:
                return typing.get_origin(hint) or hint
    return str


TYPED = st.sampled_from(ALL_KEYS).flatmap(lambda k: st.tuples(st.just(k), st.sampled_from(EDGES[_edge_kind(k)])))


@st.composite
def override_pairs(draw) -> list[str]:
    """1-4 ``key=value`` strings: mostly a field's edge values, sometimes anything."""
    n = draw(st.integers(1, 4))
    pairs = [draw(TYPED) if draw(st.integers(0, 3)) else (draw(KEY), draw(VALUES)) for _ in range(n)]
    return [f"{k}={v}" for k, v in pairs]


YAML_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**80), 2**80), st.floats(), st.text(max_size=8)),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


@st.composite
def yaml_document(draw) -> bytes:
    kind = draw(st.sampled_from(["mapping", "mapping", "sections", "other", "text"]))
    if kind == "mapping":
        doc = draw(st.dictionaries(st.one_of(KEY, st.integers(), st.none()), YAML_VALUES, max_size=4))
    elif kind == "sections":
        doc = {s: draw(st.dictionaries(KEY, YAML_VALUES, max_size=3)) for s in draw(st.sets(st.sampled_from(
            ["arch", "train"]), min_size=1))}
    elif kind == "other":
        doc = draw(YAML_VALUES)
    else:
        return draw(st.one_of(st.text(max_size=40).map(str.encode), st.binary(max_size=40)))
    return yaml.safe_dump(doc).encode()


# --------------------------------------------------------------------------- checks


@pytest.fixture(scope="module")
def train_data(tmp_path_factory):
    out = synthetic_data_dir(tmp_path_factory.mktemp("cfgfuzz") / "data", 60, 1, MAX_LEN)
    return load_train_data(out)


def _check_error(e: Exception, names: list[str]) -> None:
    """A one-line ConfigError that names one of ``names`` (the keys or the file involved)."""
    msg = assert_clean_error(e, (ConfigError,))
    if "architecture cannot be built" in msg:  # sizes torch refuses (overflowing tables): no one key to name
        return
    named = lambda n: (str(n).strip() and str(n).strip() in msg) or repr(n) in msg
    assert any(named(n) for n in names), f"{msg!r} names none of {names}"


def _check_run(run: RunConfig, train_data) -> None:
    """A configuration the loop can use: it builds, and it survives config.yaml."""
    fam = get_family(run.family)
    with torch.device("meta"):
        model = fam.model_cls(run.arch)
    back = RunConfig.from_dict(yaml.safe_load(yaml.safe_dump(run.to_dict())))
    assert back.to_dict() == run.to_dict() or _has_nan(run.to_dict())
    size = sum(t.numel() for t in model.state_dict().values())  # weights and fitted tables
    if size <= 200_000 and getattr(run.arch, "max_seq_len", 0) == MAX_LEN:
        real = fam.model_cls(run.arch)
        assert fam.training_cls(real, run.train, train_data, StepContext()).phases()


def _keys(values: dict) -> list:
    """The keys of a config mapping, and of its ``arch`` / ``train`` sections (at any depth)."""
    return [*values, *(k for s in ("arch", "train") if isinstance(values.get(s), dict) for k in _keys(values[s]))]


def _has_nan(d) -> bool:
    return any(_has_nan(v) if isinstance(v, dict) else isinstance(v, float) and math.isnan(v) for v in d.values())


# --------------------------------------------------------------------------- properties


@given(family=st.sampled_from(FAMILIES), pairs=override_pairs())
def test_overrides_give_a_run_config_or_a_config_error(train_data, family, pairs):
    count_case()
    keys = [p.partition("=")[0] for p in pairs]
    try:
        run = build_run_config(family, "tiny", parse_overrides(pairs), MAX_LEN)
    except Exception as e:  # noqa: BLE001 - the property is about which exceptions escape
        _check_error(e, [*keys, "max_seq_len"])
        return
    _check_run(run, train_data)


@fewer(2)
@given(family=st.sampled_from(FAMILIES), doc=yaml_document())
def test_yaml_files_give_a_run_config_or_a_config_error(train_data, tmp_path_factory, family, doc):
    count_case()
    path = tmp_path_factory.mktemp("yaml") / "config.yaml"
    path.write_bytes(doc)
    values = {}
    try:
        values = load_yaml(path)
        run = build_run_config(family, "tiny", values, MAX_LEN)
    except Exception as e:  # noqa: BLE001
        _check_error(e, [path, "max_seq_len", *_keys(values)])
        return
    _check_run(run, train_data)


# Each call gets one argument that is surely wrong, among random others: the command must fail, and early.
POISON = st.sampled_from([
    ["--set", "batch_size=0"], ["--set", "no_such_key=1"], ["--set", "seed=1.5"], ["--set", "=3"],
    ["--set", "lr_schedule=sometimes"], ["--preset", "huge"], ["--config", "missing.yaml"], ["--until", "stage3"],
    ["--until", ""], ["--init", "missing.pt"], ["--set", "max_seq_len=17"], ["--set", "generator_hidden_dims=[0]"],
    ["--set", "encoder_hidden_dim=-1"], ["--set", "condition_embed_dim=0"], ["--set", "lr_generator=-1"],
    ["--set", "lr_autoencoder=0"], ["--set", "dt_max_ms=1"], ["--set", "wobble_period_ms=[5]"],
])


@fewer(10)
@given(family=st.sampled_from(FAMILIES), poison=POISON,
       extra=st.one_of(st.just([]), st.lists(st.one_of(TYPED, st.tuples(KEY, VALUES)), max_size=3)),
       order=st.randoms(use_true_random=False))
def test_cli_train_fails_before_creating_a_run_folder(train_data, tmp_path_factory, capsys, family, poison, extra,
                                                      order):
    count_case()
    out = tmp_path_factory.mktemp("cli") / "runs"
    groups = [poison, *(["--set", f"{k}={v}"] for k, v in extra)]
    order.shuffle(groups)
    argv = ["train", train_data.data_dir, "--family", family, "--preset", "tiny", "--no-tensorboard", "--quiet",
            "--out", str(out), *(a for g in groups for a in g)]
    try:
        code = main(argv)
    except SystemExit as e:  # argparse: usage error
        code = e.code
    err = capsys.readouterr().err
    assert code == 2, f"{argv} gave exit code {code}"
    assert "Traceback" not in err and "error:" in err
    created = sorted(p.name for p in out.iterdir()) if out.exists() else []
    assert created == [], f"{argv} failed after creating {created}"
