"""nas/errors.py: the one user-error type, and the errors of each layer that are kinds of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from nas.arch import ArchConfig
from nas.errors import UsageError, bad_value
from nas.search.run.storage import StorageError, open_storage
from nas.search.spec.studyfile_reader import StudyFileError, _relabel, load_study_file
from nas.search.spec.tomlfile import invalid, reason


def test_a_usage_error_carries_owner_field_value_and_allowed() -> None:
    err = UsageError(owner="Recipe", field="momentum", value="x", allowed="a number in [0, 1) is required")
    assert isinstance(err, ValueError)
    assert (err.owner, err.field, err.value, err.has_value, err.allowed) == (
        "Recipe",
        "momentum",
        "x",
        True,
        "a number in [0, 1) is required",
    )
    assert str(err) == "Recipe.momentum = 'x' is invalid: a number in [0, 1) is required"


def test_a_value_of_none_is_a_value_and_no_value_is_none() -> None:
    none = UsageError(owner="DataConfig", field="root", value=None, allowed="a folder is required")
    assert (none.has_value, none.value, str(none)) == (
        True,
        None,
        "DataConfig.root = None is invalid: a folder is required",
    )
    unset = UsageError(field="--workers", allowed="at least 1 is required")
    assert (unset.has_value, unset.value, unset.owner, str(unset)) == (
        False,
        None,
        None,
        "--workers is invalid: at least 1 is required",
    )


def test_an_explicit_message_keeps_the_fields() -> None:
    err = UsageError("workers = 0 is invalid: at least 1", field="workers", value=0, allowed="at least 1")
    assert str(err) == "workers = 0 is invalid: at least 1"
    assert (err.owner, err.field, err.value, err.allowed) == (None, "workers", 0, "at least 1")


def test_bad_value_builds_the_usage_error() -> None:
    err = bad_value("ArchConfig", "growth_rate", 0, "a positive integer is required")
    assert isinstance(err, UsageError)
    assert (err.owner, err.field, err.value, err.allowed) == (
        "ArchConfig",
        "growth_rate",
        0,
        "a positive integer is required",
    )


def test_config_errors_are_usage_errors_with_their_fields() -> None:
    with pytest.raises(UsageError) as caught:
        ArchConfig(compression=0)
    assert (caught.value.owner, caught.value.field, caught.value.value) == ("ArchConfig", "compression", 0)
    with pytest.raises(UsageError) as caught:
        ArchConfig().replace(growth=3)
    assert (caught.value.owner, caught.value.field) == ("ArchConfig", "growth")


def test_study_file_and_storage_errors_are_usage_errors(tmp_path: Path) -> None:
    assert issubclass(StudyFileError, UsageError) and issubclass(StorageError, UsageError)
    path = tmp_path / "s.toml"
    path.write_text('[study]\nname = "s"\nspace = "connectivity_ablation"\ntrials = 0\n')
    with pytest.raises(StudyFileError) as caught:
        load_study_file(path)
    err = caught.value
    assert str(err) == f"{path}: study.trials = 0 is invalid: an integer >= 1 is required"
    assert (err.owner, err.field, err.value, err.allowed) == (
        str(path),
        "study.trials",
        0,
        "an integer >= 1 is required",
    )
    (tmp_path / "file").write_text("")
    with pytest.raises(StorageError, match="cannot open storage"):
        open_storage(str(tmp_path / "file" / "journal.log"))


def test_relabel_and_reason_read_the_fields_not_the_message() -> None:
    # The message says nothing of the shape 'X.f = v is invalid: why': only the fields can be read.
    err = UsageError("momentum went wrong", owner="Recipe", field="momentum", value="x", allowed="a number")
    relabelled = _relabel(err, "recipe", {"momentum": "x"}, "study.toml")
    assert str(relabelled) == 'study.toml: recipe.momentum = "x" is invalid: a number'
    assert (relabelled.owner, relabelled.field, relabelled.value, relabelled.allowed) == (
        "study.toml",
        "recipe.momentum",
        "x",
        "a number",
    )
    assert (
        str(_relabel(err, "recipe", {}, "study.toml")) == "study.toml: recipe.momentum (not set) is invalid: a number"
    )
    assert reason(err) == "a number"
    # An error that names no field stays whole: a plain ValueError whose message looks like one is not parsed.
    plain = ValueError("Recipe.momentum = 'x' is invalid: a number")
    assert str(_relabel(plain, "recipe", {"momentum": "x"}, "study.toml")) == (
        "study.toml: [recipe] Recipe.momentum = 'x' is invalid: a number"
    )
    assert reason(plain) == "Recipe.momentum = 'x' is invalid: a number"
    toml = invalid("space.toml", "knobs.growth_rate.low", 0, "an integer >= 1 is required")
    assert str(toml) == "space.toml: knobs.growth_rate.low = 0 is invalid: an integer >= 1 is required"
    assert reason(toml) == "an integer >= 1 is required"
