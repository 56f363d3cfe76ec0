"""Typed configs from dicts, YAML files and ``key=value`` overrides: what is refused, and how it is said."""

from __future__ import annotations

import pytest

from trajsynth.config import ConfigError, from_dict, load_yaml, parse_overrides
from trajsynth.models.registry import get_family, run_config
from trajsynth.training.setup import build_run_config

# Found by tests/test_fuzz_config.py: each of these raised OverflowError, ValueError or TypeError, was accepted
# and failed later inside torch (after a run folder was made), or gave a message over several lines.


BAD_VALUES = [
    ("lr_generator", float("nan"), "lr_generator: expected a finite number"),
    ("lambda_gp", float("inf"), "lambda_gp: expected a finite number"),
    ("lambda_gp", 10**400, "lambda_gp: expected a finite number"),
    ("batch_size", float("nan"), "batch_size: expected an integer"),
    ("batch_size", float("inf"), "batch_size: expected an integer"),
    ("stage1_iterations", 2**70, "stage1_iterations: the value does not fit in a 64-bit integer"),
    ("encoder_hidden_dim", 0, "encoder_hidden_dim must be >= 1"),
    ("condition_embed_dim", -1, "condition_embed_dim must be >= 1"),
    ("feature_dim", 0, "feature_dim must be >= 1"),
    ("generator_hidden_dims", [64, 0], "generator_hidden_dims must all be >= 1"),
    ("critic_hidden_dims", [-1], "critic_hidden_dims must all be >= 1"),
    ("lr_autoencoder", 0.0, "lr_autoencoder must be > 0"),
    ("lr_discriminator", -1e-4, "lr_discriminator must be > 0"),
    ("seed", -1, r"seed must be in \[0, 2\*\*32\)"),
]


@pytest.mark.parametrize("key, value, words", BAD_VALUES, ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(BAD_VALUES)])
def test_bad_values_are_config_errors_naming_the_key(key, value, words):
    with pytest.raises(ConfigError, match=words):
        run_config("latent_wgan", "tiny", **{key: value})


def test_procedural_seed_and_table_sizes():
    with pytest.raises(ConfigError, match=r"fit_seed must be in \[0, 2\*\*32\)"):
        run_config("procedural", "tiny", fit_seed=-3)
    with pytest.raises(ConfigError, match="the procedural architecture cannot be built"):
        build_run_config("procedural", "tiny", {"n_distance_bins": 2**50})  # fine as a number, not as a table


def test_keys_must_be_names_and_data_a_mapping():
    arch = get_family("procedural").arch_cls
    with pytest.raises(ConfigError, match="config keys must be names, got 1, None"):
        run_config("procedural", "tiny", **{"arch": {1: 2, None: 3}})
    with pytest.raises(ConfigError, match="expected a mapping of ProceduralConfig keys, got list"):
        from_dict(arch, [1, 2])


@pytest.mark.parametrize("pair, words", [
    ("lr=\x07", "value is not valid YAML"),
    ("lr=[", "value is not valid YAML"),
    ("seed=" + "9" * 5000, "value is not valid YAML"),
], ids=["control-character", "unclosed-list", "5000-digits"])
def test_override_errors_are_one_line(pair, words):
    with pytest.raises(ConfigError, match=words) as info:
        parse_overrides([pair])
    assert "\n" not in str(info.value)


def test_yaml_file_errors_name_the_file_on_one_line(tmp_path):
    path = tmp_path / "c.yaml"
    for content, words in ((b"a: [1,\n b: 2\n", "not valid YAML"), (b"lr: \xbb\n", "not a UTF-8 text file")):
        path.write_bytes(content)
        with pytest.raises(ConfigError, match=words) as info:
            load_yaml(path)
        assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_unknown_key_inside_a_section_is_named_with_its_section():
    with pytest.raises(ConfigError, match=r"unknown config key 'arch\.a' for family latent_wgan"):
        build_run_config("latent_wgan", "tiny", parse_overrides(["arch={a: 1}"]), 16)
    with pytest.raises(ConfigError, match=r"'train\.stage1_iteration' \(did you mean 'stage1_iterations'"):
        build_run_config("latent_wgan", "tiny", {"train": {"stage1_iteration": 3}}, 16)


def test_numbers_in_exponent_notation_are_numbers():
    # YAML 1.1 reads 4e-3 (no dot) as a string; written on the command line it means a number
    cfg = run_config("ar_mdn", "tiny", **parse_overrides(["lr=4e-3", "ar_iterations=1e2"]))
    assert cfg.train.lr == 0.004 and cfg.train.ar_iterations == 100
    for pair, words in [("lr=nan", "lr: expected a finite number"), ("lr=fast", "lr: expected a finite number"),
                        ("ar_iterations=2.5", "ar_iterations: expected an integer")]:
        with pytest.raises(ConfigError, match=words):
            run_config("ar_mdn", "tiny", **parse_overrides([pair]))
