from __future__ import annotations

import pytest

from ssl_eval.config import Config, load_config


def test_defaults_and_overrides(tmp_path):
    config = load_config(store=tmp_path, **{"data.name": "digits", "data.n_eval": None})
    assert config.data.name == "digits" and config.data.n_eval == 2000


def test_store_toml_is_read_and_families_typed(tmp_path):
    (tmp_path / "ssl_eval.toml").write_text('[data]\nname = "digits"\n[families.mocov2]\narch = "resnet18-cifar"\nprefix = "module.encoder_q."\n')
    config = load_config(store=tmp_path)
    assert config.family("mocov2").prefix == "module.encoder_q."
    assert config.family("other").prefix == "backbone."


def test_unknown_key_names_key_and_allowed(tmp_path):
    (tmp_path / "ssl_eval.toml").write_text("[data]\nnmae = 'digits'\n")
    with pytest.raises(ValueError, match=r"unknown key 'data.nmae'.*n_eval"):
        load_config(store=tmp_path)


def test_wrong_type_names_key(tmp_path):
    (tmp_path / "ssl_eval.toml").write_text("[metrics]\nk = 'ten'\n")
    with pytest.raises(ValueError, match="metrics.k"):
        load_config(store=tmp_path)


def test_keys_separate_embedding_and_metric_changes():
    a = Config()
    b = Config.model_validate({"metrics": {"k": 5}})
    c = Config.model_validate({"data": {"n_eval": 100}})
    assert a.embedding_key("f") == b.embedding_key("f") != c.embedding_key("f")
    assert a.metrics_key("f") != b.metrics_key("f")
    # how a family is read changes its embeddings, and only that family's
    d = Config.model_validate({"families": {"f": {"layer": "projector"}}})
    assert d.embedding_key("f") != a.embedding_key("f") and d.embedding_key("g") == a.embedding_key("g")


@pytest.mark.parametrize(
    "uri, expected",
    [
        ("http://alice:s3cret@mlflow.example:5000", "http://***@mlflow.example:5000"),
        ("s3://bucket/store?X-Amz-Signature=abc&x=1", "s3://bucket/store?X-Amz-Signature=***&x=1"),
        ("sqlite:////data/mlflow.db", "sqlite:////data/mlflow.db"),
        (None, None),
    ],
)
def test_redact_removes_credentials(uri, expected):
    from ssl_eval.storage.urls import redact

    assert redact(uri) == expected
