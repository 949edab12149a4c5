import pytest

from napari_unet_loop.core.model.precision import ENV_CACHE_DIR, ENV_PRECISION


@pytest.fixture(autouse=True)
def _fp32_and_no_user_cache(monkeypatch, tmp_path_factory):
    """Tests run in fp32 whatever the machine (``auto`` could pick bf16 on one with AMX and
    change exact results) and never write the user's cache; tests of ``auto`` lift this."""
    monkeypatch.setenv(ENV_PRECISION, "fp32")
    monkeypatch.setenv(ENV_CACHE_DIR, str(tmp_path_factory.getbasetemp() / "cache"))
