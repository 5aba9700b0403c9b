"""Trained models are saved under their location and loaded when configured there again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from skops import io as skops_io

from service.plugins.models.scikit import FORMAT
from tests.models_helpers import LINE_MODEL, add_model, add_source, expect, line_records, predict

TEN = {"t": {"features": {"Years": 10}}}


@pytest.mark.parametrize(("plugin", "filename"), [("slr", "slr.json"), ("scikitlr", "model.skops")])
async def test_reconfigured_model_predicts_without_training(
    client: Any, upload_dir: Path, plugin: str, filename: str
) -> None:
    await add_source(client, "train", line_records(range(4)))
    await add_model(client, plugin, "m", {**LINE_MODEL, "location": "models/m"})
    await expect(await client.post("/model/m/train", json=["train"]))
    saved = upload_dir / "models" / "m"
    assert [p.name for p in saved.iterdir()] == [filename]  # no temporary files left

    # A new label, named with the PyPI release's 'directory', finds the saved training.
    await add_model(client, plugin, "again", {**LINE_MODEL, "directory": "models/m"})
    value = (await predict(client, "again", TEN))["t"]["prediction"]["Salary"]["value"]
    assert value == pytest.approx(110)


async def test_saved_model_of_another_configuration_is_not_used(client: Any) -> None:
    await add_source(client, "train", line_records(range(4)))
    await add_model(client, "slr", "m", {**LINE_MODEL, "location": "models/m"})
    await expect(await client.post("/model/m/train", json=["train"]))
    other = {"features": ["Years:int:1"], "predict": "Bonus:float:1", "location": "models/m"}
    await add_model(client, "slr", "other", other)
    response = await client.post("/model/other/predict/0", json=TEN)
    assert (response.status, await response.json()) == (400, {"error": "Model not trained"})


async def test_unreadable_saved_models_are_refused(client: Any, upload_dir: Path) -> None:
    (upload_dir / "junk").mkdir()
    (upload_dir / "junk" / "slr.json").write_text("{not json")
    (upload_dir / "junk" / "model.skops").write_bytes(b"not a zip")
    response = await client.post("/configure/model/slr/m", json={**LINE_MODEL, "location": "junk"})
    assert response.status == 400
    assert (await response.json())["error"].startswith("Saved model slr.json cannot be loaded")
    response = await client.post(
        "/configure/model/scikitlr/m", json={**LINE_MODEL, "location": "junk"}
    )
    assert (response.status, await response.json()) == (
        400,
        {
            "error": "Saved model model.skops cannot be loaded: not a saved scikit-learn model"
            " (BadZipFile)"
        },
    )


async def test_saved_models_cannot_carry_arbitrary_objects(client: Any, upload_dir: Path) -> None:
    """A file planted in the upload dir must not make the server build arbitrary objects."""
    import fractions

    planted = {"format": FORMAT, "signature": {}, "estimator": fractions.Fraction(1, 2)}
    (upload_dir / "planted").mkdir()
    (upload_dir / "planted" / "model.skops").write_bytes(skops_io.dumps(planted))
    response = await client.post(
        "/configure/model/scikitlr/m", json={**LINE_MODEL, "location": "planted"}
    )
    assert (response.status, await response.json()) == (
        400,
        {
            "error": "Saved model model.skops cannot be loaded: it contains types that are not"
            " allowed: fractions.Fraction"
        },
    )
