"""The settings reader: defaults, types, bounds and every problem named at once, without pydantic."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from imgdrop.settings import Settings

NAMES = {"TABLE_NAME": "t", "BUCKET_NAME": "b"}
CORE = Path(__file__).resolve().parents[2] / "layers" / "core"


def test_unset_variables_take_their_defaults():
    settings = Settings.from_environment(NAMES)
    assert (settings.table_name, settings.bucket_name) == ("t", "b")
    assert settings.upload_expiry_seconds == 900
    assert settings.webhook_timeout_seconds == 10.0
    assert settings.webhook_allow_local_http is False
    assert settings.near_duplicate_threshold is None and settings.near_duplicate_mode is None


def test_values_are_read_as_their_types():
    settings = Settings.from_environment(NAMES | {
        "UPLOAD_EXPIRY_SECONDS": " 600 ", "WEBHOOK_TIMEOUT_SECONDS": "2.5", "IMGDROP_WEBHOOK_ALLOW_LOCAL_HTTP": "True",
        "IMGDROP_NEAR_DUPLICATE_THRESHOLD": "9", "IMGDROP_NEAR_DUPLICATE_MODE": "flag",
        "SIGNED_URL_WINDOW_SECONDS": 7200,
    })
    assert settings.upload_expiry_seconds == 600
    assert settings.webhook_timeout_seconds == 2.5
    assert settings.webhook_allow_local_http is True
    assert settings.near_duplicate_threshold == 9
    assert settings.near_duplicate_mode == "flag"
    assert settings.signed_url_window_seconds == 7200
    assert Settings.from_environment(NAMES | {"IMGDROP_WEBHOOK_ALLOW_LOCAL_HTTP": "0"}).webhook_allow_local_http is False


def test_every_problem_is_named_at_once():
    with pytest.raises(ValueError) as info:
        Settings.from_environment({
            "UPLOAD_EXPIRY_SECONDS": "10", "DOWNLOAD_EXPIRY_SECONDS": "604801", "MAX_PIXELS": "1.5",
            "WEBHOOK_TIMEOUT_SECONDS": "0", "IMGDROP_NEAR_DUPLICATE_MODE": "maybe",
            "IMGDROP_WEBHOOK_ALLOW_LOCAL_HTTP": "sometimes", "WEBHOOK_RETRY_BASE_SECONDS": "soon",
        })
    message = str(info.value)
    for problem in ("TABLE_NAME: required", "BUCKET_NAME: required", "UPLOAD_EXPIRY_SECONDS: '10' is under 60",
                    "DOWNLOAD_EXPIRY_SECONDS: '604801' is over 604800", "MAX_PIXELS: '1.5' is not an integer",
                    "WEBHOOK_TIMEOUT_SECONDS: '0' must be over 0",
                    "IMGDROP_NEAR_DUPLICATE_MODE: 'maybe' is not one of reject, flag, off",
                    "IMGDROP_WEBHOOK_ALLOW_LOCAL_HTTP: 'sometimes' is not a boolean",
                    "WEBHOOK_RETRY_BASE_SECONDS: 'soon' is not a number"):
        assert problem in message


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf"])
def test_a_number_that_is_not_finite_is_refused(value):
    """NaN compares false with every bound, so it would pass them all (pydantic refused it)."""
    with pytest.raises(ValueError, match=f"WEBHOOK_TIMEOUT_SECONDS: '{value}' is not a number"):
        Settings.from_environment(NAMES | {"WEBHOOK_TIMEOUT_SECONDS": value})
    with pytest.raises(ValueError, match="WEBHOOK_RETRY_CAP_SECONDS"):
        Settings.from_environment(NAMES | {"WEBHOOK_RETRY_CAP_SECONDS": value})


def test_the_jwt_secret_stays_out_of_the_repr():
    settings = Settings.from_environment(NAMES | {"JWT_SECRET": "s3cr3t-value"})
    assert settings.jwt_secret == "s3cr3t-value"
    assert "s3cr3t-value" not in repr(settings)


def test_settings_are_frozen():
    settings = Settings.from_environment(NAMES)
    with pytest.raises(AttributeError):
        settings.table_name = "other"  # type: ignore[misc]


def test_reading_the_settings_loads_no_pydantic():
    """The point of the reader: functions that need pydantic for nothing else do not load it."""
    code = ("import sys; from imgdrop.settings import Settings; Settings.from_environment("
            "{'TABLE_NAME': 't', 'BUCKET_NAME': 'b'}); print('pydantic' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], env={"PYTHONPATH": str(CORE)}, capture_output=True,
                            text=True, timeout=60, check=True)
    assert result.stdout.strip() == "False"
