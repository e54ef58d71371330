from __future__ import annotations

from typing import Any

import pytest

from ssl_eval.config import Config, load_config


def test_defaults_and_overrides(tmp_path):
    overrides: dict[str, Any] = {"data.name": "digits", "data.n_eval": None}
    config = load_config(store=tmp_path, **overrides)
    assert config.data.name == "digits" and config.data.n_eval == 2000


def test_store_toml_is_read_and_families_typed(tmp_path):
    (tmp_path / "ssl_eval.toml").write_text('[data]\nname = "digits"\n[families.mocov2]\narch = "resnet18-cifar"\nprefix = "module.encoder_q."\n')
    config = load_config(store=tmp_path)
    assert config.family("mocov2").prefix == "module.encoder_q."
    assert config.family("other").prefix is None  # None: detect


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
        # a password holding "@" or an unescaped "/"
        ("http://alice:p@ss@host/x", "http://***@host/x"),
        ("https://u:pa/ss@host:443/api", "https://***@host:443/api"),
        # token query parameters of every common spelling, in a query or a fragment
        ("http://h/?api_token=T1&access_token=T2&token=T3&keep=1", "http://h/?api_token=***&access_token=***&token=***&keep=1"),
        ("https://b.blob.core.windows.net/c?sv=2020&sig=S1", "https://b.blob.core.windows.net/c?sv=2020&sig=***"),
        ("https://s3/k?X-Amz-Credential=AK%2F1&X-Amz-Security-Token=S2", "https://s3/k?X-Amz-Credential=***&X-Amz-Security-Token=***"),
        ("http://h/cb#access_token=T4&state=1", "http://h/cb#access_token=***&state=1"),
        ("http://h/?apikey=A&client_secret=B&password=C&pwd=D", "http://h/?apikey=***&client_secret=***&password=***&pwd=***"),
        # URLs quoted inside a message
        ("API request to http://bob:pw@h:5000/api failed (token=T5)", "API request to http://***@h:5000/api failed (token=***)"),
    ],
)
def test_redact_removes_credentials(uri, expected):
    from ssl_eval.common.urls import redact

    assert redact(uri) == expected


def test_unset_prefix_means_detect_and_setting_it_changes_the_key():
    detect = Config()
    backbone = Config.model_validate({"families": {"f": {"prefix": "backbone."}}})
    assert detect.family("f").prefix is None and detect.family("f").state_dict_key is None
    # removing a configured prefix (the error message's advice) reads the family differently,
    # so its known failures are retried
    assert backbone.embedding_key("f") != detect.embedding_key("f")
    keyed = Config.model_validate({"families": {"f": {"state_dict_key": "state_dict"}}})
    assert keyed.embedding_key("f") != detect.embedding_key("f")


def test_keys_of_existing_work_dirs_stay_valid():
    # computed by the release before "detect" was spelled None (placeholder defaults
    # prefix = "backbone.", state_dict_key = "state_dict"): the new spelling must not
    # re-embed or re-measure anyone's store
    assert (Config().embedding_key("f"), Config().metrics_key("f")) == ("8de7e8f4510fa357", "a9e422d8918085a4")
    moco = Config.model_validate({"families": {"f": {"prefix": "module.encoder_q."}}})
    assert moco.embedding_key("f") == "163f6cb8a41ecc49"


def test_store_file_on_a_url_is_read(tmp_path):
    import fsspec

    fsspec.filesystem("memory").pipe_file("/cfg-store/ssl_eval.toml", b'[data]\nname = "digits"\nn_eval = 150\n')
    config = load_config(store="memory://cfg-store")
    assert (config.data.name, config.data.n_eval) == ("digits", 150)
    assert load_config(store="memory://no-such-store").data.name == "mnist"



def test_every_metric_option_is_reachable_from_the_toml_file(tmp_path):
    from ssl_eval.metrics import MetricOptions
    from ssl_eval.pipeline.evaluation import metric_options

    # one option set: [metrics] is MetricOptions plus random_state, checked by the same rules
    assert set(Config().metrics.model_dump()) - set(MetricOptions.model_fields) == {"random_state"}
    with pytest.raises(ValueError, match=r"MetricsConfig.reduce must be 'none', 'pca' or 'umap', got 'tsne'"):
        Config.model_validate({"metrics": {"reduce": "tsne"}})
    store = tmp_path / "store"
    store.mkdir()
    (store / "ssl_eval.toml").write_text('[metrics]\nmax_points = 500\nreduce = "pca"\npca_dims = 8\n')
    config = load_config(store=store)
    assert metric_options(config) == MetricOptions(max_points=500, reduce="pca", pca_dims=8)
    assert config.metrics_key("f") != Config().metrics_key("f")  # a set cap re-measures
    with pytest.raises(ValueError, match="max_points"):
        load_config(store=store, **{"metrics.max_points": 1})  # type: ignore[arg-type]  # a dotted key, not a parameter
